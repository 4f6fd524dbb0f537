-- bin/provision, run as a subprocess against the sandbox: listing, help,
-- calls (positional + options, JSON bodies), paging, --raw, --dry-run,
-- settings precedence, exit codes, and no secret in any output.
local sandbox = require("support.sandbox")
local core = require("provision.core")

local ORG = "Nw7kQ2pX9sT4vB8mL1cR3d"

local SECRETS = {
  ["agilicus.token"] = "zz-secret-agilicus-42",
  ["document360.api_token"] = "zz-secret-d360-77",
  ["docspace.bearer_token"] = "zz-secret-docspace-bearer-13",
  ["docspace.password"] = "zz-secret-docspace-pw-21",
  ["outpost.admin_api_key"] = "zz-secret-outpost-admin-99",
}

local clirun = require("support.cli")

-- run(argv, {env = {NAME = value}, stdin = "text"}) -> {code, out, err}: in a
-- clean environment (PATH, a HOME without a config file, only the variables
-- given); no secret may show in any output, and every output is kept in
-- runner.transcript to check for secrets at the end too.
local runner = clirun.runner({ secrets = SECRETS })
local transcript = runner.transcript
local run = runner.run

local function decode(s)
  local v, err = core.json_decode(s)
  assert(v ~= nil, "stdout is not JSON: " .. tostring(err) .. "\n" .. s)
  return v
end

local refused_port = require("support.proc").refused_port

describe("bin/provision", function()
  local sb, env

  setup(function()
    sb = sandbox.start({ args = { "--quiet" }, set = SECRETS })
    env = {
      PROVISION_AGILICUS_URL = sb.agilicus, PROVISION_AGILICUS_TOKEN = SECRETS["agilicus.token"],
      PROVISION_DOCUMENT360_URL = sb.document360, PROVISION_DOCUMENT360_TOKEN = SECRETS["document360.api_token"],
      PROVISION_DOCSPACE_URL = sb.docspace, PROVISION_DOCSPACE_TOKEN = SECRETS["docspace.bearer_token"],
      PROVISION_OUTPOST_URL = sb.outpost_latest, PROVISION_OUTPOST_API_KEY = SECRETS["outpost.admin_api_key"],
    }
  end)
  teardown(function()
    if sb then sb:stop() end
    runner.cleanup()
  end)
  before_each(function()
    assert.are.equal(200, (sb:admin("POST", "/reset")))
    sb:admin("DELETE", "/log")
    sb:admin("DELETE", "/faults")
  end)

  local function log_entries()
    local _, doc = sb:admin("GET", "/log")
    return doc.entries
  end

  describe("listing and help", function()
    it("provision apis: the four APIs with class names and operation counts", function()
      local r = run({ "apis" })
      assert.are.equal(0, r.code, r.err)
      assert.matches("docspace%s+PortalUsersApi%s+5%s", r.out)
      assert.matches("outpost%s+Tenants%s+6 %(latest, default%), 7 %(v0%)", r.out)
      assert.matches("agilicus%s+UsersApi%s+45%s", r.out)
      assert.matches("document360%s+TeamsApi%s+10%s", r.out)
    end)

    it("provision <api> ops: one signature a line, by key or class name", function()
      local r = run({ "agilicus", "ops" })
      assert.are.equal(0, r.code, r.err)
      local n = 0
      for line in r.out:gmatch("\n  [%w_]+[^\n]*") do n = n + 1; assert.is_truthy(line) end
      assert.are.equal(45, n)
      assert.matches("\n  get_user <user_id> [--org_id=STR]\n", r.out, nil, true)
      assert.matches("\n  create_user <user:JSON>\n", r.out, nil, true)
      assert.matches("list_users [^\n]*%(paged%)", r.out)
      local c = run({ "UsersApi", "ops" })
      assert.are.equal(r.out, c.out)
    end)

    it("outpost ops follows --generation", function()
      local latest = run({ "outpost", "ops" })
      local v0 = run({ "outpost", "ops", "--generation=v0" })
      assert.matches("6 operations on the 'latest'", latest.out)
      assert.matches("7 operations on the 'v0'", v0.out)
      assert.matches("\n  get_token_jwt_context", v0.out)
      assert.not_matches("jwt_context", latest.out)
      assert.matches("\n  get %[tenant_id%]", latest.out)
    end)

    it("provision <api> help <op>: method, path, parameters, body, auth, success", function()
      local r = run({ "agilicus", "help", "create_user" })
      assert.are.equal(0, r.code, r.err)
      assert.matches("UsersApi.create_user", r.out, nil, true)
      assert.matches("POST /users\n", r.out, nil, true)
      assert.matches("user%s+body%s+object%s+yes", r.out)
      assert.matches("body: user %(User", r.out)
      assert.matches("token%-valid%s+HTTP bearer%s+PROVISION_AGILICUS_TOKEN", r.out)
      assert.matches("success: 201; returns User", r.out, nil, true)

      local d = run({ "docspace", "help", "get_invitation_link" })
      assert.matches("employee_type%s+employeeType%s+path%s+string%s+yes", d.out)
      assert.matches("All|RoomAdmin|Guest|DocSpaceAdmin|User", d.out, nil, true)
      assert.matches("DEPRECATED", d.out, nil, true)
      assert.matches("asc_auth_key%s+API key in cookie asc_auth_key%s+PROVISION_DOCSPACE_COOKIE", d.out)

      local l = run({ "agilicus", "list_users", "--help" })
      assert.are.equal(0, l.code)
      assert.matches("limit%s+query%s+integer%s+no%s+500", l.out)
      assert.matches("status%s+query%s+array<string>", l.out)
      assert.matches("paging: keyset on email", l.out, nil, true)

      local h = run({ "help", "document360", "v2_teams_email_exists_get" })
      assert.matches("email_id%s+emailId%s+query%s+string%s+yes", h.out)
    end)

    it("--version and --help", function()
      local v = run({ "--version" })
      assert.are.equal(0, v.code)
      assert.matches("^provision %d+%.%d+%.%d+", v.out)
      local h = run({ "--help" })
      assert.are.equal(0, h.code)
      assert.matches("usage: provision", h.out, nil, true)
      assert.matches("%-%-dry%-run", h.out)
      assert.matches("exit codes", h.out, nil, true)
    end)
  end)

  describe("calls", function()
    it("GET with a positional argument and options, printed as sorted, indented JSON", function()
      local list = decode(run({ "agilicus", "list_users", "--org-id", ORG, "--limit=1", "--compact" }, { env = env }).out)
      local id = list.users[1].id
      local r = run({ "agilicus", "get_user", id, "--org_id=" .. ORG }, { env = env })
      assert.are.equal(0, r.code, r.err)
      local user = decode(r.out)
      assert.are.equal(id, user.id)
      assert.are.equal(ORG, user.org_id)
      assert.matches('^{\n  "created": ', r.out)          -- sorted keys, two-space indent
      local e = log_entries()
      assert.are.equal("/agilicus/users/" .. id, e[#e].path)
    end)

    it("converts typed options: booleans, integers, wire names, arrays by repetition or commas", function()
      local r = run({ "document360", "v2_teams_email_exists_get", "amelia.hart@northwind.example",
                      "--isAnSsoUser=false", "--compact" }, { env = env })
      assert.are.equal(0, r.code, r.err)
      assert.is_true(decode(r.out).exists)
      local d = run({ "agilicus", "list_users", "--org_id=" .. ORG, "--status", "active,pending",
                      "--status=disabled", "--has-roles", "--limit=3", "--dry-run" }, { env = env })
      assert.are.equal(0, d.code, d.err)
      assert.matches("status=active&status=pending&status=disabled", d.out, nil, true)
      assert.matches("has_roles=true", d.out, nil, true)
      assert.matches("limit=3", d.out, nil, true)
      local n = run({ "agilicus", "list_users", "--org_id=" .. ORG, "--no-has-roles", "--dry-run" }, { env = env })
      assert.matches("has_roles=false", n.out, nil, true)
      local k = run({ "docspace", "get_invitation_link", "2" }, { env = env })   -- enum number -> Guest
      assert.are.equal(0, k.code, k.err)
      assert.matches("emplType=2", k.out, nil, true)
    end)

    it("POST with a JSON body: --body text, positional, @file and stdin", function()
      local r = run({ "agilicus", "create_user", "--body",
                      '{"email":"ada@northwind.example","org_id":"' .. ORG .. '","first_name":"Ada","member_of":[]}' },
                    { env = env })
      assert.are.equal(0, r.code, r.err)
      local u = decode(r.out)
      assert.are.equal("ada@northwind.example", u.email)
      assert.is_string(u.id)
      local e = log_entries()
      assert.are.equal("POST", e[#e].method)
      assert.are.equal(201, e[#e].status)

      local p = run({ "agilicus", "create_user", '{"email":"bea@northwind.example","org_id":"' .. ORG .. '"}' },
        { env = env })
      assert.are.equal(0, p.code, p.err)
      assert.are.equal("bea@northwind.example", decode(p.out).email)

      local file = os.tmpname()
      local f = assert(io.open(file, "w"))
      f:write('{\n  "email": "cy@northwind.example",\n  "org_id": "' .. ORG .. '"\n}\n')
      f:close()
      local fr = run({ "agilicus", "create_user", "--body=@" .. file }, { env = env })
      os.remove(file)
      assert.are.equal(0, fr.code, fr.err)
      assert.are.equal("cy@northwind.example", decode(fr.out).email)

      local s = run({ "agilicus", "create_user", "--body=-" },
        { env = env, stdin = '{"email":"di@northwind.example","org_id":"' .. ORG .. '"}' })
      assert.are.equal(0, s.code, s.err)
      assert.are.equal("di@northwind.example", decode(s.out).email)

      local again = run({ "agilicus", "create_user", '{"email":"ADA@northwind.example","org_id":"' .. ORG .. '"}' },
        { env = env })
      assert.are.equal(1, again.code)                     -- 409: already exists
      assert.matches("HTTP 409", again.err, nil, true)
    end)

    it("--all follows paging (keyset, offset, cursor)", function()
      local whole = decode(run({ "agilicus", "list_users", "--org_id=" .. ORG, "--compact" }, { env = env }).out)
      sb:admin("DELETE", "/log")
      local r = run({ "agilicus", "list_users", "--org_id=" .. ORG, "--limit=4", "--all", "--compact" }, { env = env })
      assert.are.equal(0, r.code, r.err)
      local all = decode(r.out)
      assert.are.equal(#whole.users, #all)
      for i, u in ipairs(whole.users) do assert.are.equal(u.id, all[i].id) end
      assert.is_true(#log_entries() >= math.ceil(#all / 4))

      local teams = run({ "document360", "v2_teams_get", "--take=3", "--all", "--compact" }, { env = env })
      assert.are.equal(0, teams.code, teams.err)
      local t1 = decode(teams.out)
      local direct = decode(run({ "document360", "v2_teams_get", "--take=500", "--compact" }, { env = env }).out)
      assert.are.equal(#direct, #t1)
      assert.is_true(#t1 > 3)

      local tenants = run({ "outpost", "list", "--limit=2", "--all", "--compact" }, { env = env })
      assert.are.equal(0, tenants.code, tenants.err)
      assert.is_true(#decode(tenants.out) > 2)

      local raw = run({ "outpost", "list", "--limit=2", "--all", "--raw", "--compact" }, { env = env })
      local pages = decode(raw.out)
      assert.is_table(pages[1].pagination)
    end)

    it("--raw prints the whole envelope instead of the unwrapped value", function()
      local plain = run({ "docspace", "get_portal_users_count" }, { env = env })
      assert.are.equal(0, plain.code, plain.err)
      assert.matches("^%d+\n$", plain.out)
      local raw = run({ "docspace", "get_portal_users_count", "--raw", "--compact" }, { env = env })
      local body = decode(raw.out)
      assert.are.equal(200, body.statusCode)
      assert.are.equal(tonumber(plain.out), body.response)
    end)

    it("Outpost: tenant id positionally or with --tenant-id, and both generations", function()
      local up = run({ "outpost", "upsert", "cli-tenant", "--params", '{"metadata":{"team":"ops"}}' }, { env = env })
      assert.are.equal(0, up.code, up.err)
      assert.are.equal("cli-tenant", decode(up.out).id)
      local g = run({ "outpost", "get", "--tenant-id", "cli-tenant", "--compact" }, { env = env })
      assert.are.equal(0, g.code, g.err)
      assert.are.equal("ops", decode(g.out).metadata.team)
      local v0 = run({ "--sandbox", sb.url, "outpost", "get", "cli-tenant", "--generation=v0", "--compact" },
        { env = { SANDBOX_OUTPOST_API_KEY = SECRETS["outpost.admin_api_key"] } })
      assert.are.equal(0, v0.code, v0.err)
      assert.are.equal("cli-tenant", decode(v0.out).id)
      local e = log_entries()
      assert.are.equal("/outpost/api/v1/cli-tenant", e[#e].path)
    end)

    it("an operation with no response body (204) prints nothing and exits 0", function()
      local u = decode(run({ "agilicus", "create_user", '{"email":"gone@northwind.example","org_id":"' .. ORG .. '"}' },
        { env = env }).out)
      local r = run({ "agilicus", "delete_user", ORG, u.id }, { env = env })
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("", r.out)
      local e = log_entries()
      assert.are.equal("DELETE", e[#e].method)
      assert.are.equal(204, e[#e].status)
      -- DocSpace answers {response: null}: success with nothing to print
      local d = run({ "docspace", "mark_gift_message_as_read" }, { env = env })
      assert.are.equal(0, d.code, d.err)
      assert.are.equal("", d.out)
    end)
  end)

  describe("--dry-run", function()
    it("prints method, URL, headers with secrets masked, and the body; sends nothing", function()
      local r = run({ "agilicus", "create_user", '{"email":"x@northwind.example","org_id":"' .. ORG .. '"}', "--dry-run" },
        { env = env })
      assert.are.equal(0, r.code, r.err)
      assert.matches("^POST " .. sb.agilicus:gsub("%p", "%%%0") .. "/users\n", r.out)
      assert.matches("\nAuthorization: Bearer %*%*%*\n", r.out)
      assert.matches("\nContent%-Type: application/json\n", r.out)
      assert.matches('{"email":"x@northwind.example"', r.out, nil, true)
      assert.matches("nothing was sent", r.err, nil, true)
      assert.are.equal(0, #log_entries())
    end)

    it("masks every kind of credential: Basic, cookie, API-key header, extra Authorization header", function()
      local basic = run({ "docspace", "get_portal_users_count", "--dry-run" }, { env = {
        PROVISION_DOCSPACE_URL = sb.docspace, PROVISION_DOCSPACE_USER = "admin@northwind.example",
        PROVISION_DOCSPACE_PASSWORD = SECRETS["docspace.password"] } })
      assert.matches("\nAuthorization: Basic %*%*%*", basic.out)
      assert.not_matches(core.b64encode("admin@northwind.example:" .. SECRETS["docspace.password"]), basic.out, nil, true)
      local cookie = run({ "docspace", "get_portal_users_count", "--dry-run" }, { env = {
        PROVISION_DOCSPACE_URL = sb.docspace, PROVISION_DOCSPACE_COOKIE = "zz-secret-cookie-5150" } })
      assert.matches("\nCookie: asc_auth_key=%*%*%*", cookie.out)
      assert.not_matches("zz-secret-cookie-5150", cookie.out, nil, true)
      local d360 = run({ "document360", "v2_teams_get", "--dry-run", "-H", "X-Trace: 1" }, { env = env })
      assert.matches("\napi_token: %*%*%*", d360.out)
      assert.matches("\nX%-Trace: 1", d360.out)
    end)

    it("never echoes a credential given with -H, even a malformed one", function()
      local bad = run({ "agilicus", "list_users", "--org_id=x", "-H", "Authorization Bearer zz-header-secret-77" },
        { env = env })
      assert.are.equal(2, bad.code)
      assert.not_matches("zz-header-secret-77", bad.out .. bad.err, nil, true)
      local dry = run({ "agilicus", "list_users", "--org_id=x", "--dry-run", "-H", "X-Api-Key: zz-header-secret-77" },
        { env = env })
      assert.are.equal(0, dry.code, dry.err)
      assert.matches("\nX%-Api%-Key: %*%*%*", dry.out)
      assert.not_matches("zz-header-secret-77", dry.out .. dry.err, nil, true)
    end)
  end)

  describe("exit codes", function()
    it("a 404 exits 1 with the one-line error on stderr, and the body with --verbose", function()
      local r = run({ "agilicus", "get_user", "no-such-user" }, { env = env })
      assert.are.equal(1, r.code)
      assert.are.equal("", r.out)
      assert.matches("NotFoundError in UsersApi.get_user (HTTP 404)", r.err, nil, true)
      local v = run({ "agilicus", "get_user", "no-such-user", "-v" }, { env = env })
      assert.are.equal(1, v.code)
      assert.matches("UsersApi.get_user GET [^\n]* %-> 404", v.err)
      assert.matches('"error": "user does not exist"', v.err, nil, true)
    end)

    it("wrong credentials: 401 exits 4 with a hint; the token is not printed", function()
      local bad = {}
      for k, v in pairs(env) do bad[k] = v end
      bad.PROVISION_AGILICUS_TOKEN = "zz-wrong-token-31337"
      local r = run({ "agilicus", "list_users", "-v" }, { env = bad })
      assert.are.equal(4, r.code)
      assert.matches("HTTP 401", r.err, nil, true)
      assert.matches("hint: check the credentials", r.err, nil, true)
      assert.not_matches("zz-wrong-token-31337", r.err, nil, true)
    end)

    local usage_cases = {
      { { "agilcus", "ops" }, "unknown API or command 'agilcus'; did you mean agilicus?" },
      { { "agilicus", "get_usr", "x" }, "no operation 'get_usr'; did you mean get_user?" },
      { { "agilicus", "get_user" }, "missing required parameter 'user_id'" },
      { { "agilicus", "get_user", "a", "b" }, "too many arguments" },
      { { "agilicus", "get_user", "x", "--org=1" }, "no parameter 'org'; did you mean --org_id?" },
      { { "agilicus", "list_users", "--limit=ten" }, "expected an integer, got 'ten'" },
      { { "agilicus", "list_users", "--status=actve" }, "did you mean active?" },
      { { "docspace", "get_invitation_link", "Gust" }, "did you mean Guest?" },
      { { "agilicus", "create_user", "--body={oops" }, "is not valid JSON" },
      { { "agilicus", "create_user", "[1,2]" }, "must be a JSON object" },
      { { "agilicus", "get_user", "x", "--all" }, "get_user is not paged" },
      { { "--dryrun", "apis" }, "unknown option --dryrun; did you mean --dry-run?" },
      { { "agilicus", "list_users", "--timeout=soon" }, "--timeout needs a number" },
      { { "outpost", "get" }, "missing parameter 'tenant_id'" },
      { { "outpost", "get_token_jwt_context" }, "exists only on the 'v0' server generation" },
      { { "docspace", "get_portal_users_count", "--generation=v0" }, "no server generations" },
    }
    for _, case in ipairs(usage_cases) do
      it("usage error exits 2: provision " .. table.concat(case[1], " "), function()
        local r = run(case[1], { env = env })
        assert.are.equal(2, r.code, r.err)
        assert.matches(case[2], r.err, nil, true)
        assert.are.equal("", r.out)
      end)
    end

    it("no credentials for an operation that needs them: exit 2 naming the variable, nothing sent", function()
      local r = run({ "agilicus", "get_user", "x" }, { env = { PROVISION_AGILICUS_URL = sb.agilicus } })
      assert.are.equal(2, r.code)
      assert.matches("set PROVISION_AGILICUS_TOKEN", r.err, nil, true)
      assert.are.equal(0, #log_entries())
    end)

    it("connection refused exits 3", function()
      local port = refused_port()
      local r = run({ "agilicus", "get_user", "x", "--server", "http://127.0.0.1:" .. port, "--retries=0" },
        { env = env })
      assert.are.equal(3, r.code, r.err)
      assert.matches("ConnectionError in UsersApi.get_user (connect)", r.err, nil, true)
    end)

    it("a timeout exits 3", function()
      assert.are.equal(201, (sb:admin("POST", "/faults", { path = "/agilicus/users", delay_ms = 1500 })))
      local r = run({ "agilicus", "list_users", "--timeout=0.3", "--retries=0" }, { env = env })
      assert.are.equal(3, r.code, r.err)
      assert.matches("(timeout)", r.err, nil, true)
    end)
  end)

  describe("settings", function()
    it("--sandbox points at the sandbox with its credentials (SANDBOX_* variables)", function()
      local senv = {}
      for k, v in pairs(SECRETS) do
        local api, field = k:match("^(%w+)%.(.+)$")
        local name = ({ ["agilicus.token"] = "SANDBOX_AGILICUS_TOKEN", ["document360.api_token"] = "SANDBOX_DOCUMENT360_TOKEN",
                        ["docspace.bearer_token"] = "SANDBOX_DOCSPACE_TOKEN", ["outpost.admin_api_key"] = "SANDBOX_OUTPOST_API_KEY" })[k]
        if name then senv[name] = v end
        assert.is_truthy(api and field)
      end
      for _, c in ipairs({ { "agilicus", "list_users", "--limit=1" }, { "document360", "v2_teams_groups_get" },
                           { "docspace", "get_portal_users_count" }, { "outpost", "list", "--limit=1" } }) do
        local argv = { "--sandbox", sb.url }
        for _, a in ipairs(c) do argv[#argv + 1] = a end
        local r = run(argv, { env = senv })
        assert.are.equal(0, r.code, table.concat(c, " ") .. ": " .. r.err)
      end
    end)

    it("precedence: flags > environment > config file; credentials come whole from one layer", function()
      local cfg = os.tmpname()
      local f = assert(io.open(cfg, "w"))
      f:write(string.format([[
return {
  agilicus = { url = %q, token = "zz-config-token-1" },
  defaults = { retries = 0 },
}
]], "http://127.0.0.1:" .. refused_port()))
      f:close()
      -- config alone: its URL (nothing listens there) -> exit 3
      local c = run({ "--config", cfg, "agilicus", "list_users", "--limit=1" })
      assert.are.equal(3, c.code, c.err)
      -- environment beats config: URL and token from the environment
      local e = run({ "--config", cfg, "agilicus", "list_users", "--limit=1", "-v" }, { env = env })
      assert.are.equal(0, e.code, e.err)
      assert.matches("server from PROVISION_AGILICUS_URL; credentials from PROVISION_AGILICUS_TOKEN", e.err, nil, true)
      -- a flag beats both
      local s = run({ "--config", cfg, "agilicus", "list_users", "--limit=1", "--server", sb.agilicus,
                      "-v" }, { env = { PROVISION_AGILICUS_TOKEN = SECRETS["agilicus.token"] } })
      assert.are.equal(0, s.code, s.err)
      assert.matches("server from command line", s.err, nil, true)
      -- PROVISION_CONFIG names the file too; a config token alone is used (and is wrong here)
      local t = run({ "agilicus", "list_users", "--server", sb.agilicus }, { env = { PROVISION_CONFIG = cfg } })
      assert.are.equal(4, t.code)
      assert.matches("HTTP 401", t.err, nil, true)
      assert.not_matches("zz-config-token-1", t.err, nil, true)
      os.remove(cfg)
    end)

    it("a bad config file is a usage error naming the problem", function()
      local cfg = os.tmpname()
      local f = assert(io.open(cfg, "w"))
      f:write('return { agilicus = { tokn = "x" } }')
      f:close()
      local r = run({ "--config", cfg, "agilicus", "list_users" })
      os.remove(cfg)
      assert.are.equal(2, r.code)
      assert.matches("unknown setting agilicus.tokn; did you mean token?", r.err, nil, true)
      local m = run({ "--config", "/nonexistent/provision.lua", "agilicus", "list_users" })
      assert.are.equal(2, m.code)
    end)

    it("--insecure warns loudly", function()
      local r = run({ "agilicus", "list_users", "--limit=1", "--insecure" }, { env = env })
      assert.are.equal(0, r.code, r.err)
      assert.matches("WARNING", r.err, nil, true)
      assert.matches("verification is OFF", r.err, nil, true)
    end)
  end)

  it("runs in-process through provision.cli.main", function()
    local cli = require("provision.cli")
    local buf_out, buf_err = {}, {}
    local function sink(buf)
      return { write = function(self, ...) for _, s in ipairs({ ... }) do buf[#buf + 1] = s end return self end,
               flush = function() end }
    end
    local vars = env
    local code = cli.main({ "docspace", "get_portal_users_count", "--compact" },
      { stdout = sink(buf_out), stderr = sink(buf_err), getenv = function(k) return vars[k] end })
    assert.are.equal(0, code, table.concat(buf_err))
    assert.matches("^%d+\n$", table.concat(buf_out))
    local bad = cli.main({ "nope" }, { stdout = sink(buf_out), stderr = sink(buf_err), getenv = function() end })
    assert.are.equal(2, bad)
  end)

  it("no secret appeared in any output", function()
    local all = table.concat(transcript, "\n")
    assert.is_true(#all > 0)
    for _, secret in pairs(SECRETS) do
      assert.is_nil(all:find(secret, 1, true), secret)
    end
  end)
end)
