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
}
