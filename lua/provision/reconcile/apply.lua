-- Applying a plan: its steps become calls on the bulk engine, every system
-- side by side (reconcile/runner.lua), each step's intent written to the
-- journal before its call is handed to the engine (a batch of steps per
-- transaction), its outcome settled as the call ends. An outcome left
-- unknown (the answer was lost and no read-back could tell) is settled by
-- reading the record again at the end; so is every step a killed run left
-- without an outcome, before a resumed run does anything else
-- (docs/reconcile.md "Journal").
--
--   apply.run(p, states, systems, opts) -> result | nil, err
--     p, states: from plan.compute (or a saved plan and a fresh refresh)
--     systems: descriptors by name (reconcile.lua)
--     opts: journal (an open provision.journal, or nil), run_opts (begin_run
--       fields: argv_summary, resume_of), unsettled (steps of the resumed
--       runs without an outcome), allow_mass_removal, concurrency, rate,
--       on_progress(progress), progress_interval, batch (intents per
--       transaction)
--   result = { ok =, run_id =, systems = { [name] = counts }, steps = {...},
--              invitations = { {system, key, employee_type, link} },
--              resumed = { settled = n, by_outcome = {...} }, engine = summary }
local errors = require("provision.errors")
local template = require("provision.reconcile.template")
local refresh = require("provision.reconcile.refresh")
local runner = require("provision.reconcile.runner")
local plan_mod = require("provision.reconcile.plan")

local apply = {}

local dig = template.dig

local COUNTS = { "created", "updated", "removed", "disabled", "invited", "unchanged", "exists", "failed", "unknown" }
local DONE_WORD = { create = "created", update = "updated", remove = "removed", disable = "disabled",
                    invite = "invited" }

local function new_counts()
  local c = { total = 0, done = 0 }
  for _, k in ipairs(COUNTS) do c[k] = 0 end
  return c
end

local function header(headers, name)
  if type(headers) ~= "table" then return nil end
  return headers[name]
end

local function request_id(info)
  local h = type(info) == "table" and info.headers
  local v = header(h, "x-request-id") or header(h, "request-id") or header(h, "x-correlation-id")
    or header(h, "x-amzn-requestid")
  if type(v) == "string" and #v <= 256 and not v:find("%c") then return v end
  return nil
end

-- The journal's view of a step: what it means to do, never a secret (the
-- arguments carry roster data and ids; credentials live in the clients).
local function intent(step)
  return {
    system = step.system, key = step.key, action = step.action, operation = step.operation,
    detail = { changes = step.changes, args = step.args, fingerprint = step.fingerprint, line = step.line,
               record_id = step.record_id },
  }
end

-- Whether a step's effect shows in a record as read now.
local function effect_visible(sys, step, record)
  local action = step.action
  if action == "create" then return record ~= nil end
  if action == "remove" then return record == nil end
  if action == "update" or action == "disable" then
    if record == nil then return false end
    for name, change in pairs(step.changes or {}) do
      local f = sys.fields_by_name[name]
      if f and change.new ~= nil then
        -- change.new may come back from the journal's JSON: read it as a record's value
        local new = f.kind_of.read(change.new)
        if not f.kind_of.equal(plan_mod.observed_value(f, record), new) then return false end
      end
    end
    return true
  end
  return false
end
apply.effect_visible = effect_visible

-- Settles steps whose outcome is not known by reading their records now:
-- a system's whole listing read just before (`known`, the plan's own
-- refresh) serves as the read-back; other systems are read by key.
-- steps[i] = {id =, system =, key =, action =, changes =}; returns the
-- settle rows, or nil, err.
function apply.read_back(steps, systems, opts, known)
  local by_system, order = {}, {}
  for _, s in ipairs(steps) do
    if not by_system[s.system] then by_system[s.system] = {}; order[#order + 1] = s.system end
    table.insert(by_system[s.system], s)
  end
  local to_read = {}
  for _, name in ipairs(order) do
    local sys = systems[name]
    local listed = known and known[name] and known[name].mode == "list"
    if sys and not listed and sys.resource.read and sys.client.ops[sys.resource.read.operation] then
      local keys, seen = {}, {}
      for _, s in ipairs(by_system[name]) do
        if not seen[s.key] then seen[s.key] = true; keys[#keys + 1] = s.key end
      end
      to_read[#to_read + 1] = { name = name, client = sys.client, resource = sys.resource,
                                context = sys.context, keys = keys }
    end
  end
  local states = {}
  if #to_read > 0 then
    local err
    states, err = refresh.run(to_read, opts)
    if not states then return nil, err end
  end
  for name, st in pairs(known or {}) do
    if st.mode == "list" and states[name] == nil then states[name] = st end
  end
  local rows = {}
  for _, name in ipairs(order) do
    local sys, state = systems[name], states[name]
    for _, s in ipairs(by_system[name]) do
      local row = { id = s.id, settled_by = "read_back" }
      if not sys then
        row.outcome, row.message = "unknown", "system " .. name .. " is not configured in this run"
      elseif s.action == "invite" then
        -- a GET that changes nothing: asking again is harmless
        row.outcome, row.message = "absent", "cannot be read back; asked again if still wanted"
      elseif not state then
        row.outcome, row.message = "unknown", name .. " has no read by key to settle it with"
      else
        local record = state.observed[refresh.norm(sys.resource, s.key)]
        if effect_visible(sys, s, record) then
          row.outcome = s.action == "create" and "exists" or "ok"
          row.record_id = record and sys.resource.id and dig(record, sys.resource.id) or nil
          if type(row.record_id) ~= "string" and type(row.record_id) ~= "number" then row.record_id = nil end
        else
          row.outcome = "absent"
        end
      end
      rows[#rows + 1] = row
    end
  end
  return rows
end

-- The threshold refusals of a plan, as one error (nil when none).
function apply.refusal(p, allow)
  if allow then return nil end
  local msgs = {}
  for _, s in ipairs(p.systems) do
    if s.refused then msgs[#msgs + 1] = s.refused end
  end
  if #msgs == 0 then return nil end
  return errors.new({ kind = "invalid_argument", class = "MassRemovalError", operation = "reconcile.apply",
    message = "refused, nothing was sent: " .. table.concat(msgs, "; ") })
end

local function journal_error(err)
  return errors.new({ kind = "journal", class = type(err) == "table" and err.class or "JournalError",
    operation = "reconcile.apply", message = "the journal failed, so nothing more is sent: " .. tostring(err) })
end

-- Steps of one system as a runner task.
local function system_task(sys, steps, ctx)
  local i, buffer, head = 0, {}, 1
  local task = { client = sys.client, name = sys.name }
  function task.next()
    if ctx.fatal then return nil end
    if head > #buffer then
      if i >= #steps then return nil end
      buffer, head = {}, 1
      local batch = {}
      while i < #steps and #buffer < ctx.batch do
        i = i + 1
        buffer[#buffer + 1] = steps[i]
        batch[#batch + 1] = intent(steps[i])
      end
      if ctx.run then
        local ids, err = ctx.run:intend(batch)
        if not ids then
          ctx.fatal = journal_error(err)
          return nil
        end
        for k, id in ipairs(ids) do buffer[k].journal_id = id end
      end
    end
    local step = buffer[head]
    head = head + 1
    local args = step.args or {}
    return { step.operation, args = args, n = step.n or #args, step = step }
  end
  function task.done(_, call, value, info)
    ctx.settle(sys, call.step, value, info)
  end
  return task
end

function apply.run(p, states, systems, opts)
  opts = opts or {}
  local refused = apply.refusal(p, opts.allow_mass_removal)
  if refused then return nil, refused end
  local j = opts.journal
  local run, err
  local result = { ok = true, systems = {}, steps = {}, invitations = {}, order = {} }
  local names = {}
  for _, s in ipairs(p.systems) do
    names[#names + 1] = s.system
    result.systems[s.system] = new_counts()
    result.order[#result.order + 1] = s.system
  end
  if j then
    local fields = { roster_digest = p.roster_digest, systems = names, mode = "apply" }
    for k, v in pairs(opts.run_opts or {}) do fields[k] = v end
    run, err = j:begin_run(fields)
    if not run then
      if type(err) == "table" and err.class == "JournalConflictError" then
        -- another apply resumed that run first: a refusal, nothing was sent
        return nil, errors.new({ kind = "invalid_argument", class = "RunConflictError",
          operation = "reconcile.apply", message = "refused, nothing was sent: " .. tostring(err.message) })
      end
      return nil, journal_error(err)
    end
    result.run_id = run.id
  end

  -- a resumed run first settles what the killed one left open
  if run and opts.unsettled and #opts.unsettled > 0 then
    local list = {}
    for _, s in ipairs(opts.unsettled) do
      list[#list + 1] = { id = s.id, system = s.system, key = s.key, action = s.action,
                          changes = type(s.detail) == "table" and s.detail.changes or nil }
    end
    local rows, rerr = apply.read_back(list, systems, opts, states)
    if not rows then
      run:finish({ status = "failed", summary = { error = tostring(rerr) } })
      return nil, rerr
    end
    local ok, serr = run:settle_many(rows)
    if ok then ok, serr = run:flush() end
    if not ok then return nil, journal_error(serr) end
    local by = {}
    for _, r in ipairs(rows) do by[r.outcome] = (by[r.outcome] or 0) + 1 end
    result.resumed = { settled = #rows, by_outcome = by, of_run = opts.run_opts and opts.run_opts.resume_of }
  end

  local ctx = { run = run, batch = opts.batch or math.max(8, math.min(256, (opts.concurrency or 8) * 2)) }
  local unknown = {}
  function ctx.settle(sys, step, value, info)
    local counts = result.systems[sys.name]
    counts.done = counts.done + 1
    local res = sys.resource
    local row = { status = type(info) == "table" and info.status or nil, request_id = request_id(info) }
    if value ~= nil then
      row.outcome = "ok"
      row.settled_by = (type(info) == "table" and info.settled == "read_back") and "read_back" or "response"
      if step.action == "create" then
        local id = dig(value, (res.create and res.create.created_id) or res.id or "")
        if type(id) == "string" or type(id) == "number" then row.record_id = id end
      elseif step.record_id ~= nil and (type(step.record_id) == "string" or type(step.record_id) == "number") then
        row.record_id = step.record_id
      end
      if step.action == "invite" and type(value) == "string" then
        local employee_type = step.changes and step.changes.employee_type and step.changes.employee_type.new
        result.invitations[#result.invitations + 1] = { system = sys.name, key = step.key,
                                                        employee_type = employee_type, link = value }
      end
      step.value = value
      counts[DONE_WORD[step.action]] = counts[DONE_WORD[step.action]] + 1
    else
      local e = info
      row.error_class = type(e) == "table" and e.class or nil
      row.message = tostring(e)
      if step.action == "create" and type(e) == "table" and e.exists then
        row.outcome = "exists"
        counts.exists = counts.exists + 1
      elseif step.action == "remove" and type(e) == "table" and res.remove
          and refresh.is_absent(res.remove.gone, e) then
        row.outcome, row.message = "ok", "already gone"
        step.gone = true
        counts.removed = counts.removed + 1
      elseif type(e) == "table" and e.outcome == "unknown" then
        row.outcome = "unknown"
        unknown[#unknown + 1] = step
      else
        row.outcome = "failed"
        counts.failed = counts.failed + 1
      end
    end
    step.outcome = row.outcome
    step.error = value == nil and info or nil
    if run and step.journal_id then
      row.id = step.journal_id
      local ok, jerr = run:settle_many({ row })
      if not ok and not ctx.fatal then ctx.fatal = journal_error(jerr) end
    end
    if opts.on_step then opts.on_step(step, row) end
  end

  local tasks = {}
  for _, entry in ipairs(p.systems) do
    local sys = systems[entry.system]
    local steps = {}
    local counts = result.systems[entry.system]
    for _, s in ipairs(entry.steps) do
      if s.action == "unchanged" then
        counts.unchanged = counts.unchanged + 1
      else
        steps[#steps + 1] = s
        result.steps[#result.steps + 1] = s
      end
    end
    counts.total = #steps
    if #steps > 0 then tasks[#tasks + 1] = system_task(sys, steps, ctx) end
  end

  local progress = opts.on_progress and function(stats)
    opts.on_progress({ systems = result.systems, order = result.order, stats = stats })
  end
  local ok, summary = pcall(runner.run, tasks, { concurrency = opts.concurrency, rate = opts.rate,
    on_progress = progress, progress_interval = opts.progress_interval })
  if not ok then
    if run then run:finish({ status = "interrupted", summary = { error = tostring(summary) } }) end
    error(summary, 0)
  end
  result.engine = summary

  -- answers that were lost: read the records again
  if #unknown > 0 and not ctx.fatal then
    local list = {}
    for _, s in ipairs(unknown) do
      list[#list + 1] = { id = s.journal_id, system = s.system, key = s.key, action = s.action, changes = s.changes,
                          step = s }
    end
    local rows = apply.read_back(list, systems, opts)
    for i, item in ipairs(list) do
      local row = rows and rows[i] or { outcome = "unknown" }
      local s, counts = item.step, result.systems[item.system]
      if row.outcome == "ok" or row.outcome == "exists" then
        counts[DONE_WORD[s.action]] = counts[DONE_WORD[s.action]] + 1
        s.outcome = "ok"
      else
        -- absent: the step did not land (the next apply plans it again)
        if row.outcome == "absent" then row.outcome = "failed"; row.message = "not applied (read back)" end
        counts[row.outcome == "unknown" and "unknown" or "failed"] =
          counts[row.outcome == "unknown" and "unknown" or "failed"] + 1
        s.outcome = row.outcome
      end
      if run and s.journal_id then
        row.id = s.journal_id
        row.settled_by = "read_back"
        local sok, jerr = run:settle_many({ row })
        if not sok and not ctx.fatal then ctx.fatal = journal_error(jerr) end
      end
    end
  end

  for _, name in ipairs(result.order) do
    local c = result.systems[name]
    if c.failed > 0 or c.unknown > 0 then result.ok = false end
  end
  if ctx.fatal then result.ok = false end
  if run then
    local summary_rows = {}
    for _, name in ipairs(result.order) do
      local c = {}
      for k, v in pairs(result.systems[name]) do c[k] = v end
      summary_rows[name] = c
    end
    local status = result.ok and "done" or "failed"
    local fok, ferr = run:finish({ status = status, summary = { systems = summary_rows,
      requests = summary and summary.requests } })
    if not fok then
      if status == "done" then run:finish({ status = "failed" }) end
      if not ctx.fatal then ctx.fatal = journal_error(ferr) end
      result.ok = false
    end
  end
  if ctx.fatal then result.error = ctx.fatal end
  result.steps_total = #result.steps
  result.invitation_count = #result.invitations
  return result
end

return apply
