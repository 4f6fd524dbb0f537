-- sandbox/app.lua: turns one parsed HTTP request into one response.
--
-- Pipeline for API paths: faults -> route -> auth -> rate limit -> handler,
-- then the request log. Every API answer carries X-Request-Id (also in its
-- log entry as request_id), as real APIs do for support tickets. /_sandbox/* goes to sandbox/admin.lua untouched by
-- faults, auth, rate limits and the log.
--
--   local app = App.new{config = cfg, fixture = fx, faults = {rules...}}
--   app:handle(req) -> res   (the sandbox.http handler)
-- luacheck: max line length 210
local json = require "sandbox.json"
local util = require "sandbox.util"
local router = require "sandbox.router"
local state = require "sandbox.state"
local ratelimit = require "sandbox.ratelimit"
local faults = require "sandbox.faults"
local reqlog = require "sandbox.log"
local http = require "sandbox.http"
local socket = require "socket"

local M = {}
local App = {}
App.__index = App

M.API_MODULES = { "docspace", "outpost", "outpost_latest", "agilicus", "document360" }

function M.new(opts)
  local cfg = opts.config
  local self = setmetatable({
    config = cfg,
    store = state.new(opts.fixture),
    limiter = ratelimit.new(cfg.rate.limit, cfg.rate.window),
    faults = faults.new(opts.fault_seed),
    log = reqlog.new(),
    apis = {},
    started = os.time(),
    requests = 0,
  }, App)
  -- request ids differ between two sandbox runs too
  -- (not math.random: that would shift the seeded fault sequence)
  self.request_prefix = string.format("sbx-%x%04x", self.started, math.floor((socket.gettime() % 1) * 65536))
  for _, name in ipairs(M.API_MODULES) do
    local api = require("sandbox.apis." .. name)
    local r = router.new()
    for _, route in ipairs(api.routes) do
      r:add(route[1], route[2], { operation = route[3], handler = route[4], security = route[5] })
    end
    self.apis[#self.apis + 1] = { mod = api, router = r }
  end
  -- longest prefix first, so /outpost-latest is not taken for /outpost
  table.sort(self.apis, function(a, b) return #a.mod.prefix > #b.mod.prefix end)
  for _, rule in ipairs(opts.faults or {}) do
    assert(self.faults:add(rule))
  end
  self.admin = require("sandbox.admin").new(self)
  return self
end

function App:base_url()
  return "http://" .. self.config.host .. ":" .. tostring(self.port or self.config.port)
end

-- Response helpers ---------------------------------------------------------

local function json_response(status, body, headers)
  local text, err = json.encode(body)
  if not text then
    text = '{"message":"sandbox could not encode its response"}'
    status = 500
    io.stderr:write("sandbox: json encode failed: ", tostring(err), "\n")
  end
  local h = { { "Content-Type", "application/json" } }
  for _, x in ipairs(headers or {}) do h[#h + 1] = x end
  return { status = status, headers = h, body = text }
end
M.json_response = json_response

local HTML = [[<html>
<head><title>%d %s</title></head>
<body>
<center><h1>%d %s</h1></center>
<hr><center>nginx</center>
</body>
</html>
]]

-- The request context handed to API handlers.
local Ctx = {}
Ctx.__index = Ctx

function Ctx:body_json()
  if self._body ~= nil then return self._body end
  local raw = self.req.body or ""
  if raw:match("^%s*$") then return nil, "request body is empty" end
  local v, err = json.decode(raw)
  if v == nil then return nil, "request body is not valid JSON: " .. tostring(err) end
  self._body = v
  return v
end

function Ctx.now() return os.time() end

function App:api_for(path)
  for _, a in ipairs(self.apis) do
    local p = a.mod.prefix
    if path == p or path:sub(1, #p + 1) == p .. "/" then return a, path:sub(#p + 1) end
  end
  return nil
end

function App.error_response(_, api, ctx, status, message, headers)
  local body = api.mod.error_body(status, message, ctx)
  return json_response(status, body, headers)
end

function App.fault_response(app, api, ctx, action)
  local status = action.status
  local headers = {}
  -- a 429 always says when to come back; other statuses when the rule says so
  if status == 429 or action.retry_after then
    headers[1] = { "Retry-After", tostring(action.retry_after or 1) }
  end
  if status == 502 or status == 503 or status == 504 then
    local reason = http.REASONS[status] or "Error"
    headers[#headers + 1] = { "Content-Type", "text/html" }
    return { status = status, headers = headers, body = HTML:format(status, reason, status, reason) }
  end
  return app:error_response(api, ctx, status, "injected fault: " .. (http.REASONS[status] or tostring(status)), headers)
end

-- The handler ------------------------------------------------------------------

function App:handle(req)
  if req.path == "/_sandbox" or req.path:sub(1, 10) == "/_sandbox/" then
    return self.admin:handle(req)
  end
  local t0 = socket.gettime()
  self.requests = self.requests + 1
  local request_id = self.request_prefix .. "-" .. self.requests
  local api, sub = self:api_for(req.path)
  if not api then
    return json_response(404, { message = "no API at this path; see sandbox/README.md", path = req.path },
      { { "X-Request-Id", request_id } })
  end
  local query, query_all = util.parse_query(req.query)
  local ctx = setmetatable({
    req = req, app = self, api = api.mod, config = self.config, data = self.store.data,
    query = query, query_all = query_all, params = {},
    base_url = self:base_url() .. api.mod.prefix, sandbox_url = self:base_url(),
  }, Ctx)
  local entry = { time = util.iso8601(), method = req.method, path = req.path, api = api.mod.name,
                  request_id = request_id }

  local res = self:process(api, sub, ctx, entry)
  local headers = {}   -- a copy: a handler may answer with a shared header list
  for i, h in ipairs(res.headers or {}) do headers[i] = h end
  headers[#headers + 1] = { "X-Request-Id", request_id }
  res.headers = headers
  entry.status = res.fault == "close" and 0 or res.status
  entry.duration_ms = math.floor((socket.gettime() - t0) * 1000 + 0.5)
  self.log:add(entry)
  return res
end

function App:process(api, sub, ctx, entry)
  local req = ctx.req
  -- 1. faults (they act like a proxy in front of the service)
  local delay, action = self.faults:decide(req.method, req.path, api.mod.name)
  if delay > 0 then http.sleep(delay / 1000) end
  local cut
  if action then
    entry.fault = action.kind == "status" and tostring(action.status) or action.kind
    if action.kind == "status" then return self:fault_response(api, ctx, action) end
    if action.kind == "close" then return { status = 0, fault = "close" } end
    cut = action.kind == "close_after" and "close" or action.kind
  end
  local res = self:serve(api, sub, ctx, entry)
  if cut then
    res.fault = cut
    entry.served = res.status   -- what the service did, though the client may never see it
  end
  return res
end

function App:serve(api, sub, ctx, entry)
  local req = ctx.req
  -- 2. route
  local route, params, allowed = api.router:match(req.method, sub == "" and "/" or sub)
  if not route then
    if allowed then
      entry.operation = nil
      return self:error_response(api, ctx, 405, "method not allowed", { { "Allow", allowed } })
    end
    return self:error_response(api, ctx, 404, "no such endpoint: " .. req.method .. " " .. req.path)
  end
  ctx.params, ctx.route = params, route
  entry.operation = route.operation
  -- 3. auth
  local cred, why
  if route.security == "none" then
    cred = { name = "anonymous", anonymous = true }
  else
    cred, why = api.mod.authenticate(req, self.config, route.security)
  end
  if not cred then
    entry.credential = why == "no credentials" and "none" or "invalid"
    return self:error_response(api, ctx, 401, why == "no credentials"
      and "authentication required" or "invalid credentials")
  end
  ctx.cred = cred
  entry.credential = cred.tenant and (cred.name .. "(" .. cred.tenant .. ")") or cred.name
  -- 4. rate limit, per credential (per client address when anonymous)
  local key = cred.anonymous and ("ip:" .. tostring(req.peer)) or (api.mod.name .. "/" .. cred.name .. (cred.tenant or ""))
  local ok, info = self.limiter:take(key, socket.gettime())
  ctx.rate = info
  if not ok then
    return self:error_response(api, ctx, 429, "rate limit exceeded: " .. info.limit .. " requests per "
      .. self.limiter.window .. " s", { { "Retry-After", tostring(info.retry_after) } })
  end
  -- 5. the operation
  local status, body, headers = route.handler(ctx)
  local res
  if type(body) == "table" then
    res = json_response(status, body, headers)
  elseif type(body) == "string" then
    res = { status = status, headers = headers or { { "Content-Type", "text/plain; charset=utf-8" } }, body = body }
  else
    res = { status = status, headers = headers or {}, body = "" }
  end
  if api.mod.decorate then api.mod.decorate(ctx, res) end
  return res
end

function App:reset()
  self.store:reset()
  self.limiter:clear()
end

return M
