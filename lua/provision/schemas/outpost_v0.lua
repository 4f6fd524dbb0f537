-- Schema data of Tenants (v0): request and response schemas of the 7 operations tagged Tenants
-- (request bodies: 0, responses: 7, definitions: 4), from the published spec
-- outpost.openapi.json (sha256 5ef0abf8b25657027dcf7e7ee136c6a51e224aa9449ea939c900d00a9d3152d0, openapi 3.1.0, info.version 0.0.1), 2026-12-01.
-- Written by scripts/gen-schemas.lua (make schemas): do not edit by hand. Format: docs/api-tables.md.
return {
  source = "outpost.openapi.json",
  source_sha256 = "5ef0abf8b25657027dcf7e7ee136c6a51e224aa9449ea939c900d00a9d3152d0",
  source_openapi = "3.1.0",
  source_info_version = "0.0.1",
  generator = "scripts/gen-schemas.lua (make schemas); do not edit by hand",
  generated = "2026-12-01",
  operations = {
    ["DELETE /{tenant_id}"] = { responses = { [200] = { ref = "SuccessResponse" } } },
    ["GET /portal"] = { responses = { [200] = { ref = "PortalRedirect" } } },
    ["GET /token"] = { responses = { [200] = { ref = "TenantToken" } } },
    ["GET /{tenant_id}"] = { responses = { [200] = { ref = "Tenant" } } },
    ["GET /{tenant_id}/portal"] = { responses = { [200] = { ref = "PortalRedirect" } } },
    ["GET /{tenant_id}/token"] = { responses = { [200] = { ref = "TenantToken" } } },
    ["PUT /{tenant_id}"] = { responses = { [200] = { ref = "Tenant" } } },
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
          name = "created_at",
          type = "string",
          format = "date-time",
          description = "ISO Date when the tenant was created.",
        },
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
      },
    },
  },
}
