-- The apply journal: what every apply meant to do, written before it is done,
-- and what came of it, so that an apply killed at any point (SIGKILL
-- included) resumes without losing a step or doing one twice.
--
--   local j = assert(journal.open(path_or_opts))
--   local run = assert(j:begin_run{ roster_digest = d, systems = { "agilicus" } })
--   local ids = assert(run:intend(steps))     -- durable before it returns
--   ... send the requests ...
--   run:settle(ids[1], { outcome = "ok", status = 201, request_id = rid })
--   assert(run:finish{ status = "done", summary = { created = 1 } })
--   j:close()
--
-- Every function returns nil, err on failure (err from provision.errors:
-- kind "invalid_argument" for bad input, "journal" for the store) and never
-- raises on bad input.
--
-- journal.open(x) -> j
--     x: nil (the default path), a path, "sqlite:PATH", or a table
--     { path =, backend =, busy_timeout_ms =, settle_batch =, settle_interval_s = }.
--     A path "scheme://..." picks the backend by scheme; `backends` below
--     lists what this build has (sqlite). The default path's missing folders
--     are created 0700; a path given must be in a folder that exists.
-- journal.default_path([getenv]) -> $XDG_STATE_HOME/provision/journal.sqlite,
--     else $HOME/.local/state/provision/journal.sqlite (a relative
--     XDG_STATE_HOME is ignored, as the XDG spec asks).
-- j:begin_run{ roster_digest =, systems = {names}, mode = "apply", who =,
--     host =, argv_summary =, resume_of = run id } -> run (run.id).
--     who defaults to $USER, else $LOGNAME, else the name of this process's
--     user id; host to the host name; the pid is recorded.
--     resume_of marks that run resumed by this one, atomically: a run can be
--     resumed once, and never one finished "done".
-- run:intend{ {system =, key =, action =, operation =, detail = {...}}, ... } -> ids
--     All intents of one call go in one transaction, fsync'd before the call
--     returns, together with any settles still buffered.
-- run:settle(id, { outcome =, status =, request_id =, error_class =, message =,
--     settled_by = "response"|"read_back", record_id = }) -> true
-- run:settle_many{ {id =, outcome =, ...}, ... } -> true (all or none)
-- run:flush() -> true: write buffered settles now.
--     Settles are buffered and written in one transaction when settle_batch
--     (default 64) are waiting, when settle_interval_s (default 1) has passed
--     since the first of them (checked on the next settle; there is no
--     timer), with the next intend, and at finish and close. The trade-off: a
--     settle lost to a kill costs one read-back on resume (its step is
--     listed by unsettled()), never a duplicate. settle_batch = 1 makes each
--     settle durable before it returns. A step id from a run this run
--     resumed may be settled too (a read-back on resume).
-- run:finish{ status = "done"|"failed"|"interrupted", summary = {...} } -> true
--     "done" is refused while a step of the run (or of a run it resumed)
--     has no outcome.
-- j:unsettled([sel], [{ include_unknown = true }]) -> steps without an outcome
--     sel: a run id (that run and the runs it resumed), a roster digest (the
--     latest unfinished run for it, and the runs it resumed), or nil (every
--     run). include_unknown adds steps whose newest outcome is "unknown".
-- j:latest_unfinished([roster_digest]) -> run row, or nil when there is none:
--     the newest run still "running" (killed, or alive elsewhere: see its
--     host and pid) or "interrupted", and not resumed.
-- j:done_keys(system, action) -> { [key] = true } for every step of that system
--     and action, in any run, whose newest outcome is "ok" (what the
--     reconciler remembers of systems it cannot read: DocSpace invitations).
-- j:runs{ limit = 20, roster_digest = } -> run rows newest first, each with
--     counts = { total =, unsettled =, ok =, failed =, ... }.
-- j:run(id) -> run row with steps (ordered by system, key, id; each with its
--     newest outcome's fields and its history) and by_system =
--     { {system =, people = { {key =, steps = {...}}, ... }}, ... }.
-- j:info() -> { backend =, path =, journal_mode =, synchronous =, ... }
-- j:close() -> true (flushes every open run's buffered settles first).
--
-- Secrets: detail and summary tables are passed through
-- provision.journal.redact (fields named like a secret lose their value);
-- messages and argv_summary are made one line, masked and capped (1 KB).
-- Request headers and bodies have no field here at all.
--
-- Backends: a backend module's open(target, opts) returns a store with
-- begin_run, write, chain, step_owner, count_unsettled, unsettled,
-- latest_unfinished, done_keys, runs, run, finish_run, info and close (see
-- provision/journal/sqlite.lua). Everything above the store is shared.
local errors = require("provision.errors")
local json = require("provision.json")
local redact = require("provision.journal.redact")

local journal = {}

-- scheme -> module; a PostgreSQL store (lua-sql-postgres) goes here.
journal.backends = { sqlite = "provision.journal.sqlite" }

journal.OUTCOMES = { ok = true, failed = true, exists = true, absent = true, unknown = true, skipped = true }
journal.SETTLED_BY = { response = true, read_back = true }
journal.FINISH = { done = true, failed = true, interrupted = true }

local MESSAGE_MAX = 1024
local DETAIL_MAX = 16384
local SUMMARY_MAX = 65536

local function fail(message, class)
  return errors.new({ kind = "journal", class = class or "JournalError", message = message })
end

local function invalid(op, fmt, ...)
  return nil, errors.invalid("journal." .. op, fmt, ...)
end

local function is_int(v)
  return type(v) == "number" and v == math.floor(v) and v > -2 ^ 53 and v < 2 ^ 53
end

-- nil (ok) or an error for a string field.
local function check_text(op, name, v, max, required, pattern)
  if v == nil then
    if required then return errors.invalid("journal." .. op, "%s is required", name) end
    return nil
  end
  if type(v) ~= "string" then
    return errors.invalid("journal." .. op, "%s must be a string, not a %s", name, type(v))
  end
  if v == "" and required then return errors.invalid("journal." .. op, "%s must not be empty", name) end
  if #v > max then return errors.invalid("journal." .. op, "%s is longer than %d bytes", name, max) end
  if v:find("%c") then return errors.invalid("journal." .. op, "%s holds a control character", name) end
  if pattern and not v:find(pattern) then
    return errors.invalid("journal." .. op, "%s %q is not a valid name", name, v)
  end
  return nil
end

local function check_fields(op, t, allowed)
  for k in pairs(t) do
    if not allowed[k] then
      return errors.invalid("journal." .. op, "unknown field %s", tostring(k))
    end
  end
  return nil
end

-- A list (keys 1..n) or nil.
local function is_list(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

local function encode(op, name, t, max)
  if t == nil then return nil end
  if type(t) ~= "table" then
    return nil, errors.invalid("journal." .. op, "%s must be a table, not a %s", name, type(t))
  end
  local text, err = json.encode(redact.table(t))
  if not text then return nil, errors.invalid("journal." .. op, "%s: %s", name, tostring(err)) end
  if #text > max then
    return nil, errors.invalid("journal." .. op, "%s is larger than %d bytes as JSON", name, max)
  end
  return text
end

local function decode(text)
  if text == nil then return nil end
  local v = json.decode(text)
  return v
end

local unpack_list = table.unpack or unpack   -- luacheck: ignore 143

local function read_line(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*l")
  f:close()
  return s
end

local function my_pid()
  local stat = read_line("/proc/self/stat")
  return stat and tonumber(stat:match("^(%d+)"))
end

-- $USER, else $LOGNAME, else the name /etc/passwd gives this process's
-- user id (a service or a container often sets neither variable).
local function user_name()
  local u = os.getenv("USER") or os.getenv("LOGNAME")
  if u and u ~= "" then return u end
  local f = io.open("/proc/self/status", "r")
  local status = f and f:read("*a")
  if f then f:close() end
  local uid = status and status:match("\nUid:%s*(%d+)")
  if not uid then return nil end
  local pw = io.open("/etc/passwd", "r")
  if not pw then return nil end
  for line in pw:lines() do
    local name, id = line:match("^([^:]*):[^:]*:(%d+):")
    if id == uid then
      pw:close()
      return name
    end
  end
  pw:close()
  return nil
end

local function host_name()
  local h = read_line("/proc/sys/kernel/hostname") or os.getenv("HOSTNAME")
  if h and h ~= "" then return h end
  return nil
end

function journal.default_path(getenv)
  getenv = getenv or os.getenv
  local state = getenv("XDG_STATE_HOME")
  if type(state) == "string" and state:sub(1, 1) == "/" then
    return (state:gsub("/+$", "")) .. "/provision/journal.sqlite"
  end
  local home = getenv("HOME")
  if type(home) == "string" and home:sub(1, 1) == "/" then
    return (home:gsub("/+$", "")) .. "/.local/state/provision/journal.sqlite"
  end
  return nil, fail("no place for the journal: neither XDG_STATE_HOME nor HOME is an absolute path; "
    .. "give a journal file")
end

local OPEN_FIELDS = { path = true, backend = true, busy_timeout_ms = true, settle_batch = true,
                      settle_interval_s = true }

-- backend name and the target it is given, from opts.path / opts.backend.
local function resolve(opts)
  local where, default = opts.path, false
  if where == nil then
    local err
    where, err = journal.default_path()
    if not where then return nil, nil, err end
    default = true
  elseif type(where) ~= "string" or where == "" then
    return nil, nil, errors.invalid("journal.open", "the journal path must be a non-empty string")
  end
  local backend = opts.backend
  local scheme = where:match("^(%a[%w+.-]*)://")
  if scheme then
    scheme = scheme:lower()
    if scheme == "sqlite" then where = where:sub(#"sqlite://" + 1) end
  elseif where:find("^sqlite:") then
    scheme, where = "sqlite", where:sub(#"sqlite:" + 1)
  end
  if backend ~= nil and type(backend) ~= "string" then
    return nil, nil, errors.invalid("journal.open", "backend must be a string")
  end
  if backend and scheme and backend ~= scheme then
    return nil, nil, errors.invalid("journal.open", "backend %q does not match the journal's scheme %q",
      backend, scheme)
  end
  backend = backend or scheme or "sqlite"
  if not journal.backends[backend] then
    local known = {}
    for k in pairs(journal.backends) do known[#known + 1] = k end
    table.sort(known)
    return nil, nil, fail(("no journal backend %q in this build (it has: %s)")
      :format(backend, table.concat(known, ", ")), "JournalBackendError")
  end
  if where == "" then return nil, nil, errors.invalid("journal.open", "the journal path is empty") end
  return backend, where, nil, default
end

local Journal = {}
Journal.__index = Journal
local Run = {}
Run.__index = Run

function journal.open(x)
  local opts
  if x == nil then
    opts = {}
  elseif type(x) == "string" then
    opts = { path = x }
  elseif type(x) == "table" then
    opts = x
    local err = check_fields("open", opts, OPEN_FIELDS)
    if err then return nil, err end
  else
    return invalid("open", "expected a path or an options table, not a %s", type(x))
  end
  for _, k in ipairs({ "busy_timeout_ms", "settle_batch" }) do
    if opts[k] ~= nil and not (is_int(opts[k]) and opts[k] >= 1) then
      return invalid("open", "%s must be a positive integer", k)
    end
  end
  if opts.settle_interval_s ~= nil and not (type(opts.settle_interval_s) == "number" and opts.settle_interval_s >= 0) then
    return invalid("open", "settle_interval_s must be a number of seconds >= 0")
  end
  local backend, target, rerr, default = resolve(opts)
  if not backend then return nil, rerr end
  local okm, mod = pcall(require, journal.backends[backend])
  if not okm then
    return nil, fail(("journal backend %q cannot load: %s"):format(backend, tostring(mod)), "JournalBackendError")
  end
  -- only the default journal's folders are made: a mistyped path is an error
  local store, err = mod.open(target, { busy_timeout_ms = opts.busy_timeout_ms, make_dirs = default })
  if not store then return nil, err end
  return setmetatable({
    store = store, backend = backend, path = target,
    settle_batch = opts.settle_batch or 64,
    settle_interval_s = opts.settle_interval_s or 1,
    open_runs = {},
  }, Journal)
end

local function closed_error(what)
  return fail(what .. " is closed", "ClosedError")
end

local RUN_FIELDS = { roster_digest = true, systems = true, mode = true, who = true, host = true,
                     argv_summary = true, resume_of = true }

function Journal:begin_run(f)
  if self.closed then return nil, closed_error("the journal") end
  if type(f) ~= "table" then return invalid("begin_run", "expected a table, not a %s", type(f)) end
  local err = check_fields("begin_run", f, RUN_FIELDS)
    or check_text("begin_run", "roster_digest", f.roster_digest, 256, true)
    or check_text("begin_run", "mode", f.mode, 32, false, "^%a[%w_%-]*$")
    or check_text("begin_run", "who", f.who, 256)
    or check_text("begin_run", "host", f.host, 256)
  if err then return nil, err end
  if f.argv_summary ~= nil and type(f.argv_summary) ~= "string" then
    return invalid("begin_run", "argv_summary must be a string")
  end
  if f.resume_of ~= nil and not (is_int(f.resume_of) and f.resume_of >= 1) then
    return invalid("begin_run", "resume_of must be a run id")
  end
  local systems = f.systems or {}
  if not is_list(systems) then return invalid("begin_run", "systems must be a list of names") end
  for i, s in ipairs(systems) do
    err = check_text("begin_run", "systems[" .. i .. "]", s, 128, true)
    if err then return nil, err end
  end
  local id
  id, err = self.store:begin_run({
    roster_digest = f.roster_digest,
    mode = f.mode or "apply",
    systems = json.encode(json.array({ unpack_list(systems) })),
    who = f.who or user_name(),
    host = f.host or host_name(),
    pid = my_pid(),
    argv_summary = f.argv_summary and redact.text(f.argv_summary, MESSAGE_MAX),
    resume_of = f.resume_of,
  })
  if not id then return nil, err end
  local chain
  chain, err = self.store:chain(id)
  if not chain then return nil, err end
  local in_chain = {}
  for _, rid in ipairs(chain) do in_chain[rid] = true end
  local run = setmetatable({
    id = id, journal = self, chain = chain, in_chain = in_chain,
    mine = {}, pending = {}, pending_since = nil,
  }, Run)
  self.open_runs[run] = true
  return run
end

local STEP_FIELDS = { system = true, key = true, action = true, operation = true, detail = true }

local function step_row(i, s)
  local where = "steps[" .. i .. "]"
  if type(s) ~= "table" then return nil, errors.invalid("journal.intend", "%s must be a table", where) end
  local err = check_fields("intend", s, STEP_FIELDS)
    or check_text("intend", where .. ".system", s.system, 128, true)
    or check_text("intend", where .. ".key", s.key, 512, true)
    or check_text("intend", where .. ".action", s.action, 32, true, "^%a[%w_%-]*$")
    or check_text("intend", where .. ".operation", s.operation, 128)
  if err then return nil, err end
  local detail
  detail, err = encode("intend", where .. ".detail", s.detail, DETAIL_MAX)
  if err then return nil, err end
  return { system = s.system, key = s.key, action = s.action, operation = s.operation, detail = detail }
end

function Run:usable()
  if self.finished then return fail(("run %d is finished"):format(self.id), "ClosedError") end
  if self.journal.closed then return closed_error("the journal") end
  return nil
end

function Run:intend(steps)
  local err = self:usable()
  if err then return nil, err end
  if not is_list(steps) then return invalid("intend", "expected a list of steps") end
  local rows = {}
  for i, s in ipairs(steps) do
    rows[i], err = step_row(i, s)
    if not rows[i] then return nil, err end
  end
  if #rows == 0 then return {} end
  local ids
  ids, err = self.journal.store:write(self.id, rows, self.pending)
  if not ids then return nil, err end
  self.pending, self.pending_since = {}, nil
  for _, id in ipairs(ids) do self.mine[id] = true end
  return ids
end

local SETTLE_FIELDS = { outcome = true, status = true, request_id = true, error_class = true, message = true,
                        settled_by = true, record_id = true }

function Run:outcome_row(id, f, where)
  if not (is_int(id) and id >= 1) then return nil, errors.invalid("journal.settle", "%sid must be a step id", where) end
  if type(f) ~= "table" then return nil, errors.invalid("journal.settle", "%soutcome must be a table", where) end
  local err = check_fields("settle", f, SETTLE_FIELDS)
  if err then return nil, err end
  if not journal.OUTCOMES[f.outcome] then
    return nil, errors.invalid("journal.settle", "%soutcome must be one of ok, failed, exists, absent, unknown, "
      .. "skipped; got %s", where, tostring(f.outcome))
  end
  if f.settled_by ~= nil and not journal.SETTLED_BY[f.settled_by] then
    return nil, errors.invalid("journal.settle", "%ssettled_by must be response or read_back", where)
  end
  if f.status ~= nil and not (is_int(f.status) and f.status >= 0 and f.status < 1000) then
    return nil, errors.invalid("journal.settle", "%sstatus must be an HTTP status", where)
  end
  local record_id = f.record_id
  if is_int(record_id) then record_id = string.format("%d", record_id) end
  err = check_text("settle", where .. "request_id", f.request_id, 256)
    or check_text("settle", where .. "error_class", f.error_class, 128)
    or check_text("settle", where .. "record_id", record_id, 256)
  if err then return nil, err end
  if f.message ~= nil and type(f.message) ~= "string" then
    return nil, errors.invalid("journal.settle", "%smessage must be a string", where)
  end
  if not self.mine[id] then
    local owner
    owner, err = self.journal.store:step_owner(id)
    if owner == nil then return nil, err end
    if not (owner and self.in_chain[owner]) then
      return nil, errors.invalid("journal.settle", "%sstep %d is not in run %d or a run it resumed", where, id, self.id)
    end
    self.mine[id] = true
  end
  return {
    step_id = id, run_id = self.id, outcome = f.outcome, status = f.status,
    request_id = f.request_id, error_class = f.error_class, record_id = record_id,
    message = f.message and redact.text(f.message, MESSAGE_MAX),
    settled_by = f.settled_by or "response",
  }
end

function Run:buffer(rows)
  for _, r in ipairs(rows) do self.pending[#self.pending + 1] = r end
  self.pending_since = self.pending_since or os.time()
  if #self.pending >= self.journal.settle_batch
    or os.difftime(os.time(), self.pending_since) >= self.journal.settle_interval_s then
    return self:flush()
  end
  return true
end

function Run:settle(id, f)
  local err = self:usable()
  if err then return nil, err end
  local row
  row, err = self:outcome_row(id, f, "")
  if not row then return nil, err end
  return self:buffer({ row })
end

function Run:settle_many(list)
  local err = self:usable()
  if err then return nil, err end
  if not is_list(list) then return invalid("settle_many", "expected a list of outcomes") end
  local rows = {}
  for i, f in ipairs(list) do
    if type(f) ~= "table" then return invalid("settle_many", "[%d] must be a table", i) end
    local fields = {}
    for k, v in pairs(f) do if k ~= "id" then fields[k] = v end end
    rows[i], err = self:outcome_row(f.id, fields, "[" .. i .. "] ")
    if not rows[i] then return nil, err end
  end
  if #rows == 0 then return true end
  return self:buffer(rows)
end

function Run:flush()
  if #self.pending == 0 then return true end
  if self.journal.closed then return nil, closed_error("the journal") end
  local ok, err = self.journal.store:write(self.id, {}, self.pending)
  if not ok then return nil, err end
  self.pending, self.pending_since = {}, nil
  return true
end

local FINISH_FIELDS = { status = true, summary = true }

function Run:finish(f)
  local err = self:usable()
  if err then return nil, err end
  if type(f) ~= "table" then return invalid("finish", "expected a table, not a %s", type(f)) end
  err = check_fields("finish", f, FINISH_FIELDS)
  if err then return nil, err end
  if not journal.FINISH[f.status] then
    return invalid("finish", "status must be done, failed or interrupted; got %s", tostring(f.status))
  end
  local summary
  summary, err = encode("finish", "summary", f.summary, SUMMARY_MAX)
  if err then return nil, err end
  local ok
  ok, err = self:flush()
  if not ok then return nil, err end
  local store = self.journal.store
  if f.status == "done" then
    local n
    n, err = store:count_unsettled(self.chain)
    if not n then return nil, err end
    if n > 0 then
      return nil, fail(("run %d cannot finish done: %d step(s) have no outcome; settle them, or finish "
        .. "failed or interrupted"):format(self.id, n), "JournalStateError")
    end
  end
  ok, err = store:finish_run(self.id, f.status, summary)
  if not ok then return nil, err end
  self.finished = true
  self.journal.open_runs[self] = nil
  return true
end

local function step_view(s)
  s.detail = decode(s.detail)
  return s
end

local function run_view(r)
  r.systems = decode(r.systems) or {}
  r.summary = decode(r.summary)
  local c = r.counts or {}
  local total = 0
  for _, n in pairs(c) do total = total + n end
  c.total, c.unsettled = total, c.unsettled or 0
  r.counts = c
  return r
end

function Journal:usable()
  if self.closed then return closed_error("the journal") end
  return nil
end

function Journal:latest_unfinished(roster_digest)
  local err = self:usable()
    or check_text("latest_unfinished", "roster_digest", roster_digest, 256)
  if err then return nil, err end
  local row
  row, err = self.store:latest_unfinished(roster_digest)
  if row == nil then return nil, err end
  if not row then return nil end
  return run_view(row)
end

function Journal:unsettled(sel, opts)
  local err = self:usable()
  if err then return nil, err end
  if opts ~= nil and type(opts) ~= "table" then return invalid("unsettled", "options must be a table") end
  local include_unknown = opts and opts.include_unknown == true
  local run_ids
  if type(sel) == "number" then
    if not (is_int(sel) and sel >= 1) then return invalid("unsettled", "a run id must be a positive integer") end
    run_ids, err = self.store:chain(sel)
    if not run_ids then return nil, err end
    if #run_ids == 0 then return nil, fail(("no run %d in the journal"):format(sel), "JournalNotFoundError") end
  elseif type(sel) == "string" then
    local latest
    latest, err = self:latest_unfinished(sel)
    if latest == nil and err then return nil, err end
    if not latest then return {} end
    run_ids, err = self.store:chain(latest.id)
    if not run_ids then return nil, err end
  elseif sel ~= nil then
    return invalid("unsettled", "expected a run id, a roster digest or nothing, not a %s", type(sel))
  end
  local rows
  rows, err = self.store:unsettled(run_ids, include_unknown)
  if not rows then return nil, err end
  for _, s in ipairs(rows) do step_view(s) end
  return rows
end

function Journal:done_keys(system, action)
  local err = self:usable()
    or check_text("done_keys", "system", system, 128, true)
    or check_text("done_keys", "action", action, 32, true, "^%a[%w_%-]*$")
  if err then return nil, err end
  for run in pairs(self.open_runs) do   -- this process's own settles count too
    local ok, ferr = run:flush()
    if not ok then return nil, ferr end
  end
  local rows
  rows, err = self.store:done_keys(system, action)
  if not rows then return nil, err end
  local set = {}
  for _, r in ipairs(rows) do set[r.key] = true end
  return set
end

function Journal:runs(opts)
  local err = self:usable()
  if err then return nil, err end
  opts = opts or {}
  if type(opts) ~= "table" then return invalid("runs", "options must be a table") end
  err = check_fields("runs", opts, { limit = true, roster_digest = true })
    or check_text("runs", "roster_digest", opts.roster_digest, 256)
  if err then return nil, err end
  local limit = opts.limit or 20
  if not (is_int(limit) and limit >= 1) then return invalid("runs", "limit must be a positive integer") end
  local rows
  rows, err = self.store:runs(limit, opts.roster_digest)
  if not rows then return nil, err end
  for _, r in ipairs(rows) do run_view(r) end
  return rows
end

local OUTCOME_COPY = { "outcome", "status", "request_id", "error_class", "message", "settled_by",
                       "record_id", "settled_at" }

function Journal:run(id)
  local err = self:usable()
  if err then return nil, err end
  if not (is_int(id) and id >= 1) then return invalid("run", "a run id must be a positive integer") end
  local got
  got, err = self.store:run(id)
  if got == nil then return nil, err end
  if not got then return nil, fail(("no run %d in the journal"):format(id), "JournalNotFoundError") end
  local history = {}
  for _, o in ipairs(got.outcomes) do
    local h = history[o.step_id] or {}
    history[o.step_id] = h
    h[#h + 1] = o
  end
  local r = run_view(got.run)
  r.steps, r.by_system = got.steps, {}
  local sys_group, person
  for _, s in ipairs(got.steps) do
    step_view(s)
    s.history = history[s.id] or {}
    local last = s.history[#s.history]
    if last then
      for _, k in ipairs(OUTCOME_COPY) do s[k] = last[k] end
      s.settled_in = last.run_id
    end
    if not sys_group or sys_group.system ~= s.system then
      sys_group = { system = s.system, people = {} }
      r.by_system[#r.by_system + 1] = sys_group
      person = nil
    end
    if not person or person.key ~= s.key then
      person = { key = s.key, steps = {} }
      sys_group.people[#sys_group.people + 1] = person
    end
    person.steps[#person.steps + 1] = s
  end
  return r
end

function Journal:info()
  local err = self:usable()
  if err then return nil, err end
  return self.store:info()
end

function Journal:close()
  if self.closed then return true end
  local first_err
  for run in pairs(self.open_runs) do
    local ok, err = run:flush()
    if not ok and not first_err then first_err = err end
  end
  self.store:close()
  self.closed = true
  if first_err then return nil, first_err end
  return true
end

return journal
