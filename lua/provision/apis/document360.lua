-- Document360 `TeamsApi`: one entry per operation of the documented SDK class
-- (d361api.TeamsApi, 10 operations), checked against
-- ../shared/specs/document360.openapi.json by
-- tests/spec/spec_agreement_spec.lua. Format: docs/api-tables.md.
--
-- The spec has no operationIds: the SDK names come from method and path
-- (GET /v2/Teams/{userId} -> v2_teams_user_id_get), so operation_id is nil.
-- Query names are camelCase on the wire (emailId, isAnSsoUser) while the SDK
-- names are snake_case: `wire` carries the difference. Bodies are declared
-- for application/json-patch+json, application/json, text/json and
-- application/*+json; we send application/json. Body fields are snake_case
-- and go out as given. Every response is an envelope
-- {result|data, success, errors, warnings, information} (envelope
-- "document360"); the spec documents 400 with the same envelope.
local operations = {
    {
      name = "v2_teams_email_exists_get",
      operation_id = nil,
      method = "GET",
      path = "/v2/Teams/email-exists",
      params = {
        { name = "email_id", wire = "emailId", ["in"] = "query", type = "string", format = "email", required = true },
        { name = "is_an_sso_user", wire = "isAnSsoUser", ["in"] = "query", type = "boolean", required = false, default = false },
      },
      security = { "api_token" },
      success = { 200 },
      returns = "EmailExistsResponse",
    },
    {
      name = "v2_teams_get",
      operation_id = nil,
      paging = { kind = "offset", skip = "skip", take = "take", page_size = 100 },
      method = "GET",
      path = "/v2/Teams",
      params = {
        { name = "skip", ["in"] = "query", type = "integer", required = false, default = 0 },
        { name = "take", ["in"] = "query", type = "integer", required = false, default = 20 },
      },
      security = { "api_token" },
      success = { 200 },
      returns = "TeamAccountSummaryCustomerListCustomerApiResponse",
    },
    {
      name = "v2_teams_groups_get",
      operation_id = nil,
      method = "GET",
      path = "/v2/Teams/groups",
      params = {},
      security = { "api_token" },
      success = { 200 },
      returns = "TeamAccountGroupSummaryCustomerListCustomerApiResponse",
    },
    {
      name = "v2_teams_post",
      operation_id = nil,
      method = "POST",
      path = "/v2/Teams",
      params = {
        { name = "add_team_account_customer", ["in"] = "body", type = "object", required = false, content_type = "application/json", schema = "AddTeamAccountCustomer", arrays = { "content_permissions", "content_permissions.access_scope.categories", "content_permissions.access_scope.project_versions", "content_permissions.access_scope.languages", "associated_groups" } },
      },
      security = { "api_token" },
      success = { 200 },
      returns = "AddUserDataCustomerApiResponse",
      -- Document360 answers 400 {errors: [{description: "Existing team member"}]}
      exists = { status = 400, message = "Existing team member" },
      read_back = { operation = "v2_teams_email_exists_get",
                    args = { email_id = "add_team_account_customer.email_id" }, present = "exists" },
    },
    {
      name = "v2_teams_roles_get",
      operation_id = nil,
      method = "GET",
      path = "/v2/Teams/roles",
      params = {},
      security = { "api_token" },
      success = { 200 },
      returns = "RoleMetaDataListCustomerApiResponse",
    },
    {
      name = "v2_teams_user_id_content_put",
      operation_id = nil,
      method = "PUT",
      path = "/v2/Teams/{userId}/content",
      params = {
        { name = "user_id", wire = "userId", ["in"] = "path", type = "string", required = true },
        { name = "edit_content_role_customer", ["in"] = "body", type = "object", required = false, content_type = "application/json", schema = "EditContentRoleCustomer", arrays = { "content_permissions", "content_permissions.access_scope.categories", "content_permissions.access_scope.project_versions", "content_permissions.access_scope.languages" } },
      },
      security = { "api_token" },
      success = { 200 },
      returns = "BooleanCustomerApiResponse",
    },
    {
      name = "v2_teams_user_id_delete",
      operation_id = nil,
      method = "DELETE",
      path = "/v2/Teams/{userId}",
      params = {
        { name = "user_id", wire = "userId", ["in"] = "path", type = "string", required = true },
      },
      security = { "api_token" },
      success = { 200 },
      returns = "CustomerApiBaseResponse",
    },
    {
      name = "v2_teams_user_id_get",
      operation_id = nil,
      method = "GET",
      path = "/v2/Teams/{userId}",
      params = {
        { name = "user_id", wire = "userId", ["in"] = "path", type = "string", required = true },
      },
      security = { "api_token" },
      success = { 200 },
      returns = "CompleteUserInfoCustomerCustomerApiResponse",
    },
    {
      name = "v2_teams_user_id_groups_put",
      operation_id = nil,
      method = "PUT",
      path = "/v2/Teams/{userId}/groups",
      params = {
        { name = "user_id", wire = "userId", ["in"] = "path", type = "string", required = true },
        { name = "edit_user_groups_customer", ["in"] = "body", type = "object", required = false, content_type = "application/json", schema = "EditUserGroupsCustomer", arrays = { "associated_groups" } },
      },
      security = { "api_token" },
      success = { 200 },
      returns = "BooleanCustomerApiResponse",
    },
    {
      name = "v2_teams_user_id_portal_put",
      operation_id = nil,
      method = "PUT",
      path = "/v2/Teams/{userId}/portal",
      params = {
        { name = "user_id", wire = "userId", ["in"] = "path", type = "string", required = true },
        { name = "edit_portal_role_customer", ["in"] = "body", type = "object", required = false, content_type = "application/json", schema = "EditPortalRoleCustomer", arrays = {} },
      },
      security = { "api_token" },
      success = { 200 },
      returns = "BooleanCustomerApiResponse",
    },
}

-- The person resource the reconciler works on (docs/reconcile.md
-- "Resources"): a team account for each roster row with a document360_role
-- (a portal role title). TeamsApi can change an account's portal role but
-- not its name, so the names are set when the account is made
-- (create_only). The role title becomes its id through the portal_roles
-- lookup; invited_by is the first Owner's id (else the first account's).
local resource = {
  noun = "team member",
  key = { column = "email", field = "email_id", case = "insensitive" },
  member = "document360_role",
  id = "user_id",
  list = { operation = "v2_teams_get", args = { { take = 100 } } },
  read = { operation = "v2_teams_email_exists_get", args = { "=key" }, present = "exists",
           then_read = { operation = "v2_teams_user_id_get", args = { "=found.user_id" } } },
  lookups = {
    portal_roles = { operation = "v2_teams_roles_get", args = {}, where = { role_type = 0 },
                     key = "title", value = "id", case = "insensitive" },
    inviter = { from = "list", prefer = { portal_role = "Owner" }, value = "user_id", needed_by = { "create" },
                missing = "Document360 has no team account to invite from (give invited_by)" },
  },
  fields = {
    { name = "portal_role", column = "document360_role", kind = "text_ci",
      path = { "portal_role.role_name", "portal_role" }, lookup = "portal_roles", update = "portal" },
    { name = "first_name", column = "first_name", kind = "text", path = "first_name", create_only = true },
    { name = "last_name", column = "last_name", kind = "text", path = "last_name", create_only = true },
    { name = "content_permissions", column = "document360_content_permissions", kind = "json",
      create_only = true, default = {} },
  },
  create = { operation = "v2_teams_post", args = { { add_team_account_customer = {
    email_id = "=key", first_name = "=desired.first_name", last_name = "=desired.last_name",
    associated_portal_role_id = "=desired.portal_role", invited_by = "=lookup.inviter",
    content_permissions = "=desired.content_permissions", skip_sso_invitation_email = true,
  } } }, created_id = "id" },
  updates = {
    portal = { operation = "v2_teams_user_id_portal_put", args = { "=observed.user_id",
      { edit_portal_role_customer = { associated_portal_role_id = "=desired.portal_role" } } } },
  },
  remove = { operation = "v2_teams_user_id_delete", args = { "=observed.user_id" },
             gone = { status = 400, message = "User not found" } },
}

return {
  class = "TeamsApi",
  api = "document360",
  spec = "document360.openapi.json",
  seed = "document360-TeamsApi.md",
  schemas = "document360",
  servers = {
    default = "https://apihub.document360.io",
    us = "https://apihub.us.document360.io",
    private = "https://apihub.{private_hosting}.document360.io",
  },
  server_variables = {
    -- the subdomain of a privately hosted instance; "domain" is the spec's
    -- placeholder default, not a usable host
    private_hosting = { default = "domain" },
  },
  security_schemes = {
    api_token = { type = "apiKey", ["in"] = "header", name = "api_token" },
  },
  envelope = "document360",
  errors = nil,
  operations = operations,
  resource = resource,
}
