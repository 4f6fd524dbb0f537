-- sandbox/apis/document360.lua: Document360 TeamsApi (10 operations, /v2/Teams...)
-- under /document360. Header api_token. Every response is the envelope
-- {result|data, success, errors[], warnings[], information[]}; query names are
-- camelCase (emailId, isAnSsoUser), body fields snake_case; skip/take paging.
-- Quirk kept on purpose (see specs/README.md): adding a member with an
-- unknown group id answers 400 with success = true and a non-empty errors[].
-- luacheck: max line length 210
local json = require "sandbox.json"
local util = require "sandbox.util"
local auth = require "sandbox.auth"

local M = { name = "document360", prefix = "/document360" }

local function envelope(fields, success, errors, warnings)
  local e = fields or {}
  e.success = success
  e.errors = json.array(errors or {})
  e.warnings = json.array(warnings or {})
  e.information = json.array()
  return e
end

local function error_item(description, code)
  return { description = description, error_code = code, stack_trace = json.null, custom_data = json.null }
end

function M.error_body(status, message)
  return envelope(nil, false, { error_item(message, tostring(status)) })
end

local function fail(status, description, code, success)
  return status, envelope(nil, success or false, { error_item(description, code or "BadRequest") })
end

function M.authenticate(req, cfg)
  return auth.document360(req, cfg)
end

local function d3(ctx) return ctx.data.d360 end

local function role_by_id(ctx, id)
  for _, r in ipairs(d3(ctx).roles) do if r.id == id then return r end end
end

local function group_by_id(ctx, id)
  for _, g in ipairs(d3(ctx).groups) do if g.id == id then return g end end
end

local function nullable(v) if v == nil then return json.null end return v end

local function summary(ctx, u)
  local role = role_by_id(ctx, u.portal_role_id)
  return {
    user_id = u.user_id, first_name = nullable(u.first_name), last_name = nullable(u.last_name),
    email_id = u.email_id, profile_logo_url = nullable(u.profile_logo_url),
    portal_role = role and role.title or json.null,
    last_login_at = u.last_login_at and util.iso8601(u.last_login_at) or json.null,
  }
end

local function complete(ctx, u)
  local role = role_by_id(ctx, u.portal_role_id)
  local content_roles = json.array()
  for _, p in ipairs(u.content_permissions or {}) do
    local r = role_by_id(ctx, p.associated_content_role_id)
    local scope = type(p.access_scope) == "table" and p.access_scope or {}
    content_roles[#content_roles + 1] = {
      role_id = p.associated_content_role_id, role_name = r and r.title or json.null,
      access_scope_level = math.tointeger(tonumber(scope.access_level)) or 0,
    }
  end
  local groups = json.array()
  for _, gid in ipairs(u.groups or {}) do
    local g = group_by_id(ctx, gid)
    if g then
      groups[#groups + 1] = { id = g.id, title = g.title, description = nullable(g.description),
                              content_role_infos = json.array() }
    end
  end
  local out = summary(ctx, u)
  out.portal_role = role and { role_id = role.id, role_name = role.title } or json.null
  out.content_roles = content_roles
  out.associated_groups = groups
  return out
end

-- Team accounts by lower-cased email (sandbox/state.lua builds it; add and
-- delete keep it); an entry is checked against the account on lookup.
local function find_by_email(ctx, email)
  local le = util.lower(email)
  local id = type(le) == "string" and d3(ctx).by_email[le]
  local u = id and d3(ctx).users[id]
  if u and util.lower(u.email_id) == le then return u end
end

local function body_object(ctx)
  local body, e = ctx:body_json()
  if type(body) ~= "table" or (json.is_array(body) and #body > 0) then
    return nil, e or "request body must be a JSON object"
  end
  return body
end

-- Validates a content_permissions list; returns a copy or nil, message.
local function content_permissions(ctx, list)
  if type(list) ~= "table" then return nil, "content_permissions is required" end
  local out = {}
  for i, p in ipairs(list) do
    if type(p) ~= "table" or type(p.associated_content_role_id) ~= "string" then
      return nil, "content_permissions[" .. (i - 1) .. "].associated_content_role_id is required"
    end
    local r = role_by_id(ctx, p.associated_content_role_id)
    if not r or r.role_type ~= 1 then
      return nil, "Invalid content role id " .. p.associated_content_role_id
    end
    if type(p.access_scope) ~= "table" or p.access_scope.access_level == nil then
      return nil, "content_permissions[" .. (i - 1) .. "].access_scope.access_level is required"
    end
    local lvl = tonumber(p.access_scope.access_level)
    if not lvl or lvl < 0 or lvl > 6 then return nil, "access_level must be 0-6" end
    out[#out + 1] = util.deep_copy(p)
  end
  return out
end

local function bool_query(v)
  if v == nil then return false end
  v = v:lower()
  if v == "true" then return true end
  if v == "false" then return false end
  return nil
end

local function email_exists(ctx)
  local email = ctx.query.emailId
  if not email or email == "" then return fail(400, "The emailId field is required.", "ValidationError") end
  local sso = bool_query(ctx.query.isAnSsoUser)
  if sso == nil then return fail(400, "isAnSsoUser must be true or false", "ValidationError") end
  local u = find_by_email(ctx, email)
  if u and sso and not u.is_sso_user then u = nil end
  return 200, envelope({ data = { exists = u ~= nil, user_id = u and u.user_id or json.null } }, true)
end

local function list(ctx)
  local skip = tonumber(ctx.query.skip or "0")
  local take = tonumber(ctx.query.take or "20")
  if not skip or skip < 0 or skip ~= math.floor(skip) then return fail(400, "skip must be a non-negative integer", "ValidationError") end
  if not take or take < 0 or take ~= math.floor(take) then return fail(400, "take must be a non-negative integer", "ValidationError") end
  local out = json.array()
  local order = d3(ctx).order
  for i = skip + 1, math.min(#order, skip + take) do
    out[#out + 1] = summary(ctx, d3(ctx).users[order[i]])
  end
  return 200, envelope({ result = out }, true)
end

local function groups(ctx)
  local out = json.array()
  for _, g in ipairs(d3(ctx).groups) do
    out[#out + 1] = { group_id = g.id, title = g.title, description = nullable(g.description) }
  end
  return 200, envelope({ result = out }, true)
end

local function roles(ctx)
  local out = json.array()
  for _, r in ipairs(d3(ctx).roles) do
    out[#out + 1] = { id = r.id, title = r.title, description = nullable(r.description),
                      is_system_role = r.is_system_role, role_type = r.role_type }
  end
  return 200, envelope({ result = out }, true)
end

local function add(ctx)
  local body, e = body_object(ctx)
  if not body then return fail(400, e, "ValidationError") end
  local email = body.email_id
  if type(email) ~= "string" or not email:match("^[^@%s]+@[^@%s]+%.[^@%s]+$") then
    return fail(400, "The email_id field is required and must be a valid email address.", "ValidationError")
  end
  if type(body.invited_by) ~= "string" or body.invited_by == "" then
    return fail(400, "The invited_by field is required.", "ValidationError")
  end
  local role = type(body.associated_portal_role_id) == "string" and role_by_id(ctx, body.associated_portal_role_id)
  if not role or role.role_type ~= 0 then
    return fail(400, "Invalid portal role id", "InvalidPortalRole")
  end
  local perms, perr = content_permissions(ctx, body.content_permissions)
  if not perms then return fail(400, perr, "ValidationError") end
  if find_by_email(ctx, email) then
    return fail(400, "Existing team member", "ExistingTeamMember")
  end
  local gids = {}
  if body.associated_groups ~= nil and body.associated_groups ~= json.null then
    if type(body.associated_groups) ~= "table" then return fail(400, "associated_groups must be a list", "ValidationError") end
    for _, gid in ipairs(body.associated_groups) do
      if not group_by_id(ctx, gid) then
        -- the documented oddity: a 400 that still says success = true
        return fail(400, "Invalid group id " .. tostring(gid), "InvalidGroup", true)
      end
      gids[#gids + 1] = gid
    end
  end
  local id = ctx.data.ids:next("uuid")
  local function str(v) if type(v) == "string" then return v end end
  d3(ctx).users[id] = {
    user_id = id, email_id = email, first_name = str(body.first_name), last_name = str(body.last_name),
    portal_role_id = role.id, content_permissions = perms, groups = gids,
    is_sso_user = body.is_sso_user == true, invited_by = body.invited_by, last_login_at = nil,
  }
  table.insert(d3(ctx).order, id)
  d3(ctx).by_email[email:lower()] = id
  return 200, envelope({ result = { id = id } }, true)
end

local function get(ctx)
  local u = d3(ctx).users[ctx.params.userId]
  if not u then return fail(400, "User not found", "UserNotFound") end
  return 200, envelope({ result = complete(ctx, u) }, true)
end

local function delete(ctx)
  local id = ctx.params.userId
  if not d3(ctx).users[id] then return fail(400, "User not found", "UserNotFound") end
  local gone = d3(ctx).users[id]
  d3(ctx).users[id] = nil
  if gone and gone.email_id then d3(ctx).by_email[gone.email_id:lower()] = nil end
  for i, x in ipairs(d3(ctx).order) do
    if x == id then table.remove(d3(ctx).order, i); break end
  end
  return 200, envelope(nil, true)
end

local function edit(ctx, apply)
  local u = d3(ctx).users[ctx.params.userId]
  if not u then return fail(400, "User not found", "UserNotFound") end
  local body, e = body_object(ctx)
  if not body then return fail(400, e, "ValidationError") end
  local status, env = apply(u, body)
  if status then return status, env end
  return 200, envelope({ result = true }, true)
end

local function put_portal(ctx)
  return edit(ctx, function(u, body)
    local role = type(body.associated_portal_role_id) == "string" and role_by_id(ctx, body.associated_portal_role_id)
    if not role or role.role_type ~= 0 then return fail(400, "Invalid portal role id", "InvalidPortalRole") end
    u.portal_role_id = role.id
  end)
end

local function put_content(ctx)
  return edit(ctx, function(u, body)
    local perms, perr = content_permissions(ctx, body.content_permissions)
    if not perms then return fail(400, perr, "ValidationError") end
    u.content_permissions = perms
  end)
end

local function put_groups(ctx)
  return edit(ctx, function(u, body)
    if type(body.associated_groups) ~= "table" then return fail(400, "The associated_groups field is required.", "ValidationError") end
    local gids = {}
    for _, gid in ipairs(body.associated_groups) do
      if not group_by_id(ctx, gid) then return fail(400, "Invalid group id " .. tostring(gid), "InvalidGroup") end
      gids[#gids + 1] = gid
    end
    u.groups = gids
  end)
end

M.routes = {
  { "GET", "/v2/Teams/email-exists", "v2_teams_email_exists_get", email_exists },
  { "GET", "/v2/Teams", "v2_teams_get", list },
  { "GET", "/v2/Teams/groups", "v2_teams_groups_get", groups },
  { "POST", "/v2/Teams", "v2_teams_post", add },
  { "GET", "/v2/Teams/roles", "v2_teams_roles_get", roles },
  { "PUT", "/v2/Teams/{userId}/content", "v2_teams_user_id_content_put", put_content },
  { "DELETE", "/v2/Teams/{userId}", "v2_teams_user_id_delete", delete },
  { "GET", "/v2/Teams/{userId}", "v2_teams_user_id_get", get },
  { "PUT", "/v2/Teams/{userId}/groups", "v2_teams_user_id_groups_put", put_groups },
  { "PUT", "/v2/Teams/{userId}/portal", "v2_teams_user_id_portal_put", put_portal },
}

return M
