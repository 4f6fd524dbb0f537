-- Turn the request and response schemas of an OpenAPI document (a
-- contract.json tree) into provision's schema data (lua/provision/schemas/,
-- format in docs/api-tables.md "Schema data"):
--
--   operations["POST /users"] = { content_type =, body = node, responses = { [201] = node } }
--   definitions.User = node
--
-- for the operations whose tags include one of `tags`. A node keeps what the
-- validator and the command line need: type (or types), nullable, format,
-- enum, default, bounds, read_only/write_only, deprecated, a short
-- description (first sentence, at most DESCRIPTION_MAX bytes), required,
-- additional_properties, items, properties (a list in document order, each
-- with its name), all_of/any_of/one_of. A $ref to #/components/schemas/X
-- becomes { ref = "X" } and X a definition (transitively), so cycles stay
-- finite. Request bodies and responses given by $ref (#/components/
-- requestBodies, responses) are followed in place.
--
-- A keyword this file does not know raises an error: a spec change that
-- brings one shows up at generation time instead of being dropped.
--
-- build(doc, {tags = {...}, descriptions = true|false}) -> data, stats
local json = require "contract.json"

local M = {}

local get = json.get
local null = json.null

M.DESCRIPTION_MAX = 120

local METHODS = { "get", "put", "post", "delete", "patch", "head", "options", "trace" }

-- Keywords with no bearing on what a body may hold or what the command line
-- shows: examples, XML hints, titles, vendor extensions.
local IGNORED = { example = true, examples = true, xml = true, title = true, externalDocs = true }

-- minLength -> min_length
local function snake(k) return (k:gsub("(%u)", function(c) return "_" .. c:lower() end)) end

local function unescape(part) return (part:gsub("~1", "/"):gsub("~0", "~")) end

local function component(doc, ref, kind)
  local name = type(ref) == "string" and ref:match("^#/components/" .. kind .. "/([^/]+)$")
  if not name then error("cannot follow $ref " .. tostring(ref) .. " (expected #/components/" .. kind .. "/...)", 0) end
  name = unescape(name)
  local node = get(get(get(doc, "components"), kind), name)
  if node == nil then error("dangling $ref " .. ref, 0) end
  return node, name
end

-- A JSON number node -> a Lua number (integers stay integers).
local function number(v, where)
  if type(v) ~= "table" or v.kind ~= "number" then error(where .. ": expected a number", 0) end
  if v.text:match("^-?%d+$") then return math.tointeger(tonumber(v.text)) or tonumber(v.text) end
  return tonumber(v.text)
end

-- A JSON value node -> plain Lua data (for enum values and defaults);
-- nil when it cannot be written as Lua data (null, objects, arrays).
local function plain(v)
  if v == null then return nil end
  local t = type(v)
  if t == "string" or t == "boolean" then return v end
  if t == "table" and v.kind == "number" then return number(v, "value") end
  return nil
end

-- The first sentence of a description, one line, at most DESCRIPTION_MAX
-- bytes (cut at a word, never inside a UTF-8 sequence). A first sentence
-- shorter than 40 bytes takes the next ones along ("This is an enum.").
function M.short(text)
  if type(text) ~= "string" then return nil end
  local s = text:gsub("%*%*", ""):gsub("`", ""):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
  if s == "" then return nil end
  local out, pos = "", 1
  while pos <= #s do
    local stop = s:find("[.!?] %u", pos) or s:find("[.!?]$", pos)
    local piece = stop and s:sub(pos, stop) or s:sub(pos)
    out = out == "" and piece or (out .. " " .. piece)
    if not stop or #out >= 40 then break end
    pos = stop + 2
  end
  if #out > M.DESCRIPTION_MAX then
    local cut = M.DESCRIPTION_MAX - 3
    local space = out:sub(1, cut + 1):match("^.*() ")
    if space and space > cut / 2 then cut = space - 1 end
    while cut > 0 do
      local b = out:byte(cut + 1)
      if not b or b < 0x80 or b >= 0xC0 then break end
      cut = cut - 1
    end
    out = out:sub(1, cut):gsub("[%s,;:]+$", "") .. "..."
  end
  return out
end

-- One OpenAPI Schema object -> a node. `want(name)` records a referenced
-- definition; `where` names the place for error messages.
local function convert(s, ctx, where)
  if s == true or (json.is_object(s) and #s.keys == 0) then return {} end   -- any value
  if not json.is_object(s) then error(where .. ": a schema must be an object", 0) end
  local node = {}
  for _, k in ipairs(s.keys) do
    local v = s.values[k]
    local at = where .. "." .. k
    if k == "$ref" then
      local _, name = component(ctx.doc, v, "schemas")
      node.ref = name
      ctx.want(name)
    elseif k == "type" then
      if type(v) == "string" then
        node.type = v
      elseif json.is_array(v) then     -- OpenAPI 3.1: ["string", "null"]
        local types = {}
        for i = 1, v.n do
          if v[i] == "null" then node.nullable = true else types[#types + 1] = v[i] end
        end
        if #types == 1 then node.type = types[1] elseif #types > 1 then node.types = types end
      else
        error(at .. ": expected a string or a list", 0)
      end
    elseif k == "nullable" then
      if v == true then node.nullable = true end
    elseif k == "format" then
      node.format = v
    elseif k == "enum" then
      local list = {}
      for i = 1, v.n do
        if v[i] == null then node.nullable = true
        else
          local p = plain(v[i])
          if p == nil then error(at .. ": only strings, numbers and booleans are supported", 0) end
          list[#list + 1] = p
        end
      end
      node.enum = list
    elseif k == "default" then
      node.default = plain(v)
    elseif k == "minimum" or k == "maximum" then
      node[k] = number(v, at)
    elseif k == "minLength" or k == "maxLength" or k == "minItems" or k == "maxItems" then
      node[snake(k)] = number(v, at)
    elseif k == "readOnly" or k == "writeOnly" or k == "deprecated" then
      if v == true then node[snake(k)] = true end
    elseif k == "description" then
      if ctx.descriptions then node.description = M.short(v) end
    elseif k == "required" then
      local list = {}
      for i = 1, v.n do list[i] = v[i] end
      node.required = list
    elseif k == "additionalProperties" then
      if v == true or v == false then node.additional_properties = v
      else
        local sub = convert(v, ctx, at)
        node.additional_properties = next(sub) == nil or sub
      end
    elseif k == "items" then
      node.items = convert(v, ctx, at)
    elseif k == "properties" then
      local list = {}
      for _, name in ipairs(v.keys) do
        local p = convert(v.values[name], ctx, at .. "." .. name)
        p.name = name
        list[#list + 1] = p
      end
      node.properties = list
    elseif k == "allOf" or k == "anyOf" or k == "oneOf" then
      local list = {}
      for i = 1, v.n do list[i] = convert(v[i], ctx, at .. "[" .. i .. "]") end
      node[snake(k)] = list
    elseif IGNORED[k] or k:sub(1, 2) == "x-" then   -- luacheck: ignore 542
    else
      error(at .. ": schema keyword '" .. k .. "' is not supported by scripts/schemas/convert.lua", 0)
    end
  end
  return node
end

local function has_tag(op, wanted)
  local tags = get(op, "tags")
  if not json.is_array(tags) then return false end
  for i = 1, tags.n do if wanted[tags[i]] then return true end end
  return false
end

-- The schema of a media map ({[content type] = {schema}}): application/json
-- when offered, else the first JSON type in document order.
local function pick_media(content)
  if not json.is_object(content) then return nil end
  if get(content, "application/json") ~= nil then return "application/json", get(content, "application/json") end
  for _, ct in ipairs(content.keys) do
    local l = ct:lower()
    if l:find("json", 1, true) then return ct, content.values[ct] end
  end
  return nil
end

function M.build(doc, rule)
  local wanted = {}
  for _, t in ipairs(rule.tags) do wanted[t] = true end
  local data = { operations = {}, definitions = {} }
  local queue, queued = {}, {}
  local ctx = { doc = doc, descriptions = rule.descriptions ~= false }
  function ctx.want(name)
    if not queued[name] then queued[name] = true; queue[#queue + 1] = name end
  end
  local stats = { operations = 0, bodies = 0, responses = 0 }
  local paths = get(doc, "paths")
  for _, path in ipairs(paths.keys) do
    local item = paths.values[path]
    for _, m in ipairs(METHODS) do
      local op = get(item, m)
      if op ~= nil and has_tag(op, wanted) then
        local key = m:upper() .. " " .. path
        local entry = {}
        stats.operations = stats.operations + 1
        local rb = get(op, "requestBody")
        if rb ~= nil then
          if get(rb, "$ref") ~= nil then rb = component(doc, get(rb, "$ref"), "requestBodies") end
          local ct, media = pick_media(get(rb, "content"))
          if ct and get(media, "schema") ~= nil then
            entry.content_type = ct
            entry.body = convert(get(media, "schema"), ctx, key .. " requestBody")
            stats.bodies = stats.bodies + 1
          end
        end
        local responses = get(op, "responses")
        for _, code in ipairs(json.is_object(responses) and responses.keys or {}) do
          if code:match("^2%d%d$") then
            local r = responses.values[code]
            if get(r, "$ref") ~= nil then r = component(doc, get(r, "$ref"), "responses") end
            local _, media = pick_media(get(r, "content"))
            if media and get(media, "schema") ~= nil then
              entry.responses = entry.responses or {}
              entry.responses[tonumber(code)] = convert(get(media, "schema"), ctx, key .. " " .. code)
              stats.responses = stats.responses + 1
            end
          end
        end
        data.operations[key] = entry
      end
    end
  end
  if stats.operations == 0 then error("no operation is tagged " .. table.concat(rule.tags, " or "), 0) end
  local done = 0
  while done < #queue do
    done = done + 1
    local name = queue[done]
    local s = component(doc, "#/components/schemas/" .. name:gsub("~", "~0"):gsub("/", "~1"), "schemas")
    data.definitions[name] = convert(s, ctx, name)
  end
  stats.definitions = #queue
  return data, stats
end

return M
