-- Agilicus `UsersApi`: one entry per operation of the documented SDK class
-- (agilicus_api.UsersApi, 45 operations), checked against
-- tests/contract/agilicus.reconstructed.openapi.json (cut from the published spec) by
-- tests/spec/spec_agreement_spec.lua. Format: docs/api-tables.md.
--
-- The spec is a RECONSTRUCTION from the SDK's own docs, not a published
-- document. Points where it (and so this table) had to guess:
--
--  1. Parameter location. The SDK docs do not say where a parameter goes.
--     Rule used: path if the name is a placeholder in the URL, otherwise
--     query. So org_id is a query parameter on get_user, replace_user_role,
--     delete_service_account, get_service_account, list_all_user_roles,
--     list_all_resource_permissions (required there), ...; user_id is a
--     query parameter on the /v1/user_metadata and /v1/user_requests
--     operations. None are headers or cookies as far as the docs show.
--  2. Array encoding. `type` and `search_params` (list_users),
--     `status` (list_users, list_combined_user_details) and `search_params`
--     (list_combined_user_details) are lists: encoded as repeated keys
--     (style form, explode true: ?status=active&status=pending), the
--     OpenAPI 3 default; not confirmed against the server.
--  3. Body names. The spec has no x-codegen-request-body-name: the body
--     parameter names (user, user_request_info, replace_user_role_request,
--     ...) and their positions come from the seed page's signatures.
--  4. Body schemas. Most models are opaque (additionalProperties: true), so
--     `arrays` can only list what is known: User.member_of and the values
--     of the User.roles map (roles.*). For every other body the table
--     lists no array fields: an empty Lua table in such a body would be
--     sent as {} (lua-cjson), and nothing here can say it should be [].
--  5. Body content type application/json (documented); response bodies
--     application/json. Error bodies are assumed to be ErrorMessage
--     ({error_code, error_message}); 404 and create_user's 409 are the only
--     error statuses documented, without schemas.
--  6. Query `type` is a list on list_users but a plain string on
--     list_combined_user_details: that asymmetry is as documented.
--  7. Defaults (limit 500, search_direction "forwards") are documentation:
--     they are never sent unless the caller gives them.
--  8. Success codes and return models are as documented (201 on create_*,
--     204 on the void ones); list_user_guids' updated_since is a date-time
--     string (format recorded, no conversion).
local operations = {
    {
      name = "bulk_update_metadata",
      operation_id = "bulk_update_metadata",
      method = "POST",
      path = "/v1/user_metadata_rpc/bulk_update",
      params = {
        { name = "bulk_user_metadata", ["in"] = "body", type = "object", required = false, content_type = "application/json", schema = "BulkUserMetadata", arrays = {} },
      },
      security = { "token-valid" },
      success = { 204 },
      returns = nil,
    },
    {
      name = "create_challenge_method",
      operation_id = "create_challenge_method",
      method = "POST",
      path = "/users/{user_id}/mfa_challenge_methods",
      params = {
        { name = "user_id", ["in"] = "path", type = "string", required = true },
        { name = "mfa_challenge_method", ["in"] = "body", type = "object", required = true, content_type = "application/json", schema = "MFAChallengeMethod", arrays = {} },
      },
      security = { "token-valid" },
      success = { 201 },
      returns = "MFAChallengeMethod",
    },
    {
      name = "create_service_account",
      operation_id = "create_service_account",
      method = "POST",
      path = "/v1/service_accounts",
      params = {
        { name = "service_account", ["in"] = "body", type = "object", required = true, content_type = "application/json", schema = "ServiceAccount", arrays = {} },
      },
      security = { "token-valid" },
      success = { 201 },
      returns = "ServiceAccount",
    },
    {
      name = "create_upstream_user_identity",
      operation_id = "create_upstream_user_identity",
      method = "POST",
      path = "/users/{user_id}/upstream_user_identities",
      params = {
        { name = "user_id", ["in"] = "path", type = "string", required = true },
        { name = "upstream_user_identity", ["in"] = "body", type = "object", required = true, content_type = "application/json", schema = "UpstreamUserIdentity", arrays = {} },
      },
      security = { "token-valid" },
      success = { 201 },
      returns = "UpstreamUserIdentity",
    },
    {
      name = "create_user",
      operation_id = "create_user",
      method = "POST",
      path = "/users",
      params = {
        { name = "user", ["in"] = "body", type = "object", required = true, content_type = "application/json", schema = "User", arrays = { "member_of", "roles.*" },
          -- the reconstructed spec marks no field of User required; the
          -- service answers 400 "email is required" (and the read-back
          -- needs it): refused before sending
          require = { "email" } },
      },
      security = { "token-valid" },
      success = { 201 },
      returns = "User",
      -- 409 when the email (case-insensitive) already exists in the org
      exists = { status = 409 },
      -- an attempt that may have landed is settled by looking the email up
      read_back = { operation = "list_users", args = { email = "user.email", org_id = "user.org_id" },
                    items = "users", match = { email = "user.email" } },
    },
    {
      name = "create_user_identity_update",
      operation_id = "create_user_identity_update",
      method = "POST",
      path = "/users/{user_id}/user_identity_updates",
      params = {
        { name = "user_id", ["in"] = "path", type = "string", required = true },
        { name = "user_identity_update", ["in"] = "body", type = "object", required = true, content_type = "application/json", schema = "UserIdentityUpdate", arrays = {} },
      },
      security = { "token-valid" },
      success = { 201 },
      returns = "UserIdentityUpdate",
    },
    {
      name = "create_user_metadata",
      operation_id = "create_user_metadata",
      method = "POST",
      path = "/v1/user_metadata",
      params = {
        { name = "user_metadata", ["in"] = "body", type = "object", required = true, content_type = "application/json", schema = "UserMetadata", arrays = {} },
      },
      security = { "token-valid" },
      success = { 201 },
      returns = "UserMetadata",
    },
    {
      name = "create_user_request",
      operation_id = "create_user_request",
      method = "POST",
      path = "/v1/user_requests",
      params = {
        { name = "user_request_info", ["in"] = "body", type = "object", required = true, content_type = "application/json", schema = "UserRequestInfo", arrays = {} },
      },
      security = { "token-valid" },
      success = { 201 },
      returns = "UserRequestInfo",
    },
    {
      name = "delete_challenge_method",
      operation_id = "delete_challenge_method",
      method = "DELETE",
      path = "/users/{user_id}/mfa_challenge_methods/{challenge_method_id}",
      params = {
        { name = "user_id", ["in"] = "path", type = "string", required = true },
        { name = "challenge_method_id", ["in"] = "path", type = "string", required = true },
      },
      security = { "token-valid" },
      success = { 204 },
      returns = nil,
    },
    {
      name = "delete_service_account",
      operation_id = "delete_service_account",
      method = "DELETE",
      path = "/v1/service_accounts/{service_account_id}",
      params = {
        { name = "service_account_id", ["in"] = "path", type = "string", required = true },
        { name = "org_id", ["in"] = "query", type = "string", required = false },
      },
      security = { "token-valid" },
      success = { 204 },
      returns = nil,
    },
    {
      name = "delete_upstream_user_identity",
      operation_id = "delete_upstream_user_identity",
      method = "DELETE",
      path = "/users/{user_id}/upstream_user_identities/{upstream_user_identity_id}",
      params = {
        { name = "user_id", ["in"] = "path", type = "string", required = true },
        { name = "upstream_user_identity_id", ["in"] = "path", type = "string", required = true },
      },
      security = { "token-valid" },
      success = { 204 },
      returns = nil,
    },
    {
      name = "delete_user",
      operation_id = "delete_user",
      method = "DELETE",
      path = "/v1/orgs/{org_id}/users/{user_id}",
      params = {
        { name = "org_id", ["in"] = "path", type = "string", required = true },
        { name = "user_id", ["in"] = "path", type = "string", required = true },
      },
      security = { "token-valid" },
      success = { 204 },
      returns = nil,
    },
    {
      name = "delete_user_metadata",
      operation_id = "delete_user_metadata",
      method = "DELETE",
      path = "/v1/user_metadata/{metadata_id}",
      params = {
        { name = "metadata_id", ["in"] = "path", type = "string", required = true },
        { name = "user_id", ["in"] = "query", type = "string", required = false },
        { name = "org_id", ["in"] = "query", type = "string", required = false },
      },
      security = { "token-valid" },
      success = { 204 },
      returns = nil,
    },
    {
      name = "delete_user_request",
      operation_id = "delete_user_request",
      method = "DELETE",
      path = "/v1/user_requests/{user_request_id}",
      params = {
        { name = "user_request_id", ["in"] = "path", type = "string", required = true },
        { name = "user_id", ["in"] = "query", type = "string", required = false },
        { name = "org_id", ["in"] = "query", type = "string", required = false },
      },
      security = { "token-valid" },
      success = { 204 },
      returns = nil,
    },
    {
      name = "get_challenge_method",
      operation_id = "get_challenge_method",
      method = "GET",
      path = "/users/{user_id}/mfa_challenge_methods/{challenge_method_id}",
      params = {
        { name = "user_id", ["in"] = "path", type = "string", required = true },
        { name = "challenge_method_id", ["in"] = "path", type = "string", required = true },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "MFAChallengeMethod",
    },
    {
      name = "get_service_account",
      operation_id = "get_service_account",
      method = "GET",
      path = "/v1/service_accounts/{service_account_id}",
      params = {
        { name = "service_account_id", ["in"] = "path", type = "string", required = true },
        { name = "org_id", ["in"] = "query", type = "string", required = false },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "ServiceAccount",
    },
    {
      name = "get_upstream_user_identity",
      operation_id = "get_upstream_user_identity",
      method = "GET",
      path = "/users/{user_id}/upstream_user_identities/{upstream_user_identity_id}",
      params = {
        { name = "user_id", ["in"] = "path", type = "string", required = true },
        { name = "upstream_user_identity_id", ["in"] = "path", type = "string", required = true },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "UpstreamUserIdentity",
    },
    {
      name = "get_user",
      operation_id = "get_user",
      method = "GET",
      path = "/users/{user_id}",
      params = {
        { name = "user_id", ["in"] = "path", type = "string", required = true },
        { name = "org_id", ["in"] = "query", type = "string", required = false },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "User",
    },
    {
      name = "get_user_metadata",
      operation_id = "get_user_metadata",
      method = "GET",
      path = "/v1/user_metadata/{metadata_id}",
      params = {
        { name = "metadata_id", ["in"] = "path", type = "string", required = true },
        { name = "org_id", ["in"] = "query", type = "string", required = false },
        { name = "user_id", ["in"] = "query", type = "string", required = false },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "UserMetadata",
    },
    {
      name = "get_user_request",
      operation_id = "get_user_request",
      method = "GET",
      path = "/v1/user_requests/{user_request_id}",
      params = {
        { name = "user_request_id", ["in"] = "path", type = "string", required = true },
        { name = "org_id", ["in"] = "query", type = "string", required = false },
        { name = "user_id", ["in"] = "query", type = "string", required = false },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "UserRequestInfo",
    },
    {
      name = "list_access_requests",
      operation_id = "list_access_requests",
      method = "GET",
      path = "/v1/access_requests",
      params = {
        { name = "org_id", ["in"] = "query", type = "string", required = true },
        { name = "limit", ["in"] = "query", type = "integer", required = false, default = 500 },
        { name = "user_id", ["in"] = "query", type = "string", required = false },
        { name = "request_state", ["in"] = "query", type = "string", required = false },
        { name = "request_type", ["in"] = "query", type = "string", required = false },
        { name = "email", ["in"] = "query", type = "string", required = false },
        { name = "search_direction", ["in"] = "query", type = "string", required = false, default = "forwards" },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "ListAccessRequestsResponse",
    },
    {
      name = "list_all_resource_permissions",
      operation_id = "list_all_resource_permissions",
      method = "GET",
      path = "/users/{user_id}/render_resource_permissions",
      params = {
        { name = "user_id", ["in"] = "path", type = "string", required = true },
        { name = "org_id", ["in"] = "query", type = "string", required = true },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "RenderedResourcePermissions",
    },
    {
      name = "list_all_user_orgs",
      operation_id = "list_all_user_orgs",
      method = "GET",
      path = "/users/{user_id}/orgs",
      params = {
        { name = "user_id", ["in"] = "path", type = "string", required = true },
        { name = "issuer", ["in"] = "query", type = "string", required = false },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "ListOrgsResponse",
    },
    {
      name = "list_all_user_roles",
      operation_id = "list_all_user_roles",
      method = "GET",
      path = "/users/{user_id}/render_roles",
      params = {
        { name = "user_id", ["in"] = "path", type = "string", required = true },
        { name = "org_id", ["in"] = "query", type = "string", required = false },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "Roles",
    },
    {
      name = "list_challenge_methods",
      operation_id = "list_challenge_methods",
      method = "GET",
      path = "/users/{user_id}/mfa_challenge_methods",
      params = {
        { name = "user_id", ["in"] = "path", type = "string", required = true },
        { name = "limit", ["in"] = "query", type = "integer", required = false, default = 500 },
        { name = "challenge_type", ["in"] = "query", type = "string", required = false },
        { name = "method_status", ["in"] = "query", type = "boolean", required = false },
        { name = "method_origin", ["in"] = "query", type = "string", required = false },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "ListMFAChallengeMethods",
    },
    {
      name = "list_combined_user_details",
      operation_id = "list_combined_user_details",
      method = "GET",
      path = "/v1/combined_user_details",
      params = {
        { name = "email", ["in"] = "query", type = "string", required = false },
        { name = "previous_email", ["in"] = "query", type = "string", required = false },
        { name = "org_id", ["in"] = "query", type = "string", required = false },
        { name = "limit", ["in"] = "query", type = "integer", required = false, default = 500 },
        { name = "type", ["in"] = "query", type = "string", required = false },
        { name = "user_id", ["in"] = "query", type = "string", required = false },
        { name = "status", ["in"] = "query", type = "array", items = "string", items_enum = { "active", "pending", "disabled" }, style = "form", explode = true, required = false },
        { name = "mfa_enrolled", ["in"] = "query", type = "boolean", required = false },
        { name = "auto_created", ["in"] = "query", type = "boolean", required = false },
        { name = "search_direction", ["in"] = "query", type = "string", required = false, default = "forwards" },
        { name = "prefix_email_search", ["in"] = "query", type = "string", required = false },
        { name = "allow_partial_match", ["in"] = "query", type = "boolean", required = false },
        { name = "first_name", ["in"] = "query", type = "string", required = false },
        { name = "last_name", ["in"] = "query", type = "string", required = false },
        { name = "search_params", ["in"] = "query", type = "array", items = "string", style = "form", explode = true, required = false },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "ListCombinedUserDetailsResponse",
    },
    {
      name = "list_org_user_roles",
      operation_id = "list_org_user_roles",
      method = "GET",
      path = "/users/org_user_roles",
      params = {
        { name = "org_id", ["in"] = "query", type = "string", required = false },
        { name = "user_id", ["in"] = "query", type = "string", required = false },
        { name = "limit", ["in"] = "query", type = "integer", required = false, default = 500 },
        { name = "offset", ["in"] = "query", type = "integer", required = false },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "ListUserRolesForAnOrg",
    },
    {
      name = "list_service_accounts",
      operation_id = "list_service_accounts",
      method = "GET",
      path = "/v1/service_accounts",
      params = {
        { name = "org_id", ["in"] = "query", type = "string", required = false },
        { name = "user_id", ["in"] = "query", type = "string", required = false },
        { name = "limit", ["in"] = "query", type = "integer", required = false, default = 500 },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "ListServiceAccountResponse",
    },
    {
      name = "list_upstream_user_identities",
      operation_id = "list_upstream_user_identities",
      method = "GET",
      path = "/users/{user_id}/upstream_user_identities",
      params = {
        { name = "user_id", ["in"] = "path", type = "string", required = true },
        { name = "limit", ["in"] = "query", type = "integer", required = false, default = 500 },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "ListUpstreamUserIdentitiesResponse",
    },
    {
      name = "list_user_application_access_info",
      operation_id = "list_user_application_access_info",
      method = "GET",
      path = "/v1/user_application_access_info",
      params = {
        { name = "org_id", ["in"] = "query", type = "string", required = true },
        { name = "user_id", ["in"] = "query", type = "string", required = true },
        { name = "limit", ["in"] = "query", type = "integer", required = false, default = 500 },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "ListUserApplicationAccessInfoResponse",
    },
    {
      name = "list_user_file_share_access_info",
      operation_id = "list_user_file_share_access_info",
      method = "GET",
      path = "/v1/user_file_share_access_info",
      params = {
        { name = "org_id", ["in"] = "query", type = "string", required = true },
        { name = "user_id", ["in"] = "query", type = "string", required = true },
        { name = "limit", ["in"] = "query", type = "integer", required = false, default = 500 },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "ListUserFileShareAccessInfoResponse",
    },
    {
      name = "list_user_guids",
      operation_id = "list_user_guids",
      method = "GET",
      path = "/users_ids",
      params = {
        { name = "updated_since", ["in"] = "query", type = "string", format = "date-time", required = false },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "ListUserGuidsResponse",
    },
    {
      name = "list_user_metadata",
      operation_id = "list_user_metadata",
      method = "GET",
      path = "/v1/user_metadata",
      params = {
        { name = "limit", ["in"] = "query", type = "integer", required = false, default = 500 },
        { name = "user_id", ["in"] = "query", type = "string", required = false },
        { name = "org_id", ["in"] = "query", type = "string", required = false },
        { name = "app_id", ["in"] = "query", type = "string", required = false },
        { name = "data_type", ["in"] = "query", type = "string", required = false },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "ListUserMetadataResponse",
    },
    {
      name = "list_user_permissions",
      operation_id = "list_user_permissions",
      method = "GET",
      path = "/users/{user_id}/host_permissions",
      params = {
        { name = "user_id", ["in"] = "path", type = "string", required = true },
        { name = "org_id", ["in"] = "query", type = "string", required = false },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "HostPermissions",
    },
    {
      name = "list_user_requests",
      operation_id = "list_user_requests",
      method = "GET",
      path = "/v1/user_requests",
      params = {
        { name = "limit", ["in"] = "query", type = "integer", required = false, default = 500 },
        { name = "user_id", ["in"] = "query", type = "string", required = false },
        { name = "org_id", ["in"] = "query", type = "string", required = false },
        { name = "request_state", ["in"] = "query", type = "string", required = false },
        { name = "request_type", ["in"] = "query", type = "string", required = false },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "ListUserRequestInfoResponse",
    },
    {
      name = "list_users",
      operation_id = "list_users",
      paging = { kind = "keyset", items = "users", param = "previous_email", key = "email",
                 limit = { param = "limit", default = 500 } },
      method = "GET",
      path = "/users",
      params = {
        { name = "email", ["in"] = "query", type = "string", required = false },
        { name = "previous_email", ["in"] = "query", type = "string", required = false },
        { name = "provider", ["in"] = "query", type = "string", required = false },
        { name = "org_id", ["in"] = "query", type = "string", required = false },
        { name = "issuer", ["in"] = "query", type = "string", required = false },
        { name = "limit", ["in"] = "query", type = "integer", required = false, default = 500 },
        { name = "type", ["in"] = "query", type = "array", items = "string", style = "form", explode = true, required = false },
        { name = "upstream_user_id", ["in"] = "query", type = "string", required = false },
        { name = "upstream_idp_id", ["in"] = "query", type = "string", required = false },
        { name = "status", ["in"] = "query", type = "array", items = "string", items_enum = { "active", "pending", "disabled" }, style = "form", explode = true, required = false },
        { name = "search_direction", ["in"] = "query", type = "string", required = false, default = "forwards" },
        { name = "has_roles", ["in"] = "query", type = "boolean", required = false },
        { name = "has_resource_roles", ["in"] = "query", type = "boolean", required = false },
        { name = "prefix_email_search", ["in"] = "query", type = "string", required = false },
        { name = "orgless_users", ["in"] = "query", type = "boolean", required = false },
        { name = "allow_partial_match", ["in"] = "query", type = "boolean", required = false },
        { name = "first_name", ["in"] = "query", type = "string", required = false },
        { name = "last_name", ["in"] = "query", type = "string", required = false },
        { name = "user_id", ["in"] = "query", type = "string", required = false },
        { name = "search_params", ["in"] = "query", type = "array", items = "string", style = "form", explode = true, required = false },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "ListUsersResponse",
    },
    {
      name = "replace_challenge_method",
      operation_id = "replace_challenge_method",
      method = "PUT",
      path = "/users/{user_id}/mfa_challenge_methods/{challenge_method_id}",
      params = {
        { name = "user_id", ["in"] = "path", type = "string", required = true },
        { name = "challenge_method_id", ["in"] = "path", type = "string", required = true },
        { name = "mfa_challenge_method", ["in"] = "body", type = "object", required = false, content_type = "application/json", schema = "MFAChallengeMethod", arrays = {} },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "MFAChallengeMethod",
    },
    {
      name = "replace_service_account",
      operation_id = "replace_service_account",
      method = "PUT",
      path = "/v1/service_accounts/{service_account_id}",
      params = {
        { name = "service_account_id", ["in"] = "path", type = "string", required = true },
        { name = "service_account", ["in"] = "body", type = "object", required = false, content_type = "application/json", schema = "ServiceAccount", arrays = {} },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "ServiceAccount",
    },
    {
      name = "replace_upstream_user_identity",
      operation_id = "replace_upstream_user_identity",
      method = "PUT",
      path = "/users/{user_id}/upstream_user_identities/{upstream_user_identity_id}",
      params = {
        { name = "user_id", ["in"] = "path", type = "string", required = true },
        { name = "upstream_user_identity_id", ["in"] = "path", type = "string", required = true },
        { name = "upstream_user_identity", ["in"] = "body", type = "object", required = false, content_type = "application/json", schema = "UpstreamUserIdentity", arrays = {} },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "UpstreamUserIdentity",
    },
    {
      name = "replace_user",
      operation_id = "replace_user",
      method = "PUT",
      path = "/users/{user_id}",
      params = {
        { name = "user_id", ["in"] = "path", type = "string", required = true },
        { name = "user", ["in"] = "body", type = "object", required = false, content_type = "application/json", schema = "User", arrays = { "member_of", "roles.*" } },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "User",
    },
    {
      name = "replace_user_metadata",
      operation_id = "replace_user_metadata",
      method = "PUT",
      path = "/v1/user_metadata/{metadata_id}",
      params = {
        { name = "metadata_id", ["in"] = "path", type = "string", required = true },
        { name = "user_metadata", ["in"] = "body", type = "object", required = false, content_type = "application/json", schema = "UserMetadata", arrays = {} },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "UserMetadata",
    },
    {
      name = "replace_user_request",
      operation_id = "replace_user_request",
      method = "PUT",
      path = "/v1/user_requests/{user_request_id}",
      params = {
        { name = "user_request_id", ["in"] = "path", type = "string", required = true },
        { name = "user_request_info", ["in"] = "body", type = "object", required = false, content_type = "application/json", schema = "UserRequestInfo", arrays = {} },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "UserRequestInfo",
    },
    {
      name = "replace_user_role",
      operation_id = "replace_user_role",
      method = "PUT",
      path = "/users/{user_id}/roles",
      params = {
        { name = "user_id", ["in"] = "path", type = "string", required = true },
        { name = "org_id", ["in"] = "query", type = "string", required = false },
        { name = "replace_user_role_request", ["in"] = "body", type = "object", required = false, content_type = "application/json", schema = "ReplaceUserRoleRequest", arrays = {} },
      },
      security = { "token-valid" },
      success = { 204 },
      returns = nil,
    },
    {
      name = "reset_user_mfa_challenge_methods",
      operation_id = "reset_user_mfa_challenge_methods",
      method = "POST",
      path = "/users/{user_id}/reset_mfa_challenge_methods",
      params = {
        { name = "user_id", ["in"] = "path", type = "string", required = true },
        { name = "reset_mfa_challenge_method", ["in"] = "body", type = "object", required = true, content_type = "application/json", schema = "ResetMFAChallengeMethod", arrays = {} },
      },
      security = { "token-valid" },
      success = { 204 },
      returns = nil,
    },
    {
      name = "update_user_request",
      operation_id = "update_user_request",
      method = "POST",
      path = "/v1/user_requests/{user_request_id}",
      params = {
        { name = "user_request_id", ["in"] = "path", type = "string", required = true },
        { name = "user_request_info", ["in"] = "body", type = "object", required = false, content_type = "application/json", schema = "UserRequestInfo", arrays = {} },
      },
      security = { "token-valid" },
      success = { 200 },
      returns = "UserRequestInfo",
    },
}

-- The person resource the reconciler (lua/provision/reconcile.lua) works on:
-- one user per roster row, keyed by email in the organisation the CLI's
-- settings name (context org_id). Format: docs/reconcile.md "Resources".
-- replace_user replaces the whole record, so its body is the record as read
-- with every managed field set to the roster's value ("=merged"); roles go
-- through replace_user_role as well (the two may run in either order: both
-- carry the roster's roles).
local resource = {
  noun = "user",
  key = { column = "email", field = "email", case = "insensitive" },
  context = { org_id = { required = true, what = "the Agilicus organisation id (--org-id, "
    .. "PROVISION_AGILICUS_ORG_ID, config agilicus.org_id)" } },
  id = "id",
  list = { operation = "list_users", args = { { org_id = "=context.org_id", limit = 500 } } },
  read = { operation = "list_users", args = { { org_id = "=context.org_id", email = "=key", limit = 10 } },
           items = "users" },
  fields = {
    { name = "first_name", column = "first_name", kind = "text", path = "first_name", update = "user" },
    { name = "last_name", column = "last_name", kind = "text", path = "last_name", update = "user" },
    { name = "roles", column = "agilicus_roles", kind = "role_map", path = "roles", update = "roles" },
    { name = "status", column = "agilicus_status", kind = "enum", values = { "active", "disabled" },
      path = "status", update = "user" },
  },
  create = { operation = "create_user", args = { {
    email = "=key", first_name = "=desired.first_name", last_name = "=desired.last_name",
    org_id = "=context.org_id", roles = "=desired.roles", status = "=desired.status",
  } } },
  updates = {
    user = { operation = "replace_user", args = { "=observed.id", { user = "=merged" } } },
    roles = { operation = "replace_user_role", args = { "=observed.id", {
      org_id = "=context.org_id", replace_user_role_request = { roles = "=desired.roles" } } } },
  },
  remove = { operation = "delete_user", args = { "=context.org_id", "=observed.id" }, gone = { status = 404 } },
  disable = { set = { status = "disabled" } },
}

return {
  class = "UsersApi",
  api = "agilicus",
  spec = "agilicus.reconstructed.openapi.json",
  seed = "agilicus-UsersApi.md",
  schemas = "agilicus",
  servers = {
    default = "https://api.agilicus.com",
  },
  security_schemes = {
    ["token-valid"] = { type = "http", scheme = "bearer", bearer_format = "JWT" },
  },
  envelope = "agilicus",
  errors = nil,
  operations = operations,
  resource = resource,
}
