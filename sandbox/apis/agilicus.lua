-- sandbox/apis/agilicus.lua: Agilicus UsersApi (all 45 operations of the
-- reconstructed spec) under /agilicus. Bearer token on every operation;
-- errors are {error = "..."}. Users are per organisation: the same email may
-- exist once per org_id (create_user answers 409 for a second one).
-- list_users pages by email keyset (previous_email, search_direction, limit).
-- The other resources (MFA methods, upstream identities, service accounts,
-- user metadata, user requests) are generic {metadata, spec, status} records.
-- luacheck: max line length 210
local json = require "sandbox.json"
local util = require "sandbox.util"
local auth = require "sandbox.auth"

local M = { name = "agilicus", prefix = "/agilicus" }

function M.error_body(_, message)
  return { error = message }
end

function M.authenticate(req, cfg)
  return auth.agilicus(req, cfg)
end

local function err(status, message) return status, { error = message } end

local function ag(ctx) return ctx.data.agilicus end

local function truthy(v)
  if v == nil then return nil end
  v = tostring(v):lower()
  if v == "true" or v == "1" then return true end
  if v == "false" or v == "0" then return false end
  return nil
end

local function parse_limit(ctx, default)
  local l = ctx.query.limit
  if l == nil then return default or 500 end
  local n = tonumber(l)
  if not n or n ~= math.floor(n) or n < 0 then return nil end
  return math.floor(n)
end

local function object_body(ctx)
  local body, e = ctx:body_json()
  if type(body) ~= "table" or (json.is_array(body) and #body > 0) then
    return nil, e or "request body must be a JSON object"
  end
  return body
end

-- The spec makes the body optional (requestBody.required: false) on the
-- replace_*/update_user_request/replace_user_role/bulk_update_metadata
-- operations and documents no 400 for them: a request without one changes
-- nothing (the spec's success answer), it is not a 400.
local function no_body(ctx)
  return (ctx.req.body or ""):match("^%s*$") ~= nil
end

-- Users ------------------------------------------------------------------------

local READONLY = { id = true, type = true, created = true, updated = true }

local function render_user(u)
  local out = util.deep_copy(u)
  out.created = util.iso8601(u.created)
  out.updated = util.iso8601(u.updated)
  out.member_of = json.array(out.member_of or {})
  if type(out.roles) ~= "table" or next(out.roles) == nil then out.roles = setmetatable({}, nil) end
  for app, list in pairs(out.roles) do
    if type(list) == "table" then out.roles[app] = json.array(list) end
  end
  return out
end

-- Users by lower-cased email (sandbox/state.lua builds it): every write
-- of a user's email goes through index_add; an entry is checked against the
-- user on each lookup, so one left behind by a delete or an email change is
-- skipped (and dropped).
local function index_add(ctx, u)
  local by = ag(ctx).by_email
  local le = util.lower(u.email)
  if type(le) ~= "string" then return end
  by[le] = by[le] or {}
  by[le][u.id] = true
end

local function candidates(ctx, email)
  local le = util.lower(email)
  local out = {}
  local ids = type(le) == "string" and ag(ctx).by_email[le]
  for id in pairs(ids or {}) do
    local u = ag(ctx).users[id]
    if u and util.lower(u.email) == le then out[#out + 1] = u else ids[id] = nil end
  end
  return out
end

local function find_user(ctx, email, org_id, except_id)
  for _, u in ipairs(candidates(ctx, email)) do
    if u.id ~= except_id and u.org_id == org_id then return u end
  end
end

local function create_user(ctx)
  local body, e = object_body(ctx)
  if not body then return err(400, e) end
  if type(body.email) ~= "string" or not body.email:find("@", 1, true) then
    return err(400, "email is required and must be an email address")
  end
  local org_id = body.org_id ~= json.null and body.org_id or nil
  if find_user(ctx, body.email, org_id) then
    return err(409, "user already exists")
  end
  local now = os.time()
  local u = {}
  for k, v in pairs(body) do if not READONLY[k] and v ~= json.null then u[k] = util.deep_copy(v) end end
  u.id = ctx.data.ids:next("alnum22")
  u.type = "user"
  u.org_id = org_id
  u.status = u.status or "active"
  if u.enabled == nil then u.enabled = u.status ~= "disabled" end
  u.roles = u.roles or {}
  u.member_of = u.member_of or {}
  u.created, u.updated = now, now
  ag(ctx).users[u.id] = u
  index_add(ctx, u)
  return 201, render_user(u)
end

local function matches_text(value, wanted, partial)
  if wanted == nil then return true end
  if type(value) ~= "string" then return false end
  if partial then return value:lower():find(wanted:lower(), 1, true) ~= nil end
  return value:lower() == wanted:lower()
end

local function set_of(list)
  if not list then return nil end
  local s = {}
  for _, v in ipairs(list) do
    -- accept repeated keys and also a JSON-ish '["a","b"]' or 'a,b' value
    for x in v:gsub('[%[%]"]', ""):gmatch("[^,]+") do s[util.trim(x)] = true end
  end
  return s
end

-- Filters shared by list_users and list_combined_user_details; returns the
-- matching users sorted by (email, id), or nil, message.
local function select_users(ctx)
  local q, qa = ctx.query, ctx.query_all
  local partial = truthy(q.allow_partial_match) == true
  local types, statuses = set_of(qa.type), set_of(qa.status)
  local has_roles, orgless = truthy(q.has_roles), truthy(q.orgless_users)
  local has_resource_roles = truthy(q.has_resource_roles)
  local prefix = q.prefix_email_search and q.prefix_email_search:lower()
  local terms = qa.search_params
  local rows = {}
  -- an exact email narrows the scan to that email's users
  local pool = ag(ctx).users
  if q.email and not partial then
    pool = {}
    for _, u in ipairs(candidates(ctx, q.email)) do pool[u.id] = u end
  end
  for _, u in pairs(pool) do
    local ok = matches_text(u.email, q.email, partial)
      and (not q.org_id or u.org_id == q.org_id)
      and (not q.user_id or u.id == q.user_id)
      and matches_text(u.first_name, q.first_name, partial)
      and matches_text(u.last_name, q.last_name, partial)
      and matches_text(u.provider, q.provider, partial)
      and (not types or types[u.type or "user"])
      and (not statuses or statuses[u.status or "active"])
      and (not prefix or (u.email or ""):lower():sub(1, #prefix) == prefix)
      and (orgless == nil or (orgless == (u.org_id == nil)))
      and (has_resource_roles ~= true)
    if ok and has_roles ~= nil then ok = (next(u.roles or {}) ~= nil) == has_roles end
    if ok and q.issuer then
      local org = ag(ctx).orgs[u.org_id or ""]
      ok = org ~= nil and org.issuer == q.issuer
    end
    if ok and (q.upstream_user_id or q.upstream_idp_id) then
      ok = false
      for _, rec in pairs(ag(ctx).upstream) do
        local s = rec.obj.spec or {}
        if rec.owner == u.id and (not q.upstream_user_id or s.upstream_user_id == q.upstream_user_id)
          and (not q.upstream_idp_id or s.upstream_idp_id == q.upstream_idp_id) then ok = true end
      end
    end
    if ok and terms then
      for _, term in ipairs(terms) do
        local t = term:lower()
        local hay = ((u.email or "") .. " " .. (u.first_name or "") .. " " .. (u.last_name or "")):lower()
        if not hay:find(t, 1, true) then ok = false; break end
      end
    end
    if ok then rows[#rows + 1] = u end
  end
  local keys = {}
  for _, u in ipairs(rows) do keys[u] = (u.email or ""):lower() end
  table.sort(rows, function(a, b)
    local ea, eb = keys[a], keys[b]
    if ea ~= eb then return ea < eb end
    return a.id < b.id
  end)
  return rows
end

-- Email keyset page: forwards = emails after previous_email; backwards = the
-- `limit` emails just before it (still in ascending order).
local function keyset_page(ctx, rows, limit)
  local prev = ctx.query.previous_email
  local dir = ctx.query.search_direction or "forwards"
  if dir ~= "forwards" and dir ~= "backwards" then return nil, "search_direction must be forwards or backwards" end
  local page = {}
  if dir == "forwards" then
    for _, u in ipairs(rows) do
      if #page >= limit then break end
      if not prev or prev == "" or (u.email or ""):lower() > prev:lower() then page[#page + 1] = u end
    end
  else
    local before = {}
    for _, u in ipairs(rows) do
      if not prev or prev == "" or (u.email or ""):lower() < prev:lower() then before[#before + 1] = u end
    end
    for i = math.max(1, #before - limit + 1), #before do page[#page + 1] = before[i] end
  end
  return page
end

local function list_users(ctx)
  local limit = parse_limit(ctx)
  if not limit then return err(400, "limit must be a non-negative integer") end
  local page, e = keyset_page(ctx, select_users(ctx), limit)
  if not page then return err(400, e) end
  local users = json.array()
  for i, u in ipairs(page) do users[i] = render_user(u) end
  return 200, { users = users, limit = limit }
end

local function list_combined_user_details(ctx)
  local limit = parse_limit(ctx)
  if not limit then return err(400, "limit must be a non-negative integer") end
  local mfa_enrolled, auto_created = truthy(ctx.query.mfa_enrolled), truthy(ctx.query.auto_created)
  local rows = {}
  for _, u in ipairs(select_users(ctx)) do
    local methods = json.array()
    for _, rec in pairs(ag(ctx).mfa) do
      if rec.owner == u.id then methods[#methods + 1] = util.deep_copy(rec.obj) end
    end
    local enrolled = #methods > 0
    if (mfa_enrolled == nil or mfa_enrolled == enrolled) and (auto_created ~= true) then
      rows[#rows + 1] = { u = u, methods = methods, enrolled = enrolled }
    end
  end
  local users = {}
  for i, r in ipairs(rows) do users[i] = r.u end
  local page, e = keyset_page(ctx, users, limit)
  if not page then return err(400, e) end
  local by_user = {}
  for _, r in ipairs(rows) do by_user[r.u] = r end
  local out = json.array()
  for _, u in ipairs(page) do
    local r = by_user[u]
    out[#out + 1] = {
      metadata = { id = u.id },
      status = { user = render_user(u), mfa_enrolled = r.enrolled, auto_created = false,
                 mfa_challenge_methods = r.methods },
    }
  end
  return 200, { combined_user_details = out, limit = limit }
end

local function the_user(ctx, id)
  local u = ag(ctx).users[id or ctx.params.user_id]
  if not u then return nil end
  if ctx.query.org_id and ctx.route.operation ~= "replace_user_role" and u.org_id ~= ctx.query.org_id then return nil end
  return u
end

local function get_user(ctx)
  local u = the_user(ctx)
  if not u then return err(404, "user does not exist") end
  return 200, render_user(u)
end

local function replace_user(ctx)
  local u = ag(ctx).users[ctx.params.user_id]
  if not u then return err(404, "user does not exist") end
  if no_body(ctx) then return 200, render_user(u) end
  local body, e = object_body(ctx)
  if not body then return err(400, e) end
  local email = body.email ~= nil and body.email ~= json.null and body.email or u.email
  local org_id = body.org_id ~= nil and (body.org_id ~= json.null and body.org_id or nil) or u.org_id
  if find_user(ctx, email, org_id, u.id) then return err(409, "another user in this organisation has that email") end
  local keep = { id = u.id, type = u.type, created = u.created }
  for k in pairs(u) do u[k] = nil end
  for k, v in pairs(body) do if not READONLY[k] and v ~= json.null then u[k] = util.deep_copy(v) end end
  u.id, u.type, u.created, u.updated = keep.id, keep.type, keep.created, os.time()
  u.email, u.org_id = email, org_id
  u.status = u.status or "active"
  u.roles = u.roles or {}
  u.member_of = u.member_of or {}
  index_add(ctx, u)
  return 200, render_user(u)
end

local function delete_user(ctx)
  local u = ag(ctx).users[ctx.params.user_id]
  if not u or u.org_id ~= ctx.params.org_id then return err(404, "user does not exist") end
  ag(ctx).users[u.id] = nil
  return 204
end

local function same_person(ctx, u)
  local out = {}
  for _, x in pairs(ag(ctx).users) do
    if util.lower(x.email) == util.lower(u.email) then out[#out + 1] = x end
  end
  return out
end

local function list_all_user_orgs(ctx)
  local u = ag(ctx).users[ctx.params.user_id]
  if not u then return err(404, "user does not exist") end
  local orgs = json.array()
  for _, x in ipairs(same_person(ctx, u)) do
    local org = ag(ctx).orgs[x.org_id or ""]
    if org and (not ctx.query.issuer or org.issuer == ctx.query.issuer) then
      orgs[#orgs + 1] = util.deep_copy(org)
    end
  end
  table.sort(orgs, function(a, b) return a.id < b.id end)
  return 200, { orgs = orgs }
end

local function user_in_org(ctx, u, org_id)
  if not org_id or u.org_id == org_id then return u end
  for _, x in ipairs(same_person(ctx, u)) do
    if x.org_id == org_id then return x end
  end
end

local function list_all_user_roles(ctx)
  local u = ag(ctx).users[ctx.params.user_id]
  if not u then return err(404, "user does not exist") end
  local x = user_in_org(ctx, u, ctx.query.org_id)
  return 200, { roles = render_user(x or { roles = {} }).roles }
end

local function list_user_permissions(ctx)
  local u = ag(ctx).users[ctx.params.user_id]
  if not u then return err(404, "user does not exist") end
  return 200, { user_id = u.id, org_id = ctx.query.org_id or u.org_id, hosts = json.array() }
end

local function list_all_resource_permissions(ctx)
  if not ctx.query.org_id then return err(400, "org_id is required") end
  local u = ag(ctx).users[ctx.params.user_id]
  if not u then return err(404, "user does not exist") end
  return 200, { user_id = u.id, org_id = ctx.query.org_id, resource_permissions = json.array() }
end

local function replace_user_role(ctx)
  local u = ag(ctx).users[ctx.params.user_id]
  if not u then return err(404, "user does not exist") end
  local x = user_in_org(ctx, u, ctx.query.org_id)
  if not x then return err(404, "user is not a member of that organisation") end
  if no_body(ctx) then return 204 end
  local body, e = object_body(ctx)
  if not body then return err(400, e) end
  local roles = body.roles
  if roles ~= nil and type(roles) ~= "table" then return err(400, "roles must be an object") end
  x.roles = util.deep_copy(roles or {})
  x.updated = os.time()
  return 204
end

local function list_user_guids(ctx)
  local since = ctx.query.updated_since and util.parse_iso8601(ctx.query.updated_since)
  if ctx.query.updated_since and not since then return err(400, "updated_since must be a date-time") end
  local ids = {}
  for id, u in pairs(ag(ctx).users) do
    if not since or u.updated >= since then ids[#ids + 1] = id end
  end
  table.sort(ids)
  return 200, { user_guids = json.array(ids), limit = #ids }
end

local function create_user_identity_update(ctx)
  local u = ag(ctx).users[ctx.params.user_id]
  if not u then return err(404, "user does not exist") end
  local body, e = object_body(ctx)
  if not body then return err(400, e) end
  local spec = type(body.spec) == "table" and body.spec or body
  for _, k in ipairs({ "first_name", "last_name", "email", "external_id" }) do
    if type(spec[k]) == "string" then u[k] = spec[k] end
  end
  u.updated = os.time()
  return 201, body
end

local function list_user_application_access_info(ctx)
  if not ctx.query.org_id or not ctx.query.user_id then return err(400, "org_id and user_id are required") end
  local limit = parse_limit(ctx)
  if not limit then return err(400, "limit must be a non-negative integer") end
  local out = json.array()
  local u = ag(ctx).users[ctx.query.user_id]
  local x = u and user_in_org(ctx, u, ctx.query.org_id)
  if x then
    local apps = {}
    for app in pairs(x.roles or {}) do apps[#apps + 1] = app end
    table.sort(apps)
    for _, app in ipairs(apps) do
      if #out >= limit then break end
      out[#out + 1] = { status = { user_id = x.id, org_id = x.org_id, application_name = app,
                                   roles = json.array(util.deep_copy(x.roles[app])), access_level = "granted" } }
    end
  end
  return 200, { user_application_access_info = out, limit = limit }
end

local function list_user_file_share_access_info(ctx)
  if not ctx.query.org_id or not ctx.query.user_id then return err(400, "org_id and user_id are required") end
  local limit = parse_limit(ctx)
  if not limit then return err(400, "limit must be a non-negative integer") end
  return 200, { user_file_share_access_info = json.array(), limit = limit }
end

local function reset_user_mfa_challenge_methods(ctx)
  local u = ag(ctx).users[ctx.params.user_id]
  if not u then return err(404, "user does not exist") end
  for id, rec in pairs(ag(ctx).mfa) do
    if rec.owner == u.id then ag(ctx).mfa[id] = nil end
  end
  return 204
end

local function list_org_user_roles(ctx)
  local limit = parse_limit(ctx)
  if not limit then return err(400, "limit must be a non-negative integer") end
  local offset = tonumber(ctx.query.offset or 0) or 0
  local rows = {}
  for _, u in pairs(ag(ctx).users) do
    if (not ctx.query.org_id or u.org_id == ctx.query.org_id) and (not ctx.query.user_id or u.id == ctx.query.user_id) then
      rows[#rows + 1] = u
    end
  end
  table.sort(rows, function(a, b) return a.id < b.id end)
  local out = json.array()
  for i = offset + 1, math.min(#rows, offset + limit) do
    local u = rows[i]
    out[#out + 1] = { user_id = u.id, org_id = u.org_id, email = u.email, roles = render_user(u).roles }
  end
  return 200, { org_user_roles = out, limit = limit, offset = offset }
end

-- Generic {metadata, spec, status} collections --------------------------------

local function render_rec(rec) return util.deep_copy(rec.obj) end

local function new_record(ctx, body, owner)
  local now = util.iso8601()
  local obj = util.deep_copy(body)
  local md = type(obj.metadata) == "table" and obj.metadata or {}
  md.id = ctx.data.ids:next("alnum22")
  md.created, md.updated = now, now
  obj.metadata = md
  return { owner = owner, obj = obj }
end

local function spec_field(obj, k)
  local s = type(obj.spec) == "table" and obj.spec or {}
  local v = s[k]
  if v == nil then v = obj[k] end
  return v
end

-- c = {store = "mfa", list_key = "...", per_user = bool, filters = {query name = spec field}, noun = "..."}
local function collection(c)
  local function store(ctx) return ag(ctx)[c.store] end
  local function owner_ok(ctx)
    if not c.per_user then return true end
    return ag(ctx).users[ctx.params.user_id] ~= nil
  end
  local function find(ctx)
    local rec = store(ctx)[ctx.params[c.id_param]]
    if not rec then return nil end
    if c.per_user and rec.owner ~= ctx.params.user_id then return nil end
    for q, field in pairs(c.scope or {}) do
      if ctx.query[q] and tostring(spec_field(rec.obj, field)) ~= ctx.query[q] then return nil end
    end
    return rec
  end
  local h = {}
  function h.create(ctx)
    if not owner_ok(ctx) then return err(404, "user does not exist") end
    local body, e = object_body(ctx)
    if not body then return err(400, e) end
    if c.defaults then
      body.spec = type(body.spec) == "table" and body.spec or {}
      for k, v in pairs(c.defaults) do if body.spec[k] == nil then body.spec[k] = v end end
    end
    if c.per_user then
      body.spec = type(body.spec) == "table" and body.spec or {}
      body.spec[c.owner_field or "user_id"] = body.spec[c.owner_field or "user_id"] or ctx.params.user_id
    end
    local rec = new_record(ctx, body, c.per_user and ctx.params.user_id or nil)
    store(ctx)[rec.obj.metadata.id] = rec
    return 201, render_rec(rec)
  end
  function h.list(ctx)
    if c.required then
      for _, q in ipairs(c.required) do
        if not ctx.query[q] then return err(400, q .. " is required") end
      end
    end
    local limit = parse_limit(ctx)
    if not limit then return err(400, "limit must be a non-negative integer") end
    local rows = {}
    for _, rec in pairs(store(ctx)) do
      local ok = not c.per_user or rec.owner == ctx.params.user_id
      for q, field in pairs(c.filters or {}) do
        local want = ctx.query[q]
        if ok and want ~= nil then ok = tostring(spec_field(rec.obj, field)) == want end
      end
      if ok then rows[#rows + 1] = rec end
    end
    table.sort(rows, function(a, b) return a.obj.metadata.id < b.obj.metadata.id end)
    local out = json.array()
    for i = 1, math.min(#rows, limit) do out[i] = render_rec(rows[i]) end
    return 200, { [c.list_key] = out, limit = limit }
  end
  function h.get(ctx)
    local rec = find(ctx)
    if not rec then return err(404, c.noun .. " does not exist") end
    return 200, render_rec(rec)
  end
  local function write(ctx, merge)
    local rec = find(ctx)
    if not rec then return err(404, c.noun .. " does not exist") end
    if no_body(ctx) then return 200, render_rec(rec) end
    local body, e = object_body(ctx)
    if not body then return err(400, e) end
    local md = rec.obj.metadata
    local obj
    if merge then
      obj = rec.obj
      for k, v in pairs(body) do
        if k == "spec" and type(v) == "table" and type(obj.spec) == "table" then
          for sk, sv in pairs(v) do obj.spec[sk] = util.deep_copy(sv) end
        elseif k ~= "metadata" then
          obj[k] = util.deep_copy(v)
        end
      end
    else
      obj = util.deep_copy(body)
    end
    obj.metadata = md
    md.updated = util.iso8601()
    rec.obj = obj
    return 200, render_rec(rec)
  end
  function h.replace(ctx) return write(ctx, false) end
  function h.update(ctx) return write(ctx, true) end
  function h.delete(ctx)
    local rec = find(ctx)
    if not rec then return err(404, c.noun .. " does not exist") end
    store(ctx)[ctx.params[c.id_param]] = nil
    return 204
  end
  return h
end

local mfa = collection { store = "mfa", list_key = "mfa_challenge_methods", per_user = true,
  id_param = "challenge_method_id", noun = "challenge method",
  filters = { challenge_type = "challenge_type", method_status = "enabled", method_origin = "origin" } }
local upstream = collection { store = "upstream", list_key = "upstream_user_identities", per_user = true,
  owner_field = "local_user_id", id_param = "upstream_user_identity_id", noun = "upstream user identity" }
local service_accounts = collection { store = "service_accounts", list_key = "service_accounts",
  id_param = "service_account_id", noun = "service account", scope = { org_id = "org_id" },
  filters = { org_id = "org_id", user_id = "user_id" }, defaults = { enabled = true } }
local metadata = collection { store = "user_metadata", list_key = "user_metadata",
  id_param = "metadata_id", noun = "user metadata entry", scope = { org_id = "org_id", user_id = "user_id" },
  filters = { user_id = "user_id", org_id = "org_id", app_id = "app_id", data_type = "data_type" } }
local requests = collection { store = "user_requests", list_key = "user_requests",
  id_param = "user_request_id", noun = "user request", scope = { org_id = "org_id", user_id = "user_id" },
  filters = { user_id = "user_id", org_id = "org_id", request_state = "state", request_type = "request_type" },
  defaults = { state = "pending" } }
local access_requests = collection { store = "user_requests", list_key = "access_requests",
  id_param = "user_request_id", noun = "access request", required = { "org_id" },
  filters = { org_id = "org_id", user_id = "user_id", request_state = "state", request_type = "request_type",
              email = "email" } }

local function bulk_update_metadata(ctx)
  if no_body(ctx) then return 204 end
  local body, e = object_body(ctx)
  if not body then return err(400, e) end
  return 204
end

M.routes = {
  { "POST", "/users", "create_user", create_user },
  { "GET", "/users", "list_users", list_users },
  { "GET", "/users/org_user_roles", "list_org_user_roles", list_org_user_roles },
  { "GET", "/users/{user_id}", "get_user", get_user },
  { "PUT", "/users/{user_id}", "replace_user", replace_user },
  { "GET", "/users/{user_id}/host_permissions", "list_user_permissions", list_user_permissions },
  { "POST", "/users/{user_id}/mfa_challenge_methods", "create_challenge_method", mfa.create },
  { "GET", "/users/{user_id}/mfa_challenge_methods", "list_challenge_methods", mfa.list },
  { "DELETE", "/users/{user_id}/mfa_challenge_methods/{challenge_method_id}", "delete_challenge_method", mfa.delete },
  { "GET", "/users/{user_id}/mfa_challenge_methods/{challenge_method_id}", "get_challenge_method", mfa.get },
  { "PUT", "/users/{user_id}/mfa_challenge_methods/{challenge_method_id}", "replace_challenge_method", mfa.replace },
  { "GET", "/users/{user_id}/orgs", "list_all_user_orgs", list_all_user_orgs },
  { "GET", "/users/{user_id}/render_resource_permissions", "list_all_resource_permissions", list_all_resource_permissions },
  { "GET", "/users/{user_id}/render_roles", "list_all_user_roles", list_all_user_roles },
  { "POST", "/users/{user_id}/reset_mfa_challenge_methods", "reset_user_mfa_challenge_methods", reset_user_mfa_challenge_methods },
  { "PUT", "/users/{user_id}/roles", "replace_user_role", replace_user_role },
  { "POST", "/users/{user_id}/upstream_user_identities", "create_upstream_user_identity", upstream.create },
  { "GET", "/users/{user_id}/upstream_user_identities", "list_upstream_user_identities", upstream.list },
  { "DELETE", "/users/{user_id}/upstream_user_identities/{upstream_user_identity_id}", "delete_upstream_user_identity", upstream.delete },
  { "GET", "/users/{user_id}/upstream_user_identities/{upstream_user_identity_id}", "get_upstream_user_identity", upstream.get },
  { "PUT", "/users/{user_id}/upstream_user_identities/{upstream_user_identity_id}", "replace_upstream_user_identity", upstream.replace },
  { "POST", "/users/{user_id}/user_identity_updates", "create_user_identity_update", create_user_identity_update },
  { "GET", "/users_ids", "list_user_guids", list_user_guids },
  { "GET", "/v1/access_requests", "list_access_requests", access_requests.list },
  { "GET", "/v1/combined_user_details", "list_combined_user_details", list_combined_user_details },
  { "DELETE", "/v1/orgs/{org_id}/users/{user_id}", "delete_user", delete_user },
  { "POST", "/v1/service_accounts", "create_service_account", service_accounts.create },
  { "GET", "/v1/service_accounts", "list_service_accounts", service_accounts.list },
  { "DELETE", "/v1/service_accounts/{service_account_id}", "delete_service_account", service_accounts.delete },
  { "GET", "/v1/service_accounts/{service_account_id}", "get_service_account", service_accounts.get },
  { "PUT", "/v1/service_accounts/{service_account_id}", "replace_service_account", service_accounts.replace },
  { "GET", "/v1/user_application_access_info", "list_user_application_access_info", list_user_application_access_info },
  { "GET", "/v1/user_file_share_access_info", "list_user_file_share_access_info", list_user_file_share_access_info },
  { "POST", "/v1/user_metadata", "create_user_metadata", metadata.create },
  { "GET", "/v1/user_metadata", "list_user_metadata", metadata.list },
  { "DELETE", "/v1/user_metadata/{metadata_id}", "delete_user_metadata", metadata.delete },
  { "GET", "/v1/user_metadata/{metadata_id}", "get_user_metadata", metadata.get },
  { "PUT", "/v1/user_metadata/{metadata_id}", "replace_user_metadata", metadata.replace },
  { "POST", "/v1/user_metadata_rpc/bulk_update", "bulk_update_metadata", bulk_update_metadata },
  { "POST", "/v1/user_requests", "create_user_request", requests.create },
  { "GET", "/v1/user_requests", "list_user_requests", requests.list },
  { "DELETE", "/v1/user_requests/{user_request_id}", "delete_user_request", requests.delete },
  { "GET", "/v1/user_requests/{user_request_id}", "get_user_request", requests.get },
  { "PUT", "/v1/user_requests/{user_request_id}", "replace_user_request", requests.replace },
  { "POST", "/v1/user_requests/{user_request_id}", "update_user_request", requests.update },
}

return M
