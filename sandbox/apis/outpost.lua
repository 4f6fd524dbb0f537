-- sandbox/apis/outpost.lua: Hookdeck Outpost Tenants, the older generation
-- the documented SDK was generated from, under /outpost/api/v1:
-- PUT/GET/DELETE /{tenant_id}, GET /{tenant_id}/portal, GET /{tenant_id}/token,
-- GET /portal and GET /token (tenant inferred from a tenant JWT).
-- Upsert answers 200 whether it created or updated.
-- luacheck: max line length 210
local common = require "sandbox.apis.outpost_common"

local M = { name = "outpost", prefix = "/outpost/api/v1",
            error_body = common.error_body, authenticate = common.authenticate }

local function upsert(ctx)
  local status, body = common.check_scope(ctx, ctx.params.tenant_id)
  if status then return status, body end
  local t = common.upsert(ctx, ctx.params.tenant_id)
  return 200, common.render(t, false)
end

-- The JWT-context operations: the tenant comes from the bearer tenant JWT.
-- With the admin key there is no tenant to infer: 404.
local function inferred(ctx)
  return ctx.cred.tenant
end

M.routes = {
  { "GET", "/healthz", "health_check", common.healthz, "none" },
  { "PUT", "/{tenant_id}", "upsert", upsert, "admin" },
  { "GET", "/{tenant_id}", "get", function(ctx) return common.get(ctx, ctx.params.tenant_id, false) end, "both" },
  { "DELETE", "/{tenant_id}", "delete", function(ctx) return common.delete(ctx, ctx.params.tenant_id) end, "both" },
  { "GET", "/{tenant_id}/portal", "get_portal_url", function(ctx) return common.get_portal(ctx, ctx.params.tenant_id, false) end, "admin" },
  { "GET", "/{tenant_id}/token", "get_token", function(ctx) return common.get_token(ctx, ctx.params.tenant_id, false) end, "admin" },
  { "GET", "/portal", "get_portal_url_jwt_context", function(ctx)
      local id = inferred(ctx)
      if not id then return common.err(404, "tenant could not be inferred: authenticate with a tenant JWT") end
      return common.get_portal(ctx, id, false)
    end, "both" },
  { "GET", "/token", "get_token_jwt_context", function(ctx)
      local id = inferred(ctx)
      if not id then return common.err(404, "tenant could not be inferred: authenticate with a tenant JWT") end
      return common.get_token(ctx, id, false)
    end, "both" },
}

return M
