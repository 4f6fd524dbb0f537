-- The shapes behind `--output table|tsv` and `--fields`: what a result is
-- (a list of records, one record, or a scalar), field paths, cell text,
-- a table fitted to a width, and TSV. Text work only: printing is
-- cli/output.lua's. Lua 5.1/5.4 common syntax.
local core = require("provision.core")

local tabular = {}

local null = core.null
local array_mt = core.array_mt

local function is_array(t)
  return type(t) == "table" and t ~= null and (getmetatable(t) == array_mt or t[1] ~= nil)
end
tabular.is_array = is_array

local function is_object(t)
  return type(t) == "table" and t ~= null and not is_array(t)
end

local function is_records(list)
  if not is_array(list) or #list == 0 then return false end
  for i = 1, #list do
    if not is_object(list[i]) and not (type(list[i]) == "table" and next(list[i]) == nil) then return false end
  end
  return true
end

-- Characters (not bytes) of UTF-8 text.
local function width_of(s)
  local _, cont = s:gsub("[\128-\191]", "")
  return #s - cont
end
tabular.width_of = width_of

-- The first n characters of s.
local function first_chars(s, n)
  local count, i = 0, 1
  while i <= #s do
    local c = s:byte(i)
    if c < 128 or c >= 192 then
      if count == n then return s:sub(1, i - 1) end
      count = count + 1
    end
    i = i + 1
  end
  return s
end

-- What a result is: "list", rows | "record", record | "scalar", value.
-- `items` names the field of a record that holds the list (an operation's
-- paging.items); without it, a small envelope (at most 3 fields) whose
-- only list of records is one field ({users = [...], limit = 2}) is that list.
function tabular.shape(v, items)
  if type(v) ~= "table" or v == null then return "scalar", v end
  if is_array(v) then return "list", v end
  if next(v) == nil then return "record", v end
  if items and is_array(v[items]) then return "list", v[items] end
  local found, count, keys = nil, 0, 0
  for _, child in pairs(v) do
    keys = keys + 1
    if is_records(child) then found = child; count = count + 1 end
  end
  if count == 1 and keys <= 3 then return "list", found end
  return "record", v
end

-- "email,status, roles.crm" -> {"email", "status", "roles.crm"}
function tabular.parse_fields(text)
  local list = {}
  for f in tostring(text):gmatch("[^,]+") do
    f = f:match("^%s*(.-)%s*$")
    if f ~= "" then list[#list + 1] = f end
  end
  return list
end

-- The value at a dotted path; a number indexes a list from 0 (as jq does).
function tabular.get(v, path)
  for part in path:gmatch("[^%.]+") do
    if type(v) ~= "table" or v == null then return nil end
    local n = part:match("^%d+$") and tonumber(part)
    if n and is_array(v) then v = v[n + 1] else v = v[part] end
  end
  return v
end

-- A copy of record `r` with only the given paths, nested again
-- ({"a.b"} -> {a = {b = ...}}); paths that are absent stay absent.
function tabular.project(r, fields)
  local out = {}
  for _, path in ipairs(fields) do
    local v = tabular.get(r, path)
    if v ~= nil then
      local t = out
      local parts = {}
      for part in path:gmatch("[^%.]+") do parts[#parts + 1] = part end
      for i = 1, #parts - 1 do
        if type(t[parts[i]]) ~= "table" then t[parts[i]] = {} end
        t = t[parts[i]]
      end
      t[parts[#parts]] = v
    end
  end
  return out
end

-- Text of one value in a cell: strings as they are, null and absent empty,
-- lists and records as compact JSON.
function tabular.cell(v)
  if v == nil or v == null then return "" end
  local t = type(v)
  if t == "string" then return v end
  if t == "boolean" then return v and "true" or "false" end
  if t == "table" then
    local s = core.json_encode(v, { sort_keys = true })
    return s or "?"
  end
  return (core.json_encode(v)) or tostring(v)
end

-- Fields shown first when the columns are chosen for you.
local preferred = { "id", "user_id", "tenant_id", "email", "email_id", "status", "name", "title", "first_name",
                    "last_name", "type" }
local preferred_rank = {}
for i, f in ipairs(preferred) do preferred_rank[f] = i end

-- Default columns of a list of records: the scalar fields of any row,
-- preferred ones first, then by name; nested values are left to
-- --fields or -o json. Returns columns, hidden (how many nested fields).
function tabular.default_columns(rows)
  local scalar, nested = {}, {}
  for _, r in ipairs(rows) do
    if type(r) == "table" then
      for k, v in pairs(r) do
        if type(v) == "table" and v ~= null then nested[k] = true else scalar[k] = true end
      end
    end
  end
  local cols = {}
  for k in pairs(scalar) do cols[#cols + 1] = k end
  if #cols == 0 then for k in pairs(nested) do cols[#cols + 1] = k end end
  table.sort(cols, function(a, b)
    local ra, rb = preferred_rank[a] or 1000, preferred_rank[b] or 1000
    if ra ~= rb then return ra < rb end
    return tostring(a) < tostring(b)
  end)
  local hidden = 0
  if next(scalar) then
    for k in pairs(nested) do if not scalar[k] then hidden = hidden + 1 end end
  end
  return cols, hidden
end

-- A record as (field, value) rows: nested records flattened into dotted
-- names (roles.crm), lists kept whole; sorted by name.
function tabular.flatten(r)
  local out = {}
  local function walk(v, prefix)
    if is_object(v) and next(v) ~= nil then
      for k, child in pairs(v) do walk(child, prefix and (prefix .. "." .. tostring(k)) or tostring(k)) end
    else
      out[#out + 1] = { prefix or "", v }
    end
  end
  walk(r, nil)
  table.sort(out, function(a, b) return a[1] < b[1] end)
  return out
end

-- Cell text for a terminal: controls shown as spaces.
local function table_text(s)
  return (s:gsub("[%c]", " "))
end

-- Lines of a table: header, then rows (lists of cell strings), columns
-- two spaces apart. With `width`: cells longer than 40 characters are cut
-- (ending in `ellipsis`), columns that still do not fit are dropped from
-- the right (unless `keep_all`: then the widest are cut further), and room
-- left over goes back to cut columns. Returns lines, dropped (column count).
function tabular.table_lines(header, rows, width, opts)
  opts = opts or {}
  local ellipsis = opts.ellipsis or "~"
  local n = #header
  local cells = { header }
  for _, r in ipairs(rows) do
    local line = {}
    for i = 1, n do line[i] = table_text(r[i] or "") end
    cells[#cells + 1] = line
  end
  local natural = {}
  for i = 1, n do
    local w = 0
    for _, r in ipairs(cells) do
      local cw = width_of(r[i])
      if cw > w then w = cw end
    end
    natural[i] = w
  end
  local shown = n
  local widths = {}
  for i = 1, n do
    -- free text is cut at 40 rather than pushing the columns after it off
    widths[i] = math.min(natural[i], math.max(width_of(header[i]), 40))
  end
  local function total(upto)
    local t = 2 * (upto - 1)
    for i = 1, upto do t = t + widths[i] end
    return t
  end
  if width then
    if not opts.keep_all then
      -- the first columns matter most: drop from the right until the rest fit
      while shown > 1 and total(shown) > width do shown = shown - 1 end
    end
    local spare = width - total(shown)
    for i = 1, shown do   -- room left: give cut columns back their width, left to right
      if spare <= 0 then break end
      local more = math.min(natural[i] - widths[i], spare)
      widths[i] = widths[i] + more
      spare = spare - more
    end
    if spare < 0 then
      -- still too wide (chosen --fields, or one column): cut the widest first,
      -- to the largest cap c with sum(min(width, max(c, least))) <= room
      local room = width - 2 * (shown - 1)
      local function least(i) return math.min(widths[i], math.max(width_of(header[i]), 4)) end
      local function sum(c)
        local t = 0
        for i = 1, shown do t = t + math.min(widths[i], math.max(c, least(i))) end
        return t
      end
      local lo, hi = 1, 0
      for i = 1, shown do if widths[i] > hi then hi = widths[i] end end
      while lo < hi do
        local mid = math.floor((lo + hi + 1) / 2)
        if sum(mid) <= room then lo = mid else hi = mid - 1 end
      end
      for i = 1, shown do widths[i] = math.min(widths[i], math.max(lo, least(i))) end
    end
  else
    for i = 1, n do widths[i] = natural[i] end
  end
  local lines = {}
  for _, r in ipairs(cells) do
    local parts = {}
    for i = 1, shown do
      local s = r[i]
      local w = width_of(s)
      if w > widths[i] then
        s = first_chars(s, math.max(widths[i] - width_of(ellipsis), 0)) .. ellipsis
        w = width_of(s)
      end
      if i < shown then s = s .. string.rep(" ", widths[i] - w) end
      parts[i] = s
    end
    lines[#lines + 1] = (table.concat(parts, "  "):gsub("%s+$", ""))
  end
  return lines, n - shown
end

-- One TSV field: tabs, newlines, carriage returns and backslashes escaped.
local tsv_escapes = { ["\t"] = "\\t", ["\n"] = "\\n", ["\r"] = "\\r", ["\\"] = "\\\\" }
function tabular.tsv_field(s)
  return (s:gsub("[\t\n\r\\]", tsv_escapes))
end

function tabular.tsv_lines(header, rows)
  local lines = {}
  local function line(r)
    local parts = {}
    for i = 1, #header do parts[i] = tabular.tsv_field(r[i] or "") end
    lines[#lines + 1] = table.concat(parts, "\t")
  end
  line(header)
  for _, r in ipairs(rows) do line(r) end
  return lines
end

return tabular
