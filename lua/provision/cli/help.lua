-- Help texts of bin/provision: the global help, `apis`, `API ops`,
-- `API help OPERATION` and `help exit-codes`, all printed through the one
-- output module. Lua 5.1/5.4 common syntax.
local args = require("provision.cli.args")
local catalog = require("provision.cli.catalog")
local bodyfields = require("provision.cli.bodyfields")
local exit = require("provision.cli.exit")
local util = require("provision.cli.util")

local help = {}

local api_table, operations, signature = catalog.api_table, catalog.operations, catalog.signature

function help.global(out, commands)
  local lines = {
    "usage: provision [FLAGS] COMMAND ...",
    "",
    "Calls to the provisioning APIs (DocSpace, Outpost, Agilicus, Document360) from a shell.",
    "",
    "commands:",
    "  provision apis                           the four APIs, their classes and operation counts",
    "  provision API ops                        operations of an API, one signature a line",
    "  provision API help OPERATION             method, path, parameters, body, auth, success codes",
    "  provision API OPERATION [ARGS] [--NAME=VALUE ...] [--body=JSON|@FILE|-]",
    "                                           call an operation and print its result",
    "  provision API OPERATION --input FILE     one call per row of a JSON Lines or CSV file",
  }
  for _, c in ipairs(commands) do
    lines[#lines + 1] = string.format("  %-40s %s", "provision " .. c.synopsis, c.summary)
  end
  local rest = {
    "  provision help exit-codes                what each exit code means",
    "  provision --version",
    "",
    "API is docspace, outpost, agilicus or document360 (or the class name: PortalUsersApi,",
    "Tenants, UsersApi, TeamsApi). Required parameters are positional, in order; optional",
    "ones are --name=VALUE (snake_case, kebab-case or wire name). Arrays: repeat the option",
    "or give a comma list. Booleans: --flag, --no-flag, --flag=false.",
    "",
    "flags:",
  }
  for _, l in ipairs(rest) do lines[#lines + 1] = l end
  local rows = {}
  for _, f in ipairs(args.flags) do
    local left = (f.short and ("-" .. f.short .. ", ") or "    ") .. "--" .. f.name
    if f.value then left = left .. (f.optional and "[=" .. f.value .. "]" or " " .. f.value) end
    rows[#rows + 1] = { "  " .. left, f.help }
  end
  for _, l in ipairs(util.columns(rows)) do lines[#lines + 1] = l end
  local more = {
    "",
    "connection settings (first found wins): flags, then environment, then the config file",
    "(--config FILE, $PROVISION_CONFIG, ~/.config/provision/config.lua; --profile NAME or",
    "$PROVISION_PROFILE picks one of its profiles). Environment:",
    "  PROVISION_<API>_URL                  base URL or named server",
    "  PROVISION_DOCSPACE_TOKEN | _API_KEY | _COOKIE | _USER + _PASSWORD",
    "  PROVISION_OUTPOST_API_KEY | _TENANT_JWT   (and _GENERATION, _TENANT_ID)",
    "  PROVISION_AGILICUS_TOKEN",
    "  PROVISION_DOCUMENT360_TOKEN",
    "  PROVISION_OUTPUT                     output format when --output is not given",
    "",
    "exit codes: 0 ok, 1 rejected (4xx), 2 usage, 3 network, 4 authentication,",
    "            5 server error, 6 outcome unknown, 130 interrupted (provision help exit-codes)",
    "",
    "examples:",
    "  provision --sandbox agilicus list_users --org_id=Nw7kQ2pX9sT4vB8mL1cR3d -o table",
    "  provision agilicus list_users --email ada@example.com --fields id,email,status",
    "  provision agilicus create_user --input new-users.csv --results results.jsonl",
    "  provision outpost get_portal_url acme --fields redirect_url",
    "  provision doctor",
    "See docs/cli.md for more.",
  }
  for _, l in ipairs(more) do lines[#lines + 1] = l end
  out:print(table.concat(lines, "\n"))
end

function help.exit_codes(out)
  local lines = { "exit codes of provision:" }
  for _, row in ipairs(exit.table) do lines[#lines + 1] = string.format("  %3d  %s", row[1], row[2]) end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "With --input, the worst row decides, in this order: 130, 6, 5, 3, 4, 2, 1, 0."
  lines[#lines + 1] = "A row that already exists (409; Document360 \"Existing team member\") counts as done."
  out:print(table.concat(lines, "\n"))
end

function help.apis(out)
  local rows = { { "API", "CLASS", "OPERATIONS", "DEFAULT SERVER" } }
  for _, key in ipairs(catalog.API_KEYS) do
    local api = api_table(key)
    local count
    if api.generations then
      local parts = {}
      local gens = {}
      for g in pairs(api.generations) do gens[#gens + 1] = g end
      table.sort(gens, function(a, b)
        if a == api.default_generation then return true end
        if b == api.default_generation then return false end
        return a < b
      end)
      for _, g in ipairs(gens) do
        parts[#parts + 1] = #api.generations[g].operations .. " (" .. g ..
          (g == api.default_generation and ", default" or "") .. ")"
      end
      count = table.concat(parts, ", ")
    else
      count = tostring(#api.operations)
    end
    local server = (api.servers and api.servers.default) or ""
    rows[#rows + 1] = { key, api.class, count, server }
  end
  out:print(table.concat(util.columns(rows), "\n"))
end

function help.ops(out, key, generation)
  local api = api_table(key)
  local ops, g = operations(api, generation)
  local head = string.format("%s (%s): %d operations", api.class, key, #ops)
  if g then
    local others = {}
    for name in pairs(api.generations) do if name ~= g then others[#others + 1] = name end end
    table.sort(others)
    head = head .. string.format(" on the '%s' server generation (others: %s; use --generation)",
      g, table.concat(others, ", "))
  end
  out:print(head)
  for _, op in ipairs(ops) do out:print("  " .. signature(op)) end
  out:print(string.format("details: provision %s help OPERATION", key))
end

function help.operation(out, key, op, generation)
  local api = api_table(key)
  local lines = {}
  local function add(s) lines[#lines + 1] = s end
  add(string.format("%s.%s%s", api.class, op.name, op.deprecated and "  (DEPRECATED)" or ""))
  add(string.format("  %s %s", op.method, op.path))
  if op.operation_id then add("  operationId: " .. op.operation_id) end
  if generation then add("  server generation: " .. generation) end
  add("")
  add("usage: provision " .. key .. " " .. signature(op))
  add("")
  if #op.params > 0 then
    add("parameters:")
    for _, l in ipairs(util.columns(catalog.param_rows(op))) do add("  " .. l) end
  else
    add("parameters: none")
  end
  local bp = catalog.body_param(op)
  if bp then
    add("")
    add(string.format("body: %s (%s%s), %s; give it as JSON text, @FILE or - (stdin), %s",
      bp.name, bp.schema or bp.type, bp.type == "array" and ", a JSON array" or "",
      bp.required and "required" or "optional",
      bp.required and "positionally or with --body" or "with --body or --" .. bp.name))
    for _, l in ipairs(bodyfields.help_lines(op, bp)) do add(l) end
  end
  add("")
  if op.security and #op.security > 0 then
    add("auth (the first scheme you hold a credential for is used):")
    local rows = {}
    for _, name in ipairs(op.security) do
      local s = api.security_schemes[name] or {}
      rows[#rows + 1] = { "  " .. name, catalog.scheme_text(s), catalog.scheme_source(key, name) }
    end
    for _, l in ipairs(util.columns(rows)) do add(l) end
  else
    add("auth: none")
  end
  local codes = {}
  for _, c in ipairs(op.success or {}) do codes[#codes + 1] = tostring(c) end
  add("success: " .. table.concat(codes, ", ") .. (op.returns and ("; returns " .. op.returns) or "; no result body"))
  if op.paging then
    local pg = op.paging
    local how = pg.kind == "cursor" and ("cursor " .. pg.next.field .. " -> --" .. pg.next.param)
      or pg.kind == "keyset" and ("keyset on " .. pg.key .. " -> --" .. pg.param)
      or ("offset --" .. tostring(pg.skip) .. "/--" .. tostring(pg.take))
    add("paging: " .. how .. "; --all follows every page")
  end
  out:print(table.concat(lines, "\n"))
end


return help
