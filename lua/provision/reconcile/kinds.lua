-- Field kinds: how the reconciler reads, compares, sends and shows one
-- managed field. A resource's field names its kind (docs/reconcile.md,
-- "Resources"); the reconciler has no other per-field code.
--
-- Each kind has:
--   parse(v, field)  roster cell (text, or a Lua value from a table roster)
--                    -> value, or nil, message. "" and nil are handled before
--                    (the field is then not managed for that row); "-" means
--                    the kind's empty value.
--   read(v)          the value found in a live record -> comparable value
--   equal(a, b)      after read/parse
--   wire(v)          the value as an operation argument
--   show(v)          short text for plans and journals
--   empty            the empty value ("-" in a roster)
local json = require("provision.json")

local kinds = {}

local null = json.null

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

local function scalar_text(v)
  if v == nil or v == null then return nil end
  if type(v) == "string" then return v end
  if type(v) == "number" or type(v) == "boolean" then return tostring(v) end
  return nil
end

local function sorted_unique(list)
  local seen, out = {}, {}
  for _, v in ipairs(list) do
    if not seen[v] then seen[v] = true; out[#out + 1] = v end
  end
  table.sort(out)
  return out
end

local function same_list(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local function split(s, sep)
  local out = {}
  for part in (s .. sep):gmatch("(.-)" .. sep) do
    part = trim(part)
    if part ~= "" then out[#out + 1] = part end
  end
  return out
end

---------------------------------------------------------------- text

kinds.text = {
  empty = "",
  parse = function(v)
    local s = scalar_text(v)
    if not s then return nil, "must be text" end
    return trim(s)
  end,
  read = function(v) return scalar_text(v) end,
  equal = function(a, b) return (a or "") == (b or "") end,
  wire = function(v) return v end,
  show = function(v)
    if v == nil then return "(none)" end
    return (("%q"):format(v):gsub("\\\n", "\\n"))
  end,
}

-- Text compared without regard to case (Document360 role titles).
kinds.text_ci = {
  empty = "",
  parse = kinds.text.parse,
  read = kinds.text.read,
  equal = function(a, b) return (a or ""):lower() == (b or ""):lower() end,
  wire = kinds.text.wire,
  show = kinds.text.show,
}

-- One of a list of values, matched without regard to case and kept in the
-- list's spelling: field.values, or the enum of an operation's parameter
-- (field.enum_of = {operation =, param =}, resolved by the reconciler into
-- field.values; the parameter's enum_numbers are accepted too).
kinds.enum = {
  empty = "",
  parse = function(v, field)
    local s = scalar_text(v)
    if not s then return nil, "must be text" end
    s = trim(s)
    local values = field.values or {}
    for _, x in ipairs(values) do
      if x:lower() == s:lower() then return x end
    end
    local n = tonumber(s)
    if n and field.numbers and field.numbers[n] then return field.numbers[n] end
    return nil, ("%q is not one of %s"):format(s, table.concat(values, ", "))
  end,
  read = function(v) return scalar_text(v) end,
  equal = function(a, b) return (a or ""):lower() == (b or ""):lower() end,
  wire = function(v) return v end,
  show = function(v) return v == nil and "(none)" or v end,
}

---------------------------------------------------------------- role_map

-- {app = {role, ...}}: roles per application, compared without regard to
-- order; an application with no roles is the same as none. In a roster:
-- "app:role;app:role2", a list {"app:role"}, or the map itself.
local function role_map(v)
  local out = {}
  local function add(app, role)
    if type(app) ~= "string" or type(role) ~= "string" then return false end
    app, role = trim(app), trim(role)
    if app == "" or role == "" or app:find("[:;%s]") or role:find("[:;%s]") then return false end
    out[app] = out[app] or {}
    table.insert(out[app], role)
    return true
  end
  if type(v) == "string" then
    for _, pair in ipairs(split(v, ";")) do
      local app, role = pair:match("^([^:]*):(.*)$")
      if not app or not add(app, role) then
        return nil, ("%q is not app:role"):format(pair)
      end
    end
  elseif type(v) == "table" then
    if v[1] ~= nil then
      for _, pair in ipairs(v) do
        local app, role = tostring(pair):match("^([^:]*):(.*)$")
        if not app or not add(app, role) then return nil, ("%q is not app:role"):format(tostring(pair)) end
      end
    else
      for app, list in pairs(v) do
        if type(list) == "string" then list = { list } end
        if type(list) ~= "table" then return nil, ("roles of %s must be a list"):format(tostring(app)) end
        for _, role in ipairs(list) do
          if not add(app, role) then return nil, ("%s:%s is not app:role"):format(tostring(app), tostring(role)) end
        end
      end
    end
  else
    return nil, "must be app:role;app:role"
  end
  for app, list in pairs(out) do out[app] = sorted_unique(list) end
  return out
end

kinds.role_map = {
  empty = {},
  parse = function(v) return role_map(v) end,
  read = function(v)
    local out = {}
    if type(v) ~= "table" then return out end
    for app, list in pairs(v) do
      if type(app) == "string" and type(list) == "table" and #list > 0 then
        local roles = {}
        for _, r in ipairs(list) do if type(r) == "string" then roles[#roles + 1] = r end end
        if #roles > 0 then out[app] = sorted_unique(roles) end
      end
    end
    return out
  end,
  equal = function(a, b)
    a, b = a or {}, b or {}
    for app, list in pairs(a) do
      if #list > 0 and not same_list(list, b[app] or {}) then return false end
    end
    for app, list in pairs(b) do
      if #list > 0 and not same_list(list, a[app] or {}) then return false end
    end
    return true
  end,
  wire = function(v)
    local out = {}
    for app, list in pairs(v or {}) do
      local copy = {}
      for i, r in ipairs(list) do copy[i] = r end
      out[app] = json.array(copy)
    end
    return out
  end,
  show = function(v)
    local parts = {}
    for app, list in pairs(v or {}) do
      for _, r in ipairs(list) do parts[#parts + 1] = app .. ":" .. r end
    end
    table.sort(parts)
    if #parts == 0 then return "(none)" end
    return table.concat(parts, ";")
  end,
}

---------------------------------------------------------------- set

-- An unordered list of strings: "a;b" or {"a", "b"}.
kinds.set = {
  empty = {},
  parse = function(v)
    if type(v) == "string" then return sorted_unique(split(v, ";")) end
    if type(v) ~= "table" then return nil, "must be a;b;c" end
    local list = {}
    for _, x in ipairs(v) do
      local s = scalar_text(x)
      if not s then return nil, "must be a list of text" end
      list[#list + 1] = trim(s)
    end
    return sorted_unique(list)
  end,
  read = function(v)
    if type(v) ~= "table" then return {} end
    local list = {}
    for _, x in ipairs(v) do
      local s = scalar_text(x)
      if s then list[#list + 1] = s end
    end
    return sorted_unique(list)
  end,
  equal = function(a, b) return same_list(a or {}, b or {}) end,
  wire = function(v)
    local copy = {}
    for i, x in ipairs(v or {}) do copy[i] = x end
    return json.array(copy)
  end,
  show = function(v)
    if not v or #v == 0 then return "(none)" end
    return table.concat(v, ";")
  end,
}

---------------------------------------------------------------- map

-- A map of text to text, compared as a whole (Outpost tenant metadata). In
-- a roster: columns PREFIX.key (the field's column_prefix), or a table.
kinds.map = {
  empty = {},
  parse = function(v)
    if type(v) ~= "table" then return nil, "must be a table of key = text" end
    local out = {}
    for k, x in pairs(v) do
      local s = scalar_text(x)
      if type(k) ~= "string" or not s then return nil, "must map text keys to text" end
      out[k] = s
    end
    return out
  end,
  read = function(v)
    local out = {}
    if type(v) ~= "table" then return out end
    for k, x in pairs(v) do
      local s = scalar_text(x)
      if type(k) == "string" and s then out[k] = s end
    end
    return out
  end,
  equal = function(a, b)
    a, b = a or {}, b or {}
    for k, v in pairs(a) do if b[k] ~= v then return false end end
    for k, v in pairs(b) do if a[k] ~= v then return false end end
    return true
  end,
  wire = function(v)
    local out = {}
    for k, x in pairs(v or {}) do out[k] = x end
    return out
  end,
  show = function(v)
    local parts = {}
    for k, x in pairs(v or {}) do parts[#parts + 1] = k .. "=" .. x end
    table.sort(parts)
    if #parts == 0 then return "(none)" end
    return table.concat(parts, ",")
  end,
}

---------------------------------------------------------------- json

-- Any JSON value, sent as given (create-only settings such as Document360
-- content permissions). In a CSV roster: JSON text.
kinds.json = {
  empty = {},
  parse = function(v)
    if type(v) == "string" then
      local decoded, err = json.decode(v)
      if decoded == nil then return nil, "is not JSON: " .. tostring(err) end
      return decoded
    end
    return v
  end,
  read = function(v) return v end,
  equal = function(a, b)
    return json.encode(a, { sort_keys = true }) == json.encode(b, { sort_keys = true })
  end,
  wire = function(v) return v end,
  show = function(v) return (json.encode(v, { sort_keys = true })) or "?" end,
}

return kinds
