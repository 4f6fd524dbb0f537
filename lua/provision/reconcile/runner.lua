-- Many small workflows (tasks) through one bulk-engine run: reading every
-- system's listing page by page, reading records one by one, applying each
-- system's steps. A task hands out calls and hears how each ended:
--
--   task.client           the client its calls go to (for the gate below)
--   task:next()  -> call  { opname, args = {...}, n = count } to send now,
--                          false (nothing now: waiting for an answer), or
--                          nil (the task is done)
--   task:done(call, value, info_or_err)
--
-- runner.run(tasks, opts) -> summary (the engine's), or raises on a bug.
-- Tasks are asked in turn, so systems proceed side by side; a client never
-- has more than opts.concurrency calls handed out and unfinished (the
-- engine's lane size), so nothing queues up behind a slow system.
-- opts: concurrency (per client, default 8), rate, on_progress,
-- progress_interval.
local engine = require("provision.engine")

local unpack = table.unpack or unpack   -- luacheck: ignore 143

local runner = {}

function runner.run(tasks, opts)
  opts = opts or {}
  local limit = opts.concurrency or 8
  local active = {}
  for i, t in ipairs(tasks) do active[i] = t end
  local outstanding = {}          -- client -> calls handed out and not ended
  local by_index, index = {}, 0
  local cursor = 0

  local function source()
    local n = #active
    if n == 0 then return nil end
    for _ = 1, n do
      cursor = cursor % #active + 1
      local task = active[cursor]
      local c = task.client
      if (outstanding[c] or 0) < limit then
        local call = task:next()
        if call == nil then
          table.remove(active, cursor)
          cursor = cursor - 1
          if #active == 0 then return nil end
        elseif call then
          index = index + 1
          by_index[index] = { task = task, call = call }
          outstanding[c] = (outstanding[c] or 0) + 1
          local job, err = c:prepare(call[1], unpack(call.args or {}, 1, call.n or #(call.args or {})))
          if not job then return { index = index, failed = err } end
          job.index = index
          return job
        end
      end
    end
    return false
  end

  local _, summary = engine.run(source, {
    concurrency = limit, rate = opts.rate, collect = false,
    on_progress = opts.on_progress, progress_interval = opts.progress_interval,
    on_result = function(i, value, info)
      local entry = by_index[i]
      by_index[i] = nil
      local c = entry.task.client
      outstanding[c] = outstanding[c] - 1
      entry.task:done(entry.call, value, info)
    end,
  })
  -- a task still waiting with nothing in flight would be a bug in a task
  for _, t in ipairs(active) do
    local call = t:next()
    if call ~= nil then
      error("reconcile: a task was left waiting with nothing in flight (" .. tostring(t.name) .. ")", 0)
    end
  end
  return summary
end

return runner
