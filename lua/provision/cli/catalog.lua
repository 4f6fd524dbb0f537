-- What bin/provision knows about the APIs and their operations: looking an
-- API or operation up by the words an operator types, the positional and
-- optional parameters, signatures and parameter rows for help. Read from
-- the API tables (lua/provision/apis/*.lua); nothing here is per API.
-- Lua 5.1/5.4 common syntax.
local provision = require("provision")
local client_mod = require("provision.client")
local settings = require("provision.cli.settings")
local util = require("provision.cli.util")

local catalog = {}

local usage = util.usage

catalog.API_KEYS = { "docspace", "outpost", "agilicus", "document360" }
catalog.CLASSES = { docspace = "PortalUsersApi", outpost = "Tenants", agilicus = "UsersApi", document360 = "TeamsApi" }

local function resolve_api(word)
  if catalog.CLASSES[word] then return word end
  local lw = word:lower()
  for key, class in pairs(catalog.CLASSES) do
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

catalog.resolve_api = resolve_api
catalog.api_table = api_table
catalog.operations = operations
catalog.op_names = op_names
catalog.find_op = find_op
catalog.positional_params = positional_params
catalog.body_param = body_param
catalog.param_lookup = param_lookup
catalog.type_label = type_label
catalog.signature = signature
catalog.scheme_text = scheme_text
catalog.scheme_source = scheme_source
catalog.param_rows = param_rows

-- Looks an operation up or stops with a usage error (did you mean ...).
function catalog.need_op(key, word, generation)
  local api = api_table(key)
  local ops, g = operations(api, generation)
  local op = find_op(api, ops, word, g)
  if not op then
    usage("%s has no operation '%s'%s (see: provision %s ops)", key, word,
      util.did_you_mean(word, op_names(ops)), key)
  end
  return op, g, api, ops
end

-- Every operation of an API over all its server generations (completion).
function catalog.all_operations(key)
  local api = api_table(key)
  if not api.generations then return api.operations end
  local seen, list = {}, {}
  local gens = {}
  for g in pairs(api.generations) do gens[#gens + 1] = g end
  table.sort(gens, function(a, b)
    if a == api.default_generation then return true end
    if b == api.default_generation then return false end
    return a < b
  end)
  for _, g in ipairs(gens) do
    for _, op in ipairs(api.generations[g].operations) do
      if not seen[op.name] then seen[op.name] = true; list[#list + 1] = op end
    end
  end
  return list
end

return catalog
