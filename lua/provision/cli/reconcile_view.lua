-- How plans, apply results and journal runs read on a terminal (the text
-- forms of `provision plan`, `apply` and `journal`; --output json prints
-- the data itself). Each function returns a list of lines.
-- Lua 5.1/5.4 common syntax.
local tbl = require("provision.cli.table")
local kinds = require("provision.reconcile.kinds")
local provision_api = require("provision").api

local view = {}

local MARK = { create = "+", update = "~", remove = "-", disable = "!", invite = ">" }

-- The kind of a field of a system's resource, for showing its values.
local function field_kind(system, name)
  local api = provision_api(system)
  local res = type(api) == "table" and api.resource
  for _, f in ipairs(res and res.fields or {}) do
    if f.name == name then return kinds[f.kind] end
  end
  return kinds.json
end

local function show(system, name, v)
  local k = field_kind(system, name)
  if v == nil then return "(none)" end
  local ok, s = pcall(function() return k.show(k.read(v)) end)
  return ok and s or tostring(v)
end

local function sorted(t)
  local keys = {}
  for k in pairs(t or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local function step_text(s)
  if s.action == "update" or s.action == "disable" then
    local parts = {}
    for _, name in ipairs(sorted(s.changes)) do
      local c = s.changes[name]
      parts[#parts + 1] = ("%s: %s -> %s"):format(name, show(s.system, name, c.old), show(s.system, name, c.new))
    end
    return table.concat(parts, ", ")
  end
  if s.action == "create" or s.action == "invite" then
    local parts = {}
    for _, name in ipairs(sorted(s.changes)) do
      if name ~= "content_permissions" then
        parts[#parts + 1] = name .. " " .. show(s.system, name, s.changes[name].new)
      end
    end
    return table.concat(parts, ", ")
  end
  return ""
end

local COLUMNS = { "create", "update", "remove", "disable", "invite", "unchanged" }

function view.plan(p)
  local lines = {}
  for _, s in ipairs(p.systems) do
    local noun = (provision_api(s.system) or {}).resource
    noun = noun and noun.noun or "record"
    local n = s.count or 0
    local head = ("%s (%s): %d %s%s %s"):format(s.system, tostring(s.class), n, noun, n == 1 and "" or "s",
      s.mode == "list" and "listed" or "read by key")
    if s.mode == "none" then head = ("%s (%s): cannot be listed"):format(s.system, tostring(s.class)) end
    lines[#lines + 1] = head
    local by_key, order = {}, {}
    for _, step in ipairs(s.steps) do
      if step.action ~= "unchanged" then
        local k = step.key .. "\0" .. step.action
        if not by_key[k] then by_key[k] = { step = step, texts = {} }; order[#order + 1] = k end
        local t = step_text(step)
        if t ~= "" then table.insert(by_key[k].texts, t) end
      end
    end
    for _, k in ipairs(order) do
      local e = by_key[k]
      local text = table.concat(e.texts, "; ")
      lines[#lines + 1] = ("  %s %-7s %s%s"):format(MARK[e.step.action] or "?", e.step.action, e.step.key,
        text ~= "" and ("  " .. text) or "")
    end
    for _, note in ipairs(s.notes or {}) do lines[#lines + 1] = "  note: " .. note end
    if s.refused then lines[#lines + 1] = "  REFUSED: " .. s.refused end
  end
  lines[#lines + 1] = ""
  local rows = {}
  for _, s in ipairs(p.systems) do
    local r = { s.system }
    for _, c in ipairs(COLUMNS) do r[#r + 1] = s.totals[c] end
    r[#r + 1] = s.totals.unmanaged
    rows[#rows + 1] = r
  end
  local total = { "total" }
  for _, c in ipairs(COLUMNS) do total[#total + 1] = p.totals[c] end
  total[#total + 1] = p.totals.unmanaged
  for _, l in ipairs(tbl.render({ "SYSTEM", "CREATE", "UPDATE", "REMOVE", "DISABLE", "INVITE", "UNCHANGED",
                                  "NOT IN ROSTER" }, rows, { total = total })) do
    lines[#lines + 1] = l
  end
  local t = p.totals
  local pending = t.create + t.update + t.remove + t.disable + t.invite
  lines[#lines + 1] = ""
  if pending == 0 then
    lines[#lines + 1] = "No changes: the systems match the roster."
  else
    lines[#lines + 1] = ("Plan: %d to create, %d to update, %d to remove, %d to disable, %d invitation%s.")
      :format(t.create, t.update, t.remove, t.disable, t.invite, t.invite == 1 and "" or "s")
  end
  return lines
end

local RESULT_COLUMNS = { "created", "updated", "removed", "disabled", "invited", "unchanged", "exists", "failed",
                         "unknown" }

function view.summary(result, opts)
  opts = opts or {}
  local lines = {}
  if result.resumed then
    local parts = {}
    for _, k in ipairs(sorted(result.resumed.by_outcome)) do
      parts[#parts + 1] = result.resumed.by_outcome[k] .. " " .. k
    end
    lines[#lines + 1] = ("Resumed run %s: %d step%s it left open settled by read-back (%s)."):format(
      tostring(result.resumed.of_run), result.resumed.settled, result.resumed.settled == 1 and "" or "s",
      #parts > 0 and table.concat(parts, ", ") or "none")
  end
  local rows, total = {}, { "total" }
  for i = 1, #RESULT_COLUMNS do total[i + 1] = 0 end
  for _, name in ipairs(result.order) do
    local c = result.systems[name]
    local r = { name }
    for i, k in ipairs(RESULT_COLUMNS) do
      r[i + 1] = c[k]
      total[i + 1] = total[i + 1] + c[k]
    end
    rows[#rows + 1] = r
  end
  local headers = { "SYSTEM" }
  for _, k in ipairs(RESULT_COLUMNS) do headers[#headers + 1] = k:upper() end
  for _, l in ipairs(tbl.render(headers, rows, { total = total })) do lines[#lines + 1] = l end
  local failures = {}
  for _, s in ipairs(result.steps) do
    if s.outcome ~= "ok" and s.outcome ~= "exists" then failures[#failures + 1] = s end
  end
  if #failures > 0 then
    lines[#lines + 1] = ""
    lines[#lines + 1] = ("%d step%s did not succeed:"):format(#failures, #failures == 1 and "" or "s")
    for i, s in ipairs(failures) do
      if i > 20 then lines[#lines + 1] = ("  ... and %d more (provision journal %s)"):format(#failures - 20,
        tostring(result.run_id or "")) break end
      lines[#lines + 1] = ("  %s %s %s: %s: %s"):format(s.system, s.action, s.key, tostring(s.outcome),
        tostring(s.error or "not applied"))
    end
  end
  if #result.invitations > 0 then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "Invitation links (each holds a key: pass it to that person only; not kept in the journal):"
    local inv = {}
    for _, v in ipairs(result.invitations) do inv[#inv + 1] = { v.key, v.employee_type or "", v.link } end
    for _, l in ipairs(tbl.render({ "EMAIL", "TYPE", "LINK" }, inv)) do lines[#lines + 1] = "  " .. l end
  end
  if result.error then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "Stopped: " .. tostring(result.error)
  end
  lines[#lines + 1] = ""
  local e = result.engine or {}
  lines[#lines + 1] = ("%s in %.1f s (%d requests)%s."):format(result.ok and "Done" or "Finished with failures",
    e.elapsed or 0, e.requests or 0,
    result.run_id and (", journal run " .. result.run_id .. (opts.journal and (" in " .. opts.journal) or "")) or "")
  return lines
end

local function counts_text(c)
  local parts = {}
  for _, k in ipairs(sorted(c)) do
    if k ~= "total" and k ~= "unsettled" and c[k] > 0 then parts[#parts + 1] = c[k] .. " " .. k end
  end
  if (c.unsettled or 0) > 0 then parts[#parts + 1] = c.unsettled .. " unsettled" end
  return table.concat(parts, ", ")
end

function view.runs(runs)
  local rows = {}
  for _, r in ipairs(runs) do
    rows[#rows + 1] = { r.id, r.status, r.started_at or "", r.ended_at or "",
      (r.who or "?") .. "@" .. (r.host or "?"), r.resume_of and ("resumes " .. r.resume_of) or "",
      tostring(r.roster_digest):gsub("^sha256:", ""):sub(1, 12), r.counts.total, counts_text(r.counts) }
  end
  if #rows == 0 then return { "The journal holds no runs." } end
  return tbl.render({ "RUN", "STATUS", "STARTED", "ENDED", "BY", "", "ROSTER", "STEPS", "OUTCOMES" }, rows,
    { align = { [1] = "right", [8] = "right" } })
end

function view.run(r)
  local lines = {
    ("run %d: %s, %s (%s@%s, pid %s)"):format(r.id, r.status, tostring(r.mode), tostring(r.who), tostring(r.host),
      tostring(r.pid)),
    ("  started %s, ended %s"):format(tostring(r.started_at), tostring(r.ended_at or "-")),
    ("  roster %s; systems %s"):format(tostring(r.roster_digest), table.concat(r.systems or {}, ", ")),
  }
  if r.resume_of then lines[#lines + 1] = "  resumes run " .. r.resume_of end
  if r.resumed_by then lines[#lines + 1] = "  resumed by run " .. r.resumed_by end
  if r.argv_summary then lines[#lines + 1] = "  command: " .. r.argv_summary end
  lines[#lines + 1] = "  steps: " .. r.counts.total .. (r.counts.total > 0 and (" (" .. counts_text(r.counts) .. ")") or "")
  for _, sys in ipairs(r.by_system) do
    lines[#lines + 1] = ""
    lines[#lines + 1] = sys.system .. ":"
    local rows = {}
    for _, person in ipairs(sys.people) do
      for _, s in ipairs(person.steps) do
        local how = s.outcome and (s.settled_by == "read_back" and "read-back" or "answer") or ""
        if s.settled_in and s.settled_in ~= r.id then how = how .. " (run " .. s.settled_in .. ")" end
        rows[#rows + 1] = { person.key, s.action, s.operation or "", s.outcome or "UNSETTLED",
          s.status or "", how, s.settled_at or s.intended_at or "", s.message or "" }
      end
    end
    for _, l in ipairs(tbl.render({ "KEY", "ACTION", "OPERATION", "OUTCOME", "STATUS", "BY", "AT", "MESSAGE" },
                                  rows, { align = { [5] = "right" } })) do
      lines[#lines + 1] = "  " .. l
    end
  end
  return lines
end

return view
