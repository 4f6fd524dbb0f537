-- A stream (provision.transport.stream) on provision.core's non-blocking
-- batches: every request is a batch of one on the session's multi handle,
-- so all of them share its connections and progress together, and each is
-- collected the moment it ends.
--
-- `wait(info)`, when given, is how the stream waits for socket activity
-- (the coro transport yields to its host there), used while `can_wait()`
-- says so; otherwise the stream blocks in batch:step(timeout).
local core = require("provision.core")

local CurlStream = {}
CurlStream.__index = CurlStream

local M = {}

function M.new(session, opts)
  opts = opts or {}
  return setmetatable({ session = session, live = {}, early = {}, wait = opts.wait,
                        can_wait = opts.can_wait, sleep = opts.sleep or core.sleep,
                        max_step = opts.max_step }, CurlStream)
end

function CurlStream:add(req, tag)
  local batch, err = self.session:start({ req })
  if not batch then
    local early = self.early
    early[#early + 1] = tag
    early[#early + 1] = err
    return
  end
  local live = self.live
  live[#live + 1] = batch
  live[#live + 1] = tag
end

function CurlStream:inflight()
  return #self.live / 2 + #self.early / 2
end

-- Moves every finished batch's answer into out; returns how many moved.
local function collect(self, out)
  local live, j, moved = self.live, 0, 0
  for i = 1, #live, 2 do
    local batch, tag = live[i], live[i + 1]
    local results, err = batch:results()
    if results or (err and err.kind ~= "not_finished") then   -- done, or its session closed
      out[#out + 1] = tag
      out[#out + 1] = results and results[1] or err
      batch:close()
      moved = moved + 1
    else
      live[j + 1], live[j + 2] = batch, tag
      j = j + 2
    end
  end
  for i = j + 1, #live do live[i] = nil end
  return moved
end

function CurlStream:poll(timeout)
  local out = self.early
  self.early = {}
  timeout = timeout or 0
  if #out > 0 then timeout = 0 end
  local live = self.live
  if #live == 0 then
    if timeout > 0 then self.sleep(timeout) end
    return out
  end
  -- Any unfinished batch drives the whole multi handle.
  if self.wait and (not self.can_wait or self.can_wait()) then
    live[1]:step(0)
    if collect(self, out) == 0 and timeout > 0 then
      local info = live[1]:wait_info()
      if info.timeout > timeout then info.timeout = timeout end
      self.wait(info)
      live[1]:step(0)
      collect(self, out)
    end
    return out
  end
  local step = self.max_step
  live[1]:step((step and step < timeout) and step or timeout)
  collect(self, out)
  return out
end

function CurlStream:close()
  local live = self.live
  for i = 1, #live, 2 do live[i]:close() end
  self.live, self.early = {}, {}
end

return M
