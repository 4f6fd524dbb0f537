-- provision.transport.coro: the libcurl engine of provision.transport.curl,
-- without blocking the thread. For hosts that run their own event loop
-- (LuaSocket select loops, cqueues, luv, a C program); see docs/embedding.md,
-- "Driving provision from your own event loop".
--
-- send(requests) starts a batch (session:start) and, until it is done, hands
-- the batch's wait information {fds = {{fd, read, write}, ...}, timeout = s,
-- complete = bool} to the host:
--   * with opts.wait = function(info) ... end: calls it (it should return
--     once one of the fds is ready or info.timeout has passed; returning
--     early is fine);
--   * otherwise, inside a coroutine: coroutine.yield("provision.wait", info);
--     the scheduler resumes the coroutine when a fd is ready or the timeout
--     has passed (again, early is fine);
--   * otherwise (main thread, no wait function): blocks like the curl
--     transport.
-- sleep(s) does the same with {fds = {}, timeout = s} until s have passed,
-- so a retry delay never blocks the thread either.
--
-- The contract is that of provision.transport.curl (send, now, sleep, stats,
-- close, start), so `provision.UsersApi{transport = coro.new(...)}` works.
-- Closing the transport while a coroutine waits in send ends its unfinished
-- requests with kind "closed" (the next resume returns them); a coroutine
-- that is dropped without being resumed leaves nothing behind once it is
-- collected (the batch's finalizer takes its transfers out).
local core = require("provision.core")

-- The curl transport is loaded on first use only: loading every library
-- module inside nginx must not load it (tests/spec/nginx_host_spec.lua).
local function curl() return require("provision.transport.curl") end

-- Everything but new/send/sleep/now (start, stats, close) is the curl transport's.
local Coro = setmetatable({}, { __index = function(_, k) return curl()[k] end })
Coro.__index = Coro

-- Its answers are provision.core's responses, as the curl transport's
-- (a class says so itself: a subclass that makes its own does not inherit it).
Coro.core_responses = true

-- The first value a waiting coroutine yields.
Coro.WAIT = "provision.wait"

local yield = coroutine.yield
local isyieldable = coroutine.isyieldable or function()
  local co, main = coroutine.running()
  return co ~= nil and not main
end

function Coro.new(opts)
  opts = opts or {}
  if opts.wait ~= nil and type(opts.wait) ~= "function" then
    return nil, { kind = "invalid_argument", message = "wait must be a function" }
  end
  local self, err = curl().new(opts)
  if not self then return nil, err end
  setmetatable(self, Coro)
  local wait = opts.wait
  self.custom_wait = wait
  -- `now` and `sleep` are called as plain functions (transport.sleep(s)):
  -- closures over this transport's wait.
  self.wait = function(info)
    if wait then return wait(info) end
    if isyieldable() then return yield(Coro.WAIT, info) end
    return nil
  end
  self.now = core.now
  self.sleep = function(s)
    if not (type(s) == "number" and s > 0) then return end
    if not wait and not isyieldable() then return core.sleep(s) end
    local deadline = core.now() + s
    repeat
      self.wait({ fds = {}, timeout = deadline - core.now(), complete = true, sleep = true })
    until core.now() >= deadline
  end
  return self
end

-- The bulk engine's stream: waits for socket activity the same way send() does.
function Coro:stream()
  local custom = self.custom_wait
  return require("provision.transport.curl_stream").new(self.session, {
    wait = self.wait, sleep = self.sleep,
    can_wait = function() return custom ~= nil or isyieldable() end,
  })
end

function Coro:send(requests)
  local batch, err = self.session:start(requests)
  if not batch then return curl().all_failed(requests, err) end
  if self.custom_wait or isyieldable() then
    while not batch:step(0) do self.wait(batch:wait_info()) end
  else
    while not batch:step(1) do end   -- nobody to hand the wait to: block
  end
  local results, rerr = batch:results()
  batch:close()
  if not results then return curl().all_failed(requests, rerr) end
  return results
end

return Coro
