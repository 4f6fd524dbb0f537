-- The schema data of the API classes: for each operation its request body
-- schema and its 2xx response schemas, and the models they reference, as
-- generated from the published specs by scripts/gen-schemas.lua into
-- lua/provision/schemas/<name>.lua (format: docs/api-tables.md "Schema
-- data"). An API table names its file (`schemas = "agilicus"`, or per
-- generation); a file is loaded on first use, so a client of one API never
-- loads the others'. The validator (provision.validate) and the command
-- line (body flags, `help OP`) both read it through this module.
local schema = {}

local loaded = {}

-- The schema set `name` (lua/provision/schemas/<name>.lua), or nil, message.
function schema.load(name)
  if type(name) ~= "string" or not name:match("^[%w_]+$") then
    return nil, "no schema data named " .. tostring(name)
  end
  local set = loaded[name]
  if set then return set end
  local ok, s = pcall(require, "provision.schemas." .. name)
  if not ok or type(s) ~= "table" or type(s.operations) ~= "table" or type(s.definitions) ~= "table" then
    return nil, "schema data '" .. name .. "' failed to load: " .. tostring(s)
  end
  loaded[name] = s
  return s
end

-- The name of the schema set an API table's operations use: the
-- generation's `schemas`, else the file's (generation = a name or nil for
-- the default).
function schema.set_name(api, generation)
  if api.generations then
    local gen = api.generations[generation or api.default_generation]
    if gen and gen.schemas then return gen.schemas end
  end
  return api.schemas
end

-- The key of an operation in a schema set.
function schema.key(op)
  return op.method .. " " .. op.path
end

-- An operation's entry {content_type, body, responses} in a set, or nil.
function schema.operation(set, op)
  return set.operations[op.method .. " " .. op.path]
end

-- A definition's node by name, or nil.
function schema.definition(set, name)
  return set.definitions[name]
end

-- Follows `ref`s to the node they name (nil for a dangling one).
function schema.resolve(set, node)
  local hops = 0
  while node and node.ref do
    node = set.definitions[node.ref]
    hops = hops + 1
    if hops > 64 then return nil end
  end
  return node
end

-- The model a node names: its ref, or the single ref of an all_of wrapper.
function schema.model_name(node)
  if type(node) ~= "table" then return nil end
  if node.ref then return node.ref end
  local all = node.all_of
  if all and #all == 1 and all[1].ref then return all[1].ref end
  return nil
end

-- A merged view of a node: refs followed, all_of branches folded in (the
-- outer node's description and nullable win), for describing a field.
-- Returns a new table: type, types, format, enum, nullable, default,
-- description, read_only, required (list), properties (list),
-- additional_properties, items, any_of, one_of, bounds.
function schema.flatten(set, node, seen)
  seen = seen or {}
  local out = { required = {}, properties = {} }
  local function fold(n)
    if type(n) ~= "table" then return end
    if n.ref then
      if seen[n.ref] then return end
      seen[n.ref] = true
      if n.nullable then out.nullable = true end
      if n.description and out.description == nil then out.description = n.description end
      fold(set.definitions[n.ref])
      seen[n.ref] = nil
      return
    end
    for _, k in ipairs({ "type", "types", "format", "enum", "default", "description", "minimum", "maximum",
                         "min_length", "max_length", "min_items", "max_items", "items", "any_of", "one_of" }) do
      if out[k] == nil then out[k] = n[k] end
    end
    if n.nullable then out.nullable = true end
    if n.read_only then out.read_only = true end
    if n.additional_properties ~= nil and out.additional_properties == nil then
      out.additional_properties = n.additional_properties
    end
    for _, r in ipairs(n.required or {}) do out.required[#out.required + 1] = r end
    for _, p in ipairs(n.properties or {}) do out.properties[#out.properties + 1] = p end
    for _, b in ipairs(n.all_of or {}) do fold(b) end
  end
  fold(node)
  if out.type == nil and (#out.properties > 0 or type(out.additional_properties) == "table") then
    out.type = "object"
  end
  return out
end

local function join(prefix, name)
  if prefix == "" then return name end
  return prefix .. "." .. name
end

-- Dotted paths of every array inside a node, by the rules of the tables'
-- `arrays` (docs/api-tables.md): "a.b" = field b of object a; an array met
-- on the way is walked element by element; "m.*" = each value of map m;
-- the root is not listed. Sorted, without duplicates.
function schema.array_paths(set, node)
  local out, seen = {}, {}
  local function add(p)
    if p ~= "" and not seen[p] then seen[p] = true; out[#out + 1] = p end
  end
  local function walk(n, prefix, stack)
    if type(n) ~= "table" then return end
    if n.ref then
      if stack[n.ref] then return end
      stack[n.ref] = true
      walk(set.definitions[n.ref], prefix, stack)
      stack[n.ref] = nil
      return
    end
    for _, k in ipairs({ "all_of", "one_of", "any_of" }) do
      for _, b in ipairs(n[k] or {}) do walk(b, prefix, stack) end
    end
    if n.type == "array" or n.items then
      add(prefix)
      walk(n.items, prefix, stack)
    end
    for _, p in ipairs(n.properties or {}) do walk(p, join(prefix, p.name), stack) end
    if type(n.additional_properties) == "table" and next(n.additional_properties) ~= nil then
      walk(n.additional_properties, join(prefix, "*"), stack)
    end
  end
  walk(node, "", {})
  table.sort(out)
  return out
end

local function type_of(f)
  if f.type then return f.type end
  if f.types then return table.concat(f.types, "|") end
  return nil
end

-- The fields of a body, flattened for the command line and `help OP`: one
-- entry per property, in document order, nested objects' fields after
-- their parent with dotted paths ("access_scope.access_level"), a map's
-- values as "roles.*":
--   { path =, name =, type =, format =, enum =, nullable =, default =,
--     description =, read_only =, required = (in its parent object),
--     items = (item type), items_enum =, object = true (has fields below),
--     map = true ("*" path) }
function schema.fields(set, node)
  local list = {}
  local function walk(n, prefix, stack)
    local f = schema.flatten(set, n)
    local required = {}
    for _, r in ipairs(f.required) do required[r] = true end
    for _, p in ipairs(f.properties) do
      local pf = schema.flatten(set, p)
      local path = join(prefix, p.name)
      local e = { path = path, name = p.name, type = type_of(pf), format = pf.format, enum = pf.enum,
                  nullable = pf.nullable, default = pf.default, description = pf.description,
                  read_only = pf.read_only, required = required[p.name] or false }
      if pf.type == "array" and pf.items then
        local it = schema.flatten(set, pf.items)
        e.items, e.items_enum = type_of(it), it.enum
      end
      list[#list + 1] = e
      local ref = schema.model_name(p)
      if pf.type == "object" and not (ref and stack[ref]) then
        if #pf.properties > 0 then
          e.object = true
          if ref then stack[ref] = true end
          walk(p, path, stack)
          if ref then stack[ref] = nil end
        end
        if type(pf.additional_properties) == "table" and next(pf.additional_properties) ~= nil then
          local vf = schema.flatten(set, pf.additional_properties)
          local m = { path = path .. ".*", name = "*", type = type_of(vf), format = vf.format, enum = vf.enum,
                      nullable = vf.nullable, description = vf.description, map = true, required = false }
          if vf.type == "array" and vf.items then
            local it = schema.flatten(set, vf.items)
            m.items, m.items_enum = type_of(it), it.enum
          end
          list[#list + 1] = m
        end
      end
    end
  end
  walk(node, "", {})
  return list
end

return schema
