-- The reconciler: make the systems hold the people of a roster
-- (docs/reconcile.md). Level-triggered: read what each system holds, diff
-- it against the roster, act, and when an answer is lost read again rather
-- than guess. It knows nothing about any one API: each API table's
-- `resource` says how to list, read, create, compare, update and remove its
-- records (docs/reconcile.md "Resources").
--
--   local reconcile = require("provision.reconcile")
--   local p = assert(reconcile.plan("roster.csv", clients, { context = { org_id = org } }))
--   print(p.totals.create, "to create")
--   local result = assert(p:apply({ journal = "/var/lib/provision/journal.sqlite" }))
--
-- reconcile.plan(roster, clients, opts) -> plan | nil, err
--   roster: a file name, a parsed roster (reconcile.roster), or a Lua list of rows
--   clients: { agilicus = UsersApi client, document360 = ..., outpost = ...,
--              docspace = ... } (any subset; a fifth API with a resource too)
--   opts: context = { org_id = ... } (or { agilicus = { org_id = ... } }),
--         systems = { names } (scope), prune, prune_mode = "remove"|"disable",
--         max_removals (25), max_removal_share (0.1), mapping = {...},
--         journal (path or open journal: who was invited already), keys =
--         { system = { key... } } (read only those records), lookups =
--         { system = { name = value } }, concurrency (16), rate
-- plan:apply(opts) -> result | nil, err   (see reconcile/apply.lua)
--   opts: journal (path or open journal; default journal.default_path(), false
--         for none), resume (true: the newest unfinished run of this roster,
--         a run id, or "auto": that run when its process is gone),
--         allow_mass_removal, concurrency, rate, on_progress, argv_summary
-- plan.data: the plan as data (also plan.totals, plan.systems, ...: reconcile/plan.lua);
-- plan:pending() -> number of steps that would change something.
-- reconcile.load(data, clients, opts) -> a saved plan; its apply refuses when
-- a record it would touch changed since it was made.
local errors = require("provision.errors")
local json = require("provision.json")
local roster_mod = require("provision.reconcile.roster")
local plan_mod = require("provision.reconcile.plan")
local apply_mod = require("provision.reconcile.apply")
local refresh = require("provision.reconcile.refresh")

local reconcile = {}

reconcile.roster = roster_mod
reconcile.DEFAULT_CONCURRENCY = 16

local function invalid(fmt, ...)
  return nil, errors.invalid("reconcile", fmt, ...)
end

-- Clients by system name, in the reconciler's order (identity first).
local function client_list(clients)
  if type(clients) ~= "table" then return nil, "clients must be a table of API clients" end
  local by_name = {}
  for k, c in pairs(clients) do
    if type(c) ~= "table" or type(c.api) ~= "table" then
      return nil, ("clients.%s is not an API client"):format(tostring(k))
    end
    local name = type(k) == "string" and k or c.api.api
    if c.api.api ~= name and type(k) == "string" then
      return nil, ("clients.%s is a %s client"):format(k, tostring(c.api.api))
    end
    if not c.api.resource then
      return nil, ("%s (%s) declares no resource for the reconciler"):format(name, c.class)
    end
    by_name[name] = c
  end
  local order, seen = {}, {}
  for _, n in ipairs(roster_mod.SYSTEMS) do
    if by_name[n] then order[#order + 1] = n; seen[n] = true end
  end
  local rest = {}
  for n in pairs(by_name) do if not seen[n] then rest[#rest + 1] = n end end
  table.sort(rest)
  for _, n in ipairs(rest) do order[#order + 1] = n end
  return order, by_name
end

local function member_of(list, x)
  for _, v in ipairs(list) do if v == x then return true end end
  return false
end

-- Descriptors of the systems a plan covers: name, client, resource, fields
-- (those this client's server generation manages), context.
function reconcile.systems(clients, opts)
  opts = opts or {}
  local order, by_name = client_list(clients)
  if not order then return invalid("%s", by_name) end
  if opts.systems then
    for _, s in ipairs(opts.systems) do
      if not by_name[s] then
        return invalid("no client for system %q (have: %s)", tostring(s), table.concat(order, ", "))
      end
    end
  end
  local list, by = {}, {}
  for _, name in ipairs(order) do
    if not opts.systems or member_of(opts.systems, name) then
      local c = by_name[name]
      local res = c.api.resource
      local context = {}
      local given = opts.context or {}
      for k, spec in pairs(res.context or {}) do
        local v = (type(given[name]) == "table" and given[name][k]) or given[k]
        if v == nil and spec.required then
          return invalid("%s needs %s: %s", name, k, spec.what or k)
        end
        context[k] = v
      end
      local fields, by_field = {}, {}
      for _, f in ipairs(res.fields or {}) do
        if not f.generations or member_of(f.generations, c.generation) then
          local pf = roster_mod.prepare_field(c.api, f)
          fields[#fields + 1] = pf
          by_field[f.name] = pf
        end
      end
      local sys = { name = name, client = c, resource = res, fields = fields, fields_by_name = by_field,
                    context = context }
      list[#list + 1] = sys
      by[name] = sys
    end
  end
  return list, by
end

local function open_journal(j)
  if j == false or j == nil then return nil end
  if type(j) == "table" and j.begin_run then return j, false end
  local journal = require("provision.journal")
  local opened, err = journal.open(j ~= true and j or nil)
  if not opened then return nil, nil, err end
  return opened, true
end

local Plan = {}
Plan.__index = function(self, k)
  local m = Plan[k]
  if m ~= nil then return m end
  return rawget(self, "data")[k]
end

-- The parsed roster for any of the accepted forms.
-- Its columns are those of every resource known (the four built-in ones and
-- any client's), whichever systems this plan covers: a roster means the
-- same with --systems as without.
local function load_roster(r, systems, opts)
  local resources, seen = {}, {}
  for _, s in ipairs(systems) do
    resources[#resources + 1] = { name = s.name, api = s.client.api, resource = s.resource }
    seen[s.name] = true
  end
  for _, d in ipairs(roster_mod.default_resources()) do
    if not seen[d.name] then resources[#resources + 1] = d end
  end
  local ropts = { resources = resources, mapping = opts.mapping, email = opts.email, allow_empty = opts.allow_empty }
  if type(r) == "string" then return roster_mod.read(r, ropts) end
  if type(r) == "table" and r.rows and r.digest then return r end
  if type(r) == "table" then return roster_mod.from_rows(r, ropts) end
  return invalid("roster must be a file name, a parsed roster or a list of rows")
end

local function invited_sets(j, systems)
  local out = {}
  for _, s in ipairs(systems) do
    if s.resource.invite and not s.resource.list then
      local set, err = j:done_keys(s.name, "invite")
      if not set then return nil, err end
      local norm = {}
      for k in pairs(set) do norm[refresh.norm(s.resource, k)] = true end
      out[s.name] = norm
    end
  end
  return out
end

local function options_check(opts)
  if opts.prune_mode ~= nil and opts.prune_mode ~= "remove" and opts.prune_mode ~= "disable" then
    return "prune_mode must be remove or disable"
  end
  if opts.max_removals ~= nil and not (type(opts.max_removals) == "number" and opts.max_removals >= 0
      and opts.max_removals == math.floor(opts.max_removals)) then
    return "max_removals must be a whole number >= 0"
  end
  if opts.max_removal_share ~= nil and not (type(opts.max_removal_share) == "number"
      and opts.max_removal_share >= 0 and opts.max_removal_share <= 1) then
    return "max_removal_share must be a number from 0 to 1"
  end
  if opts.concurrency ~= nil and not (type(opts.concurrency) == "number" and opts.concurrency >= 1
      and opts.concurrency == math.floor(opts.concurrency)) then
    return "concurrency must be a whole number >= 1"
  end
  if opts.rate ~= nil then
    local ok, err = require("provision.options").rate(opts.rate)
    if not ok then return err end
  end
  return nil
end

function reconcile.plan(r, clients, opts)
  opts = opts or {}
  local bad = options_check(opts)
  if bad then return invalid("%s", bad) end
  local systems, by = reconcile.systems(clients, opts)
  if not systems then return nil, by end
  local parsed, rerr = load_roster(r, systems, opts)
  if not parsed then return nil, rerr end
  local popts = {}
  for k, v in pairs(opts) do popts[k] = v end
  popts.concurrency = opts.concurrency or reconcile.DEFAULT_CONCURRENCY
  local j, owned, jerr = open_journal(opts.journal)
  if jerr then return nil, jerr end
  if j then
    local invited, ierr = invited_sets(j, systems)
    if owned then j:close() end
    if not invited then return nil, ierr end
    popts.invited = invited
  end
  local data, states = plan_mod.compute(parsed, systems, popts)
  if not data then return nil, states end
  return setmetatable({ data = data, states = states, by_system = by, roster = parsed, opts = opts }, Plan)
end

-- Steps that would change something.
function Plan:pending()
  local n = 0
  for _, s in ipairs(self.data.systems) do
    for _, step in ipairs(s.steps) do if step.action ~= "unchanged" then n = n + 1 end end
  end
  return n
end

-- The plan as JSON text (what plan --save writes and reconcile.load reads).
function Plan:to_json()
  return json.encode(self.data, { sort_keys = true })
end

local function alive(pid)
  if type(pid) ~= "number" then return false end
  local f = io.open("/proc/" .. string.format("%d", pid) .. "/stat", "r")
  if not f then return false end
  local stat = f:read("*l") or ""
  f:close()
  local state = stat:match("%)%s+(%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

local function this_host()
  local f = io.open("/proc/sys/kernel/hostname", "r")
  local h = f and f:read("*l")
  if f then f:close() end
  return h or os.getenv("HOSTNAME")
end

-- The run to resume (or nil), given opts.resume.
local function run_to_resume(j, digest, resume)
  if resume == nil or resume == false then return nil end
  local row, err
  if type(resume) == "number" then
    row, err = j:run(resume)
    if not row then return nil, err end
    row.steps, row.by_system = nil, nil
    if row.status == "done" then
      return nil, errors.invalid("reconcile.apply", "run %d finished done; there is nothing to resume", resume)
    end
    if row.resumed_by then
      return nil, errors.new({ kind = "invalid_argument", class = "RunConflictError", operation = "reconcile.apply",
        message = ("run %d was already resumed by run %d (resume that one, or the newest: --resume)"):format(
          resume, row.resumed_by) })
    end
  else
    row, err = j:latest_unfinished(digest)
    if row == nil and err then return nil, err end
    if not row then
      if resume == "auto" then return nil end
      return nil, errors.invalid("reconcile.apply", "the journal has no unfinished run of this roster to resume")
    end
  end
  -- a run whose process still runs here is not resumed, unless named by id
  -- (the operator knows that pid is something else now)
  if type(resume) ~= "number" and row.status == "running" and row.host == this_host() and alive(row.pid) then
    return nil, errors.new({ kind = "invalid_argument", class = "RunConflictError", operation = "reconcile.apply",
      message = ("run %d of this roster is still running (pid %d on %s); wait for it or stop it first (or, if "
        .. "that pid is another program now, --resume=%d)"):format(row.id, row.pid, tostring(row.host), row.id) })
  end
  if resume == "auto" and row.status == "running" and row.host ~= this_host() then
    return nil, errors.new({ kind = "invalid_argument", class = "RunConflictError", operation = "reconcile.apply",
      message = ("run %d of this roster was left running on %s (pid %s); if it is gone, resume it "
        .. "with --resume %d"):format(row.id, tostring(row.host), tostring(row.pid), row.id) })
  end
  return row
end

function Plan:apply(opts)
  opts = opts or {}
  local bad = options_check(opts)
  if bad then return invalid("%s", bad) end
  local jpath = opts.journal
  if jpath == nil then jpath = true end
  local j, owned, jerr = open_journal(jpath)
  if jerr then return nil, jerr end
  local function close() if owned then j:close() end end
  local aopts = {
    journal = j, allow_mass_removal = opts.allow_mass_removal,
    concurrency = opts.concurrency or self.opts.concurrency or reconcile.DEFAULT_CONCURRENCY,
    rate = opts.rate or self.opts.rate, on_progress = opts.on_progress, progress_interval = opts.progress_interval,
    on_step = opts.on_step, batch = opts.batch, run_opts = { argv_summary = opts.argv_summary },
  }
  -- refuse before anything else happens (the journal records no run)
  local refused = apply_mod.refusal(self.data, opts.allow_mass_removal)
  if refused then close() return nil, refused end
  if self.saved then
    local ok, err = self:verify()
    if not ok then close() return nil, err end
  end
  if j then
    local row, err = run_to_resume(j, self.data.roster_digest, opts.resume == nil and "auto" or opts.resume)
    if err then close() return nil, err end
    if row then
      local unsettled
      unsettled, err = j:unsettled(row.id, { include_unknown = true })
      if not unsettled then close() return nil, err end
      aopts.unsettled = unsettled
      aopts.run_opts.resume_of = row.id
    end
  end
  local ok, result, err = pcall(apply_mod.run, self.data, self.states, self.by_system, aopts)
  close()
  if not ok then error(result, 0) end
  if not result then return nil, err end
  return result
end

---------------------------------------------------------------- saved plans

-- The operations each action may run on a resource (what plan.lua gives a
-- step): a saved plan is a file, and an edited one must not turn an update
-- into a delete.
local function allowed_operations(res, action)
  local out = {}
  local function add(spec) if spec and spec.operation then out[spec.operation] = true end end
  if action == "create" then add(res.create)
  elseif action == "remove" then add(res.remove)
  elseif action == "invite" then add(res.invite)
  elseif action == "update" or action == "disable" then
    for _, spec in pairs(res.updates or {}) do add(spec) end
  end
  return out
end

local known_action = {}
for _, a in ipairs(plan_mod.ACTIONS) do known_action[a] = true end

-- nil, or what is wrong with the steps of a saved plan.
local function saved_steps_problem(data, by)
  for i, entry in ipairs(data.systems) do
    local sys = type(entry) == "table" and by[entry.system]
    if not sys or type(entry.steps) ~= "table" then return ("systems[%d] is malformed"):format(i) end
    for k, step in ipairs(entry.steps) do
      local where = ("%s step %d"):format(entry.system, k)
      if type(step) ~= "table" or not known_action[step.action] or type(step.key) ~= "string" then
        return where .. " is malformed"
      end
      if step.action == "unchanged" then
        if step.operation ~= nil then return where .. ": an unchanged step runs no operation" end
      elseif not allowed_operations(sys.resource, step.action)[step.operation] then
        return ("%s: %s does not %s a %s"):format(where, tostring(step.operation), step.action,
          sys.resource.noun or "record")
      elseif step.args ~= nil and type(step.args) ~= "table" then
        return where .. ": args must be a list"
      end
    end
  end
  return nil
end

-- A plan saved as data (plan --save FILE, or plan.data): applying it first
-- reads each record it touches and refuses when one changed since.
function reconcile.load(data, clients, opts)
  opts = opts or {}
  if type(data) == "string" then
    local decoded, derr = json.decode(data)
    if type(decoded) ~= "table" then return invalid("a saved plan must be JSON: %s", tostring(derr)) end
    data = decoded
  end
  if type(data) ~= "table" or data.version ~= plan_mod.VERSION or type(data.systems) ~= "table" then
    return invalid("not a saved plan of this version (%s)", tostring(type(data) == "table" and data.version))
  end
  local names = {}
  for _, s in ipairs(data.systems) do names[#names + 1] = s.system end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.systems = names
  local systems, by = reconcile.systems(clients, o)
  if not systems then return nil, by end
  local bad = saved_steps_problem(data, by)
  if bad then return invalid("not a plan this reconciler made: %s; nothing was sent", bad) end
  return setmetatable({ data = data, by_system = by, opts = opts, saved = true }, Plan)
end

-- Reads the records a saved plan touches; nil, err naming those that changed.
function Plan:verify()
  local to_read = {}
  for _, entry in ipairs(self.data.systems) do
    local sys = self.by_system[entry.system]
    local r = { name = sys.name, client = sys.client, resource = sys.resource, context = sys.context }
    if entry.mode == "read" or entry.mode == "none" then
      r.keys = {}
      if entry.mode == "read" then
        for _, s in ipairs(entry.steps) do r.keys[#r.keys + 1] = s.key end
      end
    end
    to_read[#to_read + 1] = r
  end
  local states, err = refresh.run(to_read, { concurrency = self.opts.concurrency or reconcile.DEFAULT_CONCURRENCY })
  if not states then return nil, err end
  local stale = {}
  for _, entry in ipairs(self.data.systems) do
    local sys, state = self.by_system[entry.system], states[entry.system]
    if entry.mode ~= "none" then
      for _, s in ipairs(entry.steps) do
        local record = state.observed[refresh.norm(sys.resource, s.key)]
        if plan_mod.fingerprint(sys, record) ~= s.fingerprint then
          stale[#stale + 1] = entry.system .. " " .. s.key
        end
      end
    end
  end
  self.states = states
  if #stale == 0 then return true end
  local shown = {}
  for i = 1, math.min(#stale, 10) do shown[i] = stale[i] end
  return nil, errors.new({ kind = "invalid_argument", class = "StalePlanError", operation = "reconcile.apply",
    message = ("the saved plan is stale: %d record%s changed since it was made (%s%s); nothing was sent, "
      .. "make a new plan"):format(#stale, #stale == 1 and "" or "s", table.concat(shown, ", "),
      #stale > 10 and ", ..." or "") })
end

-- One call: plan, then apply.
function reconcile.apply(r, clients, opts)
  local p, err = reconcile.plan(r, clients, opts)
  if not p then return nil, err end
  return p:apply(opts)
end

return reconcile
