-- Cut a published OpenAPI document (a contract.json tree) down to the
-- operations provision covers, keeping it a valid document that Prism serves:
--
--   * the operations whose tags include one of `tags`, with their path-level
--     parameters; other operations and paths are dropped;
--   * every component they reference, transitively ($ref, discriminator
--     mappings), and every security scheme; other components are dropped;
--   * structure kept as published: types, formats, enums, defaults, required,
--     parameters, request and response schemas, headers, security, servers,
--     examples, deprecated flags, and the document order of every key (Prism
--     answers with the first example and content type it meets);
--   * prose dropped: `description` and `summary` (a Response's required
--     description becomes ""), `externalDocs`, OAuth scope texts (""), the
--     top-level tag list's texts, and vendor `x-` extensions except KEEP_X.
--
-- cut(doc, {tags = {...}}) -> fixture, stats {operations =, components =}
-- Raises on a $ref it cannot follow (external, or outside #/components).
local json = require "contract.json"

local M = {}

local get, set = json.get, json.set

-- x- extensions that carry structure rather than noise: Speakeasy's SDK
-- method names (the names provision mirrors).
local KEEP_X = { ["x-speakeasy-name-override"] = true }

local METHODS = { get = true, put = true, post = true, delete = true, patch = true,
                  head = true, options = true, trace = true }

-- Keys of an OpenAPI/JSON Schema object whose value is data: copied as is.
local DATA = { example = true, default = true, enum = true, const = true, value = true,
               required = true, security = true, tags = true, type = true }

-- Keys whose value maps free names to objects (the names are never stripped).
local MAPS = { properties = true, patternProperties = true, paths = true, schemas = true,
               responses = true, parameters = true, headers = true, content = true,
               securitySchemes = true, requestBodies = true, examples = true, variables = true,
               links = true, callbacks = true, encoding = true, definitions = true,
               ["$defs"] = true, dependentSchemas = true, pathItems = true }

local function copy(v)
  if type(v) ~= "table" or v == json.null then return v end
  if v.kind == "number" then return v end
  if v.kind == "array" then
    local a = { kind = "array", n = v.n }
    for i = 1, v.n do a[i] = copy(v[i]) end
    return a
  end
  local o = json.object()
  for _, k in ipairs(v.keys) do set(o, k, copy(v.values[k])) end
  return o
end

local strip_node

-- Prose (description, summary), links to prose, vendor noise.
local function dropped(k, v)
  if (k == "description" or k == "summary") and type(v) == "string" then return true end
  if k == "externalDocs" then return true end
  return k:sub(1, 2) == "x-" and not KEEP_X[k]
end

-- A map of names to objects; `key` says which map (responses need care).
local function strip_map(map, key, refs)
  if json.is_array(map) then   -- e.g. an operation's parameter list
    local a = { kind = "array", n = map.n }
    for i = 1, map.n do a[i] = strip_node(map[i], refs) end
    return a
  end
  if not json.is_object(map) then return copy(map) end
  local out = json.object()
  for _, name in ipairs(map.keys) do
    local v = map.values[name]
    if key == "scopes" then
      set(out, name, "")
    else
      local s = strip_node(v, refs)
      if key == "responses" and json.is_object(s) and get(s, "$ref") == nil and get(s, "description") == nil then
        -- OpenAPI requires a Response's description; keep it, empty
        local r = json.object()
        set(r, "description", "")
        for _, k in ipairs(s.keys) do set(r, k, s.values[k]) end
        s = r
      end
      set(out, name, s)
    end
  end
  return out
end

-- An OpenAPI or JSON Schema object: drop prose and noise, recurse.
function strip_node(node, refs)
  if json.is_array(node) then
    local a = { kind = "array", n = node.n }
    for i = 1, node.n do a[i] = strip_node(node[i], refs) end
    return a
  end
  if not json.is_object(node) then return copy(node) end
  local out = json.object()
  for _, k in ipairs(node.keys) do
    local v = node.values[k]
    if dropped(k, v) then   -- luacheck: ignore 542 (a Response gets its description back in strip_map)
    elseif k == "$ref" then
      refs[#refs + 1] = v
      set(out, k, v)
    elseif k == "discriminator" and json.is_object(v) then
      local mapping = get(v, "mapping")
      if json.is_object(mapping) then
        for _, name in ipairs(mapping.keys) do refs[#refs + 1] = mapping.values[name] end
      end
      set(out, k, copy(v))
    elseif k == "examples" and json.is_array(v) then
      set(out, k, copy(v))   -- JSON Schema 2020-12 examples: a list of values
    elseif DATA[k] then
      set(out, k, copy(v))
    elseif MAPS[k] or k == "scopes" then
      set(out, k, strip_map(v, k, refs))
    else
      set(out, k, strip_node(v, refs))
    end
  end
  return out
end

local function unescape(part) return (part:gsub("~1", "/"):gsub("~0", "~")) end

-- "#/components/schemas/A~1B" -> "schemas", "A/B"
local function component_of(ref)
  if type(ref) ~= "string" then error("a $ref that is not a string", 0) end
  local kind, name = ref:match("^#/components/([^/]+)/([^/]+)$")
  if not kind then
    error("cannot follow $ref " .. ref .. " (only #/components/<type>/<name> is supported)", 0)
  end
  return kind, unescape(name)
end

local function has_tag(op, wanted)
  local tags = get(op, "tags")
  if not json.is_array(tags) then return false end
  for i = 1, tags.n do
    if wanted[tags[i]] then return true end
  end
  return false
end

function M.cut(doc, rule)
  local wanted = {}
  for _, t in ipairs(rule.tags) do wanted[t] = true end
  local refs = {}
  local out = json.object()
  local stats = { operations = 0, components = 0 }

  for _, k in ipairs({ "openapi", "jsonSchemaDialect" }) do
    if get(doc, k) ~= nil then set(out, k, copy(get(doc, k))) end
  end
  local info = get(doc, "info")
  local new_info = json.object()
  set(new_info, "title", copy(get(info, "title")))
  set(new_info, "version", copy(get(info, "version")))
  set(out, "info", new_info)
  if get(doc, "servers") ~= nil then set(out, "servers", strip_node(get(doc, "servers"), refs)) end
  if get(doc, "security") ~= nil then set(out, "security", copy(get(doc, "security"))) end

  -- the operations we cover
  local used_tags = {}
  local paths = json.object()
  local src_paths = get(doc, "paths")
  for _, path in ipairs(src_paths.keys) do
    local item = src_paths.values[path]
    if get(item, "$ref") ~= nil then error("path " .. path .. ": a $ref path item is not supported", 0) end
    local kept = json.object()
    for _, k in ipairs(item.keys) do
      local v = item.values[k]
      if METHODS[k] and has_tag(v, wanted) then
        set(kept, k, strip_node(v, refs))
        stats.operations = stats.operations + 1
        local tags = get(v, "tags")
        for i = 1, tags.n do used_tags[tags[i]] = true end
      end
    end
    if #kept.keys > 0 then
      local full = json.object()
      for _, k in ipairs({ "servers", "parameters" }) do
        if get(item, k) ~= nil then set(full, k, strip_map(get(item, k), k, refs)) end
      end
      for _, k in ipairs(kept.keys) do set(full, k, kept.values[k]) end
      set(paths, path, full)
    end
  end
  if stats.operations == 0 then
    error("no operation is tagged " .. table.concat(rule.tags, " or "), 0)
  end

  local src_tags = get(doc, "tags")
  if json.is_array(src_tags) then
    local tags = { kind = "array", n = 0 }
    for i = 1, src_tags.n do
      local name = get(src_tags[i], "name")
      if used_tags[name] then
        local t = json.object()
        set(t, "name", name)
        tags.n = tags.n + 1
        tags[tags.n] = t
      end
    end
    set(out, "tags", tags)
  end
  set(out, "paths", paths)

  -- the components they reference, transitively, and every security scheme
  local src = get(doc, "components")
  local keep = {}   -- kind -> name -> stripped component
  local function want(kind, name)
    keep[kind] = keep[kind] or {}
    if keep[kind][name] then return end
    local group = get(src, kind)
    local c = json.is_object(group) and group.values[name]
    if c == nil then error("dangling $ref #/components/" .. kind .. "/" .. name, 0) end
    keep[kind][name] = true   -- before recursing: schemas may refer to themselves
    local s
    if kind == "securitySchemes" then s = strip_node(c, refs)
    else s = strip_map({ kind = "object", keys = { name }, values = { [name] = c } }, kind, refs).values[name] end
    keep[kind][name] = s
  end
  local sec = json.is_object(src) and get(src, "securitySchemes")
  if json.is_object(sec) then
    for _, name in ipairs(sec.keys) do want("securitySchemes", name) end
  end
  local done = 0
  while done < #refs do
    done = done + 1
    want(component_of(refs[done]))
  end
  if json.is_object(src) then
    local comps = json.object()
    for _, kind in ipairs(src.keys) do
      local group = src.values[kind]
      if keep[kind] and json.is_object(group) then
        local g = json.object()
        for _, name in ipairs(group.keys) do
          if keep[kind][name] then
            set(g, name, keep[kind][name])
            stats.components = stats.components + 1
          end
        end
        set(comps, kind, g)
      end
    end
    set(out, "components", comps)
  end
  return out, stats
end

return M
