-- The journal's SQLite backend: storage only. Validation, redaction, settle
-- buffering and the shape of what callers get back live in
-- provision/journal.lua, so that another backend (PostgreSQL for a journal
-- shared by several hosts) implements just the store methods below.
--
-- Binding: LuaSQL (Debian's lua-sql-sqlite3), not libsqlite3 bound in the C
-- core. LuaSQL loads unchanged in Lua 5.1-5.4 and LuaJIT, and keeps the C core
-- free of a second native dependency while it is being changed elsewhere.
-- The price, paid here and nowhere else:
--   * no prepared statements: every value reaches SQL through literal()
--     (strings quoted with '' doubled, a NUL byte refused because LuaSQL
--     hands SQLite a C string; numbers must be integers, written with %d);
--   * execute() runs only the first statement of a string, and returns a
--     cursor for anything that yields rows (PRAGMA x=y included), which must
--     be closed before COMMIT: exec() and rows() below do both.
-- An apply's journal costs its fsyncs (one per transaction), not parsing.
--
-- Durability: WAL mode, synchronous=FULL (every COMMIT is fsync'd before it
-- returns), writes in BEGIN IMMEDIATE transactions so that a second process
-- waits on the busy timeout instead of failing at once (a deferred
-- transaction that later wants to write can fail with SQLITE_BUSY without
-- waiting).
--
-- Schema: identified by PRAGMA application_id (so another program's database
-- is refused, not converted) and versioned by PRAGMA user_version.
local luasql = require("luasql.sqlite3")
local errors = require("provision.errors")

local sqlite = {}

sqlite.APPLICATION_ID = 0x50525653   -- "PRVS"
sqlite.SCHEMA_VERSION = 1
sqlite.DEFAULT_BUSY_TIMEOUT_MS = 15000

local NOW = "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

local SCHEMA = {
  [[CREATE TABLE runs (
      id INTEGER PRIMARY KEY,
      roster_digest TEXT NOT NULL,
      mode TEXT NOT NULL,
      systems TEXT NOT NULL,
      who TEXT,
      host TEXT,
      pid INTEGER,
      argv_summary TEXT,
      resume_of INTEGER REFERENCES runs(id),
      resumed_by INTEGER REFERENCES runs(id),
      status TEXT NOT NULL,
      started_at TEXT NOT NULL,
      ended_at TEXT,
      summary TEXT)]],
  "CREATE INDEX runs_by_digest ON runs(roster_digest, id)",
  -- one row per intent, written before its request is sent
  [[CREATE TABLE steps (
      id INTEGER PRIMARY KEY,
      run_id INTEGER NOT NULL REFERENCES runs(id),
      system TEXT NOT NULL,
      key TEXT NOT NULL,
      action TEXT NOT NULL,
      operation TEXT,
      detail TEXT,
      intended_at TEXT NOT NULL)]],
  "CREATE INDEX steps_by_run ON steps(run_id, system, key)",
  -- append-only: a step may be settled more than once (an "unknown" answer,
  -- then a read-back on resume); the newest row is its outcome, the rest its
  -- history. run_id is the run that settled it.
  [[CREATE TABLE outcomes (
      id INTEGER PRIMARY KEY,
      step_id INTEGER NOT NULL REFERENCES steps(id),
      run_id INTEGER NOT NULL REFERENCES runs(id),
      outcome TEXT NOT NULL,
      status INTEGER,
      request_id TEXT,
      error_class TEXT,
      message TEXT,
      settled_by TEXT NOT NULL,
      record_id TEXT,
      settled_at TEXT NOT NULL)]],
  "CREATE INDEX outcomes_by_step ON outcomes(step_id, id)",
}

local function fail(message, class)
  return errors.new({ kind = "journal", class = class or "JournalError", message = message })
end

local function clean(msg)
  return (tostring(msg):gsub("^LuaSQL: ", ""))
end

-- Raise an error object (caught by Store:tx / Store:read) unless v is set.
local function must(v, err)
  if v == nil then error(err, 0) end
  return v
end

local function literal(v)
  if v == nil then return "NULL" end
  if type(v) == "number" then
    if v ~= v or v == math.huge or v == -math.huge or v ~= math.floor(v) then
      error(fail("journal: not an integer: " .. tostring(v)), 0)
    end
    return string.format("%d", v)
  end
  if type(v) ~= "string" then
    error(fail("journal: cannot store a " .. type(v)), 0)
  end
  if v:find("\0", 1, true) then
    error(fail("journal: a value holds a NUL byte"), 0)
  end
  return "'" .. v:gsub("'", "''") .. "'"
end

local function id_list(ids)
  local parts = {}
  for i, id in ipairs(ids) do parts[i] = literal(id) end
  return table.concat(parts, ", ")
end

local function to_int(n)
  if n == nil then return nil end
  if math.tointeger then return math.tointeger(n) or n end
  return n
end

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- Whether path is a folder: io.open opens one, reading it fails (EISDIR).
local function is_dir(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local _, _, code = f:read(0)
  f:close()
  return code == 21
end

-- Create the journal file readable by its owner only (file 0600; SQLite
-- gives its -wal and -shm files the database file's mode), and with
-- make_dirs its missing parent folders (0700): only for the default path,
-- so that a mistyped --journal is an error, not a journal somewhere else.
-- Lua has no mkdir and LuaSQL no chmod, so this is one shell command with a
-- umask; every name is single-quoted.
local function ensure_file(path, make_dirs)
  if file_exists(path) then return true end
  local dir = path:match("^(.*)/[^/]*$")
  if dir == "" then dir = "/" end
  if dir and not make_dirs and not is_dir(dir) then
    return nil, fail("cannot create journal " .. path .. ": the folder " .. dir .. " does not exist")
  end
  local cmd = "umask 077"
  if dir and make_dirs then cmd = cmd .. " && mkdir -p -- " .. shell_quote(dir) end
  cmd = cmd .. " && : >> " .. shell_quote(path)
  local p = io.popen("(" .. cmd .. ") 2>&1", "r")
  local out = p and p:read("*a") or ""
  if p then p:close() end
  if file_exists(path) then return true end
  -- the shell's "sh: 1: cannot create PATH: Permission denied" -> the reason
  out = out:gsub("%s+$", ""):gsub("^sh: %d+: ", ""):gsub("^cannot create .-: ([^:]+)$", "%1")
  return nil, fail("cannot create journal " .. path .. (out ~= "" and (": " .. out) or ""))
end

local Store = {}
Store.__index = Store

function Store:err(msg, what)
  msg = clean(msg)
  if msg:find("database is locked", 1, true) or msg:find("database is busy", 1, true) then
    return fail(("journal %s is busy: another process holds its lock (waited up to %d ms; %s: %s)")
      :format(self.path, self.busy_timeout_ms, what or "statement", msg), "JournalBusyError")
  end
  local e = fail(("journal %s: %s%s"):format(self.path, what and (what .. ": ") or "", msg))
  e.sqlite = msg
  return e
end

-- Run one statement, closing the cursor of one that yields rows.
local function label(sql)
  return sql:match("^%s*(%a+%s+[%a_]+)") or "statement"
end

function Store:exec(sql)
  local res, err = self.conn:execute(sql)
  if res == nil then return nil, self:err(err, label(sql)) end
  if type(res) == "userdata" then res:close() return 0 end
  return res
end

-- All rows of a query, as tables keyed by column name (NULL columns absent).
function Store:rows(sql)
  local cur, err = self.conn:execute(sql)
  if cur == nil then return nil, self:err(err, label(sql)) end
  if type(cur) ~= "userdata" then return {} end
  local out = {}
  while true do
    local row, ferr = cur:fetch({}, "a")
    if row == nil then
      cur:close()
      if ferr then return nil, self:err(ferr, label(sql)) end
      return out
    end
    out[#out + 1] = row
  end
end

function Store:row(sql)
  local rows, err = self:rows(sql)
  if not rows then return nil, err end
  return rows[1] or false
end

local function as_error(self, e)
  if errors.is_error(e) then return e end
  return self:err(e)
end

-- fn runs inside BEGIN IMMEDIATE ... COMMIT and raises (via must) on error;
-- any error rolls the whole transaction back.
function Store:tx(fn, how)
  local ok, err = self:exec(how or "BEGIN IMMEDIATE")
  if not ok then return nil, err end
  local done, value = pcall(fn)
  if done then
    ok, err = self:exec("COMMIT")
    if ok then return value end
    value = err
  end
  self:exec("ROLLBACK")
  return nil, as_error(self, value)
end

-- A consistent snapshot for reads (a deferred transaction never writes).
function Store:read(fn)
  return self:tx(fn, "BEGIN")
end

function Store:pragma(name)
  local row, err = self:row("PRAGMA " .. name)
  if not row then return nil, err or self:err("no answer", "PRAGMA " .. name) end
  local _, v = next(row)
  return v
end

-- "fresh" (empty, ours to create), "ours" (a journal of a version we read),
-- or nil, err.
local function identify(self)
  local app, err = self:pragma("application_id")
  if app == nil then
    if err.class == "JournalBusyError" then return nil, err end
    return nil, fail(("%s is not a provision journal (%s)"):format(self.path, err.sqlite or err.message))
  end
  local version = must(self:pragma("user_version"))
  local objects = must(self:row("SELECT count(*) AS n FROM sqlite_master")).n
  if app == 0 and version == 0 and objects == 0 then return "fresh" end
  if app ~= sqlite.APPLICATION_ID then
    return nil, fail(("%s is an SQLite database but not a provision journal (application_id %d)")
      :format(self.path, app))
  end
  if version > sqlite.SCHEMA_VERSION then
    return nil, fail(("journal %s has schema version %d, newer than this provision understands (%d): "
      .. "upgrade provision, or use another journal"):format(self.path, version, sqlite.SCHEMA_VERSION),
      "JournalSchemaError")
  end
  if version < 1 then
    return nil, fail(("journal %s has no schema version"):format(self.path), "JournalSchemaError")
  end
  return "ours"
end

local function create_schema(self)
  return self:tx(function()
    -- another process may have created it since identify()
    local state = must(identify(self))
    if state == "ours" then return "ours" end
    for _, sql in ipairs(SCHEMA) do must(self:exec(sql)) end
    must(self:exec("PRAGMA application_id = " .. sqlite.APPLICATION_ID))
    must(self:exec("PRAGMA user_version = " .. sqlite.SCHEMA_VERSION))
    return "created"
  end)
end

-- Two processes opening a new file at once may both ask for WAL; SQLite then
-- answers one of them SQLITE_BUSY at once, without the busy handler (each
-- holds a shared lock the other must see released). The loser waits for the
-- winner's lock through BEGIN IMMEDIATE, which does use the busy handler,
-- and asks again; by then the file is in WAL mode already.
local function use_wal(self)
  local mode, err
  for _ = 1, 10 do
    mode, err = self:pragma("journal_mode = WAL")
    if mode then return mode end
    if err.class ~= "JournalBusyError" then break end
    must(self:exec("BEGIN IMMEDIATE"))
    must(self:exec("ROLLBACK"))
  end
  error(err, 0)
end

local function setup(self)
  -- the busy timeout first: everything after it may meet another process's lock
  must(self:exec("PRAGMA busy_timeout = " .. literal(self.busy_timeout_ms)))
  -- identify before switching to WAL, so another program's database is left
  -- as it was; in one read transaction, or another process creating the
  -- schema between two of its questions would make a new journal look foreign
  local state = must(self:read(function() return must(identify(self)) end))
  local mode = use_wal(self)
  if mode ~= "wal" then
    error(fail(("journal %s: SQLite could not use WAL mode here (it answered %q); "
      .. "put the journal on a local file system"):format(self.path, tostring(mode))), 0)
  end
  must(self:exec("PRAGMA synchronous = FULL"))
  must(self:exec("PRAGMA foreign_keys = ON"))
  if state == "fresh" then must(create_schema(self)) end
  return true
end

-- path: a file name; opts.busy_timeout_ms, opts.make_dirs (create missing
-- parent folders).
function sqlite.open(path, opts)
  opts = opts or {}
  local okf, ferr = ensure_file(path, opts.make_dirs)
  if not okf then return nil, ferr end
  local env = luasql.sqlite3()
  local conn, err = env:connect(path)
  if not conn then
    env:close()
    return nil, fail(("cannot open journal %s: %s"):format(path, clean(err)))
  end
  local self = setmetatable({ env = env, conn = conn, path = path,
                              busy_timeout_ms = opts.busy_timeout_ms or sqlite.DEFAULT_BUSY_TIMEOUT_MS }, Store)
  local ok, serr = pcall(setup, self)
  if not ok then
    self:close()
    return nil, as_error(self, serr)
  end
  return self
end

function Store:close()
  if self.conn then
    pcall(self.conn.close, self.conn)
    pcall(self.env.close, self.env)
    self.conn, self.env = nil, nil
  end
  return true
end

function Store:info()
  local sync = { [0] = "off", [1] = "normal", [2] = "full", [3] = "extra" }
  local t = {
    backend = "sqlite",
    path = self.path,
    journal_mode = self:pragma("journal_mode"),
    synchronous = sync[self:pragma("synchronous")],
    busy_timeout_ms = self:pragma("busy_timeout"),
    foreign_keys = self:pragma("foreign_keys") == 1,
    schema_version = self:pragma("user_version"),
  }
  if t.journal_mode == nil or t.synchronous == nil then
    return nil, self:err("cannot read its settings")
  end
  return t
end

local function insert_outcomes(self, list)
  local CHUNK = 200
  for first = 1, #list, CHUNK do
    local values = {}
    for i = first, math.min(first + CHUNK - 1, #list) do
      local o = list[i]
      values[#values + 1] = ("(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"):format(
        literal(o.step_id), literal(o.run_id), literal(o.outcome), literal(o.status),
        literal(o.request_id), literal(o.error_class), literal(o.message),
        literal(o.settled_by), literal(o.record_id), NOW)
    end
    must(self:exec("INSERT INTO outcomes (step_id, run_id, outcome, status, request_id, error_class, "
      .. "message, settled_by, record_id, settled_at) VALUES " .. table.concat(values, ", ")))
  end
end

-- row: roster_digest, mode, systems (JSON text), who, host, pid,
-- argv_summary, resume_of. A resumed run is marked resumed_by in the same
-- transaction (and, if it was still "running", ends as "resumed"); one that
-- is finished "done" or already resumed is refused,
-- so two operators resuming one run cannot both win.
function Store:begin_run(row)
  return self:tx(function()
    if row.resume_of then
      local old = must(self:row("SELECT id, status, resumed_by FROM runs WHERE id = " .. literal(row.resume_of)))
      if not old then error(fail(("journal: run %d does not exist"):format(row.resume_of)), 0) end
      if old.resumed_by then
        error(fail(("journal: run %d was already resumed by run %d"):format(row.resume_of, old.resumed_by),
          "JournalConflictError"), 0)
      end
      if old.status == "done" then
        error(fail(("journal: run %d finished done; there is nothing to resume"):format(row.resume_of)), 0)
      end
    end
    must(self:exec(("INSERT INTO runs (roster_digest, mode, systems, who, host, pid, argv_summary, resume_of, "
      .. "status, started_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'running', %s)"):format(
      literal(row.roster_digest), literal(row.mode), literal(row.systems), literal(row.who), literal(row.host),
      literal(row.pid), literal(row.argv_summary), literal(row.resume_of), NOW)))
    local id = to_int(self.conn:getlastautoid())
    if row.resume_of then
      -- a run still "running" when it is resumed was killed (or given up
      -- elsewhere): it ends here, as "resumed"; an interrupted one keeps its word
      must(self:exec(("UPDATE runs SET resumed_by = %s, status = CASE WHEN status = 'running' THEN 'resumed' "
        .. "ELSE status END, ended_at = COALESCE(ended_at, %s) WHERE id = %s"):format(literal(id), NOW,
        literal(row.resume_of))))
    end
    return id
  end)
end

-- Intents (steps) and pending outcomes in one durable transaction; returns
-- the new steps' ids in order.
function Store:write(run_id, steps, outcomes)
  return self:tx(function()
    local ids = {}
    for i, s in ipairs(steps) do
      must(self:exec(("INSERT INTO steps (run_id, system, key, action, operation, detail, intended_at) "
        .. "VALUES (%s, %s, %s, %s, %s, %s, %s)"):format(literal(run_id), literal(s.system), literal(s.key),
        literal(s.action), literal(s.operation), literal(s.detail), NOW)))
      ids[i] = to_int(self.conn:getlastautoid())
    end
    insert_outcomes(self, outcomes or {})
    return ids
  end)
end

local UNSETTLED = "NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.step_id = s.id)"
local LATEST = "(SELECT o.outcome FROM outcomes o WHERE o.step_id = s.id ORDER BY o.id DESC LIMIT 1)"

local function chain_sql(run_id)
  return ("WITH RECURSIVE chain(id) AS (SELECT id FROM runs WHERE id = %s UNION ALL SELECT r.resume_of FROM runs r "
    .. "JOIN chain c ON r.id = c.id WHERE r.resume_of IS NOT NULL) SELECT id FROM chain"):format(literal(run_id))
end

-- The run and the runs it resumed, newest first; empty when there is no such run.
function Store:chain(run_id)
  local rows, err = self:rows(chain_sql(run_id))
  if not rows then return nil, err end
  local ids = {}
  for i, r in ipairs(rows) do ids[i] = r.id end
  return ids
end

-- Marks the run finished; refuses a run already finished.
function Store:finish_run(run_id, status, summary)
  return self:tx(function()
    local n = must(self:exec(("UPDATE runs SET status = %s, summary = %s, ended_at = %s "
      .. "WHERE id = %s AND ended_at IS NULL"):format(literal(status), literal(summary), NOW, literal(run_id))))
    if n == 0 then error(fail(("journal: run %d is finished already"):format(run_id)), 0) end
    return true
  end)
end

-- Count of steps without an outcome in the given runs.
function Store:count_unsettled(run_ids)
  local row, err = self:row(("SELECT count(*) AS n FROM steps s WHERE s.run_id IN (%s) AND %s")
    :format(id_list(run_ids), UNSETTLED))
  if not row then return nil, err end
  return row.n
end

-- The run a step was intended in, or false.
function Store:step_owner(step_id)
  local row, err = self:row("SELECT run_id FROM steps WHERE id = " .. literal(step_id))
  if row == nil then return nil, err end
  return row and row.run_id or false
end

-- Steps without an outcome (or, with include_unknown, whose newest outcome
-- is "unknown"), in the given runs or in all, oldest first.
function Store:unsettled(run_ids, include_unknown)
  local where = UNSETTLED
  if include_unknown then where = "(" .. where .. " OR " .. LATEST .. " = 'unknown')" end
  if run_ids then where = ("s.run_id IN (%s) AND %s"):format(id_list(run_ids), where) end
  return self:rows("SELECT s.* FROM steps s WHERE " .. where .. " ORDER BY s.id")
end

-- Newest run not finished (running, or interrupted) and not resumed, for
-- one roster or any.
function Store:latest_unfinished(roster_digest)
  local where = "status IN ('running', 'interrupted') AND resumed_by IS NULL"
  if roster_digest then where = where .. " AND roster_digest = " .. literal(roster_digest) end
  return self:row("SELECT * FROM runs WHERE " .. where .. " ORDER BY id DESC LIMIT 1")
end

-- Keys of one system's steps of one action whose newest outcome is "ok".
function Store:done_keys(system, action)
  return self:rows(("SELECT DISTINCT s.key AS key FROM steps s WHERE s.system = %s AND s.action = %s AND %s = 'ok'")
    :format(literal(system), literal(action), LATEST))
end

-- {run_id = {outcome = n, ..., unsettled = n}} for the given runs.
local function counts(self, run_ids)
  local out = {}
  if #run_ids == 0 then return out end
  local rows = must(self:rows(("SELECT s.run_id AS run_id, %s AS outcome, count(*) AS n FROM steps s "
    .. "WHERE s.run_id IN (%s) GROUP BY s.run_id, outcome"):format(LATEST, id_list(run_ids))))
  for _, r in ipairs(rows) do
    local c = out[r.run_id] or {}
    out[r.run_id] = c
    c[r.outcome or "unsettled"] = r.n
  end
  return out
end

-- Runs newest first, each with .counts; opts.limit, opts.roster_digest.
function Store:runs(limit, roster_digest)
  return self:read(function()
    local where = roster_digest and (" WHERE roster_digest = " .. literal(roster_digest)) or ""
    local rows = must(self:rows("SELECT * FROM runs" .. where .. " ORDER BY id DESC LIMIT " .. literal(limit)))
    local ids = {}
    for i, r in ipairs(rows) do ids[i] = r.id end
    local c = counts(self, ids)
    for _, r in ipairs(rows) do r.counts = c[r.id] or {} end
    return rows
  end)
end

-- One run (with .counts), its steps ordered by system, key and id, and every
-- outcome row of those steps oldest first; false when there is no such run.
function Store:run(run_id)
  return self:read(function()
    local row = must(self:row("SELECT * FROM runs WHERE id = " .. literal(run_id)))
    if not row then return false end
    row.counts = counts(self, { run_id })[run_id] or {}
    local steps = must(self:rows("SELECT * FROM steps WHERE run_id = " .. literal(run_id)
      .. " ORDER BY system, key, id"))
    local outcomes = must(self:rows("SELECT o.* FROM outcomes o JOIN steps s ON s.id = o.step_id "
      .. "WHERE s.run_id = " .. literal(run_id) .. " ORDER BY o.id"))
    return { run = row, steps = steps, outcomes = outcomes }
  end)
end

return sqlite
