-- A process that writes a journal, for tests/spec/journal_spec.lua to kill
-- (SIGKILL, by PID) or to run two at a time. It prints one line after each
-- call that returned, so that the test knows what the journal promised:
--   run R                    the run began (resuming the latest unfinished one, if any)
--   readback ID...           those leftover steps were settled and flushed
--   intended ID...           intend() returned these ids (durable)
--   settle ID...             settle() returned for these (buffered, maybe not durable)
--   flushed                  flush() returned: every settle so far is durable
--   finished R               finish{status="done"} returned
--   error MESSAGE            something failed (exit status 1)
--
--   lua5.4 journal_child.lua loop JOURNAL DIGEST BATCH ITERATIONS
--     intends BATCH steps per iteration; settles all but the ids divisible
--     by 3 (answers that never came); flushes every 4th iteration; after
--     ITERATIONS (0: forever) settles the rest and finishes done.
--   lua5.4 journal_child.lua writer JOURNAL DIGEST N
--     N one-step intends, each settled with settle_batch = 1, then done.
local journal = require("provision.journal")

io.stdout:setvbuf("line")

local mode, path, digest = arg[1], arg[2], arg[3]

local function say(...)
  io.stdout:write(table.concat({ ... }, " "), "\n")
end

local function check(v, err)
  if v == nil then
    say("error", tostring(err))
    os.exit(1)
  end
  return v
end

local function steps_for(run, i, n)
  local list = {}
  for k = 1, n do
    list[k] = {
      system = (k % 2 == 0) and "docspace" or "agilicus",
      key = ("p%d-%d-%d@example.com"):format(run.id, i, k),
      action = "create",
      operation = "UsersApi.create_user",
      detail = { email = ("p%d-%d-%d@example.com"):format(run.id, i, k), first_name = "Ana" },
    }
  end
  return list
end

if mode == "loop" then
  local batch, iterations = tonumber(arg[4]), tonumber(arg[5])
  local j = check(journal.open({ path = path, settle_batch = 16 }))
  local prev = j:latest_unfinished(digest)
  local run = check(j:begin_run({ roster_digest = digest, systems = { "agilicus", "docspace" },
                                  resume_of = prev and prev.id or nil }))
  say("run", run.id)
  if prev then
    local left = check(j:unsettled(run.id))
    local list, ids = {}, {}
    for i, s in ipairs(left) do
      list[i] = { id = s.id, outcome = "exists", settled_by = "read_back" }
      ids[i] = s.id
    end
    check(run:settle_many(list))
    check(run:flush())
    say("readback", table.concat(ids, " "))
  end
  local open_ids = {}
  local i = 0
  while iterations == 0 or i < iterations do
    i = i + 1
    local ids = check(run:intend(steps_for(run, i, batch)))
    say("intended", table.concat(ids, " "))
    local settled = {}
    for _, id in ipairs(ids) do
      if id % 3 ~= 0 then
        check(run:settle(id, { outcome = "ok", status = 201, request_id = "req-" .. id }))
        settled[#settled + 1] = id
      else
        open_ids[#open_ids + 1] = id
      end
    end
    if #settled > 0 then say("settle", table.concat(settled, " ")) end
    if i % 4 == 0 then
      check(run:flush())
      say("flushed")
    end
  end
  for _, id in ipairs(open_ids) do
    check(run:settle(id, { outcome = "exists", settled_by = "read_back" }))
  end
  check(run:finish({ status = "done", summary = { iterations = i } }))
  say("finished", run.id)
  check(j:close())
elseif mode == "writer" then
  local n = tonumber(arg[4])
  local j = check(journal.open({ path = path, settle_batch = 1 }))
  local run = check(j:begin_run({ roster_digest = digest, systems = { "outpost" } }))
  for i = 1, n do
    local ids = check(run:intend({ { system = "outpost", key = digest .. "-" .. i, action = "create" } }))
    check(run:settle(ids[1], { outcome = "ok", status = 200 }))
  end
  check(run:finish({ status = "done" }))
  check(j:close())
  say("finished", run.id)
else
  say("error", "usage: journal_child.lua loop|writer JOURNAL DIGEST ...")
  os.exit(2)
end
