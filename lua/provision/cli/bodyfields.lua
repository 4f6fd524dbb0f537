-- The fields of an operation's JSON body, one by one: an --input row's
-- columns that are not parameters go into the body here, and this is the
-- one place where the request-body schemas plug in (for `--FIELD` flags on
-- the command line, typed CSV columns and the field list of `help OP`).
--
--   bodyfields.lookup(op, name) -> field or nil
--       A field of op's body known by name: {name =, type =, required =,
--       enum =, ...}. The API tables name a body's schema (User,
--       AddTeamAccountCustomer) but not its fields, so today no field is
--       known by name: an option that is no parameter stays a usage error,
--       and CSV cells go into a body as text.
--   bodyfields.help_lines(op, bp) -> lines about the body for `help OP`
--   bodyfields.merge(op, bp, base, fields) -> body, or nil, message
--       `fields` (name -> value; a dotted name nests: metadata.team) set
--       on a copy of `base` (the --body object, or {}), each value
--       converted by its field's type when lookup knows the field.
-- Lua 5.1/5.4 common syntax.
local core = require("provision.core")

local bodyfields = {}

function bodyfields.lookup(op, name)   -- luacheck: no unused args
  return nil
end

function bodyfields.help_lines(op, bp)   -- luacheck: no unused args
  local lines = {}
  if bp.arrays and #bp.arrays > 0 then lines[#lines + 1] = "  array fields: " .. table.concat(bp.arrays, ", ") end
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
    if field and field.convert and type(value) == "string" then
      local v, err = field.convert(value)
      if v == nil then return nil, name .. ": " .. tostring(err) end
      value = v
    end
    local t = body
    local parts = {}
    for part in name:gmatch("[^%.]+") do parts[#parts + 1] = part end
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
