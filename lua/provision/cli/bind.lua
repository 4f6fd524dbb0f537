-- Values for an operation's parameters: from the command line (positional
-- words, --NAME options, -p, --body) or from one --input row, converted to
-- each parameter's declared type, and the argument list for client:call.
-- Lua 5.1/5.4 common syntax.
local core = require("provision.core")
local args = require("provision.cli.args")
local catalog = require("provision.cli.catalog")
local bodyfields = require("provision.cli.bodyfields")
local util = require("provision.cli.util")

local bind = {}

local usage = util.usage

-- Checks that every required parameter has a value. Returns true or nil, message.
function bind.check_required(key, op, values, client_defaults)
  local req, extra = catalog.positional_params(op)
  for _, p in ipairs(req) do
    if values[p.name] == nil then
      return nil, string.format("%s: missing required parameter '%s' (usage: provision %s %s)", op.name, p.name,
        key, catalog.signature(op))
    end
  end
  for _, p in ipairs(extra) do
    if values[p.name] == nil and not (p.client_default and client_defaults[p.client_default]) then
      return nil, string.format("%s: missing parameter '%s': give it positionally%s (usage: provision %s %s)",
        op.name, p.name,
        p.client_default and (" or with --" .. p.client_default:gsub("_", "-")) or (" or with --" .. p.name),
        key, catalog.signature(op))
    end
  end
  return true
end

-- Body fields (name -> value) into the body parameter's value.
local function merge_fields(op, values, fields)
  if next(fields) == nil then return true end
  local bp = catalog.body_param(op)
  if not bp then
    local names = {}
    for n in pairs(fields) do names[#names + 1] = n end
    table.sort(names)
    return nil, string.format("%s has no parameter '%s' and takes no request body to put it in", op.name, names[1])
  end
  local base = values[bp.name]
  if type(base) == "string" then
    local decoded, err = core.json_decode(base)
    if decoded == nil then return nil, bp.name .. ": " .. tostring(err) end
    base = decoded
  end
  local body, err = bodyfields.merge(op, bp, base, fields)
  if not body then return nil, err end
  values[bp.name] = body
  return true
end

-- From the command line. parsed = {options, positional, flags}.
-- opts.partial (--input): required parameters may come from the rows.
-- Returns values (name -> value), and raises a usage error on bad input.
function bind.command_line(key, op, parsed, stdin, client_defaults, opts)
  opts = opts or {}
  local lookup = catalog.param_lookup(op)
  local values, fields = {}, {}
  local names = {}
  for _, p in ipairs(op.params) do names[#names + 1] = "--" .. p.name end
  local function set(p, text, token)
    local v, err = args.convert(p, text, values[p.name], stdin)
    if v == nil then usage("%s %s: %s", op.name, token or ("--" .. p.name), err) end
    values[p.name] = v
  end
  for _, o in ipairs(parsed.options) do
    local p = lookup(o.name)
    if not p then
      -- not a parameter: a field of the body, when the body's fields are known
      local field = bodyfields.lookup(op, o.name)
      if not field then
        local cands = {}
        for _, n in ipairs(names) do cands[#cands + 1] = n end
        for _, n in ipairs(args.flag_names) do cands[#cands + 1] = n end
        for _, n in ipairs(bodyfields.flags(op)) do cands[#cands + 1] = n end
        usage("%s has no parameter '%s'%s", op.name, o.name, util.did_you_mean("--" .. o.name, cands))
      end
      local value = o.value
      if value == nil and field.type == "boolean" then value = not o.negated end
      if value == nil then usage("%s needs a value (--%s=VALUE)", o.token, o.name) end
      if field.array then   -- a repeated flag adds an item
        local list = fields[field.name]
        if type(list) ~= "table" then list = {}; fields[field.name] = list end
        list[#list + 1] = value
      elseif fields[field.name] ~= nil then
        usage("%s given more than once", o.token)
      else
        fields[field.name] = value
      end
    elseif p.type == "boolean" then
      if o.negated then
        if o.value ~= nil then usage("%s takes no value", o.token) end
        values[p.name] = false
      elseif o.value == nil then
        values[p.name] = true
      else
        set(p, o.value, o.token)
      end
    else
      if o.value == nil then usage("%s needs a value (--%s=VALUE)", o.token, o.name) end
      set(p, o.value, o.token)
    end
  end
  for _, pair in ipairs(parsed.flags.params or {}) do
    local k, v = args.split_pair(pair)
    if not k then usage("-p needs NAME=VALUE (value not shown)") end
    local p = lookup(k)
    if not p then
      local pn = {}
      for _, q in ipairs(op.params) do pn[#pn + 1] = q.name end
      usage("%s has no parameter '%s'%s", op.name, k, util.did_you_mean(k, pn))
    end
    set(p, v, "-p " .. k)
  end
  if parsed.flags.body ~= nil then
    local bp = catalog.body_param(op)
    if not bp then usage("%s takes no request body (--body)", op.name) end
    set(bp, parsed.flags.body, "--body")
  end
  -- positional words fill the positional parameters not given as options
  local req, extra = catalog.positional_params(op)
  local slots = {}
  for _, p in ipairs(req) do if values[p.name] == nil then slots[#slots + 1] = p end end
  for _, p in ipairs(extra) do if values[p.name] == nil then slots[#slots + 1] = p end end
  local words = parsed.positional
  if #words > #slots then
    usage("%s: too many arguments (%d given; usage: provision %s %s)", op.name, #words, key, catalog.signature(op))
  end
  for i, w in ipairs(words) do set(slots[i], w, slots[i].name) end
  local ok, err = merge_fields(op, values, fields)
  if not ok then usage("%s", err) end
  if not opts.partial then
    local rok, rerr = bind.check_required(key, op, values, client_defaults)
    if not rok then usage("%s", rerr) end
  end
  return values
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- A JSON value given for parameter p (an --input JSON Lines row): kept
-- when it already has the declared type, else converted from its text.
local function row_value(p, v, from_text)
  if v == nil or v == core.null then return nil end
  if p["in"] == "body" or p.type == "object" then
    if type(v) == "string" then
      local decoded, err = core.json_decode(v)
      if decoded == nil then return nil, "is not valid JSON: " .. tostring(err) end
      return decoded
    end
    if type(v) ~= "table" then return nil, "must be a JSON object" end
    return v
  end
  if not from_text and p.type == "array" and type(v) == "table" then
    local list = setmetatable({}, core.array_mt)
    for i, item in ipairs(v) do
      local conv, err = args.convert({ type = p.items or "string", enum = p.items_enum }, tostring(item))
      if conv == nil then return nil, "item " .. i .. ": " .. tostring(err) end
      list[i] = conv
    end
    return list
  end
  if not from_text and type(v) == "boolean" and p.type == "boolean" then return v end
  if not from_text and type(v) == "number" and (p.type == "integer" or p.type == "number") then
    if p.type == "integer" and v ~= math.floor(v) then return nil, "expected an integer, got " .. tostring(v) end
    return v
  end
  if type(v) == "table" then return nil, "expected a " .. (p.type or "string") .. ", got a JSON " ..
    (getmetatable(v) == core.array_mt and "array" or "object") end
  local text = type(v) == "string" and v or tostring(v)
  if type(v) == "number" and math.type and math.type(v) == "integer" then text = string.format("%d", v) end
  return args.convert(p, text, nil)
end

-- One --input row (field -> value; `from_text` for CSV, whose cells are
-- text) over the command line's values. A field that is a parameter sets
-- it; any other goes into the body. Returns values or nil, message.
function bind.row(key, op, base, row, from_text, client_defaults)
  local lookup = catalog.param_lookup(op)
  local values = copy(base)
  local fields = {}
  local keys = {}
  for k in pairs(row) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = row[k]
    if not (from_text and v == "") and v ~= core.null then
      local p = lookup(k)
      if p then
        local conv, err = row_value(p, v, from_text)
        if conv == nil and err then return nil, k .. ": " .. tostring(err) end
        values[p.name] = conv
      else
        fields[k] = v
      end
    end
  end
  local ok, err = merge_fields(op, values, fields)
  if not ok then return nil, err end
  local rok, rerr = bind.check_required(key, op, values, client_defaults)
  if not rok then return nil, rerr end
  return values
end

-- values -> argument list for client:call (positional..., options)
function bind.call_args(op, values, call)
  local list, options = {}, {}
  local positional = {}
  for _, p in ipairs(op.params) do
    if p.required and not p.client_default then
      list[#list + 1] = values[p.name]
      positional[p.name] = true
    end
  end
  for k, v in pairs(values) do
    if not positional[k] then options[k] = v end
  end
  options._call = call
  list[#list + 1] = options
  return list
end

return bind
