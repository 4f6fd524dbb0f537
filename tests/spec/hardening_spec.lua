-- The library's hardening: no secret in an error, bad settings as
-- invalid_argument (never a raise), capped messages, error envelopes,
-- credentials per operation, Ctrl-C in the CLI, Outpost's tenant id first;
-- and the behaviour scripts/mutate.lua's code changes must break (retries,
-- redirects, TLS host names, header checks). Against real parts: the echo
-- server, the sandbox, openssl s_server, bin/provision as a subprocess.
local provision = require("provision")
local json = require("provision.json")
local echo_support = require("support.echo")
local sandbox = require("support.sandbox")
local proc = require("support.proc")
local socket = require("socket")
local Curl = require("provision.transport.curl")

local ROOT = debug.getinfo(1, "S").source:sub(2):match("^(.*)/tests/spec/[^/]*$") or "."
local SECRET = "zq-hardening-SECRET-91"
local TOKEN = "zq-hardening-TOKEN-37"

local q = proc.quote

local function enc(s)
  return (s:gsub("[^%w]", function(ch) return string.format("%%%02X", ch:byte()) end))
end

local function no_secret(err, ...)
  for _, s in ipairs({ SECRET, ... }) do
    assert.is_nil(tostring(err.message):find(s, 1, true), "secret in message: " .. tostring(err.message))
    assert.is_nil(tostring(err):find(s, 1, true), "secret in tostring: " .. tostring(err))
  end
end

-- A real transport that counts what it sends.
local function counting_transport()
  local real = assert(Curl.new({ timeout = 10 }))
  local t = { sent = 0 }
  function t.send(_, reqs) t.sent = t.sent + #reqs; return real:send(reqs) end
  t.now, t.sleep = Curl.now, Curl.sleep
  function t.close() real:close() end
  return t
end

local function closed_port()
  local port = proc.free_port()
  return port
end

describe("hardening", function()
  local echo, echo2, sb

  setup(function()
    echo = echo_support.start()
    echo2 = echo_support.start()
    sb = sandbox.start({ args = { "--quiet" } })
  end)
  teardown(function()
    if echo then echo:stop() end
    if echo2 then echo2:stop() end
    if sb then sb:stop() end
  end)

  local function agilicus(opts)
    opts = opts or {}
    opts.server = opts.server or echo.url
    opts.auth = opts.auth or { bearer = TOKEN }
    return assert(provision.UsersApi(opts))
  end

  local function reply(status, body)
    return echo.url .. "/reply?status=" .. status .. "&body=" .. enc(body) .. "#"
  end

  local function fault(rule)
    local status, body = sb:admin("POST", "/faults", rule)
    assert.are.equal(201, status, body and body.error)
  end

  local function sandbox_log()
    local status, body = sb:admin("GET", "/log")
    assert.are.equal(200, status)
    return body.entries
  end

  before_each(function()
    sb:admin("DELETE", "/faults")
    sb:admin("DELETE", "/log")
  end)

  describe("secrets", function()
    it("refuses an OAuth2 token_url holding user:password@, as server URLs are refused", function()
      local url = "http://admin:" .. SECRET .. "@127.0.0.1:" .. closed_port() .. "/oauth/token"
      local api, err = provision.PortalUsersApi({ server = echo.url,
        auth = { OAuth2 = { token_url = url, client_id = "id", client_secret = "cs-1" } } })
      assert.is_nil(api)
      assert.are.equal("invalid_argument", err.kind)
      assert.matches("token_url", err.message)
      no_secret(err)
      -- a credential table changed after the client was made: refused when
      -- the token is due, before anything is sent
      local creds = { OAuth2 = { token_url = echo.url .. "/oauth/token", client_id = "id", client_secret = "cs-1" } }
      local t = counting_transport()
      local ds = assert(provision.PortalUsersApi({ server = echo.url, auth = creds, transport = t }))
      creds.OAuth2.token_url = url
      local r, e = ds:get_portal_users_count()
      assert.is_nil(r)
      assert.are.equal("auth", e.kind)
      no_secret(e)
      assert.are.equal(0, t.sent)
      t.close()
    end)

    it("keeps credentials out of the errors of credentials it cannot use", function()
      local cases = {
        { provision.UsersApi, { bearer = "tok " .. SECRET } },                       -- a space in a token
        { provision.UsersApi, { bearer = SECRET .. "\n" } },                         -- LF in a token
        { provision.PortalUsersApi, { username = "ad:min", password = SECRET } },    -- ':' in a Basic user
        { provision.PortalUsersApi, { OAuth2 = { client_secret = SECRET } } },        -- no token_url
        { provision.PortalUsersApi, { asc_auth_key = SECRET .. ";x" } },             -- ';' in a cookie
        { provision.TeamsApi, { api_token = SECRET .. "\0" } },
      }
      for i, c in ipairs(cases) do
        local t = counting_transport()
        local api = assert(c[1]({ server = echo.url, auth = c[2], transport = t }))
        local op = ({ [provision.UsersApi] = "list_users", [provision.PortalUsersApi] = "get_portal_users_count",
                      [provision.TeamsApi] = "v2_teams_groups_get" })[c[1]]
        local r, err = api[op](api)
        assert.is_nil(r, "case " .. i)
        assert.are.equal("auth", err.kind, "case " .. i)
        no_secret(err)
        assert.are.equal(0, t.sent, "case " .. i)
        t.close()
      end
    end)

    it("keeps the client secret out of OAuth2 token errors", function()
      for _, url in ipairs({ echo.url .. "/status/401", echo.url .. "/no-token-here",
                             "http://127.0.0.1:" .. closed_port() .. "/oauth/token" }) do
        local ds = assert(provision.PortalUsersApi({ server = echo.url, retries = false,
          auth = { OAuth2 = { token_url = url, client_id = "client-7", client_secret = SECRET } } }))
        local r, err = ds:get_portal_users_count()
        assert.is_nil(r, url)
        assert.are.equal("auth", err.kind, url)
        no_secret(err, require("provision.core").b64encode("client-7:" .. SECRET))
      end
    end)

    it("reports a config file's syntax error by line, without the text near it", function()
      local dir = os.tmpname()
      os.remove(dir)
      os.execute("mkdir -p " .. q(dir))
      local path = dir .. "/config.lua"
      proc.write_file(path, 'return {\n  agilicus = { token = "' .. SECRET .. ' },\n}\n')
      local out, errf = dir .. "/out", dir .. "/err"
      local _, _, code = os.execute("env -i PATH=" .. q(os.getenv("PATH")) .. " HOME=" .. q(dir)
        .. " lua5.4 " .. q(ROOT .. "/bin/provision") .. " --config " .. q(path)
        .. " agilicus list_users >" .. q(out) .. " 2>" .. q(errf) .. " </dev/null")
      local stdout, stderr = proc.read_file(out), proc.read_file(errf)
      os.execute("rm -rf " .. q(dir))
      assert.are.equal(2, code, stderr)
      assert.is_truthy(stderr:find("syntax error on line 2", 1, true), stderr)
      assert.is_nil(stderr:find(SECRET, 1, true), stderr)
      assert.is_nil(stdout:find(SECRET, 1, true))
    end)
  end)

  describe("settings are checked up front", function()
    local bad_calls = {
      { timeout = -1 }, { timeout = "1" }, { max_body = 1.5 }, { max_body = -1 }, { connect_timeout = -2 },
      { headers = { "X-A: b" } }, { headers = "X-A: b" }, { headers = { { "X-A", "a\r\nb" } } },
      { headers = { { "X A", "b" } } }, { headers = { ["X-A"] = "b" } }, { headers = { { "X-A" } } },
      { retries = "3" }, { retries = -1 }, { retries = { atempts = 2 } }, { retries = { attempts = 0 } },
      { retries = { base_delay = "soon" } }, { server = 5 }, { tmeout = 1 },
    }

    it("a bad _call setting is an invalid_argument error, not a raise, and nothing is sent", function()
      local t = counting_transport()
      local api = agilicus({ transport = t })
      for i, call in ipairs(bad_calls) do
        local ok, r, err = pcall(api.get_user, api, "u", { _call = call })
        assert.is_true(ok, "case " .. i .. " raised: " .. tostring(r))
        assert.is_nil(r, "case " .. i)
        assert.are.equal("invalid_argument", err.kind, "case " .. i)
        assert.are.equal("not_applied", err.outcome, "case " .. i)
        assert.is_false(err.request_sent, "case " .. i)
      end
      -- the same for a wrong argument, an unknown parameter, an unknown operation
      for i, e in ipairs({ select(2, api:get_user({})), select(2, api:get_user("u", { org_idd = "o" })),
                           select(2, api:call("get_usr")) }) do
        assert.are.equal("invalid_argument", e.kind, "argument case " .. i)
        assert.are.equal("not_applied", e.outcome, "argument case " .. i)
        assert.is_false(e.request_sent, "argument case " .. i)
      end
      assert.are.equal(0, t.sent)
      assert.matches("has no operation 'get_usr'; did you mean get_user?", select(2, api:call("get_usr")).message, 1, true)
      assert.matches("has no operation 'list_usres'; did you mean list_users?",
        select(2, api:collect("list_usres")).message, 1, true)
      local _, err = api:get_user("u", { _call = { tmeout = 1 } })
      assert.matches("did you mean timeout", err.message, 1, true)
      -- good settings still go through
      local got = assert(api:get_user("u", { _call = { timeout = 5, connect_timeout = 0, max_body = 4096,
        retries = { attempts = 2, base_delay = 0 }, headers = { { "X-Req", "1" }, { "X-N", 2 } } } }))
      assert.are.equal("1", got.headers["x-req"])
      assert.are.equal("2", got.headers["x-n"])
      t.close()
    end)

    it("one bad call in client:all fails in place; the others run", function()
      local api = agilicus()
      local ok, out = pcall(api.all, api, {
        { "get_user", "a" },
        { "get_user", "b", { _call = { timeout = -1 } } },
        { "get_user", "c", { _call = { headers = { "X-A: b" } } } },
        "not a call",
        { "get_user", "d" },
      })
      assert.is_true(ok, tostring(out))
      assert.are.equal("/users/a", out[1][1].path)
      assert.are.equal("invalid_argument", out[2][2].kind)
      assert.are.equal("invalid_argument", out[3][2].kind)
      assert.are.equal("invalid_argument", out[4][2].kind)
      assert.are.equal("/users/d", out[5][1].path)
    end)

    it("an unknown client option is an invalid_argument with a suggestion", function()
      for key, want in pairs({ retires = "retries", timout = "timeout", folow_redirects = "follow_redirects",
                               tenantid = "tenant_id" }) do
        local api, err = provision.UsersApi({ server = echo.url, [key] = 1 })
        assert.is_nil(api, key)
        assert.are.equal("invalid_argument", err.kind, key)
        assert.matches("did you mean " .. want, err.message, 1, true)
      end
      local api, err = provision.UsersApi({ retires = false })
      assert.is_nil(api)
      assert.matches("retires", err.message, 1, true)
    end)

    it("a bad client option value is an invalid_argument, not a raise", function()
      local bad = {
        { timeout = -1 }, { timeout = "30" }, { connect_timeout = -1 }, { max_body = 1.5 },
        { max_connections = 0 }, { verify = "no" }, { verify = 0 }, { ca_file = 42 },
        { retries = "3" }, { retries = { attempts = 0 } }, { retries = { max_dealy = 1 } },
        { headers = { { "X-A", "b\n" } } }, { headers = { { "X-A", "b\r" } } }, { headers = { ["X-A"] = "b" } },
        { headers = { "X-A: b" } }, { follow_redirects = "yes" }, { follow_redirects = -1 },
        { tenant_id = {} }, { log = "stderr" }, { random = 4 }, { transport = {} }, { auth = "token" },
        { server_variables = "x" }, { generation = 1 }, { server = false },
        { user_agent = "ua\r\nX-Injected: 1" }, { proxy = "http://p\nX: 1" }, { ca_file = "a\0b" },
        { auth = { beraer = "t" } }, { auth = { bearer = 12345 } }, { auth = { bearer = "" } },
      }
      for i, opts in ipairs(bad) do
        local ok, api, err = pcall(provision.UsersApi, opts)
        assert.is_true(ok, "case " .. i .. " raised: " .. tostring(api))
        assert.is_nil(api, "case " .. i)
        assert.are.equal("invalid_argument", err.kind, "case " .. i)
      end
    end)

    it("an operation called with '.' instead of ':' is an invalid_argument, not a raise", function()
      local api = assert(provision.UsersApi({ auth = { bearer = TOKEN } }))
      local ok, r, err = pcall(api.get_user, "u1")
      assert.is_true(ok, tostring(r))
      assert.is_nil(r)
      assert.matches("call it as a method: api:get_user(...), not api.get_user(...)", err.message, 1, true)
    end)

    it("names a misspelt credential with a suggestion, at construction", function()
      local api, err = provision.UsersApi({ auth = { beraer = TOKEN } })
      assert.is_nil(api)
      assert.matches("auth holds no credential UsersApi takes: 'beraer' is none of its names; did you mean bearer?",
        err.message, 1, true)
      assert.is_nil(err.message:find(TOKEN, 1, true))
      -- one table with the credentials of several APIs is fine
      assert(provision.UsersApi({ auth = { bearer = TOKEN, api_token = "d360", admin_api_key = "o" } }))
    end)

    it("accepts every documented client option", function()
      local lines = {}
      local api = assert(provision.UsersApi({
        server = echo.url, auth = { bearer = TOKEN }, timeout = 5, connect_timeout = 2, verify = true,
        retries = { attempts = 2, base_delay = 0.01, max_delay = 1, max_retry_after = 5 },
        headers = { { "X-Client", "c" } }, follow_redirects = true, log = function(l) lines[#lines + 1] = l end,
        max_body = 1048576, max_connections = 4, user_agent = "hardening/1", random = math.random,
      }))
      local got = assert(api:get_user("u"))
      assert.are.equal("c", got.headers["x-client"])
      assert.are.equal("hardening/1", got.headers["user-agent"])
      assert.are.equal(1, #lines)
      api:close()
    end)
  end)

  describe("error messages", function()
    it("caps err.message at 1 KB with an ellipsis and keeps the whole body", function()
      local long = string.rep("x", 100000)
      local api = agilicus({ server = reply(500, json.encode({ message = long })), retries = false })
      local r, err = api:get_user("u")
      assert.is_nil(r)
      assert.are.equal(500, err.status)
      assert.are.equal(1024, #err.message)
      assert.are.equal("...", err.message:sub(-3))
      assert.are.equal(long, err.body.message)
      assert.is_true(#tostring(err) < 400)
      -- never cut inside a UTF-8 character
      local wide = string.rep("\u{e9}", 2000)
      local api2 = agilicus({ server = reply(400, json.encode({ message = wide })), retries = false })
      local _, e2 = api2:get_user("u")
      assert.is_true(#e2.message <= 1024)
      assert.is_truthy(utf8.len(e2.message), "message is not valid UTF-8")
    end)
  end)

  describe("envelopes", function()
    it("a DocSpace 200 whose envelope says statusCode 500 is an error", function()
      local body = '{"response": null, "count": 0, "links": [], "status": 1, "statusCode": 500,'
        .. ' "error": {"message": "Boom in the portal", "type": "System.Exception"}}'
      local ds = assert(provision.PortalUsersApi({ server = reply(200, body), auth = { Bearer = TOKEN } }))
      local r, err = ds:get_portal_users_count()
      assert.is_nil(r)
      assert.are.equal("api", err.kind)
      assert.are.equal(200, err.status)
      assert.are.equal(500, err.api_status)
      assert.are.equal("InternalServerError", err.class)
      assert.are.equal("Boom in the portal", err.message)
      assert.are.equal(500, err.body.statusCode)
      -- an envelope with error: null and a 2xx statusCode is a success
      local fine = assert(provision.PortalUsersApi({ server = reply(200,
        '{"response": 7, "count": 1, "links": [], "status": 0, "statusCode": 200, "error": null}'),
        auth = { Bearer = TOKEN } }))
      assert.are.equal(7, assert(fine:get_portal_users_count()))
    end)
  end)

  describe("2xx answers that are not what the operation returns", function()
    it("an HTML page (a login page at the server URL) or a bare JSON value is a DecodeError, not a value", function()
      local u = assert(provision.UsersApi({ server = echo.url .. "/html/200", auth = { bearer = TOKEN } }))
      local r, err = u:get_user("u")
      assert.is_nil(r)
      assert.are.equal("decode", err.kind)
      assert.are.equal("DecodeError", err.class)
      assert.are.equal(200, err.status)
      assert.are.equal("not_applied", err.outcome)
      assert.is_truthy(err.message:find("response is text/html, not JSON where UsersApi.get_user returns User "
        .. "(is the server URL right?)", 1, true), err.message)
      for _, case in ipairs({ { "null", "a JSON null" }, { '"just a string"', "a JSON string" }, { "12", "a JSON number" } }) do
        local c = assert(provision.UsersApi({ server = reply(200, case[1]), auth = { bearer = TOKEN } }))
        local v, e = c:get_user("u")
        assert.is_nil(v, case[1])
        assert.is_truthy(e.message:find("response is " .. case[2] .. " where UsersApi.get_user returns User", 1, true),
          e.message)
      end
      -- an operation that returns nothing still takes any 2xx body
      local ds = assert(provision.PortalUsersApi({ server = echo.url .. "/html/200", auth = { Bearer = TOKEN } }))
      assert.is_truthy((ds:mark_gift_message_as_read()))
    end)
  end)

  describe("odd but valid answers", function()
    it("decodes JSON after a UTF-8 byte order mark, and cuts a huge request id", function()
      local u = assert(provision.UsersApi({ server = reply(200, "\239\187\191{\"id\": \"u1\"}"),
                                            auth = { bearer = TOKEN } }))
      assert.are.equal("u1", assert(u:get_user("u1")).id)
      local events = require("provision.events")
      assert.are.equal(200, #events.request_id(nil, { ["x-request-id"] = string.rep("r", 5000) }))
    end)
  end)

  describe("paging", function()
    it("a server that ignores skip ends the listing with a PagingError instead of looping for ever", function()
      local teams = assert(provision.TeamsApi({ server = reply(200,
        '{"success": true, "result": [{"user_id": "u1", "email_id": "a@example.com"}]}'),
        auth = { api_token = TOKEN } }))
      local n, failure = 0, nil
      for item, err in teams:each("v2_teams_get", { take = 1 }) do
        if item == false then failure = err break end
        n = n + 1
        assert.is_true(n < 10, "the listing does not end")
      end
      assert.are.equal(1, n)
      assert.are.equal("PagingError", failure.class)
      assert.is_true(failure:is("APIError"))
      assert.matches("holds the same items as the page before: the server ignores skip", failure.message, 1, true)
      local all, err = teams:collect("v2_teams_get", { take = 1 })
      assert.is_nil(all)
      assert.are.equal("PagingError", err.class)
    end)
  end)

  describe("JSON null in answers", function()
    it("a DocSpace envelope with response: null is a success with nothing to say", function()
      local ds = assert(provision.PortalUsersApi({ server = reply(200,
        '{"response": null, "count": 0, "links": [], "status": 0, "statusCode": 200}'), auth = { Bearer = TOKEN } }))
      assert.is_true(ds:mark_gift_message_as_read())
    end)

    it("a null message field is skipped for the next one, never printed as userdata", function()
      local t = assert(provision.Tenants({ server = reply(500, '{"message": null, "error": "disk full"}'),
        auth = { admin_api_key = TOKEN }, retries = false }))
      local _, err = t:get("x")
      assert.are.equal("disk full", err.message)
      local d = assert(provision.UsersApi({ server = reply(409, '{"error": null, "error_message": "taken"}'),
        auth = { bearer = TOKEN } }))
      local _, e2 = d:get_user("u")
      assert.are.equal("taken", e2.message)
    end)
  end)

  describe("credentials per operation", function()
    it("a tenant-JWT client refuses admin-only Outpost operations locally, naming the scheme", function()
      local admin = assert(provision.Tenants({ server = sb.outpost_latest,
        auth = { admin_api_key = sb.credentials.outpost.admin_api_key } }))
      assert(admin:upsert("hardening-jwt"))
      local jwt = assert(admin:get_token("hardening-jwt")).token
      local tenant = assert(provision.Tenants({ server = sb.outpost_latest, auth = { TenantJwt = jwt } }))
      assert.are.equal("hardening-jwt", assert(tenant:get("hardening-jwt")).id)   -- TenantJwt allowed
      sb:admin("DELETE", "/log")
      for _, op in ipairs({ "get_portal_url", "get_token" }) do
        local r, err = tenant[op](tenant, "hardening-jwt")
        assert.is_nil(r, op)
        assert.are.equal("auth", err.kind, op)
        assert.are.equal("AuthError", err.class, op)
        assert.matches("AdminApiKey", err.message, 1, true)
        assert.is_nil(tostring(err):find(jwt, 1, true))
      end
      assert.are.same({}, sandbox_log())   -- nothing was sent
      assert(admin:delete("hardening-jwt"))
    end)

    it("any API: credentials for other schemes only are refused; empty security lists still work", function()
      local t = counting_transport()
      -- only another API's credential: refused when the client is made
      local none_of_its, oerr = provision.UsersApi({ server = sb.agilicus, auth = { api_token = "x-123456" },
                                                     transport = t })
      assert.is_nil(none_of_its)
      assert.matches("holds no credential UsersApi takes", oerr.message, 1, true)
      assert.are.equal(0, t.sent)
      -- DocSpace send_congratulations needs no auth: it goes out whatever the client holds
      local ds = assert(provision.PortalUsersApi({ server = sb.docspace, auth = { api_token = "x-123456", Bearer = "b" },
        transport = t }))
      local _, cerr = ds:send_congratulations({ userid = "00000000-0000-0000-0000-000000000000", key = "k" })
      assert.are.equal(1, t.sent)
      assert.is_true(cerr == nil or cerr.kind ~= "auth")
      -- a client holding no credential at all sends as asked (the server says 401)
      local none = assert(provision.UsersApi({ server = sb.agilicus, transport = t }))
      local _, nerr = none:list_users()
      assert.are.equal(2, t.sent)
      assert.are.equal(401, nerr.status)
      t.close()
    end)
  end)

  describe("Outpost takes the tenant id first", function()
    it("accepts a string tenant id in first position on every tenant operation", function()
      local key = sb.credentials.outpost.admin_api_key
      local t = assert(provision.Tenants({ server = sb.outpost_latest, auth = { admin_api_key = key } }))
      assert(t:upsert("hardening-acme"))
      assert(t:upsert("hardening-acme", { params = { metadata = { plan = "pro" } } }))
      assert.are.equal("hardening-acme", assert(t:get("hardening-acme")).id)
      assert.are.equal("pro", assert(t:get("hardening-acme", { _call = { timeout = 10 } })).metadata.plan)
      assert.are.equal("hardening-acme", assert(t:get({ tenant_id = "hardening-acme" })).id)
      assert.is_string(assert(t:get_portal_url("hardening-acme", { theme = "dark" })).redirect_url)
      assert.is_string(assert(t:get_token("hardening-acme")).token)
      local out = t:all({ { "get", "hardening-acme" }, { "get", "hardening-acme", {} } })
      assert.are.equal("hardening-acme", out[1][1].id)
      assert.are.equal("hardening-acme", out[2][1].id)
      -- the client's default still applies
      local d = assert(provision.Tenants({ server = sb.outpost_latest, auth = { admin_api_key = key },
                                           tenant_id = "hardening-acme" }))
      assert.are.equal("hardening-acme", assert(d:get()).id)
      -- the older generation too
      local v0 = assert(provision.Tenants({ generation = "v0", server = sb.outpost, auth = { admin_api_key = key } }))
      assert.are.equal("hardening-acme", assert(v0:get("hardening-acme")).id)
      -- refused: given twice, too many arguments
      local r, err = t:get("hardening-acme", { tenant_id = "other" })
      assert.is_nil(r)
      assert.are.equal("invalid_argument", err.kind)
      r, err = t:get("hardening-acme", "extra")
      assert.is_nil(r)
      assert.are.equal("invalid_argument", err.kind)
      assert(t:delete("hardening-acme"))
      local _, gone = t:get("hardening-acme")
      assert.are.equal(404, gone.status)
    end)
  end)

  describe("retries", function()
    local TENANT = "^/outpost%-latest/api/v1/tenants/northwind$"
    local function outpost(opts)
      opts = opts or {}
      opts.server = sb.outpost_latest
      opts.auth = { admin_api_key = sb.credentials.outpost.admin_api_key }
      opts.retries = opts.retries or { attempts = 3, base_delay = 0.01 }
      return assert(provision.Tenants(opts))
    end

    for _, code in ipairs({ "408", "502", "503", "504" }) do
      it("retries a GET answered " .. code, function()
        fault({ method = "GET", pattern = TENANT, sequence = { code, "pass" } })
        local got, info = outpost():get("northwind")
        assert.is_truthy(got, code)
        assert.are.equal("northwind", got.id)
        assert.are.equal(2, info.attempts)
      end)
    end

    it("retries PUT and DELETE (idempotent methods) on 503, never a POST", function()
      local t = outpost()
      fault({ method = "PUT", pattern = "^/outpost%-latest/api/v1/tenants/hardening%-idem$", sequence = { "503", "pass" } })
      local _, info = assert(t:upsert("hardening-idem"))
      assert.are.equal(2, info.attempts)
      fault({ method = "DELETE", pattern = "^/outpost%-latest/api/v1/tenants/hardening%-idem$", sequence = { "503", "pass" } })
      local _, dinfo = assert(t:delete("hardening-idem"))
      assert.are.equal(2, dinfo.attempts)
      fault({ method = "POST", path = "/docspace/api/2.0/portal/present/mark", sequence = { "503", "pass" } })
      local ds = assert(provision.PortalUsersApi({ server = sb.docspace, retries = { attempts = 3, base_delay = 0.01 },
        auth = { Bearer = sb.credentials.docspace.bearer_token } }))
      local r, err = ds:mark_gift_message_as_read()
      assert.is_nil(r)
      assert.are.equal(503, err.status)
      assert.are.equal(1, err.attempts)
    end)

    it("retries a POST answered 429 after its Retry-After", function()
      fault({ method = "POST", path = "/docspace/api/2.0/portal/present/mark", sequence = { "429", "pass" },
              retry_after = 1 })
      local ds = assert(provision.PortalUsersApi({ server = sb.docspace, retries = { attempts = 3, base_delay = 0.01 },
        auth = { Bearer = sb.credentials.docspace.bearer_token } }))
      local ok, info = ds:mark_gift_message_as_read()
      assert.is_truthy(ok, tostring(info))
      assert.are.equal(2, info.attempts)
    end)

    it("a call the limiter stops after it was answered 429 keeps that answer in its error", function()
      local client_mod = require("provision.client")
      local job = { opname = "UsersApi.get_user", attempt = 2, policy = { max_retry_after = 5 },
                    last_answer = { status = 429, body = { message = "slow down" }, headers = { ["retry-after"] = "1" } } }
      local _, err = client_mod.Client.throttled_error(nil, job, 100)
      assert.are.equal("throttled", err.kind)
      assert.are.equal(429, err.status)
      assert.are.same({ message = "slow down" }, err.body)
      assert.matches("not sent again (the last answer: HTTP 429)", err.message, 1, true)
      job.last_answer = nil
      _, err = client_mod.Client.throttled_error(nil, job, 100)
      assert.matches("nothing was sent", err.message, 1, true)
      assert.is_nil(err.status)
    end)

    it("does not wait for a Retry-After beyond max_retry_after", function()
      fault({ method = "GET", pattern = TENANT, sequence = { "429", "pass" }, retry_after = 3600 })
      local r, err = outpost():get("northwind")
      assert.is_nil(r)
      assert.are.equal(429, err.status)
      assert.are.equal("3600", err.retry_after)
      assert.are.equal(1, err.attempts)
    end)

    it("retries a POST the operation table marks idempotent", function()
      local api = {
        class = "IdempotencyProbe", servers = { default = echo.url }, security_schemes = {},
        operations = {
          { name = "submit", method = "POST", path = "/status/503", params = {}, security = {},
            success = { 200 }, idempotent = true },
          { name = "submit_once", method = "POST", path = "/status/503", params = {}, security = {},
            success = { 200 } },
        },
      }
      local c = assert(provision.new(api, { retries = { attempts = 3, base_delay = 0.01 } }))
      assert.are.equal(3, select(2, c:submit()).attempts)
      assert.are.equal(1, select(2, c:submit_once()).attempts)
    end)
  end)

  describe("redirects", function()
    local function via_redirect(to, code)
      return echo.url .. "/redirect?to=" .. enc(to) .. (code and "&code=" .. code or "") .. "#"
    end

    it("turns a POST into a GET without a body on 303", function()
      local api = agilicus({ follow_redirects = 2, server = via_redirect(echo2.url .. "/landed", 303) })
      local got = assert(api:create_user({ email = "ada@example.com" }))
      assert.are.equal("/landed", got.path)
      assert.are.equal("GET", got.method)
      assert.are.equal("", got.body)
      assert.is_nil(got.headers["content-type"])
    end)

    it("keeps the method and body on 307", function()
      local api = agilicus({ follow_redirects = 2, server = via_redirect(echo2.url .. "/landed", 307) })
      local got = assert(api:create_user({ email = "ada@example.com" }))
      assert.are.equal("POST", got.method)
      assert.are.equal("ada@example.com", json.decode(got.body).email)
    end)

    it("follows a relative Location on the same origin, credentials kept", function()
      local api = agilicus({ follow_redirects = 2, server = via_redirect("/landed/here") })
      local got = assert(api:get_user("u"))
      assert.are.equal("/landed/here", got.path)
      assert.are.equal("Bearer " .. TOKEN, got.headers.authorization)
    end)
  end)

  describe("request values", function()
    it("sends JSON null for an optional parameter as absent", function()
      local api = agilicus()
      local got = assert(api:list_users({ org_id = json.null, email = "a@example.com" }))
      assert.are.equal("email=a%40example.com", got.raw_query)
    end)

    it("refuses CR or LF in client and per-call headers before sending", function()
      local t = counting_transport()
      local api, err = provision.UsersApi({ server = echo.url, transport = t,
                                            headers = { { "X-A", "a\r\nInjected: 1" } } })
      assert.is_nil(api)
      assert.are.equal("invalid_argument", err.kind)
      local ok = agilicus({ transport = t })
      local r, cerr = ok:get_user("u", { _call = { headers = { { "X-A", "a\nInjected: 1" } } } })
      assert.is_nil(r)
      assert.are.equal("invalid_argument", cerr.kind)
      assert.are.equal(0, t.sent)
      t.close()
    end)
  end)

  describe("TLS", function()
    local dir, pid, port

    setup(function()
      dir = os.tmpname()
      os.remove(dir)
      assert(proc.sh("mkdir -p " .. q(dir)))
      local ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
      proc.write_file(dir .. "/leaf.ext", "basicConstraints=critical,CA:FALSE\n"
        .. "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        .. "subjectAltName=DNS:wrong.example\n")
      for _, cmd in ipairs({
        ("openssl req -x509 %s -keyout %s/ca.key -out %s/ca.pem -days 2 -subj /CN=hardening-ca"
          .. " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"):format(ec, q(dir), q(dir)),
        ("openssl req %s -keyout %s/leaf.key -out %s/leaf.csr -subj /CN=wrong.example"):format(ec, q(dir), q(dir)),
        ("openssl x509 -req -in %s/leaf.csr -CA %s/ca.pem -CAkey %s/ca.key -CAcreateserial -out %s/leaf.pem"
          .. " -days 2 -extfile %s/leaf.ext"):format(q(dir), q(dir), q(dir), q(dir), q(dir)),
      }) do
        assert(proc.sh(cmd .. " >/dev/null 2>&1"), cmd)
      end
      -- a free port, then openssl s_server on it; ready once it accepts
      for _ = 1, 5 do
        port = proc.free_port()
        pid = tonumber(proc.capture(("openssl s_server -accept 127.0.0.1:%d -cert %s/leaf.pem -key %s/leaf.key"
          .. " -www -quiet >/dev/null 2>&1 & echo $!"):format(port, q(dir), q(dir))))
        local up = false
        for _ = 1, 200 do
          local c = socket.connect("127.0.0.1", port)
          if c then c:close(); up = true; break end
          if not proc.alive(pid) then break end
          socket.sleep(0.05)
        end
        if up then break end
        os.execute("kill -9 " .. pid .. " 2>/dev/null")
        pid = nil
      end
      assert(pid, "openssl s_server did not start")
    end)
    teardown(function()
      if pid then os.execute("kill -9 " .. pid .. " 2>/dev/null") end
      if dir then os.execute("rm -rf " .. q(dir)) end
    end)

    it("refuses a trusted certificate issued for another host name", function()
      local api = agilicus({ server = "https://127.0.0.1:" .. port, ca_file = dir .. "/ca.pem", retries = false })
      local r, err = api:get_user("u")
      assert.is_nil(r)
      assert.are.equal("tls", err.kind)
      -- the chain was trusted: only the name failed
      assert.is_nil(err.message:lower():find("issuer", 1, true), err.message)
      assert.is_truthy(err.message:lower():find("name", 1, true), err.message)
    end)
  end)

  describe("the command line", function()
    it("stops on Ctrl-C (SIGINT) with exit code 130 and no internal error", function()
      local server = assert(socket.bind("127.0.0.1", 0))   -- listens; answers nothing
      local _, port = server:getsockname()
      local dir = os.tmpname()
      os.remove(dir)
      assert(proc.sh("mkdir -p " .. q(dir)))
      local script = ("(env -i PATH=%s HOME=%s PROVISION_AGILICUS_TOKEN=%s sh -c 'echo $$ > %s/pid;"
        .. " exec lua5.4 %s --server http://127.0.0.1:%d --timeout 300 agilicus get_user u'"
        .. " >%s/out 2>%s/err </dev/null; echo $? > %s/rc) >/dev/null 2>&1 &")
        :format(q(os.getenv("PATH")), q(dir), TOKEN, dir, q(ROOT .. "/bin/provision"), port, q(dir), q(dir), q(dir))
      os.execute(script)
      local child
      finally(function()
        server:close()
        if child then child:close() end
        local p = tonumber(proc.read_file(dir .. "/pid") or "")
        if p then os.execute("kill -9 " .. p .. " 2>/dev/null") end
        os.execute("rm -rf " .. q(dir))
      end)
      -- wait until the request has arrived: the CLI is then inside the transfer
      server:settimeout(60)
      child = assert(server:accept())
      child:settimeout(60)
      assert.matches("^GET /users/u", assert(child:receive("*l")))
      local pid = tonumber(proc.read_file(dir .. "/pid"))
      assert(pid, "no pid")
      os.execute("kill -INT " .. pid)
      local rc
      for _ = 1, 1200 do   -- up to 60 s on a loaded machine
        rc = proc.read_file(dir .. "/rc")
        if rc and rc ~= "" then break end
        socket.sleep(0.05)
      end
      local stderr = proc.read_file(dir .. "/err") or ""
      assert.are.equal("130", rc and rc:match("%d+"), stderr)
      assert.are.equal("provision: interrupted\n", stderr)
    end)
  end)
end)
