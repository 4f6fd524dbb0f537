-- provision against the sandbox: safe retries under injected faults, paging,
-- Outpost tenant JWTs, rate limits, re-runnable workflows and the examples.
local provision = require("provision")
local workflow = require("provision.workflow")
local sandbox = require("support.sandbox")

local ORG = "Nw7kQ2pX9sT4vB8mL1cR3d"

describe("provision against the sandbox", function()
  local sb, creds

  setup(function()
    sb = sandbox.start({ args = { "--quiet" } })
    creds = sb.credentials
  end)
  teardown(function() sb:stop() end)
  before_each(function()
    assert.are.equal(200, (sb:admin("POST", "/reset")))
    sb:admin("DELETE", "/faults")
    sb:admin("DELETE", "/log")
  end)

  local function fault(rule) assert.are.equal(201, (sb:admin("POST", "/faults", rule))) end
  local function log(method)
    local _, doc = sb:admin("GET", "/log")
    local out = {}
    for _, e in ipairs(doc.entries) do
      if not method or e.method == method then out[#out + 1] = e end
    end
    return out
  end
  local function clients(extra)
    extra = extra or {}
    local fast = { attempts = 3, base_delay = 0.01 }
    if extra.retries ~= nil then fast = extra.retries end
    return {
      agilicus = assert(provision.UsersApi({ server = sb.agilicus, retries = fast,
                                             auth = { bearer = creds.agilicus.token } })),
      d360 = assert(provision.TeamsApi({ server = sb.document360, retries = fast,
                                         auth = { api_token = creds.document360.api_token } })),
      outpost = assert(provision.Tenants({ server = sb.outpost_latest, retries = fast,
                                           auth = { admin_api_key = creds.outpost.admin_api_key } })),
      docspace = assert(provision.PortalUsersApi({ server = sb.docspace, retries = fast,
                                                   auth = { Bearer = creds.docspace.bearer_token } })),
    }
  end

  describe("retries", function()
    it("retries a GET through 503, 503 and succeeds on the third attempt", function()
      local c = clients()
      fault({ method = "GET", path = "/agilicus/users", sequence = { "503", "503", "pass" } })
      local page, info = c.agilicus:list_users({ org_id = ORG, limit = 2 })
      assert.is_truthy(page, tostring(info))
      assert.are.equal(3, info.attempts)
      assert.are.equal(2, #page.users)
    end)

    local function users_named(c, email)
      local n = 0
      for u in c.agilicus:each("list_users", { org_id = ORG }) do
        if u.email:lower() == email then n = n + 1 end
      end
      return n
    end

    it("settles a POST after a 503 by read-back, then sends it again: one user", function()
      local c = clients()
      fault({ method = "POST", path = "/agilicus/users", sequence = { "503" } })
      local u, info = c.agilicus:create_user({ email = "new.one@northwind.example", org_id = ORG })
      assert.is_truthy(u, tostring(info))
      assert.are.equal("new.one@northwind.example", u.email)
      assert.are.equal(2, info.attempts)
      assert.are.equal(2, #log("POST"))
      assert.are.equal(1, #log("GET"))            -- the read-back, before the second POST
      assert.is_true(log()[2].method == "GET")
      assert.are.equal(1, users_named(c, "new.one@northwind.example"))
    end)

    it("settles a POST whose answer was lost by read-back: no second POST, the user once", function()
      local c = clients()
      -- warm a kept-alive connection first: libcurl would silently re-send a
      -- request whose reused connection died, POST included
      assert(c.agilicus:list_users({ org_id = ORG, limit = 1 }))
      fault({ method = "POST", path = "/agilicus/users", sequence = { "close_after" } })
      local u, info = c.agilicus:create_user({ email = "lost.answer@northwind.example", org_id = ORG })
      assert.is_truthy(u, tostring(info))
      assert.are.equal("read_back", info.settled)
      assert.are.equal("lost.answer@northwind.example", u.email)
      assert.are.equal(1, #log("POST"))
      assert.are.equal(1, users_named(c, "lost.answer@northwind.example"))
    end)

    it("reads back where the call went: a create sent with _call.server is looked for on that server", function()
      local refused = require("support.proc").refused_port()
      local elsewhere = assert(provision.UsersApi({ server = "http://127.0.0.1:" .. refused .. "/agilicus",
        retries = { attempts = 3, base_delay = 0.01 }, auth = { bearer = creds.agilicus.token } }))
      local c = clients()
      fault({ method = "POST", path = "/agilicus/users", sequence = { "close_after" } })
      local u, info = elsewhere:create_user({ email = "other.server@northwind.example", org_id = ORG },
                                            { _call = { server = sb.agilicus } })
      assert.is_truthy(u, tostring(info))
      assert.are.equal("read_back", info.settled)
      assert.are.equal(1, #log("POST"))
      assert.are.equal(1, users_named(c, "other.server@northwind.example"))
    end)

    it("reports a lost answer as outcome unknown when read-backs are off", function()
      local c = clients({ retries = { attempts = 3, base_delay = 0.01, read_back = false } })
      fault({ method = "POST", path = "/agilicus/users", sequence = { "close_after" } })
      local r, err = c.agilicus:create_user({ email = "unknown.one@northwind.example", org_id = ORG })
      assert.is_nil(r)
      assert.are.equal("network", err.kind)
      assert.are.equal("unknown", err.outcome)
      assert.is_true(err.request_sent)
      assert.are.equal(1, err.attempts)
      assert.are.equal(1, #log("POST"))
    end)

    it("repeats an idempotent PUT whose connection dropped mid-answer", function()
      local c = clients()
      fault({ method = "PUT", pattern = "^/outpost%-latest/api/v1/tenants/[^/]+$", sequence = { "close_mid" } })
      local t, info = c.outpost:upsert({ tenant_id = "retry-tenant", params = { metadata = { a = "1" } } })
      assert.is_truthy(t, tostring(info))
      assert.are.equal(2, info.attempts)
      assert.are.equal("retry-tenant", t.id)
    end)

    it("sends a POST again once a read-back shows the closed connection did nothing", function()
      local c = clients()
      fault({ method = "POST", path = "/agilicus/users", sequence = { "close" } })
      local u, info = c.agilicus:create_user({ email = "never.seen@northwind.example", org_id = ORG })
      -- the sandbox closes before reading: the client cannot know that, so it
      -- looks before sending again
      assert.is_truthy(u, tostring(info))
      assert.are.equal(2, info.attempts)
      assert.are.equal(1, #log("GET"))
      assert.are.equal(1, users_named(c, "never.seen@northwind.example"))
    end)

    it("keeps the outcome unknown when a read-back cannot be built", function()
      local c = clients()
      fault({ method = "POST", path = "/document360/v2/Teams", sequence = { "close" } })
      local r, err = c.d360:v2_teams_post({})   -- no email: nothing to look up by
      assert.is_nil(r)
      assert.are.equal("unknown", err.outcome)
      assert.is_truthy(err.read_back_error)
      assert.are.equal(1, #log("POST"))
    end)

    it("waits for Retry-After on 429 and then succeeds", function()
      local c = clients()
      fault({ path = "/docspace", sequence = { "429" }, retry_after = 1 })
      local t0 = require("provision.core").now()
      local n, info = c.docspace:get_portal_users_count()
      assert.is_truthy(n, tostring(info))
      assert.are.equal(2, info.attempts)
      assert.is_true(require("provision.core").now() - t0 >= 0.9)
    end)

    it("reports a truncated body as a network error, not as data", function()
      local c = clients({ retries = false })
      fault({ method = "GET", path = "/agilicus/users", sequence = { "truncate" } })
      local r, err = c.agilicus:list_users({ org_id = ORG })
      assert.is_nil(r)
      assert.are.equal("network", err.kind)
    end)

    it("surfaces an HTML 502 as a clear error", function()
      local c = clients({ retries = false })
      fault({ path = "/document360", sequence = { "502" } })
      local r, err = c.d360:v2_teams_roles_get()
      assert.is_nil(r)
      assert.are.equal(502, err.status)
      assert.are.equal("string", type(err.body))
      assert.is_nil(tostring(err):find("\n"))
    end)
  end)

  describe("rate limit", function()
    it("waits out X-RateLimit-Remaining: 0 instead of sending into a 429", function()
      sb:admin("PUT", "/ratelimit", { limit = 2, window = 2 })
      finally(function() sb:admin("PUT", "/ratelimit", { limit = 1000, window = 60 }) end)
      local c = clients({ retries = false })
      for _ = 1, 3 do assert.is_truthy(c.docspace:get_portal_users_count()) end
      local statuses = {}
      for _, e in ipairs(log()) do statuses[#statuses + 1] = e.status end
      assert.are.same({ 200, 200, 200 }, statuses)
    end)

    it("does not wait longer than max_retry_after for a spent budget: nothing sent", function()
      sb:admin("PUT", "/ratelimit", { limit = 1, window = 120 })
      finally(function() sb:admin("PUT", "/ratelimit", { limit = 1000, window = 60 }) end)
      local c = clients({ retries = { attempts = 2, max_retry_after = 30 } })
      assert.is_truthy(c.docspace:get_portal_users_count())
      local r, err = c.docspace:get_portal_users_count()
      assert.is_nil(r)
      assert.are.equal("throttled", err.kind)
      assert.are.equal("RateLimitedError", err.class)
      assert.are.equal("not_applied", err.outcome)
      assert.are.equal(1, #log())
    end)

    it("answers 429 with Retry-After when retries are off", function()
      local c = clients({ retries = false })
      fault({ path = "/docspace", sequence = { "429" }, retry_after = 3 })
      local r, err = c.docspace:get_portal_users_count()
      assert.is_nil(r)
      assert.are.equal("RateLimitedError", err.class)
      assert.are.equal("not_applied", err.outcome)
      assert.are.equal(3, tonumber(err.retry_after))
    end)
  end)

  describe("paging", function()
    it("walks every Agilicus user by email keyset", function()
      local c = clients()
      local all = assert(c.agilicus:collect("list_users", { org_id = ORG }))
      local paged = assert(c.agilicus:collect("list_users", { org_id = ORG, limit = 4 }))
      assert.are.equal(#all, #paged)
      assert.is_true(#paged > 8)
      for i = 2, #paged do assert.is_true(paged[i - 1].email < paged[i].email) end
    end)

    it("walks Agilicus users backwards without repeating the page edges", function()
      local c = clients()
      local all = assert(c.agilicus:collect("list_users", { org_id = ORG }))
      local back = assert(c.agilicus:collect("list_users", { org_id = ORG, limit = 4,
                                                              search_direction = "backwards",
                                                              previous_email = "zzz@northwind.example" }))
      local seen = {}
      for _, u in ipairs(back) do
        assert.is_nil(seen[u.id], "repeated " .. u.email)
        seen[u.id] = true
      end
      assert.are.equal(#all, #back)
    end)

    it("walks Document360 team accounts by skip/take", function()
      local c = clients()
      local all = assert(c.d360:collect("v2_teams_get", { take = 1000 }))
      local paged = assert(c.d360:collect("v2_teams_get", { take = 3 }))
      assert.are.equal(#all, #paged)
      assert.is_true(#paged > 3)
    end)

    it("walks Outpost tenants by cursor", function()
      local c = clients()
      for i = 1, 7 do assert(c.outpost:upsert({ tenant_id = "page-" .. i })) end
      local all = assert(c.outpost:collect("list", { limit = 2 }))
      local ids = {}
      for _, t in ipairs(all) do ids[t.id] = true end
      for i = 1, 7 do assert.is_true(ids["page-" .. i]) end
    end)

    it("stops with the error when a page fails", function()
      local c = clients({ retries = false })
      fault({ method = "GET", path = "/agilicus/users", sequence = { "pass", "500" } })
      local got, err = c.agilicus:collect("list_users", { org_id = ORG, limit = 3 })
      assert.is_nil(got)
      assert.are.equal(500, err.status)
    end)
  end)

  describe("Outpost", function()
    it("issues a tenant JWT that works for that tenant only", function()
      local c = clients()
      assert(c.outpost:upsert({ tenant_id = "jwt-a" }))
      assert(c.outpost:upsert({ tenant_id = "jwt-b" }))
      local tok = assert(c.outpost:get_token({ tenant_id = "jwt-a" }))
      local claims = assert(require("provision.core").jwt_decode(tok.token))
      assert.are.equal("jwt-a", claims.sub)
      local as_tenant = assert(provision.Tenants({ server = sb.outpost_latest, tenant_id = "jwt-a",
                                                   auth = { tenant_jwt = tok.token } }))
      assert.are.equal("jwt-a", assert(as_tenant:get()).id)
      local _, err = as_tenant:get({ tenant_id = "jwt-b" })
      assert.are.equal("UnauthorizedError", err.class)
      assert.is_nil(tostring(err):find(tok.token, 1, true))
    end)

    it("older generation: the documented SDK paths and the JWT-context operations", function()
      local old = assert(provision.Tenants({ server = sb.outpost, generation = "v0", tenant_id = "gen-v0",
                                             auth = { admin_api_key = creds.outpost.admin_api_key } }))
      assert.are.equal("gen-v0", assert(old:upsert()).id)
      local latest = clients().outpost
      assert.are.equal("gen-v0", assert(latest:get({ tenant_id = "gen-v0" })).id)
      local r, err = latest:get_token_jwt_context()
      assert.is_nil(r)
      assert.is_truthy(tostring(err):find("v0", 1, true))
    end)
  end)

  describe("workflows", function()
    local person = { email = "new.hire@northwind.example", first_name = "New", last_name = "Hire",
                     org_id = ORG, roles = { vpn = { "self" } }, portal_role = "Editor" }

    it("create, then find and change nothing on a second run", function()
      local c = clients()
      local u, action = workflow.ensure_agilicus_user(c.agilicus, person)
      assert.is_truthy(u, tostring(action))
      assert.are.equal("created", action)
      local m, a2 = workflow.ensure_document360_member(c.d360, person)
      assert.is_truthy(m, tostring(a2))
      assert.are.equal("created", a2)
      assert.are.equal("created", select(2, workflow.ensure_tenant(c.outpost, "new-hire", { email = person.email })))
      sb:admin("DELETE", "/log")
      assert.are.equal("unchanged", select(2, workflow.ensure_agilicus_user(c.agilicus, person)))
      assert.are.equal("unchanged", select(2, workflow.ensure_document360_member(c.d360, person)))
      assert.are.equal("unchanged", select(2, workflow.ensure_tenant(c.outpost, "new-hire", { email = person.email })))
      for _, e in ipairs(log()) do assert.are.equal("GET", e.method, e.method .. " " .. e.path) end
    end)

    it("updates only what differs", function()
      local c = clients()
      assert(workflow.ensure_agilicus_user(c.agilicus, person))
      local changed = {}
      for k, v in pairs(person) do changed[k] = v end
      changed.roles = { vpn = { "self" }, crm = { "user" } }
      assert.are.equal("updated", select(2, workflow.ensure_agilicus_user(c.agilicus, changed)))
      changed.portal_role = "Reader"
      assert(workflow.ensure_document360_member(c.d360, person))
      assert.are.equal("updated", select(2, workflow.ensure_document360_member(c.d360, changed)))
    end)

    it("handles a tenant whose metadata is null", function()
      local c = clients()
      assert(c.outpost:upsert({ tenant_id = "bare" }))
      assert.are.equal("updated", select(2, workflow.ensure_tenant(c.outpost, "bare", { email = "x@y.example" })))
      assert.are.equal("unchanged", select(2, workflow.ensure_tenant(c.outpost, "bare", { email = "x@y.example" })))
    end)

    it("removal is safe to repeat", function()
      local c = clients()
      assert(workflow.ensure_agilicus_user(c.agilicus, person))
      assert.are.equal("deleted", select(2, workflow.remove_agilicus_user(c.agilicus, ORG, person.email)))
      assert.are.equal("absent", select(2, workflow.remove_agilicus_user(c.agilicus, ORG, person.email)))
      assert.are.equal("absent", select(2, workflow.remove_document360_member(c.d360, person.email)))
      assert.are.equal("absent", select(2, workflow.remove_tenant(c.outpost, "never-made")))
    end)
  end)

  describe("examples", function()
    local function run(script)
      local cmd = string.format("PROVISION_SANDBOX_URL=%s LUA_PATH='lua/?.lua;lua/?/init.lua;./?.lua;;' "
        .. "LUA_CPATH='build/?.so;;' lua5.4 %s 2>&1; echo \"exit=$?\"", sb.url, script)
      local p = io.popen(cmd)
      local out = p:read("a")
      p:close()
      return out
    end

    it("onboard twice: the second run changes nothing; audit and offboard run", function()
      local first = run("examples/onboard.lua")
      assert.is_truthy(first:find("exit=0", 1, true), first)
      assert.is_truthy(first:find("created", 1, true), first)
      sb:admin("DELETE", "/log")
      local second = run("examples/onboard.lua")
      assert.is_truthy(second:find("exit=0", 1, true), second)
      assert.is_nil(second:find("created", 1, true), second)
      for _, e in ipairs(log()) do assert.are.equal("GET", e.method) end
      local audit = run("examples/audit.lua")
      assert.is_truthy(audit:find("grace.hopper@northwind.example", 1, true), audit)
      local off = run("examples/offboard.lua")
      assert.is_truthy(off:find("deleted", 1, true), off)
      assert.is_truthy(run("examples/offboard.lua"):find("absent", 1, true))
      for _, script in ipairs({ "examples/onboard.lua", "examples/offboard.lua", "examples/audit.lua" }) do
        local n = 0
        for _ in io.lines(script) do n = n + 1 end
        assert.is_true(n < 60, script .. " has " .. n .. " lines")
      end
    end)
  end)
end)
