-- `provision API OPERATION ...`: one call (or every page with --all, or
-- the request only with --dry-run), its result printed through the output
-- module; with --input, one call per row (cli/bulk.lua).
-- Lua 5.1/5.4 common syntax.
local core = require("provision.core")
local json = require("provision.json")
local auth = require("provision.auth")
local args = require("provision.cli.args")
local catalog = require("provision.cli.catalog")
local bodyfields = require("provision.cli.bodyfields")
local help = require("provision.cli.help")
local bind = require("provision.cli.bind")
local connect = require("provision.cli.connect")
local mask = require("provision.cli.mask")
local exit = require("provision.cli.exit")
local util = require("provision.cli.util")

local unpack = table.unpack or unpack

local call = {}

local usage = util.usage

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

local function print_request(out, req, note)
  out:print(req.method .. " " .. req.url)
  for _, h in ipairs(req.headers) do out:print(h[1] .. ": " .. h[2]) end
  if req.body then
    out:print("")
    out:print(req.body)
  end
  if note then out:err("provision: " .. note) end
end

-- Prints an error of the library; returns its exit code.
function call.report_error(out, err, flags, key)
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
    if err.outcome == "unknown" then
      out:err("provision: the request may have been applied: look before sending it again")
    end
  end
  return exit.for_error(err)
end

-- Stops with a usage error when the operation needs a credential and none
-- is configured; returns a note for --dry-run instead.
function call.check_credentials(key, api, op, opts, flags)
  if not (op.security and #op.security > 0) or flags.no_auth then return nil end
  local name = auth.select(api, opts.auth, op.security)
  if name then return nil end
  local hints = {}
  for _, s in ipairs(op.security) do hints[#hints + 1] = catalog.scheme_source(key, s) end
  if flags.dry_run then return "no credentials configured (set " .. table.concat(hints, " or ") .. ")" end
  usage("no credentials for %s.%s: set %s (or use --config, --sandbox; --no-auth sends without)",
    api.class, op.name, table.concat(hints, " or "))
end

local function dry_run(out, client, api, op, cargs, flags, auth_note)
  local job, err = client:prepare(op.name, unpack(cargs))
  if not job then
    out:err("provision: " .. tostring(err))
    return exit.for_error(err)
  end
  local req, aerr = client:attempt_request(job)
  local note = flags.all and "dry run: shows the first page's request only; nothing was sent"
    or "dry run: nothing was sent"
  if auth_note then note = note .. "; " .. auth_note end
  if not req then
    req = job.template
    note = "dry run: credentials could not be applied (" .. tostring(aerr) .. "); nothing was sent"
  end
  print_request(out, mask.request(api, req), note)
  return exit.OK
end

-- Runs `provision KEY OPWORD ...`; parsed = the first parse of argv.
function call.run(out, ctx, key, opword, parsed)
  local flags = parsed.flags
  local resolved, api = connect.settings(out, ctx, key, flags)
  local opts = resolved.opts
  local op, generation = catalog.need_op(key, opword, opts.generation)
  if flags.help then
    help.operation(out, key, op, generation)
    return exit.OK
  end
  -- the options of this operation, now that its parameters are known
  local params = catalog.param_lookup(op)
  local full, perr = args.parse(ctx.argv, function(name)
    return params(name) or bodyfields.lookup(op, name)   -- a body field takes a value like a parameter
  end)
  if not full then usage("%s", perr) end
  full.positional = {}
  for i = 3, #full.words do full.positional[#full.positional + 1] = full.words[i] end
  full.flags = flags
  if flags.all and not op.paging then
    local paged = {}
    for _, o in ipairs(catalog.operations(api, generation)) do if o.paging then paged[#paged + 1] = o.name end end
    usage("%s is not paged, --all does not apply (paged operations of %s: %s)", op.name, key,
      #paged > 0 and table.concat(paged, ", ") or "none")
  end
  local defaults = { tenant_id = opts.tenant_id }
  if flags.input then
    return require("provision.cli.bulk").run(out, ctx, { key = key, api = api, op = op, parsed = full,
      resolved = resolved, client_defaults = defaults })
  end
  for _, name in ipairs({ "results", "concurrency", "rate", "input_format" }) do
    if flags[name] ~= nil then usage("--%s applies only with --input", name:gsub("_", "-")) end
  end
  local values = bind.command_line(key, op, full, ctx.stdin, defaults)
  connect.warn_insecure(out, flags)
  local client, cerr = connect.client(out, key, flags, resolved,
    { transport = flags.dry_run and setmetatable({}, DryRun) or nil })
  if not client then
    out:err("provision: " .. tostring(cerr))
    return exit.for_error(cerr)
  end
  local code = exit.OK
  local ok, e = pcall(function()
    if flags.verbose then
      out:err(string.format("provision: %s (server from %s; credentials from %s)", tostring(client),
        resolved.sources.server or "the API table's default", resolved.sources.auth or "nowhere"))
    end
    local auth_note = call.check_credentials(key, api, op, opts, flags)
    local cargs = bind.call_args(op, values, { headers = flags.headers })
    if flags.dry_run then
      code = dry_run(out, client, api, op, cargs, flags, auth_note)
      return
    end
    if flags.all then
      local items, pages = json.array({}), json.array({})
      for page, info in client:pages(op.name, unpack(cargs)) do
        if page == false then
          code = call.report_error(out, info, flags, key)
          return
        end
        for _, it in ipairs(page) do items[#items + 1] = it end
        pages[#pages + 1] = info.body
      end
      out:value(flags.raw and pages or items)
      return
    end
    local result, info = client:call(op.name, unpack(cargs))
    if result == nil then
      code = call.report_error(out, info, flags, key)
      return
    end
    local shown = result
    if flags.raw then shown = info.body end
    if shown == true or shown == nil then
      if flags.verbose then out:err("provision: HTTP " .. tostring(info.status) .. ", no response body") end
      return
    end
    out:value(shown, { items = not flags.raw and op.paging and op.paging.items or nil })
  end)
  client:close()
  if not ok then error(e, 0) end
  return code
end

return call
