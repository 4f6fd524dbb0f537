-- provision.fastcall: a plain one-argument call runs its first attempt
-- without a job once the operation's first call cached its headers and
-- limiter; it must answer exactly what the engine answers, and hand every
-- answer it does not take (errors, retries, throttling, a dropped
-- connection) to the engine as the job's first attempt. Against the
-- sandbox over the curl transport (the one whose class has send_one).
local provision = require("provision")
local sandbox = require("support.sandbox")

describe("the fast path of a plain call", function()
  local sb

  setup(function()
    sb = sandbox.start({ rate = "100000/60", args = { "--quiet" } })
  end)
  teardown(function() sb:stop() end)
  before_each(function()
    assert.are.equal(200, (sb:admin("POST", "/reset")))
    sb:admin("DELETE", "/faults")
    sb:admin("DELETE", "/log")
  end)

  local function fault(rule) assert.are.equal(201, (sb:admin("POST", "/faults", rule))) end
  local function requests()
    local _, doc = sb:admin("GET", "/log")
    return #doc.entries
  end

  local function put_tenant(id, body)
    local status = sb:json("PUT", "/outpost-latest/api/v1/tenants/" .. id, { headers = sb.headers.outpost, body = body })
    assert.is_true(status == 200 or status == 201, tostring(status))
  end

  local RETRIES = { attempts = 4, base_delay = 0.01, max_delay = 0.05 }

  -- A Tenants client whose prepare() counts: a call the fast path takes
  -- makes no job.
  local function tenants(extra)
    local opts = { server = sb.outpost_latest, auth = { admin_api_key = sb.credentials.outpost.admin_api_key },
                   retries = RETRIES }
    for k, v in pairs(extra or {}) do opts[k] = v end
    local t = assert(provision.Tenants(opts))
    local prepare = t.prepare
    t.prepared = 0
    t.prepare = function(self, ...)
      self.prepared = self.prepared + 1
      return prepare(self, ...)
    end
    return t
  end

  local function info_fields(info)
    return { status = info.status, body = info.body, attempts = info.attempts,
             content_type = info.headers and info.headers["content-type"], request_id = type(info.request_id),
             timed = type(info.time) == "number" }
  end
  local function err_fields(err)
    return { kind = err.kind, class = err.class, status = err.status, message = err.message,
             attempts = err.attempts, outcome = err.outcome, operation = err.operation }
  end

  it("answers a 2xx without a job, with what the engine answers", function()
    local t = tenants()
    put_tenant("acme", { metadata = { plan = "pro" } })
    local general, ginfo = t:get("acme", {})       -- an options table: the engine's path
    assert.are.equal(1, t.prepared)
    local first = assert(t:get("acme"))            -- the operation's first plain call caches nothing new
    local fast, finfo = t:get("acme")
    assert.are.same(general, fast)
    assert.are.same(first, fast)
    assert.are.same(info_fields(ginfo), info_fields(finfo))
    assert.are.equal("acme", fast.id)
    assert.are.equal(1, finfo.attempts)
    local before = t.prepared
    for _ = 1, 5 do assert(t:get("acme")) end
    assert.are.equal(before, t.prepared, "the fast path made a job")
    t:close()
  end)

  it("hands an HTTP error to the engine: the same error as the engine's own", function()
    local t = tenants()
    local _, gerr = t:get("no-such-tenant", {})
    assert(t:get("no-such-tenant") == nil)
    local before = t.prepared
    local value, ferr = t:get("no-such-tenant")
    assert.is_nil(value)
    assert.are.equal(before + 1, t.prepared, "the engine did not get the answer")
    assert.are.same(err_fields(gerr), err_fields(ferr))
    assert.are.equal(404, ferr.status)
    assert.is_true(ferr:is("NotFoundError"))
    t:close()
  end)

  it("hands a 503 to the engine, which retries it: one call, two requests", function()
    local t = tenants()
    put_tenant("acme", {})
    assert(t:get("acme", {}))
    sb:admin("DELETE", "/log")
    fault({ method = "GET", pattern = "^/outpost%-latest/api/v1/tenants/acme$", sequence = { "503" }, retry_after = 0 })
    local value, info = t:get("acme")
    assert.is_table(value, tostring(info))
    assert.are.equal("acme", value.id)
    assert.are.equal(2, info.attempts)
    assert.are.equal(2, requests())
    t:close()
  end)

  it("hands a 429 to the engine: waited out, not counted as a failed attempt", function()
    local t = tenants()
    put_tenant("acme", {})
    assert(t:get("acme", {}))
    fault({ method = "GET", pattern = "^/outpost%-latest/api/v1/tenants/acme$", sequence = { "429", "429" },
            retry_after = 0 })
    local value, info = t:get("acme")
    assert.is_table(value, tostring(info))
    assert.are.equal(3, info.attempts)
    t:close()
  end)

  it("hands a dropped connection to the engine, which sends the GET again", function()
    local t = tenants()
    put_tenant("acme", {})
    assert(t:get("acme", {}))
    fault({ method = "GET", pattern = "^/outpost%-latest/api/v1/tenants/acme$", sequence = { "close_mid" } })
    local value, info = t:get("acme")
    assert.is_table(value, tostring(info))
    assert.are.equal(2, info.attempts)
    t:close()
  end)

  it("unwraps an envelope (DocSpace) as the engine does", function()
    local st, created = sb:admin("POST", "/docspace/users", { email = "fast.path@northwind.example", firstName = "F" })
    assert.are.equal(201, st)
    local api = assert(provision.PortalUsersApi({ server = sb.docspace,
      auth = { ApiKeyBearer = sb.credentials.docspace.api_key } }))
    local general, ginfo = api:get_user_by_id(created.id, {})
    assert.is_table(general, tostring(ginfo))
    local fast, finfo = api:get_user_by_id(created.id)
    assert.are.same(general, fast)
    assert.are.equal("fast.path@northwind.example", fast.email)
    assert.are.same(info_fields(ginfo), info_fields(finfo))
    api:close()
  end)

  it("is not taken where something runs around an attempt: events, a rate, a deadline", function()
    local seen = {}
    for _, extra in ipairs({ { events = function(ev) seen[#seen + 1] = ev.outcome end }, { rate = "1000/1" },
                             { deadline = 30 } }) do
      local t = tenants(extra)
      for _ = 1, 3 do assert(t:get("no-such-tenant") == nil) end
      assert.are.equal(3, t.prepared)
      t:close()
    end
    assert.are.same({ "error", "error", "error" }, seen)
  end)

  it("lets the limiter learn from every answer it takes (DocSpace's X-RateLimit-Remaining)", function()
    local st, created = sb:admin("POST", "/docspace/users", { email = "paced@northwind.example", firstName = "P" })
    assert.are.equal(201, st)
    local api = assert(provision.PortalUsersApi({ server = sb.docspace,
      auth = { ApiKeyBearer = sb.credentials.docspace.api_key } }))
    assert(api:get_user_by_id(created.id, {}))
    sb:admin("PUT", "/ratelimit", { limit = 4, window = 60 })   -- remaining reaches 0 within a few calls
    local prepared = 0
    local prepare = api.prepare
    api.prepare = function(self, ...) prepared = prepared + 1; return prepare(self, ...) end
    local paused = false
    for _ = 1, 6 do
      assert(api:get_user_by_id(created.id))
      local lim = select(2, next(api.limiters))
      if lim:state(require("provision.core").now()).paused_for > 0 then paused = true; break end
    end
    assert.is_true(paused, "the limiter never paused on X-RateLimit-Remaining: 0")
    assert.are.equal(0, prepared, "these calls were not the fast path's")
    sb:admin("PUT", "/ratelimit", { limit = 100000, window = 60 })
    api:close()
  end)


  describe("light jobs of all() and bulk()", function()
    local function gets(ids)
      local calls = {}
      for i, id in ipairs(ids) do calls[i] = { "get", id } end
      return calls
    end

    it("take 2xx answers without a job and hand the rest to the engine: the same results as full jobs", function()
      local t = tenants()
      for i = 1, 5 do put_tenant("t" .. i, {}) end
      assert(t:get("t1", {}))   -- caches the operation's headers: later calls may be light
      local ids = { "t1", "t2", "missing-1", "t3", "t4", "missing-2", "t5" }
      local before = t.prepared
      local light = t:all(gets(ids))
      assert.are.equal(before + 2, t.prepared, "only the two 404s became full jobs")
      local full = {}
      for i, id in ipairs(ids) do full[i] = { t:get(id, {}) } end   -- the engine's own answers
      for i = 1, #ids do
        local lv, li = light[i][1], light[i][2]
        local fv, fi = full[i][1], full[i][2]
        if fv ~= nil then
          assert.are.same(fv, lv, ids[i])
          assert.are.same(info_fields(fi), info_fields(li), ids[i])
        else
          assert.is_nil(lv, ids[i])
          assert.are.same(err_fields(fi), err_fields(li), ids[i])
        end
      end
      local results, summary = t:bulk(gets(ids), { concurrency = 3 })
      assert.are.equal(5, summary.ok)
      assert.are.equal(2, summary.failed)
      for i = 1, #ids do assert.are.equal(light[i][1] ~= nil, results[i][1] ~= nil, ids[i]) end
      t:close()
    end)

    it("are retried as full jobs through faults, and paced by the limiter they share", function()
      -- enough attempts that no call runs out of them (0.4 ^ 12 per call)
      local t = tenants({ retries = { attempts = 12, base_delay = 0.005, max_delay = 0.02 } })
      local ids = {}
      for i = 1, 40 do ids[i] = "f" .. i; put_tenant(ids[i], {}) end
      assert(t:get("f1", {}))
      sb:admin("DELETE", "/log")
      fault({ method = "GET", pattern = "^/outpost%-latest/api/v1/tenants/f", probability = 0.3, action = "503",
              retry_after = 0, seed = 3 })
      fault({ method = "GET", pattern = "^/outpost%-latest/api/v1/tenants/f", probability = 0.1, action = "429",
              retry_after = 0, seed = 5 })
      local before = t.prepared
      local results, summary = t:bulk(gets(ids), { concurrency = 8 })
      local why = {}
      for i = 1, 40 do if results[i][1] == nil then why[#why + 1] = tostring(results[i][2]) end end
      assert.are.equal(40, summary.ok, table.concat(why, "; "))
      for i = 1, 40 do assert.are.equal(ids[i], results[i][1].id) end
      local _, f = sb:admin("GET", "/faults")
      local injected = 0
      for _, r in ipairs(f.rules) do injected = injected + r.hits end
      assert.is_true(injected > 5, injected .. " faults")
      assert.are.equal(40 + injected, requests())
      local again = 0   -- calls whose first attempt met a fault: each became a full job, once
      for i = 1, 40 do if results[i][2].attempts > 1 then again = again + 1 end end
      assert.is_true(again > 0)
      assert.are.equal(before + again, t.prepared)
      t:close()
    end)

    it("are not made for an operation whose only calls so far had a server of their own", function()
      local t = tenants()
      put_tenant("acme", {})
      assert(t:get("acme", { _call = { server = sb.outpost_latest } }))   -- caches headers, not the limiter
      local results = t:all({ { "get", "acme" }, { "get", "acme" } })
      assert.is_table(results)
      assert.are.equal("acme", results[1][1].id)
      assert.are.equal("acme", results[2][1].id)
      t:close()
    end)

    it("name their operation in errors as full jobs do", function()
      local t = tenants()
      put_tenant("acme", {})
      assert(t:get("acme", {}))
      fault({ method = "GET", pattern = "^/outpost%-latest/api/v1/tenants/acme$", action = "429", retry_after = 200 })
      local results = t:bulk(gets({ "acme", "acme", "acme", "acme", "acme" }), { concurrency = 1 })
      local kinds = {}
      for i = 1, 5 do
        local err = results[i][2]
        assert.is_nil(results[i][1])
        assert.are.equal("Tenants.get", err.operation, tostring(err))
        kinds[err.kind] = true
      end
      assert.is_true(kinds.throttled, "the limiter never paused the later calls")
      t:close()
    end)
  end)

  describe("the call's info", function()
    it("is a table of its own for an operation with a query (the url could hold a key)", function()
      local api = assert(provision.UsersApi({ server = sb.agilicus, auth = { bearer = sb.credentials.agilicus.token } }))
      local list, info = api:list_users({ org_id = "Nw7kQ2pX9sT4vB8mL1cR3d", limit = 1 })
      assert.is_table(list, tostring(info))
      assert.is_nil(getmetatable(info), "info is the core's response")
      assert.is_nil(info.url)
      assert.are.equal(200, info.status)
      api:close()
    end)

    it("is the engine's for an operation with an optional query parameter, none given (fast path, light job)",
       function()
      -- UsersApi.get_user(user_id) takes an optional org_id in the query:
      -- the engine's success_info gives such an operation a table of its own
      local api = assert(provision.UsersApi({ server = sb.agilicus, auth = { bearer = sb.credentials.agilicus.token } }))
      local list, linfo = api:list_users({ limit = 1 })
      assert.is_table(list, tostring(linfo))
      local id = list.users[1].id
      local _, engine_info = api:call("get_user", id)   -- prepare + engine.call: never the fast path
      local _, fast_info = api:get_user(id)
      local light_info = api:all({ { "get_user", id } })[1][2]
      for name, info in pairs({ engine = engine_info, fast = fast_info, light = light_info }) do
        assert.are.equal(200, info.status, name)
        assert.is_nil(getmetatable(info), name .. ": info is the core's response")
        assert.is_nil(info.url, name)
        assert.is_nil(info.header_list, name)
        assert.are.equal(1, info.attempts, name)
        assert.is_string(info.request_id, name)
        assert.is_number(info.time, name)
      end
      api:close()
    end)

    it("is never a response another transport's send made (a canned one stays as it was)", function()
      local transport = assert(require("provision.transport.curl").new({}))
      local canned = { status = 200, headers = { ["content-type"] = "application/json" }, body = '{"id":"c"}' }
      transport.send = function() return { canned } end
      local t = assert(provision.Tenants({ server = "http://127.0.0.1:1", transport = transport,
                                           auth = { admin_api_key = "k" } }))
      for _ = 1, 3 do
        local v, info = t:get("c")
        assert.is_table(v, tostring(info))
        assert.are.equal("c", v.id)
      end
      assert.are.equal('{"id":"c"}', canned.body)
      transport:close()
    end)

    it("is a table of its own on a transport class whose answers are not the core's", function()
      -- a class with its own send_one takes the fast path, but only the
      -- core's responses may become the info
      local Curl = require("provision.transport.curl")
      local Canned = setmetatable({}, { __index = Curl })
      Canned.__index = Canned
      local canned = { status = 200, headers = { ["content-type"] = "application/json" }, body = '{"id":"c"}',
                       extra = "the transport's own field" }
      local sent = 0
      function Canned.send_one() sent = sent + 1; return canned end
      function Canned.send(self, reqs)
        local out = {}
        for i = 1, #reqs do out[i] = self:send_one(reqs[i]) end
        return out
      end
      local transport = setmetatable(assert(Curl.new({})), Canned)
      local t = assert(provision.Tenants({ server = "http://127.0.0.1:1", transport = transport,
                                           auth = { admin_api_key = "k" } }))
      local prepare, prepared = t.prepare, 0
      t.prepare = function(self, ...) prepared = prepared + 1; return prepare(self, ...) end
      for _ = 1, 3 do
        local v, info = t:get("c")
        assert.are.equal("c", v and v.id, tostring(info))
        assert.are_not.equal(canned, info)
        assert.is_nil(info.extra)
        assert.are.same({ id = "c" }, info.body)
        assert.are.equal(1, info.attempts)
      end
      assert.are.equal(3, sent)
      assert.are.equal(1, prepared)   -- the second and third calls took the fast path
      assert.are.equal('{"id":"c"}', canned.body)
      transport:close()
    end)
  end)
end)
