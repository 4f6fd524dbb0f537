-- The steps of one client call (Tenants:get("t1")), each alone with fixed
-- inputs, for bench/http_bench.lua's per-stage breakdown: timed with
-- os.clock there, and counted in instructions under callgrind by running
-- this file as a worker:
--   lua5.4 bench/stages.lua BASE_URL STAGE N   (N calls of one stage; N = 0: set-up only)
-- Loaded as a module (require "bench.stages") it only defines M.new.
local M = {}

M.TOKEN = "bench-token"
-- The stages in the order one call runs them; `part_of` names a stage that
-- includes this one (shown indented).
M.ORDER = {
  { "call", "the whole call: Tenants:get(\"t1\")" },
  { "prepare", "bind + build + job (client:prepare)" },
  { "build", "build: the request template (request.build)", part_of = "prepare" },
  { "limiter", "limiter: limiter_for + reserve" },
  { "auth", "auth: the attempt's request and headers (attempt_request)" },
  { "send", "transfer: the transport's send (send_one(req))" },
  { "request", "core session:request (transfer + response tables)", part_of = "send" },
  { "observe", "observe + next_step" },
  { "finish", "finish: interpret the answer (finish)" },
  { "decode", "decode: json.decode of the body", part_of = "finish" },
}

-- Stage functions on a fresh client of `base` (nginx with /tenants/ of
-- bench/common.lua). Each runs one step once.
function M.new(base)
  local core = require "provision.core"
  local provision = require "provision"
  local engine = require "provision.engine"
  local json = require "provision.json"
  local request = require "provision.request"
  local t = assert(provision.Tenants({ server = base, auth = { bearer = M.TOKEN } }))
  for _ = 1, 50 do assert(t:get("t1")) end
  local job = assert(t:prepare("get", "t1"))
  local req = assert(t:attempt_request(job))
  local resp = t.transport:send({ req })[1]
  assert(resp.status == 200, "the /tenants/ location answers " .. tostring(resp.status))
  local session = t.transport.session
  local op, values, name = job.op, { tenant_id = "t1" }, job.opname
  local fns = {
    call = function() assert(t:get("t1")) end,
    prepare = function() t:prepare("get", "t1") end,
    build = function() request.build(op, values, base, name) end,
    limiter = function() engine.limiter_for(job):reserve(core.now()) end,
    auth = function() t:attempt_request(job) end,
    send = t.send_one and function() t.send_one(t.transport, req) end or function() t.transport:send({ req }) end,
    request = function() session:request(req) end,
    observe = function() t:observe(job, resp, 1); t:next_step(job, req, resp, nil) end,
    finish = function() t:finish(job, resp) end,
    decode = function() json.decode(resp.body) end,
  }
  return { client = t, fns = fns, req = req, close = function() t:close() end }
end

-- Worker mode (run as a script with arguments).
if arg and arg[0] and arg[0]:match("stages%.lua$") and arg[3] then
  local root = arg[0]:match("^(.*)/bench/[^/]*$") or "."
  package.path = root .. "/?.lua;" .. package.path
  require("bench.common").setup(root)
  local st = M.new(arg[1])
  local fn = assert(st.fns[arg[2]], "no stage " .. arg[2])
  for _ = 1, tonumber(arg[3]) do fn() end
  st.close()
end

return M
