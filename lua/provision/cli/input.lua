-- Rows of an --input file: JSON Lines (one JSON object a line, blank lines
-- skipped) or CSV (RFC 4180: a header row naming the fields, commas,
-- double quotes around fields that hold commas, quotes or line breaks,
-- "" for a quote inside them). Read one row at a time, so a file of any
-- size streams.
--
--   local reader, err = input.open(path_or_dash, stdin, format)  -- format: "jsonl"|"csv"|nil (guess)
--   local row, line, problem = reader:next()
--     -> row (field -> value), line (where the row starts)
--     -> false, line, message      a row that cannot be read (the rest go on)
--     -> nil                       the end
--   reader.format, reader:close()
--   input.count(path, format) -> number of rows (for the progress line), or nil
-- JSON values keep their types; CSV values are text. Lua 5.1/5.4 common syntax.
local core = require("provision.core")

local input = {}

local function guess(path, first)
  local ext = path and path:lower():match("%.([%w]+)$")
  if ext == "csv" then return "csv" end
  if ext == "jsonl" or ext == "ndjson" or ext == "json" then return "jsonl" end
  if first and first:gsub("^\239\187\191", ""):match("^%s*{") then return "jsonl" end
  return "csv"
end

local Reader = {}
Reader.__index = Reader

-- The next physical line (without its end of line), counting lines.
function Reader:line()
  local l
  if self.pushed then
    l, self.pushed = self.pushed, nil
  else
    l = self.fh:read("*l")
  end
  if l == nil then return nil end
  self.lineno = self.lineno + 1
  if self.lineno == 1 then l = l:gsub("^\239\187\191", "") end   -- a UTF-8 byte order mark
  return (l:gsub("\r$", ""))
end

function Reader:next_jsonl()
  while true do
    local l = self:line()
    if l == nil then return nil end
    if l:find("%S") then
      local v, err = core.json_decode(l)
      if v == nil then return false, self.lineno, "not valid JSON: " .. tostring(err) end
      if type(v) ~= "table" or getmetatable(v) == core.array_mt then
        return false, self.lineno, "a row must be a JSON object {\"field\": value, ...}"
      end
      return v, self.lineno
    end
  end
end

-- Splits one CSV record, reading further lines while a quoted field is
-- open. Returns cells, start line, or nil at the end, or false + message.
function Reader:record()
  local l = self:line()
  while l ~= nil and l == "" do l = self:line() end
  if l == nil then return nil end
  local start = self.lineno
  local cells, cell, i, quoted = {}, {}, 1, false
  while true do
    if i > #l then
      if quoted then
        local more = self:line()
        if more == nil then return false, start, "a quoted field is never closed" end
        cell[#cell + 1] = "\n"
        l, i = more, 1
      else
        cells[#cells + 1] = table.concat(cell)
        return cells, start
      end
    else
      local c = l:sub(i, i)
      if quoted then
        if c == '"' then
          if l:sub(i + 1, i + 1) == '"' then cell[#cell + 1] = '"'; i = i + 2
          else quoted = false; i = i + 1 end
        else
          local j = l:find('"', i, true) or (#l + 1)
          cell[#cell + 1] = l:sub(i, j - 1)
          i = j
        end
      elseif c == '"' and #cell == 0 then
        quoted = true
        i = i + 1
      elseif c == "," then
        cells[#cells + 1] = table.concat(cell)
        cell = {}
        i = i + 1
      else
        local j = l:find('[,"]', i) or (#l + 1)
        if j == i then j = i + 1 end   -- a quote inside an unquoted field is text
        cell[#cell + 1] = l:sub(i, j - 1)
        i = j
      end
    end
  end
end

-- The header row: the field names. Returns true or nil, message.
function Reader:read_header()
  local cells, line, problem = self:record()
  if cells == nil then self.header = {} return true end    -- an empty file: no rows
  if cells == false then return nil, "line " .. line .. ": " .. problem end
  local seen = {}
  for k, name in ipairs(cells) do
    name = name:match("^%s*(.-)%s*$")
    if name == "" then return nil, "the header row (line " .. line .. ") has an empty field name (column " .. k .. ")" end
    if seen[name] then return nil, "the header row (line " .. line .. ") names '" .. name .. "' twice" end
    seen[name] = true
    cells[k] = name
  end
  self.header = cells
  return true
end

function Reader:next_csv()
  local cells, line, problem = self:record()
  if cells == nil then return nil end
  if cells == false then return false, line, problem end
  if #cells ~= #self.header then
    return false, line, string.format("%d fields, the header row names %d", #cells, #self.header)
  end
  local row = {}
  for k, name in ipairs(self.header) do row[name] = cells[k] end
  return row, line
end

function Reader:next()
  if self.format == "jsonl" then return self:next_jsonl() end
  return self:next_csv()
end

function Reader:close()
  if self.fh and self.fh ~= self.stdin then self.fh:close() end
  self.fh = nil
end

function input.open(path, stdin, format)
  if format ~= nil and format ~= "jsonl" and format ~= "csv" then
    return nil, "--input-format must be jsonl or csv, got '" .. tostring(format) .. "'"
  end
  local fh, err
  if path == "-" then
    fh = stdin
  else
    fh, err = io.open(path, "rb")
    if not fh then return nil, "cannot read --input " .. tostring(path) .. ": " .. tostring(err) end
    -- io.open takes a folder too; reading it is what fails
    local _, rerr = fh:read(0)
    if rerr then
      fh:close()
      return nil, "cannot read --input " .. tostring(path) .. ": " .. tostring(rerr)
    end
  end
  local self = setmetatable({ fh = fh, stdin = stdin, lineno = 0, path = path }, Reader)
  if not format then
    local first = fh:read("*l")
    self.pushed = first
    format = guess(path ~= "-" and path or nil, first)
  end
  self.format = format
  if format == "csv" then
    local ok, herr = self:read_header()
    if not ok then
      self:close()
      return nil, "--input " .. tostring(path) .. ": " .. herr
    end
  end
  return self
end

-- Rows in a file (a first pass, for the progress line); nil for stdin.
function input.count(path, format)
  if path == "-" then return nil end
  local r = input.open(path, nil, format)
  if not r then return nil end
  local n = 0
  while true do
    local row = r:next()
    if row == nil then break end
    n = n + 1
  end
  r:close()
  return n
end

return input
