-- The plan: what the roster wants against what the systems hold, as data
-- (docs/reconcile.md "Plans"). plan.compute reads every system
-- (reconcile/refresh.lua), diffs every managed field and returns
--
--   { version = 1, roster_digest =, created_at =, options = {...},
--     systems = { { system =, class =, mode =, count =, totals = {...},
--                   notes = {...}, refused = message|nil, steps = {...} }, ... },
--     totals = {...} }
--
-- A step: { system =, key =, action = "create"|"update"|"remove"|"disable"|
-- "invite"|"unchanged", changes = { field = {old =, new =} }, operation =,
-- args = {...}, n =, fingerprint =, line = roster line, record_id = }.
-- Nothing here sends anything but reads.
local core = require("provision.core")
local json = require("provision.json")
local errors = require("provision.errors")
local template = require("provision.reconcile.template")
local refresh = require("provision.reconcile.refresh")

local plan = {}

plan.VERSION = 1
plan.ACTIONS = { "create", "update", "remove", "disable", "invite", "unchanged" }
plan.DEFAULT_MAX_REMOVALS = 25
plan.DEFAULT_MAX_REMOVAL_SHARE = 0.1

local dig = template.dig

-- A field's value in a live record: its path, or the first of a list of
-- alternative paths that holds a value that is not a table... unless the
-- field's kind wants a table.
local function raw_field(f, record)
  local paths = type(f.path) == "table" and f.path or { f.path }
  local wants_table = f.kind == "role_map" or f.kind == "map" or f.kind == "set" or f.kind == "json"
  for _, p in ipairs(paths) do
    local v = dig(record, p)
    if v ~= nil and v ~= json.null and (wants_table or type(v) ~= "table") then return v end
  end
  return nil
end

function plan.observed_value(f, record)
  return f.kind_of.read(raw_field(f, record))
end

-- A fingerprint of what a record holds of the fields the resource knows,
-- so that a saved plan can tell that the record changed since.
function plan.fingerprint(sys, record)
  if not record then return "absent" end
  local fields = {}
  for _, f in ipairs(sys.fields) do
    if f.path then
      local v = plan.observed_value(f, record)
      if f.kind == "text_ci" or f.kind == "enum" then v = type(v) == "string" and v:lower() or v end
      fields[f.name] = v == nil and json.null or v
    end
  end
  local id = sys.resource.id and dig(record, sys.resource.id)
  local text = assert(json.encode({ id = id == nil and json.null or id, fields = fields }, { sort_keys = true }))
  return core.hex(core.sha256(text)):sub(1, 32)
end

local function lookup_key(spec, v)
  if spec and spec.case == "insensitive" and type(v) == "string" then return v:lower() end
  return v
end

-- The environment a step's argument templates are filled from.
local function env_for(sys, state, step, desired, observed)
  local by_name = sys.fields_by_name
  local function wire(name)
    local f = by_name[name]
    if not f then return nil end
    local v = desired[name]
    if v == nil then
      if f.default == nil then return nil end
      return f.default
    end
    if f.lookup then
      local map = state.lookups[f.lookup]
      return type(map) == "table" and map[lookup_key(sys.resource.lookups[f.lookup], v)] or nil
    end
    return f.kind_of.wire(v)
  end
  return {
    key = step.key, observed = observed, context = sys.context,
    desired = wire,
    lookup = function(name) return state.lookups[name] end,
    merged = function()
      local out = {}
      for k, v in pairs(observed or {}) do out[k] = v end
      for name in pairs(desired) do
        local f = by_name[name]
        if f and type(f.path) == "string" and not f.path:find(".", 1, true) then out[f.path] = wire(name) end
      end
      return out
    end,
  }
end

local function fill_step(sys, state, step, spec, desired, observed)
  step.operation = spec.operation
  local args, n = template.args(spec.args, env_for(sys, state, step, desired, observed))
  step.args, step.n = json.array(args), n
end

local function new_totals()
  local t = { unmanaged = 0 }
  for _, a in ipairs(plan.ACTIONS) do t[a] = 0 end
  return t
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- The lookups a system needs: those its managed fields name, and those
-- drawn from the listing when it is read whole (phase 1); those its creates
-- need otherwise (phase 2, only when it has creates). A lookup the caller
-- gave (opts.lookups) is never read.
local function lookups_for(sys, phase, opts, has_creates, listing)
  local want = {}
  local given = (opts.lookups or {})[sys.name] or {}
  for name, spec in pairs(sys.resource.lookups or {}) do
    if given[name] == nil then
      local by_field = false
      for _, f in ipairs(sys.fields) do if f.lookup == name then by_field = true end end
      local for_create = false
      for _, a in ipairs(spec.needed_by or {}) do if a == "create" then for_create = true end end
      local free = spec.from == "list" and listing
      if phase == 1 and (by_field or free) then want[name] = true end
      if phase == 2 and for_create and has_creates and not (spec.from == "list" and listing) then
        want[name] = true
      end
    end
  end
  return want
end

-- Roster rows that name a value a lookup does not know (an unknown
-- Document360 role): reported with their lines, before anything is sent.
local function check_lookups(systems, desired_of, states, roster)
  local bad = {}
  for _, sys in ipairs(systems) do
    local state = states[sys.name]
    for _, f in ipairs(sys.fields) do
      local map = f.lookup and state.lookups[f.lookup]
      if type(map) == "table" then
        local spec = sys.resource.lookups[f.lookup]
        for _, d in pairs(desired_of[sys.name]) do
          local v = d.desired[f.name]
          if v ~= nil and map[lookup_key(spec, v)] == nil then
            local known = {}
            for k in pairs(map) do known[#known + 1] = k end
            table.sort(known)
            bad[#bad + 1] = { line = d.line, message = ("%s %q: %s has no such %s (it has: %s)"):format(
              f.column or f.name, tostring(v), sys.name, f.name:gsub("_", " "), table.concat(known, ", ")) }
          end
        end
      end
    end
  end
  if #bad == 0 then return nil end
  table.sort(bad, function(a, b) return a.line < b.line end)
  local parts = {}
  for i, b in ipairs(bad) do
    if i > 10 then parts[#parts + 1] = ("... and %d more"):format(#bad - 10) break end
    parts[#parts + 1] = ("line %d: %s"):format(b.line, b.message)
  end
  return errors.new({ kind = "invalid_argument", class = "RosterError", operation = "roster",
    message = ("%s: %d bad row%s, nothing planned: %s"):format(roster.source or "roster", #bad,
      #bad == 1 and "" or "s", table.concat(parts, "; ")), rows = bad })
end

-- Every roster row that belongs to a system, by normalised key.
local function desired_rows(sys, roster, keys)
  local out = {}
  for _, row in ipairs(roster.rows) do
    local s = row.systems[sys.name]
    if s and s.member and s.key then
      local k = refresh.norm(sys.resource, s.key)
      if not keys or keys[k] then
        local desired = {}
        for name, v in pairs(s.desired) do
          if sys.fields_by_name[name] then desired[name] = v end
        end
        out[k] = { key = s.key, line = row.line, desired = desired }
      end
    end
  end
  return out
end

local function diff_record(sys, d, record)
  local changes, groups, order = {}, {}, {}
  for _, f in ipairs(sys.fields) do
    local want = d.desired[f.name]
    if want ~= nil and not f.create_only then
      local have = plan.observed_value(f, record)
      if not f.kind_of.equal(have, want) then
        changes[f.name] = { old = have, new = want }
        local g = f.update
        if not groups[g] then groups[g] = {}; order[#order + 1] = g end
        groups[g][f.name] = changes[f.name]
      end
    end
  end
  return changes, groups, order
end

-- A system not in the roster but in the system: removed (or disabled)
-- with prune; counted as unmanaged otherwise (and when disabled already).
local function prune_step(sys, key, record, opts)
  local res = sys.resource
  local display = dig(record, res.key.field) or key
  local step = { system = sys.name, key = display, record_id = res.id and dig(record, res.id) }
  if opts.prune_mode == "disable" and res.disable then
    local changes, groups, order = {}, {}, {}
    for name, v in pairs(res.disable.set) do
      local f = sys.fields_by_name[name]
      local parsed = f and f.kind_of.parse(v, f)
      local have = f and plan.observed_value(f, record)
      if f and not f.kind_of.equal(have, parsed) then
        changes[name] = { old = have, new = parsed }
        if not groups[f.update] then groups[f.update] = {}; order[#order + 1] = f.update end
        groups[f.update][name] = changes[name]
      end
    end
    if #order == 0 then return nil end   -- disabled already
    step.action, step.changes, step.group = "disable", changes, order[1]
    step.set = {}
    for name in pairs(changes) do step.set[name] = changes[name].new end
    return step
  end
  if not res.remove then return nil end
  step.action = "remove"
  return step
end

-- systems: descriptors (reconcile.lua); roster: roster.lua's.
-- opts: prune, prune_mode, max_removals, max_removal_share, keys =
-- {system = {key...}} (read only those), invited = {system = set of keys
-- invited before}, lookups = {system = {name = value}}, concurrency, rate.
function plan.compute(roster, systems, opts)
  opts = opts or {}
  local desired_of, refresh_systems = {}, {}
  for _, sys in ipairs(systems) do
    local keys
    if opts.keys and opts.keys[sys.name] then
      keys = {}
      for _, k in ipairs(opts.keys[sys.name]) do keys[refresh.norm(sys.resource, k)] = true end
    end
    local d = desired_rows(sys, roster, keys)
    desired_of[sys.name] = d
    local read_keys
    if keys then
      read_keys = {}
      for _, k in ipairs(opts.keys[sys.name]) do read_keys[#read_keys + 1] = k end
    end
    local all_keys = {}
    for _, k in ipairs(sorted_keys(d)) do all_keys[#all_keys + 1] = d[k].key end
    refresh_systems[#refresh_systems + 1] = {
      name = sys.name, client = sys.client, resource = sys.resource, context = sys.context,
      keys = read_keys, all_keys = all_keys, lookups = lookups_for(sys, 1, opts, false, read_keys == nil),
    }
  end
  local states, err = refresh.run(refresh_systems, opts)
  if not states then return nil, err end
  for _, sys in ipairs(systems) do
    for name, v in pairs((opts.lookups or {})[sys.name] or {}) do states[sys.name].lookups[name] = v end
  end
  local bad = check_lookups(systems, desired_of, states, roster)
  if bad then return nil, bad end

  local out = {
    version = plan.VERSION, roster_digest = roster.digest, created_at = os.date("!%Y-%m-%dT%H:%M:%SZ"),
    options = { prune = opts.prune and true or false, prune_mode = opts.prune_mode or "remove",
                max_removals = opts.max_removals or plan.DEFAULT_MAX_REMOVALS,
                max_removal_share = opts.max_removal_share or plan.DEFAULT_MAX_REMOVAL_SHARE },
    systems = {}, totals = new_totals(),
  }
  local pending = {}   -- steps whose arguments wait for phase-2 lookups
  local phase2 = {}
  for _, sys in ipairs(systems) do
    local state = states[sys.name]
    local res = sys.resource
    local entry = { system = sys.name, class = sys.client.class, mode = state.mode, count = state.count,
                    totals = new_totals(), notes = {}, steps = {} }
    out.systems[#out.systems + 1] = entry
    local desired = desired_of[sys.name]
    local steps = entry.steps
    local has_creates = false
    local function add(step, d, observed, spec, set)
      step.fingerprint = plan.fingerprint(sys, observed)
      steps[#steps + 1] = step
      if spec then pending[#pending + 1] = { sys = sys, step = step, spec = spec, desired = set or (d and d.desired) or {},
                                             observed = observed } end
    end
    for _, k in ipairs(sorted_keys(desired)) do
      local d = desired[k]
      local base = { system = sys.name, key = d.key, line = d.line }
      if state.mode == "none" then
        if res.invite then
          local invited = opts.invited and opts.invited[sys.name]
          if invited and invited[k] then
            base.action = "unchanged"
            add(base, d)
          else
            base.action = "invite"
            base.changes = {}
            for name, v in pairs(d.desired) do base.changes[name] = { new = v } end
            add(base, d, nil, res.invite)
          end
        end
      else
        local record = state.observed[k]
        if not record then
          base.action = "create"
          base.changes = {}
          for name, v in pairs(d.desired) do base.changes[name] = { new = v } end
          has_creates = true
          add(base, d, nil, res.create)
        else
          base.record_id = res.id and dig(record, res.id)
          local _, groups, order = diff_record(sys, d, record)
          if #order == 0 then
            base.action = "unchanged"
            add(base, d, record)
          else
            for _, g in ipairs(order) do
              local step = { system = sys.name, key = d.key, line = d.line, action = "update",
                             changes = groups[g], record_id = base.record_id }
              add(step, d, record, res.updates[g])
            end
          end
        end
      end
    end
    -- records in the system that the roster does not name (all of them when
    -- listed; those asked for by key otherwise)
    if state.mode == "list" or (state.mode == "read" and not state.unlisted) then
      local extra = 0
      for _, k in ipairs(sorted_keys(state.observed)) do
        if not desired[k] then
          extra = extra + 1
          local record = state.observed[k]
          local step = opts.prune and prune_step(sys, k, record, opts)
          if step then
            local spec = step.action == "disable" and res.updates[step.group] or res.remove
            step.group = nil
            local set = step.set
            step.set = nil
            add(step, nil, record, spec, set)
          else
            -- not pruned (or disabled already by an earlier prune): still not in the roster
            entry.totals.unmanaged = entry.totals.unmanaged + 1
          end
        end
      end
      if extra > 0 and not opts.prune then
        entry.notes[#entry.notes + 1] = ("%d %s%s not in the roster (left alone; --prune removes them)")
          :format(extra, res.noun, extra == 1 and " is" or "s are")
      end
    elseif state.mode == "read" and state.unlisted then
      entry.notes[#entry.notes + 1] = ("this server cannot list %ss: each was read by key, and nothing "
        .. "beyond the roster can be pruned"):format(res.noun)
    end
    if #state.duplicates > 0 then
      entry.notes[#entry.notes + 1] = ("%d %s%s more than once in %s: %s"):format(#state.duplicates, res.noun,
        #state.duplicates == 1 and " appears" or "s appear", sys.name, table.concat(state.duplicates, ", "))
    end
    for _, s in ipairs(steps) do
      if s.action ~= "update" then entry.totals[s.action] = entry.totals[s.action] + 1 end
    end
    local updated = {}
    for _, s in ipairs(steps) do
      if s.action == "update" then updated[s.key] = true end
    end
    entry.totals.update = 0
    for _ in pairs(updated) do entry.totals.update = entry.totals.update + 1 end
    if state.mode == "none" and res.cannot_list then
      local before = entry.totals.unchanged
      entry.notes[#entry.notes + 1] = ("%s: %d invitation%s%s (cannot check who already has an account: %s)")
        :format(sys.name, entry.totals.invite, entry.totals.invite == 1 and "" or "s",
          before > 0 and (", " .. before .. " invited before (the journal says)") or "", res.cannot_list)
    end
    -- the safety threshold on removals
    local removals = entry.totals.remove + entry.totals.disable
    local limit = math.max(out.options.max_removals, math.floor(out.options.max_removal_share * state.count))
    if opts.prune and removals > limit then
      entry.refused = ("%s: the prune would remove %d of %d %ss, more than %d (the larger of %d and %g%% of "
        .. "them); pass --allow-mass-removal if that is meant"):format(sys.name, removals, state.count,
        res.noun, limit, out.options.max_removals, out.options.max_removal_share * 100)
    end
    local want2 = lookups_for(sys, 2, opts, has_creates, state.mode == "list")
    if next(want2) then
      phase2[#phase2 + 1] = { name = sys.name, client = sys.client, resource = res, context = sys.context,
                              keys = {}, lookups = want2 }
    end
    for _, a in ipairs(plan.ACTIONS) do out.totals[a] = out.totals[a] + entry.totals[a] end
    out.totals.unmanaged = out.totals.unmanaged + entry.totals.unmanaged
  end
  -- lookups only creates need (Document360's inviter when only some keys were read)
  if #phase2 > 0 then
    local more, merr = refresh.run(phase2, opts)
    if not more then return nil, merr end
    for name, st in pairs(more) do
      for k, v in pairs(st.lookups) do states[name].lookups[k] = v end
    end
  end
  for _, p in ipairs(pending) do
    local state = states[p.sys.name]
    for name, spec in pairs(p.sys.resource.lookups or {}) do
      for _, a in ipairs(spec.needed_by or {}) do
        if a == p.step.action and state.lookups[name] == nil then
          return nil, errors.new({ kind = "not_found", class = "NotFoundError", operation = "reconcile.plan",
            message = p.sys.name .. ": " .. (spec.missing or ("lookup " .. name .. " found nothing")) })
        end
      end
    end
    fill_step(p.sys, state, p.step, p.spec, p.desired, p.observed)
  end
  return out, states
end

return plan
