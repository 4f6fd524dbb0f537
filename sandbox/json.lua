-- sandbox/json.lua: the sandbox's only door to JSON, so the backing can change.
--
-- Backed by provision.core (json_encode/json_decode, core.array_mt, core.null)
-- when the C module loads; otherwise cjson decodes and a small Lua encoder
-- writes (Debian's lua-cjson cannot emit [] for an empty array and prints
-- integers with 14 significant digits). Either way:
--   json.encode(v) -> string | nil, err     json.decode(s) -> v | nil, err
--   json.array(t)  -> t marked as a JSON array (so {} goes out as [])
--   json.null      -> the JSON null sentinel (equal to cjson.null)
--   json.backend   -> "provision.core" or "cjson+lua"
local M = {}

local ok_core, core = pcall(require, "provision.core")
if not (ok_core and type(core) == "table" and core.json_encode and core.json_decode
        and core.array_mt and core.null ~= nil) then
  core = nil
end

if core then
  M.backend = "provision.core"
  M.array_mt = core.array_mt
  M.null = core.null
  M.encode = core.json_encode
  M.decode = core.json_decode
else
  local cjson = require "cjson.safe"
  M.backend = "cjson+lua"
  M.array_mt = { __name = "sandbox.json.array" }
  M.null = cjson.null
  cjson.decode_invalid_numbers(false)
  cjson.decode_max_depth(512)

  local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
                    ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
  local function esc(s)
    return '"' .. s:gsub('[%c"\\]', function(c)
      return escapes[c] or string.format("\\u%04x", c:byte())
    end) .. '"'
  end

  local function number(x)
    if math.type(x) == "integer" then return string.format("%d", x) end
    if x ~= x or x == math.huge or x == -math.huge then error("cannot encode NaN or Inf", 0) end
    for _, f in ipairs({ "%.15g", "%.16g", "%.17g" }) do
      local s = string.format(f, x)
      if tonumber(s) == x then return s end
    end
    return string.format("%.17g", x)
  end

  local encode_value
  local function is_array(t)
    if getmetatable(t) == M.array_mt then return true end
    local n = #t
    if n == 0 then return false end
    local count = 0
    for _ in pairs(t) do count = count + 1 end
    return count == n
  end

  function encode_value(v, out, depth)
    local tv = type(v)
    if depth > 512 then error("nesting deeper than 512", 0) end
    if v == M.null or v == nil then out[#out + 1] = "null"
    elseif tv == "boolean" then out[#out + 1] = v and "true" or "false"
    elseif tv == "number" then out[#out + 1] = number(v)
    elseif tv == "string" then out[#out + 1] = esc(v)
    elseif tv == "table" then
      if is_array(v) then
        out[#out + 1] = "["
        for i = 1, #v do
          if i > 1 then out[#out + 1] = "," end
          encode_value(v[i], out, depth + 1)
        end
        out[#out + 1] = "]"
      else
        local keys = {}
        for k in pairs(v) do
          local tk = type(k)
          if tk ~= "string" and tk ~= "number" then error("object key is a " .. tk, 0) end
          keys[#keys + 1] = tostring(k)
        end
        table.sort(keys)
        out[#out + 1] = "{"
        for i, k in ipairs(keys) do
          local x = v[k]
          if x == nil then x = v[tonumber(k)] end
          if i > 1 then out[#out + 1] = "," end
          out[#out + 1] = esc(k)
          out[#out + 1] = ":"
          encode_value(x, out, depth + 1)
        end
        out[#out + 1] = "}"
      end
    else
      error("cannot encode a " .. tv, 0)
    end
  end

  function M.encode(v)
    local out = {}
    local ok, err = pcall(encode_value, v, out, 0)
    if not ok then return nil, err end
    return table.concat(out)
  end

  function M.decode(s)
    local v, err = cjson.decode(s)
    if v == nil and err then return nil, err end
    return v
  end
end

function M.array(t)
  return setmetatable(t or {}, M.array_mt)
end

function M.is_array(t)
  return type(t) == "table" and (getmetatable(t) == M.array_mt or (#t > 0 and next(t, #t) == nil))
end

return M
