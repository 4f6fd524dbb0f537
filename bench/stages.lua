-- The steps of one client call (Tenants:get("t1")), each alone with fixed
-- inputs, for bench/http_bench.lua's per-stage breakdown: timed with
-- os.clock there, and counted in instructions under callgrind by running
-- this file as a worker:
--   lua5.4 bench/stages.lua BASE_URL STAGE N   (N calls of one stage; N = 0: set-up only)
-- Loaded as a module (require "bench.stages") it only defines M.new.
local M = {}

M.TOKEN = "bench-token"
-- The stages in the order one call runs them; `part_of` names a stage that
-- includes this one (shown indented). A plain Tenants:get("t1") takes
-- provision.fastcall's path (no job); "engine" is the same call made as a
-- job (what a call with options, hooks or events, or an answer the fast
-- path hands over, goes through), with its steps after it.
M.ORDER = {
  { "call", "the whole call: Tenants:get(\"t1\") (provision.fastcall)" },
  { "fast_request", "request: its URL and table (fastcall)", part_of = "call" },
  { "send", "transfer: the transport's send (send_one(req))", part_of = "call" },
  { "request", "core session:request (transfer + response)", part_of = "send" },
  { "take", "take the answer: headers, decode, limiter, info", part_of = "call" },
  { "decode", "decode: json.decode of the body", part_of = "take" },
  { "engine", "the same call as a job: prepare + engine.call" },
  { "prepare", "bind + build + job (client:prepare)", part_of = "engine" },
  { "build", "build: the request template (request.build)", part_of = "prepare" },
  { "limiter", "limiter: limiter_for + reserve", part_of = "engine" },
  { "auth", "auth: the attempt's request and headers (attempt_request)", part_of = "engine" },
  { "observe", "observe + next_step", part_of = "engine" },
  { "finish", "finish: interpret the answer (finish)", part_of = "engine" },
}

-- Stage functions on a fresh client of `base` (nginx with /tenants/ of
-- bench/common.lua). Each runs one step once.
function M.new(base)
  local core = require "provision.core"
  local provision = require "provision"
  local engine = require "provision.engine"
  local fastcall = require "provision.fastcall"
  local json = require "provision.json"
  local request = require "provision.request"
  local t = assert(provision.Tenants({ server = base, auth = { bearer = M.TOKEN } }))
  for _ = 1, 50 do assert(t:get("t1")) end
  local job = assert(t:prepare("get", "t1"))
  local req = assert(t:attempt_request(job))
  local resp = t.transport:send({ req })[1]
  assert(resp.status == 200, "the /tenants/ location answers " .. tostring(resp.status))
  local body = resp.body
  local session = t.transport.session
  local op, values, name = job.op, { tenant_id = "t1" }, job.opname
  local light = assert(fastcall.light(t, "get", "t1"), "Tenants:get is not a fast-path call")
  light.limiter = engine.limiter_for(job)
  -- a plain client's answer becomes the call's info (its body the decoded
  -- one): each run of a step that reads it starts from the answer as it came
  local fns = {
    call = function() assert(t:get("t1")) end,
    fast_request = function() light:request() end,
    send = t.send_one and function() t.send_one(t.transport, req) end or function() t.transport:send({ req }) end,
    request = function() session:request(req) end,
    take = function() resp.body = body; assert(light:answer(resp, 1)) end,
    decode = function() json.decode(body) end,
    engine = function() assert(engine.call(assert(t:prepare("get", "t1")))) end,
    prepare = function() t:prepare("get", "t1") end,
    build = function() request.build(op, values, base, name) end,
    limiter = function() engine.limiter_for(job):reserve(core.now()) end,
    auth = function() t:attempt_request(job) end,
    observe = function() t:observe(job, resp, 1); t:next_step(job, req, resp, nil) end,
    finish = function() resp.body = body; t:finish(job, resp) end,
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
