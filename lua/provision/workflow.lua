-- Provisioning steps that can be run again without harm: each looks first,
-- changes only what differs, and says what it did. Every function returns
-- `record, action` (action: "created", "updated", "unchanged", "deleted",
-- "absent") or `nil, err`.
--
-- Each is a one-person, one-system run of the reconciler
-- (provision.reconcile): the record is read by its key, compared field by
-- field as the API's resource says, and the steps of that plan applied
-- (without a journal). A field the caller leaves out is not managed.
local json = require("provision.json")
local errors = require("provision.errors")
local reconcile = require("provision.reconcile")

local workflow = {}

local function lower(s) return type(s) == "string" and s:lower() or s end

local function sorted_copy(list)
  local c = {}
  for i, v in ipairs(list or {}) do c[i] = v end
  table.sort(c)
  return c
end

-- Role maps {app = {role, ...}} compared without regard to order.
local function same_roles(a, b)
  a, b = a or {}, b or {}
  for app, list in pairs(b) do
    local x, y = sorted_copy(a[app]), sorted_copy(list)
    if #x ~= #y then return false end
    for i = 1, #x do if x[i] ~= y[i] then return false end end
  end
  for app, list in pairs(a) do
    if b[app] == nil and #list > 0 then return false end
  end
  return true
end

local WORDS = { create = "created", update = "updated", unchanged = "unchanged", remove = "deleted" }

-- Plans and applies one row (or, with prune, one removal) on one system.
-- Returns the plan (its steps carry their outcomes) and the record it read.
local function run_one(system, client, key, row, opts)
  local popts = { keys = { [system] = { key } }, context = opts.context, lookups = opts.lookups,
                  prune = opts.prune, max_removals = 1, email = "optional", concurrency = 4,
                  allow_empty = not row }
  local rows = row and { row } or {}
  local p, err = reconcile.plan(rows, { [system] = client }, popts)
  if not p then return nil, err end
  local result, aerr = p:apply({ journal = false, concurrency = 4, allow_mass_removal = true })
  if not result then return nil, aerr end
  if result.error then return nil, result.error end
  local sys = p.by_system[system]
  local record = p.states[system].observed[require("provision.reconcile.refresh").norm(sys.resource, key)]
  return p, nil, record
end

-- What one run did: record, action, or nil, err; `again` when a create met
-- a record someone else made meanwhile (the caller then looks again).
local function outcome(p, record)
  local entry = p.systems[1]
  if #entry.steps == 0 then return true, "absent" end
  local action, value = "unchanged", record
  for _, step in ipairs(entry.steps) do
    if step.action ~= "unchanged" then
      if step.outcome == "exists" then return nil, nil, true end
      if step.outcome ~= "ok" then
        return nil, step.error or errors.new({ kind = "api", operation = step.operation,
          message = "step " .. step.action .. " ended " .. tostring(step.outcome) })
      end
      if step.action == "create" then
        action, value = "created", step.value
      elseif step.action == "update" then
        if action ~= "created" then action = "updated" end
      elseif step.action == "remove" then
        action = step.gone and "absent" or "deleted"
      end
    end
  end
  return value, WORDS[action] or action
end

-- One removal (prune of one key): `deleted` with what was there (true when
-- `gone_value` is true), or true, "absent"; nil, err.
local function remove(system, client, key, context, gone_value)
  local p, err, record = run_one(system, client, key, nil, { context = context, prune = true })
  if not p then return nil, err end
  local value, action = outcome(p, record)
  if value == nil then return nil, action end
  if action == "deleted" then return gone_value and true or record, "deleted" end
  return true, "absent"
end

local function ensure(system, client, key, row, opts)
  local p, err, record = run_one(system, client, key, row, opts)
  if not p then return nil, err end
  local value, action, again = outcome(p, record)
  if again then
    -- created meanwhile by someone else: take theirs, and change what differs
    p, err, record = run_one(system, client, key, row, opts)
    if not p then return nil, err end
    value, action = outcome(p, record)
    if value == nil and action == nil then
      return nil, errors.new({ kind = "api", operation = "workflow", message = "the record keeps appearing" })
    end
  end
  return value, action, p, record
end

---------------------------------------------------------------- Agilicus

-- The user with exactly this email in the org, or false.
function workflow.find_agilicus_user(users, org_id, email)
  local page, err = users:list_users({ email = email, org_id = org_id, limit = 10 })
  if not page then return nil, err end
  for _, u in ipairs(page.users or {}) do
    if lower(u.email) == lower(email) then return u end
  end
  return false
end

-- person: {email, first_name, last_name, org_id, roles = {app = {role...}}}
function workflow.ensure_agilicus_user(users, person)
  local row = { email = person.email, first_name = person.first_name, last_name = person.last_name,
                agilicus_roles = person.roles }
  local value, action, _, record = ensure("agilicus", users, person.email, row,
                                          { context = { org_id = person.org_id } })
  if value == nil then return nil, action end
  if action == "updated" and type(record) == "table" then
    if person.roles then record.roles = person.roles end
    for _, k in ipairs({ "first_name", "last_name" }) do
      if person[k] ~= nil then record[k] = person[k] end
    end
    value = record
  end
  return value, action
end

function workflow.remove_agilicus_user(users, org_id, email)
  return remove("agilicus", users, email, { org_id = org_id })
end

---------------------------------------------------------------- Document360

function workflow.find_portal_role(teams, title)
  local roles, err = teams:v2_teams_roles_get()
  if not roles then return nil, err end
  for _, r in ipairs(roles) do
    if lower(r.title) == lower(title) and (r.role_type == nil or r.role_type == 0) then return r end
  end
  return nil, errors.new({ kind = "not_found", class = "NotFoundError", operation = "workflow.find_portal_role",
                           message = "Document360 has no portal role titled '" .. tostring(title) .. "'" })
end

-- person: {email, first_name, last_name, portal_role = "Editor",
--          invited_by = user id (optional), content_permissions = {...} (optional)}
-- Document360 wants the id of an existing account as `invited_by`: the
-- first Owner's, unless the caller names one.
function workflow.ensure_document360_member(teams, person)
  if type(person.portal_role) ~= "string" then
    return nil, errors.invalid("workflow.ensure_document360_member", "person.portal_role (a portal role title) is required")
  end
  local row = { email = person.email, first_name = person.first_name, last_name = person.last_name,
                document360_role = person.portal_role,
                document360_content_permissions = person.content_permissions or json.array() }
  local lookups = person.invited_by and { document360 = { inviter = person.invited_by } } or nil
  local value, action = ensure("document360", teams, person.email, row, { lookups = lookups })
  if value == nil then
    if type(action) == "table" and action.class == "RosterError" then
      -- an unknown role title: the error find_portal_role gives
      return nil, errors.new({ kind = "not_found", class = "NotFoundError",
        operation = "workflow.ensure_document360_member",
        message = "Document360 has no portal role titled '" .. tostring(person.portal_role) .. "'" })
    end
    return nil, action
  end
  if action == "created" then
    local created = type(value) == "table" and value or {}
    return { user_id = created.id or created.user_id, email = person.email }, "created"
  end
  return value, action
end

function workflow.remove_document360_member(teams, email)
  return remove("document360", teams, email)
end

---------------------------------------------------------------- Outpost

-- Looks the tenant up first, so that a re-run with the same metadata
-- writes nothing; upsert is idempotent anyway.
-- The older server generation (v0) keeps no metadata: there an existing
-- tenant is left as it is.
function workflow.ensure_tenant(tenants, tenant_id, metadata)
  local row = { outpost_tenant = tenant_id, outpost_metadata = metadata }
  local value, action = ensure("outpost", tenants, tenant_id, row, {})
  return value, action
end

function workflow.remove_tenant(tenants, tenant_id)
  return remove("outpost", tenants, tenant_id, nil, true)
end

workflow.same_roles = same_roles
return workflow
