-- sandbox/log.lua: the request log tests read at GET /_sandbox/log.
-- Entries: {seq, time, method, path, status, api, operation, credential,
-- fault, duration_ms}. The path excludes the query string and the credential
-- is the configured credential's name: no secret value is ever recorded.
local M = {}
local Log = {}
Log.__index = Log

function M.new(cap) return setmetatable({ cap = cap or 10000, entries = {}, seq = 0 }, Log) end

function Log:add(e)
  self.seq = self.seq + 1
  e.seq = self.seq
  local list = self.entries
  list[#list + 1] = e
  if #list > self.cap then table.remove(list, 1) end
end

function Log:clear() self.entries = {} end

function Log:list(since, api)
  local out = {}
  for _, e in ipairs(self.entries) do
    if (not since or e.seq > since) and (not api or e.api == api) then out[#out + 1] = e end
  end
  return out
end

return M
