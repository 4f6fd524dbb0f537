-- sandbox/admin.lua: the /_sandbox/* endpoints (not part of any API; no auth,
-- no faults, no rate limit, not logged). See sandbox/README.md for the list.
local json = require "sandbox.json"
local jwt = require "sandbox.jwt"
local util = require "sandbox.util"
local router = require "sandbox.router"

local M = {}
local Admin = {}
Admin.__index = Admin

local function reply(status, body)
  return { status = status, headers = { { "Content-Type", "application/json" } }, body = assert(json.encode(body)) }
end

local function decode(req)
  if not req.body or req.body:match("^%s*$") then return nil, "empty body" end
  local v, err = json.decode(req.body)
  if v == nil then return nil, "invalid JSON: " .. tostring(err) end
  return v
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

local routes = {}

routes[#routes + 1] = { "GET", "/health", function(app)
  return 200, {
    status = "ok", json_backend = json.backend, jwt = jwt.available(),
    uptime_s = os.time() - app.started, base_url = app:base_url(),
  }
end }

routes[#routes + 1] = { "GET", "/log", function(app, _, q)
  local entries = app.log:list(tonumber(q.since), q.api)
  return 200, { entries = json.array(entries), count = #entries, last_seq = app.log.seq }
end }

routes[#routes + 1] = { "DELETE", "/log", function(app)
  app.log:clear()
  return 200, { cleared = true, last_seq = app.log.seq }
end }

routes[#routes + 1] = { "POST", "/reset", function(app)
  app:reset()
  return 200, { reset = true }
end }

routes[#routes + 1] = { "GET", "/faults", function(app)
  return 200, { rules = json.array(app.faults:describe()) }
end }

routes[#routes + 1] = { "POST", "/faults", function(app, req)
  local body, err = decode(req)
  if not body then return 400, { error = err } end
  local list = body
  if type(body) == "table" and body.rules then list = body.rules
  elseif type(body) == "table" and not json.is_array(body) then list = { body } end
  if type(list) ~= "table" then return 400, { error = "expected a rule, a list of rules or {rules: [...]}" } end
  if type(body) == "table" and body.seed then app.faults:seed(tonumber(body.seed) or 1) end
  local added = {}
  for i, spec in ipairs(list) do
    local rule, rerr = app.faults:add(spec)
    if not rule then return 400, { error = "rule " .. i .. ": " .. rerr } end
    added[#added + 1] = rule.id
  end
  return 201, { ids = json.array(added), rules = json.array(app.faults:describe()) }
end }

routes[#routes + 1] = { "DELETE", "/faults", function(app)
  app.faults:clear()
  return 200, { cleared = true }
end }

routes[#routes + 1] = { "DELETE", "/faults/{id}", function(app, _, _, params)
  if app.faults:remove(tonumber(params.id)) then return 200, { removed = true } end
  return 404, { error = "no such rule" }
end }

routes[#routes + 1] = { "GET", "/ratelimit", function(app)
  return 200, { limit = app.limiter.limit, window = app.limiter.window }
end }

routes[#routes + 1] = { "PUT", "/ratelimit", function(app, req)
  local body, err = decode(req)
  if not body then return 400, { error = err } end
  local limit, window = tonumber(body.limit), tonumber(body.window)
  if (body.limit and not limit) or (body.window and not window) then
    return 400, { error = "limit and window must be numbers" }
  end
  app.limiter:configure(limit, window)
  app.limiter:clear()
  return 200, { limit = app.limiter.limit, window = app.limiter.window }
end }

routes[#routes + 1] = { "GET", "/state", function(app)
  local d = app.store.data
  local active = 0
  for _, u in pairs(d.docspace.users) do
    if u.status == 1 and not u.removed then active = active + 1 end
  end
  return 200, {
    docspace = { users = count(d.docspace.users), active_users = active },
    outpost = { tenants = count(d.outpost.tenants) },
    agilicus = { orgs = count(d.agilicus.orgs), users = count(d.agilicus.users) },
    document360 = { team_accounts = count(d.d360.users), roles = #d.d360.roles, groups = #d.d360.groups },
  }
end }

-- DocSpace's PortalUsersApi cannot create users, so tests change its state here.
routes[#routes + 1] = { "POST", "/docspace/users", function(app, req)
  local body, err = decode(req)
  if type(body) ~= "table" then return 400, { error = err or "expected an object" } end
  if type(body.email) ~= "string" then return 400, { error = "email is required" } end
  local d = app.store.data.docspace
  local id = app.store.data.ids:next("uuid")
  local now = os.time()
  d.users[id] = {
    id = id, firstName = body.firstName or "", lastName = body.lastName or "",
    userName = body.email:match("^[^@]+"), email = body.email, title = body.title,
    type = body.type or "User", status = tonumber(body.status) or 1, activationStatus = 1,
    workFromDate = now, createDate = now, lastModified = now, cultureName = "en-GB", removed = false,
  }
  d.order[#d.order + 1] = id
  return 201, { id = id }
end }

routes[#routes + 1] = { "DELETE", "/docspace/users/{id}", function(app, _, _, params)
  local u = app.store.data.docspace.users[params.id]
  if not u then return 404, { error = "no such user" } end
  u.removed, u.status, u.lastModified = true, 2, os.time()
  return 200, { removed = true }
end }

routes[#routes + 1] = { "POST", "/shutdown", function(app)
  return 200, { stopping = true }, function() app.server:stop() end
end }

function M.new(app)
  local r = router.new()
  for _, x in ipairs(routes) do r:add(x[1], x[2], { handler = x[3] }) end
  return setmetatable({ app = app, router = r }, Admin)
end

function Admin:handle(req)
  local sub = req.path:sub(#"/_sandbox" + 1)
  local route, params, allowed = self.router:match(req.method, sub == "" and "/health" or sub)
  if not route then
    if allowed then return reply(405, { error = "method not allowed", allow = allowed }) end
    return reply(404, { error = "no such admin endpoint" })
  end
  local q = util.parse_query(req.query)
  local status, body, after = route.handler(self.app, req, q, params)
  local res = reply(status, body)
  res.after = after
  return res
end

return M
