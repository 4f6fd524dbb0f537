-- The four clients the examples use. By default they talk to the sandbox
-- (bin/provision-sandbox; PROVISION_SANDBOX_URL, default http://127.0.0.1:8090)
-- with its fake credentials; set the variables below to use real servers.
--   DOCSPACE_URL DOCSPACE_TOKEN            (portal URL, bearer/API token)
--   OUTPOST_URL OUTPOST_API_KEY            (e.g. https://api.outpost.hookdeck.com/2025-07-01)
--   AGILICUS_URL AGILICUS_TOKEN AGILICUS_ORG_ID
--   DOCUMENT360_URL DOCUMENT360_TOKEN
local provision = require("provision")

local env = os.getenv
local sandbox = env("PROVISION_SANDBOX_URL") or "http://127.0.0.1:8090"

local function client(make, url, opts)
  opts.server, opts.retries = url, { attempts = 4 }
  return assert(make(opts))
end

return {
  docspace = client(provision.PortalUsersApi, env("DOCSPACE_URL") or sandbox .. "/docspace",
    { auth = { Bearer = env("DOCSPACE_TOKEN") or "sandbox-docspace-bearer-token" } }),
  outpost = client(provision.Tenants, env("OUTPOST_URL") or sandbox .. "/outpost-latest/api/v1",
    { auth = { admin_api_key = env("OUTPOST_API_KEY") or "sandbox-outpost-admin-api-key" } }),
  agilicus = client(provision.UsersApi, env("AGILICUS_URL") or sandbox .. "/agilicus",
    { auth = { bearer = env("AGILICUS_TOKEN") or "sandbox-agilicus-token" } }),
  document360 = client(provision.TeamsApi, env("DOCUMENT360_URL") or sandbox .. "/document360",
    { auth = { api_token = env("DOCUMENT360_TOKEN") or "sandbox-document360-api-token" } }),
  agilicus_org = env("AGILICUS_ORG_ID") or "Nw7kQ2pX9sT4vB8mL1cR3d",
}
