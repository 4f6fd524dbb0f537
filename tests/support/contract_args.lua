-- Arguments for tests/spec/contract_spec.lua: one entry per operation of
-- each API class, in the order of the API tables, with realistic values that
-- are valid against the specs (tests/contract/; bodies checked by hand against the
-- schemas named in each entry).
--
--   { op = "name",
--     calls = { {positional..., [options]}, ... },  -- each is one call; the
--             -- first gives the required parameters only, the second (when
--             -- the operation has optional ones) fills every one of them
--     n = { 1, 2 },          -- optional: argument counts when a list holds nil
--     status = 200,          -- the status Prism answers (lowest 2xx of the spec)
--     value = "object" | "array" | "string" | "integer" | "true",
--                            -- type of the decoded (unwrapped) result
--     fields = { name = "type", ... },   -- fields of the result and their types
--     equals = { name = value, ... },    -- fields with a known value (the spec's example)
--     first = { name = "type" }, first_equals = { ... },  -- the same for result[1]
--     headers = { ["x-name"] = "value" },  -- response headers (lowercase names)
--   }
--
-- Types: string, integer, number, boolean, object (a table), array (a
-- table with [1] or marked as an array), null (provision.json.null).
local json = require("provision.json")

local M = {}

-- ------------------------------------------------------------ DocSpace
local DS_USER = "3f2a1c9e-8b4d-4e7a-9c21-5d6e7f809a1b"
-- Every DocSpace 200 documents X-RateLimit-Limit/Remaining/Reset; Prism sends
-- the spec's examples.
local RL = { ["x-ratelimit-limit"] = "1500", ["x-ratelimit-remaining"] = "1",
             ["x-ratelimit-reset"] = "1750000000" }

M.docspace = {
  { op = "get_invitation_link",
    -- the current string enum, then the old integer form (1 = RoomAdmin,
    -- sent as its name: the mock rejects the integer on the wire)
    calls = { { "RoomAdmin" }, { 1 }, { "DocSpaceAdmin" } },
    status = 200, headers = RL, value = "string" },
  { op = "get_portal_users_count",
    calls = { {} },
    status = 200, headers = RL, value = "integer" },
  { op = "get_user_by_id",
    calls = { { DS_USER } },
    status = 200, headers = RL, value = "object",
    fields = { id = "string", email = "string", firstName = "string", contactsList = "array",
               status = "integer", isActive = "boolean" },
    equals = { email = "john.doe@example.com", tenantId = 1 } },
  { op = "mark_gift_message_as_read",
    calls = { {} },
    status = 200, headers = RL, value = "true" },
  { op = "send_congratulations",
    -- no auth; Userid and Key are required by the spec, keywords in the SDK
    calls = { { { userid = DS_USER, key = "birthday" } } },
    status = 200, headers = RL, value = "true" },
}

-- ------------------------------------------------------------ Outpost
-- The tenant client used by the spec sets tenant_id = M.OUTPOST_TENANT on the
-- client: the first call of each operation relies on it, the second passes
-- another tenant_id explicitly.
M.OUTPOST_TENANT = "acme-corp-42"
local OTHER_TENANT = "globex_7"

local TENANT_FIELDS = { id = "string", destinations_count = "integer", topics = "array",
                        created_at = "string" }

M.outpost_v0 = {
  { op = "upsert",
    calls = { {}, { { tenant_id = OTHER_TENANT } } },
    status = 200, value = "object", fields = TENANT_FIELDS, equals = { id = "tenant_123" } },
  { op = "get",
    calls = { {}, { { tenant_id = OTHER_TENANT } } },
    status = 200, value = "object", fields = TENANT_FIELDS },
  { op = "delete",
    calls = { {}, { { tenant_id = OTHER_TENANT } } },
    status = 200, value = "object", fields = { success = "boolean" }, equals = { success = true } },
  { op = "get_portal_url",
    calls = { {}, { { tenant_id = OTHER_TENANT, theme = "dark" } } },
    status = 200, value = "object", fields = { redirect_url = "string" } },
  { op = "get_token",
    calls = { {}, { { tenant_id = OTHER_TENANT } } },
    status = 200, value = "object", fields = { token = "string" } },
  { op = "get_portal_url_jwt_context",
    calls = { {}, { { theme = "light" } } },
    status = 200, value = "object", fields = { redirect_url = "string" } },
  { op = "get_token_jwt_context",
    calls = { {} },
    status = 200, value = "object", fields = { token = "string" } },
}

M.outpost_latest = {
  { op = "list",
    calls = { {}, { { id = { "acme-corp-42", "globex_7" }, limit = 50, dir = "asc",
                      next = "MTcwNDA2NzIwMA==" } },
              { { id = { "acme-corp-42" }, limit = 1, dir = "desc", prev = "MTcwNDA2NzIwMA==" } } },
    status = 200, value = "object",
    fields = { models = "array", pagination = "object", count = "integer" },
    equals = { count = 2 } },
  { op = "upsert",
    calls = { {}, { { tenant_id = OTHER_TENANT,
                      params = { metadata = { name = "Globex Corporation", plan = "enterprise" } } } },
              -- clear the metadata: null (the schema says nullable), and an empty map
              { { params = { metadata = json.null } } }, { { params = { metadata = {} } } }, { { params = {} } } },
    status = 200, value = "object",
    fields = { id = "string", metadata = "object", created_at = "string", updated_at = "string" } },
  { op = "get",
    -- tenant IDs are user-defined: reserved and non-ASCII characters must be
    -- percent-encoded into the one path segment (else Prism finds no route)
    calls = { {}, { { tenant_id = OTHER_TENANT } }, { { tenant_id = "acme corp:eu/west" } },
              { { tenant_id = "Café-Ünïcode?#%" } } },
    status = 200, value = "object",
    fields = { id = "string", metadata = "object", topics = "array" } },
  { op = "delete",
    calls = { {}, { { tenant_id = OTHER_TENANT } } },
    status = 200, value = "object", equals = { success = true } },
  { op = "get_portal_url",
    calls = { {}, { { tenant_id = OTHER_TENANT, theme = "light" } } },
    status = 200, value = "object", fields = { redirect_url = "string", tenant_id = "string" } },
  { op = "get_token",
    calls = { {}, { { tenant_id = OTHER_TENANT } } },
    status = 200, value = "object", fields = { token = "string", tenant_id = "string" } },
}

-- ------------------------------------------------------------ Agilicus
-- Agilicus IDs are 22-character base-57 strings. Most model schemas of the
-- reconstructed spec are open objects ("shape not captured"): the bodies
-- below follow the SDK's models as far as its docs show them (spec/status
-- split) and are accepted by any open object -- a guess the mock cannot check.
local ORG = "Fy6Y3dWbVTi4xcoJ58YvCp"
local USER = "WmgZ4VqNh9kXp3sLd2QeTt"
local CHALLENGE = "Tq8nXc2VbMk5LpZr7HsW4d"
local SA = "Rz3kMq7VnYp2XcB9LdSw6T"
local UPSTREAM = "Jc5vNb8XzQm2LkP4RtYs9W"
local META = "Pm4tRk8ZqWx3NcV7BlYs2H"
local REQ = "Ks9dFg3HjLq7WzXc2VbN5M"

local function user_body(extra)
  local u = {
    email = "ada.lovelace@example.com",
    first_name = "Ada",
    last_name = "Lovelace",
    external_id = "emp-10042",
    enabled = true,
    provider = "google",
    org_id = ORG,
    status = "active",
    roles = { ["urn:agilicus:app:wiki"] = { "viewer", "editor" }, admin = { "self" } },
    member_of = { { id = "Gp5rT8kWzQ2xNcV7LmYs3B", name = "engineering" },
                  { id = "Gp9sL3kMzX7cV2nB5TwQ8R", name = "everyone" } },
  }
  for k, v in pairs(extra or {}) do u[k] = v end
  return u
end

local CHALLENGE_BODY = { spec = { challenge_type = "totp", priority = 1, endpoint = "",
                                  origin = "agilicus.cloud", nickname = "phone", enabled = true } }
-- Builders take the ids a live server handed out (tests/spec/sandbox_contract_spec.lua);
-- without arguments they give the values used against the mocks.
local function sa_body(org)
  org = org or ORG
  return { spec = { name = "ci-deployer", org_id = org, enabled = true, allowed_sub_orgs = { org } } }
end
local function upstream_body(user)
  return { spec = { upstream_user_id = "108234567890123456789", upstream_idp_id = "google",
                    local_user_id = user or USER, attributes = { { name = "dept", value = "eng" } } } }
end
local function meta_body(user, org)
  return { spec = { user_id = user or USER, org_id = org or ORG, app_id = "Ap2xC7vB9nM4kL6zQ3wR8t",
                    name = "preferences", data_type = "json", data = '{"theme":"dark"}' } }
end
local function req_body(user, org)
  return { spec = { user_id = user or USER, org_id = org or ORG, requested_resource = "wiki",
                    requested_sub_resource = "editor", request_type = "application_access",
                    request_information = "Need to edit the onboarding pages",
                    state = "pending" } }
end
local SA_BODY = sa_body()
local UPSTREAM_BODY = upstream_body()
local META_BODY = meta_body()
local REQ_BODY = req_body()

local LIST = { limit = "integer" }

M.agilicus = {
  { op = "bulk_update_metadata",
    calls = { {}, { { bulk_user_metadata = { org_id = ORG, app_id = "Ap2xC7vB9nM4kL6zQ3wR8t",
                                             name = "preferences", data_type = "json",
                                             data = '{"theme":"light"}', data_update_type = "merge" } } } },
    status = 204, value = "true" },
  { op = "create_challenge_method", calls = { { USER, CHALLENGE_BODY } }, status = 201, value = "object" },
  { op = "create_service_account", calls = { { SA_BODY } }, status = 201, value = "object" },
  { op = "create_upstream_user_identity", calls = { { USER, UPSTREAM_BODY } }, status = 201, value = "object" },
  { op = "create_user",
    -- second call: a new user in no group and with an app but no role yet:
    -- empty arrays must go out as [] (the spec says array)
    calls = { { user_body() },
              { user_body({ email = "grace.hopper@example.com", first_name = "Grace", last_name = "Hopper",
                            member_of = {}, roles = { ["urn:agilicus:app:wiki"] = {} },
                            status = "pending", enabled = false }) } },
    status = 201, value = "object",
    fields = { email = "string", roles = "object", member_of = "array" } },
  { op = "create_user_identity_update",
    calls = { { USER, { spec = { first_name = "Ada", last_name = "King", email = "ada.king@example.com" } } } },
    status = 201, value = "object" },
  { op = "create_user_metadata", calls = { { META_BODY } }, status = 201, value = "object" },
  { op = "create_user_request", calls = { { REQ_BODY } }, status = 201, value = "object" },
  { op = "delete_challenge_method", calls = { { USER, CHALLENGE } }, status = 204, value = "true" },
  { op = "delete_service_account", calls = { { SA }, { SA, { org_id = ORG } } }, status = 204, value = "true" },
  { op = "delete_upstream_user_identity", calls = { { USER, UPSTREAM } }, status = 204, value = "true" },
  { op = "delete_user", calls = { { ORG, USER } }, status = 204, value = "true" },
  { op = "delete_user_metadata", calls = { { META }, { META, { user_id = USER, org_id = ORG } } },
    status = 204, value = "true" },
  { op = "delete_user_request", calls = { { REQ }, { REQ, { user_id = USER, org_id = ORG } } },
    status = 204, value = "true" },
  { op = "get_challenge_method", calls = { { USER, CHALLENGE } }, status = 200, value = "object" },
  { op = "get_service_account", calls = { { SA }, { SA, { org_id = ORG } } }, status = 200, value = "object" },
  { op = "get_upstream_user_identity", calls = { { USER, UPSTREAM } }, status = 200, value = "object" },
  { op = "get_user", calls = { { USER }, { USER, { org_id = ORG } } }, status = 200, value = "object",
    fields = { email = "string", roles = "object", member_of = "array", status = "string" } },
  { op = "get_user_metadata", calls = { { META }, { META, { org_id = ORG, user_id = USER } } },
    status = 200, value = "object" },
  { op = "get_user_request", calls = { { REQ }, { REQ, { org_id = ORG, user_id = USER } } },
    status = 200, value = "object" },
  { op = "list_access_requests",
    calls = { { ORG }, { ORG, { limit = 100, user_id = USER, request_state = "pending",
                                request_type = "application_access", email = "ada.lovelace@example.com",
                                search_direction = "backwards" } } },
    status = 200, value = "object" },
  { op = "list_all_resource_permissions", calls = { { USER, ORG } }, status = 200, value = "object" },
  { op = "list_all_user_orgs", calls = { { USER }, { USER, { issuer = "https://auth.example.com" } } },
    status = 200, value = "object" },
  { op = "list_all_user_roles", calls = { { USER }, { USER, { org_id = ORG } } }, status = 200, value = "object" },
  { op = "list_challenge_methods",
    calls = { { USER }, { USER, { limit = 10, challenge_type = "totp", method_status = true,
                                  method_origin = "agilicus.cloud" } } },
    status = 200, value = "object", fields = LIST },
  { op = "list_combined_user_details",
    calls = { {}, { { email = "ada.lovelace@example.com", previous_email = "aaron@example.com", org_id = ORG,
                      limit = 50, type = "user", user_id = USER, status = { "active", "pending" },
                      mfa_enrolled = true, auto_created = false, search_direction = "forwards",
                      prefix_email_search = "ada", allow_partial_match = true, first_name = "Ada",
                      last_name = "Lovelace", search_params = { "ada", "lovelace" } } } },
    status = 200, value = "object" },
  { op = "list_org_user_roles",
    calls = { {}, { { org_id = ORG, user_id = USER, limit = 25, offset = 50 } } },
    status = 200, value = "object" },
  { op = "list_service_accounts",
    calls = { {}, { { org_id = ORG, user_id = USER, limit = 20 } } },
    status = 200, value = "object" },
  { op = "list_upstream_user_identities", calls = { { USER }, { USER, { limit = 5 } } },
    status = 200, value = "object" },
  { op = "list_user_application_access_info", calls = { { ORG, USER }, { ORG, USER, { limit = 100 } } },
    status = 200, value = "object" },
  { op = "list_user_file_share_access_info", calls = { { ORG, USER }, { ORG, USER, { limit = 100 } } },
    status = 200, value = "object", fields = { user_file_share_access_info = "array", limit = "integer" } },
  { op = "list_user_guids", calls = { {}, { { updated_since = "2024-05-01T00:00:00Z" } } },
    status = 200, value = "object" },
  { op = "list_user_metadata",
    calls = { {}, { { limit = 10, user_id = USER, org_id = ORG, app_id = "Ap2xC7vB9nM4kL6zQ3wR8t",
                      data_type = "json" } } },
    status = 200, value = "object" },
  { op = "list_user_permissions", calls = { { USER }, { USER, { org_id = ORG } } }, status = 200, value = "object" },
  { op = "list_user_requests",
    calls = { {}, { { limit = 100, user_id = USER, org_id = ORG, request_state = "pending",
                      request_type = "application_access" } } },
    status = 200, value = "object" },
  { op = "list_users",
    calls = { {}, { { org_id = ORG, limit = 10, status = { "active" } } },
              { { email = "ada.lovelace@example.com", previous_email = "aaron@example.com",
                  provider = "google", org_id = ORG, issuer = "https://auth.example.com", limit = 100,
                  type = { "user", "service_account" }, upstream_user_id = "108234567890123456789",
                  upstream_idp_id = "google", status = { "active", "disabled" },
                  search_direction = "backwards", has_roles = true, has_resource_roles = false,
                  prefix_email_search = "ada", orgless_users = false, allow_partial_match = true,
                  first_name = "Ada", last_name = "Lovelace", user_id = USER,
                  search_params = { "ada", "lovelace" } } } },
    status = 200, value = "object", fields = { users = "array", limit = "integer" } },
  { op = "replace_challenge_method",
    calls = { { USER, CHALLENGE }, { USER, CHALLENGE, { mfa_challenge_method = CHALLENGE_BODY } } },
    status = 200, value = "object" },
  { op = "replace_service_account",
    calls = { { SA }, { SA, { service_account = SA_BODY } } }, status = 200, value = "object" },
  { op = "replace_upstream_user_identity",
    calls = { { USER, UPSTREAM }, { USER, UPSTREAM, { upstream_user_identity = UPSTREAM_BODY } } },
    status = 200, value = "object" },
  { op = "replace_user",
    calls = { { USER }, { USER, { user = user_body({ last_name = "King", member_of = {} }) } } },
    status = 200, value = "object", fields = { email = "string" } },
  { op = "replace_user_metadata",
    calls = { { META }, { META, { user_metadata = META_BODY } } }, status = 200, value = "object" },
  { op = "replace_user_request",
    calls = { { REQ }, { REQ, { user_request_info = REQ_BODY } } }, status = 200, value = "object" },
  { op = "replace_user_role",
    calls = { { USER }, { USER, { org_id = ORG, replace_user_role_request = {
      roles = { ["urn:agilicus:app:wiki"] = { "viewer" } }, org_id = ORG } } } },
    status = 204, value = "true" },
  { op = "reset_user_mfa_challenge_methods",
    calls = { { USER, { org_id = ORG } } }, status = 204, value = "true" },
  { op = "update_user_request",
    calls = { { REQ }, { REQ, { user_request_info = { spec = { user_id = USER, org_id = ORG,
                                  requested_resource = "wiki", request_type = "application_access",
                                  state = "granted" } } } } },
    status = 200, value = "object" },
}

-- ------------------------------------------------------------ Document360
local D_USER = "40d55ebb-d2ab-4327-99d0-0e166f8ce6c2"
local OWNER = "f11efc6f-e968-4e95-82eb-85ad61559de8"
local EDITOR_ROLE = "62810dc1-2d21-422e-bdfb-c3daebf91dd3"
local CONTRIBUTOR_ROLE = "64ced5a8-c2b9-4421-821a-4e32bdfaaecc"
local VERSION = "3a9c1f7e-2b4d-4c8e-9f10-6d5e4c3b2a19"
local GROUP1 = "c08e52df-1de9-44e7-8c02-be0e41826c24"
local GROUP2 = "7b1e0c4a-9d2f-4e3b-8a6c-5f4e3d2c1b0a"

-- AccessScopeLevel: 0 None, 1 Category, 2 Version, 3 Project, 4 Language.
local function permissions_full(editor, contributor)
  editor, contributor = editor or EDITOR_ROLE, contributor or CONTRIBUTOR_ROLE
  return {
    { associated_content_role_id = editor,
      access_scope = { access_level = 1,
        categories = {
          { project_version_id = VERSION, category_id = "9e8d7c6b-5a49-4382-b1c0-d9e8f7a6b5c4", language_code = "en" },
          { project_version_id = VERSION, category_id = "1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d", language_code = "de" },
        } } },
    { associated_content_role_id = contributor,
      access_scope = { access_level = 4,
        languages = { { project_version_id = VERSION, language_code = "fr" },
                      { project_version_id = VERSION, language_code = "es" } } } },
    { associated_content_role_id = contributor,
      access_scope = { access_level = 2, project_versions = { VERSION, "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0" } } },
  }
end

local ROLE_FIELDS = { id = "string", title = "string" }

M.document360 = {
  { op = "v2_teams_email_exists_get",
    calls = { { "ada.lovelace@example.com" }, { "ada.lovelace@example.com", { is_an_sso_user = true } } },
    status = 200, value = "object", fields = { exists = "boolean", user_id = "string" } },
  { op = "v2_teams_get",
    calls = { {}, { { skip = 20, take = 10 } } },
    status = 200, value = "array", first = { user_id = "string", first_name = "string", last_login_at = "string" },
    first_equals = { first_name = "Peter" } },
  { op = "v2_teams_groups_get",
    calls = { {} },
    status = 200, value = "array", first = { group_id = "string", title = "string" } },
  { op = "v2_teams_post",
    -- the body is optional in the SDK signature (the spec leaves requestBody
    -- not required) but its schema requires four fields: both calls send it
    calls = {
      { { add_team_account_customer = {
          email_id = "ada.lovelace@example.com", invited_by = OWNER,
          associated_portal_role_id = CONTRIBUTOR_ROLE,
          content_permissions = { { associated_content_role_id = EDITOR_ROLE,
                                    access_scope = { access_level = 3 } } } } } },
      { { add_team_account_customer = {
          email_id = "grace.hopper@example.com", first_name = "Grace", last_name = "Hopper",
          invited_by = OWNER, is_sso_user = true, scheme_name = "okta-main",
          skip_sso_invitation_email = true, associated_portal_role_id = CONTRIBUTOR_ROLE,
          content_permissions = permissions_full(), associated_groups = { GROUP1, GROUP2 } } } },
      -- an SSO user with no content permission and no group yet: [] on the wire
      { { add_team_account_customer = {
          email_id = "alan.turing@example.com", invited_by = OWNER,
          associated_portal_role_id = CONTRIBUTOR_ROLE, content_permissions = {},
          associated_groups = {} } } },
      -- nullable fields sent as JSON null (provision.json.null)
      { { add_team_account_customer = {
          email_id = "edsger.dijkstra@example.com", first_name = json.null, last_name = json.null,
          scheme_name = json.null, invited_by = OWNER, associated_portal_role_id = CONTRIBUTOR_ROLE,
          content_permissions = { { associated_content_role_id = EDITOR_ROLE,
                                    access_scope = { access_level = 2, project_versions = json.null } } },
          associated_groups = json.null } } },
    },
    status = 200, value = "object", fields = { id = "string" } },
  { op = "v2_teams_roles_get",
    calls = { {} },
    status = 200, value = "array", first = ROLE_FIELDS },
  { op = "v2_teams_user_id_content_put",
    calls = { { D_USER, { edit_content_role_customer = { content_permissions = {
                { associated_content_role_id = EDITOR_ROLE, access_scope = { access_level = 0 } } } } } },
              { D_USER, { edit_content_role_customer = { content_permissions = permissions_full(),
                                                         is_invitation_id = false } } },
              { D_USER, { edit_content_role_customer = { content_permissions = {} } } },
              -- empty lists inside each element of an array: [] on the wire
              { D_USER, { edit_content_role_customer = { content_permissions = {
                { associated_content_role_id = EDITOR_ROLE,
                  access_scope = { access_level = 3, categories = {}, project_versions = {}, languages = {} } },
                { associated_content_role_id = CONTRIBUTOR_ROLE,
                  access_scope = { access_level = 1, categories = {}, languages = json.null } } } } } } },
    status = 200, value = "true" },
  { op = "v2_teams_user_id_delete",
    calls = { { D_USER } },
    status = 200, value = "true" },
  { op = "v2_teams_user_id_get",
    calls = { { D_USER } },
    status = 200, value = "object",
    fields = { user_id = "string", email_id = "string", portal_role = "object", content_roles = "array" } },
  { op = "v2_teams_user_id_groups_put",
    calls = { { D_USER, { edit_user_groups_customer = { associated_groups = { GROUP1 } } } },
              { D_USER, { edit_user_groups_customer = { associated_groups = { GROUP1, GROUP2 },
                                                        is_invitation_id = true } } },
              { D_USER, { edit_user_groups_customer = { associated_groups = {} } } } },
    status = 200, value = "true" },
  { op = "v2_teams_user_id_portal_put",
    calls = { { D_USER, { edit_portal_role_customer = { associated_portal_role_id = CONTRIBUTOR_ROLE } } },
              { D_USER, { edit_portal_role_customer = { associated_portal_role_id = CONTRIBUTOR_ROLE,
                                                        is_invitation_id = false } } } },
    status = 200, value = "true" },
}

-- The request bodies above as builders, for tests against a stateful server
-- (the sandbox) that must use the ids it handed out.
M.bodies = {
  agilicus_user = user_body,                                     -- (extra fields)
  challenge_method = function()
    local spec = {}
    for k, v in pairs(CHALLENGE_BODY.spec) do spec[k] = v end
    return { spec = spec }
  end,
  service_account = sa_body,                                     -- (org_id)
  upstream_user_identity = upstream_body,                        -- (local user id)
  user_metadata = meta_body,                                     -- (user_id, org_id)
  user_request = req_body,                                       -- (user_id, org_id)
  d360_permissions = permissions_full,                           -- (editor role, contributor role)
}

return M
