-- Sandbox throughput: requests/s that bin/provision-sandbox (started through
-- tests/support/sandbox.lua) serves to provision clients, one request at a
-- time and 64 at once (client:all). Prints figures only; a failed call aborts.
--   lua5.4 bench/sandbox_bench.lua [N]      (calls per figure, default 2000)
-- Finds provision/core.so through LUA_CPATH (the Makefile sets it) or
-- PROVISION_BUILD=<build dir>; the Lua modules are found from this file's folder.
--
-- The sandbox is one Lua process serving every connection from coroutines over
-- socket.select, so it uses one CPU at most: these figures are its ceiling on
-- this machine, for sizing tests and demos, not a model of the real APIs.
-- One-at-a-time runs pin client and sandbox to CPU 0 (the VM's idle CPU halts,
-- and a hop between CPUs costs ~50 us); concurrent runs are not pinned.
local ROOT = debug.getinfo(1, "S").source:sub(2):match("^(.*)/bench/[^/]*$") or "."
package.path = ROOT .. "/?.lua;" .. package.path
local common = require("bench.common").setup(ROOT)

local core = require "provision.core"
local provision = require "provision"
local sandbox = require "support.sandbox"

local N = tonumber(arg and arg[1]) or 2000
local ROUNDS = 3

local read = common.read
local SELF, ALL_CPUS, HAVE_TASKSET = common.process()

-- no rate limit in the way: a budget far above what a run can spend
local sb = sandbox.start({ rate = "100000000/60", args = { "--quiet" } })

local function set_affinity(cpus)
  if not HAVE_TASKSET then return end
  for _, p in ipairs({ SELF, sb.pid }) do
    os.execute(("taskset -cp %s %d >/dev/null 2>&1"):format(cpus, p))
  end
end

local function must(v, err)
  if v == nil then error(tostring(err), 2) end
  return v
end

local ok, err = pcall(function()
  local cred = sb.credentials
  local function clients(maxc)
    return {
      agilicus = assert(provision.UsersApi({ server = sb.agilicus, auth = { bearer = cred.agilicus.token },
                                             retries = false, max_connections = maxc })),
      outpost = assert(provision.Tenants({ generation = "v0", server = sb.outpost,
                                           auth = { bearer = cred.outpost.admin_api_key },
                                           retries = false, max_connections = maxc })),
    }
  end
  local c8, c64 = clients(8), clients(64)
  local page = must(c64.agilicus:list_users({ limit = 5 }))
  local user_id, org_id = page.users[1].id, page.users[1].org_id
  must(c64.outpost:upsert({ tenant_id = "bench-tenant" }))

  -- The operations: a small read, a page of 50 users, an idempotent write.
  local ops = {
    { label = "UsersApi.get_user", call = { "get_user", user_id, { org_id = org_id } } },
    { label = "UsersApi.list_users{limit=50}", call = { "list_users", { limit = 50 } } },
    { label = "Tenants.upsert (PUT, v0)", call = { "upsert", { tenant_id = "bench-tenant" } }, outpost = true },
  }

  local function one_at_a_time(c, op)
    return function(n)
      local cl = op.outpost and c.outpost or c.agilicus
      local name = op.call[1]
      for _ = 1, n do must(cl:call(name, table.unpack(op.call, 2))) end
    end
  end
  local function batches(c, op, size)
    local calls = {}
    for i = 1, size do calls[i] = op.call end
    return function(n)
      local cl = op.outpost and c.outpost or c.agilicus
      for _ = 1, n // size do
        for _, r in ipairs(cl:all(calls)) do must(r[1], r[2]) end
      end
    end
  end

  io.write(string.format("provision %s against bin/provision-sandbox (%s), N = %d calls per figure\n",
    provision.version, sb.url, N))
  io.write("client CPU = os.clock() of this process; sandbox CPU = its utime+stime over the same run\n\n")

  local CLK_TCK = tonumber((io.popen("getconf CLK_TCK"):read("l"))) or 100
  local function sandbox_cpu()
    local stat = read(("/proc/%d/stat"):format(sb.pid))
    if not stat then return 0 end
    local f = {}
    for w in stat:match("^%d+ %b() (.*)$"):gmatch("%S+") do f[#f + 1] = w end
    return (tonumber(f[12]) + tonumber(f[13])) / CLK_TCK   -- utime, stime
  end

  for _, op in ipairs(ops) do
    local specs = {
      { name = "1 at a time, pinned to CPU 0", pinned = true, fn = one_at_a_time(c8, op) },
      { name = "1 at a time, unpinned", fn = one_at_a_time(c8, op) },
      { name = "64 at once (client:all), max_connections 64", fn = batches(c64, op, 64) },
      { name = "64 at once (client:all), max_connections 8", fn = batches(c8, op, 64) },
    }
    for _, sp in ipairs(specs) do sp.fn(math.min(128, N)) end   -- warm: connections, JIT-free caches
    local samples = {}
    for _ = 1, ROUNDS do
      for i, sp in ipairs(specs) do
        set_affinity(sp.pinned and "0" or ALL_CPUS)
        local n = sp.name:find("^64") and (N // 64) * 64 or N
        collectgarbage("collect")
        collectgarbage("step", 0)
        local s0, w0, c0 = sandbox_cpu(), core.now(), os.clock()
        sp.fn(n)
        local s1, w1, c1 = sandbox_cpu(), core.now(), os.clock()
        samples[i] = samples[i] or {}
        table.insert(samples[i], { n = n, wall = w1 - w0, cpu = c1 - c0, scpu = s1 - s0 })
      end
    end
    set_affinity(ALL_CPUS)
    io.write(op.label, "\n")
    io.write(string.format("  %-46s %6s %8s %9s %11s %12s %7s\n", "concurrency", "n", "req/s", "us/req",
      "cpu us/req", "sandbox cpu", "x 1-pin"))
    local base
    for i, sp in ipairs(specs) do
      local list = samples[i]
      table.sort(list, function(x, y) return x.wall < y.wall end)
      local m = list[(#list + 1) // 2]
      local rps = m.n / m.wall
      base = base or rps
      io.write(string.format("  %-46s %6d %8.0f %9.1f %11.1f %12.1f %7.2f\n", sp.name, m.n, rps, m.wall / m.n * 1e6,
        m.cpu / m.n * 1e6, m.scpu / m.n * 1e6, rps / base))
    end
    io.write(string.format("  (median of %d interleaved rounds; x 1-pin = req/s divided by the pinned one-at-a-time figure;\n"
      .. "   sandbox cpu = sandbox process CPU us per request, 10 ms clock ticks)\n\n", ROUNDS))
  end
  for _, set in ipairs({ c8, c64 }) do
    set.agilicus:close()
    set.outpost:close()
  end
end)
set_affinity(ALL_CPUS)
sb:stop()
if not ok then error(err, 0) end
