-- Test support: read the committed contract fixtures (tests/contract/: the
-- published OpenAPI documents cut to the operations we cover, and the SDK
-- pages' method lists, both written by scripts/contract-fixtures.lua) and
-- list the operations in a flat, comparable form.
--
--   local specs = require 'support.specs'
--   local doc = specs.load('outpost.openapi.json')
--   local seed = specs.seed('outpost-Tenants')   -- tests/contract/seeds/outpost-Tenants.json
--   for _, op in ipairs(specs.operations(doc)) do ... end
--   local op = specs.find(doc, 'GET', '/{tenant_id}')
--
-- Every operation is
--   { method = "GET", path = "/x/{id}", operation_id = "getX" | nil,
--     params = { { name, ["in"], required, type, types, items, items_enum,
--                  enum, default, format, style, explode, schema }, ... },
--     body = nil | { required, content_types = {sorted}, content = { [ct] = schema } },
--     success = { 200, 201 } (sorted 2xx codes), responses = { [code] = response },
--     security = { "SchemeA", "SchemeB" } (effective: operation's, else the
--     document's; {} = none), deprecated = true | nil }
-- $refs (local, '#/...') are resolved; path-level parameters are merged
-- (an operation's own parameter with the same name and location wins);
-- style/explode are the effective ones (OpenAPI defaults filled in).
-- lua-cjson decodes JSON numbers as floats; compare with ==, not rawequal.
local cjson = require 'cjson'

local M = {}

local here = debug.getinfo(1, 'S').source:match('^@(.*)/[^/]*$') or '.'
M.dir = here .. '/../contract'
M.seeds_dir = M.dir .. '/seeds'

local NULL = cjson.null
local METHODS = { 'get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace' }

local cache = {}

local function read(path)
  local f, err = io.open(path, 'rb')
  if not f then error('cannot open ' .. path .. ': ' .. tostring(err), 2) end
  local s = f:read('*a')
  f:close()
  return s
end
M.read = read

function M.load(name)
  if not cache[name] then
    cache[name] = cjson.decode(read(M.dir .. '/' .. name))
  end
  return cache[name]
end

-- The method list of one SDK page ('outpost-Tenants' or 'outpost-Tenants.md'),
-- as scripts/contract/seed_pages.lua reads it; error codes are numbers again
-- ("4XX" stays a string).
function M.seed(name)
  name = name:gsub('%.md$', ''):gsub('%.json$', '')
  local seed = cjson.decode(read(M.seeds_dir .. '/' .. name .. '.json'))
  for _, op in pairs(seed.ops) do
    if op.errors then
      local errors = {}
      for code, class in pairs(op.errors) do errors[tonumber(code) or code] = class end
      op.errors = errors
    end
  end
  return seed
end

local function nn(v) -- JSON null -> nil
  if v == NULL then return nil end
  return v
end

-- Follow a JSON pointer '#/a/b~1c' inside doc.
local function pointer(doc, ref)
  if type(ref) ~= 'string' or ref:sub(1, 2) ~= '#/' then
    error('only local $refs are supported, got ' .. tostring(ref))
  end
  local node = doc
  for part in ref:sub(3):gmatch('[^/]+') do
    part = part:gsub('~1', '/'):gsub('~0', '~')
    if type(node) ~= 'table' then error('bad $ref ' .. ref) end
    node = node[part]
    if node == nil then error('dangling $ref ' .. ref) end
  end
  return node
end

-- Resolve a chain of $refs; returns the target and the last ref's name.
function M.resolve(doc, node)
  local name
  local hops = 0
  while type(node) == 'table' and node['$ref'] do
    name = node['$ref']:match('([^/]+)$')
    node = pointer(doc, node['$ref'])
    hops = hops + 1
    if hops > 64 then error('$ref loop') end
  end
  return node, name
end

-- The model name of a schema: its $ref target, or the single $ref of an
-- allOf wrapper ({allOf = [{$ref}], description = ...}).
function M.model_name(doc, schema)
  if type(schema) ~= 'table' then return nil end
  if schema['$ref'] then return (schema['$ref']:match('([^/]+)$')) end
  local all = nn(schema.allOf)
  if type(all) == 'table' and #all == 1 and all[1]['$ref'] then
    return (all[1]['$ref']:match('([^/]+)$'))
  end
  return nil
end

-- The JSON type of a schema: its `type`, or "object" for allOf/properties,
-- or nil. For oneOf/anyOf, `types` lists the branches' types.
function M.type_of(doc, schema)
  local s = M.resolve(doc, schema)
  if type(s) ~= 'table' then return nil end
  if nn(s.type) then return s.type end
  local alts = nn(s.oneOf) or nn(s.anyOf)
  if alts then
    local types = {}
    for _, b in ipairs(alts) do types[#types + 1] = M.type_of(doc, b) end
    return nil, types
  end
  if nn(s.allOf) then
    for _, b in ipairs(s.allOf) do
      local t = M.type_of(doc, b)
      if t then return t end
    end
    return 'object'
  end
  if nn(s.properties) or nn(s.additionalProperties) then return 'object' end
  if nn(s.items) then return 'array' end
  return nil
end

-- Dotted paths of every array inside a schema (see docs/api-tables.md):
-- "a.b" = field b of object a; an array met on the way is walked element
-- by element, so "perms.scope.langs" is the `langs` of the `scope` of each
-- element of `perms`; "m.*" = each value of map m (additionalProperties).
-- The root of a body that is itself an array is not listed (its type says
-- so); its elements' fields are listed from the element. Sorted, without
-- duplicates.
function M.array_paths(doc, schema)
  local out, seen = {}, {}
  local function add(p)
    if p ~= '' and not seen[p] then seen[p] = true; out[#out + 1] = p end
  end
  local function join(prefix, name)
    if prefix == '' then return name end
    return prefix .. '.' .. name
  end
  local function walk(s, prefix, stack)
    if type(s) ~= 'table' then return end
    if s['$ref'] then
      local ref = s['$ref']
      if stack[ref] then return end
      stack[ref] = true
      walk(M.resolve(doc, s), prefix, stack)
      stack[ref] = nil
      return
    end
    for _, k in ipairs({ 'allOf', 'oneOf', 'anyOf' }) do
      local alts = nn(s[k])
      if type(alts) == 'table' then
        for _, b in ipairs(alts) do walk(b, prefix, stack) end
      end
    end
    if nn(s.type) == 'array' or nn(s.items) then
      add(prefix)
      walk(nn(s.items), prefix, stack)
    end
    local props = nn(s.properties)
    if type(props) == 'table' then
      for name, ps in pairs(props) do walk(ps, join(prefix, name), stack) end
    end
    local ap = nn(s.additionalProperties)
    if type(ap) == 'table' and next(ap) ~= nil then
      walk(ap, join(prefix, '*'), stack)
    end
  end
  walk(schema, '', {})
  table.sort(out)
  return out
end

local function param_entry(doc, raw)
  local p = M.resolve(doc, raw)
  local schema = nn(p.schema) or {}
  local s, schema_name = M.resolve(doc, schema)
  local t, types = M.type_of(doc, schema)
  local e = {
    name = p.name,
    ['in'] = p['in'],
    required = nn(p.required) == true,
    type = t,
    types = types,
    enum = nn(s.enum),
    default = nn(s.default),
    format = nn(s.format),
    schema = schema_name,
    raw = p,
  }
  -- an array inside oneOf (string | array of string) still has items
  local arr = s
  if t ~= 'array' and types then
    for _, b in ipairs(nn(s.oneOf) or nn(s.anyOf) or {}) do
      if M.type_of(doc, b) == 'array' then arr = M.resolve(doc, b) end
    end
  end
  if nn(arr.items) then
    local it = M.resolve(doc, arr.items)
    e.items = M.type_of(doc, arr.items)
    e.items_enum = nn(it.enum)
  end
  local default_style = (e['in'] == 'query' or e['in'] == 'cookie') and 'form' or 'simple'
  e.style = nn(p.style) or default_style
  local explode = nn(p.explode)
  if explode == nil then explode = (e.style == 'form') end
  e.explode = explode
  return e
end

local function security_names(list)
  local names = {}
  for _, req in ipairs(list) do
    local keys = {}
    for k in pairs(req) do keys[#keys + 1] = k end
    table.sort(keys)
    if #keys > 0 then names[#names + 1] = table.concat(keys, '+') end
  end
  return names
end

local function build(doc)
  local list = {}
  local paths = {}
  for path in pairs(doc.paths) do paths[#paths + 1] = path end
  table.sort(paths)
  for _, path in ipairs(paths) do
    local item = doc.paths[path]
    local shared = nn(item.parameters) or {}
    for _, m in ipairs(METHODS) do
      local o = nn(item[m])
      if o then
        local op = {
          method = m:upper(),
          path = path,
          operation_id = nn(o.operationId),
          deprecated = nn(o.deprecated) == true or nil,
          params = {},
          responses = {},
          success = {},
          raw = o,
        }
        local own = {}
        for _, raw in ipairs(nn(o.parameters) or {}) do
          local e = param_entry(doc, raw)
          own[e['in'] .. ':' .. e.name] = true
          op.params[#op.params + 1] = e
        end
        for _, raw in ipairs(shared) do
          local e = param_entry(doc, raw)
          if not own[e['in'] .. ':' .. e.name] then table.insert(op.params, 1, e) end
        end
        local rb = nn(o.requestBody)
        if rb then
          rb = M.resolve(doc, rb)
          local body = { required = nn(rb.required) == true, content_types = {}, content = {} }
          for ct, media in pairs(nn(rb.content) or {}) do
            body.content_types[#body.content_types + 1] = ct
            body.content[ct] = nn(media.schema) or {}
          end
          table.sort(body.content_types)
          op.body = body
        end
        for code, resp in pairs(nn(o.responses) or {}) do
          op.responses[code] = M.resolve(doc, resp)
          if code:match('^2%d%d$') then op.success[#op.success + 1] = tonumber(code) end
        end
        table.sort(op.success)
        local sec = nn(o.security)
        if sec == nil then sec = nn(doc.security) end
        op.security = security_names(sec or {})
        list[#list + 1] = op
      end
    end
  end
  return list
end

local op_cache = setmetatable({}, { __mode = 'k' })

function M.operations(doc)
  if not op_cache[doc] then op_cache[doc] = build(doc) end
  return op_cache[doc]
end

function M.find(doc, method, path)
  for _, op in ipairs(M.operations(doc)) do
    if op.method == method and op.path == path then return op end
  end
  return nil
end

-- The schema of a success response's JSON body, or nil when it has none.
function M.success_schema(doc, op, code)
  local resp = op.responses[tostring(code)]
  if not resp then return nil end
  local content = nn(resp.content)
  if not content then return nil end
  local media = nn(content['application/json']) or select(2, next(content))
  return media and nn(media.schema) or nil
end

M.null = NULL
M.nn = nn

return M
