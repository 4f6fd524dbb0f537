-- `provision API OPERATION --input FILE`: one call per row of a JSON Lines
-- or CSV file (cli/input.lua), run through the client's bulk engine
-- (calls in flight at once, pacing, every maybe-applied create settled by
-- its read-back), with a progress line on stderr when it is a terminal, a
-- summary at the end, and with --results FILE one JSON line per row:
--
--   {"line": 7, "outcome": "ok", "status": 201, "id": "..."}
--   {"line": 8, "outcome": "exists", "status": 409, "error": "..."}
--
-- Outcomes: ok; exists (the API says it is already there: 409, or the
-- operation's own "already exists" answer such as Document360's "Existing
-- team member"; counted as done); failed (rejected or not applied, with
-- the exit code of its error); unknown (may have been applied); invalid
-- (the row could not be read or bound; nothing sent). The exit code is the
-- worst row's (cli/exit.lua). Ctrl-C cancels the transfers in flight,
-- writes their rows as unknown, prints what was done and exits 130.
--
-- A row's fields: the command line's values apply to every row, a row's
-- own field wins; a field named like a parameter sets it, any other goes
-- into the request body (cli/bodyfields.lua).
-- Lua 5.1/5.4 common syntax.
local core = require("provision.core")
local bind = require("provision.cli.bind")
local input = require("provision.cli.input")
local connect = require("provision.cli.connect")
local call = require("provision.cli.call")
local exit = require("provision.cli.exit")
local util = require("provision.cli.util")

local unpack = table.unpack or unpack

local bulk = {}

local usage = util.usage

local function classify(value, info)
  if value ~= nil then return "ok", exit.OK end
  local err = info
  if type(err) ~= "table" then return "failed", exit.REJECTED end
  if err.exists or (err.kind == "http" and err.status == 409) then return "exists", exit.OK end
  if err.kind == "invalid_argument" then return "invalid", exit.USAGE end
  if err.outcome == "unknown" then return "unknown", exit.UNKNOWN end
  return "failed", exit.for_error(err)
end

local function id_of(value)
  if type(value) ~= "table" then return nil end
  local id = value.id or value.user_id or value.tenant_id
  if type(id) == "string" or type(id) == "number" then return id end
  return nil
end

local function open_results(path, ctx)
  if path == nil then return nil end
  if path == "-" then return ctx.stdout, false end
  local f, err = io.open(path, "w")
  if not f then usage("cannot write --results %s: %s", path, tostring(err)) end
  return f, true
end

-- c = {key, api, op, parsed, resolved, client_defaults}
function bulk.run(out, ctx, c)
  local key, op, flags = c.key, c.op, c.parsed.flags
  if flags.all then usage("--all does not combine with --input (each row is one call)") end
  if flags.input == "-" and flags.body == "-" then usage("--input - and --body=- cannot both read stdin") end
  local base = bind.command_line(key, op, c.parsed, ctx.stdin, c.client_defaults, { partial = true })
  local reader, rerr = input.open(flags.input, ctx.stdin, flags.input_format)
  if not reader then usage("%s", rerr) end
  local progress = not flags.no_progress and out:is_terminal("stderr")
  local total = progress and input.count(flags.input, reader.format) or nil

  local auth_note = call.check_credentials(key, c.api, op, c.resolved.opts, flags)
  connect.warn_insecure(out, flags)
  local client, cerr = connect.client(out, key, flags, c.resolved, { concurrency = flags.concurrency })
  if not client then
    reader:close()
    out:err("provision: " .. tostring(cerr))
    return exit.for_error(cerr)
  end
  local results, owned = open_results(flags.results, ctx)

  local counts = { ok = 0, exists = 0, failed = 0, unknown = 0, invalid = 0 }
  local worst = exit.OK
  local pending = {}        -- call index -> input line, from pull to answer
  local index = 0

  local function record(line, outcome, code, fields)
    counts[outcome] = counts[outcome] + 1
    worst = exit.worst(worst, code)
    if results then
      local rec = { line = line, outcome = outcome }
      for k, v in pairs(fields) do rec[k] = v end
      local text = core.json_encode(rec, { sort_keys = true }) or ('{"line":' .. line .. ',"outcome":"' .. outcome .. '"}')
      results:write(out.redact.apply(text), "\n")
    elseif outcome ~= "ok" and outcome ~= "exists" then
      out:err("provision: line " .. line .. ": " .. (fields.error or outcome))
    end
  end

  local function invalid(line, message)
    record(line, "invalid", exit.USAGE, { error = message })
  end

  local call_opts = { headers = flags.headers }
  local function next_call()
    while true do
      local row, line, problem = reader:next()
      if row == nil then return nil end
      if row == false then
        invalid(line, problem)
      else
        local values, berr = bind.row(key, op, base, row, reader.format == "csv", c.client_defaults)
        if not values then
          invalid(line, berr)
        else
          local cargs = bind.call_args(op, values, call_opts)
          index = index + 1
          pending[index] = line
          local t = { op.name, unpack(cargs) }
          t.n = #cargs + 1
          return t
        end
      end
    end
  end

  local function on_result(i, value, info)
    local line = pending[i]
    local outcome, code = classify(value, info)
    local fields = {}
    if value ~= nil then
      fields.status = type(info) == "table" and info.status or nil
      fields.id = id_of(value)
      if type(info) == "table" and info.settled == "read_back" then fields.settled = "read_back" end
    else
      fields.status = type(info) == "table" and info.status or nil
      fields.error = tostring(info)
      fields.class = type(info) == "table" and info.class or nil
    end
    record(line or 0, outcome, code, fields)
    pending[i] = nil
  end

  local function show_progress(s)
    if not progress then return end
    local done = counts.ok + counts.exists + counts.failed + counts.unknown + counts.invalid
    out:status(string.format("provision: %d%s rows  %d ok  %d exists  %d failed  %d unknown  %d in flight  %.1f/s",
      done, total and ("/" .. total) or "", counts.ok, counts.exists, counts.failed + counts.invalid, counts.unknown,
      s.in_flight or 0, s.rate or 0))
  end

  local function summary(s, interrupted)
    out:status_done()
    local done = counts.ok + counts.exists + counts.failed + counts.unknown + counts.invalid
    out:err(string.format("provision: %s%d rows: %d ok, %d exists, %d failed, %d unknown, %d invalid",
      interrupted and "interrupted after " or "", done, counts.ok, counts.exists, counts.failed, counts.unknown,
      counts.invalid))
    if s then
      out:err(string.format("provision: %d requests, %d retried, %d throttled, %d settled by read-back, "
        .. "%.1f s (%.1f calls/s)", s.requests or 0, s.retried or 0, s.throttled or 0,
        s.settled_by_read_back or 0, s.elapsed or 0, s.rate or 0))
    end
    if interrupted then
      out:err("provision: rows in flight when interrupted are written as unknown (they may have been "
        .. "applied); rows not yet read were not sent")
    end
    if results and owned then out:err("provision: results in " .. flags.results) end
  end

  if flags.dry_run then
    -- every row bound and prepared by the client's own code; nothing sent
    while true do
      local t = next_call()
      if not t then break end
      local job, perr = client:prepare(t[1], unpack(t, 2, t.n))
      if job then record(pending[index], "ok", exit.OK, {}) else invalid(pending[index], tostring(perr)) end
      pending[index] = nil
    end
    reader:close()
    client:close()
    if results and owned then results:close() end
    out:err(string.format("provision: dry run: %d rows would be sent, %d invalid; nothing was sent%s", counts.ok,
      counts.invalid, auth_note and ("; " .. auth_note) or ""))
    return worst
  end

  local last_stats
  local ok, res, stats = pcall(client.bulk, client, next_call, {
    concurrency = flags.concurrency, rate = flags.rate, collect = false,
    on_result = on_result,
    on_progress = function(s) last_stats = s show_progress(s) end,
  })
  reader:close()
  client:close()
  if not ok then
    if util.is_interrupt(res) then
      -- the engine has closed its transfers; what was in flight may have landed
      local left = {}
      for i in pairs(pending) do left[#left + 1] = i end
      table.sort(left)
      for _, i in ipairs(left) do
        record(pending[i], "unknown", exit.UNKNOWN,
          { error = "interrupted before the answer came; it may have been applied" })
        pending[i] = nil
      end
      if results and results.flush then results:flush() end
      if results and owned then results:close() end
      summary(last_stats, true)
      return exit.INTERRUPTED
    end
    if results and owned then results:close() end
    error(res, 0)
  end
  if res == nil then
    if results and owned then results:close() end
    usage("%s", tostring(stats))   -- a bad --rate or --concurrency, refused by bulk()
  end
  if results and results.flush then results:flush() end
  if results and owned then results:close() end
  summary(stats, false)
  return worst
end

return bulk
