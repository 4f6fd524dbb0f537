-- A roster: the people the four systems should hold, one row each (CSV,
-- JSON Lines, or a Lua table). Which columns exist, and what each means, is
-- read from the resources (docs/reconcile.md "Roster"): email, first_name
-- and last_name, then every resource's key, membership and field columns.
--
--   roster.parse(text, opts) -> r | nil, err
--   roster.read(path, opts)  -> r | nil, err
--   roster.from_rows(rows, opts) -> r | nil, err      (a Lua list of tables)
--   roster.read_mapping(path) -> mapping | nil, err
--
-- opts: resources = { {name = "agilicus", resource = {...}, api = table}, ... }
--       (default: the four built-in APIs); format = "csv"|"jsonl"; source =
--       the name used in messages; mapping = { ["HR column"] = "email", ... };
--       email = "optional" (rows keyed by another column: workflow helpers);
--       allow_empty = true (a roster of nobody; refused otherwise, since with
--       prune it would remove everyone: workflow's single removals).
-- r.rows[i] = { line =, email =, values = {column = value}, systems = {
--   [name] = { member = bool, key =, desired = {field = value} } } }
-- r.digest: sha256 of the normalised rows (the same people give the same
-- digest whatever the order or the format); r.ignored: columns a mapping
-- left out.
--
-- Bad rows (no email, a malformed one, a duplicate, a value a field cannot
-- take) are all reported at once: err.rows = { {line =, message =}, ... },
-- err.class = "RosterError", and nothing is planned.
local core = require("provision.core")
local json = require("provision.json")
local errors = require("provision.errors")
local kinds = require("provision.reconcile.kinds")
local did_you_mean = require("provision.suggest").did_you_mean

local roster = {}

roster.BASE_COLUMNS = { "email", "first_name", "last_name" }
roster.SYSTEMS = { "agilicus", "document360", "outpost", "docspace" }
roster.EMPTY = "-"   -- a cell meaning "none" (no roles, no metadata)

local EMAIL = "^[^@%s,;<>\"]+@[^@%s,;<>\"]+%.[^@%s,;<>\".]+$"

local function trim(s)
  if s:find("^%s") or s:find("%s$") then return (s:gsub("^%s+", ""):gsub("%s+$", "")) end
  return s
end

local function roster_error(source, bad)
  table.sort(bad, function(a, b)
    if a.line ~= b.line then return a.line < b.line end
    return a.message < b.message
  end)
  local parts = {}
  for i, b in ipairs(bad) do
    if i > 10 then parts[#parts + 1] = ("... and %d more"):format(#bad - 10) break end
    parts[#parts + 1] = ("line %d: %s"):format(b.line, b.message)
  end
  return errors.new({ kind = "invalid_argument", class = "RosterError", operation = "roster",
    message = ("%s: %d bad row%s, nothing planned: %s"):format(source, #bad, #bad == 1 and "" or "s",
      table.concat(parts, "; ")), rows = bad })
end

-- The built-in resources, in the order the reconciler runs them.
function roster.default_resources()
  local provision_api = require("provision").api
  local out = {}
  for _, name in ipairs(roster.SYSTEMS) do
    local api = assert(provision_api(name))
    out[#out + 1] = { name = name, api = api, resource = api.resource }
  end
  return out
end

-- An operation table of an API (any generation) by name.
local function find_op(api, name)
  for _, op in ipairs(api.operations or {}) do if op.name == name then return op end end
  for _, gen in pairs(api.generations or {}) do
    for _, op in ipairs(gen.operations) do if op.name == name then return op end end
  end
end

-- A field with its kind, and an enum's values from the operation parameter
-- it names.
function roster.prepare_field(api, f)
  local kind = kinds[f.kind]
  if not kind then error("resource field " .. tostring(f.name) .. ": unknown kind " .. tostring(f.kind), 0) end
  local pf = {}
  for k, v in pairs(f) do pf[k] = v end
  pf.kind_of = kind
  pf.bare_column = f.column_prefix and (f.column_prefix:gsub("%.$", ""))
  if f.enum_of then
    local op = find_op(api, f.enum_of.operation)
    local param
    for _, p in ipairs(op and op.params or {}) do if p.name == f.enum_of.param then param = p end end
    if not (param and param.enum) then
      error("resource field " .. f.name .. ": " .. f.enum_of.operation .. "." .. f.enum_of.param
        .. " has no enum", 0)
    end
    pf.values, pf.numbers = param.enum, param.enum_numbers
  end
  return pf
end

-- What each column is: known[column] = true; prefixes = { {prefix, system, field} }.
local function columns_of(resources)
  local known, prefixes, order = {}, {}, {}
  local function add(c)
    if not known[c] then known[c] = true; order[#order + 1] = c end
  end
  for _, c in ipairs(roster.BASE_COLUMNS) do add(c) end
  for _, r in ipairs(resources) do
    local res = r.resource
    if res.key.column then add(res.key.column) end
    if res.member then add(res.member) end
    for _, f in ipairs(res.fields or {}) do
      if f.column then add(f.column) end
      if f.column_prefix then prefixes[#prefixes + 1] = f.column_prefix end
    end
  end
  return known, prefixes, order
end

---------------------------------------------------------------- CSV

-- Records of a CSV text (RFC 4180: quoted fields, "" inside quotes, CRLF or
-- LF, newlines inside quotes); each record with the line it starts on.
local function csv_records(text, sep)
  local records, i, n, line = {}, 1, #text, 1
  while i <= n do
    local record, start = {}, line
    while true do
      local c = text:sub(i, i)
      local value
      if c == '"' then
        local parts, j = {}, i + 1
        while true do
          local q = text:find('"', j, true)
          if not q then return nil, ("line %d: a quoted field is not closed"):format(start) end
          local chunk = text:sub(j, q - 1)
          for _ in chunk:gmatch("\n") do line = line + 1 end
          parts[#parts + 1] = chunk
          if text:sub(q + 1, q + 1) == '"' then
            parts[#parts + 1] = '"'
            j = q + 2
          else
            i = q + 1
            break
          end
        end
        value = table.concat(parts)
        local after = text:sub(i, i)
        if after ~= sep and after ~= "\r" and after ~= "\n" and after ~= "" then
          return nil, ("line %d: text after a closing quote"):format(line)
        end
      else
        local e = text:find("[" .. sep .. "\r\n]", i) or (n + 1)
        value = text:sub(i, e - 1)
        i = e
      end
      record[#record + 1] = value
      local c2 = text:sub(i, i)
      if c2 == sep then
        i = i + 1
      else
        if c2 == "\r" then i = i + 1 end
        if text:sub(i, i) == "\n" then i = i + 1 end
        line = line + 1
        break
      end
    end
    -- a blank line is no record
    if not (#record == 1 and trim(record[1]) == "") then
      records[#records + 1] = { line = start, cells = record }
    end
  end
  return records
end

local function parse_csv(text)
  local first = text:match("^[^\r\n]*") or ""
  local sep = ","
  if not first:find(",", 1, true) and first:find("\t", 1, true) then sep = "\t"
  elseif not first:find(",", 1, true) and first:find(";", 1, true) then sep = ";" end
  local records, err = csv_records(text, sep)
  if not records then return nil, err end
  if #records == 0 then return nil, "the roster is empty (no header line)" end
  local header = records[1].cells
  for i, h in ipairs(header) do header[i] = trim(h) end
  local rows = {}
  for k = 2, #records do
    local rec = records[k]
    local cells = {}
    if #rec.cells > #header then
      return nil, ("line %d: %d fields, but the header has %d"):format(rec.line, #rec.cells, #header)
    end
    for i, name in ipairs(header) do cells[name] = rec.cells[i] end
    rows[#rows + 1] = { line = rec.line, cells = cells }
  end
  return rows, header
end

local function parse_jsonl(text)
  local rows, header, seen = {}, {}, {}
  local line = 0
  for l in (text .. "\n"):gmatch("([^\n]*)\n") do
    line = line + 1
    l = l:gsub("\r$", "")
    if trim(l) ~= "" then
      local v, err = json.decode(l)
      if type(v) ~= "table" or json.is_array(v) then
        return nil, ("line %d: not a JSON object%s"):format(line, err and (" (" .. tostring(err) .. ")") or "")
      end
      local cells = {}
      for k, x in pairs(v) do
        if x ~= json.null then cells[k] = x end
        if not seen[k] then seen[k] = true; header[#header + 1] = k end
      end
      rows[#rows + 1] = { line = line, cells = cells }
    end
  end
  table.sort(header)
  return rows, header
end

---------------------------------------------------------------- rows

-- Renames the columns of one row by the mapping.
local function mapped(cells, mapping)
  if not mapping then return cells end
  local out = {}
  for k, v in pairs(cells) do
    local target = mapping[k]
    if target == nil then
      for mk, mv in pairs(mapping) do
        if type(mk) == "string" and mk:lower() == tostring(k):lower() then target = mv end
      end
    end
    if target == nil then target = k end
    if target ~= false and target ~= "" then out[target] = v end
  end
  return out
end

local function is_blank(v)
  return v == nil or v == json.null or (type(v) == "string" and not v:find("%S"))
end

-- One field's desired value from a row's values (trimmed, blanks left
-- out): nil when not managed.
local function field_value(f, cells)
  local raw
  if f.column_prefix then
    local map, any = {}, false
    local prefix, n = f.column_prefix, #f.column_prefix
    for k, v in pairs(cells) do
      if type(k) == "string" and k:sub(1, n) == prefix then
        map[k:sub(n + 1)] = v
        any = true
      end
    end
    local whole = cells[f.bare_column]   -- a JSON Lines object under the bare name
    if type(whole) == "table" then   -- given whole, even empty: the map is managed
      any = true
      for k, v in pairs(whole) do map[k] = v end
    end
    if not any then return nil end
    raw = map
  else
    raw = cells[f.column]
    if raw == nil then return nil end
    if raw == roster.EMPTY then return f.kind_of.empty end
  end
  return f.kind_of.parse(raw, f)
end

-- Over what each row means (names, and per system: member, key and the
-- parsed values), so that "4" and "User", or a CSV and a JSON Lines file,
-- give the same digest.
local function digest_of(rows)
  local list = {}
  for i, r in ipairs(rows) do
    local t = { email = r.email, first_name = r.values.first_name, last_name = r.values.last_name, systems = {} }
    for name, s in pairs(r.systems) do
      if s.member then t.systems[name] = { key = s.key, desired = s.desired } end
    end
    list[i] = assert(json.encode(t, { sort_keys = true }))
  end
  table.sort(list)
  return "sha256:" .. core.hex(core.sha256(table.concat(list, "\n")))
end

-- rows: { {line =, cells = {column = value}} } after parsing.
local function build(rows, header, opts)
  local resources = opts.resources or roster.default_resources()
  local source = opts.source or "roster"
  local known, prefixes, order = columns_of(resources)
  local mapping = opts.mapping
  local bad, said = {}, {}
  local function bad_row(line, fmt, ...)
    local message = fmt:format(...)
    if said[line .. "\0" .. message] then return end   -- a column two systems read
    said[line .. "\0" .. message] = true
    bad[#bad + 1] = { line = line, message = message }
  end

  -- columns: known, prefixed, or (with a mapping) ignored
  local ignored = {}
  if header then
    local seen_target = {}
    for _, h in ipairs(header) do
      local target = mapping and mapped({ [h] = true }, mapping)
      local name = h
      if mapping then name = next(target) end
      if name ~= nil then
        local is_prefixed = false
        for _, p in ipairs(prefixes) do
          if name:sub(1, #p) == p and #name > #p then is_prefixed = true end
          if name == p:gsub("%.$", "") then is_prefixed = true end
        end
        if not known[name] and not is_prefixed then
          if mapping then
            ignored[#ignored + 1] = h
          else
            return nil, errors.new({ kind = "invalid_argument", class = "RosterError", operation = "roster",
              message = ("%s: unknown column %q%s (columns: %s; a mapping file can rename an HR export's)")
                :format(source, h, did_you_mean(h, order), table.concat(order, ", ")
                  .. (#prefixes > 0 and (", " .. table.concat(prefixes, "*, ") .. "*") or "")) })
          end
        elseif seen_target[name] then
          return nil, errors.new({ kind = "invalid_argument", class = "RosterError", operation = "roster",
            message = ("%s: two columns give %s (%s and %s)"):format(source, name, seen_target[name], h) })
        end
        seen_target[name] = h
      end
    end
  end
  if mapping then
    for from, to in pairs(mapping) do
      if type(to) == "string" and to ~= "" and not known[to] then
        local ok = false
        for _, p in ipairs(prefixes) do if to:sub(1, #p) == p and #to > #p then ok = true end end
        if not ok then
          return nil, errors.new({ kind = "invalid_argument", class = "RosterError", operation = "roster",
            message = ("mapping: %q maps to %q, which is not a roster column%s"):format(tostring(from), to,
              did_you_mean(to, order)) })
        end
      end
    end
  end

  local prepared = {}
  for _, r in ipairs(resources) do
    local fields = {}
    for i, f in ipairs(r.resource.fields or {}) do fields[i] = roster.prepare_field(r.api, f) end
    prepared[#prepared + 1] = { name = r.name, resource = r.resource, fields = fields }
  end

  local out, by_email, by_key = {}, {}, {}
  for _, row in ipairs(rows) do
    local cells = mapped(row.cells, mapping)
    local values = {}
    for k, v in pairs(cells) do
      if not is_blank(v) then values[k] = type(v) == "string" and trim(v) or v end
    end
    local line = row.line
    local email = values.email
    local ok = true
    if email == nil then
      if opts.email ~= "optional" then bad_row(line, "no email"); ok = false end
    elseif type(email) ~= "string" or not email:find(EMAIL) then
      bad_row(line, "malformed email %q", tostring(email)); ok = false
    else
      local le = email:lower()
      if by_email[le] then
        bad_row(line, "duplicate email %s (also on line %d)", email, by_email[le]); ok = false
      else
        by_email[le] = line
      end
    end
    for _, name in ipairs({ "first_name", "last_name" }) do
      if values[name] ~= nil and type(values[name]) ~= "string" then
        bad_row(line, "%s must be text", name); ok = false
      end
    end
    local systems = {}
    for _, p in ipairs(prepared) do
      local res = p.resource
      local member = res.member == nil or values[res.member] ~= nil
      local s = { member = member, desired = {} }
      if member then
        local key = values[res.key.column]
        if key == nil then
          if res.key.column ~= "email" then   -- a missing email is reported once, above
            bad_row(line, "%s: no %s", p.name, res.key.column); ok = false
          end
        elseif type(key) ~= "string" or (res.key.pattern and not key:find(res.key.pattern)) then
          bad_row(line, "%s: %s %q is not a valid id", p.name, res.key.column, tostring(key)); ok = false
        else
          s.key = key
          local norm = res.key.case == "exact" and key or key:lower()
          local seen = by_key[p.name]
          if not seen then seen = {}; by_key[p.name] = seen end
          if seen[norm] and res.key.column ~= "email" then
            bad_row(line, "%s: %s %s is also on line %d", p.name, res.key.column, key, seen[norm]); ok = false
          end
          seen[norm] = line
        end
      end
      -- every value is checked, also in a system the row is not a member of
      for _, f in ipairs(p.fields) do
        local v, err = field_value(f, values)
        if err then
          bad_row(line, "%s %s", f.column or (f.column_prefix .. "*"), err); ok = false
        elseif v ~= nil and member then
          s.desired[f.name] = v
        end
      end
      systems[p.name] = s
    end
    if ok then
      out[#out + 1] = { line = line, email = email, values = values, systems = systems }
    end
  end
  if #bad > 0 then return nil, roster_error(source, bad) end
  if #out == 0 and not opts.allow_empty then
    -- everybody would be "not in the roster": with --prune, every system emptied
    return nil, errors.new({ kind = "invalid_argument", class = "RosterError", operation = "roster",
      message = source .. ": the roster holds nobody, nothing planned (a roster names everyone a system "
        .. "should hold; to remove people, leave only them out)", rows = {} })
  end
  local r = { rows = out, source = source, ignored = ignored }
  r.digest = digest_of(out)
  return r
end

local function detect(text, source)
  if source then
    local ext = source:lower():match("%.(%w+)$")
    if ext == "csv" or ext == "tsv" or ext == "txt" then return "csv" end
    if ext == "jsonl" or ext == "ndjson" or ext == "json" then return "jsonl" end
  end
  return text:match("^%s*{") and "jsonl" or "csv"
end

function roster.parse(text, opts)
  opts = opts or {}
  if type(text) ~= "string" then return nil, errors.invalid("roster", "expected the roster's text") end
  text = text:gsub("^\239\187\191", "")   -- a UTF-8 byte order mark (spreadsheet exports)
  local format = opts.format or detect(text, opts.source)
  local rows, header
  if format == "csv" then
    rows, header = parse_csv(text)
  elseif format == "jsonl" then
    rows, header = parse_jsonl(text)
  else
    return nil, errors.invalid("roster", "unknown roster format %q (csv or jsonl)", tostring(format))
  end
  if not rows then
    return nil, errors.new({ kind = "invalid_argument", class = "RosterError", operation = "roster",
      message = (opts.source or "roster") .. ": " .. header })
  end
  return build(rows, header, opts)
end

function roster.read(path, opts)
  local f, err = io.open(path, "rb")
  local text
  if f then
    text, err = f:read("*a")   -- nil for a folder: io.open takes one
    f:close()
    if not text then err = path .. ": " .. tostring(err) end
  end
  if not text then
    return nil, errors.new({ kind = "invalid_argument", class = "RosterError", operation = "roster",
      message = "cannot read the roster: " .. tostring(err) })
  end
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.source = o.source or path
  return roster.parse(text, o)
end

-- rows: a Lua list of tables {email =, first_name =, agilicus_roles = ..., ...};
-- a row's "line" in messages is its index.
function roster.from_rows(list, opts)
  opts = opts or {}
  if type(list) ~= "table" then return nil, errors.invalid("roster", "expected a list of rows") end
  local rows, seen = {}, {}
  for i, t in ipairs(list) do
    if type(t) ~= "table" then return nil, errors.invalid("roster", "row %d is not a table", i) end
    local cells = {}
    for k, v in pairs(t) do
      cells[k] = v
      if not seen[k] then seen[k] = true end
    end
    rows[i] = { line = i, cells = cells }
  end
  local header = {}
  for k in pairs(seen) do header[#header + 1] = k end
  table.sort(header, function(a, b) return tostring(a) < tostring(b) end)
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.source = o.source or "roster"
  return build(rows, header, o)
end

-- A mapping file: a JSON object {"HR column": "roster column", ...}; a
-- column mapped to "" or null is ignored.
function roster.read_mapping(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, errors.invalid("roster", "cannot read the mapping file: %s", tostring(err)) end
  local text = f:read("*a")
  f:close()
  local v, derr = json.decode(text)
  if type(v) ~= "table" or json.is_array(v) then
    return nil, errors.invalid("roster", "mapping %s must be a JSON object {\"HR column\": \"roster column\"}%s",
      path, derr and (" (" .. tostring(derr) .. ")") or "")
  end
  local out = {}
  for k, x in pairs(v) do
    if x == json.null or x == "" then out[k] = false
    elseif type(x) == "string" then out[k] = x
    else return nil, errors.invalid("roster", "mapping %s: %q must map to a column name", path, tostring(k)) end
  end
  return out
end

return roster
