-- Turns an operation entry plus the caller's arguments into a request
-- {method, url, headers, body}; validates every argument before anything is
-- sent. Auth is applied later (provision.auth).
local core = require("provision.core")
local json = require("provision.json")
local errors = require("provision.errors")

local request = {}

local math_type = math.type or function(v)
  if type(v) ~= "number" then return nil end
  return (v == math.floor(v) and v > -2^53 and v < 2^53) and "integer" or "float"
end

local function format_number(v)
  if math_type(v) == "integer" then return string.format("%d", v) end
  for _, p in ipairs({ "%.15g", "%.16g", "%.17g" }) do
    local s = string.format(p, v)
    if tonumber(s) == v then return s end
  end
  return string.format("%.17g", v)
end

-- Checks one value against a param's declared type; returns the wire value
-- (a string for path/query/header/cookie, the value itself for a body) or
-- nil, message.
local function check_scalar(p, v, what)
  local t = p.type or "string"
  local vt = type(v)
  if t == "string" then
    if vt == "number" and p.enum_numbers and p.enum_numbers[v] then
      return p.enum_numbers[v]
    end
    if vt == "number" and math_type(v) == "integer" and not p.enum then return format_number(v) end
    if vt ~= "string" then return nil, "expected a string, got " .. vt end
    if p.enum then
      for _, e in ipairs(p.enum) do if e == v then return v end end
      return nil, "expected one of " .. table.concat(p.enum, ", ") .. ", got '" .. v .. "'"
    end
    return v
  elseif t == "integer" then
    if vt ~= "number" or math_type(v) ~= "integer" then
      if vt == "number" and v == math.floor(v) and v > -2^63 and v < 2^63 then
        return string.format("%.0f", v)
      end
      return nil, "expected an integer, got " .. (vt == "number" and tostring(v) or vt)
    end
    return format_number(v)
  elseif t == "number" then
    if vt ~= "number" or v ~= v or v == math.huge or v == -math.huge then
      return nil, "expected a finite number, got " .. vt
    end
    return format_number(v)
  elseif t == "boolean" then
    if vt ~= "boolean" then return nil, "expected a boolean, got " .. vt end
    return v and "true" or "false"
  end
  return nil, "cannot send a value of type " .. t .. " in " .. (what or "this place")
end

local function check_array(p, v)
  if type(v) ~= "table" then return nil, "expected an array (table), got " .. type(v) end
  local n = #v
  for k in pairs(v) do
    if type(k) ~= "number" or k < 1 or k > n or k ~= math.floor(k) then
      return nil, "expected an array (keys 1..n), found key " .. tostring(k)
    end
  end
  local out = {}
  local item = { type = p.items or "string", enum = p.items_enum }
  for i = 1, n do
    local s, err = check_scalar(item, v[i], "an array")
    if not s then return nil, "item " .. i .. ": " .. err end
    out[i] = s
  end
  return out
end

local function header_safe(s)
  return core.header_value_ok(s)
end

-- Fill {placeholder} variables of a server URL.
local function server_url(template, vars)
  return (template:gsub("{([%w_]+)}", function(name)
    return vars and vars[name] and core.encode_path_segment(tostring(vars[name])) or "{" .. name .. "}"
  end))
end
request.server_url = server_url

-- The general builder: every kind of parameter, every check.
local function build_any(op, values, base, opname)
  local path = op.path
  local query, headers, cookies = {}, {}, {}
  local body, content_type

  for _, p in ipairs(op.params) do
    local v = values[p.name]
    local wire = p.wire or p.name
    if v == nil or v == json.null then
      if (p.required or p.spec_required) and v == nil then
        return nil, errors.invalid(opname, "missing required parameter '%s'", p.name)
      end
    elseif p["in"] == "path" then
      local s, err = check_scalar(p, v, "a path")
      if not s then return nil, errors.invalid(opname, "parameter '%s': %s", p.name, err) end
      if s == "" or s == "." or s == ".." then
        return nil, errors.invalid(opname, "parameter '%s': '%s' is not a valid path segment", p.name, s)
      end
      local enc = core.encode_path_segment(s)
      local n
      path, n = path:gsub("{" .. wire:gsub("%p", "%%%0") .. "}", function() return enc end)
      if n == 0 then
        return nil, errors.invalid(opname, "operation path has no placeholder for '%s'", wire)
      end
    elseif p["in"] == "query" then
      if p.type == "array" then
        local list, err = check_array(p, v)
        if not list then return nil, errors.invalid(opname, "parameter '%s': %s", p.name, err) end
        local key = wire .. (p.key_suffix or "")
        if p.explode == false then
          if #list > 0 then query[#query + 1] = { key, table.concat(list, ",") } end
        else
          for _, s in ipairs(list) do query[#query + 1] = { key, s } end
        end
      else
        local s, err = check_scalar(p, v, "a query")
        if not s then return nil, errors.invalid(opname, "parameter '%s': %s", p.name, err) end
        query[#query + 1] = { wire, s }
      end
    elseif p["in"] == "header" or p["in"] == "cookie" then
      local s, err = check_scalar(p, v, "a header")
      if not s then return nil, errors.invalid(opname, "parameter '%s': %s", p.name, err) end
      if not header_safe(s) or (p["in"] == "cookie" and s:find("[;,]")) then
        return nil, errors.invalid(opname, "parameter '%s' holds a character not allowed in a %s",
          p.name, p["in"])
      end
      if p["in"] == "header" then headers[#headers + 1] = { wire, s }
      else cookies[#cookies + 1] = wire .. "=" .. s end
    elseif p["in"] == "body" then
      content_type = p.content_type or "application/json"
      if type(v) == "string" then
        body = v    -- already encoded by the caller
      elseif type(v) ~= "table" then
        return nil, errors.invalid(opname, "parameter '%s': expected a table, got %s", p.name, type(v))
      else
        if p.type == "array" and next(v) == nil then v = json.array({}) end
        local enc, err = json.encode_body(v, p.arrays)
        if not enc then
          return nil, errors.invalid(opname, "parameter '%s' cannot be encoded as JSON: %s", p.name, err)
        end
        body = enc
      end
    end
  end
  if path:find("{[%w_]+}") then
    return nil, errors.invalid(opname, "path %s still has an unfilled placeholder", path)
  end

  local url = base:gsub("/+$", "") .. path
  if #query > 0 then url = url .. "?" .. core.build_query(query) end
  if #cookies > 0 then headers[#headers + 1] = { "Cookie", table.concat(cookies, "; ") } end
  if body then headers[#headers + 1] = { "Content-Type", content_type } end
  headers[#headers + 1] = { "Accept", op.accept or "application/json" }
  return {
    method = op.method, url = url, path = path, headers = headers, body = body,
  }
end

-- Operations are compiled once: the path cut at its placeholders, and the
-- Accept header list. A call that gives only path parameters (get, delete,
-- ...; query, header and body parameters absent) then only checks and
-- encodes its values and joins the pieces; anything else (another
-- parameter given, a value that is not a plain string, an enum, an empty or
-- dot segment, a missing value) goes through build_any, which gives the same
-- request or the same error.
local plans = setmetatable({}, { __mode = "k" })
local NOT_SIMPLE = {}

local function compile(op)
  local path = op.path
  local pieces, slots, others = {}, {}, {}
  local by_wire = {}
  for _, p in ipairs(op.params) do
    if p["in"] ~= "path" then
      others[#others + 1] = p   -- the fast path only when absent (and optional)
    else
      if (p.type or "string") ~= "string" or p.enum or p.enum_numbers then return NOT_SIMPLE end
      if by_wire[p.wire or p.name] then return NOT_SIMPLE end
      by_wire[p.wire or p.name] = p
    end
  end
  local pos = 1
  while true do
    local s, e, name = path:find("{([%w_]+)}", pos)
    if not s then break end
    local p = by_wire[name]
    if not p then return NOT_SIMPLE end   -- build_any reports the unfilled placeholder
    pieces[#pieces + 1] = path:sub(pos, s - 1)
    slots[#pieces] = p
    pos = e + 1
  end
  local tail = path:sub(pos)
  for _, p in pairs(by_wire) do
    local used = false
    for _, q in pairs(slots) do if q == p then used = true end end
    if not used then return NOT_SIMPLE end   -- no placeholder for it: build_any's error
  end
  -- read-only: shared by every request of the operation
  local headers = { { "Accept", op.accept or "application/json" } }
  return { pieces = pieces, slots = slots, tail = tail, headers = headers, n = #pieces, others = others }
end

local function trim_base(base)
  if base:byte(-1) == 47 then return (base:gsub("/+$", "")) end   -- "/"
  return base
end

-- op: operation entry; values: name -> caller value (already split from
-- positional/optional arguments); base: base URL.
-- Returns req {method, url, path, headers = {{name, value}}, body} or nil, err.
-- req.headers may be shared by every request of the operation: copy it
-- before changing it.
local function plan_of(op)
  local plan = plans[op]
  if not plan then
    plan = compile(op)
    plans[op] = plan
  end
  return plan
end

-- The compiled form of op (read-only), or nil when every call of it takes
-- build_any: {pieces, slots, tail, n, others, headers}. provision.fastcall
-- builds a one-slot path from it the way request.build does.
function request.plan(op)
  local plan = plan_of(op)
  if plan == NOT_SIMPLE then return nil end
  return plan
end

request.trim_base = trim_base

function request.build(op, values, base, opname)
  local plan = plan_of(op)
  if plan == NOT_SIMPLE then return build_any(op, values, base, opname) end
  local others = plan.others
  for i = 1, #others do
    local p = others[i]
    if values[p.name] ~= nil or p.required or p.spec_required then return build_any(op, values, base, opname) end
  end
  local pieces, slots = plan.pieces, plan.slots
  local path
  if plan.n == 1 then
    local v = values[slots[1].name]
    if type(v) ~= "string" or v == "" or v == "." or v == ".." then return build_any(op, values, base, opname) end
    path = pieces[1] .. core.encode_path_segment(v) .. plan.tail
  else
    local parts = {}
    for i = 1, plan.n do
      local v = values[slots[i].name]
      if type(v) ~= "string" or v == "" or v == "." or v == ".." then return build_any(op, values, base, opname) end
      parts[2 * i - 1] = pieces[i]
      parts[2 * i] = core.encode_path_segment(v)
    end
    parts[#parts + 1] = plan.tail
    path = table.concat(parts)
  end
  local prefix = plan.prefix   -- the base without its trailing "/", for the last base seen
  if plan.base ~= base then
    prefix = trim_base(base)
    plan.base, plan.prefix = base, prefix
  end
  return { method = op.method, url = prefix .. path, path = path, headers = plan.headers }
end

request.format_number = format_number
request.check_scalar = check_scalar
return request
