-- The bulk engine against the sandbox, side by side in one run:
--   1. a 50 requests per second limit (--rate 50/1): N creates through
--      api:bulk with the rate given, through api:bulk finding the pace by
--      itself, and through api:all in batches of 50 (the README's old advice);
--      created, failed, 429 answers, achieved rate / allowed rate;
--   2. 100 ms of added latency per request: wall time for N creates through
--      api:bulk at concurrency 1, 8 and 32, and api:all in batches of 50.
-- Prints figures only.
--   lua5.4 bench/bulk_bench.lua [N]        (creates per figure, default 500 / 1000)
local ROOT = debug.getinfo(1, "S").source:sub(2):match("^(.*)/bench/[^/]*$") or "."
package.path = ROOT .. "/?.lua;" .. package.path
require("bench.common").setup(ROOT)

local core = require "provision.core"
local provision = require "provision"
local sandbox = require "support.sandbox"

local N_RATE = tonumber(arg and arg[1]) or 500
local N_LATENCY = tonumber(arg and arg[1]) or 1000
local ORG = "Nw7kQ2pX9sT4vB8mL1cR3d"

local limited = sandbox.start({ rate = "50/1", args = { "--quiet" } })
local slow = sandbox.start({ rate = "100000000/60", args = { "--quiet" } })

local function client(sb, extra)
  local opts = { server = sb.agilicus, auth = { bearer = sb.credentials.agilicus.token } }
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

local function count_429(sb)
  local _, doc = sb:admin("GET", "/log")
  local n, total = 0, 0
  for _, e in ipairs(doc.entries) do
    total = total + 1
    if e.status == 429 then n = n + 1 end
  end
  return n, total
end

local function reset(sb)
  sb:admin("POST", "/reset")
  sb:admin("DELETE", "/log")
end

-- api:all in batches: ok, failed, seconds
local function batches(api, calls, size)
  local ok, failed = 0, 0
  local t0 = core.now()
  for first = 1, #calls, size do
    local batch = {}
    for i = first, math.min(first + size - 1, #calls) do batch[#batch + 1] = calls[i] end
    for _, r in ipairs(api:all(batch)) do
      if r[1] ~= nil then ok = ok + 1 else failed = failed + 1 end
    end
  end
  return ok, failed, core.now() - t0
end

local ok, err = pcall(function()
  print(("== 1. sandbox limit 50 requests/s; %d creates (Agilicus create_user), concurrency 8"):format(N_RATE))
  print(("%-34s %8s %7s %6s %9s %9s %8s"):format("client", "created", "failed", "429s", "429 %", "req/s", "x allowed"))
  local function row(label, created, failed, seconds)
    local n429, total = count_429(limited)
    print(("%-34s %8d %7d %6d %8.1f%% %9.1f %8.2f"):format(label, created, failed, n429,
      100 * n429 / math.max(total, 1), created / seconds, created / seconds / 50))
  end
  reset(limited)
  local api = client(limited)
  local _, s = api:bulk(creates("rate", N_RATE), { concurrency = 8, rate = "50/1" })
  row("bulk, rate = \"50/1\"", s.ok, s.failed + s.unknown, s.elapsed)
  api:close()
  reset(limited)
  api = client(limited)
  _, s = api:bulk(creates("adaptive", N_RATE), { concurrency = 8 })
  row("bulk, no rate given (finds it)", s.ok, s.failed + s.unknown, s.elapsed)
  api:close()
  reset(limited)
  api = client(limited)
  local okc, failed, secs = batches(api, creates("batch", N_RATE), 50)
  row("all() in batches of 50", okc, failed, secs)
  api:close()

  print()
  print(("== 2. 100 ms added per request; %d creates; wall time"):format(N_LATENCY))
  print(("%-34s %10s %9s %8s"):format("client", "seconds", "calls/s", "x c=1"))
  assert(slow:admin("POST", "/faults", { path = "/agilicus/users", delay_ms = 100 }) == 201)
  local base
  local function lrow(label, seconds, n)
    base = base or seconds
    print(("%-34s %10.2f %9.1f %8.2f"):format(label, seconds, n / seconds, base / seconds))
  end
  for _, c in ipairs({ 1, 8, 32 }) do
    reset(slow)
    api = client(slow, { concurrency = c })
    _, s = api:bulk(creates("lat" .. c .. "_", N_LATENCY), { concurrency = c })
    assert(s.ok == N_LATENCY, "bulk at concurrency " .. c .. ": " .. s.ok .. " created")
    lrow(("bulk, concurrency %d"):format(c), s.elapsed, N_LATENCY)
    api:close()
  end
  reset(slow)
  api = client(slow, { max_connections = 50 })
  okc, failed, secs = batches(api, creates("latbatch", N_LATENCY), 50)
  assert(failed == 0)
  lrow("all() in batches of 50", secs, okc)
  api:close()
end)
limited:stop()
slow:stop()
if not ok then
  io.stderr:write("bulk_bench failed: ", tostring(err), "\n")
  os.exit(1)
end
