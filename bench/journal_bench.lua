-- Journal benchmark: intents + settles per second on this disk, for intend
-- batches of 1, 8 and 64 steps, with SQLite in WAL mode and synchronous=FULL
-- (one fsync per transaction). Prints figures only.
--   lua5.4 bench/journal_bench.lua [SECONDS]   (per case, default 2)
-- Two settle policies per batch size:
--   buffered  the default: settles wait (up to 64) and ride with the next
--             intend's transaction, so a batch costs one fsync;
--   flushed   each batch's settles are flushed at once: two fsyncs a batch.
-- The journal lives in a temporary folder under $TMPDIR (default /tmp).
local build = os.getenv("PROVISION_BUILD")
if build then package.cpath = build .. "/?.so;" .. package.cpath end
local journal = require("provision.journal")
local socket = require("socket")

local SECONDS = tonumber(arg and arg[1]) or 2

local base = os.getenv("TMPDIR") or "/tmp"
local p = assert(io.popen("mktemp -d '" .. base .. "/provision-journal-bench-XXXXXX'"))
local dir = p:read("*l")
p:close()
assert(dir and dir ~= "", "mktemp failed")
local fs = io.popen("df -T '" .. dir .. "' | tail -1 | awk '{print $1\" (\"$2\")\"}'"):read("*l")

local function case(batch, flushed)
  local path = ("%s/b%d-%s.sqlite"):format(dir, batch, flushed and "f" or "b")
  local j = assert(journal.open(path))
  local run = assert(j:begin_run({ roster_digest = "bench", systems = { "agilicus" } }))
  local steps, n = {}, 0
  local t0, c0 = socket.gettime(), os.clock()
  local transactions = 0
  repeat
    for k = 1, batch do
      n = n + 1
      steps[k] = { system = "agilicus", key = "user" .. n .. "@example.com", action = "create",
                   operation = "UsersApi.create_user", detail = { email = "user" .. n .. "@example.com", first_name = "Ana" } }
    end
    local ids = assert(run:intend(steps))
    transactions = transactions + 1
    local list = {}
    for i, id in ipairs(ids) do list[i] = { id = id, outcome = "ok", status = 201, request_id = "req-" .. id } end
    assert(run:settle_many(list))
    if flushed then
      assert(run:flush())
      transactions = transactions + 1
    end
  until socket.gettime() - t0 >= SECONDS
  assert(run:finish({ status = "done" }))
  local wall, cpu = socket.gettime() - t0, os.clock() - c0
  assert(j:close())
  return n, wall, cpu, transactions
end

print(("journal on %s, WAL, synchronous=FULL, %g s per case"):format(fs or dir, SECONDS))
print(("%-6s %-9s %12s %12s %14s %14s"):format("batch", "settles", "steps/s", "tx/s", "ms per tx", "CPU us/step"))
for _, batch in ipairs({ 1, 8, 64 }) do
  for _, flushed in ipairs({ false, true }) do
    local n, wall, cpu, tx = case(batch, flushed)
    print(("%-6d %-9s %12.0f %12.0f %14.2f %14.1f"):format(batch, flushed and "flushed" or "buffered",
      n / wall, tx / wall, wall * 1000 / tx, cpu * 1e6 / n))
  end
end
print("(a step = one intent written before its request plus one outcome after it)")
os.execute("rm -rf '" .. dir .. "'")
