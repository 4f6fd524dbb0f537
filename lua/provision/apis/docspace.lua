-- ONLYOFFICE DocSpace `PortalUsersApi`: one entry per operation of the
-- documented SDK class (docspace-api-python, 5 operations), checked against
-- tests/contract/docspace.seed.openapi.json (cut from the published spec) by
-- tests/spec/spec_agreement_spec.lua. Format: docs/api-tables.md.
--
-- Notes:
--  * Every response is wrapped as {response, count, links, status,
--    statusCode} (envelope "docspace" unwraps it).
--  * EmployeeType used to be an integer enum (0-4) and is now a string enum.
--    The spec lists the names in the order All, RoomAdmin, Guest,
--    DocSpaceAdmin, User, which is the server's numbering 0..4 (the
--    parameter's example is 1, i.e. RoomAdmin). `enum_numbers` lets callers
--    pass either; the name is what goes on the wire.
--  * send_congratulations: the spec marks Userid and Key required, the SDK
--    takes them as optional keywords. We keep the SDK signature (options
--    table) and record the spec's flag as spec_required.
--  * Security lists are in the spec's order (asc_auth_key first); the seed
--    page lists the same six schemes in another order.
--  * The spec's server is "{baseUrl}" with default "http://localhost:8092/";
--    the trailing slash is dropped since every path starts with "/".
local AUTH = { "asc_auth_key", "Bearer", "ApiKeyBearer", "Basic", "OAuth2", "OpenId" }

local operations = {
  {
    name = "get_invitation_link",
    operation_id = "getInvitationLink",
    method = "GET",
    path = "/api/2.0/portal/users/invite/{employeeType}",
    params = {
      { name = "employee_type", wire = "employeeType", ["in"] = "path", type = "string",
        required = true, schema = "EmployeeType",
        enum = { "All", "RoomAdmin", "Guest", "DocSpaceAdmin", "User" },
        enum_numbers = { [0] = "All", [1] = "RoomAdmin", [2] = "Guest",
                         [3] = "DocSpaceAdmin", [4] = "User" } },
    },
    security = AUTH,
    success = { 200 },
    returns = "StringWrapper",
    deprecated = true,
  },
  {
    name = "get_portal_users_count",
    operation_id = "getPortalUsersCount",
    method = "GET",
    path = "/api/2.0/portal/userscount",
    params = {},
    security = AUTH,
    success = { 200 },
    returns = "Int64Wrapper",
  },
  {
    name = "get_user_by_id",
    operation_id = "getUserById",
    method = "GET",
    path = "/api/2.0/portal/users/{userID}",
    params = {
      { name = "user_id", wire = "userID", ["in"] = "path", type = "string", format = "uuid",
        required = true },
    },
    security = AUTH,
    success = { 200 },
    returns = "UserInfoWrapper",
  },
  {
    name = "mark_gift_message_as_read",
    operation_id = "markGiftMessageAsRead",
    method = "POST",
    path = "/api/2.0/portal/present/mark",
    params = {},
    security = AUTH,
    success = { 200 },
    returns = nil,
  },
  {
    name = "send_congratulations",
    operation_id = "sendCongratulations",
    method = "POST",
    path = "/api/2.0/portal/sendcongratulations",
    params = {
      { name = "userid", wire = "Userid", ["in"] = "query", type = "string", format = "uuid",
        required = false, spec_required = true },
      { name = "key", wire = "Key", ["in"] = "query", type = "string",
        required = false, spec_required = true },
    },
    security = {},
    success = { 200 },
    returns = nil,
  },
}

-- The reconciler's view (docs/reconcile.md "Resources"): PortalUsersApi can
-- neither list nor create users, so a roster row with a docspace_invite (an
-- employee type) gets an invitation link, once: the journal remembers who
-- was invited. A link holds a key, so it is treated as a secret (printed,
-- never journaled).
local resource = {
  noun = "invitation",
  key = { column = "email", case = "insensitive" },
  member = "docspace_invite",
  cannot_list = "PortalUsersApi can neither list nor create users",
  fields = {
    { name = "employee_type", column = "docspace_invite", kind = "enum",
      enum_of = { operation = "get_invitation_link", param = "employee_type" } },
  },
  invite = { operation = "get_invitation_link", args = { "=desired.employee_type" }, secret_result = true },
}

return {
  class = "PortalUsersApi",
  api = "docspace",
  spec = "docspace.seed.openapi.json",
  seed = "docspace-PortalUsersApi.md",
  schemas = "docspace",
  servers = {
    default = "http://localhost:8092",
  },
  security_schemes = {
    Basic = { type = "http", scheme = "basic" },
    OAuth2 = { type = "oauth2" },
    ApiKeyBearer = { type = "apiKey", ["in"] = "header", name = "ApiKeyBearer" },
    asc_auth_key = { type = "apiKey", ["in"] = "cookie", name = "asc_auth_key" },
    Bearer = { type = "http", scheme = "bearer", bearer_format = "JWT" },
    OpenId = { type = "openIdConnect" },
  },
  envelope = "docspace",
  errors = nil,
  operations = operations,
  resource = resource,
}
