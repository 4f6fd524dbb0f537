-- Request-body validation cost (provision.validate): CPU time per call of
-- the check alone, and of Client:prepare (bind, validate, build the request)
-- with validation on and off, for three bodies of the contract test:
-- an Agilicus user (open model, a map of arrays), a Document360 team member
-- with three nested content permissions (closed models), an Outpost upsert.
-- Nothing is sent. Prints figures only.
--   lua5.4 bench/validate_bench.lua [N]      (N calls per row, default 50000)
local here = debug.getinfo(1, "S").source:match("^@(.*)/bench/[^/]*$") or "."
package.path = here .. "/lua/?.lua;" .. here .. "/lua/?/init.lua;" .. here .. "/tests/?.lua;" .. package.path
local build = os.getenv("PROVISION_BUILD")
if build then package.cpath = build .. "/?.so;" .. package.cpath end

local provision = require("provision")
local validate = require("provision.validate")
local A = require("support.contract_args")

local N = tonumber(arg and arg[1]) or 50000

-- A transport that is never used (prepare sends nothing).
local T = { send = function() error("nothing is sent") end, now = os.clock, sleep = function() end }

local user = A.bodies.agilicus_user()
local member = { add_team_account_customer = {
  email_id = "grace.hopper@example.com", first_name = "Grace", last_name = "Hopper",
  invited_by = "f11efc6f-e968-4e95-82eb-85ad61559de8", is_sso_user = true, scheme_name = "okta-main",
  associated_portal_role_id = "64ced5a8-c2b9-4421-821a-4e32bdfaaecc",
  content_permissions = A.bodies.d360_permissions(), associated_groups = { "g1", "g2" } } }
local tenant = { tenant_id = "acme", params = { metadata = { name = "Acme Inc.", plan = "enterprise" } } }

local ROWS = {
  { "UsersApi.create_user (User: 10 fields, roles map, member_of[2])", provision.UsersApi, "create_user", { user } },
  { "TeamsApi.v2_teams_post (3 content permissions, nested arrays)", provision.TeamsApi, "v2_teams_post", { member } },
  { "Tenants.upsert (metadata map)", provision.Tenants, "upsert", { tenant } },
}

local function cpu(f)
  collectgarbage("collect")
  collectgarbage("step", 0)
  local best
  for _ = 1, 3 do
    local t0 = os.clock()
    f()
    local dt = os.clock() - t0
    if not best or dt < best then best = dt end
  end
  return best / N * 1e6
end

io.write(("%d calls per figure, best of 3 rounds, CPU µs per call (os.clock)\n\n"):format(N))
io.write(("%-66s %10s %12s %12s %9s\n"):format("body", "check", "prepare on", "prepare off", "on - off"))
for _, row in ipairs(ROWS) do
  local label, class, op, args = row[1], row[2], row[3], row[4]
  local on = assert(class({ transport = T, tenant_id = "acme" }))
  local off = assert(class({ transport = T, tenant_id = "acme", validate = false }))
  local job = assert(on:prepare(op, table.unpack(args)))
  assert(off:prepare(op, table.unpack(args)))
  local values, schemas = job.values, on.schemas
  local check = cpu(function()
    for _ = 1, N do
      if validate.body(schemas, job.op, values, op) then error("invalid") end
    end
  end)
  local p_on = cpu(function() for _ = 1, N do on:prepare(op, table.unpack(args)) end end)
  local p_off = cpu(function() for _ = 1, N do off:prepare(op, table.unpack(args)) end end)
  io.write(("%-66s %10.2f %12.2f %12.2f %9.2f\n"):format(label, check, p_on, p_off, p_on - p_off))
end
