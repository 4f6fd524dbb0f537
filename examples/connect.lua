-- The four clients the examples use. By default they talk to the sandbox
-- (bin/provision-sandbox; PROVISION_SANDBOX_URL, default http://127.0.0.1:8090)
-- with its fake credentials. The same variables as bin/provision select real
-- servers: PROVISION_<API>_URL plus PROVISION_DOCSPACE_TOKEN,
-- PROVISION_OUTPOST_API_KEY, PROVISION_AGILICUS_TOKEN (and
-- PROVISION_AGILICUS_ORG_ID), PROVISION_DOCUMENT360_TOKEN.
local provision = require("provision")

local env = os.getenv
local sandbox = env("PROVISION_SANDBOX_URL") or "http://127.0.0.1:8090"

local function client(make, api, path, auth_key, token)
  local url = env("PROVISION_" .. api .. "_URL")
  local secret = url and env("PROVISION_" .. api .. "_" .. (auth_key == "admin_api_key" and "API_KEY" or "TOKEN"))
  return assert(make({ server = url or sandbox .. path, retries = { attempts = 4 },
                       auth = { [auth_key] = secret or token } }))
end

return {
  docspace = client(provision.PortalUsersApi, "DOCSPACE", "/docspace", "Bearer",
    "sandbox-docspace-bearer-token"),
  outpost = client(provision.Tenants, "OUTPOST", "/outpost-latest/api/v1", "admin_api_key",
    "sandbox-outpost-admin-api-key"),
  agilicus = client(provision.UsersApi, "AGILICUS", "/agilicus", "bearer", "sandbox-agilicus-token"),
  document360 = client(provision.TeamsApi, "DOCUMENT360", "/document360", "api_token",
    "sandbox-document360-api-token"),
  agilicus_org = env("PROVISION_AGILICUS_ORG_ID") or "Nw7kQ2pX9sT4vB8mL1cR3d",
}
