-- The published specs the schema data is made from (scripts/gen-schemas.lua),
-- the tags of the operations provision covers (as in scripts/contract-fixtures.lua),
-- and the data file each one becomes: lua/provision/schemas/<out>.lua.
return {
  { file = "docspace.seed.openapi.json", tags = { "Portal / Users" }, out = "docspace", class = "PortalUsersApi" },
  { file = "outpost.openapi.json", tags = { "Tenants" }, out = "outpost_v0", class = "Tenants (v0)" },
  { file = "outpost.latest.openapi.json", tags = { "Tenants" }, out = "outpost_latest", class = "Tenants (latest)" },
  { file = "agilicus.reconstructed.openapi.json", tags = { "users" }, out = "agilicus", class = "UsersApi" },
  { file = "document360.openapi.json", tags = { "Teams" }, out = "document360", class = "TeamsApi" },
}
