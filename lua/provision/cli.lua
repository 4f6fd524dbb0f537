-- The command line (bin/provision is a thin launcher around cli.main):
--
--   provision apis
--   provision <api> ops
--   provision <api> help <operation>
--   provision <api> <operation> [ARGS...] [--name=value...] [--body=JSON|@FILE|-]
--
-- cli.main(argv, ctx) runs one command and returns the exit code:
-- 0 success, 1 API/HTTP error, 2 usage or configuration error, 3 transport
-- error (connect, DNS, timeout, TLS). ctx (all optional) = {stdout, stderr,
-- stdin, getenv}, so tests and hosts can run it in-process.
-- Lua 5.1/5.4 common syntax. See docs/cli.md.
local provision = require("provision")
local core = require("provision.core")
local json = require("provision.json")
local auth = require("provision.auth")
local client_mod = require("provision.client")
local args = require("provision.cli.args")
local settings = require("provision.cli.settings")
local util = require("provision.cli.util")

local unpack = table.unpack or unpack

local cli = {}

cli.EXIT_OK, cli.EXIT_API, cli.EXIT_USAGE, cli.EXIT_TRANSPORT = 0, 1, 2, 3
cli.EXIT_INTERRUPTED = 130   -- 128 + SIGINT, as shells report a Ctrl-C

local API_KEYS = { "docspace", "outpost", "agilicus", "document360" }
local CLASSES = { docspace = "PortalUsersApi", outpost = "Tenants", agilicus = "UsersApi", document360 = "TeamsApi" }
local DEFAULT_SANDBOX = "http://127.0.0.1:8090"

local transport_kinds = { connect = true, dns = true, timeout = true, tls = true, network = true,
                          closed = true, protocol = true, aborted = true, too_large = true }
local usage_kinds = { invalid_argument = true, auth = true }

-- Exit code for an error object from the library.
function cli.exit_code(err)
  local kind = type(err) == "table" and err.kind
  if transport_kinds[kind] then return cli.EXIT_TRANSPORT end
  if usage_kinds[kind] then return cli.EXIT_USAGE end
  return cli.EXIT_API
end

-- A usage error travels as a table through error() up to main.
local Usage = {}
local function usage(fmt, ...)
  error(setmetatable({ message = string.format(fmt, ...) }, Usage), 0)
end

---------------------------------------------------------------------------
-- API and operation lookup

local function resolve_api(word)
  if CLASSES[word] then return word end
  local lw = word:lower()
  for key, class in pairs(CLASSES) do
    if lw == key or lw == class:lower() then return key end
  end
  return nil
end

local function api_table(key)
  return assert(provision.api(key))
end

-- Operations of an API for a generation (Outpost), and the generation used.
local function operations(api, generation)
  local ops, g = client_mod.select_operations(api, generation)
  if not ops then usage("%s: %s", api.api, g) end
  return ops, g
end

local function op_names(ops)
  local names = {}
  for _, op in ipairs(ops) do names[#names + 1] = op.name end
  return names
end

local function find_op(api, ops, word, generation)
  local w = word:gsub("%-", "_")
  for _, op in ipairs(ops) do
    if op.name == w or op.operation_id == word then return op end
  end
  local lw = w:lower()
  for _, op in ipairs(ops) do
    if op.name:lower() == lw or (op.operation_id and op.operation_id:lower() == lw) then return op end
  end
  if api.generations then
    for g, gen in pairs(api.generations) do
      if g ~= generation then
        for _, op in ipairs(gen.operations) do
          if op.name == w then
            usage("%s.%s exists only on the '%s' server generation; add --generation=%s",
              api.class, w, g, g)
          end
        end
      end
    end
  end
  return nil
end

-- Positional parameters: the SDK's required ones, then (as a convenience)
-- those the spec requires but the SDK takes as keywords (Outpost tenant_id).
local function positional_params(op)
  local req, extra = {}, {}
  for _, p in ipairs(op.params) do
    if p.required and not p.client_default then req[#req + 1] = p
    elseif p.spec_required then extra[#extra + 1] = p end
  end
  return req, extra
end

local function body_param(op)
  for _, p in ipairs(op.params) do
    if p["in"] == "body" then return p end
  end
end

local function param_lookup(op)
  return function(name)
    local n = name:gsub("%-", "_")
    for _, p in ipairs(op.params) do
      if p.name == n or p.wire == name or (p.wire and p.wire:lower() == n:lower():gsub("_", "")) then
        return p
      end
    end
    return nil
  end
end

---------------------------------------------------------------------------
-- Describing operations

local function type_label(p)
  if p["in"] == "body" then return "JSON" end
  if p.enum then return table.concat(p.enum, "|") end
  if p.type == "array" then
    local item = p.items_enum and table.concat(p.items_enum, "|") or type_label({ type = p.items or "string" })
    return item .. ",..."
  end
  local t = p.type or "string"
  if t == "integer" then return "INT" end
  if t == "number" then return "NUM" end
  if t == "boolean" then return "BOOL" end
  return (p.format and p.format:upper()) or "STR"
end

local function signature(op)
  local req, extra = positional_params(op)
  local parts = { op.name }
  local positional = {}
  for _, p in ipairs(req) do
    positional[p] = true
    parts[#parts + 1] = "<" .. p.name .. (p["in"] == "body" and ":JSON" or "") .. ">"
  end
  for _, p in ipairs(extra) do
    positional[p] = true
    parts[#parts + 1] = "[" .. p.name .. "]"
  end
  for _, p in ipairs(op.params) do
    if not positional[p] then
      if p.type == "boolean" then
        parts[#parts + 1] = "[--" .. p.name .. "]"
      else
        parts[#parts + 1] = "[--" .. p.name .. "=" .. type_label(p) .. "]"
      end
    end
  end
  local s = table.concat(parts, " ")
  local marks = {}
  if op.paging then marks[#marks + 1] = "paged" end
  if op.deprecated then marks[#marks + 1] = "deprecated" end
  if #marks > 0 then s = s .. "  (" .. table.concat(marks, ", ") .. ")" end
  return s
end

local function scheme_text(s)
  if s.type == "http" then return "HTTP " .. (s.scheme or "") end
  if s.type == "apiKey" then return "API key in " .. tostring(s["in"]) .. " " .. tostring(s.name) end
  return s.type
end

-- Which environment variable / config key supplies a scheme's credential.
local function scheme_source(apikey, name)
  local names = {}
  for _, c in ipairs(settings.credentials[apikey] or {}) do
    local target = c.auth
    if target == name or (target == "username" and name == "Basic") or (target == "password" and name == "Basic")
      or (apikey == "agilicus" and name == "token-valid") then
      names[#names + 1] = settings.env_name(apikey, c.key)
    end
  end
  if name == "OAuth2" or name == "OpenId" then return "config: auth = {access_token = ...} or {oauth2 = {...}}" end
  if #names == 0 then return "config: auth = {" .. name .. " = ...}" end
  return table.concat(names, " + ")
end

local function param_rows(op)
  local rows = { { "NAME", "WIRE", "IN", "TYPE", "REQUIRED", "DEFAULT", "ALLOWED / NOTES" } }
  for _, p in ipairs(op.params) do
    local t = p.type or "string"
    if t == "array" then t = "array<" .. (p.items or "string") .. ">" end
    local req = p.required and (p.client_default and "yes (client default)" or "yes")
      or (p.spec_required and "spec (positional ok)") or "no"
    if p.client_default then req = "no (--" .. p.client_default:gsub("_", "-") .. ")" end
    if p.spec_required and p.client_default then req = "spec (positional or --tenant-id)" end
    local notes = {}
    if p.enum then notes[#notes + 1] = table.concat(p.enum, "|") end
    if p.enum_numbers then
      local nums = {}
      for i = 0, 20 do if p.enum_numbers[i] then nums[#nums + 1] = i .. "=" .. p.enum_numbers[i] end end
      notes[#notes + 1] = "or " .. table.concat(nums, " ")
    end
    if p.items_enum then notes[#notes + 1] = "items: " .. table.concat(p.items_enum, "|") end
    if p.type == "array" then
      notes[#notes + 1] = "repeat or comma list"
      if p.key_suffix then notes[#notes + 1] = "sent as " .. (p.wire or p.name) .. p.key_suffix end
    end
    if p.minimum or p.maximum then
      notes[#notes + 1] = "range " .. tostring(p.minimum or "") .. ".." .. tostring(p.maximum or "")
    end
    if p.format then notes[#notes + 1] = "format " .. p.format end
    if p.schema then notes[#notes + 1] = "schema " .. p.schema end
    if p["in"] == "body" then notes[#notes + 1] = p.content_type or "application/json" end
    local default = p.default
    if default ~= nil then default = tostring(default) else default = "" end
    rows[#rows + 1] = { p.name, p.wire or "", p["in"], t, req, default, table.concat(notes, "; ") }
  end
  return rows
end

---------------------------------------------------------------------------
-- Output

local Out = {}
Out.__index = Out

local function new_out(ctx)
  return setmetatable({ stdout = ctx.stdout, stderr = ctx.stderr, redact = util.redactor() }, Out)
end

function Out:print(s)
  self.stdout:write(self.redact.apply(s), "\n")
end

function Out:err(s)
  self.stderr:write(self.redact.apply(s), "\n")
end

function Out:json(v, compact, stream)
  local s, err = util.to_json(v, compact)
  if not s then s = "(cannot show as JSON: " .. tostring(err) .. ")" end
  if stream == "stderr" then self:err(s) else self:print(s) end
end

---------------------------------------------------------------------------
-- Help texts

local function global_help(out)
  local lines = {
    "usage: provision [FLAGS] COMMAND ...",
    "",
    "Ad-hoc calls to the provisioning APIs (DocSpace, Outpost, Agilicus, Document360).",
    "",
    "commands:",
    "  provision apis                           the four APIs, their classes and operation counts",
    "  provision API ops                        operations of an API, one signature a line",
    "  provision API help OPERATION             method, path, parameters, body, auth, success codes",
    "  provision API OPERATION [ARGS] [--NAME=VALUE ...] [--body=JSON|@FILE|-]",
    "                                           call an operation; prints the result as JSON",
    "  provision plan ROSTER | apply ROSTER | journal [RUN]",
    "                                           make the systems match a roster (provision plan --help)",
    "  provision --version",
    "",
    "API is docspace, outpost, agilicus or document360 (or the class name: PortalUsersApi,",
    "Tenants, UsersApi, TeamsApi). Required parameters are positional, in order; optional",
    "ones are --name=VALUE (snake_case, kebab-case or wire name). Arrays: repeat the option",
    "or give a comma list. Booleans: --flag, --no-flag, --flag=false.",
    "",
    "flags:",
  }
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
    "(--config FILE, $PROVISION_CONFIG, ~/.config/provision/config.lua). Environment:",
    "  PROVISION_<API>_URL                  base URL or named server",
    "  PROVISION_DOCSPACE_TOKEN | _API_KEY | _COOKIE | _USER + _PASSWORD",
    "  PROVISION_OUTPOST_API_KEY | _TENANT_JWT   (and _GENERATION, _TENANT_ID)",
    "  PROVISION_AGILICUS_TOKEN",
    "  PROVISION_DOCUMENT360_TOKEN",
    "",
    "exit codes: 0 ok, 1 API/HTTP error, 2 usage or configuration error,",
    "            3 transport error (connect, DNS, timeout, TLS)",
    "",
    "examples:",
    "  provision --sandbox agilicus list_users --org_id=Nw7kQ2pX9sT4vB8mL1cR3d --limit=5",
    "  provision agilicus create_user --body=@ada.json",
    "  provision outpost get acme --generation=v0",
    "  provision document360 v2_teams_get --all --compact",
    "See docs/cli.md for more.",
  }
  for _, l in ipairs(more) do lines[#lines + 1] = l end
  out:print(table.concat(lines, "\n"))
end

local function list_apis(out)
  local rows = { { "API", "CLASS", "OPERATIONS", "DEFAULT SERVER" } }
  for _, key in ipairs(API_KEYS) do
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

local function list_ops(out, key, generation)
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

local function op_help(out, key, op, generation)
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
    for _, l in ipairs(util.columns(param_rows(op))) do add("  " .. l) end
  else
    add("parameters: none")
  end
  local bp = body_param(op)
  if bp then
    add("")
    add(string.format("body: %s (%s%s), %s; give it as JSON text, @FILE or - (stdin), %s",
      bp.name, bp.schema or bp.type, bp.type == "array" and ", a JSON array" or "",
      bp.required and "required" or "optional",
      bp.required and "positionally or with --body" or "with --body or --" .. bp.name))
    if bp.arrays and #bp.arrays > 0 then add("  array fields: " .. table.concat(bp.arrays, ", ")) end
  end
  add("")
  if op.security and #op.security > 0 then
    add("auth (the first scheme you hold a credential for is used):")
    local rows = {}
    for _, name in ipairs(op.security) do
      local s = api.security_schemes[name] or {}
      rows[#rows + 1] = { "  " .. name, scheme_text(s), scheme_source(key, name) }
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

---------------------------------------------------------------------------
-- Binding command-line values to an operation's parameters

local function bind(key, op, parsed, stdin, client_defaults)
  local lookup = param_lookup(op)
  local values = {}
  local names = {}
  for _, p in ipairs(op.params) do names[#names + 1] = "--" .. p.name end
  local function set(p, text, token)
    local v, err = args.convert(p, text, values[p.name], stdin)
    if v == nil then usage("%s %s: %s", op.name, token or ("--" .. p.name), err) end
    values[p.name] = v
  end
  for _, o in ipairs(parsed.options) do
    local p = lookup(o.name)
    if not p then
      local cands = {}
      for _, n in ipairs(names) do cands[#cands + 1] = n end
      for _, n in ipairs(args.flag_names) do cands[#cands + 1] = n end
      usage("%s has no parameter '%s'%s", op.name, o.name, util.did_you_mean("--" .. o.name, cands))
    end
    if p.type == "boolean" then
      if o.negated then
        if o.value ~= nil then usage("%s takes no value", o.token) end
        values[p.name] = false
      elseif o.value == nil then
        values[p.name] = true
      else
        set(p, o.value, o.token)
      end
    else
      if o.value == nil then usage("%s needs a value (--%s=VALUE)", o.token, o.name) end
      set(p, o.value, o.token)
    end
  end
  for _, pair in ipairs(parsed.flags.params or {}) do
    local k, v = args.split_pair(pair)
    if not k then usage("-p needs NAME=VALUE (value not shown)") end
    local p = lookup(k)
    if not p then
      local pn = {}
      for _, q in ipairs(op.params) do pn[#pn + 1] = q.name end
      usage("%s has no parameter '%s'%s", op.name, k, util.did_you_mean(k, pn))
    end
    set(p, v, "-p " .. k)
  end
  if parsed.flags.body ~= nil then
    local bp = body_param(op)
    if not bp then usage("%s takes no request body (--body)", op.name) end
    set(bp, parsed.flags.body, "--body")
  end
  -- positional words fill the positional parameters not given as options
  local req, extra = positional_params(op)
  local slots = {}
  for _, p in ipairs(req) do if values[p.name] == nil then slots[#slots + 1] = p end end
  for _, p in ipairs(extra) do if values[p.name] == nil then slots[#slots + 1] = p end end
  local words = parsed.positional
  if #words > #slots then
    usage("%s: too many arguments (%d given; usage: provision %s %s)", op.name, #words, key, signature(op))
  end
  for i, w in ipairs(words) do set(slots[i], w, slots[i].name) end
  for _, p in ipairs(req) do
    if values[p.name] == nil then
      usage("%s: missing required parameter '%s' (usage: provision %s %s)", op.name, p.name, key, signature(op))
    end
  end
  for _, p in ipairs(extra) do
    if values[p.name] == nil and not (p.client_default and client_defaults[p.client_default]) then
      usage("%s: missing parameter '%s': give it positionally%s (usage: provision %s %s)", op.name, p.name,
        p.client_default and (" or with --" .. p.client_default:gsub("_", "-")) or (" or with --" .. p.name),
        key, signature(op))
    end
  end
  return values
end

-- values -> argument list for client:call (positional..., options)
local function call_args(op, values, call)
  local list, options = {}, {}
  local positional = {}
  for _, p in ipairs(op.params) do
    if p.required and not p.client_default then
      list[#list + 1] = values[p.name]
      positional[p.name] = true
    end
  end
  for k, v in pairs(values) do
    if not positional[k] then options[k] = v end
  end
  options._call = call
  list[#list + 1] = options
  return list
end

---------------------------------------------------------------------------
-- Running an operation

-- A transport that never sends: --dry-run builds the request through the
-- client's own code (prepare + attempt_request) and stops there.
local DryRun = {}
DryRun.__index = DryRun
function DryRun.send(_, reqs)
  local out = {}
  for i = 1, #reqs do out[i] = { kind = "aborted", message = "dry run: nothing is sent", request_sent = false } end
  return out
end
DryRun.now = core.now
function DryRun.sleep() end
function DryRun.close() end

local sensitive_headers = { authorization = true, ["proxy-authorization"] = true, cookie = true,
                            ["x-api-key"] = true, apikey = true, ["api-key"] = true }

-- Masks credentials in a built request: headers and query keys named by
-- the API's security schemes, Authorization, Cookie values.
local function masked_request(api, req)
  local secret_headers, secret_cookies, secret_query = {}, {}, {}
  for _, s in pairs(api.security_schemes or {}) do
    if s.type == "apiKey" then
      if s["in"] == "header" then secret_headers[s.name:lower()] = true
      elseif s["in"] == "cookie" then secret_cookies[s.name] = true
      elseif s["in"] == "query" then secret_query[s.name] = true end
    end
  end
  local headers = {}
  for i, h in ipairs(req.headers or {}) do
    local name, value = h[1], h[2]
    local lname = name:lower()
    if lname == "authorization" or lname == "proxy-authorization" then
      local scheme = value:match("^(%S+)%s")
      value = scheme and (scheme .. " ***") or "***"
    elseif lname == "cookie" then
      value = value:gsub("([^=;%s]+)=([^;]*)", function(k, v)
        if secret_cookies[k] then return k .. "=***" end
        return k .. "=" .. v
      end)
    elseif secret_headers[lname] or sensitive_headers[lname] then
      value = "***"
    end
    headers[i] = { name, value }
  end
  local url = req.url
  for k in pairs(secret_query) do
    url = url:gsub("([?&]" .. k:gsub("%p", "%%%0") .. "=)[^&#]*", "%1***")
  end
  return { method = req.method, url = url, headers = headers, body = req.body }
end

local function print_request(out, req, note)
  out:print(req.method .. " " .. req.url)
  for _, h in ipairs(req.headers) do out:print(h[1] .. ": " .. h[2]) end
  if req.body then
    out:print("")
    out:print(req.body)
  end
  if note then out:err("provision: " .. note) end
end

local function resolve_flags(parsed, getenv)
  local f = parsed.flags
  local ok, err = args.number_flag(f, "timeout", "timeout")
  if not ok then usage("%s", err) end
  ok, err = args.number_flag(f, "connect_timeout", "connect-timeout")
  if not ok then usage("%s", err) end
  ok, err = args.number_flag(f, "retries", "retries", true)
  if not ok then usage("%s", err) end
  if f.sandbox == true then
    -- the variable the examples and `make demo` use for where the sandbox runs
    local url = getenv("PROVISION_SANDBOX_URL")
    f.sandbox = (url and url ~= "") and url or DEFAULT_SANDBOX
  end
  if f.sandbox and not tostring(f.sandbox):find("^https?://") then
    usage("--sandbox needs an http(s) URL, got '%s'", tostring(f.sandbox))
  end
  if f.server_vars then
    local vars = {}
    for _, pair in ipairs(f.server_vars) do
      local k, v = args.split_pair(pair)
      if not k then usage("--server-var needs NAME=VALUE (value not shown)") end
      vars[k] = v
    end
    f.server_vars = vars
  end
  if f.headers then
    local list = {}
    for i, h in ipairs(f.headers) do
      local k, v = h:match("^%s*([^:%s]+)%s*:%s*(.-)%s*$")
      -- a header may carry a credential: never echo it
      if not k then usage("--header %d needs 'Name: value' (value not shown)", i) end
      list[#list + 1] = { k, v }
    end
    f.headers = list
  end
end

local function load_config(flags, getenv)
  local path, explicit = settings.config_path(flags, getenv)
  if not path then return nil end
  local f = io.open(path, "r")
  if not f then
    if explicit then usage("config file %s cannot be read", path) end
    return nil
  end
  f:close()
  local t, err = settings.load_config(path)
  if not t then usage("%s", err) end
  return t, path
end

local function run_operation(out, ctx, key, opword, parsed)
  local api = api_table(key)
  local flags = parsed.flags
  resolve_flags(parsed, ctx.getenv)
  if flags.generation and not api.generations then
    usage("%s has no server generations (--generation is for outpost)", key)
  end
  local config, config_path = load_config(flags, ctx.getenv)
  local resolved, serr = settings.resolve(key, api.class, flags, ctx.getenv, config, config_path)
  if not resolved then usage("%s", serr) end
  for _, s in ipairs(resolved.secrets) do out.redact.add(s) end
  for _, h in ipairs(flags.headers or {}) do   -- -H values may be credentials too
    local name = h[1]:lower()
    if name == "authorization" or name == "cookie" or name:find("token", 1, true) or name:find("key", 1, true)
       or name:find("secret", 1, true) or name:find("auth", 1, true) or name:find("session", 1, true) then
      out.redact.add(h[2])
      local scheme_value = h[2]:match("^%S+%s+(%S.*)$")
      if scheme_value then out.redact.add(scheme_value) end
    end
  end
  local opts = resolved.opts
  local ops, generation = operations(api, opts.generation)
  local op = find_op(api, ops, opword, generation)
  if not op then
    usage("%s has no operation '%s'%s (see: provision %s ops)", key, opword,
      util.did_you_mean(opword, op_names(ops)), key)
  end
  if flags.help then
    op_help(out, key, op, generation)
    return cli.EXIT_OK
  end
  -- the options of this operation, now that its parameters are known
  local full, perr = args.parse(ctx.argv, param_lookup(op))
  if not full then usage("%s", perr) end
  full.positional = {}
  for i = 3, #full.words do full.positional[#full.positional + 1] = full.words[i] end
  full.flags = flags
  local values = bind(key, op, full, ctx.stdin, { tenant_id = opts.tenant_id })

  if flags.all and not op.paging then
    local paged = {}
    for _, o in ipairs(ops) do if o.paging then paged[#paged + 1] = o.name end end
    usage("%s is not paged, --all does not apply (paged operations of %s: %s)", op.name, key,
      #paged > 0 and table.concat(paged, ", ") or "none")
  end

  if flags.insecure then
    out:err("provision: WARNING: --insecure: TLS certificate verification is OFF. Anyone on the " ..
      "network path can read and change this traffic, credentials included.")
  end
  if flags.no_auth then opts.auth = nil end
  if flags.verbose then
    opts.log = function(line) out:err("provision: " .. line) end
  end
  if flags.dry_run then opts.transport = setmetatable({}, DryRun) end

  local client, cerr = provision.new(key, opts)
  if not client then
    out:err("provision: " .. tostring(cerr))
    return cli.exit_code(cerr)
  end
  local code = cli.EXIT_OK
  local ok, e = pcall(function()
    if flags.verbose then
      out:err(string.format("provision: %s (server from %s; credentials from %s)", tostring(client),
        resolved.sources.server or "the API table's default", resolved.sources.auth or "nowhere"))
    end
    -- an operation that needs auth but finds no credential is refused early
    local auth_note
    if op.security and #op.security > 0 and not flags.no_auth then
      local name = auth.select(api, opts.auth, op.security)
      local hints = {}
      for _, s in ipairs(op.security) do hints[#hints + 1] = scheme_source(key, s) end
      if not name and flags.dry_run then
        auth_note = "no credentials configured (set " .. table.concat(hints, " or ") .. ")"
      elseif not name then
        usage("no credentials for %s.%s: set %s (or use --config, --sandbox; --no-auth sends without)",
          api.class, op.name, table.concat(hints, " or "))
      end
    end
    local call = { headers = flags.headers }
    local cargs = call_args(op, values, call)

    if flags.dry_run then
      local job, err = client:prepare(op.name, unpack(cargs))
      if not job then
        out:err("provision: " .. tostring(err))
        code = cli.exit_code(err)
        return
      end
      local req, aerr = client:attempt_request(job)
      local note = flags.all and "dry run: shows the first page's request only; nothing was sent"
        or "dry run: nothing was sent"
      if auth_note then note = note .. "; " .. auth_note end
      if not req then
        req = job.template
        note = "dry run: credentials could not be applied (" .. tostring(aerr) .. "); nothing was sent"
      end
      print_request(out, masked_request(api, req), note)
      return
    end

    if flags.all then
      local items, pages = json.array({}), json.array({})
      for page, info in client:pages(op.name, unpack(cargs)) do
        if page == false then
          code = cli.report_error(out, info, flags, key)
          return
        end
        for _, it in ipairs(page) do items[#items + 1] = it end
        pages[#pages + 1] = info.body
      end
      out:json(flags.raw and pages or items, flags.compact)
      return
    end

    local result, info = client:call(op.name, unpack(cargs))
    if result == nil then
      code = cli.report_error(out, info, flags, key)
      return
    end
    local shown = result
    if flags.raw then shown = info.body end
    if shown == true or shown == nil then
      if flags.verbose then out:err("provision: HTTP " .. tostring(info.status) .. ", no response body") end
      return
    end
    if type(shown) == "string" and flags.raw then out:print(shown) return end
    out:json(shown, flags.compact)
  end)
  client:close()
  if not ok then error(e, 0) end
  return code
end

function cli.report_error(out, err, flags, key)
  out:err("provision: " .. tostring(err))
  if type(err) == "table" then
    if flags.verbose and err.body ~= nil then
      if type(err.body) == "table" then
        out:err("provision: response body:")
        out:json(err.body, flags.compact, "stderr")
      else
        out:err("provision: response body: " .. tostring(err.body))
      end
    end
    if err.status == 401 or err.status == 403 then
      out:err("provision: hint: check the credentials for " .. key ..
        " (provision " .. key .. " help OPERATION lists the schemes and variables)")
    end
  end
  return cli.exit_code(err)
end

---------------------------------------------------------------------------
-- Entry point

local function version_text()
  local v = "provision " .. tostring(core.version) .. " (" .. _VERSION .. ")"
  return v
end

local function dispatch(out, ctx)
  -- plan, apply, journal: the reconciler's commands (cli/reconcile.lua)
  local reconcile_cli = require("provision.cli.reconcile")
  if reconcile_cli.wants(ctx.argv) then return reconcile_cli.main(out, ctx) end
  local parsed, perr = args.parse(ctx.argv, nil)
  if not parsed then usage("%s", perr) end
  local flags, words = parsed.flags, parsed.words
  if flags.version and #words == 0 then out:print(version_text()) return cli.EXIT_OK end
  -- options are parameters of an operation; anywhere else they are unknown flags
  local is_op = #words >= 2 and resolve_api(words[1]) and words[2] ~= "ops" and words[2] ~= "operations"
    and words[2] ~= "help"
  if not is_op and #parsed.options > 0 then
    local o = parsed.options[1]
    usage("unknown option %s%s", o.token, util.did_you_mean(o.token, args.flag_names))
  end
  if #words == 0 then
    global_help(out)
    return cli.EXIT_OK
  end
  local cmd = words[1]
  if cmd == "version" then out:print(version_text()) return cli.EXIT_OK end
  if cmd == "apis" then
    if #words > 1 then usage("'apis' takes no arguments") end
    list_apis(out)
    return cli.EXIT_OK
  end
  if cmd == "help" then
    if #words == 1 then global_help(out) return cli.EXIT_OK end
    local key = resolve_api(words[2])
    if not key then
      usage("unknown API '%s'%s (one of: %s)", words[2], util.did_you_mean(words[2], API_KEYS),
        table.concat(API_KEYS, ", "))
    end
    local sub = {}
    for i, w in ipairs(words) do if i ~= 1 then sub[#sub + 1] = w end end
    if #sub == 1 then sub[2] = "ops" else table.insert(sub, 2, "help") end
    words = sub
    cmd = words[1]
  end
  local key = resolve_api(cmd)
  if not key then
    local cands = { "apis", "help", "version" }
    for _, k in ipairs(API_KEYS) do cands[#cands + 1] = k end
    for _, c in pairs(CLASSES) do cands[#cands + 1] = c end
    usage("unknown API or command '%s'%s (APIs: %s; try provision --help)", cmd,
      util.did_you_mean(cmd, cands), table.concat(API_KEYS, ", "))
  end
  if flags.generation and key ~= "outpost" then
    usage("%s has no server generations (--generation is for outpost)", key)
  end
  local sub = words[2]
  local api = api_table(key)
  local generation = flags.generation or (key == "outpost" and ctx.getenv(settings.env_name(key, "generation")))
  if generation == "" then generation = nil end
  if sub == nil or sub == "ops" or sub == "operations" then
    if #words > 2 then usage("'%s ops' takes no arguments", key) end
    list_ops(out, key, generation)
    return cli.EXIT_OK
  end
  if sub == "help" then
    if #words == 2 then list_ops(out, key, generation) return cli.EXIT_OK end
    if #words > 3 then usage("usage: provision %s help OPERATION", key) end
    local ops, g = operations(api, generation)
    local op = find_op(api, ops, words[3], g)
    if not op then
      usage("%s has no operation '%s'%s (see: provision %s ops)", key, words[3],
        util.did_you_mean(words[3], op_names(ops)), key)
    end
    op_help(out, key, op, g)
    return cli.EXIT_OK
  end
  return run_operation(out, ctx, key, sub, parsed)
end

-- argv: list of arguments (without the program name).
function cli.main(argv, ctx)
  ctx = ctx or {}
  local c = {
    argv = argv or {},
    stdout = ctx.stdout or io.stdout,
    stderr = ctx.stderr or io.stderr,
    stdin = ctx.stdin or io.stdin,
    getenv = ctx.getenv or os.getenv,
  }
  local out = new_out(c)
  local ok, res = pcall(dispatch, out, c)
  if ok then
    if c.stdout.flush then c.stdout:flush() end
    return res
  end
  if getmetatable(res) == Usage then
    out:err("provision: " .. res.message)
    return cli.EXIT_USAGE
  end
  -- Ctrl-C: the lua5.4 interpreter's SIGINT handler raises "interrupted!"
  -- at the next Lua instruction (the transport waits in short steps so that
  -- one comes soon).
  if type(res) == "string" and res:find("interrupted!$") then
    if c.stdout.flush then pcall(c.stdout.flush, c.stdout) end
    out:err("provision: interrupted")
    return cli.EXIT_INTERRUPTED
  end
  out:err("provision: internal error (please report): " .. tostring(res))
  return cli.EXIT_API
end

return cli
