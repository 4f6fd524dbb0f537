-- sandbox/auth.lua: checks the credentials each API expects against the
-- configured ones. Every checker returns a credential descriptor
-- {name = "<api>:<scheme>", ...} or nil and a reason. Descriptors carry the
-- configured credential's *name*, never its value (they go to the log).
local util = require "sandbox.util"
local jwt = require "sandbox.jwt"

local M = {}

local function bearer(req)
  local h = req.headers.authorization
  if not h then return nil end
  return h:match("^[Bb][Ee][Aa][Rr][Ee][Rr]%s+(%S+)%s*$")
end

local function cookie(req, name)
  local c = req.headers.cookie
  if not c then return nil end
  for pair in c:gmatch("[^;]+") do
    local k, v = pair:match("^%s*([^=]+)=(.-)%s*$")
    if k and util.trim(k) == name then return (v:gsub('^"(.*)"$', "%1")) end
  end
  return nil
end
M.cookie = cookie

local function presented(req)
  local h = req.headers
  return h.authorization or h.apikeybearer or h.api_token or h.cookie
end

local function deny(req)
  return nil, presented(req) and "invalid credentials" or "no credentials"
end

-- DocSpace: Basic, Bearer (JWT), OAuth2/OpenId access token (bearer),
-- ApiKeyBearer header (raw or "Bearer "-prefixed; also accepted as an
-- Authorization bearer), asc_auth_key cookie (also accepted raw in Authorization).
function M.docspace(req, cfg)
  local c = cfg.docspace
  local authz = req.headers.authorization
  if authz then
    local b = authz:match("^[Bb][Aa][Ss][Ii][Cc]%s+(%S+)")
    if b then
      local raw = util.b64decode(b)
      local user, pass = (raw or ""):match("^([^:]*):(.*)$")
      if user and user == c.user and pass == c.password then return { name = "docspace:basic" } end
    end
    local tok = bearer(req)
    if tok then
      if tok == c.bearer_token then return { name = "docspace:bearer" } end
      if tok == c.oauth2_token then return { name = "docspace:oauth2" } end
      if tok == c.api_key then return { name = "docspace:api_key" } end
    end
    if authz == c.auth_cookie then return { name = "docspace:asc_auth_key" } end
  end
  local key = req.headers.apikeybearer
  if key then
    key = key:match("^[Bb]earer%s+(%S+)$") or key
    if key == c.api_key then return { name = "docspace:api_key" } end
  end
  if cookie(req, "asc_auth_key") == c.auth_cookie then return { name = "docspace:asc_auth_key" } end
  return deny(req)
end

-- Outpost: AdminApiKey bearer; TenantJwt bearer (HS256, sub = tenant id)
-- where the operation allows it.
function M.outpost(req, cfg, allow_jwt)
  local tok = bearer(req)
  if tok then
    if tok == cfg.outpost.admin_api_key then return { name = "outpost:admin_api_key", admin = true } end
    if allow_jwt then
      local payload = jwt.verify(tok, cfg.outpost.jwt_secret)
      if payload and type(payload.sub) == "string" then
        return { name = "outpost:tenant_jwt", tenant = payload.sub }
      end
    end
  end
  return deny(req)
end

function M.agilicus(req, cfg)
  if bearer(req) == cfg.agilicus.token then return { name = "agilicus:token" } end
  return deny(req)
end

function M.document360(req, cfg)
  if req.headers.api_token == cfg.document360.api_token then return { name = "document360:api_token" } end
  return deny(req)
end

return M
