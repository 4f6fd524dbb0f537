-- Structured events: one table per attempt, handed to a client's
-- `events = function(ev) ... end`; `log = function(line) ... end` gets the
-- same event formatted as one line (format below, or the client's
-- `log_format`). Fields (README "Hooks and events"):
--
--   operation, api, method, url and path (neither with the query), attempt,
--   status (an answer's) and/or kind + class (a failure's), duration (s),
--   delay_before (s) + retry_reason (why this attempt was made, nil on the
--   first), outcome ("ok" | "error" | "retry" | "read_back" | "redirect"),
--   retry_in (s, for retry and read_back), error_outcome (err.outcome, for
--   "error"), request_id, trace_id + span_id (with traceparent), bytes_sent
--   and bytes_received (body bytes), connection_reused, read_back_of, sent
--   (false when a before_request hook stopped the attempt).
--
-- An event never holds a credential, a header value other than the
-- server's request id, a query string or a body.
local core = require("provision.core")

local events = {}

-- Where servers put the id of a request, in this order (lower case: the
-- transports' header tables are keyed so).
events.REQUEST_ID_HEADERS = { "x-request-id", "x-correlation-id", "request-id" }

-- The request id of an answer: the API's own header (api.request_id_header)
-- first, then the common ones; nil when there is none.
-- A request id longer than this is cut: it goes into every error, event
-- and journal row, and a server decides its size.
local REQUEST_ID_MAX = 200

local function bounded(v)
  if #v > REQUEST_ID_MAX then return v:sub(1, REQUEST_ID_MAX) end
  return v
end

-- The first of the values of REQUEST_ID_HEADERS (in order) that is set:
-- for a caller that read them itself (provision.fastcall).
function events.first_request_id(a, b, c)
  if a ~= nil and type(a) == "string" and a ~= "" then return bounded(a) end
  if b ~= nil and type(b) == "string" and b ~= "" then return bounded(b) end
  if c ~= nil and type(c) == "string" and c ~= "" then return bounded(c) end
  return nil
end

function events.request_id(api, headers)
  if type(headers) ~= "table" then return nil end
  local own = api and api.request_id_header
  if own then
    local v = headers[own:lower()]
    if type(v) == "string" and v ~= "" then return bounded(v) end
  end
  local names = events.REQUEST_ID_HEADERS
  for i = 1, #names do
    local v = headers[names[i]]
    if v ~= nil and type(v) == "string" and v ~= "" then return bounded(v) end
  end
  return nil
end

-- The default log line, as provision has always printed it:
-- "UsersApi.get_user GET https://api.agilicus.com/users/u1 -> 200 (12.3 ms, attempt 1)".
function events.format(ev)
  local result = ev.status and tostring(ev.status) or ("error " .. tostring(ev.kind))
  return string.format("%s %s %s -> %s (%.1f ms, attempt %d)", ev.operation, ev.method, ev.url, result,
    (ev.duration or 0) * 1000, ev.attempt)
end

-- W3C Trace Context (https://www.w3.org/TR/trace-context/) ---------------------

local HEX32 = string.rep("%x", 32)
local HEX16 = string.rep("%x", 16)
local TRACEPARENT = "^00%-(" .. HEX32 .. ")%-(" .. HEX16 .. ")%-(%x%x)$"

-- A traceparent value given by the caller -> {trace_id, parent_id, flags},
-- or nil, why. Only version 00, lower-case hex, ids not all zero.
function events.parse_traceparent(s)
  if type(s) ~= "string" then return nil, "must be true or a traceparent string" end
  local trace_id, parent_id, flags = s:match(TRACEPARENT)
  if not trace_id or s:find("%u") then
    return nil, "must be a W3C traceparent: 00-<32 lower-case hex>-<16 lower-case hex>-<2 hex>"
  end
  if not trace_id:find("[^0]") or not parent_id:find("[^0]") then
    return nil, "must not have an all-zero trace id or parent id"
  end
  return { trace_id = trace_id, parent_id = parent_id, flags = flags }
end

local function random_hex(nbytes)
  local bytes = core.random_bytes(nbytes)
  if not bytes then   -- the CSPRNG failed: ids need only be unlikely to collide
    local t = {}
    for i = 1, nbytes do t[i] = string.char(math.random(0, 255)) end
    bytes = table.concat(t)
  end
  return core.hex(bytes)
end

-- A new trace: a random trace id, sampled.
function events.new_trace()
  return { trace_id = random_hex(16), flags = "01" }
end

-- A new span id (one per attempt).
function events.span_id()
  return random_hex(8)
end

return events
