-- The fields of an operation's JSON body, one by one, from the request-body
-- schemas (lua/provision/schemas/, read through provision.schema): the
-- `--FIELD` flags on the command line, typed CSV columns of --input, and
-- the field list of `help OP`.
--
--   bodyfields.lookup(op, name) -> field or nil
--       A field of op's body by its name or dotted path, in snake_case or
--       kebab-case (`--first-name`, `--access-scope.access-level`); a map's
--       key is any word (`--roles.app` for `roles.*`). field = {name =
--       the dotted path to set, type =, required =, enum =, array = bool,
--       convert = function(text or list of texts) -> value or nil, err}.
--   bodyfields.help_lines(op, bp) -> lines about the body for `help OP`
--   bodyfields.merge(op, bp, base, fields) -> body, or nil, message
--       `fields` (name -> value, or a list of values for a repeated array
--       flag; a dotted name nests: metadata.team) set on a copy of `base`
--       (the --body object, or {}), each value converted by its field's
--       type when lookup knows the field.
-- Lua 5.1/5.4 common syntax.
local core = require("provision.core")
local schema = require("provision.schema")
local catalog = require("provision.cli.catalog")
local args = require("provision.cli.args")
local util = require("provision.cli.util")

local bodyfields = {}

-- op table -> its schema set's name (every API table and generation, once).
local set_names
local function set_name(op)
  if not set_names then
    set_names = {}
    for _, key in ipairs(catalog.API_KEYS) do
      local api = catalog.api_table(key)
      if api.generations then
        for g, gen in pairs(api.generations) do
          for _, o in ipairs(gen.operations) do set_names[o] = schema.set_name(api, g) end
        end
      end
      for _, o in ipairs(api.operations or {}) do set_names[o] = set_names[o] or schema.set_name(api) end
    end
  end
  return set_names[op]
end

-- op -> its body's fields (schema.fields) by path, plus the list in order.
local cache = setmetatable({}, { __mode = "k" })
local function fields_of(op)
  local c = cache[op]
  if c ~= nil then return c end
  c = false
  local name = set_name(op)
  local set = name and schema.load(name)
  local entry = set and schema.operation(set, op)
  if entry and entry.body then
    local list = schema.fields(set, entry.body)
    local by_path = {}
    for _, f in ipairs(list) do by_path[f.path] = f end
    c = { list = list, by_path = by_path }
  end
  cache[op] = c
  return c
end

local SCALARS = { string = true, integer = true, number = true, boolean = true }

-- How a text (or a list of texts, for a repeated flag) becomes the field's value.
local function converter(f)
  local function one(text, t, enum)
    if type(text) ~= "string" then return text end
    if not SCALARS[t or ""] then
      local v, err = core.json_decode(text)     -- an object or a free value: JSON text
      if v == nil and t and t ~= "string" then return nil, "expected JSON (" .. t .. "): " .. tostring(err) end
      if v == nil then return text end
      return v
    end
    return args.convert({ type = t, enum = enum }, text)
  end
  if f.type == "array" then
    return function(v)
      -- the whole array as JSON text: --tags='["a","b"]' (also given once as a repeated flag)
      local whole = type(v) == "string" and v or (type(v) == "table" and #v == 1 and type(v[1]) == "string" and v[1])
      if whole and whole:find("^%s*%[") then
        local decoded, err = core.json_decode(whole)
        if decoded == nil then return nil, tostring(err) end
        return decoded
      end
      local texts = type(v) == "table" and v or { v }
      local list = setmetatable({}, core.array_mt)
      for i, t in ipairs(texts) do
        local item, err = one(t, f.items, f.items_enum)
        if item == nil then return nil, "item " .. i .. ": " .. tostring(err) end
        list[i] = item
      end
      return list
    end
  end
  return function(v)
    if type(v) == "table" then return nil, "given more than once" end
    return one(v, f.type, f.enum)
  end
end

-- A field by the name given on the command line or in a CSV header.
function bodyfields.lookup(op, name)
  local c = fields_of(op)
  if not c or type(name) ~= "string" then return nil end
  local path = name:gsub("%-", "_")
  local f = c.by_path[path]
  local actual = path
  if not f then   -- a map's key: "roles.app" is "roles.*"
    local parent = path:match("^(.*)%.[^%.]+$")
    f = parent and c.by_path[parent .. ".*"]
  end
  if not f or f.object or f.read_only then return nil end
  return { name = actual, path = f.path, type = f.type, required = f.required, enum = f.enum,
           array = f.type == "array", convert = converter(f) }
end

local function flag(f)
  return "--" .. f.path:gsub("_", "-"):gsub("%*", "KEY")
end

local function label(f)
  local t = f.type or "any"
  if f.type == "array" then t = (f.items or "any") .. "[] (repeat the flag)" end
  if f.enum then
    local vals = {}
    for i, v in ipairs(f.enum) do vals[i] = tostring(v) end
    t = table.concat(vals, "|")
  end
  if f.format then t = t .. " (" .. f.format .. ")" end
  return t
end

-- The flags of op's body fields ("--first-name", ...), for "did you mean".
function bodyfields.flags(op)
  local out = {}
  local c = fields_of(op)
  if not c then return out end
  for _, f in ipairs(c.list) do
    if not f.object and not f.read_only and not f.map then out[#out + 1] = flag(f) end
  end
  return out
end

function bodyfields.help_lines(op, bp)
  local lines = {}
  local c = fields_of(op)
  if c then
    lines[#lines + 1] = "  body fields (as flags, or --input columns; flags override --body):"
    local rows = {}
    for _, f in ipairs(c.list) do
      if not f.object and not f.read_only then
        rows[#rows + 1] = { "    " .. flag(f), label(f), f.required and "required" or "",
                            f.description or "" }
      end
    end
    for _, l in ipairs(util.columns(rows)) do lines[#lines + 1] = l end
  elseif bp.arrays and #bp.arrays > 0 then
    lines[#lines + 1] = "  array fields: " .. table.concat(bp.arrays, ", ")
  end
  lines[#lines + 1] = "  with --input, a row's fields that are not parameters go into this body"
    .. " (a dotted name nests: a.b)"
  return lines
end

local function copy(t)
  if type(t) ~= "table" or t == core.null then return t end
  local c = {}
  for k, v in pairs(t) do c[k] = copy(v) end
  return setmetatable(c, getmetatable(t))
end

function bodyfields.merge(op, bp, base, fields)
  local body = copy(base) or {}
  if type(body) ~= "table" or getmetatable(body) == core.array_mt then
    return nil, bp.name .. " is not a JSON object, so fields cannot be added to it"
  end
  local names = {}
  for name in pairs(fields) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local value = fields[name]
    local field = bodyfields.lookup(op, name)
    local path = field and field.name or name
    if field and field.convert and (type(value) == "string" or (field.array and type(value) == "table")) then
      local v, err = field.convert(value)
      if v == nil then return nil, "--" .. name .. ": " .. tostring(err) end
      value = v
    end
    local t = body
    local parts = {}
    for part in path:gmatch("[^%.]+") do parts[#parts + 1] = part end
    for i = 1, #parts - 1 do
      local nxt = t[parts[i]]
      if nxt == nil then
        nxt = {}
        t[parts[i]] = nxt
      elseif type(nxt) ~= "table" or nxt == core.null then
        return nil, name .. ": " .. table.concat(parts, ".", 1, i) .. " is not an object"
      end
      t = nxt
    end
    t[parts[#parts]] = value
  end
  return body
end

return bodyfields
