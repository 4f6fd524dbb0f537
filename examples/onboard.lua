-- Onboard one employee across the four systems. Safe to run again: each
-- step looks first and changes only what differs.
--   lua5.4 examples/onboard.lua [email] [first] [last]
local workflow = require("provision.workflow")
local apis = require("examples.connect")

local person = {
  email = arg[1] or "grace.hopper@northwind.example",
  first_name = arg[2] or "Grace",
  last_name = arg[3] or "Hopper",
  org_id = apis.agilicus_org,
  roles = { warehouse = { "reader" }, vpn = { "self" } },   -- Agilicus app roles
  portal_role = "Editor",                                   -- Document360
}
local tenant_id = person.email:match("^[^@]+"):gsub("%W", "-")

local rows = {}
local function step(system, what, record, detail)   -- detail: action, info or error
  if not record then
    io.stderr:write(("%-12s %s failed: %s\n"):format(system, what, tostring(detail)))
    os.exit(1)
  end
  rows[#rows + 1] = ("%-12s %-9s %s"):format(system, type(detail) == "string" and detail or "read", what)
  return record
end

local user = step("Agilicus", "user with roles",
  workflow.ensure_agilicus_user(apis.agilicus, person))
step("Document360", "team account, portal role " .. person.portal_role,
  workflow.ensure_document360_member(apis.document360, person))
local link = step("DocSpace", "invitation link",
  apis.docspace:get_invitation_link("User"))
step("Outpost", "tenant " .. tenant_id,
  workflow.ensure_tenant(apis.outpost, tenant_id, { email = person.email }))
local portal = step("Outpost", "portal URL",
  apis.outpost:get_portal_url({ tenant_id = tenant_id }))

print(("Onboarded %s %s <%s>"):format(person.first_name, person.last_name, person.email))
for _, row in ipairs(rows) do print("  " .. row) end
print("  Agilicus id:      " .. tostring(user.id))
print("  DocSpace invite:  " .. tostring(link))
print("  Outpost portal:   " .. tostring(portal.redirect_url):sub(1, 60) .. "...")
