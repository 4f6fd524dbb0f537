-- sandbox/log.lua: the request log tests read at GET /_sandbox/log.
-- Entries: {seq, time, method, path, status, api, operation, credential,
-- fault, duration_ms}. The path excludes the query string and the credential
-- is the configured credential's name: no secret value is ever recorded.
local M = {}
local Log = {}
Log.__index = Log

-- The newest `cap` entries, kept in entries[first..last] so that dropping
-- the oldest costs nothing however long the log is.
function M.new(cap) return setmetatable({ cap = cap or 10000, entries = {}, first = 1, last = 0, seq = 0 }, Log) end

function Log:add(e)
  self.seq = self.seq + 1
  e.seq = self.seq
  self.last = self.last + 1
  self.entries[self.last] = e
  if self.last - self.first + 1 > self.cap then
    self.entries[self.first] = nil
    self.first = self.first + 1
  end
end

function Log:clear() self.entries, self.first, self.last = {}, 1, 0 end

function Log:list(since, api)
  local out = {}
  for i = self.first, self.last do
    local e = self.entries[i]
    if (not since or e.seq > since) and (not api or e.api == api) then out[#out + 1] = e end
  end
  return out
end

return M
