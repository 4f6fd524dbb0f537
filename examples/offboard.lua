-- Offboard one employee: remove the Agilicus user, the Document360 team
-- account and the Outpost tenant. Safe to run again ("absent").
--   lua5.4 examples/offboard.lua [email]
local workflow = require("provision.workflow")
local apis = require("examples.connect")

local email = arg[1] or "grace.hopper@northwind.example"
local tenant_id = email:match("^[^@]+"):gsub("%W", "-")

local function report(system, record, detail)
  if not record then
    io.stderr:write(("%-12s failed: %s\n"):format(system, tostring(detail)))
    os.exit(1)
  end
  print(("  %-12s %s"):format(system, detail))
end

print("Offboarding " .. email)
report("Agilicus", workflow.remove_agilicus_user(apis.agilicus, apis.agilicus_org, email))
report("Document360", workflow.remove_document360_member(apis.document360, email))
report("Outpost", workflow.remove_tenant(apis.outpost, tenant_id))
print("  DocSpace     (PortalUsersApi has no removal; disable the user in the portal)")
