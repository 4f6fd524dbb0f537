-- Checks client options (client.new) and per-call settings (`_call`) before
-- anything is built or sent, so that a wrong key or value is an
-- invalid_argument error, never a raise from the core and never silently
-- ignored. Each check returns true, or nil and a message.
local core = require("provision.core")
local did_you_mean = require("provision.suggest").did_you_mean
local hooks = require("provision.hooks")
local events = require("provision.events")

local options = {}

local math_type = math.type or function(v)
  if type(v) ~= "number" then return nil end
  return (v == math.floor(v) and v > -2^53 and v < 2^53) and "integer" or "float"
end

local function is_integer(v)
  return math_type(v) == "integer" or (type(v) == "number" and v == math.floor(v) and v > -2^53 and v < 2^53)
end

local function seconds(v)
  if type(v) ~= "number" or v ~= v or v < 0 or v > 1e12 then
    return nil, "must be a number of seconds from 0 to 1e12"
  end
  return true
end

local function nonneg_integer(v)
  if not is_integer(v) or v < 0 then return nil, "must be an integer >= 0" end
  return true
end

local function string_value(v)
  if type(v) ~= "string" then return nil, "must be a string" end
  return true
end

-- A string that goes into a request line or header (user_agent, proxy):
-- no control character but tab, so no CR/LF can add a header.
local function header_text(v)
  if type(v) ~= "string" then return nil, "must be a string" end
  if (v:gsub("\t", "")):find("%c") then return nil, "must not hold a control character (CR, LF, NUL ...)" end
  return true
end

-- A string libcurl reads as C text (a file name, a password): no NUL, which
-- would cut it short.
local function c_text(v)
  if type(v) ~= "string" then return nil, "must be a string" end
  if v:find("\0", 1, true) then return nil, "must not hold a NUL byte" end
  return true
end

local function boolean_value(v)
  if type(v) ~= "boolean" then return nil, "must be true or false" end
  return true
end

local function func_value(v)
  if type(v) ~= "function" then return nil, "must be a function" end
  return true
end

local function keys_of(t)
  local names = {}
  for k in pairs(t) do names[#names + 1] = k end
  table.sort(names)
  return names
end

-- retries: false, true, a number of retries, or {attempts, base_delay, max_delay, max_retry_after}.
local retry_keys = { attempts = true, base_delay = true, max_delay = true, max_retry_after = true,
                     read_back = true, max_throttled = true }
local function retries_value(v)
  local t = type(v)
  if t == "boolean" then return true end
  if t == "number" then return nonneg_integer(v) end
  if t ~= "table" then return nil, "must be false, true, a number of retries or a table" end
  for k, x in pairs(v) do
    if not retry_keys[k] then
      return nil, "has unknown key '" .. tostring(k) .. "'" .. did_you_mean(tostring(k), keys_of(retry_keys))
    end
    if k == "attempts" then
      if not is_integer(x) or x < 1 then return nil, "attempts must be an integer >= 1" end
    elseif k == "read_back" then
      if type(x) ~= "boolean" then return nil, "read_back must be true or false" end
    elseif k == "max_throttled" then
      if not is_integer(x) or x < 0 then return nil, "max_throttled must be an integer >= 0" end
    else
      local ok = seconds(x)
      if not ok then return nil, k .. " must be a number of seconds >= 0" end
    end
  end
  return true
end

-- A header name is an RFC 9110 token.
local function header_name_ok(name)
  return type(name) == "string" and name:match("^[%w!#$%%&'*+%-.^_`|~]+$") ~= nil
end

-- headers: a list of {name, value} pairs (value a string or number), no CR, LF or NUL.
local function headers_value(v)
  if type(v) ~= "table" then return nil, "must be a list of {name, value} pairs" end
  local n = #v
  for k in pairs(v) do
    if type(k) ~= "number" or k < 1 or k > n or k ~= math.floor(k) then
      return nil, "must be a list of {name, value} pairs (found key " .. tostring(k) .. ")"
    end
  end
  for i = 1, n do
    local h = v[i]
    if type(h) ~= "table" or type(h[1]) ~= "string" or (type(h[2]) ~= "string" and type(h[2]) ~= "number") then
      return nil, "entry " .. i .. " must be a {name, value} pair of strings"
    end
    if not header_name_ok(h[1]) then
      return nil, "entry " .. i .. " has a header name that is not a token"
    end
    if not core.header_value_ok(tostring(h[2])) then
      return nil, "header " .. h[1] .. " holds CR, LF or NUL"
    end
  end
  return true
end
options.headers = headers_value

local function follow_value(v)
  if type(v) == "boolean" then return true end
  return nonneg_integer(v)
end

local function server_variables_value(v)
  if type(v) ~= "table" then return nil, "must be a table of name = value" end
  for k, x in pairs(v) do
    if type(k) ~= "string" or (type(x) ~= "string" and type(x) ~= "number") then
      return nil, "must map names to strings or numbers"
    end
  end
  return true
end

local function tenant_value(v)
  if type(v) == "string" or is_integer(v) then return true end
  return nil, "must be a string"
end

-- rate: "50/1" (requests / seconds) or requests per second.
local function rate_value(v)
  return require("provision.limiter").parse_rate(v)
end

-- The same as a client option: check() puts "client option rate" first.
local function rate_option(v)
  local ok, err = rate_value(v)
  if not ok then return nil, (tostring(err):gsub("^rate ", "")) end
  return ok
end

local function deadline_value(v)
  if type(v) ~= "number" or v ~= v or v <= 0 or v > 1e12 then
    return nil, "must be a number of seconds > 0"
  end
  return true
end

local function concurrency_value(v)
  if not is_integer(v) or v < 1 then return nil, "must be an integer >= 1" end
  return true
end
options.concurrency = concurrency_value
options.rate = rate_value

local function transport_value(v)
  local t = type(v)
  if (t ~= "table" and t ~= "userdata") or type(v.send) ~= "function" then
    return nil, "must be a transport object (with send, now, sleep)"
  end
  return true
end

-- A token URL is an http(s) URL with no user:password@ (it would be echoed
-- in error messages; credentials go in client_id/client_secret).
function options.token_url(url)
  if type(url) ~= "string" or not url:match("^[Hh][Tt][Tt][Pp][Ss]?://") then
    return nil, "token_url must be an http(s) URL"
  end
  local authority = url:match("^%a[%w+.-]*://([^/?#]*)")
  if authority and authority:find("@", 1, true) then
    return nil, "token_url must not hold user:password@; give client_id and client_secret"
  end
  return true
end

-- auth: a table of credentials (lua/provision/auth.lua); OAuth2 configs'
-- token URLs are checked here, at construction, as server URLs are.
local function auth_value(v)
  if type(v) ~= "table" then return nil, "must be a table of credentials" end
  for _, c in pairs(v) do
    if type(c) == "table" and c.token_url ~= nil then
      local ok, err = options.token_url(c.token_url)
      if not ok then return nil, err end
    end
  end
  return true
end

-- traceparent: true (a new W3C trace per call) or a traceparent to send as given.
local function traceparent_value(v)
  if v == true or v == false then return true end
  local ok, err = events.parse_traceparent(v)
  if not ok then return nil, err end
  return true
end

-- Client options: name -> check. The transport settings are those of
-- provision.transport.curl (core.session).
local client_checks = {
  generation = string_value, server = string_value, server_variables = server_variables_value,
  auth = auth_value, transport = transport_value, retries = retries_value, log = func_value,
  headers = headers_value, follow_redirects = follow_value, tenant_id = tenant_value,
  random = func_value, rate = rate_option, hooks = hooks.check, events = func_value, log_format = func_value,
  traceparent = traceparent_value, deadline = deadline_value, concurrency = concurrency_value,
  connect_timeout = seconds, timeout = seconds, verify = boolean_value,
  ca_file = c_text, ca_path = c_text, cert = c_text, key = c_text,
  key_password = c_text, proxy = header_text, user_agent = header_text,
  max_body = nonneg_integer, validate = boolean_value,
  max_connections = function(v)
    if not is_integer(v) or v < 1 or v > 10000 then return nil, "must be an integer from 1 to 10000" end
    return true
  end,
}

local call_checks = {
  timeout = seconds, connect_timeout = seconds, retries = retries_value, server = string_value,
  headers = headers_value, max_body = nonneg_integer, deadline = deadline_value, validate = boolean_value,
  hooks = hooks.check, traceparent = traceparent_value,
}

local function check(t, checks, what)
  for k, v in pairs(t) do
    local f = checks[k]
    if not f then
      return nil, "unknown " .. what .. " '" .. tostring(k) .. "'" .. did_you_mean(tostring(k), keys_of(checks))
    end
    local ok, err = f(v)
    if not ok then return nil, what .. " " .. k .. " " .. err end
  end
  return true
end

function options.check_client(opts)
  if type(opts) ~= "table" then return nil, "client options must be a table, got " .. type(opts) end
  return check(opts, client_checks, "client option")
end

function options.check_call(call)
  if type(call) ~= "table" then return nil, "_call must be a table, got " .. type(call) end
  return check(call, call_checks, "call setting")
end

return options
