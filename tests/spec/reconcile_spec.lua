-- The reconciler from Lua against the sandbox: plans of the example roster
-- with known counts, apply then plan (no changes), drift, prune and its
-- safety threshold, bad rows, saved plans, resuming a run left open, the
-- older Outpost generation, a fifth system as one data table, and what the
-- journal (SQLite on disk) holds: one settled outcome per step, no secret.
local provision = require("provision")
local reconcile = require("provision.reconcile")
local journal = require("provision.journal")
local json = require("provision.json")
local sandbox = require("support.sandbox")
local once = require("support.once")
local proc = require("support.proc")

local ORG = "Nw7kQ2pX9sT4vB8mL1cR3d"
local ROSTER = "examples/roster.csv"

describe("reconcile (library) against the sandbox", function()
  local sb, creds, dir

  before_each(once(function()
    sb = sandbox.start({ args = { "--quiet" }, rate = "1000000/60" })
    creds = sb.credentials
    dir = proc.capture("mktemp -d /tmp/provision-reconcile-XXXXXX"):gsub("%s+$", "")
    assert(dir:find("^/tmp/provision%-reconcile%-"), dir)
  end, "sandbox"))
  before_each(function()
    assert.are.equal(200, (sb:admin("POST", "/reset")))
    sb:admin("DELETE", "/faults")
    sb:admin("DELETE", "/log")
  end)
  teardown(function()
    if sb then sb:stop() end
    if dir then os.execute("rm -rf '" .. dir .. "'") end
  end)

  local n = 0
  local function fresh_journal()
    n = n + 1
    return dir .. "/journal-" .. n .. ".sqlite"
  end

  local function clients(extra)
    extra = extra or {}
    local t = require("provision.transport.curl").new({ max_connections = 64 })
    local retries = { attempts = 4, base_delay = 0.01 }
    return {
      agilicus = assert(provision.UsersApi({ server = sb.agilicus, transport = t, retries = retries,
                                             auth = { bearer = creds.agilicus.token } })),
      document360 = assert(provision.TeamsApi({ server = sb.document360, transport = t, retries = retries,
                                                auth = { api_token = creds.document360.api_token } })),
      outpost = assert(provision.Tenants({ server = extra.outpost_v0 and sb.outpost or sb.outpost_latest,
                                           generation = extra.outpost_v0 and "v0" or nil, transport = t,
                                           retries = retries,
                                           auth = { admin_api_key = creds.outpost.admin_api_key } })),
      docspace = assert(provision.PortalUsersApi({ server = sb.docspace, transport = t, retries = retries,
                                                   auth = { Bearer = creds.docspace.bearer_token } })),
    }
  end

  local function log(method)
    local _, doc = sb:admin("GET", "/log")
    local out = {}
    for _, e in ipairs(doc.entries) do
      if not method or e.method == method then out[#out + 1] = e end
    end
    return out
  end

  local function system(p, name)
    for _, s in ipairs(p.systems) do if s.system == name then return s end end
  end

  local function steps_of(p, name, action)
    local out = {}
    for _, s in ipairs(system(p, name).steps) do
      if not action or s.action == action then out[#out + 1] = s end
    end
    return out
  end

  local function plan(roster, opts)
    opts = opts or {}
    opts.context = opts.context or { org_id = ORG }
    return reconcile.plan(roster, opts.clients or clients(), opts)
  end

  it("plans the example roster against the fixture: known counts per system, nothing sent but reads", function()
    local p = assert(plan(ROSTER))
    local a, d, o, ds = system(p, "agilicus"), system(p, "document360"), system(p, "outpost"), system(p, "docspace")
    assert.are.same({ create = 2, update = 2, remove = 0, disable = 0, invite = 0, unchanged = 4, unmanaged = 24 },
      a.totals)
    assert.are.same({ create = 2, update = 0, remove = 0, disable = 0, invite = 0, unchanged = 5, unmanaged = 12 },
      d.totals)
    assert.are.same({ create = 2, update = 0, remove = 0, disable = 0, invite = 0, unchanged = 0, unmanaged = 3 },
      o.totals)
    assert.are.same({ create = 0, update = 0, remove = 0, disable = 0, invite = 2, unchanged = 0, unmanaged = 0 },
      ds.totals)
    assert.are.equal(30, a.count)
    assert.are.equal("list", a.mode)
    assert.are.equal("none", ds.mode)
    assert.is_truthy(table.concat(ds.notes, " "):find("2 invitations (cannot check who already has an account", 1, true))
    assert.are.equal(6, p.totals.create)
    assert.are.equal(10, p:pending())
    -- every field diffed: Aisha's role changed, and nothing else of hers
    local aisha
    for _, s in ipairs(steps_of(p, "agilicus", "update")) do
      if s.key == "aisha.khan@northwind.example" then aisha = s end
    end
    assert.are.same({ roles = { old = { crm = { "user" } }, new = { crm = { "admin" } } } }, aisha.changes)
    assert.are.equal("replace_user_role", aisha.operation)
    for _, e in ipairs(log()) do assert.are.equal("GET", e.method, e.path) end
    -- the plan is data: JSON and back
    local again = json.decode(p:to_json())
    assert.are.equal(p.roster_digest, again.roster_digest)
    assert.are.equal(4, #again.systems)
  end)

  it("applies, after which a new plan has no changes; the journal holds one settled outcome per step", function()
    local jpath = fresh_journal()
    local p = assert(plan(ROSTER))
    local result = assert(p:apply({ journal = jpath }))
    assert.is_true(result.ok)
    assert.are.equal(2, result.systems.agilicus.created)
    assert.are.equal(2, result.systems.agilicus.updated)
    assert.are.equal(2, result.systems.document360.created)
    assert.are.equal(2, result.systems.outpost.created)
    assert.are.equal(2, #result.invitations)
    local again = assert(plan(ROSTER, { journal = jpath }))
    assert.are.equal(0, again:pending(), "the second plan still has changes")
    assert.are.equal(2, system(again, "docspace").totals.unchanged)   -- invited already (the journal says)
    local j = assert(journal.open(jpath))
    local runs = assert(j:runs())
    assert.are.equal(1, #runs)
    assert.are.equal("done", runs[1].status)
    assert.are.equal(10, runs[1].counts.total)
    assert.are.equal(10, runs[1].counts.ok)
    assert.are.equal(0, runs[1].counts.unsettled)
    local run = assert(j:run(runs[1].id))
    for _, s in ipairs(run.steps) do
      assert.are.equal(1, #s.history, s.system .. " " .. s.key)
      assert.are.equal("ok", s.outcome)
      assert.is_truthy(s.detail.changes)
    end
    j:close()
  end)

  it("shows drift: a role changed in the sandbox is an update from the new value back to the roster's", function()
    local jpath = fresh_journal()
    local p = assert(plan(ROSTER))
    assert(p:apply({ journal = jpath }))
    local c = clients()
    local page = assert(c.agilicus:list_users({ org_id = ORG, email = "marcus.okafor@northwind.example" }))
    local id = page.users[1].id
    assert(c.agilicus:replace_user_role(id, { org_id = ORG,
      replace_user_role_request = { roles = { admin = json.array({ "admin" }) } } }))
    local drift = assert(plan(ROSTER, { journal = jpath }))
    local ups = steps_of(drift, "agilicus", "update")
    assert.are.equal(1, #ups)
    assert.are.equal("marcus.okafor@northwind.example", ups[1].key)
    assert.are.same({ old = { admin = { "admin" } }, new = { admin = { "admin" }, vpn = { "self" } } },
      ups[1].changes.roles)
    assert.are.equal(1, drift:pending())
  end)

  it("compares names and status too, each through the operation that changes it", function()
    local rows = { { email = "tomas.garcia@northwind.example", first_name = "Tomás", last_name = "García Ruiz",
                     agilicus_status = "disabled" } }
    local p = assert(plan(rows, { systems = { "agilicus" } }))
    local ups = steps_of(p, "agilicus", "update")
    assert.are.equal(1, #ups)
    assert.are.equal("replace_user", ups[1].operation)
    assert.are.same({ "last_name", "status" }, (function()
      local k = {}
      for name in pairs(ups[1].changes) do k[#k + 1] = name end
      table.sort(k)
      return k
    end)())
    local result = assert(p:apply({ journal = fresh_journal() }))
    assert.is_true(result.ok)
    local u = assert(clients().agilicus:list_users({ org_id = ORG, email = "tomas.garcia@northwind.example" })).users[1]
    assert.are.equal("García Ruiz", u.last_name)
    assert.are.equal("disabled", u.status)
    assert.are.same({ "reader" }, u.roles.warehouse)   -- the record's other fields survive the replace
    assert.are.equal(0, assert(plan(rows, { systems = { "agilicus" } })):pending())
  end)

  describe("prune", function()
    local two = { { email = "amelia.hart@northwind.example", agilicus_roles = "admin:owner" },
                  { email = "rahul.menon@northwind.example" } }

    it("without prune leaves the others alone, and says how many", function()
      local p = assert(plan(two, { systems = { "agilicus" } }))
      assert.are.equal(0, p.totals.remove)
      assert.are.equal(28, system(p, "agilicus").totals.unmanaged)
    end)

    it("refuses a removal of more than max(10%, 25) of a system's people, unless allowed", function()
      local p = assert(plan(two, { systems = { "agilicus" }, prune = true }))
      assert.are.equal(28, p.totals.remove)
      assert.is_truthy(system(p, "agilicus").refused)
      local r, err = p:apply({ journal = fresh_journal() })
      assert.is_nil(r)
      assert.are.equal("MassRemovalError", err.class)
      assert.is_truthy(tostring(err):find("28 of 30 users, more than 25", 1, true), tostring(err))
      for _, e in ipairs(log()) do assert.are.equal("GET", e.method) end
      -- configurable: a higher count lets it through
      local p2 = assert(plan(two, { systems = { "agilicus" }, prune = true, max_removals = 28 }))
      assert.is_nil(system(p2, "agilicus").refused)
      local result = assert(p:apply({ journal = fresh_journal(), allow_mass_removal = true }))
      assert.is_true(result.ok)
      assert.are.equal(28, result.systems.agilicus.removed)
      local left = assert(clients().agilicus:collect("list_users", { org_id = ORG }))
      assert.are.equal(2, #left)
    end)

    it("removes a few below the threshold; the share is configurable", function()
      local rows = {}
      for _, u in ipairs(assert(clients().agilicus:collect("list_users", { org_id = ORG }))) do
        if u.email ~= "ben.carter@northwind.example" then rows[#rows + 1] = { email = u.email } end
      end
      local p = assert(plan(rows, { systems = { "agilicus" }, prune = true }))
      assert.are.equal(1, p.totals.remove)
      assert.is_nil(system(p, "agilicus").refused)
      local strict = assert(plan(rows, { systems = { "agilicus" }, prune = true, max_removals = 0,
                                         max_removal_share = 0 }))
      assert.is_truthy(system(strict, "agilicus").refused)
      local result = assert(p:apply({ journal = fresh_journal() }))
      assert.are.equal(1, result.systems.agilicus.removed)
      assert.are.equal(0, assert(plan(rows, { systems = { "agilicus" }, prune = true })):pending())
    end)

    it("prune_mode disable disables in Agilicus instead of deleting", function()
      local rows = {}
      for _, u in ipairs(assert(clients().agilicus:collect("list_users", { org_id = ORG }))) do
        if u.email ~= "noah.fischer@northwind.example" then rows[#rows + 1] = { email = u.email } end
      end
      local p = assert(plan(rows, { systems = { "agilicus" }, prune = true, prune_mode = "disable" }))
      assert.are.equal(1, p.totals.disable)
      assert.are.equal(0, p.totals.remove)
      assert(p:apply({ journal = fresh_journal() }))
      local u = assert(clients().agilicus:list_users({ org_id = ORG, email = "noah.fischer@northwind.example" })).users[1]
      assert.are.equal("disabled", u.status)
      assert.are.same({ "admin" }, u.roles.crm)
      -- disabled already: nothing more to do, and still counted as not in the roster
      local again = assert(plan(rows, { systems = { "agilicus" }, prune = true, prune_mode = "disable" }))
      assert.are.equal(0, again:pending())
      assert.are.equal(1, again.totals.unmanaged)
    end)
  end)

  it("refuses a roster with bad rows, naming their lines, before anything is sent", function()
    local text = table.concat({
      "email,first_name,agilicus_roles,docspace_invite",
      "ok.one@northwind.example,One,vpn:self,",
      ",Nobody,,",
      "not-an-email,Bad,,",
      "OK.ONE@northwind.example,Twice,,",
      "role.bad@northwind.example,Role,vpn,",
      "type.bad@northwind.example,Type,,Superuser",
    }, "\n")
    local path = dir .. "/bad.csv"
    proc.write_file(path, text)
    local p, err = plan(path)
    assert.is_nil(p)
    assert.are.equal("RosterError", err.class)
    local lines = {}
    for _, r in ipairs(err.rows) do lines[#lines + 1] = r.line end
    assert.are.same({ 3, 4, 5, 6, 7 }, lines)
    assert.is_truthy(tostring(err):find("line 5: duplicate email OK.ONE@northwind.example (also on line 2)", 1, true))
    assert.is_truthy(tostring(err):find('line 6: agilicus_roles "vpn" is not app:role', 1, true))
    assert.is_truthy(tostring(err):find("line 7: docspace_invite", 1, true))
    assert.are.equal(0, #log())
    -- a role the system does not have is found once it is read, still before any change
    local p2, err2 = plan({ { email = "new.one@northwind.example", document360_role = "Superhero" } })
    assert.is_nil(p2)
    assert.is_truthy(tostring(err2):find('line 1: document360_role "Superhero": document360 has no such portal role',
      1, true), tostring(err2))
    for _, e in ipairs(log()) do assert.are.equal("GET", e.method) end
  end)

  it("renames an HR export's columns with a mapping", function()
    local path = dir .. "/hr.csv"
    proc.write_file(path, "Work Email,Given Name,Family Name,Department\nhr.one@northwind.example,Hr,One,Sales\n")
    local p = assert(plan(path, { systems = { "agilicus" },
      mapping = { ["Work Email"] = "email", ["Given Name"] = "first_name", ["family name"] = "last_name" } }))
    local creates = steps_of(p, "agilicus", "create")
    assert.are.equal(1, #creates)
    assert.are.equal("hr.one@northwind.example", creates[1].key)
    assert.are.equal("One", creates[1].changes.last_name.new)
    assert.are.same({ "Department" }, p.roster and p.roster.ignored or {})
  end)

  it("applies a saved plan as made, and refuses one whose records changed since", function()
    local p = assert(plan(ROSTER))
    local text = p:to_json()
    local c = clients()
    local saved = assert(reconcile.load(text, c, { context = { org_id = ORG } }))
    local result = assert(saved:apply({ journal = fresh_journal() }))
    assert.is_true(result.ok)
    assert.are.equal(2, result.systems.agilicus.created)
    assert.are.equal(0, assert(plan(ROSTER)):pending() - 2)   -- only the invitations (no journal here)
    -- a plan made now, then drift before it is applied
    local p2 = assert(plan({ { email = "grace.nwosu@northwind.example", agilicus_roles = "admin:auditor" } },
      { systems = { "agilicus" } }))
    local page = assert(c.agilicus:list_users({ org_id = ORG, email = "grace.nwosu@northwind.example" }))
    assert(c.agilicus:replace_user_role(page.users[1].id, { org_id = ORG,
      replace_user_role_request = { roles = { admin = json.array({ "owner" }) } } }))
    sb:admin("DELETE", "/log")
    local stale = assert(reconcile.load(p2:to_json(), c, { context = { org_id = ORG } }))
    local r, err = stale:apply({ journal = fresh_journal() })
    assert.is_nil(r)
    assert.are.equal("StalePlanError", err.class)
    assert.is_truthy(tostring(err):find("agilicus grace.nwosu@northwind.example", 1, true))
    for _, e in ipairs(log()) do assert.are.equal("GET", e.method) end
  end)

  it("resumes a run left open: its steps are settled by reading them back, nothing is created twice", function()
    local jpath = fresh_journal()
    local p = assert(plan(ROSTER))
    -- a process that wrote its intents and died: two creates, one of which landed
    local script = dir .. "/died.lua"
    proc.write_file(script, ([[
      local journal = require("provision.journal")
      local j = assert(journal.open(%q))
      local run = assert(j:begin_run({ roster_digest = %q, systems = { "agilicus", "docspace" } }))
      assert(run:intend({
        { system = "agilicus", key = "ada.lovelace@northwind.example", action = "create", operation = "create_user" },
        { system = "agilicus", key = "alan.turing@northwind.example", action = "create", operation = "create_user" },
        { system = "docspace", key = "ada.lovelace@northwind.example", action = "invite",
          operation = "get_invitation_link" },
      }))
      os.exit(0)   -- no finish, no close: as a killed process leaves it
    ]]):format(jpath, p.roster_digest))
    assert.is_true(proc.sh("lua5.4 " .. proc.quote(script)))
    local run = { id = 1 }
    assert(clients().agilicus:create_user({ email = "ada.lovelace@northwind.example", org_id = ORG }))
    sb:admin("DELETE", "/log")
    local fresh = assert(plan(ROSTER, { journal = jpath }))
    local result = assert(fresh:apply({ journal = jpath, resume = true }))
    assert.is_true(result.ok)
    assert.are.equal(3, result.resumed.settled)
    assert.are.same({ exists = 1, absent = 2 }, result.resumed.by_outcome)
    assert.are.equal(1, result.systems.agilicus.created)   -- Alan only: Ada's create had landed
    local posts = 0
    for _, e in ipairs(log("POST")) do if e.path == "/agilicus/users" then posts = posts + 1 end end
    assert.are.equal(1, posts)
    local j = assert(journal.open(jpath))
    local chain = assert(j:run(result.run_id))
    assert.are.equal(run.id, chain.resume_of)
    local old = assert(j:run(run.id))
    local by_key = {}
    for _, s in ipairs(old.steps) do by_key[s.system .. " " .. s.key] = s end
    assert.are.equal("exists", by_key["agilicus ada.lovelace@northwind.example"].outcome)
    assert.are.equal("read_back", by_key["agilicus ada.lovelace@northwind.example"].settled_by)
    assert.are.equal("absent", by_key["agilicus alan.turing@northwind.example"].outcome)
    assert.are.equal(0, #assert(j:unsettled(result.run_id)))
    j:close()
  end)

  it("resumes a run left open by a process that is gone without being asked, and never one still running", function()
    local jpath = fresh_journal()
    local p = assert(plan(ROSTER))
    local script = dir .. "/died2.lua"
    proc.write_file(script, ([[
      local journal = require("provision.journal")
      local j = assert(journal.open(%q))
      local run = assert(j:begin_run({ roster_digest = %q, systems = { "agilicus" } }))
      assert(run:intend({ { system = "agilicus", key = "alan.turing@northwind.example", action = "create" } }))
      os.exit(0)
    ]]):format(jpath, p.roster_digest))
    assert.is_true(proc.sh("lua5.4 " .. proc.quote(script)))
    local result = assert(assert(plan(ROSTER, { journal = jpath })):apply({ journal = jpath }))
    assert.are.equal(1, result.resumed.settled)
    assert.are.equal(1, result.resumed.of_run)
    -- a run of this process (alive) is not taken over
    local j = assert(journal.open(jpath))
    local mine = assert(j:begin_run({ roster_digest = p.roster_digest, systems = { "agilicus" } }))
    j:close()
    local r, err = assert(plan(ROSTER, { journal = jpath })):apply({ journal = jpath })
    assert.is_nil(r)
    assert.are.equal("RunConflictError", err.class)
    assert.is_truthy(tostring(err):find("run " .. mine.id .. " of this roster is still running", 1, true))
  end)

  it("keeps no secret in the journal: no credential, no invitation link", function()
    local jpath = fresh_journal()
    local result = assert(assert(plan(ROSTER)):apply({ journal = jpath }))
    assert.are.equal(2, #result.invitations)
    local bytes = ""
    for _, f in ipairs({ jpath, jpath .. "-wal" }) do bytes = bytes .. (proc.read_file(f) or "") end
    assert.is_true(#bytes > 0)
    for _, secret in ipairs({ creds.agilicus.token, creds.document360.api_token, creds.outpost.admin_api_key,
                              creds.docspace.bearer_token }) do
      assert.is_nil(bytes:find(secret, 1, true), "a credential in the journal")
    end
    for _, inv in ipairs(result.invitations) do
      local key = inv.link:match("key=(%x+)")
      assert.is_truthy(key)
      assert.is_nil(bytes:find(key, 1, true), "an invitation key in the journal")
    end
  end)

  it("works with the older Outpost generation: tenants read by id, nothing beyond the roster to prune", function()
    local rows = { { email = "a@northwind.example", outpost_tenant = "northwind" },
                   { email = "b@northwind.example", outpost_tenant = "fresh-one", ["outpost_metadata.team"] = "x" } }
    local p = assert(plan(rows, { systems = { "outpost" }, clients = clients({ outpost_v0 = true }), prune = true }))
    local s = system(p, "outpost")
    assert.are.equal("read", s.mode)
    assert.are.same({ create = 1, update = 0, remove = 0, disable = 0, invite = 0, unchanged = 1, unmanaged = 0 },
      s.totals)
    assert.is_truthy(table.concat(s.notes, " "):find("cannot list tenants", 1, true))
    local result = assert(p:apply({ journal = fresh_journal() }))
    assert.is_true(result.ok)
    assert.are.equal(1, result.systems.outpost.created)
  end)

  it("runs a fifth system from one data table", function()
    -- the same tenants API under another name, its resource keyed by a column of its own
    local outpost = provision.api("outpost")
    local partners = {
      class = "PartnerTenants", api = "partners", hooks = "outpost", errors = outpost.errors,
      servers = { default = sb.outpost_latest }, security_schemes = outpost.security_schemes,
      client_defaults = outpost.client_defaults, operations = outpost.generations.latest.operations,
      resource = {
        noun = "partner", key = { column = "partner_id", field = "id", case = "exact" }, member = "partner_id",
        id = "id",
        list = { operation = "list", args = { { limit = 100 } } },
        read = { operation = "get", args = { { tenant_id = "=key" } }, absent = { status = 404 } },
        fields = { { name = "tier", column = "partner_tier", kind = "enum", values = { "gold", "silver" },
                     path = "metadata.tier", update = "upsert" } },
        create = { operation = "upsert", args = { { tenant_id = "=key", params = { metadata = { tier = "=desired.tier" } } } } },
        updates = { upsert = { operation = "upsert", args = { { tenant_id = "=key",
          params = { metadata = { tier = "=desired.tier" } } } } } },
        remove = { operation = "delete", args = { { tenant_id = "=key" } }, gone = { status = 404 } },
      },
    }
    local c = assert(provision.new(partners, { auth = { admin_api_key = creds.outpost.admin_api_key } }))
    local rows = { { email = "p1@partner.example", partner_id = "partner-one", partner_tier = "Gold" },
                   { email = "p2@partner.example", partner_id = "northwind", partner_tier = "silver" } }
    local p = assert(reconcile.plan(rows, { partners = c }, {}))
    local s = p.systems[1]
    assert.are.equal("partners", s.system)
    assert.are.equal(1, s.totals.create)
    assert.are.equal(1, s.totals.update)   -- northwind has no tier yet
    assert(p:apply({ journal = fresh_journal() }))
    assert.are.equal(0, assert(reconcile.plan(rows, { partners = c }, {})):pending())
    local t = assert(clients().outpost:get({ tenant_id = "partner-one" }))
    assert.are.equal("gold", t.metadata.tier)
  end)
end)
