-- From command-line flags to a client: the checked flags, the config file
-- (and its profile), the settings of one API (flags > environment >
-- config), every secret registered with the output's redactor, and the
-- client itself with cli/observe.lua attached. Shared by operation calls,
-- --input runs and `provision doctor`. Lua 5.1/5.4 common syntax.
local provision = require("provision")
local args = require("provision.cli.args")
local settings = require("provision.cli.settings")
local catalog = require("provision.cli.catalog")
local observe = require("provision.cli.observe")
local core = require("provision.core")
local util = require("provision.cli.util")

local connect = {}

local usage = util.usage

connect.DEFAULT_SANDBOX = "http://127.0.0.1:8090"

-- Checks and converts the flags that carry values (once per command).
function connect.resolve_flags(flags, getenv)
  if flags.resolved then return end
  flags.resolved = true
  for _, spec in ipairs({ { "timeout", "timeout" }, { "connect_timeout", "connect-timeout" },
                          { "deadline", "deadline" }, { "retries", "retries", true }, { "concurrency", "concurrency", true } }) do
    local ok, err = args.number_flag(flags, spec[1], spec[2], spec[3])
    if not ok then usage("%s", err) end
  end
  if flags.concurrency and flags.concurrency < 1 then usage("--concurrency needs a whole number >= 1") end
  if flags.sandbox == true then
    -- the variable the examples and `make demo` use for where the sandbox runs
    local url = getenv("PROVISION_SANDBOX_URL")
    flags.sandbox = (url and url ~= "") and url or connect.DEFAULT_SANDBOX
  end
  if flags.sandbox and not tostring(flags.sandbox):find("^https?://") then
    usage("--sandbox needs an http(s) URL, got '%s'", tostring(flags.sandbox))
  end
  if flags.server_vars then
    local vars = {}
    for _, pair in ipairs(flags.server_vars) do
      local k, v = args.split_pair(pair)
      if not k then usage("--server-var needs NAME=VALUE (value not shown)") end
      vars[k] = v
    end
    flags.server_vars = vars
  end
  if flags.headers then
    local list = {}
    for i, h in ipairs(flags.headers) do
      local k, v = h:match("^%s*([^:%s]+)%s*:%s*(.-)%s*$")
      -- a header may carry a credential: never echo it
      if not k then usage("--header %d needs 'Name: value' (value not shown)", i) end
      list[#list + 1] = { k, v }
    end
    flags.headers = list
  end
end

-- The config file and the profile in use. Returns config (nil when there
-- is no file), label (path, with the profile), info {path, explicit, profile}.
function connect.config(flags, getenv)
  local path, explicit = settings.config_path(flags, getenv)
  local profile = flags.profile
  if profile == nil then
    local env = getenv("PROVISION_PROFILE")
    if env and env ~= "" then profile = env end
  end
  local info = { path = path, explicit = explicit, profile = profile }
  local f = path and io.open(path, "r")
  if not f then
    if path and explicit then usage("config file %s cannot be read", path) end
    if profile then
      usage("profile '%s' needs a config file (%s does not exist; see --config)", profile,
        tostring(path or "~/.config/provision/config.lua"))
    end
    return nil, nil, info
  end
  f:close()
  local t, err = settings.load_config(path)
  if not t then usage("%s", err) end
  info.found = true
  info.profiles = settings.profile_names(t)
  if profile then
    local selected, label = settings.select_profile(t, profile, path)
    if not selected then usage("%s", label) end
    return selected, label, info
  end
  return t, path, info
end

local function redact_headers(out, flags)
  for _, h in ipairs(flags.headers or {}) do   -- -H values may be credentials too
    local name = h[1]:lower()
    if name == "authorization" or name == "cookie" or name:find("token", 1, true) or name:find("key", 1, true)
       or name:find("secret", 1, true) or name:find("auth", 1, true) or name:find("session", 1, true) then
      out.redact.add(h[2])
      local scheme_value = h[2]:match("^%S+%s+(%S.*)$")
      if scheme_value then out.redact.add(scheme_value) end
    end
  end
end

-- The settings of API `key`: {opts, sources, secrets, has_creds}, every
-- secret registered with out.redact. A bad setting is a usage error.
function connect.settings(out, ctx, key, flags)
  connect.resolve_flags(flags, ctx.getenv)
  local api = catalog.api_table(key)
  if flags.generation and not api.generations then
    usage("%s has no server generations (--generation is for outpost)", key)
  end
  local config, label = connect.config(flags, ctx.getenv)
  local resolved, serr = settings.resolve(key, api.class, flags, ctx.getenv, config, label)
  if not resolved then usage("%s", serr) end
  for _, s in ipairs(resolved.secrets) do out.redact.add(s) end
  redact_headers(out, flags)
  return resolved, api
end

-- A client for `key` from resolved settings. opts: {transport =, quiet_waits =}.
-- Returns client or nil, err (an error object of the library).
function connect.client(out, key, flags, resolved, opts)
  opts = opts or {}
  local copts = {}
  for k, v in pairs(resolved.opts) do copts[k] = v end
  if flags.no_auth then copts.auth = nil end
  if flags.no_validate then copts.validate = false end
  if flags.verbose then
    copts.log = function(line) out:err("provision: " .. line) end
  end
  if opts.transport then copts.transport = opts.transport end
  if opts.concurrency then copts.concurrency = opts.concurrency end
  copts.hooks, copts.events = observe.options(out, { verbose = flags.verbose or 0, api = catalog.api_table(key),
                                                      quiet_waits = opts.quiet_waits, now = core.now })
  return provision.new(key, copts)
end

function connect.warn_insecure(out, flags)
  if flags.insecure then
    out:err("provision: WARNING: --insecure: TLS certificate verification is OFF. Anyone on the " ..
      "network path can read and change this traffic, credentials included.")
  end
end

return connect
