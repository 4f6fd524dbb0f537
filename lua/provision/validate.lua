-- Checks a request body against its operation's schema (provision.schema,
-- generated from the published spec) before anything is sent: required
-- fields, types (integer vs number, array vs object), enums, the formats
-- that matter (email, uuid, date-time, date, int32), string lengths,
-- bounds, item counts, additionalProperties false, nullable, allOf/anyOf/
-- oneOf. Unknown fields of an open object (additionalProperties absent or
-- true, as most of Agilicus' models) pass.
--
-- A violation is an invalid_argument error whose message names each JSON
-- path ("user.email: required"; array elements are 1-based as in Lua:
-- "add_team_account_customer.content_permissions[1].access_scope"), the
-- first MAX_SHOWN of them; err.violations lists up to MAX_KEPT. Values are
-- never echoed (a body may hold a password), except an enum's.
--
-- Each operation's schema is compiled once into closures (cached by the
-- operation table); one check walks the body without building tables or
-- strings unless it finds a violation.
local json = require("provision.json")
local errors = require("provision.errors")
local schema = require("provision.schema")
local suggest = require("provision.suggest").suggest

local validate = {}

local MAX_SHOWN, MAX_KEPT = 5, 20
validate.MAX_SHOWN, validate.MAX_KEPT = MAX_SHOWN, MAX_KEPT

local null = json.null
local array_mt = json.array_mt
local floor, huge = math.floor, math.huge
local type, pairs, next, getmetatable, tostring = type, pairs, next, getmetatable, tostring

local math_type = math.type or function(v)
  if type(v) ~= "number" then return nil end
  return (v == floor(v) and v > -2^53 and v < 2^53) and "integer" or "float"
end

------------------------------------------------------------------ state
-- The one check in progress (checks never yield): the path to the value
-- being looked at, the violations found, and `trial` > 0 while an
-- anyOf/oneOf branch is tried (its violations are counted, not kept).
local path, depth = {}, 0
local found, kept, trial = 0, {}, 0

local function where()
  local parts = { path[1] }
  for i = 2, depth do
    local k = path[i]
    if type(k) == "number" then parts[i] = "[" .. k .. "]"
    elseif k:match("^[%a_][%w_]*$") then parts[i] = "." .. k
    else parts[i] = "[" .. string.format("%q", k) .. "]" end
  end
  return table.concat(parts)
end

local function fail(msg)
  found = found + 1
  if trial == 0 and found <= MAX_KEPT then kept[found] = where() .. ": " .. msg end
end

local function fail_at(key, msg)
  depth = depth + 1
  path[depth] = key
  fail(msg)
  depth = depth - 1
end

------------------------------------------------------------------ values

local function is_integer(v)
  if math_type(v) == "integer" then return true end
  return type(v) == "number" and v == floor(v) and v > -2^63 and v < 2^63
end

-- An object is a table that is not marked as an array and has no [1]; an
-- empty table is either.
local function is_object(v)
  return type(v) == "table" and getmetatable(v) ~= array_mt and v[1] == nil
end

local function is_array(v)
  if type(v) ~= "table" then return false end
  return getmetatable(v) == array_mt or v[1] ~= nil or next(v) == nil
end

local TYPES = {
  string = function(v) return type(v) == "string" end,
  integer = is_integer,
  number = function(v) return type(v) == "number" and v == v and v ~= huge and v ~= -huge end,
  boolean = function(v) return type(v) == "boolean" end,
  object = is_object,
  array = is_array,
}

local ARTICLE = { string = "a string", integer = "an integer", number = "a number", boolean = "a boolean",
                  object = "an object", array = "an array" }

local function describe(v)
  local t = type(v)
  if v == null then return "null" end
  if t == "number" then
    if is_integer(v) then return "an integer" end
    if v ~= v or v == huge or v == -huge then return "a number that is not finite" end
    return "a number with a fraction"
  end
  if t == "table" then
    if getmetatable(v) == array_mt or v[1] ~= nil then return "an array" end
    return next(v) == nil and "an empty table" or "an object"
  end
  return (ARTICLE[t] or ("a " .. t))
end

------------------------------------------------------------------ formats

local DAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function valid_date(y, m, d)
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  if m < 1 or m > 12 or d < 1 then return false end
  local max = DAYS[m]
  if m == 2 and ((y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0) then max = 29 end
  return d <= max
end

-- RFC 3339 section 5.6: a date-time needs its offset ("Z" or "+02:00"); a
-- timestamp without one names no instant (Document360's own examples lack
-- it, in responses, which are not validated).
local function date_time(s)
  local y, mo, d, h, mi, se, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt](%d%d):(%d%d):(%d%d)(.*)$")
  if not y or not valid_date(y, mo, d) then return false end
  if tonumber(h) > 23 or tonumber(mi) > 59 or tonumber(se) > 60 then return false end
  local off = rest:match("^%.%d+(.*)$") or rest
  if off == "Z" or off == "z" then return true end
  local oh, om = off:match("^[+-](%d%d):(%d%d)$")
  return oh ~= nil and tonumber(oh) <= 23 and tonumber(om) <= 59
end

local HEX8, HEX4, HEX12 = ("%x"):rep(8), ("%x"):rep(4), ("%x"):rep(12)
local UUID = "^" .. HEX8 .. "%-" .. HEX4 .. "%-" .. HEX4 .. "%-" .. HEX4 .. "%-" .. HEX12 .. "$"

-- Format -> check and what a failure says. Other formats (url, uri, byte,
-- password, int64, ...) are not checked.
local FORMATS = {
  -- pragmatic: one @, a non-empty local part and domain, no space or control character
  email = { function(s) return s:find("^[^%s%c@]+@[^%s%c@]+$") ~= nil end, "not an e-mail address" },
  uuid = { function(s) return s:find(UUID) ~= nil end, "not a UUID (8-4-4-4-12 hex digits)" },
  ["date-time"] = { date_time, "not an RFC 3339 date-time with an offset (2024-05-01T12:00:00Z)" },
  date = { function(s)
    local y, m, d = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
    return y ~= nil and valid_date(y, m, d)
  end, "not an RFC 3339 full-date (2024-05-01)" },
}

local function utf8_length(s)
  local _, n = s:gsub("[^\128-\191]", "")
  return n
end

------------------------------------------------------------------ compiling

local compile

-- A number as the same text under Lua 5.4 and LuaJIT (3, not 3.0).
local function number_text(v)
  if v == floor(v) and v > -2^63 and v < 2^63 then return string.format("%d", v) end
  for _, p in ipairs({ "%.15g", "%.17g" }) do
    local s = string.format(p, v)
    if tonumber(s) == v then return s end
  end
  return tostring(v)
end

local function enum_text(list)
  local parts = {}
  for i, e in ipairs(list) do
    if i > 12 then parts[#parts + 1] = "..." break end
    parts[#parts + 1] = type(e) == "string" and ("'" .. e .. "'") or type(e) == "number" and number_text(e) or tostring(e)
  end
  return table.concat(parts, ", ")
end

local function shown(v)
  if type(v) == "string" then
    if #v > 40 or v:find("[%c]") then return "" end
    return ", got '" .. v .. "'"
  end
  if type(v) == "number" then return ", got " .. number_text(v) end
  if type(v) == "boolean" then return ", got " .. tostring(v) end
  return ", got " .. describe(v)
end

local function compile_object(node, set, cache)
  local props, names = {}, {}
  local order = {}
  for i, p in ipairs(node.properties or {}) do
    props[p.name] = compile(p, set, cache)
    order[i] = p.name
    names[i] = p.name
  end
  -- a read-only field is required only in responses (OpenAPI 3.0)
  local ro = {}
  for _, p in ipairs(node.properties or {}) do
    local target = schema.resolve(set, p)
    if p.read_only or (target and target.read_only) then ro[p.name] = true end
  end
  local req = {}
  for _, r in ipairs(node.required or {}) do
    if not ro[r] then req[#req + 1] = r end
  end
  local nreq, nprops = #req, #order
  local ap = node.additional_properties
  local extra = type(ap) == "table" and compile(ap, set, cache) or nil
  local closed = ap == false
  if nreq == 0 and nprops == 0 and not extra and not closed then return nil end
  return function(v)
    for i = 1, nreq do
      if v[req[i]] == nil then fail_at(req[i], "required") end
    end
    for i = 1, nprops do
      local k = order[i]
      local child = v[k]
      if child ~= nil then
        depth = depth + 1
        path[depth] = k
        props[k](child)
        depth = depth - 1
      end
    end
    if extra or closed then
      local unknown
      for k, child in pairs(v) do
        if props[k] == nil then
          if type(k) ~= "string" then
            fail_at(tostring(k), "a field name must be a string, not " .. type(k))
          elseif extra then
            depth = depth + 1
            path[depth] = k
            extra(child)
            depth = depth - 1
          else
            unknown = unknown or {}
            unknown[#unknown + 1] = k
          end
        end
      end
      if unknown then
        table.sort(unknown)
        for _, k in ipairs(unknown) do
          local close = suggest(k, names, 2)
          fail_at(k, "unknown field" .. (#close > 0 and (" (did you mean " .. table.concat(close, " or ") .. "?)") or
            (" (allowed: " .. table.concat(names, ", ") .. ")")))
        end
      end
    end
  end
end

local function compile_array(node, set, cache)
  local items = node.items and compile(node.items, set, cache)
  local min, max = node.min_items, node.max_items
  return function(v)
    local n, count = #v, 0
    for _ in pairs(v) do count = count + 1 end
    if count ~= n then
      fail("expected an array (a table with keys 1.." .. n .. "), got one with " .. count .. " keys")
      return
    end
    if min and n < min then fail("needs at least " .. min .. " item(s), has " .. n) end
    if max and n > max then fail("takes at most " .. max .. " item(s), has " .. n) end
    if items then
      for i = 1, n do
        depth = depth + 1
        path[depth] = i
        items(v[i])
        depth = depth - 1
      end
    end
  end
end

-- Tries each branch without keeping its violations; returns how many passed.
local function passing(branches, v, stop_at)
  local ok = 0
  for i = 1, #branches do
    local before = found
    trial = trial + 1
    branches[i](v)
    trial = trial - 1
    if found == before then
      ok = ok + 1
      if ok >= stop_at then return ok end
    end
    found = before
  end
  return ok
end

local function branch_names(list)
  local parts = {}
  for i, b in ipairs(list) do
    parts[i] = b.ref or b.type or (b.types and table.concat(b.types, "|")) or "schema"
  end
  return table.concat(parts, ", ")
end

function compile(node, set, cache)
  if node.ref then
    local name, nullable = node.ref, node.nullable
    local f
    return function(v)
      if v == null and nullable then return end
      if not f then
        f = cache[name]
        if not f then
          local def = set.definitions[name]
          if not def then error("provision: schema data " .. tostring(set.source) .. " has no definition " .. name) end
          f = compile(def, set, cache)
          cache[name] = f
        end
      end
      f(v)
    end
  end
  local nullable = node.nullable
  local tcheck, tname
  if node.type then
    tcheck = TYPES[node.type]
    tname = ARTICLE[node.type]
  elseif node.types then
    local list = {}
    for i, t in ipairs(node.types) do list[i] = TYPES[t] end
    tcheck = function(v)
      for i = 1, #list do if list[i] and list[i](v) then return true end end
      return false
    end
    tname = "one of " .. table.concat(node.types, ", ")
  end
  local enum, etext
  if node.enum then
    enum = {}
    for _, e in ipairs(node.enum) do enum[e] = true end
    etext = enum_text(node.enum)
  end
  local fmt = node.format and FORMATS[node.format]
  local int32 = node.format == "int32"
  local min_len, max_len, minimum, maximum = node.min_length, node.max_length, node.minimum, node.maximum
  local object = (node.properties or node.required or node.additional_properties ~= nil)
    and compile_object(node, set, cache) or nil
  local array = (node.type == "array" or node.items or node.min_items or node.max_items)
    and compile_array(node, set, cache)
  local all, any, one = {}, {}, {}
  for i, b in ipairs(node.all_of or {}) do all[i] = compile(b, set, cache) end
  for i, b in ipairs(node.any_of or {}) do any[i] = compile(b, set, cache) end
  for i, b in ipairs(node.one_of or {}) do one[i] = compile(b, set, cache) end
  local nall, any_text, one_text = #all, node.any_of and branch_names(node.any_of), node.one_of and branch_names(node.one_of)

  -- what a string or number of the right type must also be
  local function scalar_checks(v)
    if enum and not enum[v] then fail("expected one of " .. etext .. shown(v)) return end
    if type(v) == "string" then
      if fmt and not fmt[1](v) then fail(fmt[2]) end
      -- a UTF-8 character takes 1 to 4 bytes: count only when the bytes cannot tell
      if min_len and (#v < min_len or (#v < 4 * min_len - 3 and utf8_length(v) < min_len)) then
        fail(min_len == 1 and "must not be empty" or ("needs at least " .. min_len .. " characters"))
      end
      if max_len and #v > max_len and utf8_length(v) > max_len then
        fail("takes at most " .. max_len .. " characters")
      end
    elseif type(v) == "number" then
      if int32 and (v < -2147483648 or v > 2147483647) then fail("out of the int32 range") end
      if minimum and v < minimum then fail("must be at least " .. number_text(minimum)) end
      if maximum and v > maximum then fail("must be at most " .. number_text(maximum)) end
    end
  end
  local refine = (enum or fmt or int32 or min_len or max_len or minimum or maximum) and scalar_checks or nil

  -- An allOf wrapper around one schema (how specs attach a description or
  -- nullable to a $ref): the schema itself.
  if nall == 1 and not node.type and not node.types and not refine and not object and not array
      and not any_text and not one_text then
    local only = all[1]
    if not nullable then return only end
    return function(v)
      if v == null then return end
      only(v)
    end
  end

  -- Fast paths for a node of one type and no allOf/anyOf/oneOf (nearly all):
  -- one type test, then only the checks the node has.
  if node.type and nall == 0 and not any_text and not one_text then
    local function mismatch(v)
      if v == null then
        if not nullable then fail("expected " .. tname .. ", got null") end
        return
      end
      fail("expected " .. tname .. ", got " .. describe(v))
    end
    local t = node.type
    if t == "string" or t == "boolean" then
      return function(v)
        if type(v) == t then
          if refine then refine(v) end
          return
        end
        mismatch(v)
      end
    elseif t == "object" then
      return function(v)
        if type(v) == "table" and v[1] == nil and getmetatable(v) ~= array_mt then
          if object then object(v) end
          return
        end
        mismatch(v)
      end
    elseif t == "array" then
      return function(v)
        if type(v) == "table" and (v[1] ~= nil or getmetatable(v) == array_mt or next(v) == nil) then
          array(v)
          return
        end
        mismatch(v)
      end
    elseif tcheck then
      return function(v)
        if tcheck(v) then
          if refine then refine(v) end
          return
        end
        mismatch(v)
      end
    end
  end

  return function(v)
    if v == null then
      if nullable then return end
      if tcheck then fail("expected " .. tname .. ", got null") return end
    elseif tcheck and not tcheck(v) then
      fail("expected " .. tname .. ", got " .. describe(v))
      return
    end
    if refine and (type(v) == "string" or type(v) == "number" or enum) then refine(v) end
    if type(v) == "table" then
      if object and is_object(v) then object(v) end
      if array and is_array(v) then array(v) end
    end
    for i = 1, nall do all[i](v) end
    if any_text and passing(any, v, 1) == 0 then fail("matches none of " .. any_text) end
    -- oneOf is checked as anyOf: an empty Lua table is both an array and an object
    if one_text and passing(one, v, 1) == 0 then fail("matches none of " .. one_text) end
  end
end

------------------------------------------------------------------ operations

-- op -> { name = body param name, check = fn } or false (nothing to check);
-- compiled definitions per schema set.
local compiled = setmetatable({}, { __mode = "k" })
local definitions = setmetatable({}, { __mode = "k" })

local function body_param(op)
  for _, p in ipairs(op.params) do
    if p["in"] == "body" then return p end
  end
  return nil
end

-- Compiles an operation's body check from the schema set `set_name`. An
-- API table without schema data (set_name nil) checks nothing; schema data
-- that lacks an operation the table has a body for is a defect, raised.
local function compile_op(set_name, op)
  local p = body_param(op)
  if not p or not set_name then return false end
  local set, err = schema.load(set_name)
  if not set then error("provision: " .. err) end
  local entry = schema.operation(set, op)
  if not entry or not entry.body then
    error("provision: schema data '" .. set_name .. "' has no request body for " .. schema.key(op))
  end
  local cache = definitions[set]
  if not cache then
    cache = {}
    definitions[set] = cache
  end
  return { name = p.name, check = compile(entry.body, set, cache), require = p.require }
end

-- The violations of one value against a compiled check: nil, or a list of
-- messages (at most MAX_KEPT) and the count found.
local function run(check, root, v)
  depth, found, trial = 1, 0, 0
  path[1] = root
  check(v)
  depth = 0
  if found == 0 then return nil end
  local list = {}
  for i = 1, math.min(found, MAX_KEPT) do list[i] = kept[i] end
  return list, found
end

local function invalid(opname, list, count)
  local shown_list = {}
  for i = 1, math.min(#list, MAX_SHOWN) do shown_list[i] = list[i] end
  local message = table.concat(shown_list, "; ")
  if count > #shown_list then message = message .. ("; and %d more"):format(count - #shown_list) end
  return errors.new({ kind = "invalid_argument", operation = opname, message = message,
                      violations = list, outcome = "not_applied", request_sent = false })
end

-- Checks the body among `values` (param name -> value) of operation `op`
-- against schema set `set_name`. Returns nil when it conforms (or there is
-- nothing to check), else an invalid_argument error. A string body (JSON
-- text, as the command line passes it) is decoded and checked.
function validate.body(set_name, op, values, opname)
  local c = compiled[op]
  if c == nil then
    c = compile_op(set_name, op)
    compiled[op] = c
  end
  if not c then return nil end
  local v = values[c.name]
  if v == nil or v == null then return nil end
  if type(v) == "string" then
    local decoded, derr = json.decode(v)
    if decoded == nil then
      return invalid(opname, { c.name .. ": not valid JSON (" .. tostring(derr) .. ")" }, 1)
    end
    v = decoded
  end
  local list, count = run(c.check, c.name, v)
  -- fields the server requires where the published spec does not say so
  -- (the API table's body param `require`, docs/api-tables.md)
  if c.require and type(v) == "table" then
    for _, field in ipairs(c.require) do
      if v[field] == nil or v[field] == null then
        list = list or {}
        count = (count or 0) + 1
        if #list < MAX_KEPT then list[#list + 1] = c.name .. "." .. field .. ": required" end
      end
    end
  end
  if list then return invalid(opname, list, count) end
  return nil
end

-- Checks any value against a node of schema set `set` (tests, the command
-- line): nil, or the list of violations and their count. `root` names the
-- value in messages.
function validate.value(set, node, v, root)
  local cache = definitions[set]
  if not cache then
    cache = {}
    definitions[set] = cache
  end
  return run(compile(node, set, cache), root or "value", v)
end

return validate
