-- A stream (provision.transport.stream) on provision.core's native stream
-- (session:stream(), docs/core-api.md): requests are added one at a time to
-- the session's multi handle, so all of them share its connections and
-- progress together, and one poll hands back every one that ended.
--
-- `wait(info)`, when given, is how the stream waits for socket activity
-- (the coro transport yields to its host there), used while `can_wait()`
-- says so; otherwise the stream blocks in stream:poll(timeout), at most
-- `max_step` seconds at a time.
local core = require("provision.core")

local CurlStream = {}
CurlStream.__index = CurlStream

local M = {}

function M.new(session, opts)
  opts = opts or {}
  local s, err = session:stream()
  if not s then return nil, err end
  return setmetatable({ s = s, wait = opts.wait, can_wait = opts.can_wait, sleep = opts.sleep or core.sleep,
                        max_step = opts.max_step }, CurlStream)
end

function CurlStream:add(req, tag)
  self.s:add(req, tag)
end

function CurlStream:inflight()
  return self.s:inflight()
end

function CurlStream:poll(timeout)
  local s = self.s
  timeout = timeout or 0
  if s:inflight() == 0 then
    if timeout > 0 then self.sleep(timeout) end
    return {}
  end
  if self.wait and (not self.can_wait or self.can_wait()) then
    local out = s:poll(0) or {}
    if #out == 0 and timeout > 0 then
      local info = s:wait_info()
      if info.timeout > timeout then info.timeout = timeout end
      self.wait(info)
      out = s:poll(0) or {}
    end
    return out
  end
  local step = self.max_step
  return s:poll((step and step < timeout) and step or timeout) or {}
end

function CurlStream:close()
  self.s:close()
end

return M
