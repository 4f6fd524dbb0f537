-- provision: clients for the APIs that provision people and tenants.
--
--   local provision = require "provision"
--   local users = assert(provision.UsersApi{ auth = { bearer = token } })
--   local user = assert(users:create_user({ email = "ada@example.com", org_id = org }))
local client = require("provision.client")

local provision = {
  -- "provision X.Y.Z", as Lua's own _VERSION is "Lua 5.4"; `version` is the
  -- bare X.Y.Z of the loaded C core. They agree (tests/spec/rockspec_spec.lua)
  -- unless a stale build/ is loaded with newer Lua files.
  _VERSION = "provision 0.2.0",
  version = require("provision.core").version,
  json = require("provision.json"),
  errors = require("provision.errors"),
  events = require("provision.events"),
}

-- API key -> module with its table, and the SDK class names as aliases.
local apis = {
  docspace = "provision.apis.docspace",
  outpost = "provision.apis.outpost",
  agilicus = "provision.apis.agilicus",
  document360 = "provision.apis.document360",
}
local classes = {
  PortalUsersApi = "docspace",
  Tenants = "outpost",
  UsersApi = "agilicus",
  TeamsApi = "document360",
}

-- An API table by key, SDK class name, or the name of any data file under
-- lua/provision/apis/ (so a fifth API is one new file).
function provision.api(name)
  local mod = apis[name] or apis[classes[name] or ""]
  if not mod and type(name) == "string" and name:match("^[%w_]+$") then
    local ok, t = pcall(require, "provision.apis." .. name)
    if ok and type(t) == "table" then return t end
  end
  if not mod then return nil, "unknown API '" .. tostring(name) .. "'" end
  return require(mod)
end

-- provision.new("agilicus", opts) or provision.new(api_table, opts)
function provision.new(api, opts)
  if type(api) ~= "table" then
    local t, err = provision.api(api)
    if not t then return nil, provision.errors.new({ kind = "invalid_argument", message = err }) end
    api = t
  end
  return client.new(api, opts)
end

for key in pairs(apis) do
  provision[key] = function(opts) return provision.new(key, opts) end
end
for class, key in pairs(classes) do
  provision[class] = function(opts) return provision.new(key, opts) end
end

return provision
