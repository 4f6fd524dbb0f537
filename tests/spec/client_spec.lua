-- The operation executor against a real HTTP server (tests/support/echo_server.lua)
-- that answers with what it received. Real API tables, real transport.
local provision = require("provision")
local json = require("provision.json")
local echo_support = require("support.echo")
local Curl = require("provision.transport.curl")

local SECRET = "s3cr3t-Zq9-PASSWORD"
local TOKEN = "tok-Zq9-SECRET-BEARER"
local APIKEY = "key-Zq9-SECRET-APIKEY"

describe("operation executor", function()
  local echo, echo2

  setup(function()
    echo = echo_support.start()
    echo2 = echo_support.start()
  end)
  teardown(function()
    echo:stop()
    echo2:stop()
  end)

  -- A real transport that counts what it sends.
  local function counting_transport()
    local real = assert(Curl.new({ timeout = 5 }))
    local t = { sent = 0 }
    function t.send(_, reqs) t.sent = t.sent + #reqs; return real:send(reqs) end
    t.now, t.sleep = Curl.now, Curl.sleep
    function t.close() real:close() end
    return t
  end

  local function agilicus(opts)
    opts = opts or {}
    opts.server = opts.server or echo.url
    opts.auth = opts.auth or { bearer = TOKEN }
    return assert(provision.UsersApi(opts))
  end

  describe("requests", function()
    it("encodes a path parameter as one segment", function()
      local api = agilicus()
      local got = assert(api:get_user("a/b?c#d %"))
      assert.are.equal("/users/a%2Fb%3Fc%23d%20%25", got.path)
      assert.are.equal("GET", got.method)
    end)

    it("refuses '..' and '.' and empty path segments without sending", function()
      local t = counting_transport()
      local api = agilicus({ transport = t })
      for _, bad in ipairs({ "..", ".", "" }) do
        local r, err = api:get_user(bad)
        assert.is_nil(r)
        assert.are.equal("invalid_argument", err.kind)
      end
      local r = assert(api:delete_user("../orgs", "x"))
      assert.are.equal("/v1/orgs/..%2Forgs/users/x", r.path)   -- one encoded segment, harmless
      assert.are.equal(1, t.sent)
    end)

    it("builds queries: absent omitted, booleans, arrays as repeated keys, no defaults", function()
      local api = agilicus()
      local got = assert(api:list_users({ org_id = "o1", status = { "active", "disabled" },
                                          has_roles = true, orgless_users = false }))
      local q = {}
      for _, pair in ipairs(got.query) do q[#q + 1] = pair end
      table.sort(q)
      assert.are.same({ "has_roles=true", "org_id=o1", "orgless_users=false", "status=active", "status=disabled" }, q)
      local plain = assert(api:list_users())
      assert.are.equal("", plain.raw_query)   -- limit's default 500 is not sent
    end)

    it("uses wire names for camelCase query parameters", function()
      local d360 = assert(provision.TeamsApi({ server = echo.url, auth = { api_token = APIKEY } }))
      local got = assert(d360:v2_teams_email_exists_get("ada@example.com", { is_an_sso_user = false }))
      assert.are.equal("emailId=ada%40example.com&isAnSsoUser=false", got.raw_query)
    end)

    it("sends JSON bodies with [] for empty arrays the schema declares", function()
      local d360 = assert(provision.TeamsApi({ server = echo.url, auth = { api_token = APIKEY } }))
      local got = assert(d360:v2_teams_user_id_groups_put("u1", { edit_user_groups_customer = { associated_groups = {} } }))
      local sent = assert(json.decode(got.body))
      assert.is_true(json.is_array(sent.associated_groups))
      assert.is_truthy(got.body:find('"associated_groups":[]', 1, true))
      -- without the schema saying so, an empty table stays an object
      local ag = agilicus()
      got = assert(ag:replace_user_role("u1", { replace_user_role_request = { roles = {} } }))
      assert.is_truthy(got.body:find('"roles":{}', 1, true))
      -- a map of arrays (User.roles: app -> list of roles)
      got = assert(ag:create_user({ email = "a@example.com", roles = { app1 = {} }, member_of = {} }))
      assert.is_truthy(got.body:find('"app1":[]', 1, true))
      assert.is_truthy(got.body:find('"member_of":[]', 1, true))
      assert.are.equal("application/json", got.headers["content-type"])
    end)

    it("keeps large integer IDs exact in bodies", function()
      local api = agilicus()
      -- User is an open model: a field it does not list may hold any JSON value
      -- (external_id is a string in the spec, so the validator refuses a number there)
      local got = assert(api:create_user({ email = "big@example.com", legacy_number = 9007199254740993 }))
      assert.is_truthy(got.body:find("9007199254740993", 1, true))
    end)
  end)

  describe("bad input never sends", function()
    local t, api
    before_each(function()
      t = counting_transport()
      api = agilicus({ transport = t })
    end)

    local cases = {
      { "missing required", function() return api:get_user() end, "missing required parameter 'user_id'" },
      { "wrong type", function() return api:get_user({}) end, "expected a string" },
      { "unknown option", function() return api:get_user("u", { orgid = "x" }) end, "unknown parameter 'orgid'" },
      { "options not a table", function() return api:get_user("u", "x") end, "options table" },
      { "too many args", function() return api:get_user("u", {}, {}) end, "positional" },
      { "bad boolean", function() return api:list_users({ has_roles = "yes" }) end, "expected a boolean" },
      { "bad integer", function() return api:list_users({ limit = 1.5 }) end, "expected an integer" },
      { "bad array", function() return api:list_users({ status = "active" }) end, "expected an array" },
      { "CR/LF in a call header", function()
          return api:get_user("u", { _call = { headers = { { "X-Test", "a\r\nInjected: 1" } } } })
        end, "CR, LF or NUL" },
      { "unknown call setting", function() return api:get_user("u", { _call = { retry = 1 } }) end, "unknown call setting" },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        local r, err = c[2]()
        assert.is_nil(r)
        assert.are.equal("invalid_argument", err.kind)
        assert.are.equal("InvalidArgumentError", err.class)
        assert.is_truthy(tostring(err):find(c[3], 1, true), tostring(err))
        assert.are.equal(0, t.sent)
      end)
    end

    it("refuses a credential with CR/LF", function()
      local bad = agilicus({ transport = t, auth = { bearer = "abc\r\nX-Evil: 1" } })
      local r, err = bad:get_user("u")
      assert.is_nil(r)
      assert.are.equal("auth", err.kind)
      assert.are.equal(0, t.sent)
    end)

    it("refuses an unknown DocSpace employee type and accepts numbers", function()
      local ds = assert(provision.PortalUsersApi({ server = echo.url, auth = { bearer = TOKEN }, transport = t }))
      local r, err = ds:get_invitation_link("Boss")
      assert.is_nil(r)
      assert.are.equal("invalid_argument", err.kind)
      assert.are.equal(0, t.sent)
    end)
  end)

  describe("auth", function()
    local function docspace(creds)
      return assert(provision.PortalUsersApi({ server = echo.url, auth = creds }))
    end
    local function sent_headers(api)
      local raw, info = api:get_portal_users_count()
      assert.is_truthy(raw, tostring(info))
      -- the echo answer has no DocSpace envelope, so the whole body comes back
      return raw.headers, raw.header_list
    end
    local function auth_headers(list)
      local names = {}
      for _, h in ipairs(list) do
        local n = h[1]:lower()
        if n == "authorization" or n == "cookie" or n == "apikeybearer" or n == "api_token" then
          names[#names + 1] = n
        end
      end
      return names
    end

    it("Basic", function()
      local h, list = sent_headers(docspace({ username = "ada@example.com", password = SECRET }))
      assert.are.equal("Basic " .. require("provision.core").b64encode("ada@example.com:" .. SECRET), h.authorization)
      assert.are.same({ "authorization" }, auth_headers(list))
    end)
    it("Bearer", function()
      local h, list = sent_headers(docspace({ Bearer = TOKEN }))
      assert.are.equal("Bearer " .. TOKEN, h.authorization)
      assert.are.same({ "authorization" }, auth_headers(list))
    end)
    it("ApiKeyBearer header", function()
      local h, list = sent_headers(docspace({ ApiKeyBearer = APIKEY }))
      assert.are.equal(APIKEY, h.apikeybearer)
      assert.are.same({ "apikeybearer" }, auth_headers(list))
    end)
    it("asc_auth_key cookie", function()
      local h, list = sent_headers(docspace({ asc_auth_key = APIKEY }))
      assert.are.equal("asc_auth_key=" .. APIKEY, h.cookie)
      assert.are.same({ "cookie" }, auth_headers(list))
    end)
    it("OAuth2 access token, as a string or a function", function()
      local h = sent_headers(docspace({ OAuth2 = { access_token = TOKEN } }))
      assert.are.equal("Bearer " .. TOKEN, h.authorization)
      local calls = 0
      h = sent_headers(docspace({ OAuth2 = { access_token = function() calls = calls + 1; return "fn-" .. calls end } }))
      assert.are.equal("Bearer fn-1", h.authorization)
    end)
    it("applies only the first scheme of the operation's list the client holds", function()
      local h, list = sent_headers(docspace({ username = "u", password = SECRET, asc_auth_key = APIKEY,
                                              ApiKeyBearer = APIKEY, Bearer = TOKEN }))
      assert.are.equal(1, #auth_headers(list))
      assert.are.equal("asc_auth_key=" .. APIKEY, h.cookie)
    end)
    it("sends no credentials to send_congratulations", function()
      local api = docspace({ Bearer = TOKEN, asc_auth_key = APIKEY })
      local raw = assert(api:send_congratulations({ userid = "u-1", key = "k" }))
      assert.are.same({}, auth_headers(raw.header_list))
      assert.are.equal("Userid=u-1&Key=k", raw.raw_query)
    end)
    it("Document360 api_token header and Agilicus bearer", function()
      local d360 = assert(provision.TeamsApi({ server = echo.url, auth = { api_token = APIKEY } }))
      local got = assert(d360:v2_teams_get())
      assert.are.equal(APIKEY, got.headers.api_token)
      local ag = agilicus()
      assert.are.equal("Bearer " .. TOKEN, assert(ag:get_user("u")).headers.authorization)
    end)
    it("Outpost admin key and tenant JWT", function()
      local admin = assert(provision.Tenants({ server = echo.url, auth = { admin_api_key = APIKEY }, tenant_id = "t1" }))
      local got = assert(admin:get())
      assert.are.equal("Bearer " .. APIKEY, got.headers.authorization)
      assert.is_truthy(got.path:find("t1", 1, true))
      local tenant = assert(provision.Tenants({ server = echo.url, auth = { tenant_jwt = "jwt-abc" }, tenant_id = "t1" }))
      assert.are.equal("Bearer jwt-abc", assert(tenant:get()).headers.authorization)
    end)
    it("OAuth2 client credentials: fetched once, cached, refreshed once on 401", function()
      local t = counting_transport()
      local creds = { oauth2 = { token_url = echo2.url .. "/oauth/token", client_id = "cid", client_secret = SECRET } }
      local api = assert(provision.PortalUsersApi({ server = echo.url, auth = creds, transport = t }))
      local h1 = sent_headers(api)
      local h2 = sent_headers(api)
      assert.are.equal(h1.authorization, h2.authorization)
      assert.are.equal(1, api.tokens.fetches)
      -- a server that wants the next token: the first answer is 401, then one refresh
      local want = "at-" .. tostring(tonumber(h1.authorization:match("at%-(%d+)")) + 1)
      local api2 = assert(provision.PortalUsersApi({ server = echo.url .. "/expect-token/" .. want,
                                                      auth = creds, transport = t }))
      api2.tokens = api.tokens
      local r, info = api2:get_portal_users_count()
      assert.is_truthy(r, tostring(info))
      assert.are.equal("Bearer " .. want, r.headers.authorization)
      assert.are.equal(2, api.tokens.fetches)
    end)

    it("keeps a short-lived OAuth2 token for half its life", function()
      local creds = { oauth2 = { token_url = echo2.url .. "/oauth/token?ttl=20", client_id = "cid",
                                 client_secret = SECRET } }
      local api = assert(provision.PortalUsersApi({ server = echo.url, auth = creds }))
      for _ = 1, 5 do assert(api:get_portal_users_count()) end
      assert.are.equal(1, api.tokens.fetches)
    end)

    it("refuses credentials in the server URL", function()
      local c, err = provision.UsersApi({ server = "http://svc:" .. SECRET .. "@127.0.0.1:1/x" })
      assert.is_nil(c)
      assert.are.equal("invalid_argument", err.kind)
      assert.is_nil(tostring(err):find(SECRET, 1, true))
    end)
  end)

  describe("results and errors", function()
    it("maps statuses to classes, with operation, status, body, headers", function()
      local api = agilicus({ server = echo.url .. "/status/404" })
      local r, err = api:get_user("u")
      assert.is_nil(r)
      assert.are.equal("NotFoundError", err.class)
      assert.are.equal(404, err.status)
      assert.are.equal("UsersApi.get_user", err.operation)
      assert.are.equal("1", err.headers["X-Echo"])
      assert.are.equal("table", type(err.body))
      local classes = { [400] = "BadRequestError", [401] = "UnauthorizedError", [409] = "ConflictError",
                        [429] = "RateLimitedError", [500] = "InternalServerError", [418] = "APIError" }
      for status, class in pairs(classes) do
        local a = agilicus({ server = echo.url .. "/status/" .. status, retries = false })
        local _, e = a:get_user("u")
        assert.are.equal(class, e.class)
      end
    end)

    it("uses the API's own class table (Outpost)", function()
      local t = assert(provision.Tenants({ server = echo.url .. "/status/422", auth = { admin_api_key = APIKEY },
                                            tenant_id = "t" }))
      local _, err = t:upsert()
      assert.are.equal("BadRequestError", err.class)
    end)

    local function reply(status, body)
      return echo.url .. "/reply?status=" .. status .. "&body="
        .. body:gsub("[^%w]", function(ch) return string.format("%%%02X", ch:byte()) end) .. "#"
    end

    it("unwraps the DocSpace envelope and keeps it reachable", function()
      local ds = assert(provision.PortalUsersApi({ server = reply(200,
        '{"response": 9007199254740993, "count": 1, "links": [], "status": 0, "statusCode": 200}'),
        auth = { Bearer = TOKEN } }))
      local n, info = ds:get_portal_users_count()
      assert.are.equal(9007199254740993, n)   -- exact: a 64-bit integer, not a float
      assert.are.equal(math.type(n), "integer")
      assert.are.equal(200, info.body.statusCode)
    end)

    it("treats a Document360 answer with errors[] as a failure even when success is true", function()
      local body = '{"success": true, "data": null, "errors": [{"description": "Invalid group id",'
        .. ' "error_code": "G1"}], "warnings": [], "information": []}'
      local d360 = assert(provision.TeamsApi({ server = reply(200, body), auth = { api_token = APIKEY } }))
      local r, err = d360:v2_teams_groups_get()
      assert.is_nil(r)
      assert.are.equal("APIError", err.class)
      assert.are.equal("Invalid group id", err.message)
      local ok_body = '{"success": true, "data": [{"id": "g1", "title": "IT"}], "errors": []}'
      local fine = assert(provision.TeamsApi({ server = reply(200, ok_body), auth = { api_token = APIKEY } }))
      assert.are.equal("IT", assert(fine:v2_teams_groups_get())[1].title)
    end)

    it("sends DocSpace employee types by name, from a name or a number", function()
      local ds = assert(provision.PortalUsersApi({ server = echo.url, auth = { Bearer = TOKEN } }))
      assert.are.equal("/api/2.0/portal/users/invite/User", assert(ds:get_invitation_link(4)).path)
      assert.are.equal("/api/2.0/portal/users/invite/RoomAdmin", assert(ds:get_invitation_link("RoomAdmin")).path)
      local r, err = ds:get_invitation_link(7)
      assert.is_nil(r)
      assert.are.equal("invalid_argument", err.kind)
    end)

    it("prints one line with no secret", function()
      local api = agilicus({ server = echo.url .. "/status/401", auth = { bearer = TOKEN } })
      local _, err = api:get_user("u")
      local line = tostring(err)
      assert.is_nil(line:find("\n"))
      assert.is_nil(line:find(TOKEN, 1, true))
      assert.is_nil(tostring(api):find(TOKEN, 1, true))
      assert.is_truthy(line:find("UnauthorizedError", 1, true))
    end)

    it("writes log lines without secrets or query strings", function()
      local lines = {}
      local api = agilicus({ log = function(l) lines[#lines + 1] = l end, auth = { bearer = TOKEN } })
      assert(api:list_users({ email = "someone@example.com" }))
      local d = assert(provision.PortalUsersApi({ server = echo.url, log = function(l) lines[#lines + 1] = l end,
                                                  auth = { username = "u", password = SECRET } }))
      assert(d:get_portal_users_count())
      assert.are.equal(2, #lines)
      assert.is_truthy(lines[1]:find("UsersApi.list_users GET " .. echo.url .. "/users -> 200", 1, true), lines[1])
      for _, l in ipairs(lines) do
        assert.is_nil(l:find(TOKEN, 1, true))
        assert.is_nil(l:find(SECRET, 1, true))
        assert.is_nil(l:find("someone", 1, true))
      end
      assert.is_nil(tostring(d):find(SECRET, 1, true))
    end)

    it("reports invalid JSON from a server as a DecodeError", function()
      local api = agilicus({ server = echo.url .. "/json-bad#" })
      local r, err = api:get_user("u")
      assert.is_nil(r)
      assert.are.equal("decode", err.kind)
      assert.is_truthy(err.body:find("broken", 1, true))
    end)

    it("turns a 10 MB HTML error page into a short message and keeps the body", function()
      local api = agilicus({ server = echo.url .. "/html/502", retries = false })
      local r, err = api:get_user("u", { _call = { headers = {} } })
      assert.is_nil(r)
      assert.are.equal(502, err.status)
      assert.are.equal("Service Unavailable", err.message)
      local api_big = agilicus({ server = echo.url .. "/html/503?size=10485760#", retries = false })
      local _, e2 = api_big:list_users()
      assert.are.equal(503, e2.status)
      assert.are.equal(10485760, #e2.body)
      assert.is_true(#tostring(e2) < 400)
    end)

    it("follows redirects only when asked, dropping credentials across origins", function()
      local target = echo2.url .. "/landed"
      local api = agilicus({ server = echo.url .. "/redirect?to=" .. target:gsub(":", "%%3A"):gsub("/", "%%2F") .. "#" })
      local r, err = api:get_user("u")
      assert.is_nil(r)
      assert.are.equal(302, err.status)
      local follow = agilicus({ follow_redirects = 3, headers = { { "X-Org-Api-Key", SECRET } },
        server = echo.url .. "/redirect?to=" .. target:gsub(":", "%%3A"):gsub("/", "%%2F") .. "#" })
      local got = assert(follow:get_user("u", { _call = { headers = { { "X-Call-Key", SECRET } } } }))
      assert.are.equal("/landed", got.path)
      assert.is_nil(got.headers.authorization)
      assert.is_nil(got.headers["x-org-api-key"])
      assert.is_nil(got.headers["x-call-key"])
    end)
  end)

  describe("retries", function()
    it("retries an idempotent GET on 503 and gives up after the attempts", function()
      local api = agilicus({ server = echo.url .. "/status/503", retries = { attempts = 3, base_delay = 0.01 } })
      local _, err = api:get_user("u")
      assert.are.equal(3, err.attempts)
    end)
    it("honours retries = false on the client and per call", function()
      local off = agilicus({ server = echo.url .. "/status/503", retries = false })
      assert.are.equal(1, select(2, off:get_user("u")).attempts)
      local on = agilicus({ server = echo.url .. "/status/503", retries = { attempts = 3, base_delay = 0.01 } })
      assert.are.equal(1, select(2, on:get_user("u", { _call = { retries = false } })).attempts)
      assert.are.equal(2, select(2, on:get_user("u", { _call = { retries = { attempts = 2 } } })).attempts)
    end)
    it("does not retry a POST on 503", function()
      local api = agilicus({ server = echo.url .. "/status/503", retries = { attempts = 3, base_delay = 0.01 } })
      local _, err = api:create_user({ email = "x@example.com" })
      assert.are.equal(1, err.attempts)
    end)
    it("retries a POST whose connection was refused (never sent)", function()
      local port = require("support.proc").refused_port()
      local api = agilicus({ server = "http://127.0.0.1:" .. port, retries = { attempts = 2, base_delay = 0.01 } })
      local _, err = api:create_user({ email = "x@example.com" })
      assert.are.equal("connect", err.kind)
      assert.are.equal(2, err.attempts)
      assert.is_false(err.request_sent)
    end)
  end)

  describe("closed transports", function()
    it("answer every call with a closed error, never a crash", function()
      for _, name in ipairs({ "curl", "coro" }) do
        local t = assert(require("provision.transport." .. name).new({}))
        local api = agilicus({ transport = t })
        assert(api:get_user("u"))
        t:close()
        local r, err = api:get_user("u")
        assert.is_nil(r, name)
        assert.are.equal("closed", err.kind, name)
        local out = api:all({ { "get_user", "a" }, { "get_user", "b" } })
        assert.are.equal("closed", out[2][2].kind, name)
      end
    end)
  end)

  describe("servers", function()
    it("picks a named server, fills server variables, and overrides per call", function()
      local d = assert(provision.TeamsApi({ server = "private", server_variables = { private_hosting = "acme" } }))
      assert.are.equal("https://apihub.acme.document360.io", d.base)
      assert.are.equal("https://apihub.us.document360.io", assert(provision.TeamsApi({ server = "us" })).base)
      local api = agilicus({ server = "http://127.0.0.1:1" })
      local got = assert(api:get_user("u", { _call = { server = echo.url } }))
      assert.are.equal("/users/u", got.path)
      -- prepare() builds the request without sending it
      local o = assert(provision.Tenants({ server = echo.url }))
      local job = assert(o:prepare("get", { tenant_id = "t", _call = { server = "production" } }))
      assert.are.equal("https://api.outpost.hookdeck.com/2025-07-01/tenants/t", job.template.url)
      assert.is_nil(provision.TeamsApi({ server = "private" }))
    end)
  end)

  describe("many at once", function()
    it("runs several operations in one round and keeps their order", function()
      local api = agilicus()
      local calls = {}
      for i = 1, 10 do calls[i] = { "get_user", "user-" .. i } end
      calls[11] = { "get_user" }   -- invalid: reported in place, others still run
      local out = api:all(calls)
      for i = 1, 10 do assert.are.equal("/users/user-" .. i, out[i][1].path) end
      assert.is_nil(out[11][1])
      assert.are.equal("invalid_argument", out[11][2].kind)
    end)
  end)
end)
