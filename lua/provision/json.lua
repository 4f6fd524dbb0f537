-- JSON for provision: the C codec in provision.core (exact 64-bit integers,
-- `[]` for arrays marked as such, null distinct from absent). Strict both
-- ways (docs/core-api.md): strings must be valid UTF-8 (decode and encode
-- refuse anything else with nil, err), and encode refuses an object whose
-- keys would be written twice ({[1] = x, ["1"] = y}).
local core = require("provision.core")

local json = {
  null = core.null,          -- equal to cjson.null
  array_mt = core.array_mt,
}

function json.decode(text)
  return core.json_decode(text)
end

function json.encode(value, opts)
  return core.json_encode(value, opts)
end

-- Mark a table as a JSON array, so that an empty one goes out as [].
function json.array(t)
  return setmetatable(t or {}, core.array_mt)
end

function json.is_array(t)
  return type(t) == "table" and getmetatable(t) == core.array_mt
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return setmetatable(c, getmetatable(t))
end

-- Walk one dotted path ("roles", "org.members") through `value`, returning a
-- copy in which an empty table found there is marked as an array. Arrays met
-- on the way are walked element by element. The caller's tables are never
-- modified.
local function mark(value, parts, i)
  if type(value) ~= "table" then return value end
  if i > #parts then
    if next(value) == nil and getmetatable(value) == nil then
      return setmetatable({}, core.array_mt)
    end
    return value
  end
  if value[1] ~= nil or getmetatable(value) == core.array_mt then
    local out
    for idx = 1, #value do
      local v = mark(value[idx], parts, i)
      if v ~= value[idx] then
        out = out or copy(value)
        out[idx] = v
      end
    end
    return out or value
  end
  local key = parts[i]
  if key == "*" then   -- every value of a map
    local out
    for k, child in pairs(value) do
      local v = mark(child, parts, i + 1)
      if v ~= child then
        out = out or copy(value)
        out[k] = v
      end
    end
    return out or value
  end
  local child = value[key]
  if child == nil then return value end
  local v = mark(child, parts, i + 1)
  if v == child then return value end
  local out = copy(value)
  out[key] = v
  return out
end

local split_cache = setmetatable({}, { __mode = "k" })

local function split(path)
  local parts = {}
  for p in path:gmatch("[^%.]+") do parts[#parts + 1] = p end
  return parts
end

-- Encode a request body whose schema names the given array paths.
function json.encode_body(body, array_paths)
  if array_paths and type(body) == "table" then
    local cached = split_cache[array_paths]
    if not cached then
      cached = {}
      for n, p in ipairs(array_paths) do cached[n] = split(p) end
      split_cache[array_paths] = cached
    end
    for _, parts in ipairs(cached) do body = mark(body, parts, 1) end
  end
  return core.json_encode(body)
end

return json
