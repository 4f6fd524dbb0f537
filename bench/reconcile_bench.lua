-- The reconciler against the sandbox: for a generated roster of N people
-- (each an Agilicus user with roles, a Document360 reader and an Outpost
-- tenant; one in ten a DocSpace invitation), the wall time and the requests
-- of
--   plan (everything to create), apply (with its SQLite journal on disk),
--   and plan again (nothing to change),
-- for N = 1,000 and 10,000 (or the N given). Requests are counted by the
-- sandbox (its request log's sequence number). Prints figures only.
--   lua5.4 bench/reconcile_bench.lua [N...]
local function here()
  local src = debug.getinfo(1, "S").source:sub(2)
  return src:match("^(.*)/bench/[^/]*$") or "."
end
local ROOT = here()
package.path = table.concat({ ROOT .. "/lua/?.lua", ROOT .. "/lua/?/init.lua", ROOT .. "/tests/?.lua",
                              ROOT .. "/?.lua", package.path }, ";")
local build = os.getenv("PROVISION_BUILD")
if build then package.cpath = build .. "/?.so;" .. package.cpath end
package.cpath = package.cpath .. ";" .. ROOT .. "/build/?.so"

local core = require "provision.core"
local provision = require "provision"
local reconcile = require "provision.reconcile"
local sandbox = require "support.sandbox"
local rosters = require "support.rosters"

local ORG = "Nw7kQ2pX9sT4vB8mL1cR3d"
local CONCURRENCY = 16

local sizes = {}
for i = 1, #(arg or {}) do sizes[#sizes + 1] = assert(tonumber(arg[i]), "N must be a number") end
if #sizes == 0 then sizes = { 1000, 10000 } end

local sb = sandbox.start({ rate = "100000000/60", args = { "--quiet" } })
local dir = io.popen("mktemp -d /tmp/provision-rbench-XXXXXX"):read("l")

local function seq()
  local _, doc = sb:admin("GET", "/log?since=999999999")
  return doc.last_seq
end

local function clients()
  local t = assert(require("provision.transport.curl").new({ max_connections = 4 * CONCURRENCY }))
  local c = sb.credentials
  return {
    agilicus = assert(provision.UsersApi({ server = sb.agilicus, transport = t, auth = { bearer = c.agilicus.token } })),
    document360 = assert(provision.TeamsApi({ server = sb.document360, transport = t,
                                              auth = { api_token = c.document360.api_token } })),
    outpost = assert(provision.Tenants({ server = sb.outpost_latest, transport = t,
                                         auth = { admin_api_key = c.outpost.admin_api_key } })),
    docspace = assert(provision.PortalUsersApi({ server = sb.docspace, transport = t,
                                                 auth = { Bearer = c.docspace.bearer_token } })),
  }, t
end

local function measure(label, n, f)
  collectgarbage("collect")
  local s0, t0, c0 = seq(), core.now(), os.clock()
  local v = f()
  local wall, cpu, requests = core.now() - t0, os.clock() - c0, seq() - s0
  print(("  %-22s %8.2f s  %7d requests  %5.2f per person  %6.0f req/s  client cpu %5.1f s"):format(label, wall,
    requests, requests / n, requests / wall, cpu))
  return v
end

print(("reconcile: plan, apply, plan again; concurrency %d per system, sandbox rate limit raised; "
  .. "one run per size"):format(CONCURRENCY))
for _, n in ipairs(sizes) do
  assert(sb:admin("POST", "/reset") == 200)
  sb:admin("DELETE", "/log")
  local path = ("%s/roster-%d.csv"):format(dir, n)
  local f = assert(io.open(path, "w"))
  f:write(rosters.csv(n))
  f:close()
  local jpath = ("%s/journal-%d.sqlite"):format(dir, n)
  local c, t = clients()
  local opts = { context = { org_id = ORG }, concurrency = CONCURRENCY, journal = jpath }
  print(("N = %d people"):format(n))
  local p = measure("plan (all to create)", n, function() return assert(reconcile.plan(path, c, opts)) end)
  local steps = p:pending()
  local result = measure("apply", n, function()
    return assert(p:apply({ journal = jpath, concurrency = CONCURRENCY }))
  end)
  assert(result.ok, "the apply had failures")
  local again = measure("plan (no changes)", n, function() return assert(reconcile.plan(path, c, opts)) end)
  assert(again:pending() == 0, "the second plan still has changes")
  print(("  %d steps (%.2f per person), %d requests by the engine during the apply"):format(steps, steps / n,
    result.engine.requests))
  t:close()
end
sb:stop()
os.execute("rm -rf '" .. dir .. "'")
