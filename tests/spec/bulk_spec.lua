-- api:bulk against the sandbox: pacing under its rate limit, every call
-- settled exactly once through injected faults, slots refilled as calls
-- end (no round waits for its slowest call), progress while it runs,
-- deadlines, and iterators that are never drained ahead.
local provision = require("provision")
local sandbox = require("support.sandbox")

local ORG = "Nw7kQ2pX9sT4vB8mL1cR3d"

describe("api:bulk against the sandbox", function()
  local sb

  setup(function()
    sb = sandbox.start({ rate = "100000/60", args = { "--quiet" } })
  end)
  teardown(function() sb:stop() end)
  before_each(function()
    assert.are.equal(200, (sb:admin("POST", "/reset")))
    sb:admin("DELETE", "/faults")
    sb:admin("DELETE", "/log")
    sb:admin("PUT", "/ratelimit", { limit = 100000, window = 60 })
  end)

  local function fault(rule) assert.are.equal(201, (sb:admin("POST", "/faults", rule))) end
  local function log()
    local _, doc = sb:admin("GET", "/log")
    return doc.entries
  end
  local function count(entries, pred)
    local n = 0
    for _, e in ipairs(entries) do if pred(e) then n = n + 1 end end
    return n
  end
  local function users(extra)
    local opts = { server = sb.agilicus, auth = { bearer = sb.credentials.agilicus.token },
                   retries = { attempts = 5, base_delay = 0.02, max_delay = 0.5 } }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return assert(provision.UsersApi(opts))
  end
  local function creates(prefix, n)
    local calls = {}
    for i = 1, n do
      calls[i] = { "create_user", { email = prefix .. i .. "@northwind.example", org_id = ORG, first_name = "B" } }
    end
    return calls
  end
  -- e-mail -> how many users the sandbox holds with it
  local function census(api)
    local seen = {}
    for u in api:each("list_users", { org_id = ORG }) do
      local e = u.email:lower()
      seen[e] = (seen[e] or 0) + 1
    end
    return seen
  end

  it("returns results in input order and a summary", function()
    local api = users()
    local results, summary = api:bulk({
      { "get_user", "no-such-user", { org_id = ORG } },
      { "list_users", { org_id = ORG, limit = 2 } },
      { "no_such_operation" },
      { "get_user" },                       -- a missing positional argument
    })
    assert.are.equal(4, #results)
    assert.are.equal("NotFoundError", results[1][2].class)
    assert.are.equal("not_applied", results[1][2].outcome)
    assert.are.equal(2, #results[2][1].users)
    assert.are.equal("invalid_argument", results[3][2].kind)
    assert.are.equal("invalid_argument", results[4][2].kind)
    assert.are.same({ 1, 3, 0 }, { summary.ok, summary.failed, summary.unknown })
    assert.are.equal(2, summary.requests)
    for _, k in ipairs({ "retried", "throttled", "elapsed", "rate" }) do assert.is_number(summary[k], k) end
  end)

  it("refuses bad options with a clear error", function()
    local api = users()
    for _, bad in ipairs({ { concurrency = 0 }, { concurrency = 1.5 }, { rate = "fast" },
                           { on_result = 1 }, { concurency = 2 }, { progress_interval = "x" },
                           { progress_interval = -1 }, { collect = "no" } }) do
      local r, err = api:bulk({}, bad)
      assert.is_nil(r)
      assert.are.equal("invalid_argument", err.kind)
    end
    local r, err = api:bulk("nope")
    assert.is_nil(r)
    assert.are.equal("invalid_argument", err.kind)
    r, err = api:bulk({}, { concurency = 2 })
    assert.is_nil(r)
    assert.matches("unknown option 'concurency'; did you mean concurrency?", err.message, 1, true)
    -- a list with a hole would lose the calls after it
    local holed = { { "get_user", "a", { org_id = ORG } } }
    holed[3] = { "get_user", "c", { org_id = ORG } }
    for _, f in ipairs({ api.bulk, api.all }) do
      r, err = f(api, holed)
      assert.is_nil(r)
      assert.matches("a list of calls cannot have a hole", err.message, 1, true)
    end
  end)

  it("a callback or an iterator that raises stops the job: what was taken ends, nothing is lost", function()
    local api = users()
    local r, err = api:bulk(creates("raise", 20), { concurrency = 4,
      on_result = function(i) if i == 2 then error("boom", 0) end end })
    assert.is_nil(r)
    assert.are.equal("HookError", err.class)
    assert.are.equal("on_result", err.hook)
    assert.matches("on_result raised: boom", err.message, 1, true)
    -- every call that was taken ended, and is in the results; no more were sent
    local s = err.summary
    assert.is_true(s.done >= 2 and s.done < 20, tostring(s.done))
    assert.are.equal(s.done, s.ok + s.failed + s.unknown)
    local seen = census(api)
    local created = 0
    for i = 1, 20 do
      local res = err.results[i]
      if seen[("raise%d@northwind.example"):format(i)] then
        created = created + 1
        assert.is_truthy(res and res[1], "call " .. i .. " landed: its result is kept")
      end
    end
    assert.are.equal(s.ok, created)
    local n = 0
    r, err = api:bulk(function()
      n = n + 1
      if n == 3 then error("iterator broke", 0) end
      return { "get_user", "x", { org_id = ORG } }
    end)
    assert.is_nil(r)
    assert.are.equal("the calls iterator", err.hook)
    assert.are.equal(2, err.summary.done)
    r, err = api:bulk({ { "get_user", "x", { org_id = ORG } } }, { on_progress = function() error("p") end,
                                                                  progress_interval = 0.001 })
    assert.is_nil(r)
    assert.are.equal("on_progress", err.hook)
  end)

  it("paces 200 creates under a 50 per second limit: none fails, almost no 429", function()
    assert.are.equal(200, (sb:admin("PUT", "/ratelimit", { limit = 50, window = 1 })))
    local api = users()
    local _, summary = api:bulk(creates("paced", 200), { concurrency = 8, rate = "50/1" })
    assert.are.equal(200, summary.ok)
    assert.are.equal(0, summary.failed + summary.unknown)
    local throttled = count(log(), function(e) return e.status == 429 end)
    assert.is_true(throttled <= 4, throttled .. " answers were 429 (at most 2 % allowed)")
  end)

  it("finds the pace of an unannounced limit on its own: none fails", function()
    assert.are.equal(200, (sb:admin("PUT", "/ratelimit", { limit = 50, window = 1 })))
    local api = users()
    local _, summary = api:bulk(creates("adaptive", 150), { concurrency = 8 })
    assert.are.equal(150, summary.ok)
    local throttled = count(log(), function(e) return e.status == 429 end)
    -- the first burst meets the limit; after that the limiter keeps under it
    assert.is_true(throttled <= 24, throttled .. " answers were 429")
  end)

  it("does not slow down for stray 429s from a flaky proxy", function()
    fault({ path = "/agilicus/users", probability = 0.02, action = "429", retry_after = 1 })
    local api = users()
    local _, summary = api:bulk(creates("stray", 400), { concurrency = 8 })
    assert.are.equal(400, summary.ok)
    assert.is_true(summary.throttled > 0)
    local job = assert(api:prepare("create_user", { email = "x@northwind.example", org_id = ORG }))
    local state = require("provision.limiter").shared(api.transport, api:limiter_key(job)):state()
    assert.is_nil(state.estimate, "no pace was cut")
    assert.are.equal(0, state.pauses)
  end)

  it("settles 1,000 creates through 10 % faults of every kind: each user exactly once", function()
    local kinds = { "502", "503", "429", "close_after", "truncate", "close", "close_mid", "delay:2000" }
    local rules = {}
    for _, k in ipairs(kinds) do
      rules[#rules + 1] = { path = "/agilicus/users", probability = 0.1 / #kinds, action = k }
    end
    rules[#rules + 1] = { path = "/agilicus/users", method = "POST", probability = 0.01, action = "503",
                          retry_after = 1 }
    fault({ rules = rules, seed = 7 })
    local api = users({ concurrency = 16 })
    local results, summary = api:bulk(creates("fault", 1000), { concurrency = 16 })
    local _, f = sb:admin("GET", "/faults")
    local injected = 0
    for _, r in ipairs(f.rules) do injected = injected + r.hits end
    sb:admin("DELETE", "/faults")
    local failures = {}
    for i, r in ipairs(results) do
      if r[1] == nil then failures[#failures + 1] = i .. ": " .. tostring(r[2]) end
    end
    assert.are.same({}, failures)
    assert.are.same({ 1000, 0, 0 }, { summary.ok, summary.failed, summary.unknown })
    assert.is_true(injected >= 50, injected .. " faults injected")
    assert.is_true(summary.read_backs > 0)
    local seen = census(api)
    local missing, twice = 0, 0
    for i = 1, 1000 do
      local n = seen["fault" .. i .. "@northwind.example"] or 0
      if n == 0 then missing = missing + 1 elseif n > 1 then twice = twice + 1 end
    end
    assert.are.same({ 0, 0 }, { missing, twice })
  end)

  it("does not hold 49 calls behind one that waits out a 5 s Retry-After", function()
    fault({ method = "GET", pattern = "^/agilicus/users/u1$", sequence = { "503" }, retry_after = 5 })
    local api = users()
    local calls = {}
    for i = 1, 50 do calls[i] = { "get_user", "u" .. i, { org_id = ORG } } end
    local order, progress_before_end = {}, 0
    local _, summary = api:bulk(calls, { concurrency = 8,
      on_result = function(i) order[#order + 1] = i end,
      on_progress = function(s) if s.done < 50 then progress_before_end = progress_before_end + 1 end end })
    assert.are.equal(50, summary.done)
    assert.are.equal(1, order[50], "the call behind the Retry-After ended last")
    assert.is_true(progress_before_end >= 2, "progress reported while the run waited")
    assert.are.equal(1, summary.retried)
  end)

  it("pulls from an iterator only as slots free up", function()
    local api = users()
    local pulled, ended, ahead = 0, 0, 0
    local n = 300
    local i = 0
    local function calls()
      i = i + 1
      if i > n then return nil end
      pulled = pulled + 1
      if pulled - ended > ahead then ahead = pulled - ended end
      return { "list_users", { org_id = ORG, limit = 1 } }
    end
    local results, summary = api:bulk(calls, { concurrency = 4, collect = false,
      on_result = function() ended = ended + 1 end })
    assert.are.equal(n, summary.ok)
    assert.are.equal(n, ended)
    assert.are.same({}, results)
    assert.is_true(ahead <= 8, "at most two slots' worth pulled ahead, saw " .. ahead)
  end)

  it("takes only a matching record from a read-back as proof that a create landed", function()
    local api = users()
    local job = assert(api:prepare("create_user", { email = "Ada@Northwind.example", org_id = ORG }))
    local other = { users = { { email = "ada.lovelace@northwind.example" }, { email = "bob@northwind.example" } } }
    assert.is_false(api:read_back_found(job, other))
    assert.is_false(api:read_back_found(job, { users = {} }))
    local found = api:read_back_found(job, { users = { { email = "bob@northwind.example" },
                                                       { email = "ada@northwind.example", id = "u9" } } })
    assert.are.equal("u9", found.id)          -- e-mails compare case-insensitively
    local d360 = assert(provision.TeamsApi({ server = sb.document360, auth = { api_token = "x" } }))
    -- only the key matters here: the rest of the body is left out (validate = false)
    local post = assert(d360:prepare("v2_teams_post", { add_team_account_customer = { email_id = "a@b.example" },
                                                        _call = { validate = false } }))
    assert.is_false(d360:read_back_found(post, { exists = false, user_id = provision.json.null }))
    assert.are.equal("d1", d360:read_back_found(post, { exists = true, user_id = "d1" }).user_id)
  end)

  it("waits out 429s on their own budget: they use up no attempt", function()
    fault({ method = "GET", path = "/agilicus/users", sequence = { "429", "429", "503", "pass" }, retry_after = 0 })
    local api = users({ retries = { attempts = 2, base_delay = 0.01 } })
    local page, info = api:list_users({ org_id = ORG, limit = 1 })
    assert.is_truthy(page, tostring(info))
    assert.are.equal(4, info.attempts)
    local _, summary = api:bulk({ { "list_users", { org_id = ORG, limit = 1 } } })
    assert.are.equal(1, summary.ok)
  end)

  it("bounds a call across its attempts with a deadline", function()
    fault({ method = "GET", path = "/agilicus/users", action = "503" })
    local api = users({ retries = { attempts = 50, base_delay = 0.2, max_delay = 0.2 } })
    local r, err = api:list_users({ org_id = ORG, _call = { deadline = 1 } })
    assert.is_nil(r)
    assert.are.equal("timeout", err.kind)
    assert.is_true(err.deadline)
    assert.is_true(err.attempts < 50)
    local results, summary = api:bulk({ { "list_users", { org_id = ORG, _call = { deadline = 1 } } } },
                                      { concurrency = 1 })
    assert.are.equal(1, summary.failed)
    local berr = results[1][2]
    assert.are.equal("timeout", berr.kind)
    assert.is_true(berr.deadline)
    assert.is_true(berr.attempts < 50)
    -- the deadline cuts an attempt short: that is the deadline too
    sb:admin("DELETE", "/faults")
    fault({ method = "GET", path = "/agilicus/users", action = "delay:3000" })
    local once = users({ retries = false })
    r, err = once:list_users({ org_id = ORG, _call = { deadline = 0.5 } })
    assert.is_nil(r)
    assert.are.equal("timeout", err.kind)
    assert.is_true(err.deadline)
    assert.matches("deadline of 0.5 s passed", err.message, 1, true)
    results = once:bulk({ { "list_users", { org_id = ORG, _call = { deadline = 0.5 } } } })
    assert.is_true(results[1][2].deadline)
  end)

  it("runs all() on the same engine: a slow call does not make the others wait for a round", function()
    fault({ method = "GET", pattern = "^/agilicus/users/u1$", sequence = { "503" }, retry_after = 2 })
    local api = users()
    local calls = {}
    for i = 1, 6 do calls[i] = { "get_user", "u" .. i, { org_id = ORG } } end
    local results = api:all(calls)
    assert.are.equal(6, #results)
    assert.are.equal(2, results[1][2].attempts)
    for i = 2, 6 do assert.are.equal(1, results[i][2].attempts) end
  end)
end)

describe("engine sources", function()
  local sandbox_mod = require("support.sandbox")
  local sb
  setup(function() sb = sandbox_mod.start({ rate = "100000/60", args = { "--quiet" } }) end)
  teardown(function() sb:stop() end)

  it("take work that depends on calls in flight (false = none now)", function()
    local api = assert(provision.UsersApi({ server = sb.agilicus, auth = { bearer = sb.credentials.agilicus.token } }))
    -- walk the users page by page: each page's call is known only once the
    -- previous page is back
    local queue, emails = { { "list_users", { org_id = ORG, limit = 4 } } }, {}
    local function next_call()
      local c = table.remove(queue, 1)
      if c == nil then return false end
      return c
    end
    local _, summary = api:bulk(next_call, { on_result = function(_, page)
      for _, u in ipairs(page.users) do emails[#emails + 1] = u.email end
      if #page.users == 4 then
        queue[#queue + 1] = { "list_users", { org_id = ORG, limit = 4, previous_email = page.users[4].email } }
      end
    end })
    local all = assert(api:collect("list_users", { org_id = ORG }))
    assert.are.equal(#all, #emails)
    assert.is_true(summary.ok > 2)
  end)
end)
