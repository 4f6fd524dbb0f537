-- HTTP engine benchmark: provision.core against a real nginx (tests/support/
-- nginx.lua) on 127.0.0.1, side by side in one run. Prints figures only
-- (never asserts on time); a wrong status or a transport error aborts, since
-- the figures would then be meaningless.
--   lua5.4 bench/http_bench.lua [N]      (N sequential requests per client, default 5000)
-- Finds provision/core.so through LUA_CPATH (the Makefile sets it) or
-- PROVISION_BUILD=<build dir>; the Lua modules are found from this file's folder.
--
-- What runs (see bench/README.md for how to read the figures):
--   memory  VmHWM/VmRSS of this process after 100 and after 10,100 kept-alive requests
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
local ok_http, http = pcall(require, "socket.http")

local N = tonumber(arg and arg[1]) or 5000
local N_SPAWN = math.min(200, N)           -- curl CLI runs
local N_HANDSHAKE = math.max(50, N // 10)  -- TLS new session per request
local N_MEM = 10000
local N_BUNDLE = math.max(10, N // 100)    -- TLS new session per request, system-size trust store

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
-- median round (by wall time). fn(n) makes n requests. Client CPU is
-- os.clock() of this process, plus extra_cpu() (the curl CLI children).
local ROUNDS = 3
local function run_group(specs)
  local samples = {}
  for round = 1, ROUNDS do
    for i, sp in ipairs(specs) do
      if round <= (sp.rounds or ROUNDS) then
        collectgarbage("collect")
        collectgarbage("step", 0)   -- see README: re-arms Lua 5.4.4's pacing after a full collect
        local x0 = sp.extra_cpu and sp.extra_cpu() or 0
        local w0, c0 = core.now(), os.clock()
        sp.fn(sp.n)
        local w1, c1 = core.now(), os.clock()
        local x1 = sp.extra_cpu and sp.extra_cpu() or 0
        samples[i] = samples[i] or {}
        table.insert(samples[i], { wall = w1 - w0, cpu = (c1 - c0) + (x1 - x0) })
      end
    end
  end
  local rows = {}
  for i, sp in ipairs(specs) do
    local list = samples[i]
    table.sort(list, function(x, y) return x.wall < y.wall end)
    local m = list[(#list + 1) // 2]
    rows[i] = { name = sp.name, n = sp.n, rounds = #list, wall = m.wall, cpu = m.cpu,
                us = m.wall / sp.n * 1e6, cpu_us = m.cpu / sp.n * 1e6, rps = sp.n / m.wall }
  end
  return rows
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

local USER_JSON = '{"id":"u","email":"ada@example.com","first_name":"Ada","last_name":"Lovelace",'
  .. '"org_id":"o1","type":"user","status":"active","created":"2024-01-02T12:00:00Z",'
  .. '"roles":{"o1":["admin","viewer"]},"member_of":[{"id":"g1","name":"Engineering"}],'
  .. '"external_id":null,"enabled":true,"cascade":false}'

-- A JSON user at /users/<id>: added to the helper's config, then a reload
-- (SIGHUP to the master), polled until the new worker answers.
local function add_user_location()
  local conf_path = srv.dir .. "/nginx.conf"
  local conf = assert(read(conf_path))
  local loc = "    location ^~ /users/ { default_type application/json; return 200 '"
    .. USER_JSON .. "'; }\n"
    .. "    location = /tls-reused { default_type text/plain; return 200 \"$ssl_session_reused\"; }\n"
    .. "    location = /echo {"
  local new, n = conf:gsub("    location = /echo {", function() return loc end, 1)
  assert(n == 1, "nginx.conf layout changed: no /echo location to anchor on")
  -- A server-side TLS session cache, so that a new connection can resume
  -- (the helper's nginx has none, and libcurl 7.88 with TLS 1.2 does not use
  -- tickets: without it every connection is a full handshake).
  new, n = new:gsub("\n    root ", "\n    ssl_session_cache shared:BENCH:1m;\n    root ", 1)
  assert(n == 1, "nginx.conf layout changed: no root line to anchor on")
  local f = assert(io.open(conf_path, "w"))
  f:write(new)
  f:close()
  assert(os.execute("kill -HUP " .. srv.pid))
  local t0 = core.now()
  while core.now() - t0 < 10 do
    local s = core.session()
    local r = s:request({ url = srv:url("/users/u") })
    s:close()
    if r and r.status == 200 and r.body == USER_JSON then return end
    core.sleep(0.05)
  end
  error("nginx did not pick up the /users/ location:\n" .. (read(srv.dir .. "/error.log") or ""))
end

srv = nginx.start()
collectgarbage("collect")
collectgarbage("step", 0)
local ok, err = pcall(function()
  add_user_location()
  local URL = srv:url("/small.json")
  local TLS_URL = srv:url("/small.json", true)
  local ka = assert(core.session())
  local get = { url = URL }

  io.write(string.format("provision %s, %s, nginx %s, N = %d\n", provision.version, ALL_CPUS ~= "0" and
    ("CPUs " .. ALL_CPUS) or "1 CPU", (io.popen("nginx -v 2>&1"):read("l") or "?"):match("[%d.]+$") or "?", N))
  if not HAVE_TASKSET then io.write("taskset not found: the 'pinned' runs are NOT pinned\n") end
  io.write("figures: wall time per request; client CPU = os.clock() of this process (+ children for curl CLI)\n\n")

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
  local m = {}
  for _ = 1, 100 do check(ka:request(get)) end
  m[1] = snapshot("after 100 requests")
  for _ = 1, N_MEM do check(ka:request(get)) end
  m[2] = snapshot(("after %d requests"):format(100 + N_MEM))
  for _ = 1, N_MEM do check(ka:request(get)) end
  m[3] = snapshot(("after %d requests"):format(100 + 2 * N_MEM))
  io.write("memory of this Lua process (one kept-alive session, GET /small.json)",
    cleared and "" or " [VmHWM not reset: includes start-up]", "\n")
  io.write(string.format("  %-28s %10s %10s %10s %12s\n", "", "VmHWM kB", "VmRSS kB", "RssAnon kB", "Lua heap kB"))
  for _, s in ipairs(m) do
    io.write(string.format("  %-28s %10d %10d %10d %12.0f\n", s.label, s.hwm, s.rss, s.anon, s.heap))
  end
  io.write(string.format("  growth per request from 100 to %d: VmHWM %.2f B, RssAnon %.2f B\n\n", 100 + 2 * N_MEM,
    (m[3].hwm - m[1].hwm) * 1024 / (2 * N_MEM), (m[3].anon - m[1].anon) * 1024 / (2 * N_MEM)))

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
