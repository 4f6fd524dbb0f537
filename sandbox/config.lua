-- sandbox/config.lua: the sandbox's settings and its fake credentials.
--
-- config.load(overrides) -> cfg. Precedence: built-in defaults < environment
-- variables (below) < `overrides` (from the command line). None of these
-- secrets is real; they only guard the sandbox so that auth code paths run.
local M = {}

M.defaults = {
  host = "127.0.0.1",
  port = 8090,
  max_body = 8 * 1024 * 1024,
  rate = { limit = 1000, window = 60 },
  docspace = {
    user = "admin@northwind.example",           -- Basic
    password = "sandbox-docspace-password",
    bearer_token = "sandbox-docspace-bearer-token", -- Bearer (JWT scheme)
    api_key = "sk-sandbox-docspace-api-key",    -- ApiKeyBearer header (or Authorization: Bearer)
    auth_cookie = "sandbox-docspace-asc-auth-key", -- asc_auth_key cookie
    oauth2_token = "sandbox-docspace-oauth2-token", -- OAuth2 access token (bearer)
  },
  outpost = {
    admin_api_key = "sandbox-outpost-admin-api-key", -- AdminApiKey (bearer)
    jwt_secret = "sandbox-outpost-jwt-secret",       -- signs TenantJwt (HS256)
    -- base of portal redirect URLs; not served by the sandbox. The spec's
    -- format "url" rejects loopback/private addresses, hence a .example host.
    portal_url = "https://portal.outpost.sandbox.example/",
  },
  agilicus = {
    token = "sandbox-agilicus-token",                -- token-valid (bearer)
  },
  document360 = {
    api_token = "sandbox-document360-api-token",     -- api_token header
  },
}

-- environment variable -> dotted config key
M.env = {
  SANDBOX_DOCSPACE_USER = "docspace.user",
  SANDBOX_DOCSPACE_PASSWORD = "docspace.password",
  SANDBOX_DOCSPACE_TOKEN = "docspace.bearer_token",
  SANDBOX_DOCSPACE_API_KEY = "docspace.api_key",
  SANDBOX_DOCSPACE_COOKIE = "docspace.auth_cookie",
  SANDBOX_DOCSPACE_OAUTH_TOKEN = "docspace.oauth2_token",
  SANDBOX_OUTPOST_API_KEY = "outpost.admin_api_key",
  SANDBOX_OUTPOST_JWT_SECRET = "outpost.jwt_secret",
  SANDBOX_AGILICUS_TOKEN = "agilicus.token",
  SANDBOX_DOCUMENT360_TOKEN = "document360.api_token",
  SANDBOX_OUTPOST_PORTAL_URL = "outpost.portal_url",
  SANDBOX_RATE = "rate",
}

local function copy(t)
  if type(t) ~= "table" then return t end
  local o = {}
  for k, v in pairs(t) do o[k] = copy(v) end
  return o
end

-- "1000/60" -> {limit = 1000, window = 60}
function M.parse_rate(s)
  local limit, window = tostring(s):match("^%s*(%d+)%s*/%s*(%d+%.?%d*)%s*$")
  if not limit then return nil, "rate must look like LIMIT/WINDOW_SECONDS, e.g. 1000/60" end
  return { limit = tonumber(limit), window = tonumber(window) }
end

function M.set(cfg, key, value)
  if key == "rate" and type(value) == "string" then
    value = assert(M.parse_rate(value))
  end
  local t = cfg
  local parts = {}
  for p in key:gmatch("[^%.]+") do parts[#parts + 1] = p end
  for i = 1, #parts - 1 do
    t[parts[i]] = t[parts[i]] or {}
    t = t[parts[i]]
  end
  t[parts[#parts]] = value
end

function M.load(overrides, getenv)
  getenv = getenv or os.getenv
  local cfg = copy(M.defaults)
  for var, key in pairs(M.env) do
    local v = getenv(var)
    if v and v ~= "" then M.set(cfg, key, v) end
  end
  for key, v in pairs(overrides or {}) do M.set(cfg, key, v) end
  return cfg
end

return M
