-- Connection settings for the command line: command-line flags, then
-- environment variables, then the config file (first wins per setting).
-- Credentials are taken whole from the highest layer that holds any, so
-- that a token in the environment is never mixed with (or overridden by,
-- through the operation's scheme order) a cookie from the config file.
-- Lua 5.1/5.4 common syntax.
local settings = {}

-- Friendly credential names (config keys; env PROVISION_<API>_<KEY>) and the
-- credential key each becomes in provision's auth table (lua/provision/auth.lua).
settings.credentials = {
  docspace = {
    { key = "token", auth = "Bearer", what = "bearer token (Bearer scheme)" },
    { key = "api_key", auth = "ApiKeyBearer", what = "API key (ApiKeyBearer header)" },
    { key = "cookie", auth = "asc_auth_key", what = "asc_auth_key cookie" },
    { key = "user", auth = "username", what = "user name (Basic, with PASSWORD)" },
    { key = "password", auth = "password", what = "password (Basic, with USER)" },
  },
  outpost = {
    { key = "api_key", auth = "AdminApiKey", what = "admin API key (AdminApiKey bearer)" },
    { key = "tenant_jwt", auth = "TenantJwt", what = "tenant JWT (TenantJwt bearer)" },
  },
  agilicus = {
    { key = "token", auth = "bearer", what = "bearer token (token-valid)" },
  },
  document360 = {
    { key = "token", auth = "api_token", what = "API token (api_token header)" },
  },
}

-- The sandbox's default credentials (sandbox/README.md) and the variables
-- the sandbox itself reads to change them.
local sandbox_creds = {
  docspace = { auth = "Bearer", env = "SANDBOX_DOCSPACE_TOKEN", default = "sandbox-docspace-bearer-token" },
  outpost = { auth = "AdminApiKey", env = "SANDBOX_OUTPOST_API_KEY", default = "sandbox-outpost-admin-api-key" },
  agilicus = { auth = "bearer", env = "SANDBOX_AGILICUS_TOKEN", default = "sandbox-agilicus-token" },
  document360 = { auth = "api_token", env = "SANDBOX_DOCUMENT360_TOKEN", default = "sandbox-document360-api-token" },
}
settings.sandbox_creds = sandbox_creds

local function sandbox_url(base, api, generation)
  base = base:gsub("/+$", "")
  if api == "outpost" then
    if generation == "v0" then return base .. "/outpost/api/v1" end
    return base .. "/outpost-latest/api/v1"
  end
  return base .. "/" .. api
end
settings.sandbox_url = sandbox_url

-- Plain (non-credential) settings: config key -> expected Lua type.
local plain = {
  url = "string", server = "string", server_variables = "table", generation = "string",
  tenant_id = "string", timeout = "number", connect_timeout = "number", deadline = "number", retries = "number",
  ca_file = "string", insecure = "boolean", org_id = "string",
}
local plain_order = { "server", "server_variables", "generation", "tenant_id", "timeout",
                      "connect_timeout", "deadline", "retries", "ca_file", "insecure", "org_id" }

-- Settings that describe where the records live rather than how to reach
-- the API (the reconciler's Agilicus organisation): resolved like the
-- others, returned in `context`, never passed to a client.
settings.context_keys = { org_id = true }

-- The sandbox's own organisation (sandbox/fixture.lua), for --sandbox.
settings.sandbox_context = { agilicus = { org_id = "Nw7kQ2pX9sT4vB8mL1cR3d" } }

-- Config sections that are not an API's (checked by their own commands).
settings.sections = { reconcile = true }

function settings.env_name(api, key)
  return "PROVISION_" .. api:upper() .. "_" .. key:upper()
end

-- Loads a config file: a Lua chunk returning {<api> = {...}, defaults = {...}}.
-- The chunk sees only os.getenv (so `token = os.getenv("X")` works).
function settings.load_config(path)
  local chunk, err = loadfile(path, "t")
  if not chunk then
    -- Lua's parser quotes the text near the error, which may be a token:
    -- report the line only.
    local msg = tostring(err)
    local rest = msg:sub(1, #path) == path and msg:sub(#path + 1) or msg
    local line = rest:match("^:(%d+):") or rest:match(":(%d+):")
    if line then return nil, "config " .. path .. ": syntax error on line " .. line end
    return nil, "cannot load config " .. path .. ": " .. msg
  end
  local env = { os = { getenv = os.getenv }, tostring = tostring, tonumber = tonumber }
  if setfenv then setfenv(chunk, env) else -- Lua 5.2+: replace the _ENV upvalue
    local i = 1
    while true do
      local name = debug.getupvalue(chunk, i)
      if name == nil then break end
      if name == "_ENV" then debug.setupvalue(chunk, i, env) break end
      i = i + 1
    end
  end
  local ok, t = pcall(chunk)
  if not ok then return nil, "config " .. path .. " failed: " .. tostring(t) end
  if t == nil then t = {} end
  if type(t) ~= "table" then return nil, "config " .. path .. " must return a table" end
  return t
end

-- Checks one config section; returns a layer {values, creds, source} or nil, err.
local function config_layer(api, section, path, classname)
  local layer = { values = {}, creds = nil, source = "config " .. path }
  if section == nil then return layer end
  if type(section) ~= "table" then return nil, "config " .. path .. ": section " .. api .. " must be a table" end
  local credkeys = {}
  for _, c in ipairs(settings.credentials[api] or {}) do credkeys[c.key] = c end
  local known = {}
  for k in pairs(plain) do known[#known + 1] = k end
  for k in pairs(credkeys) do known[#known + 1] = k end
  known[#known + 1] = "auth"
  for k, v in pairs(section) do
    if plain[k] then
      if type(v) ~= plain[k] then
        return nil, string.format("config %s: %s.%s must be a %s, got %s", path, api, k, plain[k], type(v))
      end
      layer.values[k == "url" and "server" or k] = v
    elseif credkeys[k] then
      if type(v) ~= "string" then
        return nil, string.format("config %s: %s.%s must be a string", path, api, k)
      end
      layer.creds = layer.creds or {}
      layer.creds[credkeys[k].auth] = v
    elseif k == "auth" then
      if type(v) ~= "table" then return nil, string.format("config %s: %s.auth must be a table", path, api) end
      layer.creds = layer.creds or {}
      for ak, av in pairs(v) do layer.creds[ak] = av end
    else
      local util = require("provision.cli.util")
      return nil, string.format("config %s: unknown setting %s.%s%s", path, api, tostring(k),
        util.did_you_mean(tostring(k), known))
    end
  end
  layer.class = classname
  return layer
end

local function env_layer(api, getenv)
  local layer = { values = {}, creds = nil, source = "environment", names = {} }
  local url = getenv(settings.env_name(api, "url"))
  if url and url ~= "" then layer.values.server = url; layer.names.server = settings.env_name(api, "url") end
  for _, k in ipairs({ "generation", "tenant_id", "org_id" }) do
    local v = getenv(settings.env_name(api, k))
    if v and v ~= "" then layer.values[k] = v; layer.names[k] = settings.env_name(api, k) end
  end
  local used = {}
  for _, c in ipairs(settings.credentials[api] or {}) do
    local name = settings.env_name(api, c.key)
    local v = getenv(name)
    if v and v ~= "" then
      layer.creds = layer.creds or {}
      layer.creds[c.auth] = v
      used[#used + 1] = name
    end
  end
  if #used > 0 then layer.creds_source = table.concat(used, ", ") end
  return layer
end

-- Every secret string in a credential table (for redaction).
local function secrets_of(creds, into)
  if type(creds) ~= "table" then return end
  for k, v in pairs(creds) do
    if type(v) == "string" and k ~= "username" and k ~= "token_url" and k ~= "client_id" and k ~= "scope" then
      into[#into + 1] = v
    elseif type(v) == "table" then
      secrets_of(v, into)
    end
  end
end

-- Resolves the settings for one API.
--   flags: the parsed command-line flags; getenv; config: loaded table or nil
--   (config_path names it in messages).
-- Returns { opts = <client options without log/transport>, sources = {...},
--           secrets = {...}, has_creds = bool } or nil, message.
function settings.resolve(api, classname, flags, getenv, config, config_path)
  local layers = {}
  -- flags
  local fl = { values = {}, source = "command line" }
  if flags.server then fl.values.server = flags.server end
  if flags.server_vars then fl.values.server_variables = flags.server_vars end
  if flags.generation then fl.values.generation = flags.generation end
  if flags.tenant_id then fl.values.tenant_id = flags.tenant_id end
  if flags.timeout then fl.values.timeout = flags.timeout end
  if flags.connect_timeout then fl.values.connect_timeout = flags.connect_timeout end
  if flags.deadline then fl.values.deadline = flags.deadline end
  if flags.retries then fl.values.retries = flags.retries end
  if flags.ca_file then fl.values.ca_file = flags.ca_file end
  if flags.insecure then fl.values.insecure = true end
  if flags.org_id then fl.values.org_id = flags.org_id end
  layers[#layers + 1] = fl
  local sandbox_layer
  if flags.sandbox then
    sandbox_layer = { values = {}, source = "--sandbox " .. flags.sandbox }
    local sc = sandbox_creds[api]
    if sc then
      local v = getenv(sc.env)
      sandbox_layer.creds = { [sc.auth] = (v and v ~= "") and v or sc.default }
      sandbox_layer.creds_source = "--sandbox (" .. ((v and v ~= "") and sc.env or "sandbox default") .. ")"
    end
    for k, v in pairs(settings.sandbox_context[api] or {}) do sandbox_layer.values[k] = v end
    layers[#layers + 1] = sandbox_layer
  end
  local envl = env_layer(api, getenv)
  layers[#layers + 1] = envl
  local cfg_layers = {}
  if config then
    local section = config[api]
    if section == nil and classname then section = config[classname] end
    local l, err = config_layer(api, section, config_path or "?", classname)
    if not l then return nil, err end
    cfg_layers[1] = l
    if config.defaults ~= nil then
      local d, derr = config_layer("defaults", config.defaults, config_path or "?")
      if not d then return nil, derr end
      if d.creds then return nil, "config " .. tostring(config_path) .. ": credentials do not belong in defaults" end
      d.source = "config " .. tostring(config_path) .. " (defaults)"
      cfg_layers[2] = d
    end
    for k in pairs(config) do
      if k ~= "defaults" and k ~= "profiles" and not settings.credentials[k] and k ~= classname
         and not settings.sections[k] then
        local known = {}
        for n in pairs(settings.credentials) do known[#known + 1] = n end
        known[#known + 1] = "defaults"
        known[#known + 1] = "profiles"
        local isclass = false
        for _, c in ipairs({ "PortalUsersApi", "Tenants", "UsersApi", "TeamsApi" }) do
          if k == c then isclass = true end
        end
        if not isclass then
          local util = require("provision.cli.util")
          return nil, "config " .. tostring(config_path) .. ": unknown section " .. tostring(k) ..
            util.did_you_mean(tostring(k), known)
        end
      end
    end
  end
  for _, l in ipairs(cfg_layers) do layers[#layers + 1] = l end

  local opts, sources = {}, {}
  for _, key in ipairs(plain_order) do
    for _, l in ipairs(layers) do
      if l.values[key] ~= nil then
        opts[key] = l.values[key]
        sources[key] = (l.names and l.names[key]) or l.source
        break
      end
    end
  end
  -- the sandbox's URL, unless a flag named a server
  if sandbox_layer and not flags.server then
    opts.server = sandbox_url(flags.sandbox, api, opts.generation)
    opts.server_variables = nil
    sources.server = sandbox_layer.source
  end
  for _, l in ipairs(layers) do
    if l.creds then
      opts.auth = l.creds
      sources.auth = l.creds_source or l.source
      break
    end
  end
  local secrets = {}
  for _, l in ipairs(layers) do secrets_of(l.creds, secrets) end
  if opts.insecure then opts.verify = false end
  opts.insecure = nil
  local context = {}
  for k in pairs(settings.context_keys) do
    context[k], opts[k] = opts[k], nil
  end
  return { opts = opts, sources = sources, secrets = secrets, has_creds = opts.auth ~= nil, context = context }
end

-- The config a profile selects: `profiles = { prod = { agilicus = {...},
-- defaults = {...} } }` in the file. A profile stands on its own: its API
-- sections replace the top-level ones (so a credential of one profile never
-- leaks into another); the top-level `defaults` still apply under the
-- profile's own. Returns config, label or nil, message.
function settings.select_profile(config, name, path)
  local profiles = config.profiles
  if profiles ~= nil and type(profiles) ~= "table" then
    return nil, "config " .. tostring(path) .. ": profiles must be a table of named profiles"
  end
  local names = {}
  for k in pairs(profiles or {}) do names[#names + 1] = tostring(k) end
  table.sort(names)
  local p = profiles and profiles[name]
  if p == nil then
    local util = require("provision.cli.util")
    return nil, "config " .. tostring(path) .. " has no profile '" .. tostring(name) .. "'"
      .. util.did_you_mean(tostring(name), names)
      .. (#names > 0 and (" (profiles: " .. table.concat(names, ", ") .. ")") or " (it defines no profiles)")
  end
  if type(p) ~= "table" then
    return nil, "config " .. tostring(path) .. ": profile " .. tostring(name) .. " must be a table"
  end
  if p.profiles ~= nil then
    return nil, "config " .. tostring(path) .. ": profile " .. tostring(name) .. " cannot hold profiles"
  end
  local selected = {}
  for k, v in pairs(p) do selected[k] = v end
  if type(config.defaults) == "table" then
    local d = {}
    for k, v in pairs(config.defaults) do d[k] = v end
    if type(p.defaults) == "table" then
      for k, v in pairs(p.defaults) do d[k] = v end
    elseif p.defaults ~= nil then
      d = p.defaults   -- reported as a bad section by resolve
    end
    selected.defaults = d
  end
  return selected, tostring(path) .. " (profile " .. tostring(name) .. ")"
end

-- Profile names of a loaded config, sorted.
function settings.profile_names(config)
  local names = {}
  if type(config) == "table" and type(config.profiles) == "table" then
    for k in pairs(config.profiles) do names[#names + 1] = tostring(k) end
  end
  table.sort(names)
  return names
end

-- Where to look for the config file: --config, PROVISION_CONFIG, then
-- $XDG_CONFIG_HOME/provision/config.lua or ~/.config/provision/config.lua.
-- Returns path, explicit (a missing explicit file is an error).
function settings.config_path(flags, getenv)
  if flags.config then return flags.config, true end
  local p = getenv("PROVISION_CONFIG")
  if p and p ~= "" then return p, true end
  local xdg = getenv("XDG_CONFIG_HOME")
  if xdg and xdg ~= "" then return xdg .. "/provision/config.lua", false end
  local home = getenv("HOME")
  if home and home ~= "" then return home .. "/.config/provision/config.lua", false end
  return nil, false
end

return settings
