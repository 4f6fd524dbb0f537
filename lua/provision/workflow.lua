-- Provisioning steps that can be run again without harm: each looks first,
-- changes only what differs, and says what it did. Every function returns
-- `record, action` (action: "created", "updated", "unchanged", "deleted",
-- "absent") or `nil, err`.
local json = require("provision.json")
local errors = require("provision.errors")

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

local function roles_body(roles)
  local out = {}
  for app, list in pairs(roles or {}) do out[app] = json.array(sorted_copy(list)) end
  return out
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
  local u, err = workflow.find_agilicus_user(users, person.org_id, person.email)
  if u == nil then return nil, err end
  local action = "unchanged"
  if not u then
    u, err = users:create_user({ email = person.email, first_name = person.first_name,
                                 last_name = person.last_name, org_id = person.org_id,
                                 roles = roles_body(person.roles) })
    if not u then
      if err.status ~= 409 then return nil, err end
      -- created meanwhile by someone else: take theirs
      u, err = workflow.find_agilicus_user(users, person.org_id, person.email)
      if not u then return nil, err end
    else
      action = "created"
    end
  end
  if person.roles and not same_roles(u.roles, person.roles) then
    local ok, rerr = users:replace_user_role(u.id, { org_id = person.org_id,
      replace_user_role_request = { roles = roles_body(person.roles) } })
    if not ok then return nil, rerr end
    u.roles = person.roles
    if action == "unchanged" then action = "updated" end
  end
  return u, action
end

function workflow.remove_agilicus_user(users, org_id, email)
  local u, err = workflow.find_agilicus_user(users, org_id, email)
  if u == nil then return nil, err end
  if not u then return true, "absent" end
  local ok, derr = users:delete_user(org_id, u.id)
  if not ok then
    if derr.status == 404 then return true, "absent" end
    return nil, derr
  end
  return u, "deleted"
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

-- Document360 wants the id of an existing account as `invited_by`: the
-- first Owner's, unless the caller names one.
local function inviter(teams, person)
  if person.invited_by then return person.invited_by end
  local first
  for member, err in teams:each("v2_teams_get") do
    if not member then return nil, err end
    first = first or member.user_id
    if lower(member.portal_role) == "owner" then return member.user_id end
  end
  if first then return first end
  return nil, errors.new({ kind = "not_found", class = "NotFoundError", operation = "workflow.ensure_document360_member",
                           message = "Document360 has no team account to invite from; give person.invited_by" })
end

-- person: {email, first_name, last_name, portal_role = "Editor",
--          invited_by = user id (optional), content_permissions = {...} (optional)}
function workflow.ensure_document360_member(teams, person)
  local found, err = teams:v2_teams_email_exists_get(person.email)
  if not found then return nil, err end
  local role
  if person.portal_role then
    role, err = workflow.find_portal_role(teams, person.portal_role)
    if not role then return nil, err end
  end
  if not found.exists then
    local by, ierr = inviter(teams, person)
    if not by then return nil, ierr end
    local created, cerr = teams:v2_teams_post({ add_team_account_customer = {
      email_id = person.email, first_name = person.first_name, last_name = person.last_name,
      associated_portal_role_id = role and role.id, invited_by = by,
      content_permissions = person.content_permissions or json.array(),
      skip_sso_invitation_email = true } })
    if not created then return nil, cerr end
    return { user_id = created.id or created.user_id, email = person.email }, "created"
  end
  local member, gerr = teams:v2_teams_user_id_get(found.user_id)
  if not member then return nil, gerr end
  local current = type(member.portal_role) == "table" and member.portal_role.role_id
  if role and current ~= role.id then
    local ok, perr = teams:v2_teams_user_id_portal_put(found.user_id,
      { edit_portal_role_customer = { associated_portal_role_id = role.id } })
    if not ok then return nil, perr end
    return member, "updated"
  end
  return member, "unchanged"
end

function workflow.remove_document360_member(teams, email)
  local found, err = teams:v2_teams_email_exists_get(email)
  if not found then return nil, err end
  if not found.exists then return true, "absent" end
  local ok, derr = teams:v2_teams_user_id_delete(found.user_id)
  if not ok then return nil, derr end
  return found, "deleted"
end

---------------------------------------------------------------- Outpost

local function same_metadata(a, b)
  if a == json.null then a = nil end   -- Tenant.metadata is nullable
  if b == json.null then b = nil end
  a, b = a or {}, b or {}
  for k, v in pairs(a) do if b[k] ~= v then return false end end
  for k, v in pairs(b) do if a[k] ~= v then return false end end
  return true
end

-- Looks the tenant up first, so that a re-run with the same metadata
-- writes nothing; upsert is idempotent anyway.
-- The older server generation (v0) keeps no metadata: there an existing
-- tenant is left as it is.
function workflow.ensure_tenant(tenants, tenant_id, metadata)
  local t, err = tenants:get({ tenant_id = tenant_id })
  if not t and err.status ~= 404 then return nil, err end
  if t and (tenants.generation == "v0" or same_metadata(t.metadata, metadata)) then return t, "unchanged" end
  local opts = { tenant_id = tenant_id }
  if tenants.generation ~= "v0" and metadata then opts.params = { metadata = metadata } end
  local saved, uerr = tenants:upsert(opts)
  if not saved then return nil, uerr end
  return saved, t and "updated" or "created"
end

function workflow.remove_tenant(tenants, tenant_id)
  local ok, err = tenants:delete({ tenant_id = tenant_id })
  if not ok then
    if err.status == 404 then return true, "absent" end
    return nil, err
  end
  return true, "deleted"
end

workflow.same_roles = same_roles
return workflow
