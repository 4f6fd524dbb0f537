-- Small helpers for the command line (lua/provision/cli.lua): usage errors,
-- JSON text, "did you mean" suggestions and secret redaction.
-- Lua 5.1/5.4 common syntax.
local core = require("provision.core")

local util = {}

-- A usage error travels as a table through error() up to cli.main, which
-- prints its message and exits 2.
local Usage = {}
function util.usage(fmt, ...)
  error(setmetatable({ message = string.format(fmt, ...) }, Usage), 0)
end

function util.is_usage(e)
  return getmetatable(e) == Usage
end

-- Ctrl-C: the lua5.4 interpreter's SIGINT handler raises "interrupted!"
-- at the next Lua instruction.
function util.is_interrupt(e)
  return type(e) == "string" and e:find("interrupted!$") ~= nil
end

-- Re-indents compact JSON text (as produced by core.json_encode): outside
-- strings the encoder writes no whitespace, so structure can be read from
-- the characters {}[],: alone. Empty objects and arrays stay as {} and [].
function util.indent_json(s, unit)
  unit = unit or "  "
  local out, depth, i, n = {}, 0, 1, #s
  local function nl() return "\n" .. string.rep(unit, depth) end
  while i <= n do
    local c = s:sub(i, i)
    if c == '"' then
      local j = i + 1
      while true do
        local k = s:find('["\\]', j)
        if not k then j = n; break end
        if s:sub(k, k) == "\\" then j = k + 2 else j = k; break end
      end
      out[#out + 1] = s:sub(i, j)
      i = j + 1
    elseif c == "{" or c == "[" then
      local close = (c == "{") and "}" or "]"
      if s:sub(i + 1, i + 1) == close then
        out[#out + 1] = c .. close
        i = i + 2
      else
        depth = depth + 1
        out[#out + 1] = c .. nl()
        i = i + 1
      end
    elseif c == "}" or c == "]" then
      depth = depth - 1
      out[#out + 1] = nl() .. c
      i = i + 1
    elseif c == "," then
      out[#out + 1] = "," .. nl()
      i = i + 1
    elseif c == ":" then
      out[#out + 1] = ": "
      i = i + 1
    else
      local k = s:find("[,:%]}]", i) or (n + 1)
      out[#out + 1] = s:sub(i, k - 1)
      i = k
    end
  end
  return table.concat(out)
end

-- A value as JSON text with sorted keys: indented, or compact.
function util.to_json(v, compact)
  local s, err = core.json_encode(v, { sort_keys = true })
  if not s then return nil, err end
  if compact then return s end
  return util.indent_json(s)
end

-- "Did you mean" suggestions live in the library (client options use them too).
local suggest = require("provision.suggest")
util.distance = suggest.distance
util.suggest = suggest.suggest
util.did_you_mean = suggest.did_you_mean

-- A redactor: a function that replaces every known secret in a string by
-- ***. Secrets shorter than 6 characters are masked only where the CLI
-- knows a secret goes (headers), since replacing them everywhere would
-- garble ordinary output.
function util.redactor()
  local secrets = {}
  local self = {}
  function self.add(s)
    if type(s) == "string" and #s >= 6 then
      secrets[#secrets + 1] = s
      table.sort(secrets, function(a, b) return #a > #b end)
    end
  end
  function self.apply(text)
    text = tostring(text)
    for _, s in ipairs(secrets) do
      local i = 1
      local parts = {}
      while true do
        local a, b = text:find(s, i, true)
        if not a then break end
        parts[#parts + 1] = text:sub(i, a - 1)
        parts[#parts + 1] = "***"
        i = b + 1
      end
      if #parts > 0 then
        parts[#parts + 1] = text:sub(i)
        text = table.concat(parts)
      end
    end
    return text
  end
  return self
end

-- Columns: rows of strings, padded to the widest cell per column (the last
-- column is not padded).
function util.columns(rows, gap)
  gap = gap or "  "
  local widths = {}
  for _, r in ipairs(rows) do
    for i, cell in ipairs(r) do
      if not widths[i] or #cell > widths[i] then widths[i] = #cell end
    end
  end
  local lines = {}
  for _, r in ipairs(rows) do
    local cells = {}
    for i, cell in ipairs(r) do
      if i < #r then cells[i] = cell .. string.rep(" ", widths[i] - #cell) else cells[i] = cell end
    end
    lines[#lines + 1] = (table.concat(cells, gap):gsub("%s+$", ""))
  end
  return lines
end

return util
