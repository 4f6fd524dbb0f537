-- provision inside nginx: Debian's lua-nginx-module (LuaJIT, Lua 5.1 ABI)
-- runs the library with provision.transport.ngx (cosockets) against the
-- sandbox, a plain nginx (tests/support/nginx.lua: TLS, odd responses) and
-- itself. Scenarios run in content_by_lua and print JSON; this spec (Lua 5.4,
-- outside nginx) starts everything and checks what they report.
local openresty = require("support.openresty")
local sandbox = require("support.sandbox")
local plain_nginx = require("support.nginx")
local json = require("provision.json")
local socket = require("socket")

local ROOT = openresty.root
local ORG = "Nw7kQ2pX9sT4vB8mL1cR3d"

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

-- provision/core.so for LuaJIT: configure once, then `cmake --build` (a
-- no-op when up to date, a rebuild when csrc/ changed).
local function build_luajit()
  local dir = os.getenv("PROVISION_LUAJIT_BUILD") or (ROOT .. "/build-luajit")
  local q = "'" .. dir:gsub("'", "'\\''") .. "'"
  local log = os.tmpname()
  local ok = true
  local f = io.open(dir .. "/CMakeCache.txt")
  if f then f:close() else
    ok = sh(("cmake -S '%s' -B %s -DLUA_PKG=luajit -DCMAKE_BUILD_TYPE=RelWithDebInfo >%s 2>&1"):format(ROOT, q, log))
  end
  ok = ok and sh(("cmake --build %s -j2 >>%s 2>&1"):format(q, log))
  local lf = io.open(log)
  local out = lf and lf:read("a") or ""
  if lf then lf:close() end
  os.remove(log)
  if not ok then error("building provision.core for LuaJIT failed (libluajit2-5.1-dev installed?):\n" .. out) end
  return dir
end

-- Lua source of a module returning the table t (strings, numbers, booleans, nested tables).
local function lua_literal(v)
  local t = type(v)
  if t == "string" then return string.format("%q", v) end
  if t == "number" or t == "boolean" then return tostring(v) end
  local parts = {}
  for k, x in pairs(v) do parts[#parts + 1] = "[" .. lua_literal(k) .. "] = " .. lua_literal(x) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

-- Request bodies checked by provision.validate, run under LuaJIT (inside
-- nginx) and under Lua 5.4 (this process): both must give the same answers.
-- LuaJIT has no integer subtype, so 3 and 3.0 are one value there; the
-- schema's integers must still tell 3 from 3.5. Nothing is sent (a
-- transport that fails every request would show in the results).
local VALIDATION_CASES = [==[
local json = require("provision.json")
return function(provision)
  local sent = 0
  local t = { send = function(_, reqs)
                sent = sent + #reqs
                local out = {}
                for i = 1, #reqs do out[i] = { status = 200, headers = {}, body = "" } end
                return out
              end,
              now = function() return 0 end, sleep = function() end }
  local users = assert(provision.UsersApi({ transport = t }))
  local teams = assert(provision.TeamsApi({ transport = t }))
  local tenants = assert(provision.Tenants({ transport = t, tenant_id = "t1" }))
  local function perm(level) return { { associated_content_role_id = "r1", access_scope = { access_level = level } } } end
  local calls = {
    { users, "create_user", { email = "a@example.com", first_name = 42, status = "activ", roles = { app = "viewer" } } },
    { users, "create_user", { email = "a@example.com", member_of = { "eng" }, created = "2024-05-01T10:00:00" } },
    { users, "create_user", '{"email": "a@example.com", "first_name": 42}' },
    { teams, "v2_teams_post", { add_team_account_customer = { emial_id = "x", email_id = "a b@c", invited_by = "",
                                                              content_permissions = perm(1.5) } } },
    { teams, "v2_teams_user_id_content_put", "u1", { edit_content_role_customer = { content_permissions = perm(3.0) } } },
    { teams, "v2_teams_user_id_content_put", "u1", { edit_content_role_customer = { content_permissions = perm(2 ^ 31) } } },
    { teams, "v2_teams_user_id_groups_put", "u1", { edit_user_groups_customer = { associated_groups = { "g1", json.null } } } },
    { tenants, "upsert", { params = { metadata = { plan = 5 } } } },
    { tenants, "upsert", { params = { metadata = json.null } } },
  }
  local out = {}
  for i, c in ipairs(calls) do
    local args = {}
    for k = 3, #c do args[#args + 1] = c[k] end
    local v, err = c[1][c[2]](c[1], (unpack or table.unpack)(args))
    out[i] = v and "sent" or (err.kind .. ": " .. err.message)
  end
  out[#out + 1] = "sent " .. sent
  return out
end
]==]

-- The scenarios, run inside nginx (Lua 5.1 syntax: this is LuaJIT).
local SCENARIOS = [==[
local provision = require("provision")
local json = require("provision.json")
local T = require("provision.transport.ngx")
local env = require("testenv")
local ORG = env.org

local S = {}

local function fast_retries() return { attempts = 3, base_delay = 0.05, max_delay = 0.1 } end

local function users(t)
  return assert(provision.UsersApi({ server = env.agilicus, auth = { bearer = env.agilicus_token },
                                     transport = t, retries = fast_retries() }))
end

local function teams(t)
  return assert(provision.TeamsApi({ server = env.document360, auth = { api_token = env.d360_token },
                                     transport = t, retries = fast_retries() }))
end

local function errinfo(err)
  if not err or err.kind == nil then return nil end   -- (a success's second value is info)
  return { kind = err.kind, class = err.class, status = err.status, attempts = err.attempts,
           request_sent = err.request_sent, message = err.message, text = tostring(err) }
end

-- The transport records when each exchange ran (for overlap checks).
local function timed(t)
  t.spans = {}
  local exchange = t.exchange
  t.exchange = function(self, spec)
    local s = T.now()
    local r = exchange(self, spec)
    self.spans[#self.spans + 1] = { s, T.now() }
    return r
  end
  return t
end

function S.users()
  local t = assert(T.new({}))
  local api = users(t)
  local out = { curl_loaded_before = package.loaded["provision.transport.curl"] ~= nil }
  local list, info = api:list_users({ org_id = ORG, limit = 2 })
  out.list_n = list and #list.users
  out.list_status = info and info.status
  out.first_email = list and list.users[1] and list.users[1].email
  local created, cerr = api:create_user({ email = "ngx.host@northwind.example", org_id = ORG,
                                          first_name = "Ngx", last_name = "Host" })
  out.create_err = errinfo(cerr)
  out.created_id = created and created.id
  if created then
    local got, gerr = api:get_user(created.id, { org_id = ORG })
    out.got_email = got and got.email
    out.get_err = errinfo(gerr)
  end
  local missing, merr = api:get_user("no-such-user", { org_id = ORG })
  out.missing = missing
  out.not_found = errinfo(merr)
  out.stats = t:stats()
  out.curl_loaded_after = package.loaded["provision.transport.curl"] ~= nil
  return out
end

function S.teams()
  local t = assert(T.new({}))
  local api = teams(t)
  local out = {}
  local list, lerr = api:v2_teams_get({ take = 3 })
  out.list_err = errinfo(lerr)
  out.list_n = list and #list
  local roles = assert(api:v2_teams_roles_get())
  local role
  for _, r in ipairs(roles) do if r.role_type == 0 then role = r.id; break end end
  local added, aerr = api:v2_teams_post({ add_team_account_customer = {
    email_id = "ngx.team@northwind.example", invited_by = "ngx", associated_portal_role_id = role,
    first_name = "Ngx", content_permissions = {} } })
  out.add_err = errinfo(aerr)
  out.added_id = added and added.id
  if added then
    local got, gerr = api:v2_teams_user_id_get(added.id)
    out.got_email = got and got.email_id
    out.get_err = errinfo(gerr)
    local deleted, derr = api:v2_teams_user_id_delete(added.id)
    out.deleted = deleted
    out.delete_err = errinfo(derr)
  end
  out.stats = t:stats()
  return out
end

-- a sandbox fault answers the first GET 503: the client waits (ngx.sleep) and retries
function S.retry()
  local t = assert(T.new({}))
  local api = users(t)
  local slept = {}
  local sleep = t.sleep
  t.sleep = function(s) slept[#slept + 1] = s; return sleep(s) end
  local t0 = T.now()
  local list, info = api:list_users({ org_id = ORG, limit = 1 })
  return { ok = list ~= nil, attempts = info and info.attempts, status = info and info.status,
           err = not list and errinfo(info) or nil, slept = json.array(slept), elapsed = T.now() - t0 }
end

-- several operations at once through client:all
function S.all()
  local t = timed(assert(T.new({})))
  local api = users(t)
  local list = assert(api:list_users({ org_id = ORG, limit = 4 }))
  local calls = {}
  for i, u in ipairs(list.users) do calls[i] = { "get_user", u.id, { org_id = ORG } } end
  t.spans = {}
  local results = api:all(calls)
  local emails = {}
  for i, r in ipairs(results) do emails[i] = r[1] and r[1].email or tostring(r[2]) end
  local expected = {}
  for i, u in ipairs(list.users) do expected[i] = u.email end
  return { emails = emails, expected = expected, spans = t.spans, stats = t:stats() }
end

-- sequential calls on one transport reuse pooled connections
function S.keepalive()
  local t = assert(T.new({}))
  local api = users(t)
  local reused = {}
  for i = 1, 4 do
    local _, info = api:list_users({ org_id = ORG, limit = 1 })
    reused[i] = info and info.status
  end
  return { statuses = reused, stats = t:stats() }
end

-- a kept-alive connection that dies under a request: a GET goes again on a
-- new connection (transparently), a POST is reported, not repeated
function S.stale()
  local t = assert(T.new({}))
  local api = users(t)
  local function fault(rule)
    local r = t:send({ { method = "POST", url = env.sandbox .. "/_sandbox/faults", body = json.encode(rule),
                         headers = { { "Content-Type", "application/json" } } } })[1]
    assert(r.status == 201, "fault not installed")
  end
  assert(api:list_users({ org_id = ORG, limit = 1 }))          -- warm the pool
  fault({ method = "GET", path = "/agilicus/users", sequence = { "close" } })
  local list, info = api:list_users({ org_id = ORG, limit = 1 })
  local out = { get_ok = list ~= nil, get_attempts = info and info.attempts, stale_after_get = t:stats().stale }
  assert(api:list_users({ org_id = ORG, limit = 1 }))
  fault({ method = "POST", path = "/agilicus/users", sequence = { "close" } })
  local created, err = api:create_user({ email = "stale.post@northwind.example", org_id = ORG })
  out.post_created = created ~= nil
  out.post_err = errinfo(err)
  out.post_attempts = err and err.attempts
  local page = assert(api:list_users({ org_id = ORG, email = "stale.post@northwind.example" }))
  out.post_users = #page.users
  out.stats = t:stats()
  return out
end

-- the raw transport against a plain nginx (tests/support/nginx.lua)
local function get(t, url, extra)
  local req = { method = "GET", url = url }
  for k, v in pairs(extra or {}) do req[k] = v end
  return t:send({ req })[1]
end

local function resp_info(r)
  if r.kind then
    return { kind = r.kind, message = r.message, request_sent = r.request_sent, text = tostring(r) }
  end
  return { status = r.status, body = r.body, n = #r.body, version = r.http_version,
           reused = r.reused, new_connections = r.new_connections, header_list_n = #r.header_list }
end

function S.tls()
  -- pooled connections were verified under their location's trust store:
  -- locations with different lua_ssl_trusted_certificate use different pools
  local pool = ngx.var.uri
  local t = assert(T.new({ resolve = { localhost = "127.0.0.1" }, pool = pool }))
  local name_url = "https://localhost:" .. env.tls_port .. "/small.json"
  local ip_url = "https://127.0.0.1:" .. env.tls_port .. "/small.json"
  local insecure = assert(T.new({ verify = false, resolve = { localhost = "127.0.0.1" }, pool = pool }))
  local first = get(t, name_url)
  local second = get(t, name_url)
  return {
    by_name = resp_info(first), again = resp_info(second),
    by_ip = resp_info(get(t, ip_url)),
    insecure = resp_info(get(insecure, name_url)),
    stats = t:stats(),
  }
end

function S.http()
  local t = assert(T.new({ max_body = 1024 * 1024 }))
  local base = env.plain_base
  local out = {}
  local h = get(t, base .. "/headers")
  out.headers = {
    status = h.status, cookie = h.headers["Set-Cookie"], multi = h.headers["x-multi"],
    single = h.headers["X-SINGLE"], n = #h.header_list, lower_only = rawget(h.headers, "X-Single") == nil,
  }
  out.head = resp_info(t:send({ { method = "HEAD", url = base .. "/small.json" } })[1])
  out.no_content = resp_info(get(t, base .. "/status/204"))
  out.not_found = resp_info(get(t, base .. "/status/404"))
  out.big = resp_info(get(t, base .. "/big.bin"))
  out.big_allowed = resp_info(get(t, base .. "/big.bin", { max_body = 16 * 1024 * 1024 }))
  out.total_timeout = resp_info(get(t, base .. "/slow.bin", { timeout = 0.3, max_body = 16 * 1024 * 1024 }))
  out.refused = resp_info(get(t, "http://127.0.0.1:" .. env.closed_port .. "/"))
  out.no_resolver = resp_info(get(t, "http://provision-test.invalid/"))
  out.ftp = resp_info(get(t, "ftp://127.0.0.1/x"))
  out.userinfo = resp_info(get(t, "http://user:pw@127.0.0.1/x"))
  out.crlf_value = resp_info(t:send({ { url = base .. "/echo", headers = { { "X-Test", "a\r\nInjected: 1" } } } })[1])
  out.crlf_name = resp_info(t:send({ { url = base .. "/echo", headers = { { "X-Te\nst", "a" } } } })[1])
  out.nul_value = resp_info(t:send({ { url = base .. "/echo", headers = { ["X-Test"] = "a\0b" } } })[1])
  out.echo = resp_info(t:send({ { url = base .. "/echo?q=1", headers = { { "X-Test", "hello" } } } })[1])
  out.post = resp_info(t:send({ { method = "POST", url = base .. "/upload", body = "0123456789",
                                  headers = { { "Content-Type", "text/plain" } } } })[1])
  out.empty_post = resp_info(t:send({ { method = "POST", url = base .. "/upload" } })[1])
  out.head_body = resp_info(t:send({ { method = "HEAD", url = base .. "/small.json", body = "x" } })[1])
  out.stats = t:stats()
  return out
end

-- this nginx's own odd responses: chunked, close-delimited, trailers, interim 1xx
function S.self_formats()
  local t = assert(T.new({ max_body = 100000 }))
  local base = "http://127.0.0.1:" .. ngx.var.server_port
  return {
    chunked = resp_info(get(t, base .. "/fmt/chunked")),
    close_delimited = resp_info(get(t, base .. "/fmt/close")),
    interim = resp_info(get(t, base .. "/fmt/interim")),
    chunked_big = resp_info(get(t, base .. "/fmt/chunked_big")),
    close_big = resp_info(get(t, base .. "/fmt/close_big")),
    bad_status = resp_info(get(t, base .. "/fmt/garbage")),
    cut = resp_info(get(t, base .. "/fmt/cut")),
  }
end

-- waits on a sandbox delay fault; /t/fast is served meanwhile by the same worker
function S.slow()
  local t0 = T.now()
  local api = users(assert(T.new({})))
  local list, info = api:list_users({ org_id = ORG, limit = 1, email = "delayed@northwind.example" })
  return { start = t0, finish = T.now(), ok = list ~= nil, status = info and info.status, pid = ngx.worker.pid() }
end

function S.fast()
  local t0 = T.now()
  local api = teams(assert(T.new({})))
  local list = api:v2_teams_get({ take = 1 })
  return { start = t0, finish = T.now(), ok = list ~= nil, pid = ngx.worker.pid() }
end

-- the other two APIs, paging, workflows and JWTs, all under LuaJIT
function S.more()
  local t = assert(T.new({}))
  local out = {}
  local outpost = assert(provision.Tenants({ server = env.outpost_latest, transport = t,
    auth = { admin_api_key = env.outpost_key }, retries = fast_retries() }))
  for i = 1, 5 do assert(outpost:upsert({ tenant_id = "ngx-" .. i })) end
  local all, aerr = outpost:collect("list", { limit = 2 })
  out.tenants = all and #all
  out.tenants_err = errinfo(aerr)
  local token, terr = outpost:get_token({ tenant_id = "ngx-1" })
  out.token = type(token) == "table" and type(token.token) == "string"
  out.token_err = errinfo(terr)
  local docspace = assert(provision.PortalUsersApi({ server = env.docspace, transport = t,
    auth = { Bearer = env.docspace_bearer }, retries = fast_retries() }))
  local n, nerr = docspace:get_portal_users_count()
  out.portal_users = n
  out.portal_err = errinfo(nerr)
  local api = users(t)
  local every, eerr = api:collect("list_users", { org_id = ORG, limit = 3 })
  local one = assert(api:list_users({ org_id = ORG }))
  out.paged, out.unpaged, out.paged_err = every and #every, #one.users, errinfo(eerr)
  local workflow = require("provision.workflow")
  local person = { email = "ngx.flow@northwind.example", first_name = "Flow", last_name = "Ngx", org_id = ORG }
  out.ensure = { select(2, workflow.ensure_agilicus_user(api, person)) }
  out.ensure_again = { select(2, workflow.ensure_agilicus_user(api, person)) }
  out.remove = { select(2, workflow.remove_agilicus_user(api, ORG, person.email)) }
  return out
end

-- api:bulk from an ngx.timer (a background job in nginx): 40 creates through
-- injected faults, 8 in flight on light threads; the summary goes to a
-- shared dict that the content handler waits on.
local function bulk_job(premature, n)
  if premature then return end
  local dict = ngx.shared.jobs
  local t = assert(T.new({}))
  local api = assert(provision.UsersApi({ server = env.agilicus, auth = { bearer = env.agilicus_token },
                                          transport = t, retries = { attempts = 5, base_delay = 0.05, max_delay = 0.2 } }))
  local calls = {}
  for i = 1, n do
    calls[i] = { "create_user", { email = "bulk" .. i .. "@northwind.example", org_id = ORG, first_name = "B" } }
  end
  local ended = {}
  local ok, res, sum = pcall(api.bulk, api, calls, { concurrency = 8,
    on_result = function(i) ended[#ended + 1] = i end })
  if not ok then dict:set("bulk", json.encode({ error = tostring(res) })); return end
  local errs = {}
  for i, r in ipairs(res) do
    if r[1] == nil then errs[#errs + 1] = i .. ": " .. tostring(r[2]) end
  end
  local emails = {}
  for u in api:each("list_users", { org_id = ORG }) do emails[#emails + 1] = u.email end
  dict:set("bulk", json.encode({ ok = sum.ok, failed = sum.failed, unknown = sum.unknown,
    read_backs = sum.read_backs, requests = sum.requests, errors = json.array(errs),
    emails = json.array(emails), ended = #ended,
    stats = t:stats() }))
end

function S.bulk()
  local dict = ngx.shared.jobs
  dict:delete("bulk")
  assert(ngx.timer.at(0, bulk_job, 40))
  local deadline = ngx.now() + 120
  while ngx.now() < deadline do
    local v = dict:get("bulk")
    if v then return json.decode(v) end
    ngx.sleep(0.05)
    ngx.update_time()
  end
  return { error = "the bulk job in the timer did not finish within 120 s" }
end

-- a call held back 2 s at the sandbox does not hold the calls behind it
function S.bulk_stall()
  local t = timed(assert(T.new({})))
  local api = users(t)
  local calls = {}
  for i = 1, 12 do calls[i] = { "get_user", "u" .. i, { org_id = ORG } } end
  local ends = {}
  local started = T.now()
  local _, sum = api:bulk(calls, { concurrency = 4,
    on_result = function(i) ends[i] = T.now() - started end })
  return { ends = ends, done = sum.done, elapsed = sum.elapsed }
end

-- user hooks and events on cosockets: the spec injects one 503 into the
-- first list_users; hooks yield (ngx.sleep) as cosocket code may
function S.hooks()
  local t = assert(T.new({}))
  local trace, evs = {}, {}
  local function client(extra)
    local opts = { server = env.agilicus, auth = { bearer = env.agilicus_token }, transport = t,
                   retries = fast_retries() }
    for k, v in pairs(extra) do opts[k] = v end
    return assert(provision.UsersApi(opts))
  end
  local api = client({
    events = function(ev)
      evs[#evs + 1] = { outcome = ev.outcome, status = ev.status, request_id = ev.request_id, attempt = ev.attempt,
                        retry_reason = ev.retry_reason, reused = ev.connection_reused, path = ev.path }
    end,
    hooks = {
      before_request = function(_, ctx) ngx.sleep(0); trace[#trace + 1] = "before_request:" .. ctx.attempt end,
      after_response = function(resp, ctx) trace[#trace + 1] = "after_response:" .. ctx.attempt .. ":" .. resp.status end,
      on_retry = function(ctx, _, reason) trace[#trace + 1] = "on_retry:" .. ctx.attempt .. ":" .. reason end,
      on_error = function(err, ctx) trace[#trace + 1] = "on_error:" .. ctx.attempt .. ":" .. err.class end,
    },
  })
  local out = {}
  local list = api:list_users({ org_id = ORG, limit = 1 })
  out.ok = list ~= nil
  local _, nf = api:get_user("no-such-user", { org_id = ORG })
  out.trace, out.events = trace, evs
  out.is_api = nf:is(provision.errors.APIError)
  out.is_not_found = nf:is("NotFoundError")
  out.is_transport = nf:is(provision.errors.TransportError)
  -- a hook moves the request to the plain nginx's /echo and sets X-Test there
  local web = assert(provision.UsersApi({ server = env.plain_base, transport = t, retries = false,
    hooks = { before_request = function(req)
      req.url = env.plain_base .. "/echo"
      req:set_header("X-Test", "hooked")
    end } }))
  -- /echo answers text, which get_user refuses (it returns a User): the body is in the error
  local echoed, eerr = web:get_user("u1")
  out.echo = echoed or (eerr and eerr.kind == "decode" and eerr.body)
  local _, rerr = client({ hooks = { after_response = function() error("boom", 0) end } })
    :list_users({ org_id = ORG, limit = 1 })
  out.raised = { kind = rerr.kind, class = rerr.class, hook = rerr.hook, message = rerr.message }
  local _, serr = client({ hooks = { before_request = function() return nil, "not now" end } })
    :list_users({ org_id = ORG, limit = 1 })
  out.stopped = { kind = serr.kind, hook = serr.hook, outcome = serr.outcome, message = serr.message }
  local before = 0
  local bulk_api = client({ hooks = { before_request = function() before = before + 1 end } })
  local calls = {}
  for i = 1, 6 do calls[i] = { "get_user", "u" .. i, { org_id = ORG } } end
  local results, sum = bulk_api:bulk(calls, { concurrency = 3 })
  out.bulk_before, out.bulk_done, out.bulk_class = before, sum.done, results[6][2].class
  return out
end

-- every library module loads (the curl transport is left out on purpose)
function S.modules()
  local failed = {}
  for _, name in ipairs(env.modules) do
    local ok, err = pcall(require, name)
    if not ok then failed[#failed + 1] = name .. ": " .. tostring(err) end
  end
  return { n = #env.modules, failed = json.array(failed),
           curl = package.loaded["provision.transport.curl"] ~= nil }
end

function S.validation()
  return { results = json.array(require("validation_cases")(provision)) }
end

function S.loaded()
  local names = {}
  for name in pairs(package.loaded) do
    if name:find("^provision") then names[#names + 1] = name end
  end
  table.sort(names)
  return { modules = json.array(names), curl = package.loaded["provision.transport.curl"] ~= nil,
           lua = _VERSION, jit = jit and jit.version }
end

local M = {}
function M.run(name)
  local f = S[name]
  if not f then ngx.status = 404; ngx.say("no scenario ", name); return end
  local ok, res = pcall(f)
  if not ok then
    ngx.status = 500
    ngx.say(json.encode({ error = tostring(res) }))
    return
  end
  ngx.header["Content-Type"] = "application/json"
  ngx.say(assert(json.encode(res)))
end
return M
]==]

-- Odd response formats served by the test nginx itself (raw downstream socket).
local FORMATS = [==[
local M = {}
local function raw(s)
  local sock = assert(ngx.req.socket(true))
  sock:send(s)
end
function M.chunked()
  raw("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
    .. "5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: done\r\n\r\n")
end
function M.close()
  raw("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nuntil the end")
end
function M.interim()
  raw("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
    .. "HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-Folded: one\r\n  two\r\n\r\nok")
end
function M.chunked_big()
  local parts = { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" }
  for _ = 1, 40 do parts[#parts + 1] = "1000\r\n" .. string.rep("c", 4096) .. "\r\n" end
  parts[#parts + 1] = "0\r\n\r\n"
  raw(table.concat(parts))
end
function M.close_big()
  raw("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" .. string.rep("z", 200000))
end
function M.garbage()
  raw("SSH-2.0-OpenSSH\r\n\r\n")
end
function M.cut()
  raw("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
end
return M
]==]

describe("provision inside nginx (lua-nginx-module, LuaJIT)", function()
  local sb, web, srv

  local function scenario(name)
    local status, body = srv:get("/t/" .. name)
    assert(status, "no answer from nginx: " .. tostring(body))
    local doc = json.decode(body)
    assert(status == 200 and type(doc) == "table",
      ("scenario %s: HTTP %s %s\n%s"):format(name, tostring(status), tostring(body), srv:log():sub(-3000)))
    return doc
  end

  setup(function()
    local build = build_luajit()
    sb = sandbox.start({ args = { "--quiet" } })
    web = plain_nginx.start()
    local closed_port = require("support.proc").refused_port()
    local env = {
      org = ORG, agilicus = sb.agilicus, agilicus_token = sb.credentials.agilicus.token,
      document360 = sb.document360, d360_token = sb.credentials.document360.api_token,
      tls_port = web.tls_port, plain_base = web.base, closed_port = tonumber(closed_port),
      outpost_latest = sb.outpost_latest, outpost_key = sb.credentials.outpost.admin_api_key,
      docspace = sb.docspace, docspace_bearer = sb.credentials.docspace.bearer_token,
      modules = {}, sandbox = sb.url,
    }
    local p = io.popen("cd '" .. ROOT .. "/lua' && find provision -name '*.lua' | sort")
    for path in p:lines() do
      local name = path:gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
      if name ~= "provision.transport.curl" then env.modules[#env.modules + 1] = name end
    end
    p:close()
    srv = openresty.start({
      build = build,
      modules = { scenarios = SCENARIOS, formats = FORMATS, validation_cases = VALIDATION_CASES,
                  testenv = "return " .. lua_literal(env) .. "\n" },
      http = "lua_shared_dict jobs 1m;",
      locations = ([=[
    location ~ ^/t/(tls)$ {
      lua_ssl_trusted_certificate %s;
      lua_ssl_verify_depth 2;
      content_by_lua_block { require("scenarios").run(ngx.var[1]) }
    }
    location ~ ^/t/(\w+)$ { content_by_lua_block { require("scenarios").run(ngx.var[1]) } }
    location ~ ^/untrusted/(tls)$ { content_by_lua_block { require("scenarios").run(ngx.var[1]) } }
    location ~ ^/fmt/(\w+)$ { content_by_lua_block { require("formats")[ngx.var[1]]() } }
]=]):format(web.ca_file),
    })
  end)

  teardown(function()
    if srv then srv:stop() end
    if web then web:stop() end
    if sb then sb:stop() end
  end)

  before_each(function()
    assert.are.equal(200, (sb:admin("POST", "/reset")))
    sb:admin("DELETE", "/faults")
  end)

  it("loads the library under LuaJIT with the LuaJIT build of provision.core", function()
    local doc = scenario("loaded")
    assert.are.equal("Lua 5.1", doc.lua)
    assert.matches("^LuaJIT", doc.jit)
    assert.is_false(doc.curl)
  end)

  it("runs UsersApi calls (list, create, get, 404) without ever loading the curl transport", function()
    local doc = scenario("users")
    assert.are.equal(200, doc.list_status)
    assert.are.equal(2, doc.list_n)
    assert.is_string(doc.first_email)
    assert.is_nil(doc.create_err)
    assert.is_string(doc.created_id)
    assert.are.equal("ngx.host@northwind.example", doc.got_email)
    assert.is_nil(doc.missing)
    assert.are.equal("NotFoundError", doc.not_found.class)
    assert.are.equal(404, doc.not_found.status)
    assert.are.equal("http", doc.not_found.kind)
    assert.is_false(doc.curl_loaded_before)
    assert.is_false(doc.curl_loaded_after)
    assert.are.equal(4, doc.stats.requests)
    assert.are.equal(0, doc.stats.errors)
  end)

  it("runs TeamsApi calls (list, roles, add, get, delete)", function()
    local doc = scenario("teams")
    assert.is_nil(doc.list_err)
    assert.is_true(doc.list_n >= 1)
    assert.is_nil(doc.add_err)
    assert.is_string(doc.added_id)
    assert.are.equal("ngx.team@northwind.example", doc.got_email)
    assert.is_nil(doc.delete_err)
  end)

  it("retries through a sandbox 503, sleeping with ngx.sleep", function()
    assert.are.equal(201, (sb:admin("POST", "/faults",
      { method = "GET", path = "/agilicus/users", sequence = { "503", "pass" } })))
    local doc = scenario("retry")
    assert.is_true(doc.ok, doc.err and doc.err.text)
    assert.are.equal(2, doc.attempts)
    assert.are.equal(200, doc.status)
    assert.are.equal(1, #doc.slept)
  end)

  it("runs client:all requests concurrently, results in order", function()
    -- each GET of a user waits 300 ms at the sandbox: run one after the other
    -- the spans would not overlap
    assert.are.equal(201, (sb:admin("POST", "/faults",
      { method = "GET", pattern = "^/agilicus/users/[^/?]+", delay_ms = 300 })))
    local doc = scenario("all")
    assert.are.same(doc.expected, doc.emails)
    assert.are.equal(4, #doc.spans)
    local latest_start, earliest_end = -math.huge, math.huge
    for _, s in ipairs(doc.spans) do
      latest_start = math.max(latest_start, s[1])
      earliest_end = math.min(earliest_end, s[2])
    end
    assert.is_true(latest_start < earliest_end, "all four exchanges were in flight together")
  end)

  it("keeps connections alive across calls (pooled cosockets)", function()
    local doc = scenario("keepalive")
    assert.are.same({ 200, 200, 200, 200 }, doc.statuses)
    assert.is_true(doc.stats.reused >= 3, "reused " .. doc.stats.reused)
    assert.is_true(doc.stats.connections <= 1)
  end)

  it("sends a GET again when its pooled connection dies, a POST only after a read-back", function()
    local doc = scenario("stale")
    assert.is_true(doc.get_ok)
    assert.are.equal(1, doc.get_attempts)          -- not a client retry: the transport's
    assert.are.equal(1, doc.stale_after_get)
    -- the POST may have been acted on: it is not sent again until a
    -- read-back (by e-mail) shows it was not, and then it is created once
    assert.is_true(doc.post_created, doc.post_err and doc.post_err.text)
    assert.are.equal(1, doc.post_users)
  end)

  it("verifies TLS: accepted with lua_ssl_trusted_certificate, refused without, host name checked", function()
    local status, body = srv:get("/untrusted/tls")
    assert.are.equal(200, status, body)
    local u = json.decode(body)
    assert.are.equal("tls", u.by_name.kind, u.by_name.text)
    assert.is_false(u.by_name.request_sent)
    assert.matches("certificate", u.by_name.message)
    assert.are.equal(200, u.insecure.status)

    local doc = scenario("tls")
    assert.are.equal(200, doc.by_name.status, doc.by_name.text)
    assert.are.equal(web.json, doc.by_name.body)
    assert.are.equal(200, doc.again.status)
    assert.is_true(doc.again.reused > 0, "second TLS request on a pooled connection")
    -- the certificate names 127.0.0.1 as an IP SAN, but nginx checks only DNS names
    assert.are.equal("tls", doc.by_ip.kind, doc.by_ip.text)
    assert.is_false(doc.by_ip.request_sent)
    assert.are.equal(200, doc.insecure.status)

    -- and the pool of the trusted location does not leak into the untrusted one
    status, body = srv:get("/untrusted/tls")
    assert.are.equal(200, status, body)
    assert.are.equal("tls", json.decode(body).by_name.kind)
  end)

  it("speaks HTTP/1.1 with a plain nginx: headers, HEAD, 204, caps, timeouts and refused input", function()
    local doc = scenario("http")
    assert.are.equal("a=1\nb=2", doc.headers.cookie)
    assert.are.equal("one, two", doc.headers.multi)
    assert.are.equal("yes", doc.headers.single)
    assert.is_true(doc.headers.lower_only)
    assert.is_true(doc.headers.n >= 7)
    assert.are.equal(200, doc.head.status)
    assert.are.equal(0, doc.head.n)
    assert.are.equal(204, doc.no_content.status)
    assert.are.equal(404, doc.not_found.status)
    assert.are.equal("status 404", doc.not_found.body)
    assert.are.equal("too_large", doc.big.kind)
    assert.are.equal(10 * 1024 * 1024, doc.big_allowed.n)
    assert.are.equal("timeout", doc.total_timeout.kind)
    assert.are.equal("connect", doc.refused.kind)
    assert.is_false(doc.refused.request_sent)
    assert.are.equal("dns", doc.no_resolver.kind)
    assert.is_false(doc.no_resolver.request_sent)
    for _, k in ipairs({ "ftp", "userinfo", "crlf_value", "crlf_name", "nul_value", "head_body" }) do
      assert.are.equal("invalid_argument", doc[k].kind, k)
      assert.is_false(doc[k].request_sent, k)
    end
    assert.is_nil(doc.crlf_value.message:find("Injected", 1, true))
    assert.are.equal("GET /echo?q=1 hello", doc.echo.body)
    assert.matches("^POST 10 ", doc.post.body)
    assert.matches("^POST 0 ", doc.empty_post.body)
    assert.is_true(doc.stats.reused > 0)
  end)

  it("reads chunked, close-delimited and interim responses; caps them; reports broken ones", function()
    local doc = scenario("self_formats")
    assert.are.equal("hello world", doc.chunked.body)
    assert.are.equal(2, doc.chunked.header_list_n)  -- Content-Type, Transfer-Encoding (X-Trailer: trailer_list)
    assert.are.equal("until the end", doc.close_delimited.body)
    assert.are.equal(201, doc.interim.status)
    assert.are.equal("ok", doc.interim.body)
    assert.are.equal("too_large", doc.chunked_big.kind)
    assert.are.equal("too_large", doc.close_big.kind)
    assert.are.equal("protocol", doc.bad_status.kind)
    assert.are.equal("network", doc.cut.kind)
    assert.is_true(doc.cut.request_sent)
  end)

  it("runs Tenants and PortalUsersApi, paging, tenant JWTs and workflows", function()
    local doc = scenario("more")
    assert.is_nil(doc.tenants_err)
    assert.is_true(doc.tenants >= 5)
    assert.is_nil(doc.token_err)
    assert.is_true(doc.token)
    assert.is_nil(doc.portal_err)
    assert.is_number(doc.portal_users)
    assert.is_nil(doc.paged_err)
    assert.are.equal(doc.unpaged, doc.paged)
    assert.are.same({ "created" }, doc.ensure)
    assert.are.same({ "unchanged" }, doc.ensure_again)
    assert.are.same({ "deleted" }, doc.remove)
  end)

  it("runs api:bulk from an ngx.timer: every create settled once through faults", function()
    local rules = {}
    for _, k in ipairs({ "502", "503", "close_after", "truncate", "close" }) do
      rules[#rules + 1] = { path = "/agilicus/users", probability = 0.04, action = k }
    end
    assert.are.equal(201, (sb:admin("POST", "/faults", { rules = rules, seed = 11 })))
    local doc = scenario("bulk")
    assert.is_nil(doc.error)
    assert.are.same({}, doc.errors)
    assert.are.equal(40, doc.ok)
    assert.are.equal(0, doc.failed)
    assert.are.equal(0, doc.unknown)
    assert.are.equal(40, doc.ended)
    local count = {}
    for _, e in ipairs(doc.emails) do count[e] = (count[e] or 0) + 1 end
    for i = 1, 40 do assert.are.equal(1, count["bulk" .. i .. "@northwind.example"], "bulk" .. i) end
    local _, f = sb:admin("GET", "/faults")
    local hits = 0
    for _, r in ipairs(f.rules) do hits = hits + (r.hits or 0) end
    assert.is_true(hits > 0, "faults were injected")
  end)

  it("refills bulk slots as calls end: a 2 s call holds nobody else", function()
    assert.are.equal(201, (sb:admin("POST", "/faults",
      { method = "GET", pattern = "^/agilicus/users/u1$", delay_ms = 2000 })))
    local doc = scenario("bulk_stall")
    assert.are.equal(12, doc.done)
    for i = 2, 12 do
      assert.is_true(doc.ends[i] < doc.ends[1], "call " .. i .. " ended before the slow one")
    end
  end)

  it("runs user hooks and events inside nginx: order, changes, stops, raises, bulk, err:is", function()
    sb:admin("DELETE", "/log")
    assert.are.equal(201, (sb:admin("POST", "/faults",
      { method = "GET", path = "/agilicus/users", sequence = { "503", "pass" } })))
    local doc = scenario("hooks")
    assert.is_true(doc.ok)
    assert.are.same({ "before_request:1", "after_response:1:503", "on_retry:1:http_503",
                      "before_request:2", "after_response:2:200",
                      "before_request:1", "after_response:1:404", "on_error:1:NotFoundError" }, doc.trace)
    local _, logged = sb:admin("GET", "/log")
    assert.are.equal(3, #doc.events)
    for i = 1, 3 do
      assert.are.equal(logged.entries[i].request_id, doc.events[i].request_id, "event " .. i)
      assert.is_nil(doc.events[i].path:find("?", 1, true))
    end
    assert.are.same({ "retry", "ok", "error" }, { doc.events[1].outcome, doc.events[2].outcome, doc.events[3].outcome })
    assert.are.equal("http_503", doc.events[2].retry_reason)
    assert.is_true(doc.events[3].reused)
    assert.is_true(doc.is_api)
    assert.is_true(doc.is_not_found)
    assert.is_false(doc.is_transport)
    assert.are.equal("GET /echo hooked", doc.echo)
    assert.are.same({ kind = "hook", class = "HookError", hook = "after_response",
                      message = "after_response hook raised: boom" }, doc.raised)
    assert.are.same({ kind = "hook", hook = "before_request", outcome = "not_applied",
                      message = "before_request hook stopped the call: not now" }, doc.stopped)
    assert.are.equal(6, doc.bulk_before)
    assert.are.equal(6, doc.bulk_done)
    assert.are.equal("NotFoundError", doc.bulk_class)
  end)

  it("validates request bodies under LuaJIT exactly as under Lua 5.4", function()
    local doc = scenario("validation")
    local here = assert(load(VALIDATION_CASES, "=validation_cases"))()(require("provision"))
    assert.are.same(here, doc.results)
    assert.are.equal("sent 2", here[#here])
    assert.matches("user.first_name: expected a string, got an integer", here[1], 1, true)
    assert.matches("access_level: expected an integer, got a number with a fraction", here[4], 1, true)
    assert.are.equal("sent", here[5])
    assert.matches("access_level: expected one of 0, 1, 2, 3, 4, 5, 6, got 2147483648", here[6], 1, true)
  end)

  it("loads every library module under LuaJIT, and never the curl transport", function()
    local doc = scenario("modules")
    assert.is_true(doc.n >= 15)
    assert.are.same({}, doc.failed)
    assert.is_false(doc.curl)
  end)

  it("does not block the worker: a request is served while another waits on the sandbox", function()
    assert.are.equal(201, (sb:admin("POST", "/faults",
      { method = "GET", path = "/agilicus/users", delay_ms = 500, times = 1 })))
    local function send(path)
      local c = assert(socket.tcp())
      c:settimeout(10)
      assert(c:connect("127.0.0.1", srv.port))
      assert(c:send("GET " .. path .. " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
      return c
    end
    local function finish(c)
      local raw = c:receive("*a")
      c:close()
      local body = raw:match("\r\n\r\n(.*)$")
      body = body:match("(%b{})")
      return json.decode(body), socket.gettime()
    end
    local slow = send("/t/slow")
    socket.sleep(0.1)
    local fast = send("/t/fast")
    local fast_doc, fast_done = finish(fast)
    local slow_doc, slow_done = finish(slow)
    assert.is_true(slow_doc.ok and fast_doc.ok)
    assert.are.equal(slow_doc.pid, fast_doc.pid)            -- one worker served both
    assert.is_true(fast_doc.start > slow_doc.start)         -- fast began after slow began ...
    assert.is_true(fast_doc.finish < slow_doc.finish)       -- ... and ended while slow still waited
    assert.is_true(fast_done <= slow_done)
    assert.is_true(slow_doc.finish - slow_doc.start >= 0.45) -- slow really waited on the fault
  end)
end)

describe("provision.transport.ngx outside nginx", function()
  local T = require("provision.transport.ngx")

  it("loads under Lua 5.4 but refuses to make a transport without ngx", function()
    local t, err = T.new({})
    assert.is_nil(t)
    assert.are.equal("invalid_argument", err.kind)
    assert.matches("nginx", tostring(err))
  end)

  it("parses only http(s) URLs, with ports, IPv6 literals and no user info", function()
    local u = assert(T._parse_url("https://API.Example.com/v1/users?x=1#frag"))
    assert.are.same({ "https", "api.example.com", 443, "/v1/users?x=1", "API.Example.com" },
                    { u.scheme, u.host, u.port, u.target, u.authority })
    u = assert(T._parse_url("http://127.0.0.1:8080?q"))
    assert.are.same({ 8080, "/?q", "127.0.0.1:8080" }, { u.port, u.target, u.authority })
    u = assert(T._parse_url("http://[::1]:81/"))
    assert.are.same({ "[::1]", "::1", 81 }, { u.host, u.sni, u.port })
    for _, bad in ipairs({ "ftp://h/", "http://u:p@h/", "http://h:0/", "http://h:99999/", "http:///x",
                           "http://h/a b", "http://h/\r\n", "//h/x", "http://h:x/" }) do
      local ok, err = T._parse_url(bad)
      assert.is_nil(ok, bad)
      assert.is_string(err, bad)
    end
  end)
end)
