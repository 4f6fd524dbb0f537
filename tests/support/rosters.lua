-- Generated rosters for the reconciler's specs and benchmarks: N people,
-- each an Agilicus user with a role, a Document360 reader, an Outpost
-- tenant with metadata, and every tenth one a DocSpace invitation.
--   local rosters = require "support.rosters"
--   local csv = rosters.csv(1000, { domain = "load.example" })
--   rosters.email(i, opts), rosters.tenant(i, opts)
local M = {}

function M.email(i, opts)
  return ("person%05d@%s"):format(i, (opts and opts.domain) or "load.example")
end

function M.tenant(i, opts)
  return ("%s-%05d"):format((opts and opts.tenant_prefix) or "load", i)
end

function M.csv(n, opts)
  opts = opts or {}
  local lines = { "email,first_name,last_name,agilicus_roles,document360_role,outpost_tenant,outpost_metadata.team,docspace_invite" }
  for i = 1, n do
    lines[#lines + 1] = table.concat({
      M.email(i, opts), "Person", ("N%05d"):format(i), (i % 3 == 0) and "vpn:self;crm:user" or "vpn:self",
      opts.d360_role or "Reader", M.tenant(i, opts), "team" .. (i % 7), (i % 10 == 0) and "User" or "",
    }, ",")
  end
  return table.concat(lines, "\n") .. "\n"
end

return M
