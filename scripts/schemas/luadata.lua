-- Write schema data (scripts/schemas/convert.lua) as a Lua 5.1 data file:
-- `return { ... }` with keys in a fixed order, so that the same data always
-- gives the same bytes. A table that fits in WIDTH columns is written on
-- one line, a larger one a field per line.
local M = {}

local WIDTH = 118

-- The order in which a node's fields are written (then any other key, sorted).
local ORDER = {
  "name", "ref", "type", "types", "nullable", "format", "enum", "default",
  "minimum", "maximum", "min_length", "max_length", "min_items", "max_items",
  "read_only", "write_only", "deprecated", "description",
  "required", "additional_properties", "items", "properties", "all_of", "any_of", "one_of",
  -- operation entries and the file itself
  "content_type", "body", "responses",
  "source", "source_sha256", "source_openapi", "source_info_version", "generator", "generated",
  "operations", "definitions",
}
local RANK = {}
for i, k in ipairs(ORDER) do RANK[k] = i end

local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    if c == "\n" then return "\\n" end
    return ("\\%03d"):format(c:byte())
  end) .. '"'
end

local function is_list(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

local function key_text(k)
  if type(k) == "number" then return "[" .. ("%d"):format(k) .. "]" end
  if k:match("^[%a_][%w_]*$") and not M.KEYWORDS[k] then return k end
  return "[" .. quote(k) .. "]"
end

M.KEYWORDS = {}
for w in ("and break do else elseif end false for function goto if in local nil not or repeat return then true until while")
    :gmatch("%a+") do M.KEYWORDS[w] = true end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ra, rb = RANK[a] or math.huge, RANK[b] or math.huge
    if ra ~= rb then return ra < rb end
    if type(a) ~= type(b) then return type(a) == "number" end
    return a < b
  end)
  return keys
end

local value_text

local function entries(t)
  local out = {}
  if is_list(t) then
    for i = 1, #t do out[i] = { nil, t[i] } end
  else
    for i, k in ipairs(sorted_keys(t)) do out[i] = { key_text(k), t[k] } end
  end
  return out
end

local function inline(v)
  local t = type(v)
  if t == "string" then return quote(v) end
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    if math.type(v) == "integer" then return ("%d"):format(v) end
    return ("%.17g"):format(v)
  end
  if t ~= "table" then error("cannot write a " .. t, 0) end
  local list = entries(v)
  if #list == 0 then return "{}" end
  local parts = {}
  for i, e in ipairs(list) do parts[i] = (e[1] and (e[1] .. " = ") or "") .. inline(e[2]) end
  return "{ " .. table.concat(parts, ", ") .. " }"
end

function value_text(v, indent)
  local one = inline(v)
  if type(v) ~= "table" or #indent + #one <= WIDTH then return one end
  local inner = indent .. "  "
  local lines = { "{" }
  for _, e in ipairs(entries(v)) do
    local prefix = e[1] and (e[1] .. " = ") or ""
    lines[#lines + 1] = inner .. prefix .. value_text(e[2], inner) .. ","
  end
  lines[#lines + 1] = indent .. "}"
  return table.concat(lines, "\n")
end

-- The file: a comment header (lines without "--"), then `return <data>`.
function M.file(header, data)
  local lines = {}
  for _, l in ipairs(header) do lines[#lines + 1] = ("-- " .. l):gsub("%s+$", "") end
  lines[#lines + 1] = "return " .. value_text(data, "")
  return table.concat(lines, "\n") .. "\n"
end

return M
