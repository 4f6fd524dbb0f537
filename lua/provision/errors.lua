-- Error objects: every failure the library reports is one of these tables,
-- returned as the second value after nil. err.class is the class's name (a
-- string, "NotFoundError"); provision.errors.<Name> are the class objects,
-- in a small hierarchy (see "The hierarchy" below), and err:is(c) asks
-- whether err is a c or any subclass of it.
local errors = {}

-- Methods and metatable of error objects.
local Error = {}
Error.__index = Error

-- Class names by HTTP status, used unless an API's table overrides them.
local default_classes = {
  [400] = "BadRequestError",
  [401] = "UnauthorizedError",
  [403] = "ForbiddenError",
  [404] = "NotFoundError",
  [405] = "MethodNotAllowedError",
  [408] = "TimeoutError",
  [409] = "ConflictError",
  [410] = "GoneError",
  [413] = "PayloadTooLargeError",
  [415] = "UnsupportedMediaTypeError",
  [422] = "UnprocessableEntityError",
  [429] = "RateLimitedError",
  [500] = "InternalServerError",
  [502] = "BadGatewayError",
  [503] = "ServiceUnavailableError",
  [504] = "TimeoutError",
}

-- Class names for failures that are not an HTTP status.
local kind_classes = {
  invalid_argument = "InvalidArgumentError",
  timeout = "TimeoutError",
  connect = "ConnectionError",
  dns = "ConnectionError",
  network = "ConnectionError",
  tls = "TLSError",
  too_large = "ResponseTooLargeError",
  decode = "DecodeError",
  auth = "AuthError",
  closed = "ClosedError",
  protocol = "ProtocolError",
  aborted = "AbortedError",
  throttled = "RateLimitedError",
  hook = "HookError",
}

function errors.class_for_status(status, overrides)
  if overrides then
    local c = overrides[status] or overrides[tostring(status)]
    if c then return c end
    c = overrides[math.floor(status / 100) .. "XX"]
    if c then return c end
  end
  return default_classes[status] or "APIError"
end

function errors.class_for_kind(kind)
  return kind_classes[kind] or "Error"
end

local function one_line(s, max)
  s = tostring(s):gsub("[%c]+", " ")
  if #s > max then s = s:sub(1, max - 3) .. "..." end
  return s
end

function Error.__tostring(e)
  local parts = { e.class or "Error" }
  if e.operation then parts[#parts + 1] = "in " .. e.operation end
  if e.status then parts[#parts + 1] = "(HTTP " .. e.status .. ")" end
  if e.kind and not e.status then parts[#parts + 1] = "(" .. e.kind .. ")" end
  local s = table.concat(parts, " ")
  if e.message and e.message ~= "" then s = s .. ": " .. one_line(e.message, 300) end
  if e.attempts and e.attempts > 1 then s = s .. " [after " .. e.attempts .. " attempts]" end
  return s
end

function errors.is_error(v)
  return getmetatable(v) == Error
end

-- The hierarchy ----------------------------------------------------------------
--
-- A class object: {name, parent, doc}; tostring(c) is its name. An error
-- belongs to the class it names (err.class) and that class's ancestors, and
-- also to the family of its kind, since some names serve two kinds: a
-- TimeoutError is an HTTP answer (408, 504) or no answer at all, a
-- RateLimitedError a 429 or the client's own limiter, and an API's table
-- may name any status's class (Outpost calls a 501 NotFoundError). So a 504
-- is an HTTPError and a TimeoutError, a connect timeout a TransportError
-- and a TimeoutError. Every failed call whose err.outcome is "unknown" is
-- also an UnknownOutcomeError.
local Class = {}
Class.__index = Class
Class.__tostring = function(c) return c.name end

local classes = {}

local function define(name, parent, doc)
  local c = setmetatable({ name = name, parent = parent, doc = doc }, Class)
  classes[name] = c
  errors[name] = c
  return c
end

local Root = define("Error", nil, "any failure the library reports")
local APIError = define("APIError", Root, "the API answered with a failure: an HTTP status >= 400, "
  .. "or a failure inside a 2xx envelope (kind http or api)")
local HTTPError = define("HTTPError", APIError, "an answer with a failure status (kind http)")
define("PagingError", APIError, "a listing whose pages do not move on (a server that ignores skip)")
for _, name in ipairs({ "BadRequestError", "UnauthorizedError", "ForbiddenError", "NotFoundError",
                        "MethodNotAllowedError", "ConflictError", "GoneError", "PayloadTooLargeError",
                        "UnsupportedMediaTypeError", "UnprocessableEntityError", "InternalServerError",
                        "BadGatewayError", "ServiceUnavailableError" }) do
  define(name, HTTPError, "an HTTP status class")
end
local TransportError = define("TransportError", Root, "no usable answer: connect, dns, tls, timeout, "
  .. "network, protocol, too_large, closed, aborted")
local ConnectionError = define("ConnectionError", TransportError, "cannot connect, resolve, or the connection broke")
define("TLSError", TransportError, "the TLS handshake failed (certificate, protocol)")
define("ProtocolError", TransportError, "the answer was not valid HTTP")
define("ResponseTooLargeError", TransportError, "the answer exceeded max_body or the header cap")
define("ClosedError", TransportError, "the transport was closed")
define("AbortedError", TransportError, "the transfer was cancelled")
local TimeoutError = define("TimeoutError", Root, "a timeout: no answer in time (kind timeout), "
  .. "an HTTP 408 or 504, or a call's deadline")
local RateLimitedError = define("RateLimitedError", Root, "throttled: an HTTP 429, or the client's limiter "
  .. "would wait longer than max_retry_after (kind throttled)")
define("InvalidArgumentError", Root, "bad input, refused before anything was sent")
define("AuthError", Root, "no usable credential for the operation, or a token could not be fetched")
define("DecodeError", Root, "a 2xx answer that could not be decoded")
define("HookError", Root, "a user hook raised, or stopped the call (err.hook names it)")
define("InternalError", Root, "a bug or an unexpected state in the library or a transport")
local UnknownOutcomeError = define("UnknownOutcomeError", Root,
  "the call may have been applied (err.outcome == \"unknown\")")
local JournalError = define("JournalError", Root, "the journal could not be read or written")
define("JournalBusyError", JournalError, "the journal's database stayed locked")

-- The family each kind belongs to, besides the class it names.
local kind_family = {
  http = HTTPError, api = APIError,
  connect = ConnectionError, dns = ConnectionError, network = ConnectionError,
  tls = classes.TLSError, protocol = classes.ProtocolError, too_large = classes.ResponseTooLargeError,
  closed = classes.ClosedError, aborted = classes.AbortedError,
  timeout = TimeoutError, throttled = RateLimitedError,
  invalid_argument = classes.InvalidArgumentError, auth = classes.AuthError, decode = classes.DecodeError,
  hook = classes.HookError, internal = classes.InternalError, journal = JournalError,
}
-- A timeout with no answer is also a transport failure (a call's deadline,
-- which may pass between attempts, is not).
local kind_extra = { timeout = TransportError }

local function descends(c, target)
  while c do
    if c == target then return true end
    c = c.parent
  end
  return false
end

-- Whether v (an error object, or a plain error table with kind from a
-- transport) is a `target`: a class object or a class name.
function errors.is(v, target)
  if type(v) ~= "table" then return false end
  local t = target
  if type(target) == "string" then
    t = classes[target]
    if not t then return v.class == target end   -- a name outside the hierarchy: only itself
  elseif getmetatable(target) ~= Class then
    return false
  end
  if t == Root then return v.kind ~= nil or v.class ~= nil end
  if v.class == t.name then return true end
  if descends(classes[v.class], t) or descends(kind_family[v.kind], t) or (not v.deadline and descends(kind_extra[v.kind], t)) then
    return true
  end
  return t == UnknownOutcomeError and v.outcome == "unknown"
end

function Error.is(e, target) return errors.is(e, target) end

-- Class objects: c:is(other) is c == other or a subclass of it; c:includes(err) = err:is(c).
function Class.is(c, other)
  if type(other) == "string" then other = classes[other] end
  return descends(c, other)
end
function Class.includes(c, v) return errors.is(v, c) end

-- The class object of a name, or nil.
function errors.class(name) return classes[name] end

-- Every class, sorted by name.
function errors.classes()
  local list = {}
  for _, c in pairs(classes) do list[#list + 1] = c end
  table.sort(list, function(a, b) return a.name < b.name end)
  return list
end

-- err.message is at most this many bytes; a longer one (a server's 10 MB
-- JSON `message`) is cut with "...", and the body stays whole in err.body.
local MAX_MESSAGE = 1024
errors.MAX_MESSAGE = MAX_MESSAGE

local function cap(message)
  if #message <= MAX_MESSAGE then return message end
  local cut = MAX_MESSAGE - 3
  -- never end inside a UTF-8 sequence: back off over continuation bytes
  while cut > 0 do
    local b = message:byte(cut + 1)
    if b < 0x80 or b >= 0xC0 then break end
    cut = cut - 1
  end
  return message:sub(1, cut) .. "..."
end

-- fields: kind, status, class, message, body, headers, operation, attempts, ...
function errors.new(fields)
  if type(fields.message) == "string" then fields.message = cap(fields.message) end
  if not fields.class then
    if fields.status then
      fields.class = errors.class_for_status(fields.status)
    else
      fields.class = errors.class_for_kind(fields.kind)
    end
  end
  fields.kind = fields.kind or (fields.status and "http") or "error"
  return setmetatable(fields, Error)
end

-- A call refused before anything was sent (README: outcome "not_applied",
-- request_sent false).
function errors.invalid(operation, fmt, ...)
  return errors.new({ kind = "invalid_argument", operation = operation, outcome = "not_applied",
                      request_sent = false, message = string.format(fmt, ...) })
end

errors.metatable = Error
return errors
