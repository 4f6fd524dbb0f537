-- Command-line parsing for bin/provision: global flags, command words,
-- operation options, and conversion of text to each parameter's declared
-- type. Lua 5.1/5.4 common syntax.
local core = require("provision.core")
local util = require("provision.cli.util")

local args = {}

-- Global flags. `value` names the argument of flags that take one; `multi`
-- flags may be repeated; `field` is the key in the parsed flags table.
args.flags = {
  { name = "help", short = "h", help = "show help (also: provision help [API [OPERATION]])" },
  { name = "version", help = "print the version" },
  { name = "verbose", short = "v", count = true,
    help = "-v: each request line and status on stderr (and error bodies); -vv: headers too, credentials masked" },
  { name = "output", short = "o", value = "FORMAT", help = "json, table, tsv or yaml (default: table on a terminal, else json)" },
  { name = "fields", value = "LIST", help = "fields to show, comma-separated; dotted paths for nested ones (roles.crm)" },
  { name = "compact", help = "print JSON on one line" },
  { name = "raw", help = "print the whole response body, not the unwrapped result" },
  { name = "all", help = "follow paging and print every item (paged operations)" },
  { name = "input", value = "FILE|-", help = "one call per row of a JSON Lines or CSV file (- = stdin)" },
  { name = "input-format", value = "jsonl|csv", field = "input_format",
    help = "format of --input (default: from the file name, else from its first character)" },
  { name = "results", value = "FILE|-", help = "--input: write one JSON line per row (line, outcome, status, id, error)" },
  { name = "concurrency", value = "N", help = "--input: calls in flight at once (default 8)" },
  { name = "rate", value = "N/SECONDS", help = "--input: at most N requests per SECONDS (e.g. 50/1)" },
  { name = "no-progress", field = "no_progress", help = "--input: no progress line (shown only when stderr is a terminal)" },
  { name = "server", value = "URL|NAME", help = "base URL, or one of the API's named servers" },
  { name = "server-var", value = "NAME=VALUE", multi = true, field = "server_vars",
    help = "fill a {placeholder} of a named server URL (Document360 private)" },
  { name = "generation", value = "latest|v0", help = "Outpost server generation (default latest)" },
  { name = "tenant-id", value = "ID", field = "tenant_id", help = "Outpost: default tenant for tenant operations" },
  { name = "timeout", value = "SECONDS", help = "timeout of each attempt (a retry gets its own)" },
  { name = "connect-timeout", value = "SECONDS", field = "connect_timeout", help = "connection timeout" },
  { name = "deadline", value = "SECONDS",
    help = "bound on a whole call: every attempt and every wait between them (default none)" },
  { name = "retries", value = "N", help = "retries after the first attempt (0 = none; default 2)" },
  { name = "insecure", help = "DO NOT verify TLS certificates (dangerous)" },
  { name = "ca-file", value = "FILE", field = "ca_file", help = "CA bundle to verify the server with" },
  { name = "config", value = "FILE", help = "config file (default ~/.config/provision/config.lua)" },
  { name = "profile", value = "NAME", help = "use the config file's profile NAME (default $PROVISION_PROFILE)" },
  { name = "sandbox", value = "URL", optional = true,
    help = "use a running bin/provision-sandbox (default $PROVISION_SANDBOX_URL, else http://127.0.0.1:8090) and its credentials" },
  { name = "no-auth", field = "no_auth", help = "send without credentials" },
  { name = "body", value = "JSON|@FILE|-", help = "the request body: JSON text, a file, or stdin" },
  { name = "no-validate", field = "no_validate",
    help = "send the body without checking it against the operation's schema (a server that drifts from its spec)" },
  { name = "param", short = "p", value = "NAME=VALUE", multi = true, field = "params",
    help = "set a parameter (same as --NAME=VALUE; for names that clash with a flag)" },
  { name = "header", short = "H", value = "'NAME: VALUE'", multi = true, field = "headers",
    help = "add a request header" },
  { name = "dry-run", field = "dry_run", help = "print the request instead of sending it" },
}

local by_name, by_short = {}, {}
for _, f in ipairs(args.flags) do
  f.field = f.field or f.name
  by_name[f.name] = f
  if f.short then by_short[f.short] = f end
end
-- The flag (without "--") that sets a field: headers -> header.
function args.flag_name(field)
  for _, f in ipairs(args.flags) do
    if f.field == field then return f.name end
  end
  return (field:gsub("_", "-"))
end

args.flag_names = {}
for _, f in ipairs(args.flags) do args.flag_names[#args.flag_names + 1] = "--" .. f.name end

local function set_flag(out, f, value)
  if f.multi then
    out[f.field] = out[f.field] or {}
    table.insert(out[f.field], value)
  else
    out[f.field] = value
  end
end

-- Splits argv into flags, command words and operation options.
-- `lookup(name)` -> param or nil (when the operation is known): an option
-- without "=" then takes the next word as its value unless the parameter
-- is a boolean. Without lookup such an option takes no value.
-- Returns {flags, words, options = {{name, value|nil, negated}}} or nil, message.
function args.parse(argv, lookup)
  local out = { flags = {}, words = {}, options = {} }
  local i, n = 1, #argv
  local rest = false
  while i <= n do
    local a = argv[i]
    if rest or a == "-" or not a:find("^%-") or a:find("^%-%d") then
      out.words[#out.words + 1] = a
    elseif a == "--" then
      rest = true
    elseif a:sub(1, 2) == "--" then
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      if not name then name = a:sub(3) end
      local key = name:gsub("_", "-")
      local f = by_name[key]
      if f then
        if f.value then
          if value == nil then
            local nxt = argv[i + 1]
            if f.optional then
              if nxt and nxt:find("^https?://") then value = nxt; i = i + 1 else value = true end
            else
              if nxt == nil then return nil, "--" .. f.name .. " needs a value (" .. f.value .. ")" end
              value = nxt
              i = i + 1
            end
          end
          set_flag(out.flags, f, value)
        else
          if value ~= nil then return nil, "--" .. f.name .. " takes no value" end
          if f.count then out.flags[f.field] = (out.flags[f.field] or 0) + 1 else out.flags[f.field] = true end
        end
      else
        local negated = false
        local p = lookup and lookup(name)
        if not p and lookup and name:find("^no[%-_]") then
          local q = lookup(name:sub(4))
          if q and q.type == "boolean" then p, negated = q, true end
        end
        if value == nil and p and not negated and p.type ~= "boolean" then
          if argv[i + 1] == nil then
            return nil, "--" .. name .. " needs a value (--" .. name .. "=VALUE)"
          end
          value = argv[i + 1]
          i = i + 1
        end
        out.options[#out.options + 1] = { name = negated and name:sub(4) or name, value = value,
                                          negated = negated, token = a }
      end
    elseif a:find("^%-v+$") then -- -v, -vv: verbosity
      out.flags.verbose = (out.flags.verbose or 0) + #a - 1
    else -- short flags: -h, -o FORMAT, -p NAME=VALUE, -H 'N: V'; -pNAME=VALUE
      local s = a:sub(2, 2)
      local f = by_short[s]
      if not f then
        return nil, "unknown option " .. a .. util.did_you_mean(a:gsub("^%-+", ""), args.flag_names, "")
      end
      if f.value then
        local value = a:sub(3)
        if value == "" then
          value = argv[i + 1]
          if value == nil then return nil, "-" .. s .. " needs a value (" .. f.value .. ")" end
          i = i + 1
        end
        set_flag(out.flags, f, value)
      else
        if #a > 2 then return nil, "unknown option " .. a .. " (short options cannot be combined)" end
        if f.count then out.flags[f.field] = (out.flags[f.field] or 0) + 1 else out.flags[f.field] = true end
      end
    end
    i = i + 1
  end
  return out
end

-- Numeric flag values.
function args.number_flag(flags, field, name, integer)
  local v = flags[field]
  if v == nil then return true end
  local nv = tonumber(v)
  if not nv or nv ~= nv or nv < 0 or nv == math.huge or (integer and nv ~= math.floor(nv)) then
    return nil, "--" .. name .. " needs a " .. (integer and "whole " or "") .. "number >= 0, got '" .. tostring(v) .. "'"
  end
  if integer then nv = math.floor(nv) end
  flags[field] = nv
  return true
end

-- Reads a body argument: JSON text, @FILE, or - (stdin).
function args.read_body(text, stdin)
  if text == "-" then
    local s = stdin:read("*a")
    if not s then return nil, "could not read the body from stdin" end
    return s, "stdin"
  elseif text:sub(1, 1) == "@" then
    local path = text:sub(2)
    local f, err = io.open(path, "rb")
    if not f then return nil, "cannot read body file: " .. tostring(err) end
    local s = f:read("*a")
    f:close()
    return s, path
  end
  return text, nil
end

local function tointeger(n)
  if math.tointeger then return math.tointeger(n) end
  if n == math.floor(n) then return n end
  return nil
end

local function enum_error(s, allowed)
  return "expected one of " .. table.concat(allowed, ", ") .. ", got '" .. s .. "'" ..
    util.did_you_mean(s, allowed)
end

-- Text -> value of one scalar type. `p` has type, enum, enum_numbers.
local function scalar(p, s)
  local t = p.type or "string"
  if t == "string" then
    if p.enum_numbers and s:find("^%d+$") then
      local name = p.enum_numbers[tonumber(s)]
      if name then return name end
    end
    if p.enum then
      for _, e in ipairs(p.enum) do if e == s then return s end end
      return nil, enum_error(s, p.enum)
    end
    return s
  elseif t == "integer" then
    if not s:find("^[+-]?%d+$") then return nil, "expected an integer, got '" .. s .. "'" end
    local n = tointeger(tonumber(s))
    if not n or #s:gsub("^[+-]?0*", "") > 19 then return nil, "integer out of range: " .. s end
    return n
  elseif t == "number" then
    local n = tonumber(s)
    if not n or n ~= n or n == math.huge or n == -math.huge then
      return nil, "expected a number, got '" .. s .. "'"
    end
    return n
  elseif t == "boolean" then
    local l = s:lower()
    if l == "true" or l == "yes" or l == "1" or l == "on" then return true end
    if l == "false" or l == "no" or l == "0" or l == "off" then return false end
    return nil, "expected true or false, got '" .. s .. "'"
  end
  return nil, "cannot give a value of type " .. t .. " on the command line"
end

-- Checks JSON text for a body (or object) parameter; returns the text to
-- send (as given) or nil, message.
local function json_value(p, text, origin)
  local decoded, err = core.json_decode(text)
  local where = origin and (" (from " .. origin .. ")") or ""
  if decoded == nil then
    return nil, "is not valid JSON" .. where .. ": " .. tostring(err)
  end
  local want = p.type or "object"
  local is_array = type(decoded) == "table" and getmetatable(decoded) == core.array_mt
  if want == "object" and (type(decoded) ~= "table" or is_array) then
    return nil, "must be a JSON object {...}" .. where
  elseif want == "array" and not is_array then
    return nil, "must be a JSON array [...]" .. where
  end
  return (text:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- Converts the text given for parameter p. `prev` is the value so far
-- (arrays accumulate over repeated options). Returns value or nil, message.
function args.convert(p, text, prev, stdin)
  if p["in"] == "body" or p.type == "object" then
    if prev ~= nil then return nil, "given more than once" end
    local s, origin = args.read_body(text, stdin)
    if not s then return nil, origin end
    return json_value(p, s, origin)
  end
  if p.type == "array" then
    local list = prev or {}
    if text == "" then return list end
    for item in (text .. ","):gmatch("([^,]*),") do
      local v, err = scalar({ type = p.items or "string", enum = p.items_enum }, item)
      if v == nil then return nil, "item '" .. item .. "': " .. err end
      list[#list + 1] = v
    end
    return list
  end
  if prev ~= nil then return nil, "given more than once" end
  return scalar(p, text)
end

-- "NAME=VALUE" -> name, value
function args.split_pair(s)
  local k, v = s:match("^([^=]+)=(.*)$")
  return k, v
end

return args
