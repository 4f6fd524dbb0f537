-- Hookdeck Outpost `Tenants`: the documented (Speakeasy-generated) SDK class,
-- 7 operations, for two generations of the server. Checked against
-- tests/contract/outpost.openapi.json (generation "v0") and
-- tests/contract/outpost.latest.openapi.json (generation "latest"), cut from
-- the published specs by scripts/contract-fixtures.lua, by
-- tests/spec/spec_agreement_spec.lua. Format: docs/api-tables.md
-- ("Generations").
--
--  v0      the spec the documented SDK was generated from: /{tenant_id},
--          /{tenant_id}/portal, /{tenant_id}/token, /portal, /token.
--          The documented SDK targets it; choose it with generation = "v0".
--  latest  the current server (the default generation and `operations`): everything under /tenants/{tenant_id}, the
--          two *_jwt_context operations are gone, `list` (cursor paging,
--          GET /tenants) is new, upsert takes an optional {metadata} body and
--          answers 201 when it creates, 200 when it updates.
--
-- Notes:
--  * tenant_id is a path placeholder (so the spec says required) but the SDK
--    treats it as optional: it may be set once on the client
--    (client_default = "tenant_id"); with a TenantJwt the tenant is the
--    token's `sub`, yet the path still needs it. So: required = false,
--    spec_required = true, client_default = "tenant_id".
--  * Error classes are the SDK's (file-level `errors`). The SDK names the
--    timeout class TimeoutErrorT (a Python-ism); ours is TimeoutError.
--    Where the spec documents a status with a plain description instead of
--    an error response (404 "Tenant not found." on get/delete/portal/token;
--    401 and 404 on the *_jwt_context operations) the SDK does not map it to
--    a class, so it falls through to APIError: the per-operation `errors`
--    record exactly that, as the seed page's error tables show.
--  * latest `list`: `id` filters by one or more tenant IDs; the spec asks
--    for bracket notation (id[]=t1&id[]=t2), hence key_suffix = "[]".
--    The upstream SDK of a later spec revision calls this method
--    list_tenants (with order_by/direction/next_cursor/prev_cursor); this
--    table follows the spec we have, with the wire names.
--  * latest upsert: the body parameter is named `params`, as the current
--    Speakeasy SDK names it (UpsertTenantRequest.params: TenantUpsert).

local errors = {
  [400] = "BadRequestError", [413] = "BadRequestError", [414] = "BadRequestError",
  [415] = "BadRequestError", [422] = "BadRequestError", [431] = "BadRequestError",
  [510] = "BadRequestError",
  [401] = "UnauthorizedError", [403] = "UnauthorizedError", [407] = "UnauthorizedError",
  [511] = "UnauthorizedError",
  [404] = "NotFoundError", [501] = "NotFoundError", [505] = "NotFoundError",
  [429] = "RateLimitedError",
  [500] = "InternalServerError", [502] = "InternalServerError", [503] = "InternalServerError",
  [506] = "InternalServerError", [507] = "InternalServerError", [508] = "InternalServerError",
  [408] = "TimeoutError", [504] = "TimeoutError",
  ["4XX"] = "APIError", ["5XX"] = "APIError",
}

local v0 = {
  {
    name = "upsert",
    operation_id = "upsertTenant",
    method = "PUT",
    path = "/{tenant_id}",
    params = {
      { name = "tenant_id", ["in"] = "path", type = "string", required = false,
        spec_required = true, client_default = "tenant_id" },
    },
    security = { "AdminApiKey" },
    success = { 200 },
    returns = "Tenant",
  },
  {
    name = "get",
    operation_id = "getTenant",
    method = "GET",
    path = "/{tenant_id}",
    params = {
      { name = "tenant_id", ["in"] = "path", type = "string", required = false,
        spec_required = true, client_default = "tenant_id" },
    },
    security = { "AdminApiKey", "TenantJwt" },
    success = { 200 },
    returns = "Tenant",
    errors = { [404] = "APIError" },
  },
  {
    name = "delete",
    operation_id = "deleteTenant",
    method = "DELETE",
    path = "/{tenant_id}",
    params = {
      { name = "tenant_id", ["in"] = "path", type = "string", required = false,
        spec_required = true, client_default = "tenant_id" },
    },
    security = { "AdminApiKey", "TenantJwt" },
    success = { 200 },
    returns = "SuccessResponse",
    errors = { [404] = "APIError" },
  },
  {
    name = "get_portal_url",
    operation_id = "getTenantPortalUrl",
    method = "GET",
    path = "/{tenant_id}/portal",
    params = {
      { name = "tenant_id", ["in"] = "path", type = "string", required = false,
        spec_required = true, client_default = "tenant_id" },
      { name = "theme", ["in"] = "query", type = "string", required = false,
        enum = { "light", "dark" } },
    },
    security = { "AdminApiKey" },
    success = { 200 },
    returns = "PortalRedirect",
    errors = { [404] = "APIError" },
  },
  {
    name = "get_token",
    operation_id = "getTenantToken",
    method = "GET",
    path = "/{tenant_id}/token",
    params = {
      { name = "tenant_id", ["in"] = "path", type = "string", required = false,
        spec_required = true, client_default = "tenant_id" },
    },
    security = { "AdminApiKey" },
    success = { 200 },
    returns = "TenantToken",
    errors = { [404] = "APIError" },
  },
  {
    name = "get_portal_url_jwt_context",
    operation_id = "getPortalUrlJwtContext",
    method = "GET",
    path = "/portal",
    params = {
      { name = "theme", ["in"] = "query", type = "string", required = false,
        enum = { "light", "dark" } },
    },
    security = { "AdminApiKey" },
    success = { 200 },
    returns = "PortalRedirect",
    errors = { [401] = "APIError", [404] = "APIError" },
  },
  {
    name = "get_token_jwt_context",
    operation_id = "getTenantTokenJwtContext",
    method = "GET",
    path = "/token",
    params = {},
    security = { "AdminApiKey" },
    success = { 200 },
    returns = "TenantToken",
    errors = { [401] = "APIError", [404] = "APIError" },
  },
}

local latest = {
  {
    name = "list",
    operation_id = "listTenants",
    method = "GET",
    path = "/tenants",
    params = {
      { name = "id", ["in"] = "query", type = "array", items = "string",
        style = "form", explode = true, key_suffix = "[]", required = false },
      { name = "limit", ["in"] = "query", type = "integer", required = false,
        default = 20, minimum = 1, maximum = 100 },
      { name = "dir", ["in"] = "query", type = "string", required = false,
        default = "desc", enum = { "asc", "desc" } },
      { name = "next", ["in"] = "query", type = "string", required = false },
      { name = "prev", ["in"] = "query", type = "string", required = false },
    },
    security = { "AdminApiKey", "TenantJwt" },
    success = { 200 },
    returns = "TenantPaginatedResult",
    paging = { kind = "cursor", items = "models",
               next = { param = "next", field = "pagination.next" },
               prev = { param = "prev", field = "pagination.prev" } },
  },
  {
    name = "upsert",
    operation_id = "upsertTenant",
    method = "PUT",
    path = "/tenants/{tenant_id}",
    params = {
      { name = "tenant_id", ["in"] = "path", type = "string", required = false,
        spec_required = true, client_default = "tenant_id" },
      { name = "params", ["in"] = "body", type = "object", required = false,
        content_type = "application/json", schema = "TenantUpsert", arrays = {} },
    },
    security = { "AdminApiKey", "TenantJwt" },
    success = { 200, 201 },
    returns = "Tenant",
  },
  {
    name = "get",
    operation_id = "getTenant",
    method = "GET",
    path = "/tenants/{tenant_id}",
    params = {
      { name = "tenant_id", ["in"] = "path", type = "string", required = false,
        spec_required = true, client_default = "tenant_id" },
    },
    security = { "AdminApiKey", "TenantJwt" },
    success = { 200 },
    returns = "Tenant",
  },
  {
    name = "delete",
    operation_id = "deleteTenant",
    method = "DELETE",
    path = "/tenants/{tenant_id}",
    params = {
      { name = "tenant_id", ["in"] = "path", type = "string", required = false,
        spec_required = true, client_default = "tenant_id" },
    },
    security = { "AdminApiKey", "TenantJwt" },
    success = { 200 },
    returns = "SuccessResponse",
  },
  {
    name = "get_portal_url",
    operation_id = "getTenantPortalUrl",
    method = "GET",
    path = "/tenants/{tenant_id}/portal",
    params = {
      { name = "tenant_id", ["in"] = "path", type = "string", required = false,
        spec_required = true, client_default = "tenant_id" },
      { name = "theme", ["in"] = "query", type = "string", required = false,
        enum = { "light", "dark" } },
    },
    security = { "AdminApiKey" },
    success = { 200 },
    returns = "PortalRedirect",
  },
  {
    name = "get_token",
    operation_id = "getTenantToken",
    method = "GET",
    path = "/tenants/{tenant_id}/token",
    params = {
      { name = "tenant_id", ["in"] = "path", type = "string", required = false,
        spec_required = true, client_default = "tenant_id" },
    },
    security = { "AdminApiKey" },
    success = { 200 },
    returns = "TenantToken",
  },
}

-- The resource the reconciler works on (docs/reconcile.md "Resources"): a
-- tenant for each roster row with an outpost_tenant, keyed by tenant id,
-- with the outpost_metadata.* columns as its metadata (the older server
-- generation keeps none, and has no listing: each tenant is read by id).
local resource = {
  noun = "tenant",
  key = { column = "outpost_tenant", field = "id", case = "exact", pattern = "^[%w][%w._~-]*$" },
  member = "outpost_tenant",
  id = "id",
  list = { operation = "list", args = { { limit = 100 } } },
  read = { operation = "get", args = { { tenant_id = "=key" } }, absent = { status = 404 } },
  fields = {
    { name = "metadata", column_prefix = "outpost_metadata.", kind = "map", path = "metadata",
      update = "upsert", generations = { "latest" } },
  },
  create = { operation = "upsert", args = { { tenant_id = "=key", params = { metadata = "=desired.metadata" } } } },
  updates = {
    upsert = { operation = "upsert", args = { { tenant_id = "=key", params = { metadata = "=desired.metadata" } } } },
  },
  remove = { operation = "delete", args = { { tenant_id = "=key" } }, gone = { status = 404 } },
}

return {
  class = "Tenants",
  api = "outpost",
  spec = "outpost.openapi.json",
  seed = "outpost-Tenants.md",
  servers = {
    default = "http://localhost:3333/api/v1",
  },
  security_schemes = {
    AdminApiKey = { type = "http", scheme = "bearer" },
    TenantJwt = { type = "http", scheme = "bearer", bearer_format = "JWT" },
  },
  client_defaults = { "tenant_id" },
  envelope = "outpost",
  errors = errors,
  default_generation = "latest",
  generations = {
    v0 = { spec = "outpost.openapi.json", seed = "outpost-Tenants.md", schemas = "outpost_v0", operations = v0 },
    latest = {
      spec = "outpost.latest.openapi.json",
      schemas = "outpost_latest",
      servers = {
        -- the hosted service speaks only the latest generation
        production = "https://api.outpost.hookdeck.com/2025-07-01",
      },
      operations = latest,
    },
  },
  operations = latest,
  resource = resource,
}
