-- Error objects: every failure the library reports is one of these tables,
-- returned as the second value after nil.
local errors = {}

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
      fields.class = kind_classes[fields.kind] or "Error"
    end
  end
  fields.kind = fields.kind or (fields.status and "http") or "error"
  return setmetatable(fields, Error)
end

function errors.invalid(operation, fmt, ...)
  return errors.new({ kind = "invalid_argument", operation = operation,
                      message = string.format(fmt, ...) })
end

errors.Error = Error
return errors
