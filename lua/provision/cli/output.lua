-- The one output module every command of bin/provision prints through:
-- results in the chosen format, messages, the progress line, and the
-- redaction of every known secret on the way out.
--
--   local output = require("provision.cli.output")
--   local out = output.new(ctx)     -- ctx: {stdout, stderr, getenv, terminal?} (see cli.main)
--   out.redact.add(secret)          -- from now on, printed as ***
--   local ok, err = out:configure{ format = "table", fields = "email,status", compact = true }
--                                   -- --output/-o, --fields, --compact; PROVISION_OUTPUT
--                                   -- is the format when no flag gives one
--   out:print(text)                 -- lines to stdout, as they are
--   out:err(text)                   -- lines to stderr (the progress line steps aside)
--   out:value(v, { items = "users" })
--                                   -- a result: scalars raw (a URL is one line, no quotes;
--                                   -- quoted only with an explicit -o json or yaml), lists
--                                   -- and records in the format; `items` names the field
--                                   -- that holds a record's list (an operation's paging.items)
--   out:records(rows, columns)      -- rows of records (plan, doctor): a table on a terminal,
--                                   -- JSON otherwise, or the chosen format; `columns` are
--                                   -- field paths, and --fields overrides them
--   out:json(v, compact, "stderr")  -- JSON text whatever the format (requests, error bodies)
--   out:status(text) / out:status_done()
--                                   -- the one-line progress display on stderr, only when
--                                   -- stderr is a terminal; status_done clears it
--   out:format()                    -- "json", "table", "tsv" or "yaml", and whether it was asked for
--   out:is_terminal("stdout"|"stderr"), out:width()
--
-- Formats: json (sorted keys, two-space indent; --compact for one line),
-- table (fitted to the terminal's width: columns that do not fit are
-- dropped from the right, long cells cut), tsv (a header row, then one row
-- a record; tabs, newlines and backslashes escaped), yaml. Default: table
-- when stdout is a terminal, json when it is not.
-- Lua 5.1/5.4 common syntax.
local core = require("provision.core")
local util = require("provision.cli.util")
local tabular = require("provision.cli.tabular")
local yaml = require("provision.cli.yaml")
local terminal = require("provision.cli.terminal")

local output = {}

output.formats = { "json", "table", "tsv", "yaml" }
local known = {}
for _, f in ipairs(output.formats) do known[f] = true end

local Out = {}
Out.__index = Out

function output.new(ctx)
  return setmetatable({
    ctx = ctx, stdout = ctx.stdout, stderr = ctx.stderr, getenv = ctx.getenv or os.getenv,
    redact = util.redactor(), fields = nil, compact = false,
  }, Out)
end

-- Applies --output, --fields, --compact. Returns true or nil, message.
function Out:configure(opts)
  local f = opts.format
  local origin = "--output"
  if f == nil or f == "" then
    local env = self.getenv("PROVISION_OUTPUT")
    if env and env ~= "" then f, origin = env, "PROVISION_OUTPUT" end
  end
  if f ~= nil then
    f = tostring(f):lower()
    if not known[f] then
      return nil, origin .. " must be one of " .. table.concat(output.formats, ", ") .. ", got '" .. tostring(f)
        .. "'" .. util.did_you_mean(f, output.formats)
    end
    self.chosen = f
  end
  if opts.fields ~= nil then
    local list = tabular.parse_fields(opts.fields)
    if #list == 0 then return nil, "--fields needs one or more field names (email,status,roles.crm)" end
    self.fields = list
  end
  self.compact = opts.compact and true or false
  return true
end

function Out:terminals()
  if not self.tty then self.tty = terminal.probe(self.ctx) end
  return self.tty
end

function Out:is_terminal(stream)
  return self:terminals()[stream or "stdout"] == true
end

-- The width tables are fitted to: the terminal's, or $COLUMNS; nil (no
-- fitting) when stdout is not a terminal and COLUMNS is not set.
function Out:width()
  if self.width_cache == nil then
    self.width_cache = terminal.width(self.ctx, self:is_terminal("stdout")) or false
  end
  return self.width_cache or nil
end

function Out:format()
  if self.chosen then return self.chosen, true end
  return self:is_terminal("stdout") and "table" or "json", false
end

local function ellipsis(getenv)
  local loc = (getenv("LC_ALL") or "") .. (getenv("LC_CTYPE") or "") .. (getenv("LANG") or "")
  if loc:lower():find("utf%-?8") then return "\226\128\166" end   -- U+2026
  return "~"
end

-- Lines --------------------------------------------------------------------

function Out:write_stdout(s)
  self.stdout:write(self.redact.apply(s), "\n")
end

function Out:print(s)
  self:write_stdout(s)
end

function Out:err(s)
  local shown = self.status_line
  if shown then self.stderr:write("\r\27[K") end
  self.stderr:write(self.redact.apply(s), "\n")
  if shown then self.stderr:write(shown) end
  if self.stderr.flush then self.stderr:flush() end
end

function Out:json(v, compact, stream)
  local s, err = util.to_json(v, compact)
  if not s then s = "(cannot show as JSON: " .. tostring(err) .. ")" end
  if stream == "stderr" then self:err(s) else self:print(s) end
end

-- The progress line -----------------------------------------------------------

function Out:status(text)
  if not self:is_terminal("stderr") then return end
  local w = (self.ctx.terminal and self.ctx.terminal.width) or terminal.width(self.ctx, true) or 80
  text = self.redact.apply(text)
  if tabular.width_of(text) > w - 1 then text = text:sub(1, w - 1) end
  self.status_line = "\r" .. text .. "\27[K"
  self.stderr:write(self.status_line)
  if self.stderr.flush then self.stderr:flush() end
end

function Out:status_done()
  if self.status_line then
    self.stderr:write("\r\27[K")
    self.status_line = nil
    if self.stderr.flush then self.stderr:flush() end
  end
end

-- Results ---------------------------------------------------------------------

local function raw_text(v)
  if v == nil or v == core.null then return "null" end
  if type(v) == "string" then return v end
  return tabular.cell(v)
end

local function header_of(columns, upper)
  local h = {}
  for i, c in ipairs(columns) do h[i] = upper and c:upper() or c end
  return h
end

function Out:print_table(columns, rows, keep_all)
  local cells = {}
  for i, r in ipairs(rows) do
    local line = {}
    for j, c in ipairs(columns) do line[j] = tabular.cell(tabular.get(r, c)) end
    cells[i] = line
  end
  local width = self:width()
  local lines, dropped = tabular.table_lines(header_of(columns, true), cells, width,
    { keep_all = keep_all, ellipsis = ellipsis(self.getenv) })
  for _, l in ipairs(lines) do self:write_stdout(l) end
  return dropped
end

function Out:print_tsv(columns, rows)
  local cells = {}
  for i, r in ipairs(rows) do
    local line = {}
    for j, c in ipairs(columns) do line[j] = tabular.cell(tabular.get(r, c)) end
    cells[i] = line
  end
  for _, l in ipairs(tabular.tsv_lines(header_of(columns, false), cells)) do self:write_stdout(l) end
end

-- A list of records as a table or TSV.
function Out:list_as_text(fmt, rows, columns)
  local explicit = self.fields ~= nil
  local cols, hidden = columns, 0
  if self.fields then cols = self.fields
  elseif not cols then cols, hidden = tabular.default_columns(rows) end
  if #rows == 0 and #cols == 0 then
    self:err("provision: no items")
    return
  end
  if fmt == "tsv" then
    self:print_tsv(cols, rows)
    return
  end
  local dropped = self:print_table(cols, rows, explicit)
  if dropped > 0 or hidden > 0 then
    self:err(string.format("provision: %d more field%s not shown (choose with --fields, or -o json for all)",
      dropped + hidden, dropped + hidden == 1 and "" or "s"))
  end
end

-- A record as a table (FIELD VALUE lines) or TSV (a header and one row).
function Out:record_as_text(fmt, record)
  local pairs_list = tabular.flatten(record)
  if self.fields then
    pairs_list = {}
    for _, f in ipairs(self.fields) do pairs_list[#pairs_list + 1] = { f, tabular.get(record, f) } end
  end
  if fmt == "tsv" then
    local header, row = {}, {}
    for i, p in ipairs(pairs_list) do header[i] = p[1]; row[i] = tabular.cell(p[2]) end
    for _, l in ipairs(tabular.tsv_lines(header, { row })) do self:write_stdout(l) end
    return
  end
  local rows = {}
  for i, p in ipairs(pairs_list) do rows[i] = { p[1], tabular.cell(p[2]) } end
  local lines = tabular.table_lines({ "FIELD", "VALUE" }, rows, self:width(),
    { keep_all = true, ellipsis = ellipsis(self.getenv) })
  for _, l in ipairs(lines) do self:write_stdout(l) end
end

function Out:structured(fmt, v)
  if fmt == "yaml" then
    self:write_stdout(yaml.encode(v))
  else
    self:json(v, self.compact)
  end
end

-- A result value; see the top of the file.
function Out:value(v, hint)
  local fmt, explicit = self:format()
  local structured = fmt == "json" or fmt == "yaml"
  local kind, data = tabular.shape(v, hint and hint.items)
  if kind == "scalar" then
    if explicit and structured then self:structured(fmt, v) else self:write_stdout(raw_text(v)) end
    return
  end
  local fields = self.fields
  if kind == "record" and fields and #fields == 1 and not (explicit and structured) then
    -- one field of one record: the value itself (what `jq -r .field` gives)
    local one = tabular.get(data, fields[1])
    if type(one) ~= "table" or one == core.null then
      self:write_stdout(raw_text(one))
      return
    end
  end
  if structured then
    if not fields then return self:structured(fmt, v) end
    if kind == "list" then
      local list = setmetatable({}, core.array_mt)
      for i, r in ipairs(data) do list[i] = type(r) == "table" and tabular.project(r, fields) or r end
      return self:structured(fmt, list)
    end
    return self:structured(fmt, tabular.project(data, fields))
  end
  if kind == "list" then
    if not self.fields and #data > 0 and type(data[1]) ~= "table" then
      -- a list of scalars: one a line
      for _, item in ipairs(data) do self:write_stdout(raw_text(item)) end
      return
    end
    return self:list_as_text(fmt, data)
  end
  return self:record_as_text(fmt, data)
end

-- Rows with known columns, for commands' own reports (doctor, plan).
function Out:records(rows, columns)
  local fmt = self:format()
  if fmt == "json" or fmt == "yaml" then
    local list = setmetatable({}, core.array_mt)
    for i, r in ipairs(rows) do list[i] = self.fields and tabular.project(r, self.fields) or r end
    return self:structured(fmt, list)
  end
  return self:list_as_text(fmt, rows, columns)
end

return output
