-- Lossless JSON for the contract-fixture generator (Lua 5.4).
--
-- decode(text) keeps what a Lua table would lose: the order of an object's
-- keys (Prism serves the first example and the first content type in document
-- order), each number's exact text (64-bit integers, 1.0 vs 1), and the
-- difference between [] and {} and between null and absent.
--
--   object  { kind = "object", keys = { "a", "b" }, values = { a = ..., b = ... } }
--   array   { kind = "array", n = 2, [1] = ..., [2] = ... }
--   number  { kind = "number", text = "1.50" }
--   null    json.null
--   string, true, false as themselves
--
-- encode(node) writes that form back, two-space indented, one member or
-- element per line, so the same tree always gives the same bytes. Plain Lua
-- tables are accepted too: a sequence (or json.array(t)) is an array, any
-- other table an object with its keys sorted.
local M = {}

M.null = setmetatable({}, { __name = "json.null", __tostring = function() return "null" end })

local ARRAY = { __name = "json.array" }

function M.object() return { kind = "object", keys = {}, values = {} } end

--- Mark a plain Lua list as an array (so an empty one is written as []).
function M.array(t) return setmetatable(t or {}, ARRAY) end

function M.is_object(v) return type(v) == "table" and v.kind == "object" end
function M.is_array(v) return type(v) == "table" and v.kind == "array" end

function M.get(obj, key)
  if M.is_object(obj) then return obj.values[key] end
  return nil
end

function M.set(obj, key, value)
  if obj.values[key] == nil then obj.keys[#obj.keys + 1] = key end
  obj.values[key] = value
end

function M.remove(obj, key)
  if obj.values[key] == nil then return end
  obj.values[key] = nil
  for i, k in ipairs(obj.keys) do
    if k == key then table.remove(obj.keys, i) break end
  end
end

-- ------------------------------------------------------------------ decode

local function decode_error(text, pos, what)
  local line = 1
  for _ in text:sub(1, pos):gmatch("\n") do line = line + 1 end
  error(("JSON: %s at line %d (byte %d)"):format(what, line, pos), 0)
end

local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function skip(text, pos)
  return text:find("[^ \t\r\n]", pos) or #text + 1
end

local function decode_string(text, pos)
  -- pos is just past the opening quote
  local parts = {}
  while true do
    local stop = text:find('["\\]', pos)
    if not stop then decode_error(text, pos, "unterminated string") end
    local chunk = text:sub(pos, stop - 1)
    if chunk:find("[%z\1-\31]") then decode_error(text, pos, "control character in string") end
    parts[#parts + 1] = chunk
    if text:sub(stop, stop) == '"' then return table.concat(parts), stop + 1 end
    local e = text:sub(stop + 1, stop + 1)
    if e == "u" then
      local hex = text:sub(stop + 2, stop + 5)
      if not hex:match("^%x%x%x%x$") then decode_error(text, stop, "bad \\u escape") end
      local cp = tonumber(hex, 16)
      pos = stop + 6
      if cp >= 0xD800 and cp <= 0xDBFF then
        local lo = text:match("^\\u(%x%x%x%x)", pos)
        lo = lo and tonumber(lo, 16)
        if not lo or lo < 0xDC00 or lo > 0xDFFF then decode_error(text, stop, "lone surrogate") end
        cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
        pos = pos + 6
      elseif cp >= 0xDC00 and cp <= 0xDFFF then
        decode_error(text, stop, "lone surrogate")
      end
      parts[#parts + 1] = utf8.char(cp)
    elseif ESCAPES[e] then
      parts[#parts + 1] = ESCAPES[e]
      pos = stop + 2
    else
      decode_error(text, stop, "bad escape")
    end
  end
end

local decode_value

local function decode_object(text, pos)
  local obj = M.object()
  pos = skip(text, pos)
  if text:sub(pos, pos) == "}" then return obj, pos + 1 end
  while true do
    if text:sub(pos, pos) ~= '"' then decode_error(text, pos, "expected a key") end
    local key
    key, pos = decode_string(text, pos + 1)
    pos = skip(text, pos)
    if text:sub(pos, pos) ~= ":" then decode_error(text, pos, "expected ':'") end
    if obj.values[key] ~= nil then decode_error(text, pos, "duplicate key " .. key) end
    local value
    value, pos = decode_value(text, skip(text, pos + 1))
    M.set(obj, key, value)
    pos = skip(text, pos)
    local c = text:sub(pos, pos)
    if c == "}" then return obj, pos + 1 end
    if c ~= "," then decode_error(text, pos, "expected ',' or '}'") end
    pos = skip(text, pos + 1)
  end
end

local function decode_array(text, pos)
  local arr = { kind = "array", n = 0 }
  pos = skip(text, pos)
  if text:sub(pos, pos) == "]" then return arr, pos + 1 end
  while true do
    local value
    value, pos = decode_value(text, pos)
    arr.n = arr.n + 1
    arr[arr.n] = value
    pos = skip(text, pos)
    local c = text:sub(pos, pos)
    if c == "]" then return arr, pos + 1 end
    if c ~= "," then decode_error(text, pos, "expected ',' or ']'") end
    pos = skip(text, pos + 1)
  end
end

function decode_value(text, pos)
  local c = text:sub(pos, pos)
  if c == "{" then return decode_object(text, pos + 1) end
  if c == "[" then return decode_array(text, pos + 1) end
  if c == '"' then return decode_string(text, pos + 1) end
  local num = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
  if num and num ~= "" and num ~= "-" then
    if not num:match("^-?%d+$") and not num:match("^-?%d+%.%d+$") and not num:match("^-?%d+%.?%d*[eE][-+]?%d+$") then
      decode_error(text, pos, "bad number " .. num)
    end
    return { kind = "number", text = num }, pos + #num
  end
  if text:sub(pos, pos + 3) == "true" then return true, pos + 4 end
  if text:sub(pos, pos + 4) == "false" then return false, pos + 5 end
  if text:sub(pos, pos + 3) == "null" then return M.null, pos + 4 end
  decode_error(text, pos, "unexpected " .. (c == "" and "end of text" or ("'" .. c .. "'")))
end

function M.decode(text)
  local value, pos = decode_value(text, skip(text, 1))
  pos = skip(text, pos)
  if pos <= #text then decode_error(text, pos, "trailing text") end
  return value
end

-- ------------------------------------------------------------------ encode

local function encode_string(s)
  if not utf8.len(s) then error("JSON: string is not valid UTF-8: " .. s:sub(1, 40), 0) end
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    if c == "\n" then return "\\n" end
    if c == "\r" then return "\\r" end
    if c == "\t" then return "\\t" end
    return ("\\u%04x"):format(c:byte())
  end) .. '"'
end

local function plain_is_array(t)
  if getmetatable(t) == ARRAY then return true end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n > 0 and n == #t
end

local function encode_value(v, indent, out)
  local t = type(v)
  if v == M.null then out[#out + 1] = "null"
  elseif t == "string" then out[#out + 1] = encode_string(v)
  elseif t == "boolean" then out[#out + 1] = tostring(v)
  elseif t == "number" then
    if math.type(v) == "integer" then out[#out + 1] = ("%d"):format(v)
    else out[#out + 1] = ("%.17g"):format(v) end
  elseif t == "table" and v.kind == "number" then out[#out + 1] = v.text
  elseif t == "table" then
    local items = {}   -- { key or false, value }
    local is_array
    if v.kind == "array" then
      is_array = true
      for i = 1, v.n do items[i] = { false, v[i] } end
    elseif v.kind == "object" then
      is_array = false
      for i, k in ipairs(v.keys) do items[i] = { k, v.values[k] } end
    elseif plain_is_array(v) then
      is_array = true
      for i = 1, #v do items[i] = { false, v[i] } end
    else
      is_array = false
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" then error("JSON: object key is not a string: " .. tostring(k), 0) end
        keys[#keys + 1] = k
      end
      table.sort(keys)
      for i, k in ipairs(keys) do items[i] = { k, v[k] } end
    end
    local open, close = is_array and "[" or "{", is_array and "]" or "}"
    if #items == 0 then out[#out + 1] = open .. close return end
    local inner = indent .. "  "
    out[#out + 1] = open
    for i, item in ipairs(items) do
      out[#out + 1] = "\n" .. inner
      if item[1] then out[#out + 1] = encode_string(item[1]) .. ": " end
      encode_value(item[2], inner, out)
      if i < #items then out[#out + 1] = "," end
    end
    out[#out + 1] = "\n" .. indent .. close
  else
    error("JSON: cannot encode a " .. t, 0)
  end
end

--- The JSON text of a node (or plain Lua value), ending with a newline.
function M.encode(v)
  local out = {}
  encode_value(v, "", out)
  out[#out + 1] = "\n"
  return table.concat(out)
end

return M
