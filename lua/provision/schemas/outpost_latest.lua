-- Schema data of Tenants (latest): request and response schemas of the 6 operations tagged Tenants
-- (request bodies: 1, responses: 7, definitions: 7), from the published spec
-- outpost.latest.openapi.json (sha256 0a832e7d7b74758e887c1c36be639c42bfe82261dc8c2ac9cc2b817b762a5a3a, openapi 3.1.0, info.version 0.0.1), 2026-12-01.
-- Written by scripts/gen-schemas.lua (make schemas): do not edit by hand. Format: docs/api-tables.md.
return {
  source = "outpost.latest.openapi.json",
  source_sha256 = "0a832e7d7b74758e887c1c36be639c42bfe82261dc8c2ac9cc2b817b762a5a3a",
  source_openapi = "3.1.0",
  source_info_version = "0.0.1",
  generator = "scripts/gen-schemas.lua (make schemas); do not edit by hand",
  generated = "2026-12-01",
  operations = {
    ["DELETE /tenants/{tenant_id}"] = { responses = { [200] = { ref = "SuccessResponse" } } },
    ["GET /tenants"] = { responses = { [200] = { ref = "TenantPaginatedResult" } } },
    ["GET /tenants/{tenant_id}"] = { responses = { [200] = { ref = "Tenant" } } },
    ["GET /tenants/{tenant_id}/portal"] = { responses = { [200] = { ref = "PortalRedirect" } } },
    ["GET /tenants/{tenant_id}/token"] = { responses = { [200] = { ref = "TenantToken" } } },
    ["PUT /tenants/{tenant_id}"] = {
      content_type = "application/json",
      body = { ref = "TenantUpsert" },
      responses = { [200] = { ref = "Tenant" }, [201] = { ref = "Tenant" } },
    },
  },
  definitions = {
    PortalRedirect = {
      type = "object",
      properties = {
        {
          name = "redirect_url",
          type = "string",
          format = "url",
          description = "Redirect URL containing a JWT to authenticate the user with the portal.",
        },
        {
          name = "tenant_id",
          type = "string",
          description = "The ID of the tenant associated with this portal session.",
        },
      },
    },
    SeekPagination = {
      type = "object",
      description = "Cursor-based pagination metadata for list responses.",
      properties = {
        { name = "order_by", type = "string", description = "The field being sorted on." },
        { name = "dir", type = "string", enum = { "asc", "desc" }, description = "Sort direction." },
        { name = "limit", type = "integer", description = "Page size limit." },
        {
          name = "next",
          type = "string",
          nullable = true,
          description = "Cursor for the next page of results. Null if no more results.",
        },
        { name = "prev", type = "string", nullable = true, description = "Cursor for the previous page of results." },
      },
    },
    SuccessResponse = { type = "object", properties = { { name = "success", type = "boolean" } } },
    Tenant = {
      type = "object",
      properties = {
        { name = "id", type = "string", description = "User-defined system ID for the tenant." },
        {
          name = "destinations_count",
          type = "integer",
          description = "Number of destinations associated with the tenant.",
        },
        {
          name = "topics",
          type = "array",
          description = "List of subscribed topics across all destinations for this tenant.",
          items = { type = "string" },
        },
        {
          name = "metadata",
          type = "object",
          nullable = true,
          description = "Arbitrary key-value pairs for storing contextual information about the tenant.",
          additional_properties = { type = "string" },
        },
        {
          name = "created_at",
          type = "string",
          format = "date-time",
          description = "ISO Date when the tenant was created.",
        },
        {
          name = "updated_at",
          type = "string",
          format = "date-time",
          description = "ISO Date when the tenant was last updated.",
        },
      },
    },
    TenantPaginatedResult = {
      type = "object",
      description = "Paginated list of tenants.",
      properties = {
        { name = "models", type = "array", description = "Array of tenant objects.", items = { ref = "Tenant" } },
        { name = "pagination", ref = "SeekPagination" },
        { name = "count", type = "integer", description = "Total count of all tenants." },
      },
    },
    TenantToken = {
      type = "object",
      properties = {
        {
          name = "token",
          type = "string",
          description = "JWT token scoped to the tenant for safe browser API calls.",
        },
        { name = "tenant_id", type = "string", description = "The ID of the tenant this token is scoped to." },
      },
    },
    TenantUpsert = {
      type = "object",
      properties = {
        {
          name = "metadata",
          type = "object",
          nullable = true,
          description = "Optional key/value metadata to store with the tenant.",
          additional_properties = { type = "string" },
        },
      },
    },
  },
}
