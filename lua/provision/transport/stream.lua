-- Streams: the bulk engine's view of a transport. Requests are started one
-- at a time and come back as each one ends, so a slot is refilled the moment
-- a transfer finishes instead of when a whole batch does.
--
--   local s = stream.open(transport)
--   s:add(req, tag)        start req now; tag comes back with its answer
--   s:poll(timeout)        -> {tag1, resp1, tag2, resp2, ...}: requests that
--                           ended, waiting at most `timeout` seconds for the
--                           first (it may return early, and empty)
--   s:inflight()           -> number of requests started and not returned
--   s:close()              cancels what is unfinished (their answers are dropped)
--
-- A transport offers streams with transport:stream() (curl, coro and ngx do).
-- For any other transport (one with only send/now/sleep, such as a test's
-- wrapper), stream.open gives a stream that sends what was added as one
-- send() per poll: slower, same results.
local stream = {}

local SendStream = {}
SendStream.__index = SendStream

function SendStream:add(req, tag)
  local q = self.queue
  q[#q + 1] = req
  self.tags[#q] = tag
end

function SendStream:poll(timeout)
  local q, tags = self.queue, self.tags
  if #q == 0 then
    if timeout and timeout > 0 then self.transport.sleep(timeout) end
    return {}
  end
  self.queue, self.tags = {}, {}
  local answers = self.transport:send(q)
  local out = {}
  for i = 1, #q do
    out[#out + 1] = tags[i]
    out[#out + 1] = answers[i] or { kind = "internal", message = "transport gave no answer for this request",
                                    request_sent = true }
  end
  return out
end

function SendStream:inflight() return #self.queue end

function SendStream:close()
  self.queue, self.tags = {}, {}
end

function stream.open(transport)
  if type(transport.stream) == "function" then
    local s, err = transport:stream()
    if s then return s end
    return nil, err
  end
  return setmetatable({ transport = transport, queue = {}, tags = {} }, SendStream)
end

return stream
