-- The reconciler's commands (docs/reconcile.md):
--
--   provision plan ROSTER [options]      what would change; exit 0 none, 2 some, 1 error
--   provision apply [ROSTER] [options]   make it so; exit 0 all done, 1 a step failed
--                                        or an error, 2 refused (nothing sent)
--   provision journal [RUN] [options]    the runs of the journal, or what one did
--
-- Connection settings (servers, credentials, the Agilicus org) are the
-- CLI's own (flags > environment > config, lua/provision/cli/settings.lua);
-- the config file may hold a `reconcile = {...}` section with defaults for
-- the options below. cli.lua dispatches here when the first word is one of
-- the commands (reconcile_cli.wants).
-- Lua 5.1/5.4 common syntax.
local provision = require("provision")
local reconcile = require("provision.reconcile")
local journal = require("provision.journal")
local json = require("provision.json")
local args = require("provision.cli.args")
local settings = require("provision.cli.settings")
local util = require("provision.cli.util")
local view = require("provision.cli.reconcile_view")
local progress = require("provision.cli.progress")

local M = {}

M.COMMANDS = { plan = true, apply = true, journal = true }
local SYSTEMS = { "agilicus", "document360", "outpost", "docspace" }
local CLASSES = { docspace = "PortalUsersApi", outpost = "Tenants", agilicus = "UsersApi", document360 = "TeamsApi" }
local DEFAULT_SANDBOX = "http://127.0.0.1:8090"

-- Options of the three commands: name -> { field, type, value, config, help, commands }.
local OPTIONS = {
  { name = "org-id", type = "string", value = "ID",
    help = "the Agilicus organisation (else PROVISION_AGILICUS_ORG_ID, config agilicus.org_id)" },
  { name = "systems", type = "string", value = "LIST", help = "only these systems, e.g. agilicus,document360" },
  { name = "mapping", type = "string", value = "FILE", help = "a JSON file renaming an HR export's columns" },
  { name = "prune", type = "boolean", help = "remove people who are in a system but not in the roster" },
  { name = "prune-mode", type = "string", value = "remove|disable", config = "prune_mode",
    help = "what --prune does where a system can disable (Agilicus); default remove" },
  { name = "allow-mass-removal", type = "boolean", help = "let a prune remove more than the threshold" },
  { name = "max-removals", type = "integer", value = "N", config = "max_removals",
    help = "threshold: removals allowed per system whatever its size (default 25)" },
  { name = "max-removal-share", type = "number", value = "SHARE", config = "max_removal_share",
    help = "threshold: share of a system's people a prune may remove (default 0.1)" },
  { name = "journal", type = "string", value = "FILE", config = "journal",
    help = "the journal (default $XDG_STATE_HOME/provision/journal.sqlite; also PROVISION_JOURNAL)" },
  { name = "resume", type = "boolean", value = "[=RUN]",
    help = "resume the newest unfinished run of this roster (or RUN)" },
  { name = "plan", type = "string", value = "FILE", help = "apply a plan saved by plan --save" },
  { name = "save", type = "string", value = "FILE", help = "plan: also write the plan as JSON to FILE" },
  { name = "output", type = "string", value = "text|json", help = "print the plan, result or journal as JSON" },
  { name = "concurrency", type = "integer", value = "N", config = "concurrency", min = 1,
    help = "calls in flight per system (default 16)" },
  { name = "rate", type = "string", value = "N/SECONDS", config = "rate", help = "pace each system, e.g. 50/1" },
  { name = "progress", type = "boolean", help = "--no-progress: no progress line even on a terminal" },
  { name = "limit", type = "integer", value = "N", min = 1, help = "journal: how many runs to list (default 20)" },
}
local by_name = {}
for _, o in ipairs(OPTIONS) do
  o.field = o.name:gsub("%-", "_")
  by_name[o.name] = o
end

local Fail = {}
local function fail(code, fmt, ...)
  error(setmetatable({ code = code, message = string.format(fmt, ...) }, Fail), 0)
end

local function lookup(name)
  local o = by_name[(name:gsub("_", "-"))]
  if not o then return nil end
  return { name = o.field, type = o.type == "boolean" and "boolean" or "string" }
end

local function parse(argv)
  local parsed, err = args.parse(argv, lookup)
  if not parsed then return nil, err end
  return parsed
end

-- Whether argv is one of these commands (the first word).
function M.wants(argv)
  local parsed = parse(argv or {})
  if not parsed then return false end
  local w = parsed.words
  return M.COMMANDS[w[1] or ""] == true or (w[1] == "help" and M.COMMANDS[w[2] or ""] == true)
end

local function option_names()
  local names = {}
  for _, o in ipairs(OPTIONS) do names[#names + 1] = "--" .. o.name end
  for _, n in ipairs(args.flag_names) do names[#names + 1] = n end
  return names
end

-- The options given, converted; usage errors exit with `code`.
local function options_of(parsed, code)
  local o = {}
  -- --rate, --concurrency and --output are also flags of every command
  -- (cli/args.lua): the parser gives them as flags, not as options
  local given = {}
  for _, opt in ipairs(parsed.options) do given[#given + 1] = opt end
  for _, name in ipairs({ "rate", "concurrency", "output" }) do
    local v = parsed.flags[name]
    if v ~= nil then given[#given + 1] = { name = name, value = v, token = "--" .. name } end
  end
  for _, opt in ipairs(given) do
    local spec = by_name[(opt.name:gsub("_", "-"))]
    if not spec then
      fail(code, "unknown option %s%s", opt.token, util.did_you_mean("--" .. opt.name, option_names()))
    end
    local v = opt.value
    if spec.type == "boolean" then
      if opt.negated then
        v = false
      elseif v == nil then
        v = true
      elseif spec.name ~= "resume" then
        fail(code, "--%s takes no value", spec.name)
      end
    else
      if v == nil then fail(code, "--%s needs a value (%s)", spec.name, spec.value) end
      if spec.type == "integer" or spec.type == "number" then
        local n, min = tonumber(v), spec.min or 0
        if not n or n ~= n or n == math.huge or (spec.type == "integer" and n ~= math.floor(n)) or n < min then
          fail(code, "--%s needs a %snumber >= %d, got '%s'", spec.name, spec.type == "integer" and "whole " or "", min, v)
        end
        v = n
      end
    end
    o[spec.field] = v
  end
  if o.resume ~= nil and o.resume ~= true and o.resume ~= false then
    local n = tonumber(o.resume)
    if not n or n < 1 or n ~= math.floor(n) then fail(code, "--resume=RUN needs a run id, got '%s'", o.resume) end
    o.resume = n
  end
  return o
end

-- An error of plan/apply on stderr. When a roster has more bad rows than
-- the error's one-line message can name (ten, in 300 characters), each gets
-- a line of its own, all of them.
local function report(out, err)
  local rows = type(err) == "table" and err.class == "RosterError" and err.rows
  local head = rows and (#rows > 10 or #tostring(err.message) > 300)
    and tostring(err.message):match("^(.-, nothing planned)")
  if not head then
    out:err("provision: " .. tostring(err))
    return
  end
  out:err("provision: " .. head .. ":")
  for _, r in ipairs(rows) do
    out:err(("  line %d: %s"):format(r.line, (tostring(r.message):gsub("%c", " "))))
  end
end

---------------------------------------------------------------- settings

local function load_config(flags, getenv, code)
  local path, explicit = settings.config_path(flags, getenv)
  if not path then return nil end
  local f = io.open(path, "r")
  if not f then
    if explicit then fail(code, "config file %s cannot be read", path) end
    return nil
  end
  f:close()
  local t, err = settings.load_config(path)
  if not t then fail(code, "%s", err) end
  return t, path
end

-- Defaults from the config file's reconcile section, under the options given.
local function with_config(o, config, path, code)
  local section = config and config.reconcile
  if section == nil then return o end
  if type(section) ~= "table" then fail(code, "config %s: reconcile must be a table", path) end
  local known = {}
  for _, spec in ipairs(OPTIONS) do if spec.config then known[spec.config] = spec end end
  for k, v in pairs(section) do
    local spec = known[k]
    if not spec then
      local names = {}
      for n in pairs(known) do names[#names + 1] = n end
      table.sort(names)
      fail(code, "config %s: unknown setting reconcile.%s%s", path, tostring(k), util.did_you_mean(tostring(k), names))
    end
    local want = (spec.type == "integer" or spec.type == "number") and "number" or "string"
    if type(v) ~= want then fail(code, "config %s: reconcile.%s must be a %s", path, k, want) end
    if want == "number" and (v ~= v or v < (spec.min or 0) or (spec.type == "integer" and v ~= math.floor(v))) then
      fail(code, "config %s: reconcile.%s must be a %snumber >= %d", path, k,
        spec.type == "integer" and "whole " or "", spec.min or 0)
    end
    if o[spec.field] == nil then o[spec.field] = v end
  end
  return o
end

local function resolve_flags(flags, getenv, code)
  for _, f in ipairs({ { "timeout", "timeout" }, { "connect_timeout", "connect-timeout" },
                       { "deadline", "deadline" } }) do
    local ok, err = args.number_flag(flags, f[1], f[2])
    if not ok then fail(code, "%s", err) end
  end
  local ok, err = args.number_flag(flags, "retries", "retries", true)
  if not ok then fail(code, "%s", err) end
  if flags.sandbox == true then
    local url = getenv("PROVISION_SANDBOX_URL")
    flags.sandbox = (url and url ~= "") and url or DEFAULT_SANDBOX
  end
  if flags.sandbox and not tostring(flags.sandbox):find("^https?://") then
    fail(code, "--sandbox needs an http(s) URL, got '%s'", tostring(flags.sandbox))
  end
  -- flags of single calls, by their field; why each does not fit here
  local WHERE = "each system's server and tenant come from PROVISION_<API>_URL or the config file"
  local BUILT = "the reconciler builds its own requests from the roster"
  for _, f in ipairs({ { "server", WHERE }, { "server_vars", WHERE }, { "tenant_id", WHERE }, { "body", BUILT },
                       { "params", BUILT }, { "headers", BUILT }, { "all", BUILT }, { "raw", BUILT },
                       { "dry_run", "plan shows what apply would do" }, { "no_auth", BUILT } }) do
    if flags[f[1]] ~= nil then
      fail(code, "--%s does not apply to the reconciler's commands (%s)", args.flag_name(f[1]), f[2])
    end
  end
end

local function split_list(s)
  local out = {}
  for part in (s .. ","):gmatch("([^,]*),") do
    part = part:gsub("^%s+", ""):gsub("%s+$", "")
    if part ~= "" then out[#out + 1] = part:lower() end
  end
  return out
end

-- Clients for the systems, on shared transports; notes for skipped ones.
local function build_clients(out, ctx, flags, o, code, wanted)
  local config, config_path = load_config(flags, ctx.getenv, code)
  o = with_config(o, config, config_path, code)
  if o.org_id then flags.org_id = o.org_id end
  local explicit = o.systems and split_list(o.systems)
  if explicit and #explicit == 0 then
    fail(code, "--systems needs one or more of %s", table.concat(SYSTEMS, ","))
  end
  if explicit then
    for _, s in ipairs(explicit) do
      local ok = false
      for _, k in ipairs(SYSTEMS) do if k == s then ok = true end end
      if not ok then
        fail(code, "unknown system '%s'%s (systems: %s)", s, util.did_you_mean(s, SYSTEMS), table.concat(SYSTEMS, ", "))
      end
    end
  end
  local candidates = explicit or wanted or SYSTEMS
  local clients, context, notes, transports = {}, {}, {}, {}
  local concurrency = o.concurrency or reconcile.DEFAULT_CONCURRENCY
  local names = {}
  for _, key in ipairs(candidates) do
    local resolved, serr = settings.resolve(key, CLASSES[key], flags, ctx.getenv, config, config_path)
    if not resolved then fail(code, "%s", serr) end
    for _, s in ipairs(resolved.secrets) do out.redact.add(s) end
    if not resolved.has_creds then
      if explicit or wanted then
        fail(code, "no credentials for %s: set them (see provision help %s) or leave it out of --systems", key, key)
      end
      notes[#notes + 1] = ("%s skipped: no credentials configured"):format(key)
    else
      local opts = resolved.opts
      -- one transport (one connection pool and one set of limiters) per
      -- set of transport settings, shared by the systems that have it
      local tkey = table.concat({ tostring(opts.timeout), tostring(opts.connect_timeout), tostring(opts.verify),
                                  tostring(opts.ca_file) }, "|")
      local t = transports[tkey]
      if not t then
        local terr
        t, terr = require("provision.transport.curl").new({
          timeout = opts.timeout, connect_timeout = opts.connect_timeout, verify = opts.verify,
          ca_file = opts.ca_file, max_connections = math.min(10000, concurrency * #candidates),
        })
        if not t then fail(code, "%s", type(terr) == "table" and tostring(terr.message) or tostring(terr)) end
        transports[tkey] = t
      end
      opts.transport = t
      if flags.verbose then opts.log = function(line) out:err("provision: " .. line) end end
      local c, cerr = provision.new(key, opts)
      if not c then fail(code, "%s: %s", key, tostring(cerr)) end
      clients[key] = c
      names[#names + 1] = key
      context[key] = resolved.context
    end
  end
  if #names == 0 then
    fail(code, "no system has credentials configured (PROVISION_<API>_TOKEN..., --config, or --sandbox)")
  end
  local list = {}
  for _, t in pairs(transports) do list[#list + 1] = t end
  return clients, context, names, notes, list, o
end

local function close_all(transports)
  for _, t in ipairs(transports or {}) do pcall(t.close, t) end
end

local function journal_path(o, getenv)
  if o.journal then return o.journal end
  local env = getenv("PROVISION_JOURNAL")
  if env and env ~= "" then return env end
  return nil   -- journal.default_path()
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local function write_file(path, text)
  -- a plan names people and ids: readable by its owner only. Lua cannot
  -- set a mode, so the shell makes the file (empty, 0600) and Lua writes it.
  local quoted = "'" .. path:gsub("'", "'\\''") .. "'"
  os.execute("(umask 077 && : > " .. quoted .. " && chmod 600 " .. quoted .. ") 2>/dev/null")
  local f, err = io.open(path, "r+b")   -- the file the shell made (never one Lua would make 0644)
  if not f then return nil, "cannot write " .. tostring(err) end
  local ok, werr = f:write(text)
  local cok, cerr = f:close()
  if not ok or not cok then return nil, "cannot write " .. path .. ": " .. tostring(werr or cerr) end
  return true
end

local function print_lines(out, lines)
  out:print(table.concat(lines, "\n"))
end

local function plan_opts(o, context, names, jpath)
  local ctxt = {}
  for k, v in pairs(context) do ctxt[k] = v end
  local mapping
  if o.mapping then
    local m, err = reconcile.roster.read_mapping(o.mapping)
    if not m then return nil, err end
    mapping = m
  end
  return {
    context = ctxt, systems = names, prune = o.prune, prune_mode = o.prune_mode,
    max_removals = o.max_removals, max_removal_share = o.max_removal_share, mapping = mapping,
    journal = jpath, concurrency = o.concurrency, rate = o.rate,
  }
end

local function roster_arg(words, code)
  if #words > 2 then fail(code, "usage: provision %s ROSTER [options] (one roster)", words[1]) end
  return words[2]
end

---------------------------------------------------------------- plan

-- "json" or "text": --output, else PROVISION_OUTPUT (where a format of the
-- other commands, yaml or tsv, means this text); checked before anything
-- is read.
local function output_format(parsed, o, getenv, code)
  local v = parsed.flags.output or o.output
  if v == nil then
    local env = getenv("PROVISION_OUTPUT")
    if env == nil or env == "" then return "text" end
    return env:lower() == "json" and "json" or "text"
  end
  v = tostring(v):lower()
  if v == "json" then return "json" end
  if v == "text" or v == "table" then return "text" end
  fail(code, "--output must be text or json here, got '%s'", tostring(parsed.flags.output or o.output))
end

local function cmd_plan(out, ctx, parsed)
  local code = 1
  local o = options_of(parsed, code)
  local path = roster_arg(parsed.words, code)
  if not path then fail(code, "usage: provision plan ROSTER [--systems LIST] [--prune] [--output json] [--save FILE]") end
  for _, k in ipairs({ "plan", "resume", "allow_mass_removal", "limit" }) do
    if o[k] ~= nil then
      fail(code, "--%s is %s option, not a plan one", (k:gsub("_", "-")), k == "limit" and "a journal" or "an apply")
    end
  end
  resolve_flags(parsed.flags, ctx.getenv, code)
  local clients, context, names, notes, transports
  clients, context, names, notes, transports, o = build_clients(out, ctx, parsed.flags, o, code)
  local output = output_format(parsed, o, ctx.getenv, code)
  local ok, res = pcall(function()
    local jpath = journal_path(o, ctx.getenv)
    local default = jpath or journal.default_path()
    -- reading who was invited already needs a journal; plan never makes one
    local popts, merr = plan_opts(o, context, names, (default and file_exists(default)) and default or nil)
    if not popts then fail(code, "%s", tostring(merr)) end
    local p, err = reconcile.plan(path, clients, popts)
    if not p then
      report(out, err)
      return 1
    end
    if output == "json" then
      out:print(util.to_json(p.data))
    else
      for _, n in ipairs(notes) do out:err("provision: " .. n) end
      print_lines(out, view.plan(p.data))
    end
    if o.save then
      local wok, werr = write_file(o.save, p:to_json())
      if not wok then out:err("provision: " .. werr) return 1 end
    end
    return p:pending() == 0 and 0 or 2
  end)
  close_all(transports)
  if not ok then error(res, 0) end
  return res
end

---------------------------------------------------------------- apply

local function cmd_apply(out, ctx, parsed)
  local code = 2
  local o = options_of(parsed, code)
  local path = roster_arg(parsed.words, code)
  if not path and not o.plan then
    fail(code, "usage: provision apply ROSTER [--prune] [--resume] [--journal FILE] ... or provision apply --plan FILE")
  end
  if o.save or o.limit then fail(code, "--%s is not an apply option", o.save and "save" or "limit") end
  resolve_flags(parsed.flags, ctx.getenv, code)
  local saved, wanted
  if o.plan then
    local f, ferr = io.open(o.plan, "rb")
    if not f then fail(code, "cannot read the plan: %s", tostring(ferr)) end
    local text = f:read("*a")
    f:close()
    saved = json.decode(text)
    if type(saved) ~= "table" or type(saved.systems) ~= "table" then fail(code, "%s is not a saved plan", o.plan) end
    wanted = {}
    for _, s in ipairs(saved.systems) do wanted[#wanted + 1] = s.system end
    if path then fail(code, "give a roster or --plan FILE, not both") end
    -- what shaped the plan is in it: options that would change it are refused
    for _, name in ipairs({ "systems", "prune", "prune_mode", "mapping", "max_removals", "max_removal_share" }) do
      if o[name] ~= nil then fail(code, "--%s cannot change a saved plan", (name:gsub("_", "-"))) end
    end
  end
  local clients, context, names, notes, transports
  clients, context, names, notes, transports, o = build_clients(out, ctx, parsed.flags, o, code, wanted)
  local output = output_format(parsed, o, ctx.getenv, code)
  local ok, res = pcall(function()
    local p, err
    local popts, merr = plan_opts(o, context, names, journal_path(o, ctx.getenv) or true)
    if not popts then fail(code, "%s", tostring(merr)) end
    if saved then
      p, err = reconcile.load(saved, clients, popts)
      if p and path then
        local r, rerr = reconcile.roster.read(path, { mapping = popts.mapping })
        if not r then err, p = rerr, nil
        elseif r.digest ~= saved.roster_digest then
          fail(code, "the saved plan was made from another roster (its digest differs from %s)", path)
        end
      end
    else
      p, err = reconcile.plan(path, clients, popts)
    end
    if not p then
      report(out, err)
      return (type(err) == "table" and err.kind == "invalid_argument") and 2 or 1
    end
    for _, n in ipairs(notes) do out:err("provision: " .. n) end
    local bar
    if o.progress ~= false and ctx.stderr == io.stderr and progress.stderr_is_terminal() then
      bar = progress.new(ctx.stderr, { width = progress.terminal_width(ctx.getenv) })
    end
    local started = require("provision.core").now()
    local argv = {}
    for i, a in ipairs(ctx.argv) do argv[i] = a end
    local result, aerr = p:apply({
      journal = journal_path(o, ctx.getenv) or true, resume = o.resume, allow_mass_removal = o.allow_mass_removal,
      concurrency = o.concurrency, rate = o.rate, progress_interval = 0.2,
      argv_summary = out.redact.apply("provision " .. table.concat(argv, " ")),
      on_progress = bar and function(state)
        state.elapsed = require("provision.core").now() - started
        bar:update(state)
      end,
    })
    if bar then bar:finish() end
    if not result then
      out:err("provision: " .. tostring(aerr))
      return (type(aerr) == "table" and aerr.kind == "invalid_argument") and 2 or 1
    end
    if output == "json" then
      local data = { ok = result.ok, run_id = result.run_id, systems = result.systems, resumed = result.resumed,
                     requests = result.engine and result.engine.requests, invitations = json.array(result.invitations),
                     failures = json.array() }
      for _, s in ipairs(result.steps) do
        if s.outcome ~= "ok" and s.outcome ~= "exists" then
          data.failures[#data.failures + 1] = { system = s.system, key = s.key, action = s.action,
                                                outcome = s.outcome, error = tostring(s.error or "not applied") }
        end
      end
      if result.error then data.error = tostring(result.error) end
      out:print(util.to_json(data))
    else
      print_lines(out, view.summary(result, { journal = journal_path(o, ctx.getenv) }))
    end
    return result.ok and 0 or 1
  end)
  close_all(transports)
  if not ok then error(res, 0) end
  return res
end

---------------------------------------------------------------- journal

local function cmd_journal(out, ctx, parsed)
  local code = 2
  local o = options_of(parsed, code)
  if #parsed.words > 2 then fail(code, "usage: provision journal [RUN] [--journal FILE] [--output json]") end
  local flags = parsed.flags
  local config, config_path = load_config(flags, ctx.getenv, code)
  o = with_config(o, config, config_path, code)
  local output = output_format(parsed, o, ctx.getenv, code)
  local path = journal_path(o, ctx.getenv) or journal.default_path()
  if not path or not file_exists(path) then
    fail(1, "no journal at %s (an apply writes one; --journal FILE names another)", tostring(path))
  end
  local j, err = journal.open(path)
  if not j then out:err("provision: " .. tostring(err)) return 1 end
  local ok, res = pcall(function()
    if parsed.words[2] then
      local id = tonumber(parsed.words[2])
      if not id or id ~= math.floor(id) or id < 1 then fail(code, "RUN must be a run id, got '%s'", parsed.words[2]) end
      local r, rerr = j:run(id)
      if not r then out:err("provision: " .. tostring(rerr)) return 1 end
      if output == "json" then out:print(util.to_json(r)) else print_lines(out, view.run(r)) end
      return 0
    end
    local runs, rerr = j:runs({ limit = o.limit or 20 })
    if not runs then out:err("provision: " .. tostring(rerr)) return 1 end
    if output == "json" then out:print(util.to_json(json.array(runs))) else print_lines(out, view.runs(runs)) end
    return 0
  end)
  j:close()
  if not ok then error(res, 0) end
  return res
end

---------------------------------------------------------------- help

local function help_text()
  local lines = {
    "usage: provision plan ROSTER [options]     what would change (exit 0: nothing, 2: changes, 1: error)",
    "       provision apply ROSTER [options]    make the systems match (exit 0: done, 1: failures, 2: refused)",
    "       provision apply --plan FILE         apply a saved plan (refused if the records changed since)",
    "       provision journal [RUN]             the runs in the journal, or what one did",
    "",
    "ROSTER: CSV or JSON Lines, one person a row: email, first_name, last_name, agilicus_roles",
    "(app:role;app:role), agilicus_status, document360_role, outpost_tenant, outpost_metadata.KEY,",
    "docspace_invite (see docs/reconcile.md).",
    "",
    "options:",
  }
  local rows = {}
  for _, opt in ipairs(OPTIONS) do
    local left = "  --" .. opt.name .. (opt.type ~= "boolean" and (" " .. opt.value) or (opt.value or ""))
    rows[#rows + 1] = { left, opt.help }
  end
  for _, l in ipairs(util.columns(rows)) do lines[#lines + 1] = l end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Connection flags (--sandbox, --config, --timeout, --deadline, --retries, --ca-file, -v) and settings are"
  lines[#lines + 1] = "those of every provision command (provision --help)."
  return table.concat(lines, "\n")
end

---------------------------------------------------------------- entry

local RUN = { plan = cmd_plan, apply = cmd_apply, journal = cmd_journal }

-- out: the CLI's output object (print/err, with redaction); ctx: cli.main's.
function M.main(out, ctx)
  local parsed, perr = parse(ctx.argv)
  local cmd = parsed and parsed.words[1]
  if parsed and (parsed.flags.help or cmd == "help") then
    out:print(help_text())
    return 0
  end
  local ok, res = pcall(function()
    if not parsed then fail(cmd == "plan" and 1 or 2, "%s", perr) end
    return RUN[cmd](out, ctx, parsed)
  end)
  if ok then return res end
  if getmetatable(res) == Fail then
    out:err("provision: " .. res.message)
    return res.code
  end
  error(res, 0)
end

return M
