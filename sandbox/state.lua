-- sandbox/state.lua: the in-memory store of all four APIs, built from a
-- fixture with stable ids. store = state.new(fixture); store.data is the live
-- state; store:reset() rebuilds it from the fixture (same ids again).
--
-- data.docspace.users[id]      DocSpace UserInfo-like records (+ order list)
-- data.outpost.tenants[id]     {id, metadata, topics, destinations_count, created_at, updated_at} (epoch secs)
-- data.agilicus.orgs[id], .users[id], and generic collections (see apis/agilicus.lua)
-- data.d360.users[id] (+ order), .roles (list), .groups (list)
local util = require "sandbox.util"
local default_fixture = require "sandbox.fixture"

local M = {}
local Store = {}
Store.__index = Store

local function email_of(p, domain)
  if p.email then return p.email end
  local ascii = { ["á"] = "a", ["à"] = "a", ["ä"] = "a", ["å"] = "a", ["é"] = "e", ["è"] = "e",
                  ["í"] = "i", ["ó"] = "o", ["ö"] = "o", ["ø"] = "o", ["ú"] = "u", ["ü"] = "u",
                  ["ñ"] = "n", ["ç"] = "c" }
  local function clean(s)
    s = s:lower():gsub("[\xC3][\x80-\xBF]", function(ch) return ascii[ch] or "" end)
    return (s:gsub("'", ""):gsub("[^%w%-]", ""))
  end
  return clean(p.first) .. "." .. clean(p.last) .. "@" .. domain
end

local function build(fx)
  local ids = util.ids(20240115)
  local domain = fx.organisation.domain
  local data = { ids = ids, seq = 0 }

  -- DocSpace
  local ds = { users = {}, order = {}, tenant_id = 1, gift_read = {}, congratulations = {}, invitations = {} }
  local creator
  for _, p in ipairs(fx.people) do
    if p.docspace then
      local id = ids:next("uuid")
      creator = creator or id
      local since = util.parse_iso8601(p.since) or 1500000000
      local status = ({ active = 1, terminated = 2, pending = 4 })[p.docspace_status or "active"]
      local email = email_of(p, domain)
      ds.users[id] = {
        id = id, firstName = p.first, lastName = p.last, userName = email:match("^[^@]+"),
        email = email, title = p.title, location = p.location, department = p.dept,
        type = p.docspace, status = status,
        activationStatus = status == 4 and 2 or 1,
        workFromDate = since, createDate = since, lastModified = since + 86400,
        terminatedDate = status == 2 and since + 3 * 365 * 86400 or nil,
        createdBy = creator, cultureName = "en-GB", removed = false,
      }
      ds.order[#ds.order + 1] = id
    end
  end
  data.docspace = ds

  -- Outpost
  local op = { tenants = {} }
  for _, t in ipairs(fx.outpost_tenants or {}) do
    local created = util.parse_iso8601(t.created_at) or 1700000000
    op.tenants[t.id] = {
      id = t.id, metadata = util.deep_copy(t.metadata), topics = util.deep_copy(t.topics or {}),
      destinations_count = t.destinations_count or 0, created_at = created, updated_at = created,
    }
  end
  data.outpost = op

  -- Agilicus
  local ag = { orgs = {}, org_by_key = {}, users = {}, by_email = {}, groups = {},
               mfa = {}, upstream = {}, service_accounts = {}, user_metadata = {}, user_requests = {} }
  for _, o in ipairs(fx.agilicus_orgs or {}) do
    local org = util.deep_copy(o)
    ag.orgs[o.id] = org
    ag.org_by_key[o.key] = org
  end
  for _, o in ipairs(fx.agilicus_orgs or {}) do
    local org = ag.orgs[o.id]
    if o.parent and ag.org_by_key[o.parent] then org.parent_id = ag.org_by_key[o.parent].id end
    org.key = nil
    org.parent = nil
  end
  local dept_groups = {}
  for _, p in ipairs(fx.people) do
    for _, key in ipairs(p.agilicus or {}) do
      local org = ag.org_by_key[key]
      if org then
        local gk = org.id .. "/" .. p.dept
        if not dept_groups[gk] then
          dept_groups[gk] = { id = ids:next("alnum22"), name = p.dept, org_id = org.id, type = "group" }
          ag.groups[dept_groups[gk].id] = dept_groups[gk]
        end
        local since = util.parse_iso8601(p.since) or 1500000000
        local status = p.agilicus_status or "active"
        local id = ids:next("alnum22")
        ag.users[id] = {
          id = id, email = email_of(p, domain), first_name = p.first, last_name = p.last,
          org_id = org.id, type = "user", status = status, enabled = status ~= "disabled",
          provider = "google.com", external_id = "", roles = util.deep_copy(p.agilicus_roles or {}),
          member_of = { util.deep_copy(dept_groups[gk]) },
          created = since, updated = since + 3600,
        }
        local le = ag.users[id].email:lower()
        ag.by_email[le] = ag.by_email[le] or {}
        ag.by_email[le][id] = true
      end
    end
  end
  data.agilicus = ag

  -- Document360
  local d3 = { users = {}, order = {}, by_email = {}, roles = {}, groups = {}, role_by_title = {}, group_by_title = {} }
  for _, r in ipairs(fx.d360_roles or {}) do
    local role = { id = ids:next("uuid"), title = r.title, description = r.description,
                   is_system_role = r.system and true or false, role_type = r.type or 0 }
    d3.roles[#d3.roles + 1] = role
    d3.role_by_title[r.title] = role
  end
  for _, g in ipairs(fx.d360_groups or {}) do
    local group = { id = ids:next("uuid"), title = g.title, description = g.description }
    d3.groups[#d3.groups + 1] = group
    d3.group_by_title[g.title] = group
  end
  local inviter
  for _, p in ipairs(fx.people) do
    if p.d360 then
      local role = d3.role_by_title[p.d360]
      local id = ids:next("uuid")
      local email = email_of(p, domain)
      inviter = inviter or email
      local groups = {}
      for _, gt in ipairs(p.d360_groups or {}) do
        if d3.group_by_title[gt] then groups[#groups + 1] = d3.group_by_title[gt].id end
      end
      local since = util.parse_iso8601(p.since) or 1500000000
      d3.users[id] = {
        user_id = id, first_name = p.first, last_name = p.last, email_id = email,
        portal_role_id = role and role.id, groups = groups, content_permissions = {},
        last_login_at = since + 400 * 86400, is_sso_user = false, invited_by = inviter,
      }
      d3.order[#d3.order + 1] = id
      d3.by_email[email:lower()] = id
    end
  end
  data.d360 = d3
  return data
end

function M.new(fixture)
  local fx = fixture or default_fixture
  -- sections a custom fixture leaves out come from the default one
  for k, v in pairs(default_fixture) do
    if fx[k] == nil then fx[k] = v end
  end
  local self = setmetatable({ fixture = fx }, Store)
  self:reset()
  return self
end

function Store:reset()
  self.data = build(self.fixture)
  return self.data
end

return M
