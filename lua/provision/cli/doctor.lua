-- `provision doctor`: is this machine ready to provision? For the config
-- file and for each configured API (one with a server or credentials from
-- flags, environment, config or --sandbox): the server answers (over
-- trusted TLS), the credential is accepted (one cheap authenticated read),
-- and the clock agrees with the server's Date header. One row a check,
-- through the output module; no secret is printed (only where a setting
-- came from). The exit code is the worst check's (cli/exit.lua); a clock
-- that is off is a warning only.
-- Lua 5.1/5.4 common syntax.
local catalog = require("provision.cli.catalog")
local connect = require("provision.cli.connect")
local exit = require("provision.cli.exit")
local util = require("provision.cli.util")

local doctor = {}

-- The cheap authenticated read per API (operation, options), in order of
-- preference: the first one the client can send is used.
doctor.probes = {
  agilicus = { { "list_users", { limit = 1 } } },
  document360 = { { "v2_teams_roles_get" } },
  docspace = { { "get_portal_users_count" } },
  outpost = { { "list", { limit = 1 } }, { "get" } },
}

-- How far the clocks may drift before it is worth a warning (seconds).
doctor.max_skew = 30

local months = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10,
                 Nov = 11, Dec = 12 }

-- Seconds since the epoch of an HTTP date ("Tue, 01 Dec 2026 14:50:01 GMT").
function doctor.parse_http_date(s)
  if type(s) ~= "string" then return nil end
  local d, mon, y, h, mi, sec = s:match("^%a+, (%d%d?) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  local m = months[mon or ""]
  if not m then return nil end
  y, m, d = tonumber(y), m, tonumber(d)
  -- days from 1970-01-01 (Howard Hinnant's days_from_civil)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec)
end

local function configured(resolved)
  local s = resolved.sources
  return resolved.has_creds or (s.server ~= nil)
end

local function row(rows, api, check, result, detail)
  rows[#rows + 1] = { api = api, check = check, result = result, detail = detail }
end

local unpack = table.unpack or unpack

-- Runs fn; a usage error becomes nil, message (a failed check).
local function safe(fn, ...)
  local r = { pcall(fn, ...) }
  if r[1] then return unpack(r, 2, 4) end
  if util.is_usage(r[2]) then return nil, r[2].message end
  error(r[2], 0)
end

local function probe(client, key, flags)
  local last
  for _, p in ipairs(doctor.probes[key] or {}) do
    if client.ops[p[1]] then
      local opts = {}
      for k, v in pairs(p[2] or {}) do opts[k] = v end
      opts._call = { headers = flags.headers }
      local needs_tenant = false
      for _, prm in ipairs(client.ops[p[1]].op.params) do
        if prm.client_default == "tenant_id" then needs_tenant = true end
      end
      local value, info
      if needs_tenant and not client.client_defaults.tenant_id then
        -- no tenant configured: a made-up one; a 404 then still proves the key
        value, info = client:call(p[1], "provision-doctor-probe", opts)
      else
        value, info = client:call(p[1], opts)
      end
      if value ~= nil or type(info) ~= "table" or info.kind ~= "auth" then return p[1], value, info end
      last = { p[1], value, info }
    end
  end
  if last then return last[1], last[2], last[3] end
  return nil
end

local function check_api(out, ctx, key, flags, rows)
  local resolved, serr = safe(connect.settings, out, ctx, key, flags)
  if not resolved then
    row(rows, key, "settings", "fail", serr)
    return exit.USAGE
  end
  if not configured(resolved) then
    row(rows, key, "settings", "skip", "not configured (no server or credentials in flags, environment or config)")
    return nil
  end
  local s = resolved.sources
  local opts = resolved.opts
  if flags.retries == nil then opts.retries = 0 end   -- one attempt says what is wrong soonest
  local client, cerr = connect.client(out, key, flags, resolved, { quiet_waits = true })
  if not client then
    row(rows, key, "settings", "fail", tostring(cerr))
    return exit.for_error(cerr)
  end
  local base = client.base
  local code = exit.OK
  local opname, value, info = probe(client, key, flags)
  client:close()
  if not opname then
    row(rows, key, "server", "skip", base .. ": no probe operation for this API")
    return nil
  end
  local err = value == nil and info or nil
  local tls = base:find("^https://") ~= nil
  -- server: reachable, and over trusted TLS
  if err and (err.kind == "connect" or err.kind == "dns" or err.kind == "timeout" or err.kind == "network"
      or err.kind == "closed" or err.kind == "protocol") then
    row(rows, key, "server", "fail", base .. ": not reachable (" .. tostring(err.kind) .. ": "
      .. tostring(err.message) .. ")")
    return exit.TRANSPORT
  elseif err and err.kind == "tls" then
    row(rows, key, "server", "fail", base .. ": TLS not trusted (" .. tostring(err.message)
      .. "); a private CA needs --ca-file or ca_file in the config")
    return exit.TRANSPORT
  end
  local how = tls and (opts.verify == false and "TLS NOT VERIFIED (--insecure)"
    or ("TLS verified" .. (opts.ca_file and (" with " .. opts.ca_file) or ""))) or "plain HTTP"
  row(rows, key, "server", (tls and opts.verify == false) and "warn" or "ok",
    string.format("%s answers (%s)", base, how))
  -- credential
  local creds = s.auth and ("credentials from " .. s.auth) or "no credentials"
  if value ~= nil or (err and err.status == 404) then
    row(rows, key, "credential", "ok", string.format("accepted by %s (%s)", opname, creds))
  elseif err and (err.status == 401 or err.status == 403 or err.kind == "auth") then
    row(rows, key, "credential", "fail", string.format("%s by %s (%s)",
      err.kind == "auth" and "does not fit" or ("rejected, HTTP " .. tostring(err.status)), opname, creds))
    code = exit.AUTH
  else
    row(rows, key, "credential", "fail", string.format("%s answered: %s (%s)", opname, tostring(err), creds))
    code = exit.for_error(err)
  end
  if not resolved.has_creds and code == exit.OK then
    rows[#rows].result = "warn"
    rows[#rows].detail = "no credentials configured; " .. opname .. " answered without"
  end
  -- clock
  local headers = (value ~= nil and info and info.headers) or (err and err.headers)
  local server_time = doctor.parse_http_date(headers and headers.date)
  if not server_time then
    row(rows, key, "clock", "skip", "the server sent no Date header")
  else
    local skew = os.time() - server_time
    if math.abs(skew) <= 2 then
      row(rows, key, "clock", "ok", "in step with the server (Date header)")
    else
      row(rows, key, "clock", math.abs(skew) > doctor.max_skew and "warn" or "ok",
        string.format("%d s %s the server (Date header)%s", math.abs(skew), skew > 0 and "ahead of" or "behind",
          math.abs(skew) > doctor.max_skew and "; tokens with a lifetime may be refused" or ""))
    end
  end
  return code
end

function doctor.run(out, ctx, words, parsed)
  if #words > 1 then util.usage("'doctor' takes no arguments (flags such as --profile, --sandbox are fine)") end
  local flags = parsed.flags
  local rows = {}
  local worst = exit.OK
  local ok, config_err = pcall(connect.resolve_flags, flags, ctx.getenv)
  if not ok then
    if not util.is_usage(config_err) then error(config_err, 0) end
    row(rows, "-", "flags", "fail", config_err.message)
    out:records(rows, { "api", "check", "result", "detail" })
    return exit.USAGE
  end
  local cfg, label, info = safe(connect.config, flags, ctx.getenv)
  if cfg == nil and type(label) == "string" and not info then
    row(rows, "-", "config", "fail", label)
    worst = exit.USAGE
  elseif info and info.found then
    local profiles = info.profiles and #info.profiles > 0 and (" (profiles: " .. table.concat(info.profiles, ", ") .. ")") or ""
    row(rows, "-", "config", "ok", "read " .. label .. profiles)
  else
    row(rows, "-", "config", "ok", "no config file (" .. tostring(info and info.path or "none") .. "); flags and environment only")
  end
  if worst == exit.OK then
    local any = false
    for _, key in ipairs(catalog.API_KEYS) do
      local code = check_api(out, ctx, key, flags, rows)
      if code then any = true; worst = exit.worst(worst, code) end
    end
    if not any then
      row(rows, "-", "apis", "fail", "no API is configured: set PROVISION_<API>_URL and a credential, "
        .. "use --config or --sandbox (see docs/cli.md)")
      worst = exit.USAGE
    end
  end
  out:records(rows, { "api", "check", "result", "detail" })
  return worst
end

return doctor
