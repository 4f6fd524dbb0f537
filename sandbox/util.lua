-- sandbox/util.lua: small helpers shared by the sandbox modules (URL decoding,
-- query parsing, time stamps, deterministic ids, base64 for opaque cursors).
local M = {}

function M.url_decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

function M.url_encode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- Parses a query string into `first` (name -> first value) and `all`
-- (name -> list of values, in order). "+" is a space, as browsers send it.
function M.parse_query(q)
  local first, all = {}, {}
  if not q or q == "" then return first, all end
  for pair in q:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=(.*)$")
    if not k then k, v = pair, "" end
    k = M.url_decode((k:gsub("%+", " ")))
    v = M.url_decode((v:gsub("%+", " ")))
    if first[k] == nil then first[k] = v end
    local list = all[k]
    if not list then list = {}; all[k] = list end
    list[#list + 1] = v
  end
  return first, all
end

function M.iso8601(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t or os.time()))
end

function M.http_date(t)
  return os.date("!%a, %d %b %Y %H:%M:%S GMT", math.floor(t or os.time()))
end

-- Parses "2024-01-15T10:30:00Z" (or without Z / with fraction) into epoch seconds.
function M.parse_iso8601(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, se = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[T ](%d%d):(%d%d):(%d%d)")
  if not y then
    y, mo, d = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
    if not y then return nil end
    h, mi, se = 0, 0, 0
  end
  -- days from civil (Howard Hinnant), UTC, no os.time/timezone involvement
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local mp = (mo + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(se)
end

-- Deterministic id generator: the same sequence after every reset, so tests
-- and fixtures can rely on stable ids. `kind` is "uuid", "alnum22" or "hex24".
local Ids = {}
Ids.__index = Ids

function M.ids(seed)
  return setmetatable({ n = 0, seed = seed or 1 }, Ids)
end

local function mix(x)
  -- splitmix64 finaliser on Lua 5.4 integers (wraps modulo 2^64)
  x = x + 0x9E3779B97F4A7C15
  x = (x ~ (x >> 30)) * 0xBF58476D1CE4E5B9
  x = (x ~ (x >> 27)) * 0x94D049BB133111EB
  return x ~ (x >> 31)
end

function Ids:next_raw()
  self.n = self.n + 1
  return mix(self.seed * 1000003 + self.n), mix(self.seed * 7919 + self.n * 31 + 17)
end

local ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

function Ids:next(kind)
  local a, b = self:next_raw()
  if kind == "uuid" then
    local hex = string.format("%016x%016x", a, b)
    -- version 4, variant 10xx, to look like what DocSpace/Document360 hand out
    return string.format("%s-%s-4%s-%x%s-%s", hex:sub(1, 8), hex:sub(9, 12), hex:sub(14, 16),
      8 + (tonumber(hex:sub(17, 17), 16) % 4), hex:sub(18, 20), hex:sub(21, 32))
  elseif kind == "hex24" then
    return string.format("%016x%08x", a, b & 0xffffffff)
  else
    local out, x = {}, a
    for i = 1, 22 do
      if i == 12 then x = b end
      local r = x % 62
      x = x // 62
      if x < 0 then x = -x end
      out[i] = ALNUM:sub(r + 1, r + 1)
    end
    return table.concat(out)
  end
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

function M.b64encode(s)
  return ((s:gsub(".", function(c)
    local r, b = "", c:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return B64:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#s % 3 + 1])
end

function M.b64decode(s)
  if type(s) ~= "string" or s:find("[^%w%+/=]") then return nil end
  s = s:gsub("=", "")
  return (s:gsub(".", function(x)
    local f = B64:find(x, 1, true) - 1
    local r = ""
    for i = 6, 1, -1 do r = r .. (f % 2 ^ i - f % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end):gsub("%d%d%d?%d?%d?%d?%d?%d?", function(x)
    if #x ~= 8 then return "" end
    local c = 0
    for i = 1, 8 do c = c + (x:sub(i, i) == "1" and 2 ^ (8 - i) or 0) end
    return string.char(math.floor(c))
  end))
end

function M.deep_copy(v, seen)
  if type(v) ~= "table" then return v end
  seen = seen or {}
  if seen[v] then return seen[v] end
  local out = {}
  seen[v] = out
  for k, x in pairs(v) do out[M.deep_copy(k, seen)] = M.deep_copy(x, seen) end
  return setmetatable(out, getmetatable(v))
end

function M.lower(s) return type(s) == "string" and s:lower() or s end

function M.trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

return M
