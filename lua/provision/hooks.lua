-- User hooks: functions a client (`hooks = {...}`) or one call
-- (`_call = {hooks = {...}}`) gives to see or change what goes out and what
-- comes back (README "Hooks and events"). The client's run first, then the
-- call's. They are called from Lua between transfers (never from inside a
-- libcurl callback or a transport), each under pcall, so a hook that raises
-- ends its call with a HookError instead of unwinding through the engine.
--
--   before_request(req, ctx)     before each attempt is sent; may change
--                                req.headers (a list of {name, value}),
--                                req.body, req.url, or return a new request;
--                                `nil, err` (or false) stops the call, with
--                                nothing sent
--   after_response(resp, ctx)    after each HTTP answer, before it is
--                                judged; may return a replacement response,
--                                or `nil, err` to end the call
--   on_retry(ctx, delay, reason) before the call waits `delay` s to send
--                                again (reason: "throttled", "http_503",
--                                "network", "token_refresh", ...)
--   on_error(err, ctx)           once, when the call fails; may return a
--                                replacement error table
--
-- ctx = {operation, operation_id, api, class, attempt, base_url,
-- security_scheme (the scheme's name, never its credential), read_back_of,
-- trace_id}: one table per call, so a hook may keep its own fields in it
-- between before_request and after_response.
local errors = require("provision.errors")
local did_you_mean = require("provision.suggest").did_you_mean

local hooks = {}

hooks.NAMES = { "after_response", "before_request", "on_error", "on_retry" }
local known = {}
for _, n in ipairs(hooks.NAMES) do known[n] = true end

-- A hooks table as an option: true, or nil and why.
function hooks.check(v)
  if type(v) ~= "table" then
    return nil, "must be a table of functions (" .. table.concat(hooks.NAMES, ", ") .. ")"
  end
  for k, f in pairs(v) do
    if not known[k] then
      return nil, "has unknown hook '" .. tostring(k) .. "'" .. did_you_mean(tostring(k), hooks.NAMES)
    end
    if type(f) ~= "function" then return nil, k .. " must be a function, got " .. type(f) end
  end
  return true
end

-- name -> list of functions from the client's hooks and the call's, or
-- false when there are none.
function hooks.merge(client_hooks, call_hooks)
  if not client_hooks and not call_hooks then return false end
  local out = {}
  for _, source in ipairs({ client_hooks or {}, call_hooks or {} }) do
    for _, name in ipairs(hooks.NAMES) do
      local f = source[name]
      if f then
        local list = out[name] or {}
        list[#list + 1] = f
        out[name] = list
      end
    end
  end
  return next(out) ~= nil and out or false
end

-- The error of a hook that raised or stopped its call.
function hooks.error(opname, name, message, cause)
  return errors.new({ kind = "hook", class = "HookError", hook = name, operation = opname,
                      message = name .. " hook " .. message, cause = cause })
end

-- What a hook's `nil, err` (or false, err) means: err itself when it is an
-- error table (a plain one gets the error methods), else a HookError.
function hooks.stopped(opname, name, err)
  if type(err) == "table" and err.kind ~= nil then
    if not errors.is_error(err) then err = errors.new(err) end
    if err.operation == nil then err.operation = opname end
    if err.hook == nil then err.hook = name end
    return err
  end
  return hooks.error(opname, name, "stopped the call" .. (err ~= nil and (": " .. tostring(err)) or ""), err)
end

-- Why a request a before_request hook left (or returned) cannot be sent, or nil.
function hooks.request_problem(req)
  if type(req) ~= "table" then return "is not a table" end
  if type(req.method) ~= "string" then return "has no method string" end
  if type(req.url) ~= "string" then return "has no url string" end
  if req.body ~= nil and type(req.body) ~= "string" then return "has a body that is not a string" end
  local headers = req.headers
  if headers == nil then return nil end
  if type(headers) ~= "table" then return "has headers that are not a list" end
  local n = #headers
  for k in pairs(headers) do
    if type(k) ~= "number" or k < 1 or k > n or k ~= math.floor(k) then
      return "has headers that are not a list of {name, value} pairs (key " .. tostring(k) .. ")"
    end
  end
  for i = 1, n do
    local h = headers[i]
    if type(h) ~= "table" or type(h[1]) ~= "string" or (type(h[2]) ~= "string" and type(h[2]) ~= "number") then
      return "has header " .. i .. " that is not a {name, value} pair of strings"
    end
  end
  for _, k in ipairs({ "timeout", "connect_timeout", "max_body" }) do
    if req[k] ~= nil and type(req[k]) ~= "number" then return "has a " .. k .. " that is not a number" end
  end
  return nil
end

-- Methods a request has while hooks see it: req:set_header(name, value)
-- replaces every header of that name (any case) or adds it; req:header(name)
-- reads the first; req:remove_header(name).
local Request = {}
Request.__index = Request

function Request.header(req, name)
  local lname = name:lower()
  for _, h in ipairs(req.headers) do
    if h[1]:lower() == lname then return h[2] end
  end
  return nil
end

function Request.remove_header(req, name)
  local lname, kept = name:lower(), {}
  for _, h in ipairs(req.headers) do
    if h[1]:lower() ~= lname then kept[#kept + 1] = h end
  end
  req.headers = kept
end

function Request.set_header(req, name, value)
  Request.remove_header(req, name)
  req.headers[#req.headers + 1] = { name, value }
end

function hooks.request(req)
  return setmetatable(req, Request)
end

return hooks
