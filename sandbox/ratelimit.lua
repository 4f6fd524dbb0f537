-- sandbox/ratelimit.lua: a sliding-window budget per key (credential name),
-- like DocSpace's "N requests per window per user".
--   local rl = ratelimit.new(limit, window_seconds)
--   local ok, info = rl:take(key, now)  -- info = {limit, remaining, reset, retry_after}
local M = {}
local RL = {}
RL.__index = RL

function M.new(limit, window)
  return setmetatable({ limit = limit, window = window, keys = {} }, RL)
end

function RL:configure(limit, window)
  self.limit, self.window = limit or self.limit, window or self.window
end

function RL:clear() self.keys = {} end

function RL:take(key, now)
  local q = self.keys[key]
  if not q then q = { head = 1, tail = 0 }; self.keys[key] = q end
  local cutoff = now - self.window
  while q.head <= q.tail and q[q.head] <= cutoff do
    q[q.head] = nil
    q.head = q.head + 1
  end
  local used = q.tail - q.head + 1
  local oldest = q[q.head]
  local reset = oldest and math.max(1, math.ceil(oldest + self.window - now)) or math.ceil(self.window)
  if used >= self.limit then
    return false, { limit = self.limit, remaining = 0, reset = reset, retry_after = reset }
  end
  q.tail = q.tail + 1
  q[q.tail] = now
  return true, { limit = self.limit, remaining = self.limit - used - 1, reset = reset }
end

return M
