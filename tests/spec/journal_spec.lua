-- The apply journal on real SQLite files: every interface function, the
-- pragmas it promises, durability under SIGKILL (a Lua 5.4 child killed by
-- PID), two processes on one journal, no secret stored, bad input refused.
local journal = require("provision.journal")
local redact = require("provision.journal.redact")
local luasql = require("luasql.sqlite3")
local proc = require("support.proc")

local CHILD = "tests/support/journal_child.lua"

local function tmpdir()
  local d = proc.capture("mktemp -d /tmp/provision-journal-XXXXXX"):gsub("%s+$", "")
  assert(d:find("^/tmp/provision%-journal%-"), d)
  return d
end

-- Rows of a query through a connection of the test's own (not the journal's).
local function raw(path, sql)
  local env = luasql.sqlite3()
  local conn = assert(env:connect(path))
  local cur = assert(conn:execute("PRAGMA busy_timeout = 20000"))
  if type(cur) == "userdata" then cur:close() end
  local res, err = conn:execute(sql)
  local rows = {}
  if type(res) == "userdata" then
    local row = res:fetch({}, "a")
    while row do
      rows[#rows + 1] = row
      row = res:fetch({}, "a")
    end
    res:close()
  end
  conn:close()
  env:close()
  assert(res ~= nil, err)
  return rows
end

local function scalar(path, sql)
  local row = raw(path, sql)[1]
  local _, v = next(row)
  return v
end

-- Calls fn, which must not raise, and must answer nil, err with a message.
local function refused(fn, pattern)
  local ok, v, err = pcall(fn)
  assert.is_true(ok, "raised: " .. tostring(v))
  assert.is_nil(v)
  assert.is_truthy(err and err.message, "no error object")
  if pattern then assert.is_truthy(tostring(err):find(pattern), tostring(err)) end
  return err
end

local function steps(prefix, n)
  local list = {}
  for i = 1, n do
    list[i] = { system = "agilicus", key = prefix .. i .. "@example.com", action = "create",
                operation = "UsersApi.create_user", detail = { email = prefix .. i .. "@example.com" } }
  end
  return list
end

local function ids_of(list)
  local out = {}
  for i, s in ipairs(list) do out[i] = s.id end
  table.sort(out)
  return out
end

describe("journal", function()
  local dir, path

  before_each(function()
    dir = tmpdir()
    path = dir .. "/journal.sqlite"
  end)
  after_each(function()
    if dir then os.execute("rm -rf '" .. dir .. "'") end
  end)

  describe("paths", function()
    it("defaults to $XDG_STATE_HOME/provision, else ~/.local/state/provision", function()
      local env = { XDG_STATE_HOME = "/x/state/", HOME = "/home/ana" }
      local function getenv(k) return env[k] end
      assert.are.equal("/x/state/provision/journal.sqlite", journal.default_path(getenv))
      env.XDG_STATE_HOME = "relative/state"   -- the XDG spec says: ignore it
      assert.are.equal("/home/ana/.local/state/provision/journal.sqlite", journal.default_path(getenv))
      env.XDG_STATE_HOME = nil
      assert.are.equal("/home/ana/.local/state/provision/journal.sqlite", journal.default_path(getenv))
      env.HOME = nil
      local p, err = journal.default_path(getenv)
      assert.is_nil(p)
      assert.is_truthy(tostring(err):find("XDG_STATE_HOME", 1, true))
    end)

    it("creates the default path's missing folders 0700 and the file 0600", function()
      local env = function(k) return ({ XDG_STATE_HOME = dir .. "/state" })[k] end
      local target = journal.default_path(env)
      local getenv = os.getenv
      os.getenv = env              -- luacheck: ignore 122
      local j, err = journal.open()
      os.getenv = getenv           -- luacheck: ignore 122
      assert(j, err)
      assert.are.equal(target, j.path)
      assert(j:close())
      assert.are.equal("700", proc.capture("stat -c %a '" .. dir .. "/state'"):gsub("%s", ""))
      assert.are.equal("700", proc.capture("stat -c %a '" .. dir .. "/state/provision'"):gsub("%s", ""))
      assert.are.equal("600", proc.capture("stat -c %a '" .. target .. "'"):gsub("%s", ""))
    end)

    it("reports a path it cannot create, and makes no folder for a path given", function()
      proc.write_file(dir .. "/file", "x")
      local err = refused(function() return journal.open(dir .. "/file/sub/journal.sqlite") end)
      assert.are.equal("journal", err.kind)
      assert.is_truthy(err.message:find(dir .. "/file/sub/journal.sqlite", 1, true), err.message)
      -- a mistyped --journal is an error, not a journal in a new folder
      err = refused(function() return journal.open(dir .. "/typo/journal.sqlite") end)
      assert.is_truthy(err.message:find("the folder " .. dir .. "/typo does not exist", 1, true), err.message)
      assert.is_false(proc.sh("test -e '" .. dir .. "/typo'"))
      -- what the shell said, without the shell's words
      err = refused(function() return journal.open("/proc/journal.sqlite") end)
      assert.is_nil(err.message:find("sh:", 1, true), err.message)
      assert.is_truthy(err.message:find("cannot create journal /proc/journal.sqlite: ", 1, true), err.message)
    end)

    it("picks the backend by prefix: sqlite: and sqlite:// work, an unknown scheme is refused", function()
      assert(assert(journal.open("sqlite:" .. path)):close())
      assert(assert(journal.open("sqlite://" .. path)):close())
      assert(assert(journal.open({ path = path, backend = "sqlite" })):close())
      local err = refused(function() return journal.open("postgres://db.example/provision") end)
      assert.are.equal("JournalBackendError", err.class)
      assert.is_truthy(err.message:find("postgres", 1, true))
      assert.is_truthy(err.message:find("sqlite", 1, true))
      refused(function() return journal.open({ path = "sqlite:" .. path, backend = "postgres" }) end, "does not match")
    end)
  end)

  describe("SQLite settings and schema", function()
    it("uses WAL and synchronous=FULL, with a busy timeout", function()
      local j = assert(journal.open({ path = path, busy_timeout_ms = 4321 }))
      local info = assert(j:info())
      assert.are.equal("sqlite", info.backend)
      assert.are.equal("wal", info.journal_mode)
      assert.are.equal("full", info.synchronous)   -- per connection: asked of the journal's own
      assert.are.equal(4321, info.busy_timeout_ms)
      assert.is_true(info.foreign_keys)
      assert.are.equal(1, info.schema_version)
      assert(j:close())
      -- WAL is a property of the file: another connection sees it
      assert.are.equal("wal", scalar(path, "PRAGMA journal_mode"))
    end)

    it("creates the schema once; reopening reads the same data", function()
      local j = assert(journal.open(path))
      local run = assert(j:begin_run({ roster_digest = "d1", systems = { "agilicus" } }))
      local ids = assert(run:intend(steps("a", 3)))
      assert(run:settle(ids[1], { outcome = "ok", status = 201 }))
      assert(j:close())
      local objects = scalar(path, "SELECT count(*) FROM sqlite_master")
      for _ = 1, 2 do
        j = assert(journal.open(path))
        local r = assert(j:run(run.id))
        assert.are.equal(3, #r.steps)
        assert.are.equal("ok", r.steps[1].outcome)
        assert.are.same({ "agilicus" }, r.systems)
        assert.are.equal(2, #assert(j:unsettled(run.id)))
        assert(j:close())
      end
      assert.are.equal(objects, scalar(path, "SELECT count(*) FROM sqlite_master"))
      assert.are.equal(1, scalar(path, "SELECT count(*) FROM runs"))
      assert.are.equal(1, scalar(path, "PRAGMA user_version"))
    end)

    it("refuses a journal with a newer schema version, clearly", function()
      assert(assert(journal.open(path)):close())
      raw(path, "PRAGMA user_version = 99")
      local err = refused(function() return journal.open(path) end)
      assert.are.equal("JournalSchemaError", err.class)
      assert.is_truthy(err.message:find("schema version 99", 1, true), err.message)
      assert.is_truthy(err.message:find("newer", 1, true), err.message)
    end)

    it("refuses a file that is not a journal, and leaves it as it was", function()
      proc.write_file(path, "name,email\nAna,ana@example.com\n")
      local err = refused(function() return journal.open(path) end)
      assert.is_truthy(err.message:find("not a provision journal", 1, true), err.message)
      assert.are.equal("name,email\nAna,ana@example.com\n", proc.read_file(path))

      local other = dir .. "/other.sqlite"
      raw(other, "CREATE TABLE things (id INTEGER PRIMARY KEY)")
      err = refused(function() return journal.open(other) end)
      assert.is_truthy(err.message:find("not a provision journal", 1, true), err.message)
      assert.are.equal("delete", scalar(other, "PRAGMA journal_mode"))   -- not switched to WAL
      assert.are.equal(0, scalar(other, "SELECT count(*) FROM sqlite_master WHERE name = 'runs'"))
    end)
  end)

  describe("interface", function()
    local j
    before_each(function() j = assert(journal.open({ path = path, settle_batch = 3 })) end)
    after_each(function() if j then j:close() end end)

    it("records who ran it without $USER or $LOGNAME (a service, a container): the user of the uid", function()
      local getenv = os.getenv
      os.getenv = function(name)   -- luacheck: ignore 122
        if name == "USER" or name == "LOGNAME" then return nil end
        return getenv(name)
      end
      local run, err = j:begin_run({ roster_digest = "sha256:abc", systems = { "agilicus" } })
      os.getenv = getenv           -- luacheck: ignore 122
      assert(run, err)
      assert(run:finish({ status = "done" }))
      local expect = proc.capture("id -un"):gsub("%s+$", "")
      assert.is_true(#expect > 0)
      assert.are.equal(expect, assert(j:runs())[1].who)
    end)

    it("round-trips a run: begin, intend, settle, finish, runs, run", function()
      local run = assert(j:begin_run({ roster_digest = "sha256:abc", systems = { "agilicus", "docspace" },
                                       who = "ana", host = "ops-1", argv_summary = "apply roster.csv" }))
      assert.is_number(run.id)
      local ids = assert(run:intend({
        { system = "docspace", key = "b@example.com", action = "update", operation = "PortalUsersApi.update_member",
          detail = { changed = { "firstName" }, firstName = "Bo" } },
        { system = "agilicus", key = "a@example.com", action = "create", operation = "UsersApi.create_user",
          detail = { email = "a@example.com" } },
        { system = "agilicus", key = "a@example.com", action = "disable" },
      }))
      assert.are.equal(3, #ids)
      assert.is_true(ids[1] < ids[2] and ids[2] < ids[3])
      assert(run:settle(ids[1], { outcome = "ok", status = 200, request_id = "r-1", record_id = 17 }))
      assert(run:settle_many({
        { id = ids[2], outcome = "failed", status = 409, error_class = "ConflictError", message = "exists" },
        { id = ids[3], outcome = "unknown", message = "timed out" },
      }))
      -- the unknown answer, then a read-back: both kept, the newest counts
      assert(run:settle(ids[3], { outcome = "exists", settled_by = "read_back", record_id = "u-9" }))
      assert(run:finish({ status = "done", summary = { updated = 1, failed = 1 } }))

      local list = assert(j:runs())
      assert.are.equal(1, #list)
      local row = list[1]
      assert.are.equal(run.id, row.id)
      assert.are.equal("done", row.status)
      assert.are.equal("apply", row.mode)
      assert.are.equal("ana", row.who)
      assert.are.equal("ops-1", row.host)
      assert.are.equal("sha256:abc", row.roster_digest)
      assert.are.equal("apply roster.csv", row.argv_summary)
      assert.is_number(row.pid)
      assert.is_string(row.started_at)
      assert.is_string(row.ended_at)
      assert.are.same({ updated = 1, failed = 1 }, row.summary)
      assert.are.same({ total = 3, unsettled = 0, ok = 1, failed = 1, exists = 1 }, row.counts)

      local r = assert(j:run(run.id))
      assert.are.same({ "agilicus", "docspace" }, r.systems)
      -- ordered by system, person, step
      assert.are.same({ ids[2], ids[3], ids[1] }, { r.steps[1].id, r.steps[2].id, r.steps[3].id })
      assert.are.equal(2, #r.by_system)
      assert.are.equal("agilicus", r.by_system[1].system)
      assert.are.equal("a@example.com", r.by_system[1].people[1].key)
      assert.are.equal(2, #r.by_system[1].people[1].steps)
      assert.are.equal("docspace", r.by_system[2].system)
      local upd = r.by_system[2].people[1].steps[1]
      assert.are.equal("update", upd.action)
      assert.are.equal("PortalUsersApi.update_member", upd.operation)
      assert.are.same({ changed = { "firstName" }, firstName = "Bo" }, upd.detail)
      assert.are.equal("ok", upd.outcome)
      assert.are.equal(200, upd.status)
      assert.are.equal("r-1", upd.request_id)
      assert.are.equal("17", upd.record_id)
      assert.are.equal("response", upd.settled_by)
      assert.is_string(upd.intended_at)
      assert.is_string(upd.settled_at)
      local created = r.steps[1]
      assert.are.equal("failed", created.outcome)
      assert.are.equal(409, created.status)
      assert.are.equal("ConflictError", created.error_class)
      assert.are.equal("exists", created.message)
      local disabled = r.steps[2]
      assert.are.equal("exists", disabled.outcome)
      assert.are.equal("read_back", disabled.settled_by)
      assert.are.equal("u-9", disabled.record_id)
      assert.are.equal(2, #disabled.history)
      assert.are.equal("unknown", disabled.history[1].outcome)
      assert.are.equal("timed out", disabled.history[1].message)
    end)

    it("buffers settles: written at settle_batch, with the next intend, on flush and on close", function()
      local run = assert(j:begin_run({ roster_digest = "d" }))
      local ids = assert(run:intend(steps("b", 6)))
      local function stored() return scalar(path, "SELECT count(*) FROM outcomes") end
      assert(run:settle(ids[1], { outcome = "ok" }))
      assert(run:settle(ids[2], { outcome = "ok" }))
      assert.are.equal(0, stored())
      assert(run:settle(ids[3], { outcome = "ok" }))   -- the third reaches settle_batch = 3
      assert.are.equal(3, stored())
      assert(run:settle(ids[4], { outcome = "ok" }))
      assert(run:intend(steps("c", 1)))                -- same transaction as the intent
      assert.are.equal(4, stored())
      assert(run:settle(ids[5], { outcome = "ok" }))
      assert(run:flush())
      assert.are.equal(5, stored())
      assert(run:settle(ids[6], { outcome = "ok" }))
      assert(j:close())
      j = nil
      assert.are.equal(6, stored())
    end)

    it("settle_interval_s = 0 and settle_batch = 1 write every settle at once", function()
      for _, opts in ipairs({ { settle_interval_s = 0 }, { settle_batch = 1 } }) do
        opts.path = path
        local k = assert(journal.open(opts))
        local run = assert(k:begin_run({ roster_digest = "now" }))
        local ids = assert(run:intend(steps("n", 1)))
        local before = scalar(path, "SELECT count(*) FROM outcomes")
        assert(run:settle(ids[1], { outcome = "ok" }))
        assert.are.equal(before + 1, scalar(path, "SELECT count(*) FROM outcomes"))
        assert(k:close())
      end
    end)

    it("lists unsettled steps by run, by roster, or all, and unknown answers on request", function()
      local run = assert(j:begin_run({ roster_digest = "r1" }))
      local ids = assert(run:intend(steps("u", 4)))
      assert(run:settle_many({ { id = ids[1], outcome = "ok" }, { id = ids[2], outcome = "unknown" } }))
      assert(run:flush())
      local other = assert(j:begin_run({ roster_digest = "r2" }))
      local oid = assert(other:intend(steps("o", 1)))[1]
      assert.are.same({ ids[3], ids[4] }, ids_of(assert(j:unsettled(run.id))))
      assert.are.same({ ids[3], ids[4] }, ids_of(assert(j:unsettled("r1"))))
      assert.are.same({ ids[2], ids[3], ids[4] }, ids_of(assert(j:unsettled("r1", { include_unknown = true }))))
      assert.are.same({ ids[3], ids[4], oid }, ids_of(assert(j:unsettled())))
      assert.are.same({}, assert(j:unsettled("no-such-roster")))
      local s = assert(j:unsettled(run.id))[1]
      assert.are.equal(run.id, s.run_id)
      assert.are.equal("agilicus", s.system)
      assert.are.equal("u3@example.com", s.key)
      assert.are.equal("create", s.action)
      assert.are.same({ email = "u3@example.com" }, s.detail)
      assert.are.equal("JournalNotFoundError", refused(function() return j:unsettled(9999) end).class)
    end)

    it("resumes: latest_unfinished, leftovers across a chain of killed runs, settled by read-back", function()
      local a = assert(j:begin_run({ roster_digest = "R" }))
      local a_ids = assert(a:intend(steps("a", 2)))
      assert(j:close())   -- as if killed: never finished
      j = assert(journal.open(path))
      assert.are.equal(a.id, assert(j:latest_unfinished("R")).id)
      assert.are.equal(a.id, assert(j:latest_unfinished()).id)
      assert.is_nil(j:latest_unfinished("other"))
      local b = assert(j:begin_run({ roster_digest = "R", resume_of = a.id }))
      local b_ids = assert(b:intend(steps("b", 1)))
      assert(j:close())   -- killed again before settling a's leftovers
      j = assert(journal.open(path))
      local latest = assert(j:latest_unfinished("R"))
      assert.are.equal(b.id, latest.id)
      assert.are.equal(a.id, latest.resume_of)
      -- the killed run ended when it was resumed, and says so
      local ra0 = assert(j:run(a.id))
      assert.are.equal("resumed", ra0.status)
      assert.is_string(ra0.ended_at)
      assert.are.equal(b.id, ra0.resumed_by)
      assert.are.same({ a_ids[1], a_ids[2], b_ids[1] }, ids_of(assert(j:unsettled("R"))))
      -- one resume wins; a second one of the same run is refused
      local c = assert(j:begin_run({ roster_digest = "R", resume_of = b.id }))
      assert.are.equal("JournalConflictError",
        refused(function() return j:begin_run({ roster_digest = "R", resume_of = b.id }) end).class)
      assert.are.equal(c.id, assert(j:run(b.id)).resumed_by)
      -- a leftover of an earlier run in the chain may be settled; done waits for all of them
      assert(c:settle_many({ { id = a_ids[1], outcome = "exists", settled_by = "read_back" },
                             { id = b_ids[1], outcome = "absent", settled_by = "read_back" } }))
      assert.are.equal("JournalStateError", refused(function() return c:finish({ status = "done" }) end).class)
      assert(c:settle(a_ids[2], { outcome = "ok", settled_by = "read_back" }))
      assert(c:finish({ status = "done" }))
      assert.is_nil(j:latest_unfinished("R"))
      assert.are.same({}, assert(j:unsettled("R")))
      local ra = assert(j:run(a.id))
      assert.are.equal(c.id, ra.steps[1].settled_in)
      assert.are.equal("read_back", ra.steps[1].settled_by)
      -- a run finished done is not resumed
      refused(function() return j:begin_run({ roster_digest = "R", resume_of = c.id }) end, "nothing to resume")
      refused(function() return j:begin_run({ roster_digest = "R", resume_of = 9999 }) end, "does not exist")
      -- an interrupted run is resumable
      local d = assert(j:begin_run({ roster_digest = "R" }))
      assert(d:finish({ status = "interrupted" }))
      assert.are.equal(d.id, assert(j:latest_unfinished("R")).id)
    end)

    it("limits and filters runs, newest first", function()
      for i = 1, 5 do
        local run = assert(j:begin_run({ roster_digest = (i % 2 == 0) and "even" or "odd" }))
        assert(run:finish({ status = "failed" }))
      end
      local list = assert(j:runs({ limit = 2 }))
      assert.are.equal(2, #list)
      assert.is_true(list[1].id > list[2].id)
      assert.are.equal(3, #assert(j:runs({ roster_digest = "odd" })))
      assert.are.same({ total = 0, unsettled = 0 }, list[1].counts)
    end)

    it("refuses a step of a run outside its chain", function()
      local one = assert(j:begin_run({ roster_digest = "x" }))
      local two = assert(j:begin_run({ roster_digest = "y" }))
      local id = assert(one:intend(steps("x", 1)))[1]
      refused(function() return two:settle(id, { outcome = "ok" }) end, "not in run")
      refused(function() return two:settle(123456, { outcome = "ok" }) end, "not in run")
    end)

    it("closes: a finished run and a closed journal answer errors", function()
      local run = assert(j:begin_run({ roster_digest = "z" }))
      assert(run:finish({ status = "failed" }))
      refused(function() return run:intend(steps("z", 1)) end, "finished")
      refused(function() return run:finish({ status = "done" }) end, "finished")
      assert(j:close())
      assert(j:close())
      refused(function() return j:begin_run({ roster_digest = "z" }) end, "closed")
      refused(function() return j:runs() end, "closed")
      j = nil
    end)
  end)

  describe("secrets", function()
    it("drops the values of secret-named fields and masks credentials in text", function()
      local j = assert(journal.open({ path = path, settle_batch = 1 }))
      local run = assert(j:begin_run({ roster_digest = "s",
        argv_summary = "apply roster.csv --password=Hunter2-argv -H 'Authorization: Bearer eyJargv.tok'" }))
      local ids = assert(run:intend({ { system = "agilicus", key = "a@example.com", action = "update",
        detail = { changed = { "password", "email" }, email = "a@example.com", password = "Hunter2-detail",
                   token = "tok-detail-1", api_key = "ak-detail-2", Authorization = "Basic YWxhZGRpbjpvcGVu",
                   ["X-Api-Key"] = "ak-detail-3",
                   nested = { client_secret = "cs-detail-4", list = { { refresh_token = "rt-detail-5" } } },
                   header = "Bearer eyJdetail.6" } } }))
      assert(run:settle(ids[1], { outcome = "failed", status = 401,
        message = "rejected: token=tok-msg-7 password: Hunter2-msg, Authorization: Bearer eyJmsg.8" }))
      local r = assert(j:run(run.id))
      local d = r.steps[1].detail
      assert.are.same({ "password", "email" }, d.changed)   -- names stay, an audit sees what changed
      assert.are.equal("a@example.com", d.email)
      for _, k in ipairs({ "password", "token", "api_key", "Authorization", "X-Api-Key", "header" }) do
        assert.are.equal(redact.MARK, d[k], k)
      end
      assert.are.equal(redact.MARK, d.nested.client_secret)
      assert.are.equal(redact.MARK, d.nested.list[1].refresh_token)
      assert.is_falsy(r.steps[1].message:find("tok-msg-7", 1, true))
      assert.is_truthy(r.steps[1].message:find("rejected", 1, true))

      -- nowhere in the files, WAL included, before and after the checkpoint at close
      local secrets = { "Hunter2", "eyJ", "tok-", "ak-detail", "YWxhZGRpbjpvcGVu", "cs-detail", "rt-detail" }
      local function scan()
        for _, f in ipairs({ path, path .. "-wal" }) do
          local bytes = proc.read_file(f) or ""
          for _, s in ipairs(secrets) do
            assert.is_falsy(bytes:find(s, 1, true), s .. " found in " .. f)
          end
        end
      end
      assert.is_truthy(proc.exists(path .. "-wal"))
      scan()
      assert(j:close())
      scan()
    end)

    it("caps a message at 1 KB without splitting a character, on one line", function()
      local j = assert(journal.open({ path = path, settle_batch = 1 }))
      local run = assert(j:begin_run({ roster_digest = "m" }))
      local id = assert(run:intend(steps("m", 1)))[1]
      assert(run:settle(id, { outcome = "failed", message = "line one\nline two " .. string.rep("é", 3000) }))
      local msg = assert(j:run(run.id)).steps[1].message
      assert.is_true(#msg <= 1024, #msg)
      assert.is_falsy(msg:find("\n", 1, true))
      assert.is_truthy(msg:find("^line one line two é"))
      assert.is_truthy(msg:find("é...$"), msg:sub(-8))
      assert(j:close())
    end)
  end)

  describe("bad input", function()
    local j, run, id
    before_each(function()
      j = assert(journal.open(path))
      run = assert(j:begin_run({ roster_digest = "bad" }))
      id = assert(run:intend(steps("bad", 1)))[1]
    end)
    after_each(function() j:close() end)

    it("open", function()
      refused(function() return journal.open(42) end, "options table")
      refused(function() return journal.open({ path = path, nope = 1 }) end, "unknown field nope")
      refused(function() return journal.open({ path = "" }) end)
      refused(function() return journal.open({ path = path, settle_batch = 0 }) end, "settle_batch")
      refused(function() return journal.open({ path = path, busy_timeout_ms = "x" }) end, "busy_timeout_ms")
      refused(function() return journal.open({ path = path, settle_interval_s = -1 }) end, "settle_interval_s")
    end)

    it("begin_run", function()
      refused(function() return j:begin_run() end, "expected a table")
      refused(function() return j:begin_run({}) end, "roster_digest is required")
      refused(function() return j:begin_run({ roster_digest = 5 }) end, "must be a string")
      refused(function() return j:begin_run({ roster_digest = "" }) end, "empty")
      refused(function() return j:begin_run({ roster_digest = "d", systems = "agilicus" }) end, "systems")
      refused(function() return j:begin_run({ roster_digest = "d", systems = { 1 } }) end, "systems%[1%]")
      refused(function() return j:begin_run({ roster_digest = "d", resume_of = "1" }) end, "resume_of")
      refused(function() return j:begin_run({ roster_digest = "d", mode = "drop tables" }) end, "mode")
      refused(function() return j:begin_run({ roster_digest = "d", token = "x" }) end, "unknown field token")
    end)

    it("intend", function()
      refused(function() return run:intend("x") end, "list of steps")
      refused(function() return run:intend({ { system = "a" } }) end, "key is required")
      refused(function() return run:intend({ { system = "a", key = "k" } }) end, "action is required")
      refused(function() return run:intend({ { system = "a", key = "k\0x", action = "create" } }) end, "control")
      refused(function() return run:intend({ { system = "a", key = "k", action = "create", detail = "x" } }) end,
        "detail must be a table")
      refused(function() return run:intend({ { system = "a", key = "k", action = "create", detail = { f = print } } }) end,
        "cannot encode")
      refused(function() return run:intend({ { system = "a", key = "k", action = "create", details = {} } }) end,
        "unknown field details")
      refused(function() return run:intend({ { system = "a", key = "k", action = "create" }, "second" }) end,
        "steps%[2%]")
      refused(function()
        return run:intend({ { system = "a", key = "k", action = "create", detail = { big = string.rep("x", 20000) } } })
      end, "larger than")
      -- nothing half-written
      assert.are.equal(1, scalar(path, "SELECT count(*) FROM steps"))
    end)

    it("settle, settle_many, finish", function()
      refused(function() return run:settle("1", { outcome = "ok" }) end, "step id")
      refused(function() return run:settle(id, "ok") end, "must be a table")
      refused(function() return run:settle(id, { outcome = "great" }) end, "outcome must be one of")
      refused(function() return run:settle(id, { outcome = "ok", status = "200" }) end, "status")
      refused(function() return run:settle(id, { outcome = "ok", settled_by = "guess" }) end, "settled_by")
      refused(function() return run:settle(id, { outcome = "ok", message = 5 }) end, "message")
      refused(function() return run:settle(id, { outcome = "ok", body = "{}" }) end, "unknown field body")
      refused(function() return run:settle(id, { outcome = "ok", headers = {} }) end, "unknown field headers")
      refused(function() return run:settle_many("x") end, "list")
      -- one bad entry: none of them is taken
      refused(function()
        return run:settle_many({ { id = id, outcome = "ok" }, { id = id, outcome = "nope" } })
      end, "%[2%]")
      assert(run:flush())
      assert.are.equal(0, scalar(path, "SELECT count(*) FROM outcomes"))
      refused(function() return run:finish("done") end, "expected a table")
      refused(function() return run:finish({ status = "maybe" }) end, "status must be")
      refused(function() return run:finish({ status = "failed", summary = "x" }) end, "summary")
    end)

    it("queries", function()
      refused(function() return j:runs({ limit = 0 }) end, "limit")
      refused(function() return j:runs({ limit = "x" }) end, "limit")
      refused(function() return j:runs("x") end, "options")
      refused(function() return j:run("x") end, "run id")
      refused(function() return j:run(0) end, "run id")
      refused(function() return j:run(9999) end, "no run 9999")
      refused(function() return j:unsettled({}) end, "expected a run id")
      refused(function() return j:unsettled(1.5) end, "run id")
      refused(function() return j:latest_unfinished(7) end, "roster_digest")
    end)
  end)

  describe("processes", function()
    -- Starts the child; returns its PID and the pipe of its output.
    local function spawn(args)
      local cmd = ("exec 2>&1; lua5.4 %s %s & echo $!"):format(CHILD, args)
      local p = assert(io.popen(cmd, "r"))
      local pid = assert(tonumber(p:read("l")), "no pid")
      return pid, p
    end

    local function parse(lines)
      local seen = { intended = {}, settle = {}, flushed_upto = {}, readback = {}, runs = {} }
      local settle_so_far = {}
      for _, line in ipairs(lines) do
        local word, rest = line:match("^(%S+)%s*(.*)$")
        if word == "intended" or word == "settle" or word == "readback" then
          for n in rest:gmatch("%d+") do
            local v = tonumber(n)
            seen[word][#seen[word] + 1] = v
            if word == "settle" then settle_so_far[#settle_so_far + 1] = v end
          end
        elseif word == "flushed" then
          for _, v in ipairs(settle_so_far) do seen.flushed_upto[#seen.flushed_upto + 1] = v end
          settle_so_far = {}
        elseif word == "run" then
          seen.runs[#seen.runs + 1] = tonumber(rest)
        elseif word == "finished" then
          seen.finished = tonumber(rest)
        else
          error("child said: " .. line)
        end
      end
      return seen
    end

    local function set(list)
      local s = {}
      for _, v in ipairs(list) do s[v] = true end
      return s
    end

    -- What the journal must hold whatever the moment of the kill.
    local function check_invariants(digest, seen, ctx)
      assert.are.equal("ok", scalar(path, "PRAGMA integrity_check"), ctx)
      local steps_in_db = set(ids_of(raw(path, "SELECT id FROM steps")))
      for _, sid in ipairs(seen.intended) do
        assert.is_true(steps_in_db[sid] == true, ctx .. ": intended step " .. sid .. " lost")
      end
      assert.are.equal(0, scalar(path, "SELECT count(*) FROM outcomes WHERE step_id NOT IN (SELECT id FROM steps)"),
        ctx .. ": an outcome without its intent")
      assert.are.equal(0, scalar(path, "SELECT count(*) FROM (SELECT key FROM steps GROUP BY key HAVING count(*) > 1)"),
        ctx .. ": a step intended twice")
      local settled = set(ids_of(raw(path, "SELECT DISTINCT step_id AS id FROM outcomes")))
      for _, sid in ipairs(seen.flushed_upto) do
        assert.is_true(settled[sid] == true, ctx .. ": flushed settle of " .. sid .. " lost")
      end
      for _, sid in ipairs(seen.readback) do
        assert.is_true(settled[sid] == true, ctx .. ": read-back of " .. sid .. " lost")
      end
      local j = assert(journal.open(path))
      local unsettled = set(ids_of(assert(j:unsettled(digest))))
      local all_unsettled = set(ids_of(assert(j:unsettled())))
      assert(j:close())
      -- exactly the intents without an outcome (the journal keeps one roster here)
      for sid in pairs(steps_in_db) do
        assert.are.equal(not settled[sid], unsettled[sid] == true, ctx .. ": step " .. sid)
        assert.are.equal(not settled[sid], all_unsettled[sid] == true, ctx .. ": step " .. sid)
      end
      -- the answers that never came (ids divisible by 3) are among them, until a run finishes
      for _, sid in ipairs(seen.finished and {} or seen.intended) do
        if sid % 3 == 0 then assert.is_true(unsettled[sid] == true, ctx .. ": " .. sid .. " not unsettled") end
      end
    end

    it("loses nothing and duplicates nothing when killed by SIGKILL at any point, and resumes", function()
      math.randomseed(os.time(), proc.my_pid() or 0)
      local digest = "sha256:kill"
      local before = {}
      for round, batch in ipairs({ 1, 7, 32, 5 }) do
        local after = 2 + math.random(0, 25)   -- intend calls to let return before the kill
        local pid, p = spawn(("loop '%s' %s %d 0"):format(path, digest, batch))
        local lines, intends = {}, 0
        for line in p:lines() do
          lines[#lines + 1] = line
          if line:find("^intended") then intends = intends + 1 end
          if intends == after then
            assert.is_true(proc.sh("kill -KILL " .. pid), "kill failed")
            break
          end
        end
        for line in p:lines() do lines[#lines + 1] = line end   -- what it printed before it died
        p:close()
        local ctx = ("round %d (batch %d, killed after %d intends)"):format(round, batch, after)
        assert.are.equal(after, intends, ctx .. ": child ended early: " .. table.concat(lines, " | "))
        local seen = parse(lines)
        -- a resumed round first read back every leftover of the rounds before
        if round > 1 then
          local expect = {}
          for sid in pairs(before) do expect[#expect + 1] = sid end
          table.sort(expect)
          local got = { table.unpack(seen.readback) }
          table.sort(got)
          assert.are.same(expect, got, ctx .. ": read-back set")
        end
        check_invariants(digest, seen, ctx)
        local j = assert(journal.open(path))
        before = set(ids_of(assert(j:unsettled(digest))))
        assert(j:close())
      end
      -- the last resume runs to the end: nothing left over, every run accounted for
      local _, p = spawn(("loop '%s' %s 3 2"):format(path, digest))
      local lines = {}
      for line in p:lines() do lines[#lines + 1] = line end
      p:close()
      local seen = parse(lines)
      assert.is_number(seen.finished, table.concat(lines, " | "))
      check_invariants(digest, seen, "final run")
      local j = assert(journal.open(path))
      assert.are.same({}, assert(j:unsettled(digest)))
      assert.is_nil(j:latest_unfinished(digest))
      local list = assert(j:runs())
      assert.are.equal(5, #list)
      assert.are.equal("done", list[1].status)
      for i = 2, 5 do
        assert.are.equal(list[i - 1].id, list[i].resumed_by)
        assert.are.equal("resumed", list[i].status)   -- killed runs never finished: they end resumed ...
        assert.are.equal(0, list[i].counts.unsettled)  -- ... but their steps are all settled
      end
      assert(j:close())
    end)

    -- Processes that meet on a NEW file race to create it and to switch it
    -- to WAL (where SQLite answers one of them "busy" without waiting), so
    -- the race is run several times, three processes each, then once long.
    it("processes writing one new journal at once do not fail (busy timeout)", function()
      local function race(file, writers, n)
        local cmds = {}
        for w = 1, writers do cmds[w] = ("lua5.4 %s writer '%s' w%d %d &"):format(CHILD, file, w, n) end
        local out = proc.capture(("exec 2>&1; timeout 600 sh -c \"%s wait\""):format(table.concat(cmds, " ")))
        local finished = select(2, out:gsub("finished %d+", ""))
        assert.are.equal(writers, finished, out)
        assert.are.equal(writers * n, scalar(file, "SELECT count(*) FROM steps"))
        assert.are.equal(writers * n, scalar(file, "SELECT count(*) FROM outcomes"))
        assert.are.equal(writers, scalar(file, "SELECT count(*) FROM runs WHERE status = 'done'"))
        assert.are.equal("ok", scalar(file, "PRAGMA integrity_check"))
      end
      for round = 1, 8 do race(dir .. "/race" .. round .. ".sqlite", 3, 10) end
      race(path, 2, 150)
    end)

    it("a lock held longer than the busy timeout is an error that loses nothing", function()
      local j = assert(journal.open({ path = path, busy_timeout_ms = 100 }))
      local run = assert(j:begin_run({ roster_digest = "busy" }))
      local ids = assert(run:intend(steps("busy", 1)))
      assert(run:settle(ids[1], { outcome = "ok" }))   -- buffered
      -- another connection takes the write lock and keeps it
      local env = luasql.sqlite3()
      local conn = assert(env:connect(path))
      assert(conn:execute("BEGIN IMMEDIATE"))
      local err = refused(function() return run:intend(steps("later", 1)) end)
      assert.are.equal("JournalBusyError", err.class)
      assert(conn:execute("ROLLBACK"))
      conn:close()
      env:close()
      -- the buffered settle was kept, and goes with the retried intent
      local later = assert(run:intend(steps("later", 1)))
      assert.are.equal(1, #later)
      assert.are.equal(1, scalar(path, "SELECT count(*) FROM outcomes"))
      assert(j:close())
    end)
  end)
end)
