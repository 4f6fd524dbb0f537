-- Plain-text tables for the command line: a header row, then rows, each
-- column as wide as its widest cell, numbers aligned right. Any command can
-- print through it (plan and apply summaries, journal listings).
--
--   local tbl = require("provision.cli.table")
--   for _, line in ipairs(tbl.render({ "SYSTEM", "CREATED" }, { { "agilicus", 3 } })) do print(line) end
--
-- render(headers, rows, opts) -> list of lines (no trailing spaces).
--   headers: list of column titles; rows: lists of cells (strings or
--   numbers; nil prints as "-"); opts.align = { [i] = "left"|"right" }
--   (default: right for a column whose cells are all numbers), opts.gap
--   (two spaces), opts.total = a last row set off by a rule.
-- Lua 5.1/5.4 common syntax.
local tbl = {}

local function cell(v)
  if v == nil then return "-" end
  return tostring(v)
end

-- Display width of a UTF-8 string (code points; no wide-glyph handling).
local function width(s)
  local _, n = s:gsub("[^\128-\191]", "")
  return n
end
tbl.width = width

local function pad(s, w, right)
  local fill = string.rep(" ", w - width(s))
  if right then return fill .. s end
  return s .. fill
end

function tbl.render(headers, rows, opts)
  opts = opts or {}
  local gap = opts.gap or "  "
  local all = { headers }
  for _, r in ipairs(rows) do all[#all + 1] = r end
  if opts.total then all[#all + 1] = opts.total end
  local ncol = #headers
  local widths, numeric = {}, {}
  for i = 1, ncol do widths[i], numeric[i] = 0, #rows > 0 end
  for k, r in ipairs(all) do
    for i = 1, ncol do
      local s = cell(r[i])
      if width(s) > widths[i] then widths[i] = width(s) end
      if k > 1 and type(r[i]) ~= "number" and r[i] ~= nil then numeric[i] = false end
    end
  end
  local function line(r)
    local cells = {}
    for i = 1, ncol do
      local align = (opts.align and opts.align[i]) or (numeric[i] and "right" or "left")
      local s = cell(r[i])
      if i == ncol and align == "left" then cells[i] = s else cells[i] = pad(s, widths[i], align == "right") end
    end
    return (table.concat(cells, gap):gsub("%s+$", ""))
  end
  local out = { line(headers) }
  for _, r in ipairs(rows) do out[#out + 1] = line(r) end
  if opts.total then
    local rule = {}
    for i = 1, ncol do rule[i] = string.rep("-", widths[i]) end
    out[#out + 1] = (table.concat(rule, gap))
    out[#out + 1] = line(opts.total)
  end
  return out
end

return tbl
