-- Who exists where: one row per email across Agilicus, Document360 and
-- Outpost (tenants carry the owner's email in their metadata), plus the
-- DocSpace head count (PortalUsersApi has no listing).
--   lua5.4 examples/audit.lua
local apis = require("examples.connect")

local people, order = {}, {}
local function mark(email, column, value)
  if type(email) ~= "string" then return end
  local key = email:lower()
  if not people[key] then people[key] = {}; order[#order + 1] = key end
  people[key][column] = value
end

local function walk(client, op, opts, f)
  for item, err in client:each(op, opts) do
    if not item then io.stderr:write("audit: ", tostring(err), "\n"); os.exit(1) end
    f(item)
  end
end

walk(apis.agilicus, "list_users", { org_id = apis.agilicus_org, limit = 20 }, function(u)
  mark(u.email, "agilicus", u.status or "active")
end)
walk(apis.document360, "v2_teams_get", { take = 20 }, function(m)
  mark(m.email_id, "d360", m.portal_role or "member")
end)
walk(apis.outpost, "list", { limit = 20 }, function(t)
  mark(type(t.metadata) == "table" and t.metadata.email, "outpost", t.id)
end)
local count = assert(apis.docspace:get_portal_users_count())

table.sort(order)
local line = "%-40s %-10s %-14s %s"
print(line:format("email", "Agilicus", "Document360", "Outpost tenant"))
for _, email in ipairs(order) do
  local p = people[email]
  print(line:format(email, p.agilicus or "-", p.d360 or "-", p.outpost or "-"))
end
print(("%d people; DocSpace reports %d portal users"):format(#order, count))
