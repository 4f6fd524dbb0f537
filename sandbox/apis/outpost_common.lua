-- sandbox/apis/outpost_common.lua: the Outpost tenant store shared by both
-- generations (older: /outpost/api/v1/{tenant_id}; current:
-- /outpost-latest/api/v1/tenants/{tenant_id}). Errors are
-- {status, message, data}; the tenant JWT is HS256 with iss "outpost",
-- sub = tenant id, 24 h.
-- luacheck: max line length 210
local json = require "sandbox.json"
local jwt = require "sandbox.jwt"
local util = require "sandbox.util"
local auth = require "sandbox.auth"

local M = {}

M.TOKEN_TTL = 24 * 3600

function M.error_body(status, message, _, data)
  return { status = status, message = message, data = data or {} }
end

function M.err(status, message, data)
  return status, M.error_body(status, message, nil, data)
end

-- route.security: "admin" (AdminApiKey only), "both" (AdminApiKey or TenantJwt), "none"
function M.authenticate(req, cfg, security)
  return auth.outpost(req, cfg, security == "both")
end

-- A tenant JWT may only act on its own tenant.
function M.check_scope(ctx, tenant_id)
  if ctx.cred.tenant and ctx.cred.tenant ~= tenant_id then
    return M.err(401, "token is not valid for this tenant")
  end
end

function M.render(t, latest)
  local out = {
    id = t.id, destinations_count = t.destinations_count,
    topics = json.array(util.deep_copy(t.topics)), created_at = util.iso8601(t.created_at),
  }
  if latest then
    out.metadata = t.metadata == nil and json.null or t.metadata
    out.updated_at = util.iso8601(t.updated_at)
  end
  return out
end

-- Returns tenant, created (bool).
function M.upsert(ctx, id, metadata, set_metadata)
  local tenants = ctx.data.outpost.tenants
  local now = os.time()
  local t = tenants[id]
  local created = false
  if not t then
    t = { id = id, topics = {}, destinations_count = 0, created_at = now, updated_at = now }
    tenants[id] = t
    created = true
  end
  if set_metadata then t.metadata = metadata end
  t.updated_at = now
  return t, created
end

function M.validate_metadata(body)
  if body == nil then return true end
  if type(body) ~= "table" or json.is_array(body) and #body > 0 then return nil, { "body must be an object" } end
  local md = body.metadata
  if md == nil or md == json.null then return true, nil, md ~= nil end
  if type(md) ~= "table" or (json.is_array(md) and #md > 0) then return nil, { "metadata must be an object of strings" } end
  local errs = {}
  for k, v in pairs(md) do
    if type(k) ~= "string" or type(v) ~= "string" then errs[#errs + 1] = "metadata." .. tostring(k) .. " must be a string" end
  end
  if #errs > 0 then return nil, errs end
  return true, md, true
end

function M.token(ctx, tenant_id)
  local now = os.time()
  return jwt.sign({ iss = "outpost", sub = tenant_id, iat = now, exp = now + M.TOKEN_TTL }, ctx.config.outpost.jwt_secret)
end

function M.portal_url(ctx, tenant_id, token, theme)
  local base = ctx.config.outpost.portal_url or "https://portal.outpost.sandbox.example/"
  local url = base .. "?token=" .. util.url_encode(token) .. "&tenant_id=" .. util.url_encode(tenant_id)
  if theme then url = url .. "&theme=" .. util.url_encode(theme) end
  return url
end

function M.healthz()
  return 200, "OK", { { "Content-Type", "text/plain" } }
end

-- Shared operation bodies, parameterised by generation ------------------------

function M.get(ctx, id, latest)
  local status, body = M.check_scope(ctx, id)
  if status then return status, body end
  local t = ctx.data.outpost.tenants[id]
  if not t then return M.err(404, "tenant not found") end
  return 200, M.render(t, latest)
end

function M.delete(ctx, id)
  local status, body = M.check_scope(ctx, id)
  if status then return status, body end
  local tenants = ctx.data.outpost.tenants
  if not tenants[id] then return M.err(404, "tenant not found") end
  tenants[id] = nil
  return 200, { success = true }
end

function M.get_token(ctx, id, latest)
  if not ctx.data.outpost.tenants[id] then return M.err(404, "tenant not found") end
  local tok, err = M.token(ctx, id)
  if not tok then return M.err(500, err) end
  return 200, latest and { token = tok, tenant_id = id } or { token = tok }
end

function M.get_portal(ctx, id, latest)
  local theme = ctx.query.theme
  if theme and theme ~= "light" and theme ~= "dark" then
    return M.err(400, "validation error", json.array({ "theme must be light or dark" }))
  end
  if not ctx.data.outpost.tenants[id] then return M.err(404, "tenant not found") end
  local tok, err = M.token(ctx, id)
  if not tok then return M.err(500, err) end
  local url = M.portal_url(ctx, id, tok, theme)
  return 200, latest and { redirect_url = url, tenant_id = id } or { redirect_url = url }
end

return M
