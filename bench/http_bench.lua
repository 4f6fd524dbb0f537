-- HTTP engine benchmark: provision.core and the client against a real nginx
-- (tests/support/nginx.lua) on 127.0.0.1, beside plain libcurl in C
-- (bench/raw_curl.c), in one run. Prints figures only (never asserts on
-- time); a wrong status or a transport error aborts, since the figures would
-- then be meaningless.
--   lua5.4 bench/http_bench.lua [N]   (N calls per row of (r), default 20000;
--                                      the other sections use N/4)
-- Finds provision/core.so through LUA_CPATH (the Makefile sets it) or
-- PROVISION_BUILD=<build dir>; the Lua modules are found from this file's folder.
--
-- What runs (see bench/README.md for how to read the figures):
--   (r)     side by side with raw libcurl (bench/raw_curl.c, built here with cc):
--           sequential keep-alive GET /tenants/t1 pinned to CPU 0 and unpinned
--           (raw, core session:request, Tenants:get), 32 in flight (raw multi
--           loop, core stream, client:all in batches of 32, client:bulk), and
--           the 50 KB tenant list (raw + cJSON, core + provision.json,
--           Tenants:list); ratios to raw per row, the issue's goals checked
--   memory  VmHWM/VmRSS and the Lua heap over 100,000 client calls after warm-up
--   (s)     per-stage breakdown of one call (os.clock of each step alone), and
--           instruction counts per call under callgrind when valgrind is there
--   (a)     sequential GET /small.json, client and nginx pinned to CPU 0 (taskset):
--           provision keep-alive, provision new session per request, LuaSocket
--           socket.http (new connection per request), curl CLI (process spawn)
--   (b)     session:perform in batches of 1, 8, 32, 64 (unpinned), with the default
--           max_connections (8) and with max_connections = 64
--   (c)     TLS (pinned): keep-alive vs a new session (full handshake) per request
--   (d)     executor (pinned): provision.UsersApi:get_user("u") vs session:request on
--           the same URL, plus the steps in between, to price the Lua executor
-- The VM this was written on has 2 vCPUs whose idle CPU halts at once, so a
-- client and a server on different CPUs pay ~50 us per hop: sequential runs are
-- pinned to one CPU (client and server), concurrent ones are not.
local ROOT = debug.getinfo(1, "S").source:sub(2):match("^(.*)/bench/[^/]*$") or "."
package.path = ROOT .. "/?.lua;" .. package.path
local common = require("bench.common").setup(ROOT)

local core = require "provision.core"
local provision = require "provision"
local nginx = require "support.nginx"
local raw = require "bench.raw"
local stages = require "bench.stages"
local ok_http, http = pcall(require, "socket.http")

local N_RATIO = tonumber(arg and arg[1]) or 20000   -- rows of (r)
local N = math.max(1000, N_RATIO // 4)               -- rows of (a) to (d)
local N_LIST = math.max(100, N_RATIO // 10)          -- 50 KB list rows
local N_SPAWN = math.min(200, N)           -- curl CLI runs
local N_HANDSHAKE = math.max(50, N // 10)  -- TLS new session per request
local N_MEM = 100000                       -- client calls of the memory section
local N_BUNDLE = math.max(10, N // 100)    -- TLS new session per request, system-size trust store
local N_CALLGRIND = 1000                   -- calls per stage under callgrind

-- process facts -----------------------------------------------------------------

local read = common.read
local SELF, ALL_CPUS, HAVE_TASKSET = common.process()

local function status_kb(field)
  return tonumber((read("/proc/self/status") or ""):match(field .. ":%s*(%d+)")) or 0
end

-- CPU seconds of waited-for children (the curl CLI runs): cutime + cstime.
local CLK_TCK = tonumber((io.popen("getconf CLK_TCK"):read("l"))) or 100
local function children_cpu()
  local stat = read("/proc/self/stat")
  local rest = stat:match("^%d+ %b() (.*)$")
  local f = {}
  for w in rest:gmatch("%S+") do f[#f + 1] = w end
  -- fields after "(comm)": state is 3 -> index 1; cutime is field 16 -> index 14
  return (tonumber(f[14]) + tonumber(f[15])) / CLK_TCK
end

-- affinity ----------------------------------------------------------------------

local srv
local function nginx_pids()
  local pids = { srv.pid }
  local kids = read(("/proc/%d/task/%d/children"):format(srv.pid, srv.pid)) or ""
  for p in kids:gmatch("%d+") do pids[#pids + 1] = tonumber(p) end
  return pids
end

local function set_affinity(cpus)
  if not HAVE_TASKSET then return end
  local pids = nginx_pids()
  pids[#pids + 1] = SELF
  for _, p in ipairs(pids) do
    os.execute(("taskset -cp %s %d >/dev/null 2>&1"):format(cpus, p))
  end
end
local function pin() set_affinity("0") end
local function unpin() set_affinity(ALL_CPUS) end

-- measuring ---------------------------------------------------------------------

-- A group of clients is measured in ROUNDS interleaved rounds (A B C, A B C,
-- ...), so slow drift of the VM hits all alike; each client's figure is its
-- median round (by wall time), and rows.samples keeps every round in order
-- (for ratios taken round by round). fn(n) makes n requests. Client CPU is
-- os.clock() of this process, plus extra_cpu() (the curl CLI children); a
-- fn that runs a child which times itself (raw_curl) returns its figures.
local ROUNDS = 3
local RATIO_ROUNDS = 5   -- the rows against raw libcurl: their ratios are the issue's goals
local function run_group(specs, rounds)
  rounds = rounds or ROUNDS
  local samples = {}
  for round = 1, rounds do
    for i, sp in ipairs(specs) do
      if round <= (sp.rounds or rounds) then
        collectgarbage("collect")
        collectgarbage("step", 0)   -- see README: re-arms Lua 5.4.4's pacing after a full collect
        local x0 = sp.extra_cpu and sp.extra_cpu() or 0
        local w0, c0 = core.now(), os.clock()
        local own = sp.fn(sp.n)   -- a child that timed itself returns {wall =, cpu =}
        local w1, c1 = core.now(), os.clock()
        local x1 = sp.extra_cpu and sp.extra_cpu() or 0
        samples[i] = samples[i] or {}
        if type(own) == "table" then table.insert(samples[i], { wall = own.wall, cpu = own.cpu })
        else table.insert(samples[i], { wall = w1 - w0, cpu = (c1 - c0) + (x1 - x0) }) end
      end
    end
  end
  local rows = {}
  for i, sp in ipairs(specs) do
    local list = {}
    for r, x in ipairs(samples[i]) do list[r] = x end
    table.sort(list, function(x, y) return x.wall < y.wall end)
    local m = list[(#list + 1) // 2]
    rows[i] = { name = sp.name, n = sp.n, rounds = #list, wall = m.wall, cpu = m.cpu,
                us = m.wall / sp.n * 1e6, cpu_us = m.cpu / sp.n * 1e6, rps = sp.n / m.wall, samples = samples[i] }
  end
  return rows
end

-- base's time over row's, per request, round by round (the two ran one
-- after the other in each round): the median of those ratios, by wall
-- time and by CPU. A VM whose speed drifts between rounds moves both
-- alike, so a ratio is steadier than either figure.
local function paired_ratio(base, row)
  local w, c = {}, {}
  for r = 1, math.min(#base.samples, #row.samples) do
    local b, x = base.samples[r], row.samples[r]
    w[r] = (b.wall / base.n) / (x.wall / row.n)
    c[r] = (b.cpu / base.n) / (x.cpu / row.n)
  end
  table.sort(w)
  table.sort(c)
  return w[(#w + 1) // 2], c[(#c + 1) // 2]
end

local function report(title, rows, base)
  io.write(title, "\n")
  io.write(string.format("  %-46s %6s %9s %9s %11s %8s\n", "client", "n", "req/s", "us/req", "cpu us/req", "time x"))
  for _, r in ipairs(rows) do
    io.write(string.format("  %-46s %6d %9.0f %9.1f %11.1f %8.2f\n", r.name, r.n, r.rps, r.us, r.cpu_us,
      r.us / base.us))
  end
  io.write(string.format("  (median of %d interleaved rounds; time x = us/req divided by that of '%s', >1 = slower)\n",
    ROUNDS, base.name))
end

local function check(resp, err, want)
  if not resp then error("request failed: " .. tostring(err)) end
  if resp.kind then error("request failed: " .. tostring(resp)) end
  if resp.status ~= (want or 200) then error("unexpected status " .. tostring(resp.status)) end
end

-- the server --------------------------------------------------------------------

local USER_JSON = common.USER_JSON
srv = nginx.start()
collectgarbage("collect")
collectgarbage("step", 0)
local ok, err = pcall(function()
  local LIST_JSON = common.add_locations(srv)
  local URL = srv:url("/small.json")
  local TLS_URL = srv:url("/small.json", true)
  local ka = assert(core.session())
  local get = { url = URL }

  io.write(string.format("provision %s, libcurl %s, %s, nginx %s, N = %d (rows of (r)), %d (other sections)\n",
    provision.version, (io.popen("curl-config --version 2>/dev/null"):read("l") or "?"):match("[%d.]+") or "?",
    ALL_CPUS ~= "0" and ("CPUs " .. ALL_CPUS) or "1 CPU",
    (io.popen("nginx -v 2>&1"):read("l") or "?"):match("[%d.]+$") or "?", N_RATIO, N))
  if not HAVE_TASKSET then io.write("taskset not found: the 'pinned' runs are NOT pinned\n") end
  io.write("figures: wall time per request; client CPU = os.clock() of this process (+ children for curl CLI;\n"
    .. "         raw_curl times its own loop with getrusage)\n\n")

  -- (r) side by side with raw libcurl ----------------------------------------
  local exe, cjson = raw.build(ROOT, srv.dir)
  local TENANT_URL, LIST_URL = srv:url("/tenants/t1"), srv:url("/tenants")
  local TOKEN = stages.TOKEN
  -- the request provision sends for Tenants:get, header for header (its
  -- default User-Agent is provision/<core version> libcurl/<version>)
  local ua = "provision/" .. core.version .. " libcurl/"
    .. ((io.popen("curl-config --version 2>/dev/null"):read("l") or ""):match("[%d.]+") or "?")
  local HEADERS = { "Accept: application/json", "Authorization: Bearer " .. TOKEN, "User-Agent: " .. ua }
  local treq = { method = "GET", url = TENANT_URL, headers = { { "Accept", "application/json" },
                                                               { "Authorization", "Bearer " .. TOKEN } } }
  local lreq = { method = "GET", url = LIST_URL, headers = treq.headers }
  local tenants = assert(provision.Tenants({ server = srv.base, auth = { bearer = TOKEN }, max_connections = 32 }))
  local rs = assert(core.session({ max_connections = 32 }))
  for _ = 1, 200 do
    check(rs:request(treq))
    assert(tenants:get("t1"))
  end
  assert(assert(rs:request(treq)).body == common.TENANT_JSON, "the core got another body")
  -- the Lua floor: what Lua alone adds to raw's loop (bench/lua_floor.c)
  local floor, floor_why = raw.floor(ROOT, srv.dir)
  local fh = floor and floor.new(HEADERS)
  if fh then
    for _ = 1, 200 do check(fh:get(TENANT_URL)) end
  else
    io.write("(r) no Lua floor row: ", tostring(floor_why), "\n")
  end
  local function raw_row(name, mode, url, n, k)
    return { name = name, n = n, fn = function()
      return raw.run(exe, mode, url, n, k, HEADERS)
    end }
  end
  local function seq_rows(tag)
    local rows = {}
    if exe then rows[#rows + 1] = raw_row("raw libcurl, one easy handle (C)" .. tag, "seq", TENANT_URL, N_RATIO) end
    rows[#rows + 1] = { name = "core session:request" .. tag, n = N_RATIO, fn = function(n)
        for _ = 1, n do check(rs:request(treq)) end
      end }
    rows[#rows + 1] = { name = "Tenants:get(\"t1\"), full call" .. tag, n = N_RATIO, fn = function(n)
        for _ = 1, n do
          local v, e = tenants:get("t1")
          if not v then error(tostring(e)) end
        end
      end }
    -- what the full call does beyond raw's loop, done in C: decode the tenant
    if exe and cjson == true then
      rows[#rows + 1] = raw_row("raw libcurl + cJSON of the tenant (C)" .. tag, "json", TENANT_URL, N_RATIO)
    end
    if fh then
      rows[#rows + 1] = { name = "Lua floor (bench/lua_floor.c)" .. tag, n = N_RATIO, fn = function(n)
          for _ = 1, n do check(fh:get(TENANT_URL)) end
        end }
    end
    return rows
  end
  -- ratio to raw: raw's time divided by the row's (1 = as fast as raw)
  local function report_raw(title, rows)
    local base = exe and rows[1] or nil
    io.write(title, "\n")
    io.write(string.format("  %-50s %6s %8s %8s %9s %8s %8s\n", "client", "n", "req/s", "us/req", "cpu us/req",
      "x raw", "cpu x raw"))
    for _, r in ipairs(rows) do
      local w, c = nil, nil
      if base then w, c = paired_ratio(base, r) end
      io.write(string.format("  %-50s %6d %8.0f %8.1f %9.1f %8s %8s\n", r.name, r.n, r.rps, r.us, r.cpu_us,
        w and string.format("%.2f", w) or "-", c and string.format("%.2f", c) or "-"))
    end
    io.write(string.format("  (figures: median of %d interleaved rounds; x raw: raw's time per request / the row's,"
      .. " taken round by round, their median: 1.00 = as fast as raw)\n", RATIO_ROUNDS))
    return rows
  end
  local goals = {}
  local function goal(what, rows, i, want)
    if not (exe and rows[1]) then
      goals[#goals + 1] = ("  %-58s   n/a (no raw libcurl: %s)"):format(what, tostring(cjson))
      return
    end
    local w, c = paired_ratio(rows[1], rows[i])
    goals[#goals + 1] = ("  %-58s >= %.2f: %.2f by time, %.2f by CPU  %s"):format(what, want, w, c,
      (w >= want or c >= want) and "met" or "NOT met")
  end

  if not exe then io.write("(r) raw libcurl rows skipped: ", cjson, "\n") end
  pin()
  local r1 = report_raw("(r1) sequential keep-alive GET /tenants/t1, client and nginx pinned to CPU 0",
    run_group(seq_rows(""), RATIO_ROUNDS))
  goal("sequential pinned: Tenants:get / raw libcurl", r1, 3, 0.75)
  goal("sequential pinned: core session:request / raw libcurl", r1, 2, 0.9)
  -- beside the goals: the same job done in C, and the least Lua can add
  for i = 4, #r1 do
    local w, c = paired_ratio(r1[1], r1[i])
    goals[#goals + 1] = ("  %-58s    = %.2f by time, %.2f by CPU  (a bound, not a goal)"):format(
      "sequential pinned: " .. r1[i].name:gsub(" %(C%)$", "") .. " / raw", w, c)
    if r1[i].name:find("Lua floor", 1, true) then
      w, c = paired_ratio(r1[i], r1[2])
      goals[#goals + 1] = ("  %-58s    = %.2f by time, %.2f by CPU  (provision's own cost)"):format(
        "sequential pinned: core session:request / Lua floor", w, c)
    end
    if r1[i].name:find("cJSON", 1, true) then
      w, c = paired_ratio(r1[i], r1[3])
      goals[#goals + 1] = ("  %-58s    = %.2f by time, %.2f by CPU  (the same job in C)"):format(
        "sequential pinned: Tenants:get / raw libcurl + cJSON", w, c)
    end
  end
  io.write("\n")
  unpin()
  report_raw("(r2) the same, unpinned", run_group(seq_rows(" (unpinned)"), RATIO_ROUNDS))
  io.write("\n")

  -- 32 in flight, unpinned
  local K = 32
  local conc = {}
  if exe then conc[#conc + 1] = raw_row("raw libcurl multi loop, 32 in flight (C)", "multi", TENANT_URL, N_RATIO, K) end
  -- the bulk engine's transport alone: provision.transport.curl_stream (on
  -- session:stream(); before it existed, on a batch per request)
  conc[#conc + 1] = { name = "core stream (engine transport), 32 in flight", n = N_RATIO, fn = function(n)
      local st = assert(require("provision.transport.curl_stream").new(rs, {}))
      local started, ended = 0, 0
      while started < K and started < n do started = started + 1; st:add(treq, started) end
      while ended < n do
        local got = st:poll(0.25)
        for i = 1, #got, 2 do
          check(got[i + 1])
          ended = ended + 1
          if started < n then started = started + 1; st:add(treq, started) end
        end
      end
      st:close()
    end }
  local calls32 = {}
  for i = 1, K do calls32[i] = { "get", "t1" } end
  conc[#conc + 1] = { name = "Tenants:all in batches of 32", n = (N_RATIO // K) * K, fn = function(n)
      for _ = 1, n // K do
        for _, r in ipairs(tenants:all(calls32)) do
          if r[1] == nil then error(tostring(r[2])) end
        end
      end
    end }
  conc[#conc + 1] = { name = "Tenants:bulk, concurrency 32", n = N_RATIO, fn = function(n)
      local i = 0
      local _, summary = tenants:bulk(function()
        i = i + 1
        if i <= n then return { "get", "t1" } end
      end, { concurrency = K, collect = false })
      if summary.ok ~= n then error("bulk: " .. summary.ok .. " of " .. n .. " ok") end
    end }
  local r3 = report_raw("(r3) 32 in flight, unpinned (max_connections 32)", run_group(conc, RATIO_ROUNDS))
  goal("32 in flight: Tenants:bulk / raw libcurl multi", r3, #conc, 0.75)
  goal("32 in flight: Tenants:all (batches of 32) / raw libcurl multi", r3, #conc - 1, 0.75)
  io.write("\n")

  -- the 50 KB list, pinned
  pin()
  local list_rows = {}
  if exe and cjson == true then
    list_rows[1] = raw_row("raw libcurl + cJSON_Parse (C)", "json", LIST_URL, N_LIST)
  end
  list_rows[#list_rows + 1] = { name = "core session:request + provision.json", n = N_LIST, fn = function(n)
      local json = require "provision.json"
      for _ = 1, n do
        local r = rs:request(lreq)
        check(r)
        assert(json.decode(r.body))
      end
    end }
  list_rows[#list_rows + 1] = { name = "Tenants:list(), full call", n = N_LIST, fn = function(n)
      for _ = 1, n do
        local v, e = tenants:list()
        if not v then error(tostring(e)) end
      end
    end }
  local base_ok = exe and cjson == true
  if not base_ok then io.write("(r4) raw libcurl + cJSON row skipped: ", tostring(cjson), "\n") end
  local saved_exe = exe
  if not base_ok then exe = nil end
  local r4 = report_raw(("(r4) GET /tenants, a %d-byte JSON list (%d tenants), decoded, pinned"):format(#LIST_JSON,
    select(2, common.tenant_list(50 * 1024))), run_group(list_rows, RATIO_ROUNDS))
  goal("50 KB list: core + provision.json / libcurl + cJSON", r4, base_ok and 2 or 1, 0.9)
  exe = saved_exe
  io.write("\n  goals (issue: ratios in one run, same server):\n", table.concat(goals, "\n"), "\n\n")
  rs:close()

  -- memory --------------------------------------------------------------------
  -- The helper built a 10 MiB string (big.bin) at start: collect it and reset
  -- the peak (echo 5 > /proc/self/clear_refs, Linux >= 4.0) so that VmHWM
  -- shows this section's peak, not the start-up one.
  pin()
  local cleared = false
  local cr = io.open("/proc/self/clear_refs", "w")
  if cr then cleared = cr:write("5") and cr:close() or false end
  local function snapshot(label)
    collectgarbage("collect")
    collectgarbage("step", 0)
    return { label = label, hwm = status_kb("VmHWM"), rss = status_kb("VmRSS"), anon = status_kb("RssAnon"),
             heap = collectgarbage("count") }
  end
  local function calls(n)
    for _ = 1, n do
      local v, e = tenants:get("t1")
      if not v then error(tostring(e)) end
    end
  end
  local m = {}
  calls(10000)
  m[1] = snapshot("after 10,000 calls (warm-up)")
  calls(N_MEM // 2)
  m[2] = snapshot(("after %d calls"):format(10000 + N_MEM // 2))
  calls(N_MEM // 2)
  m[3] = snapshot(("after %d calls"):format(10000 + N_MEM))
  io.write("memory of this Lua process over Tenants:get(\"t1\") calls (one client)",
    cleared and "" or " [VmHWM not reset: includes start-up]", "\n")
  io.write(string.format("  %-32s %10s %10s %10s %12s\n", "", "VmHWM kB", "VmRSS kB", "RssAnon kB", "Lua heap kB"))
  for _, x in ipairs(m) do
    io.write(string.format("  %-32s %10d %10d %10d %12.0f\n", x.label, x.hwm, x.rss, x.anon, x.heap))
  end
  io.write(string.format("  growth over %d calls after warm-up: VmHWM %d kB, RssAnon %d kB, Lua heap %.0f kB "
    .. "(goal < 1 MB: %s)\n\n", N_MEM, m[3].hwm - m[1].hwm, m[3].anon - m[1].anon, m[3].heap - m[1].heap,
    (m[3].hwm - m[1].hwm) < 1024 and "met" or "NOT met"))
  tenants:close()

  -- (s) per-stage breakdown ----------------------------------------------------
  do
    local st = stages.new(srv.base)
    local specs = {}
    for i, e in ipairs(stages.ORDER) do
      local fn = st.fns[e[1]]
      specs[i] = { name = (e.part_of and "  " or "") .. e[2], n = N_RATIO, fn = function(n)
          for _ = 1, n do fn() end
        end }
    end
    local rows = run_group(specs)
    local by = {}
    for i, e in ipairs(stages.ORDER) do by[e[1]] = rows[i] end
    -- instructions per call under callgrind: each stage in a worker of its own
    local ir, why_not = {}, nil
    if os.execute("command -v valgrind >/dev/null 2>&1") ~= true then
      why_not = "valgrind not found"
    else
      local function irefs(cmd)
        local p = io.popen("valgrind --tool=callgrind --callgrind-out-file=/dev/null " .. cmd .. " 2>&1")
        local out = p:read("a")
        p:close()
        local n = out:match("refs:%s+([%d,]+)")
        return n and tonumber((n:gsub(",", ""))) or nil
      end
      local lua = ((arg and arg[-1]) or "lua5.4") .. " " .. ROOT .. "/bench/stages.lua " .. srv.base
      local base = irefs(lua .. " call 0")
      for _, e in ipairs(stages.ORDER) do
        local full = base and irefs(("%s %s %d"):format(lua, e[1], N_CALLGRIND))
        if full then ir[e[1]] = (full - base) / N_CALLGRIND end
      end
      if exe then
        local r0 = irefs(("%s seq %s 1 '%s' '%s' '%s'"):format(exe, TENANT_URL, HEADERS[1], HEADERS[2], HEADERS[3]))
        local r1x = irefs(("%s seq %s %d '%s' '%s' '%s'"):format(exe, TENANT_URL, 1 + N_CALLGRIND, HEADERS[1],
          HEADERS[2], HEADERS[3]))
        if r0 and r1x then ir.raw = (r1x - r0) / N_CALLGRIND end
        if cjson == true then
          local j1 = irefs(("%s json %s %d '%s' '%s' '%s'"):format(exe, TENANT_URL, 1 + N_CALLGRIND, HEADERS[1],
            HEADERS[2], HEADERS[3]))
          local j0 = irefs(("%s json %s 1 '%s' '%s' '%s'"):format(exe, TENANT_URL, HEADERS[1], HEADERS[2], HEADERS[3]))
          if j0 and j1 then ir.raw_json = (j1 - j0) / N_CALLGRIND end
        end
      end
      if fh then
        local w = ("%s %s/bench/raw.lua floor %s/lua_floor.so %s %%d '%s' '%s' '%s'"):format(
          (arg and arg[-1]) or "lua5.4", ROOT, srv.dir, TENANT_URL, HEADERS[1], HEADERS[2], HEADERS[3])
        local f0, f1 = irefs(w:format(1)), irefs(w:format(1 + N_CALLGRIND))
        if f0 and f1 then ir.floor = (f1 - f0) / N_CALLGRIND end
      end
      if not base then why_not = "valgrind failed" end
    end
    io.write("(s) one Tenants:get(\"t1\") call, step by step (each step alone, pinned)\n")
    io.write(string.format("  %-56s %9s %9s\n", "step", "cpu us", "Ir/call"))
    local function line(name, cpu, n_ir)
      io.write(string.format("  %-56s %9s %9s\n", name, cpu and string.format("%.2f", cpu) or "-",
        n_ir and string.format("%.0f", n_ir) or "-"))
    end
    for i, e in ipairs(stages.ORDER) do line(specs[i].name, by[e[1]].cpu_us, ir[e[1]]) end
    local function sum(t, keys)
      local total = 0
      for _, k in ipairs(keys) do
        if not t[k] then return nil end
        total = total + t[k]
      end
      return total
    end
    local top = { "fast_request", "send", "take" }
    local engine_steps = { "prepare", "limiter", "auth", "send", "observe", "finish" }
    local cpu = {}
    for k, r in pairs(by) do cpu[k] = r.cpu_us end
    local function diff(t, a, keys)
      local s2 = sum(t, keys)
      return (t[a] and s2) and (t[a] - s2) or nil
    end
    line("derived: bind + job (prepare - build)", diff(cpu, "prepare", { "build" }), diff(ir, "prepare", { "build" }))
    line("derived: the transport's own work (send - request)", diff(cpu, "send", { "request" }),
      diff(ir, "send", { "request" }))
    line("derived: taking it without decode (take - decode)", diff(cpu, "take", { "decode" }),
      diff(ir, "take", { "decode" }))
    line("derived: the fast path's glue (call - request, send, take)", diff(cpu, "call", top), diff(ir, "call", top))
    line("derived: interpret without decode (finish - decode)", diff(cpu, "finish", { "decode" }),
      diff(ir, "finish", { "decode" }))
    line("derived: the engine's glue (engine - its steps)", diff(cpu, "engine", engine_steps),
      diff(ir, "engine", engine_steps))
    if ir.raw then line("raw libcurl, one request (bench/raw_curl.c, same headers)", nil, ir.raw) end
    if ir.raw_json then line("raw libcurl + cJSON_Parse of the tenant, one request", nil, ir.raw_json) end
    if ir.floor then line("Lua floor, one request (bench/lua_floor.c, same headers)", nil, ir.floor) end
    if why_not then io.write("  (no instruction counts: ", why_not, ")\n") end
    io.write(string.format("  (cpu us: median of %d rounds of %d; Ir/call: callgrind instructions per call over %d calls,"
      .. "\n   set-up subtracted: deterministic, unaffected by other jobs on the machine)\n\n", ROUNDS, N_RATIO,
      N_CALLGRIND))
    st.close()
  end

  -- (a) sequential, pinned ----------------------------------------------------
  local close_get = { url = URL, headers = { { "Connection", "close" } } }
  for _ = 1, 200 do check(ka:request(get)) end
  local a = {
    { name = "provision session, keep-alive", n = N, fn = function(n)
        for _ = 1, n do check(ka:request(get)) end
      end },
    { name = "provision perform({req}), keep-alive", n = N, fn = function(n)
        local batch = { get }
        for _ = 1, n do check(ka:perform(batch)[1]) end
      end },
    { name = "provision session, Connection: close", n = N, fn = function(n)
        for _ = 1, n do check(ka:request(close_get)) end
      end },
    { name = "provision new session per request", n = N, fn = function(n)
        for _ = 1, n do
          local s = core.session()
          check(s:request(get))
          s:close()
        end
      end },
  }
  if ok_http then
    for _ = 1, 50 do assert(http.request(URL)) end
    a[#a + 1] = { name = "LuaSocket socket.http (new connection)", n = N, fn = function(n)
        for _ = 1, n do
          local body, code = http.request(URL)
          if code ~= 200 or not body then error("socket.http: " .. tostring(code)) end
        end
      end }
  end
  if os.execute("command -v curl >/dev/null 2>&1") == true then
    local cmd = "curl -sf -o /dev/null " .. URL
    a[#a + 1] = { name = "curl CLI, one process per request", n = N_SPAWN, rounds = 1, extra_cpu = children_cpu,
      fn = function(n)
        for _ = 1, n do assert(os.execute(cmd), "curl failed") end
      end }
  end
  local ra = run_group(a)
  report("(a) sequential GET /small.json, client and nginx pinned to CPU 0", ra, ra[1])
  io.write("\n")

  -- (b) concurrent, unpinned --------------------------------------------------
  unpin()
  for _, maxc in ipairs({ 8, 64 }) do
    local s = assert(core.session({ max_connections = maxc }))
    local specs = {}
    for _, size in ipairs({ 1, 8, 32, 64 }) do
      local batch = {}
      for i = 1, size do batch[i] = get end
      local rounds = math.max(1, N // size)
      for _, r in ipairs(s:perform(batch)) do check(r) end   -- warm: open the connections
      local sp = { name = ("perform, batches of %d"):format(size), n = rounds * size, size = size, slowest = 0,
                   stalls = 0 }
      sp.fn = function()
        for _ = 1, rounds do
          local t0 = core.now()
          for _, r in ipairs(s:perform(batch)) do check(r) end
          local dt = core.now() - t0
          if dt > sp.slowest then sp.slowest = dt end
          if dt > 0.5 then sp.stalls = sp.stalls + 1 end
        end
      end
      specs[#specs + 1] = sp
    end
    local rows = run_group(specs)
    local st = s:stats()
    s:close()
    report(("(b) concurrent session:perform, unpinned, max_connections = %d (%d connections opened)")
      :format(maxc, st.connections), rows, rows[1])
    local parts = {}
    for _, sp in ipairs(specs) do
      parts[#parts + 1] = ("%d: %.1f ms (%d over 0.5 s)"):format(sp.size, sp.slowest * 1e3, sp.stalls)
    end
    io.write("  slowest single perform per batch size, all rounds: ", table.concat(parts, ", "), "\n")
    io.write("\n")
  end

  -- (b2) latency of one perform when requests queue for a connection (more
  -- requests than max_connections): distribution over many batches, since a
  -- rare stall is what matters here.
  do
    local B = 300
    for _, maxc in ipairs({ 8, 64 }) do
      local s = assert(core.session({ max_connections = maxc }))
      local batch = {}
      for i = 1, 64 do batch[i] = get end
      for _, r in ipairs(s:perform(batch)) do check(r) end
      local times, stalls = {}, 0
      for b = 1, B do
        local t0 = core.now()
        for _, r in ipairs(s:perform(batch)) do check(r) end
        times[b] = (core.now() - t0) * 1e3
        if times[b] > 500 then stalls = stalls + 1 end
      end
      s:close()
      table.sort(times)
      io.write(string.format("(b2) %d performs of 64 requests, max_connections = %2d: ms per perform p50 %.2f  p90 %.2f"
        .. "  p99 %.2f  max %.2f; %d over 0.5 s\n", B, maxc, times[B // 2], times[B * 9 // 10], times[B * 99 // 100],
        times[B], stalls))
    end
    io.write("\n")
  end

  -- (c) TLS, pinned ----------------------------------------------------------
  pin()
  local tls = assert(core.session({ ca_file = srv.ca_file }))
  local tget = { url = TLS_URL }
  local tclose = { url = TLS_URL, headers = { { "Connection", "close" } } }
  for _ = 1, 100 do check(tls:request(tget)) end
  local rc = run_group({
    { name = "TLS keep-alive", n = N, fn = function(n)
        for _ = 1, n do check(tls:request(tget)) end
      end },
    { name = "TLS same session, Connection: close", n = N_HANDSHAKE, fn = function(n)
        for _ = 1, n do check(tls:request(tclose)) end
      end },
    { name = "TLS new session per request (full handshake)", n = N_HANDSHAKE, fn = function(n)
        for _ = 1, n do
          local s = core.session({ ca_file = srv.ca_file })
          check(s:request(tget))
          s:close()
        end
      end },
    { name = "plain HTTP keep-alive (same run)", n = N, fn = function(n)
        for _ = 1, n do check(ka:request(get)) end
      end },
  })
  local probe = tls:request(tget)
  -- did a new connection of the same session resume the TLS session? ("r" = reused)
  local reused = tls:request({ url = srv:url("/tls-reused", true), headers = { { "Connection", "close" } } })
  tls:close()
  report(("(c) TLS GET /small.json (HTTP/%s, ECDSA P-256 server key), pinned"):format(probe.http_version), rc, rc[1])
  io.write(("  nginx $ssl_session_reused on a new connection of the same session: %q (\"r\" = resumed)\n")
    :format(reused and reused.body or "?"))

  -- The same with a trust store the size of Debian's (the system bundle plus
  -- the test CA): what a client pays when it verifies against the default store.
  local system_bundle = "/etc/ssl/certs/ca-certificates.crt"
  local sys = read(system_bundle)
  if sys then
    local bundle = srv.dir .. "/bundle.pem"
    local f = assert(io.open(bundle, "w"))
    f:write(sys, "\n", assert(read(srv.ca_file)))
    f:close()
    local _, ncerts = sys:gsub("BEGIN CERTIFICATE", "")
    local big = assert(core.session({ ca_file = bundle }))
    for _ = 1, 20 do check(big:request(tget)) end
    local rb = run_group({
      { name = "keep-alive", n = N, fn = function(n)
          for _ = 1, n do check(big:request(tget)) end
        end },
      { name = "same session, Connection: close", n = N_BUNDLE, fn = function(n)
          for _ = 1, n do check(big:request(tclose)) end
        end },
      { name = "new session per request", n = N_BUNDLE, fn = function(n)
          for _ = 1, n do
            local s = core.session({ ca_file = bundle })
            check(s:request(tget))
            s:close()
          end
        end },
    })
    big:close()
    report(("(c2) TLS as above, trust store = %s (%d certificates) + test CA, pinned")
      :format(system_bundle, ncerts + 1), rb, rb[1])
  end
  io.write("\n")

  -- (d) executor, pinned -----------------------------------------------------
  local users = assert(provision.UsersApi({ server = srv.base, auth = { bearer = "bench-token" } }))
  -- the same request the executor sends (it adds Accept: application/json)
  local uget = { method = "GET", url = srv:url("/users/u"),
                 headers = { { "Accept", "application/json" }, { "Authorization", "Bearer bench-token" } } }
  local ubatch = { uget }
  for _ = 1, 200 do
    assert(users:get_user("u"))
    check(ka:request(uget))
  end
  local u = assert(users:get_user("u"))
  assert(u.email == "ada@example.com", "executor returned the wrong user")
  -- the executor's Lua work alone, with a transport that answers at once
  local canned = { status = 200, headers = setmetatable({ ["content-type"] = "application/json" }, {}),
                   body = USER_JSON, time = 0 }
  local fake = { send = function(_, reqs) local out = {}; for i = 1, #reqs do out[i] = canned end; return out end,
                 now = core.now, sleep = core.sleep }
  local offline = assert(provision.UsersApi({ server = srv.base, auth = { bearer = "bench-token" }, transport = fake }))
  local rd = run_group({
    { name = "session:request (raw)", n = N, fn = function(n)
        for _ = 1, n do check(ka:request(uget)) end
      end },
    { name = "session:perform({req}), as the executor does", n = N, fn = function(n)
        for _ = 1, n do check(ka:perform(ubatch)[1]) end
      end },
    { name = "session:request + json_decode", n = N, fn = function(n)
        for _ = 1, n do
          local r = ka:request(uget)
          check(r)
          assert(core.json_decode(r.body))
        end
      end },
    { name = "UsersApi:get_user(\"u\") (executor)", n = N, fn = function(n)
        for _ = 1, n do
          local user, e = users:get_user("u")
          if not user then error(tostring(e)) end
        end
      end },
    { name = "get_user, canned transport (no I/O)", n = N, fn = function(n)
        for _ = 1, n do assert(offline:get_user("u")) end
      end },
    { name = "json_decode of the user body (no I/O)", n = N, fn = function(n)
        for _ = 1, n do assert(core.json_decode(USER_JSON)) end
      end },
  })
  users:close()
  report("(d) executor path GET /users/u (" .. #USER_JSON .. " B JSON user), pinned", rd, rd[1])
  io.write(string.format("  executor overhead: %.1f us/call wall, %.1f us/call client CPU (get_user minus raw request)\n",
    rd[4].us - rd[1].us, rd[4].cpu_us - rd[1].cpu_us))
  io.write(string.format("  without I/O: executor %.1f us/call, of which JSON decode %.1f us\n",
    rd[5].cpu_us, rd[6].cpu_us))
  ka:close()
end)
unpin()
srv:stop()
if not ok then error(err, 0) end
