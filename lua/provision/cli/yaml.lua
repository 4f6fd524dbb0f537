-- A small YAML emitter for `--output yaml`: block style, sorted keys, and
-- every string that a YAML 1.1 or 1.2 reader could take for something
-- else (a number, a boolean, null, a date, an indicator, a comment, a key)
-- written double-quoted. A JSON string is a valid YAML double-quoted
-- scalar, so quoting reuses the JSON encoder. Lua 5.1/5.4 common syntax.
local core = require("provision.core")

local yaml = {}

local null = core.null
local array_mt = core.array_mt

-- Plain words a reader would turn into a boolean or null (YAML 1.1 included).
local special_words = {}
for _, w in ipairs({ "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~" }) do
  special_words[w] = true
end

local function needs_quotes(s)
  if s == "" then return true end
  if special_words[s:lower()] then return true end
  if s:find("^[%s]") or s:find("[%s]$") then return true end
  -- indicators that may not start a plain scalar
  if s:find("^[%-%?:,%[%]{}#&%*!|>'\"%%@`]") then return true end
  if s:find(": ", 1, true) or s:find(" #", 1, true) or s:sub(-1) == ":" then return true end
  if s:find("[%c\127]") then return true end       -- newlines, tabs, other controls
  if s == "=" or s == "<<" then return true end     -- YAML 1.1 value and merge keys
  -- anything that reads as a number, including 0x1F, 1e3, .5, 1_000, +1, .inf, .nan
  if s:find("^[%+%-]?[%d%.]") or s:find("^%.%a") then return true end
  -- dates and times (YAML 1.1 timestamps, sexagesimal 1:20)
  if s:find("^%d+:%d") then return true end
  return false
end

local function scalar_text(v)
  if v == null then return "null" end
  local t = type(v)
  if t == "string" then
    if needs_quotes(v) then return (core.json_encode(v)) end
    return v
  elseif t == "boolean" then
    return v and "true" or "false"
  elseif t == "number" then
    if v ~= v then return ".nan" end
    if v == math.huge then return ".inf" end
    if v == -math.huge then return "-.inf" end
    return (core.json_encode(v))
  end
  return (core.json_encode(tostring(v)))
end

local function is_array(t)
  return getmetatable(t) == array_mt or (next(t) ~= nil and t[1] ~= nil)
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

local function key_text(k)
  return scalar_text(tostring(k))
end

local emit

-- Appends the lines of `v` at `indent` (a string of spaces) to `out`.
-- `lead` is what comes before the first line ("- " for an item, "" else).
local function emit_block(v, indent, out)
  if is_array(v) then
    for i = 1, #v do
      local item = v[i]
      if type(item) == "table" and item ~= null and next(item) ~= nil then
        local sub = {}
        emit(item, indent .. "  ", sub)
        -- the first line of the item goes on the dash line
        sub[1] = indent .. "- " .. sub[1]:sub(#indent + 3)
        for _, l in ipairs(sub) do out[#out + 1] = l end
      else
        out[#out + 1] = indent .. "- " .. (type(item) == "table" and item ~= null
          and (getmetatable(item) == array_mt and "[]" or "{}") or scalar_text(item))
      end
    end
  else
    for _, k in ipairs(sorted_keys(v)) do
      local item = v[k]
      if type(item) == "table" and item ~= null and next(item) ~= nil then
        out[#out + 1] = indent .. key_text(k) .. ":"
        if is_array(item) then
          emit(item, indent, out)      -- a sequence under a key may sit at the key's indent
        else
          emit(item, indent .. "  ", out)
        end
      else
        out[#out + 1] = indent .. key_text(k) .. ": " .. (type(item) == "table" and item ~= null
          and (getmetatable(item) == array_mt and "[]" or "{}") or scalar_text(item))
      end
    end
  end
end

emit = function(v, indent, out)
  if type(v) == "table" and v ~= null then
    if next(v) == nil then
      out[#out + 1] = indent .. (getmetatable(v) == array_mt and "[]" or "{}")
    else
      emit_block(v, indent, out)
    end
  else
    out[#out + 1] = indent .. scalar_text(v)
  end
end

-- The YAML text of a value (a document without the leading `---`).
function yaml.encode(v)
  local out = {}
  emit(v, "", out)
  return table.concat(out, "\n")
end

yaml.needs_quotes = needs_quotes
return yaml
