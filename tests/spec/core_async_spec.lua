-- provision.core's non-blocking interface (session:start, batch:step,
-- wait_info, results, cancel) against a real nginx (tests/support/nginx.lua),
-- and provision.transport.coro: provision clients in coroutines on one
-- thread, driven by a small LuaSocket select scheduler (below, not in the
-- library), against the sandbox.
local core = require "provision.core"
local nginx = require "tests.support.nginx"
local socket = require "socket"

local function my_pid()
  local f = assert(io.open("/proc/self/stat", "r"))
  local pid = f:read("l"):match("^(%d+)")
  f:close()
  return pid
end
local PID = my_pid()

-- fd is an open descriptor of this process, and a socket (libcurl's).
local function fd_is_open(fd)
  local p = io.popen("readlink /proc/" .. PID .. "/fd/" .. math.tointeger(fd) .. " 2>/dev/null")
  local link = p:read("a")
  p:close()
  return link:match("^socket:") ~= nil
end

-- Loops that drive a batch are bounded in time, generously for a loaded
-- machine, never by a count of steps (a step returns as soon as anything
-- happens, so how many a transfer takes depends on the machine).
local BOUND = 120

local function step_until_done(b)
  local steps, deadline = 0, socket.gettime() + BOUND
  while not b:step(0.05) do
    steps = steps + 1
    assert(socket.gettime() < deadline, "batch never finished")
  end
  return steps
end

-- Transfers of `b`'s batch still running, from tostring(b) ("N pending").
local function pending(b)
  return tonumber(tostring(b):match("(%d+) pending")) or 0
end

-- Sockets of the session waiting to read only: each is a transfer that has
-- sent its request (libcurl waits to write while it connects and sends).
local function reading(b)
  local n = 0
  for _, f in ipairs(b:wait_info().fds) do
    if f.read and not f.write then n = n + 1 end
  end
  return n
end

-- Step `b` until cond() holds (the batch must not finish first).
local function step_until(b, cond, what)
  local deadline = socket.gettime() + BOUND
  while not cond() do
    assert(not b:step(0.01), what .. ": the batch finished first")
    assert(socket.gettime() < deadline, what .. ": not within " .. BOUND .. " s")
  end
end

describe("provision.core non-blocking batches", function()
  local srv, s

  setup(function()
    srv = nginx.start()
    s = core.session({ ca_file = srv.ca_file })
  end)

  teardown(function()
    if s then s:close() end
    nginx.stop(srv)
  end)

  it("start returns at once; step drives it; results equal perform's", function()
    local reqs = {
      { url = srv:url("/small.json") },
      { url = srv:url("/echo"), headers = { ["X-Test"] = "a" } },
      { url = srv:url("/small.json", true) },
    }
    local b = assert(s:start(reqs))
    assert.are.equal("userdata", type(b))
    local r, err = b:results()
    if r == nil then
      assert.are.equal("not_finished", err.kind)
      assert.is_false(err.request_sent)
    end
    step_until_done(b)
    assert.is_true(b:step())            -- done stays done
    local got = assert(b:results())
    local want = s:perform(reqs)
    assert.are.equal(#want, #got)
    for i = 1, #want do
      assert.are.equal(want[i].status, got[i].status)
      assert.are.equal(want[i].body, got[i].body)
      assert.are.equal(want[i].headers["content-type"], got[i].headers["Content-Type"])
    end
    assert.are.equal(srv.json, got[1].body)
    assert.are.equal("GET /echo a", got[2].body)
    assert.are.equal(got, b:results())  -- the same table again, bodies intact
    assert.are.equal(srv.json, b:results()[3].body)
    assert.is_true(b:close())
    assert.is_true(b:close())           -- idempotent
    local none, cerr = b:results()
    assert.is_nil(none)
    assert.are.equal("closed", cerr.kind)
    assert.is_nil((b:step()))
    assert.is_nil((b:wait_info()))
    assert.matches("closed", tostring(b))
  end)

  it("start({}) is done at once with {} as results", function()
    local b = assert(s:start({}))
    assert.is_true(b:step(0))
    assert.are.same({}, b:results())
  end)

  it("reports invalid entries in place and runs the others", function()
    local b = assert(s:start({
      { url = "ftp://example.org/x" },
      { url = srv:url("/small.json") },
      { method = "BAD METHOD", url = srv:url("/small.json") },
      { url = srv:url("/echo"), headers = { { "X-Test", "a\r\nb" } } },
    }))
    step_until_done(b)
    local r = b:results()
    assert.are.equal("invalid_argument", r[1].kind)
    assert.is_false(r[1].request_sent)
    assert.are.equal(200, r[2].status)
    assert.are.equal("invalid_argument", r[3].kind)
    assert.are.equal("invalid_argument", r[4].kind)

    local all_bad = assert(s:start({ { url = "ftp://x" }, { url = "http://" } }))
    assert.is_true(all_bad:step(0))
    assert.are.same({}, all_bad:wait_info().fds)
    assert.are.equal(2, #all_bad:results())

    -- programming errors still raise, leaving nothing behind
    assert.has_error(function() s:start({ { url = 42 } }) end)
    assert.has_error(function() s:start("x") end)
    assert.has_error(function() s:start({ {} }) end)
    collectgarbage()
    assert.are.equal(200, assert(s:request({ url = srv:url("/small.json") })).status)
  end)

  it("wait_info lists open descriptors and a sane timeout", function()
    local s2 = core.session({ max_body = 1024 * 1024 * 1024 })
    local b = assert(s2:start({ { url = srv:url("/big.bin") }, { url = srv:url("/big.bin") } }))
    local seen, steps, deadline = 0, 0, socket.gettime() + BOUND
    repeat
      local info = assert(b:wait_info())
      assert.is_true(info.complete)
      assert.is_number(info.timeout)
      assert.is_true(info.timeout >= 0 and info.timeout <= 1)
      for _, f in ipairs(info.fds) do
        assert.is_true(math.type(f.fd) == "integer" and f.fd >= 0)
        assert.is_boolean(f.read)
        assert.is_boolean(f.write)
        assert.is_true(f.read or f.write)
        assert.is_true(fd_is_open(f.fd), "fd " .. f.fd .. " is open")
        seen = seen + 1
      end
      steps = steps + 1
      assert(socket.gettime() < deadline, "batch never finished")
    until b:step(math.min(info.timeout, 0.05))
    assert.is_true(seen > 0)
    local r = b:results()
    assert.are.equal(srv.big_size, #r[1].body)
    assert.are.equal(srv.big_size, #r[2].body)
    local done = b:wait_info()
    assert.are.same({}, done.fds)
    assert.are.equal(0, done.timeout)
    s2:close()
  end)

  it("step(0) never waits", function()
    local b = assert(s:start({ { url = srv:url("/slow.bin") } }))
    -- /slow.bin takes minutes: each step(0) returns false at once (a step
    -- that waited would still return false, so the suite's own time limit
    -- is the check here; tests assert no durations)
    for _ = 1, 20 do assert.is_false(b:step(0)) end
    b:cancel()
    assert.are.equal("aborted", b:results()[1].kind)
  end)

  it("cancel stops unfinished transfers as aborted; the session goes on", function()
    local b = assert(s:start({ { url = srv:url("/slow.bin") }, { url = srv:url("/small.json") } }))
    -- run until the small one is done and the slow one is receiving its body
    step_until(b, function() return pending(b) == 1 and reading(b) == 1 end, "small done, slow receiving")
    assert.is_nil(b:results())
    assert.is_true(b:cancel())
    assert.is_true(b:cancel())          -- idempotent
    assert.is_true(b:step(0))
    local r = assert(b:results())
    assert.are.equal("aborted", r[1].kind)
    assert.is_true(r[1].request_sent)   -- it had passed pre-transfer
    assert.are.equal("aborted: transfer cancelled", tostring(r[1]))
    assert.are.equal(200, r[2].status)
    assert.are.equal(srv.json, r[2].body)
    assert.are.equal(200, assert(s:request({ url = srv:url("/small.json") })).status)
    local again = s:perform({ { url = srv:url("/small.json") }, { url = srv:url("/echo") } })
    assert.are.equal(200, again[1].status)
    assert.are.equal(200, again[2].status)
  end)

  it("cancel of a transfer still queued for a connection says not sent", function()
    local s1 = core.session({ max_connections = 1 })
    local b = assert(s1:start({ { url = srv:url("/slow.bin") }, { url = srv:url("/small.json") } }))
    step_until(b, function() return reading(b) == 1 end, "slow.bin sent on the one connection")
    b:cancel()
    local r = b:results()
    assert.are.equal("aborted", r[1].kind)
    assert.is_true(r[1].request_sent)
    assert.are.equal("aborted", r[2].kind)
    assert.is_false(r[2].request_sent)  -- waited for the one connection: never left
    assert.are.equal(200, assert(s1:request({ url = srv:url("/small.json") })).status)
    s1:close()
  end)

  it("session:close with live batches ends their transfers as closed", function()
    local s1 = core.session({})
    local b1 = assert(s1:start({ { url = srv:url("/slow.bin") } }))
    local b2 = assert(s1:start({ { url = srv:url("/small.json") }, { url = srv:url("/slow.bin") } }))
    step_until(b1, function() return pending(b2) == 1 and reading(b1) == 2 end,
      "small.json done, both slow.bin sent")
    assert.is_true(s1:close())
    assert.is_true(b1:step(0))
    assert.is_true(b2:step(1))
    local r1, r2 = b1:results(), b2:results()
    assert.are.equal("closed", r1[1].kind)
    assert.is_true(r1[1].request_sent)
    assert.are.equal(200, r2[1].status)   -- finished before the close: kept
    assert.are.equal("closed", r2[2].kind)
    local w = b1:wait_info()
    assert.are.same({}, w.fds)
    assert.is_true(b1:cancel())
    -- a new batch on a closed session
    local none, err = s1:start({ { url = srv:url("/small.json") } })
    assert.is_nil(none)
    assert.are.equal("closed", err.kind)
    b1:close()
    b2:close()
    collectgarbage()
    collectgarbage()
  end)

  it("a collected live batch leaves the session usable", function()
    local s1 = core.session({})
    do
      local b = assert(s1:start({ { url = srv:url("/slow.bin") }, { url = srv:url("/slow.bin") } }))
      for _ = 1, 20 do b:step(0.01) end
    end
    collectgarbage()
    collectgarbage()
    local r = assert(s1:request({ url = srv:url("/small.json") }))
    assert.are.equal(200, r.status)
    do
      local b <close> = assert(s1:start({ { url = srv:url("/slow.bin") } }))
      b:step(0.01)
    end
    assert.are.equal(200, assert(s1:request({ url = srv:url("/small.json") })).status)
    -- a session whose only reference is a live batch stays alive for it
    local b = assert(core.session({}):start({ { url = srv:url("/small.json") } }))
    collectgarbage()
    collectgarbage()
    step_until_done(b)
    assert.are.equal(200, b:results()[1].status)
    s1:close()
  end)

  it("routes completions to their own batch when batches interleave", function()
    local s2 = core.session({ max_body = 64 * 1024 * 1024 })
    local b1 = assert(s2:start({ { url = srv:url("/echo"), headers = { ["X-Test"] = "one" } },
                                 { url = srv:url("/big.bin") } }))
    local b2 = assert(s2:start({ { url = srv:url("/echo"), headers = { ["X-Test"] = "two" } },
                                 { url = srv:url("/small.json") },
                                 { url = "ftp://x" } }))
    local d1, d2 = false, false
    local deadline = socket.gettime() + BOUND
    while socket.gettime() < deadline do
      if not d1 then d1 = b1:step(0.01) end
      if not d2 then d2 = b2:step(0.01) end
      if d1 and d2 then break end
    end
    assert.is_true(d1 and d2)
    local r1, r2 = b1:results(), b2:results()
    assert.are.equal("GET /echo one", r1[1].body)
    assert.are.equal(srv.big_size, #r1[2].body)
    assert.are.equal("GET /echo two", r2[1].body)
    assert.are.equal(srv.json, r2[2].body)
    assert.are.equal("invalid_argument", r2[3].kind)

    -- driving one batch finishes the other's transfers too
    local b3 = assert(s2:start({ { url = srv:url("/echo"), headers = { ["X-Test"] = "three" } } }))
    local b4 = assert(s2:start({ { url = srv:url("/big.bin") } }))
    step_until_done(b4)
    assert.is_true(b3:step(0))
    assert.are.equal("GET /echo three", b3:results()[1].body)

    -- perform while a batch is live
    local b5 = assert(s2:start({ { url = srv:url("/echo"), headers = { ["X-Test"] = "five" } } }))
    local p = s2:perform({ { url = srv:url("/small.json") } })
    assert.are.equal(srv.json, p[1].body)
    step_until_done(b5)
    assert.are.equal("GET /echo five", b5:results()[1].body)
    assert.is_true(s2:stats().requests >= 7)
    s2:close()
  end)

  it("tostring tells the state", function()
    local b = assert(s:start({ { url = srv:url("/small.json") } }))
    assert.matches("^provision%.batch", tostring(b))
    step_until_done(b)
    assert.matches("done", tostring(b))
  end)
end)

-- A reference scheduler for provision.transport.coro on LuaSocket's select
-- (socket.select accepts any object with a getfd method). Runs functions as
-- coroutines; a coroutine that yields ("provision.wait", info) is resumed
-- when one of info.fds is ready or info.timeout has passed (every waiting
-- coroutine is resumed then: an early resume is fine for the transport).
local function fd_object(fd)
  return { getfd = function() return fd end, dirty = function() return false end }
end

local function run_all(fns, trace)
  local cos, waits, live = {}, {}, 0
  local stats = { yields = 0, sleeps = 0, selects = 0 }
  local function resume(i)
    local ok, what, info = coroutine.resume(cos[i])
    if not ok then error(debug.traceback(cos[i], what)) end
    if coroutine.status(cos[i]) == "dead" then
      waits[i] = nil
      live = live - 1
    else
      assert(what == "provision.wait", "unexpected yield " .. tostring(what))
      stats.yields = stats.yields + 1
      if info.sleep then stats.sleeps = stats.sleeps + 1 end
      if trace then trace(i, info) end
      waits[i] = info
    end
  end
  for i, f in ipairs(fns) do cos[i] = coroutine.create(f); live = live + 1 end
  for i = 1, #cos do resume(i) end
  while live > 0 do
    local r, w, timeout = {}, {}, 1
    for _, info in pairs(waits) do
      for _, f in ipairs(info.fds) do
        if f.read then r[#r + 1] = fd_object(f.fd) end
        if f.write then w[#w + 1] = fd_object(f.fd) end
      end
      if info.timeout < timeout then timeout = info.timeout end
    end
    stats.selects = stats.selects + 1
    socket.select(r, w, math.max(0, timeout))
    local ready = {}
    for i in pairs(waits) do ready[#ready + 1] = i end
    table.sort(ready)
    for _, i in ipairs(ready) do resume(i) end
  end
  return stats
end

describe("provision.transport.coro", function()
  local provision = require "provision"
  local Coro = require "provision.transport.coro"
  local sandbox = require "support.sandbox"
  local ORG = "Nw7kQ2pX9sT4vB8mL1cR3d"
  local sb

  setup(function() sb = sandbox.start({ args = { "--quiet" } }) end)
  teardown(function() sb:stop() end)
  before_each(function()
    sb:admin("DELETE", "/faults")
  end)

  local function users(opts)
    opts = opts or {}
    local t = assert(Coro.new({ timeout = 10, wait = opts.wait }))
    return assert(provision.UsersApi({ server = sb.agilicus, transport = t, retries = opts.retries,
                                       auth = { bearer = sb.credentials.agilicus.token } })), t
  end

  it("two clients in two coroutines progress interleaved on one thread", function()
    assert.are.equal(201, (sb:admin("POST", "/faults", { api = "agilicus", delay_ms = 300 })))
    local events = {}
    local function task(name, api)
      return function()
        for k = 1, 2 do
          events[#events + 1] = name .. ":start" .. k
          local page, err = api:list_users({ org_id = ORG, limit = 2 })
          assert(page, err and tostring(err))
          assert(#page.users > 0)
          events[#events + 1] = name .. ":end" .. k
        end
      end
    end
    local a, b = users(), users()
    local stats = run_all({ task("A", a), task("B", b) })
    local pos = {}
    for i, e in ipairs(events) do pos[e] = i end
    assert.are.equal(8, #events)
    -- each call of B began while A's call of the same round was in flight
    assert.is_true(pos["B:start1"] < pos["A:end1"], table.concat(events, " "))
    assert.is_true(pos["B:start2"] < pos["A:end2"], table.concat(events, " "))
    assert.is_true(pos["A:start2"] < pos["B:end2"], table.concat(events, " "))
    assert.is_true(stats.yields >= 4)
    a:close(); b:close()
  end)

  it("runs api:bulk inside a coroutine, yielding to the host while calls are in flight", function()
    assert.are.equal(201, (sb:admin("POST", "/faults", { api = "agilicus", delay_ms = 200 })))
    local api = users({ retries = { attempts = 3, base_delay = 0.05 } })
    local other_ran, summary = 0, nil
    local stats = run_all({
      function()
        local calls = {}
        for i = 1, 8 do calls[i] = { "list_users", { org_id = ORG, limit = i } } end
        local results
        results, summary = api:bulk(calls, { concurrency = 8 })
        for i, r in ipairs(results) do assert(r[1], tostring(r[2])); assert.are.equal(i, #r[1].users) end
      end,
      function()
        -- runs while the bulk job waits on the sandbox's 200 ms
        for _ = 1, 3 do
          if summary == nil then other_ran = other_ran + 1 end   -- the bulk job is still running
          coroutine.yield("provision.wait", { fds = {}, timeout = 0.01 })
        end
      end,
    })
    assert.are.equal(8, summary.ok)
    assert.are.equal(3, other_ran)
    assert.is_true(stats.yields >= 2)
    api:close()
  end)

  it("hands usable descriptors to the scheduler", function()
    assert.are.equal(201, (sb:admin("POST", "/faults", { api = "agilicus", delay_ms = 300 })))
    local api = users()
    local with_fds = 0
    run_all({ function() assert(api:list_users({ org_id = ORG, limit = 1 })) end }, function(_, info)
      assert.is_number(info.timeout)
      assert.is_true(info.complete)
      for _, f in ipairs(info.fds) do assert.is_true(fd_is_open(f.fd)) end
      if #info.fds > 0 then with_fds = with_fds + 1 end
    end)
    assert.is_true(with_fds > 0)
    api:close()
  end)

  it("retry delays yield instead of blocking", function()
    assert.are.equal(201, (sb:admin("POST", "/faults",
      { method = "GET", path = "/agilicus/users", sequence = { "503", "pass" } })))
    local api = users({ retries = { attempts = 3, base_delay = 0.05 } })
    local other_ran = 0
    local stats = run_all({
      function()
        local page, info = api:list_users({ org_id = ORG, limit = 1 })
        assert(page, info and tostring(info))
        assert.are.equal(2, info.attempts)
      end,
      function()
        for _ = 1, 5 do
          other_ran = other_ran + 1
          coroutine.yield("provision.wait", { fds = {}, timeout = 0.001 })
        end
      end,
    })
    assert.is_true(stats.sleeps >= 1)
    assert.are.equal(5, other_ran)
    api:close()
  end)

  it("calls a supplied wait function instead of yielding", function()
    local calls = 0
    local api = users({ wait = function(info)
      calls = calls + 1
      local r = {}
      for _, f in ipairs(info.fds) do if f.read then r[#r + 1] = fd_object(f.fd) end end
      socket.select(r, nil, info.timeout)
    end })
    assert.are.equal(201, (sb:admin("POST", "/faults", { api = "agilicus", delay_ms = 100 })))
    assert(api:list_users({ org_id = ORG, limit = 1 }))
    assert.is_true(calls > 0)
    api:close()
  end)

  it("blocks like the curl transport outside a coroutine", function()
    local api = users()
    local page = assert(api:list_users({ org_id = ORG, limit = 1 }))
    assert.is_true(#page.users > 0)
    api:close()
  end)

  it("closing the transport ends a waiting send with closed errors", function()
    assert.are.equal(201, (sb:admin("POST", "/faults", { api = "agilicus", delay_ms = 2000 })))
    local t = assert(Coro.new({ timeout = 10 }))
    local co = coroutine.create(function()
      return t:send({ { url = sb.agilicus .. "/v1/users?org_id=" .. ORG } })
    end)
    local ok, what = coroutine.resume(co)
    assert.is_true(ok)
    assert.are.equal("provision.wait", what)
    t:close()
    local ok2, res = coroutine.resume(co)
    assert.is_true(ok2)
    assert.are.equal("closed", res[1].kind)
    assert.are.equal("dead", coroutine.status(co))
  end)
end)
