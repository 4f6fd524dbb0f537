-- sandbox/apis/docspace.lua: ONLYOFFICE DocSpace PortalUsersApi (5 operations)
-- under /docspace. Every response is the envelope
-- {response, count, links, status, statusCode}; errors carry {error = {...}}.
-- 200s carry X-RateLimit-Limit/Remaining/Reset.
local json = require "sandbox.json"
local util = require "sandbox.util"
local auth = require "sandbox.auth"

local M = { name = "docspace", prefix = "/docspace" }

-- EmployeeType: now a string enum, formerly integers 0..4 in this order.
local EMPLOYEE_TYPES = { "All", "RoomAdmin", "Guest", "DocSpaceAdmin", "User" }
local TYPE_NUMBER = {}
for i, name in ipairs(EMPLOYEE_TYPES) do TYPE_NUMBER[name:lower()] = i - 1 end

local function links(ctx)
  return json.array({ { href = ctx.sandbox_url .. ctx.req.target, action = ctx.req.method } })
end

local function envelope(ctx, status, response, count)
  return {
    response = response == nil and json.null or response,
    count = count or (response == nil and 0 or 1),
    links = links(ctx), status = 0, statusCode = status,
  }
end

local ERROR_TYPES = {
  [400] = "System.ArgumentException", [401] = "System.Security.Authentication.AuthenticationException",
  [403] = "System.Security.SecurityException", [404] = "ASC.Web.Api.Exceptions.ItemNotFoundException",
  [405] = "System.NotSupportedException", [429] = "ASC.Api.Core.RateLimitException",
}

function M.error_body(status, message, ctx)
  return {
    response = json.null, count = 0,
    links = ctx and links(ctx) or json.array(),
    status = 1, statusCode = status,
    error = { message = message, type = ERROR_TYPES[status] or "System.Exception", hresult = -2146233088 },
  }
end

function M.authenticate(req, cfg)
  return auth.docspace(req, cfg)
end

function M.decorate(ctx, res)
  if res.status == 200 and ctx.rate then
    res.headers[#res.headers + 1] = { "X-RateLimit-Limit", tostring(ctx.rate.limit) }
    res.headers[#res.headers + 1] = { "X-RateLimit-Remaining", tostring(ctx.rate.remaining) }
    res.headers[#res.headers + 1] = { "X-RateLimit-Reset", tostring(ctx.rate.reset) }
  end
end

local function user_info(u, tenant_id)
  local function date(t) return t and util.iso8601(t) or json.null end
  local function opt(v) if v == nil then return json.null end return v end
  return {
    id = u.id, firstName = opt(u.firstName), lastName = opt(u.lastName), userName = opt(u.userName),
    email = opt(u.email), birthDate = json.null, sex = json.null,
    status = u.status, activationStatus = u.activationStatus,
    terminatedDate = date(u.terminatedDate), title = opt(u.title), workFromDate = date(u.workFromDate),
    contacts = json.null, contactsList = json.array(), location = opt(u.location), notes = json.null,
    removed = u.removed and true or false, lastModified = util.iso8601(u.lastModified),
    tenantId = tenant_id, isActive = u.status == 1 and not u.removed,
    cultureName = opt(u.cultureName), mobilePhone = json.null, mobilePhoneActivationStatus = 0,
    sid = json.null, ldapQouta = 0, ssoNameId = json.null, ssoSessionId = json.null,
    createDate = util.iso8601(u.createDate), createdBy = opt(u.createdBy), spam = false,
    checkActivation = u.activationStatus == 2,
  }
end

local function get_invitation_link(ctx)
  local raw = ctx.params.employeeType or ""
  local n = tonumber(raw)
  local name
  if n then
    if math.type(n) == "integer" or n == math.floor(n) then name = EMPLOYEE_TYPES[math.floor(n) + 1] end
  else
    n = TYPE_NUMBER[raw:lower()]
    name = n and EMPLOYEE_TYPES[n + 1]
  end
  if not name then
    return 400, M.error_body(400, "invalid employeeType '" .. raw .. "': use " ..
      table.concat(EMPLOYEE_TYPES, ", ") .. " or 0-4", ctx)
  end
  local ds = ctx.data.docspace
  local key = ctx.data.ids:next("hex24")
  ds.invitations[#ds.invitations + 1] = { type = name, key = key, created = os.time() }
  local link = string.format("%s/accessright?emplType=%d&key=%s&uid=%s", ctx.base_url,
    TYPE_NUMBER[name:lower()], key, ds.order[1] or "")
  return 200, envelope(ctx, 200, link)
end

local function get_portal_users_count(ctx)
  local n = 0
  for _, u in pairs(ctx.data.docspace.users) do
    if u.status == 1 and not u.removed then n = n + 1 end
  end
  return 200, envelope(ctx, 200, n)
end

local function get_user_by_id(ctx)
  local ds = ctx.data.docspace
  local u = ds.users[(ctx.params.userID or ""):lower()]
  if not u then
    return 404, M.error_body(404, "The user could not be found", ctx)
  end
  return 200, envelope(ctx, 200, user_info(u, ds.tenant_id))
end

local function mark_gift_message_as_read(ctx)
  ctx.data.docspace.gift_read[ctx.cred.name] = os.time()
  return 200, envelope(ctx, 200, nil)
end

-- Query names are Userid and Key; ASP.NET binds them case-insensitively.
local function qget(ctx, name)
  for k, v in pairs(ctx.query) do
    if k:lower() == name then return v end
  end
  return nil
end

local function send_congratulations(ctx)
  local uid, key = qget(ctx, "userid"), qget(ctx, "key")
  local u = uid and ctx.data.docspace.users[uid:lower()]
  if not u or not key or key == "" then
    return 403, M.error_body(403, "No permissions to perform this action", ctx)
  end
  local list = ctx.data.docspace.congratulations
  list[#list + 1] = { user_id = u.id, key = key, time = os.time() }
  return 200, envelope(ctx, 200, nil)
end

M.routes = {
  { "GET", "/api/2.0/portal/users/invite/{employeeType}", "get_invitation_link", get_invitation_link },
  { "GET", "/api/2.0/portal/userscount", "get_portal_users_count", get_portal_users_count },
  { "GET", "/api/2.0/portal/users/{userID}", "get_user_by_id", get_user_by_id },
  { "POST", "/api/2.0/portal/present/mark", "mark_gift_message_as_read", mark_gift_message_as_read },
  { "POST", "/api/2.0/portal/sendcongratulations", "send_congratulations", send_congratulations, "none" },
}

return M
