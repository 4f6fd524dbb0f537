-- The command line (bin/provision is a thin launcher around cli.main):
--
--   provision apis | API ops | API help OPERATION | help exit-codes
--   provision API OPERATION [ARGS...] [--name=value...] [--body=JSON|@FILE|-] [--input FILE]
--   provision completion bash|zsh|fish | doctor | version
--   provision plan ROSTER | apply [ROSTER] | journal [RUN]   (cli/reconcile.lua)
--
-- cli.main(argv, ctx) runs one command and returns its exit code
-- (cli/exit.lua: 0 ok, 1 rejected, 2 usage, 3 network, 4 authentication,
-- 5 server error, 6 outcome unknown, 130 interrupted, 70 internal error).
-- ctx (all optional) = {stdout, stderr, stdin, getenv, terminal = {stdout =,
-- stderr =, width =}}, so tests and hosts can run it in-process.
--
-- This file only dispatches. Each command family lives in its own file
-- under lua/provision/cli/, and every command prints through the one
-- output module (cli/output.lua). A command is one entry of `commands`:
--   { name = "doctor", module = "provision.cli.doctor",
--     synopsis = "doctor", summary = "one line for --help" }
-- whose module has run(out, ctx, words, parsed) -> exit code, and may have
-- complete(words) -> candidate words (for `provision completion`).
-- Lua 5.1/5.4 common syntax. See docs/cli.md.
local core = require("provision.core")
local args = require("provision.cli.args")
local catalog = require("provision.cli.catalog")
local help = require("provision.cli.help")
local output = require("provision.cli.output")
local settings = require("provision.cli.settings")
local exit = require("provision.cli.exit")
local util = require("provision.cli.util")

local cli = {}

cli.EXIT_OK, cli.EXIT_API, cli.EXIT_USAGE, cli.EXIT_TRANSPORT = exit.OK, exit.REJECTED, exit.USAGE, exit.TRANSPORT
cli.EXIT_AUTH, cli.EXIT_SERVER, cli.EXIT_UNKNOWN = exit.AUTH, exit.SERVER, exit.UNKNOWN
cli.EXIT_INTERRUPTED = exit.INTERRUPTED
cli.EXIT_INTERNAL = 70   -- EX_SOFTWARE: a bug in provision
cli.exit_code = exit.for_error

-- Commands besides the API words.
cli.commands = {
  { name = "completion", module = "provision.cli.completion", synopsis = "completion bash|zsh|fish",
    summary = "a completion script for your shell" },
  { name = "doctor", module = "provision.cli.doctor", synopsis = "doctor",
    summary = "check configuration, credentials, clock and TLS for each configured API" },
  -- the reconciler's (cli/reconcile.lua parses its own options)
  { name = "plan", module = "provision.cli.reconcile", synopsis = "plan ROSTER [--prune] [--systems LIST] ...",
    summary = "what it takes to make the systems match a roster (exit 0: nothing, 2: changes)", own_options = true },
  { name = "apply", module = "provision.cli.reconcile", synopsis = "apply [ROSTER] [--prune] [--resume[=RUN]] ...",
    summary = "make the systems match a roster, journaled; resumes a killed run", own_options = true },
  { name = "journal", module = "provision.cli.reconcile", synopsis = "journal [RUN]",
    summary = "the runs of the apply journal, or what one did", own_options = true },
}

local function command(name)
  for _, c in ipairs(cli.commands) do
    if c.name == name then return c end
  end
  return nil
end
cli.command = command

local usage = util.usage

local function version_text()
  return "provision " .. tostring(core.version) .. " (" .. _VERSION .. ")"
end

local function dispatch(out, ctx)
  -- commands that parse their own options (the reconciler's): looked for
  -- only when one of their names is among the words
  for _, c in ipairs(cli.commands) do
    if c.own_options then
      for _, a in ipairs(ctx.argv) do
        if a == c.name then
          local m = require(c.module)
          if m.wants(ctx.argv) then return m.main(out, ctx) end
          break
        end
      end
    end
  end
  local parsed, perr = args.parse(ctx.argv, nil)
  if not parsed then usage("%s", perr) end
  local flags, words = parsed.flags, parsed.words
  local ok, oerr = out:configure({ format = flags.output, fields = flags.fields, compact = flags.compact })
  if not ok then usage("%s", oerr) end
  if flags.version and #words == 0 then out:print(version_text()) return exit.OK end
  -- options are parameters of an operation; anywhere else they are unknown flags
  local is_op = #words >= 2 and catalog.resolve_api(words[1]) and words[2] ~= "ops" and words[2] ~= "operations"
    and words[2] ~= "help"
  if not is_op and #parsed.options > 0 then
    local o = parsed.options[1]
    usage("unknown option %s%s", o.token, util.did_you_mean(o.token, args.flag_names))
  end
  if #words == 0 then
    help.global(out, cli.commands)
    return exit.OK
  end
  local cmd = words[1]
  if cmd == "version" then out:print(version_text()) return exit.OK end
  if cmd == "apis" then
    if #words > 1 then usage("'apis' takes no arguments") end
    help.apis(out)
    return exit.OK
  end
  local c = command(cmd)
  if c then
    if flags.help then
      out:print("usage: provision " .. c.synopsis .. "\n  " .. c.summary .. "\nSee docs/cli.md.")
      return exit.OK
    end
    return require(c.module).run(out, ctx, words, parsed)
  end
  if cmd == "help" then
    if #words == 1 then help.global(out, cli.commands) return exit.OK end
    if words[2] == "exit-codes" then help.exit_codes(out) return exit.OK end
    local hc = command(words[2])
    if hc then
      out:print("usage: provision " .. hc.synopsis .. "\n  " .. hc.summary .. "\nSee docs/cli.md.")
      return exit.OK
    end
    local key = catalog.resolve_api(words[2])
    if not key then
      usage("unknown API '%s'%s (one of: %s; or exit-codes)", words[2], util.did_you_mean(words[2], catalog.API_KEYS),
        table.concat(catalog.API_KEYS, ", "))
    end
    local sub = {}
    for i, w in ipairs(words) do if i ~= 1 then sub[#sub + 1] = w end end
    if #sub == 1 then sub[2] = "ops" else table.insert(sub, 2, "help") end
    words = sub
    cmd = words[1]
  end
  local key = catalog.resolve_api(cmd)
  if not key then
    local cands = { "apis", "help", "version" }
    for _, k in ipairs(cli.commands) do cands[#cands + 1] = k.name end
    for _, k in ipairs(catalog.API_KEYS) do cands[#cands + 1] = k end
    for _, cl in pairs(catalog.CLASSES) do cands[#cands + 1] = cl end
    usage("unknown API or command '%s'%s (APIs: %s; try provision --help)", cmd,
      util.did_you_mean(cmd, cands), table.concat(catalog.API_KEYS, ", "))
  end
  if flags.generation and key ~= "outpost" then
    usage("%s has no server generations (--generation is for outpost)", key)
  end
  local sub = words[2]
  local generation = flags.generation or (key == "outpost" and ctx.getenv(settings.env_name(key, "generation")))
  if generation == "" then generation = nil end
  if sub == nil or sub == "ops" or sub == "operations" then
    if #words > 2 then usage("'%s ops' takes no arguments", key) end
    help.ops(out, key, generation)
    return exit.OK
  end
  if sub == "help" then
    if #words == 2 then help.ops(out, key, generation) return exit.OK end
    if #words > 3 then usage("usage: provision %s help OPERATION", key) end
    local op, g = catalog.need_op(key, words[3], generation)
    help.operation(out, key, op, g)
    return exit.OK
  end
  return require("provision.cli.call").run(out, ctx, key, sub, parsed)
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
    terminal = ctx.terminal,
  }
  local out = output.new(c)
  local ok, res = pcall(dispatch, out, c)
  if ok then
    out:status_done()
    if c.stdout.flush then c.stdout:flush() end
    return res
  end
  out:status_done()
  if util.is_usage(res) then
    out:err("provision: " .. res.message)
    return exit.USAGE
  end
  -- Ctrl-C: the lua5.4 interpreter's SIGINT handler raises "interrupted!"
  -- at the next Lua instruction (the transport waits in short steps so that
  -- one comes soon).
  if util.is_interrupt(res) then
    if c.stdout.flush then pcall(c.stdout.flush, c.stdout) end
    out:err("provision: interrupted")
    return exit.INTERRUPTED
  end
  out:err("provision: internal error (please report): " .. tostring(res))
  return cli.EXIT_INTERNAL
end

return cli
