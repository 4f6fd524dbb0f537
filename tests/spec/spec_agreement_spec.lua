-- The API tables (lua/provision/apis/*.lua) against their contracts:
--  * the published OpenAPI documents (method, path, parameters, bodies,
--    success codes, security, deprecation, return models), and
--  * the documented SDK pages (method names and order, positional
--    parameters, optional names, defaults, return types, auth, status codes,
--    Outpost's error classes),
-- both as committed in tests/contract/ (written from ../shared by
-- scripts/contract-fixtures.lua; see tests/contract/README.md).
-- and the schema data they reference (lua/provision/schemas/, generated
-- from the same specs): each body param's model, content type and `arrays`,
-- and each operation's return model, against the data the validator uses.
-- One `it` per operation; a failure lists every mismatching field, each
-- named as <class>.<operation>: <field>: ...
--
-- Run: lua5.4 /usr/bin/busted --lua=lua5.4 tests/spec/spec_agreement_spec.lua
local specs = require 'support.specs'
local schema_data = require 'provision.schema'

local nn = specs.nn

---------------------------------------------------------------- helpers

local function show(v)
  if type(v) == 'table' then
    local parts = {}
    for i = 1, #v do parts[#parts + 1] = show(v[i]) end
    return '{' .. table.concat(parts, ', ') .. '}'
  elseif type(v) == 'string' then
    return string.format('%q', v)
  elseif type(v) == 'number' and v == math.floor(v) then
    return string.format('%d', v)
  end
  return tostring(v)
end

local function same_list(a, b)
  a, b = a or {}, b or {}
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local function sorted(t)
  local c = {}
  for i = 1, #(t or {}) do c[i] = t[i] end
  table.sort(c, function(x, y) return tostring(x) < tostring(y) end)
  return c
end

local function same_set(a, b) return same_list(sorted(a), sorted(b)) end

-- Collects mismatches for one operation; finish() fails the `it` with all.
local function checker(prefix)
  local bad = {}
  local c = {}
  function c.eq(field, got, want)
    if got ~= want then
      bad[#bad + 1] = string.format('%s: %s: table has %s, %s', prefix, field, show(got), want == nil and 'expected nil' or 'expected ' .. show(want))
    end
  end
  function c.list(field, got, want)
    if not same_list(got, want) then
      bad[#bad + 1] = string.format('%s: %s: table has %s, expected %s', prefix, field, show(got), show(want))
    end
  end
  function c.set(field, got, want)
    if not same_set(got, want) then
      bad[#bad + 1] = string.format('%s: %s: table has %s, expected %s (any order)', prefix, field, show(sorted(got)), show(sorted(want)))
    end
  end
  function c.fail(field, msg)
    bad[#bad + 1] = string.format('%s: %s: %s', prefix, field, msg)
  end
  function c.finish()
    assert(#bad == 0, '\n  ' .. table.concat(bad, '\n  '))
  end
  return c
end

local function default_text(v)
  if v == nil then return nil end
  if type(v) == 'number' and v == math.floor(v) then return string.format('%d', v) end
  return tostring(v)
end

----------------------------------------------------------- what to check

local SEED_TYPES = { str = 'string', int = 'integer', bool = 'boolean', float = 'number', datetime = 'string' }

-- the page's type text: "str", "Optional[int]", "list[str]", "models.X"
local function seed_type(t)
  if not t then return nil end
  local basic = t:match('^(%w+)$') or t:match('^Optional%[(%w+)%]$')
  if basic then return SEED_TYPES[basic] end
  if t:match('^list%[') then return 'array' end
  return nil -- a model: object or enum, not checked here
end

local CASES = {
  { label = 'PortalUsersApi', module = 'provision.apis.docspace', spec = 'docspace.seed.openapi.json',
    seed = 'docspace-PortalUsersApi.md', format = 'generator', count = 5, schemas = 'docspace',
    class = 'PortalUsersApi', seed_class = 'docspace-api-python.PortalUsersApi' },
  { label = 'Tenants (v0)', module = 'provision.apis.outpost', generation = 'v0', spec = 'outpost.openapi.json',
    seed = 'outpost-Tenants.md', format = 'speakeasy', count = 7, schemas = 'outpost_v0',
    class = 'Tenants', seed_class = 'Tenants' },
  { label = 'Tenants (latest)', module = 'provision.apis.outpost', generation = 'latest',
    spec = 'outpost.latest.openapi.json', count = 6, class = 'Tenants', schemas = 'outpost_latest',
    -- no SDK page for this generation: v0's names, without the two
    -- *_jwt_context operations, after the new `list`
    names = { 'list', 'upsert', 'get', 'delete', 'get_portal_url', 'get_token' } },
  { label = 'UsersApi', module = 'provision.apis.agilicus', spec = 'agilicus.reconstructed.openapi.json',
    seed = 'agilicus-UsersApi.md', format = 'generator', count = 45, schemas = 'agilicus',
    class = 'UsersApi', seed_class = 'agilicus_api.UsersApi' },
  { label = 'TeamsApi', module = 'provision.apis.document360', spec = 'document360.openapi.json',
    seed = 'document360-TeamsApi.md', format = 'generator', count = 10, schemas = 'document360',
    class = 'TeamsApi', seed_class = 'd361api.TeamsApi' },
}

local PARAM_TYPES = { string = true, integer = true, number = true, boolean = true, array = true, object = true }
local LOCATIONS = { path = true, query = true, header = true, cookie = true, body = true }

local function operations_of(api, case)
  if case.generation then
    assert(api.generations and api.generations[case.generation],
      api.class .. ': no generations.' .. case.generation)
    return api.generations[case.generation].operations
  end
  return api.operations
end

-- Table param vs spec param
local function check_param(c, doc, p, sp)
  local f = 'param ' .. p.name
  c.eq(f .. '.in', p['in'], sp['in'])
  if sp.type then
    c.eq(f .. '.type', p.type, sp.type)
  elseif sp.types then
    local ok = false
    for _, t in ipairs(sp.types) do if t == p.type then ok = true end end
    if not ok then c.fail(f .. '.type', 'table has ' .. show(p.type) .. ', spec allows ' .. show(sp.types)) end
  end
  if p.type == 'array' then
    c.eq(f .. '.items', p.items, sp.items)
    c.eq(f .. '.style', p.style, sp.style)
    c.eq(f .. '.explode', p.explode, sp.explode)
    if sp.items_enum or p.items_enum then c.list(f .. '.items_enum', p.items_enum, sp.items_enum) end
  elseif p.style ~= nil or p.explode ~= nil then
    c.fail(f .. '.style', 'style/explode are recorded for arrays only')
  end
  -- `required` is the SDK's (positional or not); where the SDK relaxes a
  -- spec requirement the table says so with spec_required.
  if p.spec_required ~= nil then
    if not (p.spec_required == true and p.required == false) then
      c.fail(f .. '.spec_required', 'only for a param the spec requires and the SDK makes optional')
    end
    c.eq(f .. '.spec_required', p.spec_required, sp.required)
  else
    c.eq(f .. '.required', p.required == true, sp.required)
  end
  if sp.enum or p.enum then c.list(f .. '.enum', p.enum, sp.enum) end
  if p.enum_numbers then
    for i = 0, #p.enum_numbers do
      c.eq(f .. '.enum_numbers[' .. i .. ']', p.enum_numbers[i], (sp.enum or {})[i + 1])
    end
    c.eq(f .. '.enum_numbers count', #p.enum_numbers + 1, #(sp.enum or {}))
  end
  c.eq(f .. '.default', p.default, sp.default)
  if p.format ~= nil then c.eq(f .. '.format', p.format, sp.format) end
end

local function check_body(c, doc, p, sb)
  local f = 'body ' .. p.name
  if not sb then c.fail(f, 'the spec has no requestBody'); return end
  c.eq(f .. '.required', p.required == true, sb.required)
  local schema = sb.content[p.content_type]
  if not schema then
    c.fail(f .. '.content_type', 'table has ' .. show(p.content_type) .. ', spec offers ' .. show(sb.content_types))
    schema = select(2, next(sb.content)) or {}
  end
  c.eq(f .. '.type', p.type, specs.type_of(doc, schema))
  c.list(f .. '.arrays', sorted(p.arrays), specs.array_paths(doc, schema))
  if p.schema ~= nil then c.eq(f .. '.schema', p.schema, specs.model_name(doc, schema)) end
end

local function check_against_spec(c, api, case, doc, op)
  local sop = specs.find(doc, op.method, op.path)
  if not sop then
    c.fail('method/path', op.method .. ' ' .. op.path .. ' is not in ' .. case.spec)
    return
  end
  c.eq('operation_id', op.operation_id, sop.operation_id)
  c.eq('deprecated', op.deprecated == true, sop.deprecated == true)
  -- parameters, matched by wire name and location
  local by_wire = {}
  for _, sp in ipairs(sop.params) do by_wire[sp['in'] .. ':' .. sp.name] = sp end
  local seen = {}
  local body
  for _, p in ipairs(op.params) do
    if p['in'] == 'body' then
      body = p
    else
      local key = p['in'] .. ':' .. (p.wire or p.name)
      local sp = by_wire[key]
      if not sp then
        -- same wire name, other location?
        for _, s2 in ipairs(sop.params) do
          if s2.name == (p.wire or p.name) then sp = s2 end
        end
      end
      if sp then
        seen[sp['in'] .. ':' .. sp.name] = true
        if p.wire ~= nil and p.wire == p.name then c.fail('param ' .. p.name .. '.wire', 'same as name: omit it') end
        check_param(c, doc, p, sp)
      else
        c.fail('param ' .. p.name, 'wire name ' .. show(p.wire or p.name) .. ' (' .. tostring(p['in']) .. ') is not a parameter in the spec')
      end
    end
  end
  for _, sp in ipairs(sop.params) do
    if not seen[sp['in'] .. ':' .. sp.name] then
      c.fail('params', 'spec parameter ' .. show(sp.name) .. ' (' .. sp['in'] .. ') is missing from the table')
    end
  end
  if body then
    check_body(c, doc, body, sop.body)
  elseif sop.body then
    c.fail('body', 'the spec has a requestBody (' .. table.concat(sop.body.content_types, ', ') .. '), the table has no body param')
  end
  -- every placeholder in the path is a path param and vice versa
  local holes = {}
  for h in op.path:gmatch('{([^}]+)}') do holes[#holes + 1] = h end
  local pathp = {}
  for _, p in ipairs(op.params) do if p['in'] == 'path' then pathp[#pathp + 1] = p.wire or p.name end end
  c.set('path placeholders', pathp, holes)
  c.list('success', op.success, sop.success)
  c.list('security', op.security, sop.security)
  -- the documented model of the (first) success response
  local schema = specs.success_schema(doc, sop, sop.success[1])
  local model = schema and specs.model_name(doc, schema) or nil
  if model or op.returns ~= nil then c.eq('returns (spec)', op.returns, model) end
end

-- Table operation vs the schema data it references: the body param's model
-- and content type, `arrays` = the array paths of the data's body schema,
-- the return model = the data's first success response.
local function check_against_schema_data(c, set, op)
  local entry = schema_data.operation(set, op)
  if not entry then c.fail('schema data', schema_data.key(op) .. ' is not in ' .. tostring(set.source)); return end
  local body
  for _, p in ipairs(op.params) do if p['in'] == 'body' then body = p end end
  if body then
    local f = 'body ' .. body.name .. ' (schema data)'
    if not entry.body then c.fail(f, 'no request body schema'); return end
    c.eq(f .. '.content_type', body.content_type, entry.content_type)
    local model = schema_data.model_name(entry.body)
    c.eq(f .. '.schema', body.schema, model)
    if model and not schema_data.definition(set, model) then c.fail(f .. '.schema', show(model) .. ' is not defined') end
    c.list(f .. '.arrays', sorted(body.arrays), schema_data.array_paths(set, entry.body))
  elseif entry.body then
    c.fail('body (schema data)', 'the data has a request body, the table has no body param')
  end
  local first = op.success[1]
  local response = entry.responses and entry.responses[first]
  c.eq('returns (schema data)', op.returns, response and schema_data.model_name(response) or nil)
end

local function check_against_seed(c, api, case, sop)
  if not sop then c.fail('seed', 'no section for this method on ' .. case.seed); return end
  -- names and order: required params positional in the documented order,
  -- the rest by name
  local names, positional, keywords = {}, {}, {}
  local byname = {}
  for _, p in ipairs(api.params) do
    names[#names + 1] = p.name
    byname[p.name] = p
    if p.required then positional[#positional + 1] = p.name else keywords[#keywords + 1] = p.name end
  end
  c.list('positional params (seed)', positional, sop.positional)
  c.set('optional params (seed)', keywords, sop.keywords)
  c.list('param order (seed)', names, sop.all)
  for name, sp in pairs(sop.params) do
    local p = byname[name]
    if p then
      local t = seed_type(sp.type)
      if t then c.eq('param ' .. name .. '.type (seed)', p.type, t) end
      if sp.default then c.eq('param ' .. name .. '.default (seed)', default_text(p.default), sp.default) end
      c.eq('param ' .. name .. '.required (seed)', p.required == true, not sp.optional)
    end
  end
  c.eq('returns (seed)', api.returns, sop.returns)
  if sop.codes then
    local two = {}
    for _, code in ipairs(sop.codes) do if code >= 200 and code < 300 then two[#two + 1] = code end end
    c.list('success (seed)', api.success, two)
  end
  if sop.auth then
    if sop.no_auth then c.list('security (seed)', api.security, {}) else c.set('security (seed)', api.security, sop.auth) end
  end
end

------------------------------------------------------------------ specs

for _, case in ipairs(CASES) do
  describe(case.label, function()
    local api = require(case.module)
    local doc = specs.load(case.spec)
    local ops = operations_of(api, case)
    local seed = case.seed and specs.seed(case.seed)
    local set = assert(schema_data.load(case.schemas))

    it('references its schema data, made from the same spec', function()
      local c = checker(case.label)
      c.eq('schemas', schema_data.set_name(api, case.generation), case.schemas)
      c.eq('schema data source', set.source, case.spec)
      c.eq('schema data source_sha256', set.source_sha256, doc['x-provenance'].source_sha256)
      local keys = {}
      for key in pairs(set.operations) do keys[#keys + 1] = key end
      local want = {}
      for _, op in ipairs(ops) do want[#want + 1] = schema_data.key(op) end
      c.set('schema data operations', keys, want)
      c.finish()
    end)

    it('is the documented class, with the documented operations in order', function()
      local c = checker(case.label)
      c.eq('class', api.class, case.class)
      local names = {}
      for _, op in ipairs(ops) do names[#names + 1] = op.name end
      c.eq('operation count', #ops, case.count)
      if seed then
        c.eq('class (seed)', seed.class, case.seed_class)
        c.eq('operation count (seed)', #seed.order, case.count)
        c.list('operation names (seed order)', names, seed.order)
      else
        c.list('operation names', names, case.names)
      end
      c.finish()
    end)

    it('names its servers and security schemes as the spec does', function()
      local c = checker(case.label)
      local gen = case.generation and api.generations[case.generation] or {}
      local servers = {}
      for k, v in pairs(api.servers) do servers[k] = v end
      for k, v in pairs(gen.servers or {}) do servers[k] = v end
      if type(servers.default) ~= 'string' then c.fail('servers.default', 'missing') end
      -- every spec server URL is reachable under some name
      for _, s in ipairs(nn(doc.servers) or {}) do
        local url = s.url:gsub('/$', '')
        local found = false
        for _, v in pairs(servers) do if v == url then found = true end end
        if not found and url ~= '{baseUrl}' then c.fail('servers', 'spec server ' .. url .. ' has no name in the table') end
        for var, def in pairs(nn(s.variables) or {}) do
          if var ~= 'baseUrl' then
            local tv = api.server_variables and api.server_variables[var]
            if not tv then c.fail('server_variables.' .. var, 'missing')
            else c.eq('server_variables.' .. var .. '.default', tv.default, def.default) end
          end
        end
      end
      local schemes = doc.components.securitySchemes or {}
      local want, got = {}, {}
      for name in pairs(schemes) do want[#want + 1] = name end
      for name in pairs(api.security_schemes) do got[#got + 1] = name end
      c.set('security_schemes', got, want)
      for name, s in pairs(schemes) do
        local t = api.security_schemes[name]
        if t then
          c.eq('security_schemes.' .. name .. '.type', t.type, s.type)
          c.eq('security_schemes.' .. name .. '.scheme', t.scheme, nn(s.scheme))
          c.eq('security_schemes.' .. name .. '.in', t['in'], nn(s['in']))
          c.eq('security_schemes.' .. name .. '.name', t.name, nn(s.name))
        end
      end
      c.finish()
    end)

    for _, op in ipairs(ops) do
      it(op.name, function()
        local c = checker(api.class .. '.' .. op.name .. (case.generation and ' [' .. case.generation .. ']' or ''))
        -- shape of the entry itself
        local pnames = {}
        local bodies = 0
        for _, p in ipairs(op.params or {}) do
          if type(p.name) ~= 'string' then c.fail('param', 'without a name') end
          if pnames[p.name] then c.fail('param ' .. tostring(p.name), 'listed twice') end
          pnames[p.name] = true
          if p.name == '_call' then c.fail('param _call', 'collides with the per-call settings field') end
          if not LOCATIONS[p['in']] then c.fail('param ' .. tostring(p.name) .. '.in', 'unknown location ' .. show(p['in'])) end
          if not PARAM_TYPES[p.type] then c.fail('param ' .. tostring(p.name) .. '.type', 'unknown type ' .. show(p.type)) end
          if p['in'] == 'body' then
            bodies = bodies + 1
            if type(p.content_type) ~= 'string' then c.fail('param ' .. p.name .. '.content_type', 'missing') end
            if type(p.arrays) ~= 'table' then c.fail('param ' .. p.name .. '.arrays', 'missing') end
          end
          if p.client_default ~= nil then
            local ok = false
            for _, k in ipairs(api.client_defaults or {}) do if k == p.client_default then ok = true end end
            if not ok then c.fail('param ' .. p.name .. '.client_default', show(p.client_default) .. ' is not in client_defaults') end
          end
        end
        if bodies > 1 then c.fail('params', 'more than one body') end
        for _, s in ipairs(op.security or {}) do
          if not api.security_schemes[s] then c.fail('security', show(s) .. ' is not a declared scheme') end
        end
        -- the spec
        check_against_spec(c, api, case, doc, op)
        -- the schema data (lua/provision/schemas/)
        check_against_schema_data(c, set, op)
        -- the SDK page
        if seed then
          local sop = seed.ops[op.name]
          if case.format == 'generator' and sop then
            c.eq('method (seed)', op.method, sop.method)
            c.eq('path (seed)', op.path, sop.path)
          end
          check_against_seed(c, op, case, sop)
          if case.format == 'speakeasy' and sop then
            -- error classes: file-level table, then the operation's own
            local merged = {}
            for k, v in pairs(api.errors or {}) do merged[k] = v end
            for k, v in pairs(op.errors or {}) do merged[k] = v end
            for code, class in pairs(sop.errors) do
              if type(code) == 'number' then c.eq('errors[' .. code .. '] (seed)', merged[code], class) end
            end
            for code, class in pairs(merged) do
              if type(code) == 'number' and class ~= 'APIError' and not sop.errors[code] then
                c.fail('errors[' .. code .. ']', show(class) .. ' but the seed page leaves it to APIError')
              end
            end
            c.eq('errors["4XX"] (seed)', merged['4XX'], sop.errors['4XX'])
            c.eq('errors["5XX"] (seed)', merged['5XX'], sop.errors['5XX'])
          end
        elseif case.generation == 'latest' then
          -- params shared with v0 keep v0's SDK names and flags
          local v0 = {}
          for _, o in ipairs(api.generations.v0.operations) do v0[o.name] = o end
          local old = v0[op.name]
          if old then
            local oldp = {}
            for _, p in ipairs(old.params) do oldp[p.name] = p end
            for _, p in ipairs(op.params) do
              local q = oldp[p.name]
              if q then
                c.eq('param ' .. p.name .. '.required (as v0)', p.required, q.required)
                c.eq('param ' .. p.name .. '.client_default (as v0)', p.client_default, q.client_default)
              end
            end
          end
        end
        c.finish()
      end)
    end
  end)
end
