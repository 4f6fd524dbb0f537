-- sandbox/apis/outpost_latest.lua: Outpost Tenants, current generation, under
-- /outpost-latest/api/v1: GET /tenants (cursor pages), PUT/GET/DELETE
-- /tenants/{tenant_id} (upsert body {metadata}; 201 on create, 200 on update),
-- GET /tenants/{tenant_id}/portal and /token. Shares the older generation's store.
-- luacheck: max line length 210
local json = require "sandbox.json"
local util = require "sandbox.util"
local common = require "sandbox.apis.outpost_common"

local M = { name = "outpost-latest", prefix = "/outpost-latest/api/v1",
            error_body = common.error_body, authenticate = common.authenticate }

local function upsert(ctx)
  local id = ctx.params.tenant_id
  local status, body = common.check_scope(ctx, id)
  if status then return status, body end
  local req_body
  if not (ctx.req.body or ""):match("^%s*$") then
    local err
    req_body, err = ctx:body_json()
    if req_body == nil then return common.err(422, "validation error", json.array({ err })) end
  end
  local ok, md, set = common.validate_metadata(req_body)
  if not ok then return common.err(422, "validation error", json.array(md)) end
  local t, created = common.upsert(ctx, id, md, set)
  return created and 201 or 200, common.render(t, true)
end

local function cursor_of(t) return util.b64encode(string.format("%d|%s", t.created_at, t.id)) end

local function parse_cursor(c)
  local raw = util.b64decode(c or "")
  local ts, id = (raw or ""):match("^(%-?%d+)|(.*)$")
  if not ts then return nil end
  return { created_at = tonumber(ts), id = id }
end

local function list(ctx)
  local q, qa = ctx.query, ctx.query_all
  local limit = 20
  if q.limit then
    limit = tonumber(q.limit)
    if not limit or limit ~= math.floor(limit) or limit < 1 or limit > 100 then
      return common.err(400, "validation error", json.array({ "limit must be an integer between 1 and 100" }))
    end
    limit = math.floor(limit)
  end
  local dir = q.dir or "desc"
  if dir ~= "asc" and dir ~= "desc" then
    return common.err(400, "validation error", json.array({ "dir must be asc or desc" }))
  end
  if q.next and q.prev then
    return common.err(400, "validation error", json.array({ "next and prev are mutually exclusive" }))
  end
  local cur = q.next or q.prev
  local key = cur and parse_cursor(cur)
  if cur and not key then return common.err(400, "validation error", json.array({ "invalid cursor" })) end
  -- id filter: id=x, id[]=x, id[0]=x (repeatable)
  local want
  for k, vs in pairs(qa) do
    if k == "id" or k == "id[]" or k:match("^id%[%d+%]$") then
      want = want or {}
      for _, v in ipairs(vs) do want[v] = true end
    end
  end
  local rows = {}
  for id, t in pairs(ctx.data.outpost.tenants) do
    if (not want or want[id]) and (not ctx.cred.tenant or ctx.cred.tenant == id) then rows[#rows + 1] = t end
  end
  local function before(a, b) -- position order for dir
    if a.created_at ~= b.created_at then
      if dir == "asc" then return a.created_at < b.created_at end
      return a.created_at > b.created_at
    end
    if dir == "asc" then return a.id < b.id end
    return a.id > b.id
  end
  table.sort(rows, before)
  local first, last
  if q.next then
    first = #rows + 1
    for i, t in ipairs(rows) do if before(key, t) then first = i; break end end
    last = math.min(#rows, first + limit - 1)
  elseif q.prev then
    local stop = 0
    for i, t in ipairs(rows) do if before(t, key) then stop = i end end
    last = stop
    first = math.max(1, stop - limit + 1)
  else
    first, last = 1, math.min(#rows, limit)
  end
  local models = json.array()
  for i = first, last do models[#models + 1] = common.render(rows[i], true) end
  local pagination = {
    order_by = "created_at", dir = dir, limit = limit,
    next = (last < #rows and last >= first) and cursor_of(rows[last]) or json.null,
    prev = (first > 1 and first <= last) and cursor_of(rows[first]) or json.null,
  }
  return 200, { models = models, pagination = pagination, count = #rows }
end

M.routes = {
  { "GET", "/healthz", "health_check", common.healthz, "none" },
  { "GET", "/tenants", "list_tenants", list, "both" },
  { "PUT", "/tenants/{tenant_id}", "upsert", upsert, "both" },
  { "GET", "/tenants/{tenant_id}", "get", function(ctx) return common.get(ctx, ctx.params.tenant_id, true) end, "both" },
  { "DELETE", "/tenants/{tenant_id}", "delete", function(ctx) return common.delete(ctx, ctx.params.tenant_id) end, "both" },
  { "GET", "/tenants/{tenant_id}/portal", "get_portal_url", function(ctx) return common.get_portal(ctx, ctx.params.tenant_id, true) end, "admin" },
  { "GET", "/tenants/{tenant_id}/token", "get_token", function(ctx) return common.get_token(ctx, ctx.params.tenant_id, true) end, "admin" },
}

return M
