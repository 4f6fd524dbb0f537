-- luacheck: std lua54+busted
-- luacheck: max line length 130
-- Sandbox contract test: do the sandbox's answers agree with the published
-- specs? One sandbox (bin/provision-sandbox) and, in front of it, one Prism
-- 5.14.2 proxy per spec in --errors mode (tests/support/prism.lua):
--
--   prism proxy docspace.seed.openapi.json          <sandbox>/docspace
--   prism proxy outpost.openapi.json (v0)           <sandbox>/outpost/api/v1
--   prism proxy outpost.latest.openapi.json         <sandbox>/outpost-latest/api/v1
--   prism proxy agilicus.reconstructed.openapi.json <sandbox>/agilicus
--   prism proxy document360.openapi.json (fixup)    <sandbox>/document360
--
-- Prism forwards a request to UPSTREAM .. request path: the upstream's own
-- path is kept as a prefix (GET {proxy}/users reaches <sandbox>/agilicus/users;
-- seen by experiment and checked below via the sandbox's request log). The
-- spec's `servers` base path is ignored (outpost's /api/v1 is not part of the
-- proxy's URLs), which is why the Outpost upstreams carry /api/v1 themselves.
--
-- provision clients point at the proxies with the sandbox's credentials and
-- call every operation (PortalUsersApi 5, Tenants v0 7, Tenants latest 6
-- including list, UsersApi 45, TeamsApi 10) in an order that makes each one
-- succeed against the sandbox's state: create before get/replace/delete, with
-- the ids the sandbox hands out (fixture ids from list calls; a DocSpace user
-- from the admin API, since PortalUsersApi cannot create one). The `it`s of
-- one API share that state and must run in file order (no --shuffle).
--
-- Each case fails when
--   * the call did not succeed (or, for a documented error case, did not end
--     in the documented status and error class);
--   * Prism flagged anything for it: with --errors a response that breaks the
--     spec is replaced by 500 #VIOLATIONS (the details are in the answer's
--     validation[] / sl-violations and are printed), a request that breaks it
--     is answered 401/422 by Prism itself, and prism.violations() returns both
--     from Prism's log;
--   * the sandbox did not log the operation with the same status (so the
--     answer really came from the sandbox, through the proxy).
--
-- Documented error answers (404 unknown user, 409 duplicate Agilicus email,
-- Document360 400 "Existing team member", Outpost 401 for a wrong admin key,
-- DocSpace 429 past a tiny rate limit) are checked for *response* violations
-- only: see response_side() below for why and how the two are told apart.
--
-- The specs are the committed fixtures (tests/contract/).
-- Needs node_modules/.bin/prism (scripts/prism-install.sh) and build/ (make build):
-- without them, or when a proxy does not come up, every test here fails with the reason.
local prism = require 'support.prism'
local once = require 'support.once'

local sandbox = require 'support.sandbox'
local A = require 'support.contract_args'
local provision = require 'provision'
local json = require 'provision.json'
local B = A.bodies

-- ------------------------------------------------------------ helpers
local function typeof(v)
  if v == json.null then return 'null' end
  local t = type(v)
  if t == 'number' then return math.type(v) == 'integer' and 'integer' or 'number' end
  if t == 'table' then return (v[1] ~= nil or json.is_array(v)) and 'array' or 'object' end
  return t
end

-- The details of a 500 #VIOLATIONS Prism answered instead of the sandbox's
-- response (its log only says "VIOLATIONS: Request/Response not valid").
local function prism_details(err)
  if type(err) ~= 'table' then return '' end
  local out = {}
  local body = err.body
  if type(body) == 'table' and type(body.validation) == 'table' then
    for _, v in ipairs(body.validation) do
      local loc = type(v.location) == 'table' and table.concat(v.location, '.') or '?'
      out[#out + 1] = ('    %s: %s (%s)'):format(loc, tostring(v.message), tostring(v.code))
    end
  elseif err.headers and err.headers['sl-violations'] then
    out[#out + 1] = '    sl-violations: ' .. err.headers['sl-violations']
  end
  if type(body) == 'table' and type(body.type) == 'string' and body.type:find('stoplight', 1, true) then
    table.insert(out, 1, '  Prism answered itself: ' .. tostring(body.type) .. ' ' .. tostring(body.title))
  end
  return table.concat(out, '\n')
end

-- Request- and response-side violations. prism.violations() returns strings
-- of three kinds (see tests/support/prism.lua):
--   "request.query.limit ..." / "response.body.x ..."   Prism's "Violation:" lines, by location;
--   "Invalid security scheme used" etc.                  other VALIDATOR errors: always about the request;
--   "GET /path: CODE: title"                             Prism answered itself: VIOLATIONS (500) and
--                                                         UPSTREAM_NOT_IMPLEMENTED are about the upstream's
--                                                         response, UNAUTHORIZED / UNPROCESSABLE_ENTITY /
--                                                         NO_PATH_MATCHED_ERROR about the request.
-- What the documented error cases must prove is that the sandbox's *answer*
-- matches the spec, so they assert on response_side() only: a deliberately
-- wrong request may also trip request-side checks. Observed with Prism 5.14.2:
-- a *wrong* credential trips none (Prism checks that a bearer token / api key
-- is present, not its value), so it is forwarded and the sandbox's 401 is
-- validated; a *missing* one is answered 401 by Prism itself (request-side
-- "Invalid security scheme used" + "UNAUTHORIZED") and never reaches the
-- sandbox -- check() then fails on the sandbox log, not on the filter.
local function response_side(list)
  local out = {}
  for _, s in ipairs(list) do
    if s:find('^response') or s:find(': VIOLATIONS:', 1, true) or s:find(': UPSTREAM_', 1, true) then
      out[#out + 1] = s
    end
  end
  return out
end

local function describe_result(value, info)
  if value ~= nil then return 'HTTP ' .. tostring(info and info.status) end
  return tostring(info)
end

-- ------------------------------------------------------------ the suite
describe('sandbox contract (provision -> Prism proxy --errors -> sandbox)', function()
  local sb
  local px = {}        -- key -> Prism proxy handle
  local c = {}         -- key -> provision client
  local S = {}         -- ids handed out by the sandbox, filled as the cases run

  local specs = {
    docspace = { spec = 'docspace.seed', upstream = 'docspace' },
    outpost_v0 = { spec = 'outpost', upstream = 'outpost' },
    outpost_latest = { spec = 'outpost.latest', upstream = 'outpost_latest' },
    agilicus = { spec = 'agilicus.reconstructed', upstream = 'agilicus' },
    -- The fixup (format date-time not checked) is for the spec's own
    -- examples, which a proxy never serves; the sandbox's timestamps all
    -- carry a UTC offset anyway (checked without it: same result).
    document360 = { spec = 'document360', upstream = 'document360', transform = prism.fixups.document360 },
  }

  -- Sandbox operation names where they differ from provision's.
  local sandbox_op = { outpost_latest = { list = 'list_tenants' } }

  -- Started on first use (support.once): when the sandbox or a proxy is not
  -- up, each test fails with the same reason.
  before_each(once(function()
    sb = sandbox.start()
    for key, s in pairs(specs) do
      px[key] = prism.proxy(prism.spec(s.spec), sb[s.upstream],
        { errors = true, wait = false, transform = s.transform, name = 'sandbox-' .. key })
    end
    for _, h in pairs(px) do h.wait() end
    local cr = sb.credentials
    c.docspace = assert(provision.PortalUsersApi { server = px.docspace.url, retries = false,
      auth = { username = cr.docspace.user, password = cr.docspace.password } })
    c.outpost_v0 = assert(provision.Tenants { generation = 'v0', server = px.outpost_v0.url, retries = false,
      auth = { admin_api_key = cr.outpost.admin_api_key } })
    c.outpost_latest = assert(provision.Tenants { server = px.outpost_latest.url, retries = false,
      auth = { admin_api_key = cr.outpost.admin_api_key } })
    c.agilicus = assert(provision.UsersApi { server = px.agilicus.url, retries = false,
      auth = { bearer = cr.agilicus.token } })
    c.document360 = assert(provision.TeamsApi { server = px.document360.url, retries = false,
      auth = { api_token = cr.document360.api_token } })
  end, 'sandbox contract servers unavailable'))

  teardown(function()
    for _, cl in pairs(c) do cl:close() end
    for _, h in pairs(px) do h.stop() end
    if sb then sb:stop() end
  end)

  local function last_seq()
    local _, body = sb:admin('GET', '/log?since=0')
    return body and body.last_seq or 0
  end

  -- Runs `call` (returns value, info | nil, err) against proxy `key` and
  -- checks it. expect = nil (success) or {status =, class =} (a documented
  -- error: only response-side violations count). Returns value, info.
  local function check(key, label, call, expect, op)
    local h = px[key]
    local seq0 = last_seq()
    local mark = h.mark()
    local r = table.pack(pcall(call))
    local all = prism.violations(h, mark)
    if not r[1] then error(label .. ': ' .. tostring(r[2]), 0) end
    local value, info = r[2], r[3]
    local details = prism_details(info)
    local flagged = expect and response_side(all) or all
    local msg = ('%s: Prism flagged %d violation(s) (%s):\n  %s%s'):format(label, #flagged,
      describe_result(value, info), table.concat(flagged, '\n  '), details ~= '' and '\n' .. details or '')
    assert(#flagged == 0, msg)
    if expect then
      assert(value == nil, ('%s: expected HTTP %d %s, got success HTTP %s'):format(label, expect.status,
        expect.class, tostring(info and info.status)))
      assert(info.status == expect.status and info.class == expect.class,
        ('%s: expected HTTP %d %s, got %s\n%s'):format(label, expect.status, expect.class, tostring(info), details))
    else
      assert(value ~= nil, ('%s: failed: %s\n%s'):format(label, tostring(info), details))
    end
    -- the answer came from the sandbox, through the proxy
    local _, log = sb:admin('GET', '/log?since=' .. seq0)
    local entries = log and log.entries or {}
    local status = info.status
    local seen = {}
    for _, e in ipairs(entries) do
      seen[#seen + 1] = ('%s %s -> %s (%s)'):format(e.method, e.path, tostring(e.status), tostring(e.operation))
    end
    local last = entries[#entries]
    assert(last and last.status == status and (not op or last.operation == op),
      ('%s: the sandbox did not log %s with HTTP %s; it logged: %s'):format(label, op or 'an answer',
        tostring(status), #seen > 0 and table.concat(seen, '; ') or 'nothing'))
    return value, info
  end

  -- One `it` per operation: fn(call) makes the call(s), call(...) runs the
  -- operation with those arguments through check() and returns value, info.
  -- The label in messages names the class and the operation.
  local function op_case(key, opname, fn, expect)
    local cl_class = ({ docspace = 'PortalUsersApi', outpost_v0 = 'Tenants(v0)', outpost_latest = 'Tenants(latest)',
                        agilicus = 'UsersApi', document360 = 'TeamsApi' })[key]
    local label = cl_class .. '.' .. opname
    local want = (sandbox_op[key] or {})[opname] or opname
    it(opname, function()
      fn(function(...)
        local args = table.pack(...)
        return check(key, label, function()
          return c[key][opname](c[key], table.unpack(args, 1, args.n))
        end, expect, want)
      end)
    end)
  end

  -- A prerequisite id. When the case that should have made it through the
  -- proxy failed, it is made directly on the sandbox (fallback[name], past
  -- Prism), so that one broken create does not fail every later case of
  -- its API: each case still reports its own operation.
  local fallback = {}
  local function need(name)
    if S[name] == nil and fallback[name] then fallback[name]() end
    local v = S[name]
    assert(v ~= nil, 'prerequisite ' .. name .. ' missing: an earlier case failed and it could not be made directly')
    return v
  end

  -- A request straight to the sandbox (not through Prism) for fallbacks.
  local function direct(method, path, hkey, body)
    local st, res = sb:json(method, path, { headers = sb.headers[hkey], body = body })
    assert(st and st < 300, ('direct %s %s: HTTP %s'):format(method, path, tostring(st)))
    return res
  end

  local function count_ops(key, n)
    it('covers all ' .. n .. ' operations', function()
      assert.equals(n, #c[key]:operations())
    end)
  end

  -- ============================================================ DocSpace
  describe('PortalUsersApi (docspace.seed)', function()
    count_ops('docspace', 5)

    op_case('docspace', 'get_portal_users_count', function(call)
      local n, info = call()
      assert.equals('integer', typeof(n))
      assert.is_truthy(info.headers['x-ratelimit-limit'])
    end)

    op_case('docspace', 'get_invitation_link', function(call)
      for _, t in ipairs({ 'RoomAdmin', 'DocSpaceAdmin', 'User', 'Guest' }) do
        local link = call(t)
        assert.equals('string', typeof(link))
      end
    end)

    op_case('docspace', 'get_user_by_id', function(call)
      -- PortalUsersApi cannot create a user: the admin API does
      local st, body = sb:admin('POST', '/docspace/users',
        { email = 'ada.lovelace@northwind.example', firstName = 'Ada', lastName = 'Lovelace', type = 'User' })
      assert(st == 201, 'admin POST /docspace/users: ' .. tostring(st))
      S.ds_user = body.id
      local u = call(S.ds_user)
      assert.equals(S.ds_user, u.id)
      assert.equals('ada.lovelace@northwind.example', u.email)
    end)

    -- These two document no response body; DocSpace (and the sandbox) still
    -- send the envelope, with response: null, which provision returns as true.
    local function no_result(v)
      assert(v == true, 'expected true, got ' .. tostring(v))
    end

    op_case('docspace', 'mark_gift_message_as_read', function(call)
      no_result((call()))
    end)

    op_case('docspace', 'send_congratulations', function(call)
      no_result((call({ userid = need('ds_user'), key = 'birthday' })))
    end)
  end)

  -- ============================================================ Outpost v0
  describe('Tenants v0 (outpost)', function()
    count_ops('outpost_v0', 7)
    local T = 'contract-v0-' .. os.time()
    fallback.v0_tenant = function() S.v0_tenant = direct('PUT', '/outpost/api/v1/' .. T, 'outpost').id end
    fallback.v0_jwt = function()
      S.v0_jwt = direct('GET', '/outpost/api/v1/' .. need('v0_tenant') .. '/token', 'outpost').token
    end

    op_case('outpost_v0', 'upsert', function(call)
      local t = call({ tenant_id = T })
      assert.equals(T, t.id)
      local again = call({ tenant_id = T })    -- idempotent: 200 again
      assert.equals(T, again.id)
      S.v0_tenant = T
    end)

    op_case('outpost_v0', 'get', function(call)
      assert.equals(T, call({ tenant_id = need('v0_tenant') }).id)
      assert.equals('northwind', call({ tenant_id = 'northwind' }).id)   -- a fixture tenant
    end)

    op_case('outpost_v0', 'get_portal_url', function(call)
      assert.equals('string', typeof(call({ tenant_id = need('v0_tenant') }).redirect_url))
      assert.equals('string', typeof(call({ tenant_id = T, theme = 'dark' }).redirect_url))
    end)

    op_case('outpost_v0', 'get_token', function(call)
      local r = call({ tenant_id = need('v0_tenant') })
      assert.equals('string', typeof(r.token))
      S.v0_jwt = r.token
    end)

    -- The JWT-context operations infer the tenant from a tenant JWT, yet the
    -- v0 spec gives them `security: [AdminApiKey]` only. Both schemes are
    -- bearer tokens, so the JWT goes in as the AdminApiKey credential: a
    -- client holding only {tenant_jwt = ...} sends no Authorization on these
    -- two (provision follows the spec's security list) and Prism answers 401.
    for _, opname in ipairs({ 'get_portal_url_jwt_context', 'get_token_jwt_context' }) do
      it(opname, function()
        local jwt = need('v0_jwt')
        local tc <close> = assert(provision.Tenants { generation = 'v0', server = px.outpost_v0.url,
          retries = false, auth = { admin_api_key = jwt } })
        local r = check('outpost_v0', 'Tenants(v0).' .. opname, function()
          return tc[opname](tc, opname == 'get_portal_url_jwt_context' and { theme = 'light' } or nil)
        end, nil, opname)
        assert.equals('string', typeof(r.redirect_url or r.token))
        if r.redirect_url then assert.matches('tenant_id=' .. S.v0_tenant, r.redirect_url, 1, true) end
      end)
    end

    op_case('outpost_v0', 'delete', function(call)
      assert.is_true(call({ tenant_id = need('v0_tenant') }).success)
      S.v0_tenant = nil
    end)
  end)

  -- ============================================================ Outpost latest
  describe('Tenants latest (outpost.latest)', function()
    count_ops('outpost_latest', 6)
    local T = 'contract-latest-' .. os.time()
    fallback.latest_tenant = function()
      S.latest_tenant = direct('PUT', '/outpost-latest/api/v1/tenants/' .. T, 'outpost').id
    end

    op_case('outpost_latest', 'list', function(call)
      local page = call()
      assert.equals('array', typeof(page.models))
      local p2 = call({ limit = 1, dir = 'asc' })
      assert.equals(1, #p2.models)
      assert.equals('string', typeof(p2.pagination.next))
      local p3 = call({ limit = 1, dir = 'asc', next = p2.pagination.next })
      assert.equals(1, #p3.models)
      call({ limit = 1, dir = 'asc', prev = p3.pagination.prev })
      call({ id = { 'northwind', 'northwind-labs' }, limit = 50 })
    end)

    op_case('outpost_latest', 'upsert', function(call)
      local t, info = call({ tenant_id = T, params = { metadata = { name = 'Contract Co', plan = 'pro' } } })
      assert.equals(201, info.status)     -- created
      assert.equals('Contract Co', t.metadata.name)
      local _, info2 = call({ tenant_id = T, params = { metadata = { name = 'Contract Co' } } })
      assert.equals(200, info2.status)    -- updated
      call({ tenant_id = T, params = { metadata = json.null } })
      call({ tenant_id = T })
      S.latest_tenant = T
    end)

    op_case('outpost_latest', 'get', function(call)
      assert.equals(T, call({ tenant_id = need('latest_tenant') }).id)
    end)

    op_case('outpost_latest', 'get_portal_url', function(call)
      local r = call({ tenant_id = need('latest_tenant'), theme = 'light' })
      assert.equals(T, r.tenant_id)
    end)

    op_case('outpost_latest', 'get_token', function(call)
      local r = call({ tenant_id = need('latest_tenant') })
      assert.equals(T, r.tenant_id)
    end)

    op_case('outpost_latest', 'delete', function(call)
      assert.is_true(call({ tenant_id = need('latest_tenant') }).success)
    end)
  end)

  -- ============================================================ Agilicus
  describe('UsersApi (agilicus.reconstructed)', function()
    count_ops('agilicus', 45)
    local EMAIL = 'ada.lovelace+' .. os.time() .. '@northwind.example'
    local function via(name, path, body)
      fallback[name] = function() S[name] = direct('POST', '/agilicus' .. path(), 'agilicus', body()).metadata.id end
    end
    fallback.org = function() S.org = direct('GET', '/agilicus/users?limit=1', 'agilicus').users[1].org_id end
    fallback.user = function()   -- create_user may have created it before its answer was refused
      local found = direct('GET', '/agilicus/users?email=' .. EMAIL:gsub('%+', '%%2B'), 'agilicus').users[1]
      S.user = found and found.id or direct('POST', '/agilicus/users', 'agilicus',
        B.agilicus_user({ email = EMAIL, org_id = need('org'), member_of = {} })).id
    end
    via('challenge', function() return '/users/' .. need('user') .. '/mfa_challenge_methods' end, B.challenge_method)
    via('upstream', function() return '/users/' .. need('user') .. '/upstream_user_identities' end,
      function() return B.upstream_user_identity(S.user) end)
    via('sa', function() return '/v1/service_accounts' end, function() return B.service_account(need('org')) end)
    via('meta', function() return '/v1/user_metadata' end, function() return B.user_metadata(need('user'), need('org')) end)
    via('req', function() return '/v1/user_requests' end, function() return B.user_request(need('user'), need('org')) end)

    op_case('agilicus', 'list_users', function(call)
      local r = call({ limit = 5 })
      assert.is_true(#r.users > 0)
      S.org = r.users[1].org_id
      call({ org_id = S.org, limit = 10, status = { 'active' }, search_direction = 'forwards',
             previous_email = 'a@northwind.example' })
    end)

    op_case('agilicus', 'create_user', function(call)
      local u = call(B.agilicus_user({ email = EMAIL, org_id = need('org'),
        member_of = {}, roles = { ['urn:agilicus:app:wiki'] = { 'viewer' } } }))
      assert.equals('string', typeof(u.id))
      S.user = u.id
    end)

    op_case('agilicus', 'get_user', function(call)
      assert.equals(EMAIL, call(need('user')).email)
      call(S.user, { org_id = S.org })
    end)

    -- The replace/update operations are called twice: with the required
    -- parameters only (the spec makes their body optional: nothing changes)
    -- and with a body.
    op_case('agilicus', 'replace_user', function(call)
      assert.equals(EMAIL, call(need('user')).email)
      local u = call(need('user'), { user = B.agilicus_user({ email = EMAIL, org_id = S.org, last_name = 'King',
                                                              member_of = {} }) })
      assert.equals('King', u.last_name)
    end)

    op_case('agilicus', 'create_user_identity_update', function(call)
      call(need('user'), { spec = { first_name = 'Ada', last_name = 'King', email = EMAIL } })
    end)

    op_case('agilicus', 'list_all_user_orgs', function(call) call(need('user')) end)
    op_case('agilicus', 'list_all_user_roles', function(call) call(need('user'), { org_id = S.org }) end)
    op_case('agilicus', 'list_user_permissions', function(call) call(need('user'), { org_id = S.org }) end)
    op_case('agilicus', 'list_all_resource_permissions', function(call) call(need('user'), need('org')) end)
    op_case('agilicus', 'replace_user_role', function(call)
      call(need('user'))
      call(need('user'), { org_id = S.org, replace_user_role_request = {
        roles = { ['urn:agilicus:app:wiki'] = { 'viewer', 'editor' } }, org_id = S.org } })
    end)
    op_case('agilicus', 'list_org_user_roles', function(call)
      call({ org_id = need('org'), user_id = S.user, limit = 25, offset = 0 })
    end)
    op_case('agilicus', 'list_user_guids', function(call)
      call()
      call({ updated_since = '2024-05-01T00:00:00Z' })
    end)
    op_case('agilicus', 'list_combined_user_details', function(call)
      call()
      call({ org_id = need('org'), limit = 50, email = EMAIL, search_direction = 'forwards' })
    end)
    op_case('agilicus', 'list_user_application_access_info', function(call)
      call(need('org'), need('user'), { limit = 100 })
    end)
    op_case('agilicus', 'list_user_file_share_access_info', function(call)
      call(need('org'), need('user'), { limit = 100 })
    end)

    -- MFA challenge methods
    op_case('agilicus', 'create_challenge_method', function(call)
      local m = call(need('user'), B.challenge_method())
      S.challenge = m.metadata.id
    end)
    op_case('agilicus', 'list_challenge_methods', function(call)
      call(need('user'))
      call(S.user, { limit = 10, challenge_type = 'totp', method_status = true, method_origin = 'agilicus.cloud' })
    end)
    op_case('agilicus', 'get_challenge_method', function(call) call(need('user'), need('challenge')) end)
    op_case('agilicus', 'replace_challenge_method', function(call)
      call(need('user'), need('challenge'))
      call(need('user'), need('challenge'), { mfa_challenge_method = B.challenge_method() })
    end)
    op_case('agilicus', 'delete_challenge_method', function(call) call(need('user'), need('challenge')) end)
    op_case('agilicus', 'reset_user_mfa_challenge_methods', function(call)
      call(need('user'), { org_id = S.org })
    end)

    -- upstream user identities
    op_case('agilicus', 'create_upstream_user_identity', function(call)
      S.upstream = call(need('user'), B.upstream_user_identity(S.user)).metadata.id
    end)
    op_case('agilicus', 'list_upstream_user_identities', function(call)
      call(need('user'))
      call(S.user, { limit = 5 })
    end)
    op_case('agilicus', 'get_upstream_user_identity', function(call) call(need('user'), need('upstream')) end)
    op_case('agilicus', 'replace_upstream_user_identity', function(call)
      call(need('user'), need('upstream'))
      call(need('user'), need('upstream'), { upstream_user_identity = B.upstream_user_identity(S.user) })
    end)
    op_case('agilicus', 'delete_upstream_user_identity', function(call) call(need('user'), need('upstream')) end)

    -- service accounts
    op_case('agilicus', 'create_service_account', function(call)
      S.sa = call(B.service_account(need('org'))).metadata.id
    end)
    op_case('agilicus', 'list_service_accounts', function(call)
      call()
      call({ org_id = need('org'), limit = 20 })
    end)
    op_case('agilicus', 'get_service_account', function(call)
      call(need('sa'))
      call(S.sa, { org_id = S.org })
    end)
    op_case('agilicus', 'replace_service_account', function(call)
      call(need('sa'))
      call(need('sa'), { service_account = B.service_account(S.org) })
    end)
    op_case('agilicus', 'delete_service_account', function(call) call(need('sa'), { org_id = S.org }) end)

    -- user metadata
    op_case('agilicus', 'create_user_metadata', function(call)
      S.meta = call(B.user_metadata(need('user'), need('org'))).metadata.id
    end)
    op_case('agilicus', 'list_user_metadata', function(call)
      call()
      call({ limit = 10, user_id = need('user'), org_id = S.org, data_type = 'json' })
    end)
    op_case('agilicus', 'get_user_metadata', function(call)
      call(need('meta'))
      call(S.meta, { org_id = S.org, user_id = S.user })
    end)
    op_case('agilicus', 'replace_user_metadata', function(call)
      call(need('meta'))
      call(need('meta'), { user_metadata = B.user_metadata(S.user, S.org) })
    end)
    op_case('agilicus', 'bulk_update_metadata', function(call)
      call()
      call({ bulk_user_metadata = { org_id = need('org'), app_id = 'Ap2xC7vB9nM4kL6zQ3wR8t', name = 'preferences',
                                    data_type = 'json', data = '{"theme":"light"}', data_update_type = 'merge' } })
    end)
    op_case('agilicus', 'delete_user_metadata', function(call)
      call(need('meta'), { user_id = S.user, org_id = S.org })
    end)

    -- user requests (and their access-request view)
    op_case('agilicus', 'create_user_request', function(call)
      S.req = call(B.user_request(need('user'), need('org'))).metadata.id
    end)
    op_case('agilicus', 'list_user_requests', function(call)
      call()
      call({ limit = 100, user_id = need('user'), org_id = S.org, request_state = 'pending',
             request_type = 'application_access' })
    end)
    op_case('agilicus', 'list_access_requests', function(call)
      call(need('org'))
      call(S.org, { limit = 100, user_id = S.user, request_state = 'pending', request_type = 'application_access' })
    end)
    op_case('agilicus', 'get_user_request', function(call)
      call(need('req'))
      call(S.req, { org_id = S.org, user_id = S.user })
    end)
    op_case('agilicus', 'replace_user_request', function(call)
      call(need('req'))
      call(need('req'), { user_request_info = B.user_request(S.user, S.org) })
    end)
    op_case('agilicus', 'update_user_request', function(call)
      call(need('req'))
      call(need('req'), { user_request_info = { spec = { user_id = S.user, org_id = S.org, requested_resource = 'wiki',
                                                         request_type = 'application_access', state = 'granted' } } })
    end)
    op_case('agilicus', 'delete_user_request', function(call)
      call(need('req'), { user_id = S.user, org_id = S.org })
    end)

    op_case('agilicus', 'delete_user', function(call) call(need('org'), need('user')) end)
  end)

  -- ============================================================ Document360
  describe('TeamsApi (document360)', function()
    count_ops('document360', 10)
    local EMAIL = 'ada.lovelace+' .. os.time() .. '@northwind.example'
    local function roles(list)
      for _, r in ipairs(list) do
        if r.role_type == 0 and not S.portal_role then S.portal_role = r.id end
        if r.role_type == 0 and r.title == 'Editor' then S.portal_role2 = r.id end
        if r.role_type == 1 and not S.content_role then S.content_role = r.id
        elseif r.role_type == 1 and not S.content_role2 then S.content_role2 = r.id end
      end
    end
    local function groups(list) S.group1, S.group2 = list[1].group_id, list[2].group_id end
    for _, k in ipairs({ 'portal_role', 'portal_role2', 'content_role', 'content_role2' }) do
      fallback[k] = function() roles(direct('GET', '/document360/v2/Teams/roles', 'document360').result) end
    end
    fallback.group1 = function() groups(direct('GET', '/document360/v2/Teams/groups', 'document360').result) end
    fallback.group2 = fallback.group1
    fallback.owner = function() S.owner = direct('GET', '/document360/v2/Teams', 'document360').result[1].user_id end
    local function new_member()
      return { email_id = EMAIL, first_name = 'Ada', last_name = 'Lovelace', invited_by = need('owner'),
               associated_portal_role_id = need('portal_role2'),
               content_permissions = B.d360_permissions(need('content_role'), need('content_role2')),
               associated_groups = { need('group1') } }
    end
    fallback.d360_user = function()   -- v2_teams_post may have added it before its answer was refused
      local found = direct('GET', '/document360/v2/Teams/email-exists?isAnSsoUser=false&emailId=' ..
        EMAIL:gsub('%+', '%%2B'), 'document360').data
      S.d360_user = found.exists and found.user_id
        or direct('POST', '/document360/v2/Teams', 'document360', new_member()).result.id
    end

    op_case('document360', 'v2_teams_roles_get', function(call) roles(call()) end)

    op_case('document360', 'v2_teams_groups_get', function(call) groups(call()) end)

    op_case('document360', 'v2_teams_get', function(call)
      local list = call()
      S.owner = list[1].user_id
      call({ skip = 2, take = 5 })
    end)

    op_case('document360', 'v2_teams_post', function(call)
      S.d360_user = call({ add_team_account_customer = new_member() }).id
    end)

    op_case('document360', 'v2_teams_email_exists_get', function(call)
      local r = call(EMAIL)
      assert.is_true(r.exists)
      call(EMAIL, { is_an_sso_user = false })
    end)

    op_case('document360', 'v2_teams_user_id_get', function(call)
      local u = call(need('d360_user'))
      assert.equals(EMAIL, u.email_id)
    end)

    op_case('document360', 'v2_teams_user_id_portal_put', function(call)
      call(need('d360_user'), { edit_portal_role_customer = { associated_portal_role_id = need('portal_role') } })
    end)

    op_case('document360', 'v2_teams_user_id_content_put', function(call)
      call(need('d360_user'), { edit_content_role_customer = { content_permissions = {
        { associated_content_role_id = need('content_role'), access_scope = { access_level = 3 } } } } })
    end)

    op_case('document360', 'v2_teams_user_id_groups_put', function(call)
      call(need('d360_user'), { edit_user_groups_customer = { associated_groups = { need('group1'), need('group2') } } })
    end)

    op_case('document360', 'v2_teams_user_id_delete', function(call) call(need('d360_user')) end)
  end)

  -- ============================================================ documented errors
  describe('documented error answers (response side only)', function()
    it('PortalUsersApi.get_user_by_id: 404 NotFoundError for an unknown user', function()
      check('docspace', 'PortalUsersApi.get_user_by_id(unknown)', function()
        return c.docspace:get_user_by_id('00000000-0000-4000-8000-000000000000')
      end, { status = 404, class = 'NotFoundError' }, 'get_user_by_id')
    end)

    it('UsersApi.get_user: 404 NotFoundError for an unknown user', function()
      check('agilicus', 'UsersApi.get_user(unknown)', function()
        return c.agilicus:get_user('ZZZZZZZZZZZZZZZZZZZZZZ')
      end, { status = 404, class = 'NotFoundError' }, 'get_user')
    end)

    it('UsersApi.create_user: 409 ConflictError for an email that exists (any case)', function()
      local st, body = sb:json('GET', '/agilicus/users?limit=1', { headers = sb.headers.agilicus })
      assert.equals(200, st)
      local u = body.users[1]
      check('agilicus', 'UsersApi.create_user(duplicate)', function()
        return c.agilicus:create_user(B.agilicus_user({ email = u.email:upper(), org_id = u.org_id }))
      end, { status = 409, class = 'ConflictError' }, 'create_user')
    end)

    it('TeamsApi.v2_teams_post: 400 BadRequestError "Existing team member"', function()
      local st, body = sb:json('GET', '/document360/v2/Teams?take=1', { headers = sb.headers.document360 })
      assert.equals(200, st)
      local first = body.result[1]
      local _, roles = sb:json('GET', '/document360/v2/Teams/roles', { headers = sb.headers.document360 })
      local portal
      for _, r in ipairs(roles.result) do if r.role_type == 0 then portal = r.id break end end
      local _, err = check('document360', 'TeamsApi.v2_teams_post(existing)', function()
        return c.document360:v2_teams_post({ add_team_account_customer = {
          email_id = first.email_id, invited_by = first.user_id, associated_portal_role_id = portal,
          content_permissions = {} } })
      end, { status = 400, class = 'BadRequestError' }, 'v2_teams_post')
      assert.equals('Existing team member', err.message)
    end)

    it('Tenants(latest).get: 404 NotFoundError for an unknown tenant', function()
      check('outpost_latest', 'Tenants(latest).get(unknown)', function()
        return c.outpost_latest:get({ tenant_id = 'no-such-tenant' })
      end, { status = 404, class = 'NotFoundError' }, 'get')
    end)

    it('Tenants(v0).get_token_jwt_context: 404 (APIError) with the admin key: no tenant to infer', function()
      check('outpost_v0', 'Tenants(v0).get_token_jwt_context(admin key)', function()
        return c.outpost_v0:get_token_jwt_context()
      end, { status = 404, class = 'APIError' }, 'get_token_jwt_context')
    end)

    it('TeamsApi.v2_teams_user_id_get: 400 BadRequestError for an unknown user', function()
      check('document360', 'TeamsApi.v2_teams_user_id_get(unknown)', function()
        return c.document360:v2_teams_user_id_get('00000000-0000-4000-8000-000000000000')
      end, { status = 400, class = 'BadRequestError' }, 'v2_teams_user_id_get')
    end)

    it('Tenants(v0).get: 401 UnauthorizedError for a wrong admin key', function()
      local bad <close> = assert(provision.Tenants { generation = 'v0', server = px.outpost_v0.url, retries = false,
        auth = { admin_api_key = 'not-the-admin-key' } })
      check('outpost_v0', 'Tenants(v0).get(wrong key)', function()
        return bad:get({ tenant_id = 'northwind' })
      end, { status = 401, class = 'UnauthorizedError' }, 'get')
    end)

    it('Tenants(latest).list: 401 UnauthorizedError for a wrong admin key', function()
      local bad <close> = assert(provision.Tenants { server = px.outpost_latest.url, retries = false,
        auth = { admin_api_key = 'not-the-admin-key' } })
      check('outpost_latest', 'Tenants(latest).list(wrong key)', function()
        return bad:list()
      end, { status = 401, class = 'UnauthorizedError' }, 'list_tenants')
    end)

    it('PortalUsersApi.get_portal_users_count: 429 RateLimitedError past a tiny rate limit', function()
      local st = sb:admin('PUT', '/ratelimit', { limit = 1, window = 60 })
      assert.equals(200, st)
      local ok, e = pcall(function()
        check('docspace', 'PortalUsersApi.get_portal_users_count(1st of 1)', function()
          return c.docspace:get_portal_users_count()
        end)
        -- a client on another transport: the first one's limiter knows the
        -- budget is spent (X-RateLimit-Remaining: 0) and would not send
        local other <close> = assert(provision.PortalUsersApi { server = px.docspace.url, retries = false,
          auth = { username = sb.credentials.docspace.user, password = sb.credentials.docspace.password } })
        local _, err = check('docspace', 'PortalUsersApi.get_portal_users_count(past the limit)', function()
          return other:get_portal_users_count()
        end, { status = 429, class = 'RateLimitedError' }, 'get_portal_users_count')
        assert.is_truthy(err.retry_after)
      end)
      sb:admin('PUT', '/ratelimit', { limit = 1000, window = 60 })
      if not ok then error(e, 0) end
    end)
  end)
end)
