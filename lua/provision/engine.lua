-- The scheduler under every call: keeps up to N calls in flight per client,
-- paces them through the limiter of their API origin and credential, and
-- settles each one (done, retried after a delay, or checked by read-back
-- before anything is sent again), reporting each call as it ends.
--
-- A call is a job (Client:prepare), or a light job (provision.fastcall:
-- job.light, job:request() its attempt, job:answer(resp, now) the value
-- and info of an answer it takes, job:full() the job it becomes when it
-- does not); what one attempt sends and what its
-- answer means are the client's (Client:attempt_request, which runs the
-- before_request hooks; Client:after_attempt, which runs after_response and
-- on_retry, decides and reports the attempt's event; Client:conclude, which
-- runs on_error as a call ends). The engine owns time: which job goes next, who waits, and
-- for how long. call() is a run of one, all() and bulk() are runs of many.
--
--   engine.run(next_job, opts) -> results, summary
--     next_job()   -> job, or nil when there are no more, or false for "none
--                     now" (work that depends on calls still in flight: the
--                     engine asks again after the next call ends, and stops
--                     when nothing is in flight); a job may instead be
--                     {index = i, failed = err} (a call that could not be
--                     prepared: reported in order, nothing sent)
--     opts.concurrency   calls in flight per client (default 8)
--     opts.on_result(i, value, info_or_err)   as each call ends
--     opts.on_progress(stats)                 every opts.progress_interval
--                                             seconds (0.5) and at the end
--     opts.collect       false: do not keep results (a stream of 100,000)
--     opts.total         number of calls, when known (for progress)
local limiter = require("provision.limiter")
local stream = require("provision.transport.stream")
local retry = require("provision.retry")

local engine = {}

local PROGRESS_INTERVAL = 0.5
local MULTI_POLL = 0.005   -- seconds per stream when one run drives several transports
local MAX_WAIT = 1         -- the loop looks around at least this often (seconds)

-- A binary min-heap of jobs by `due`.
local function heap_push(h, job)
  local n = #h + 1
  h[n] = job
  while n > 1 do
    local p = math.floor(n / 2)
    if h[p].due <= h[n].due then break end
    h[p], h[n] = h[n], h[p]
    n = p
  end
end

local function heap_pop(h)
  local top = h[1]
  local n = #h
  h[1] = h[n]
  h[n] = nil
  n = n - 1
  local i = 1
  while true do
    local l, r, m = 2 * i, 2 * i + 1, i
    if l <= n and h[l].due < h[m].due then m = l end
    if r <= n and h[r].due < h[m].due then m = r end
    if m == i then break end
    h[i], h[m] = h[m], h[i]
    i = m
  end
  return top
end

local function new_summary()
  return { ok = 0, failed = 0, unknown = 0, retried = 0, throttled = 0, read_backs = 0,
           requests = 0, settled_by_read_back = 0, done = 0, elapsed = 0, rate = 0 }
end

-- Run state -----------------------------------------------------------------

local Run = {}
Run.__index = Run

local function new_run(next_job, opts)
  opts = opts or {}
  local self = setmetatable({
    next_job = next_job,
    exhausted = false,
    concurrency = opts.concurrency or 8,
    on_result = opts.on_result,
    on_progress = opts.on_progress,
    progress_interval = opts.progress_interval or PROGRESS_INTERVAL,
    collect = opts.collect ~= false,
    total = opts.total,
    rate = opts.rate,
    results = {},
    summary = new_summary(),
    lanes = {},           -- client -> {ready = {first, last, ...}, inflight, blocked_until}
    lane_list = {},
    timers = {},          -- heap of jobs waiting for a retry delay
    streams = {},         -- transport -> stream
    stream_list = {},
    inflight = 0,
    pending = 0,          -- jobs taken from next_job and not yet ended
    configured = {},      -- limiter -> previous ceiling (restored at the end)
  }, Run)
  return self
end

function Run:lane(client)
  local l = self.lanes[client]
  if not l then
    l = { client = client, queue = {}, head = 1, tail = 0, inflight = 0, blocked_until = 0 }
    self.lanes[client] = l
    self.lane_list[#self.lane_list + 1] = l
    if not self.clock then self.clock = client.transport.now end
  end
  return l
end

function Run:stream_for(transport)
  local s = self.streams[transport]
  if not s then
    local err
    s, err = stream.open(transport)
    if not s then return nil, err end
    self.streams[transport] = s
    self.stream_list[#self.stream_list + 1] = s
  end
  return s
end

local function enqueue(lane, job)
  lane.tail = lane.tail + 1
  lane.queue[lane.tail] = job
end

local function dequeue(lane)
  if lane.head > lane.tail then return nil end
  local job = lane.queue[lane.head]
  lane.queue[lane.head] = nil
  lane.head = lane.head + 1
  return job
end

-- The limiter a job's next attempt draws on (per origin and credential);
-- a client's `rate` is the ceiling of the limiters it uses unless they
-- have one.
local function limiter_for(job)
  local client = job.client
  -- the limiter of an operation's usual calls (no redirect, no per-call
  -- server) is the same every time: kept on the client per operation
  local cache = not job.url and not job.call.server and client.limiters
  local l = cache and cache[job.op]
  if not l then
    l = limiter.shared(client.transport, client:limiter_key(job))
    if cache then cache[job.op] = l end
  end
  if client.rate and not l.ceiling then l:configure(client.rate) end
  return l
end

engine.limiter_for = limiter_for   -- (bench/stages.lua prices it)

-- In a run with its own `rate`, that rate is the ceiling for the run only.
function Run:limiter_for(job)
  local l = limiter_for(job)
  if self.rate and not self.configured[l] then
    self.configured[l] = { ceiling = l.ceiling }
    l:configure(self.rate)
  end
  return l
end

function Run:finish_job(job, value, info)
  self.pending = self.pending - 1
  if job.read_back_of then return self:settled(job, value, info) end
  if value == nil and job.client then value, info = job.client:conclude(job, value, info) end
  local s = self.summary
  s.done = s.done + 1
  if value ~= nil then
    s.ok = s.ok + 1
    if type(info) == "table" and info.settled == "read_back" then
      s.settled_by_read_back = s.settled_by_read_back + 1
    end
  elseif type(info) == "table" and info.outcome == "unknown" then
    s.unknown = s.unknown + 1
  else
    s.failed = s.failed + 1
  end
  if self.collect then self.results[job.index] = { value, info } end
  if self.on_result then self.on_result(job.index, value, info) end
end

-- Takes a new job from the source; false when the source is done.
function Run:pull()
  if self.exhausted then return false end
  local job = self.next_job()
  if job == nil then
    self.exhausted = true
    return false
  end
  if job == false then
    self.starved = true
    return false
  end
  self.pending = self.pending + 1
  if job.failed then
    self:finish_job(job, nil, job.failed)
    return true
  end
  if job.deadline and not job.deadline_at then
    job.started = job.started or (self.clock and self.clock() or job.client.transport.now())
    job.deadline_at = job.started + job.deadline
  end
  enqueue(self.lanes[job.client] or self:lane(job.client), job)
  return true
end

-- Pulls jobs while some lane has a free slot and nothing queued to fill it.
function Run:refill()
  self.starved = false
  local lanes, concurrency = self.lane_list, self.concurrency
  while not self.exhausted do
    local room = #lanes == 0
    for i = 1, #lanes do
      local l = lanes[i]
      if l.inflight + (l.tail - l.head + 1) < concurrency then room = true; break end
    end
    if not room or not self:pull() then return end
  end
end

-- One attempt of `job` goes out now, or the job waits (limiter) or ends.
-- Returns true when the job left the lane's queue.
function Run:launch(lane, job, now)
  local client = job.client
  if job.deadline_at and now >= job.deadline_at then
    dequeue(lane)
    self:finish_job(job, client:deadline_error(job))
    return true
  end
  local lim = self.rate and self:limiter_for(job) or limiter_for(job)
  local wait = lim:reserve(now)
  if wait > 0 then
    if wait > job.policy.max_retry_after then
      dequeue(lane)
      self:finish_job(job, client:throttled_error(job, wait))
      return true
    end
    lane.blocked_until = now + wait
    return false
  end
  lane.queue[lane.head] = nil   -- dequeue: job is at the head (launch_ready peeked it)
  lane.head = lane.head + 1
  local req, err
  if job.light then req = job:request() else req, err = client:attempt_request(job) end
  if not req then
    err.attempts = job.attempt
    if job.maybe_applied then err.outcome = "unknown" elseif err.outcome == nil then err.outcome = "not_applied" end
    self:finish_job(job, nil, err)
    return true
  end
  if job.deadline_at then
    local left = job.deadline_at - now
    if req.timeout == nil or req.timeout == 0 or req.timeout > left then req.timeout = left end
  end
  local s, serr = self.streams[client.transport], nil
  if not s then s, serr = self:stream_for(client.transport) end
  if not s then
    self:finish_job(job, nil, client:transport_error(job, serr))
    return true
  end
  job.req, job.sent_at, job.limiter = req, now, lim
  lane.inflight = lane.inflight + 1
  self.inflight = self.inflight + 1
  self.summary.requests = self.summary.requests + 1
  if job.attempt > 0 and not job.read_back_of then self.summary.retried = self.summary.retried + 1 end
  s:add(req, job)
  return true
end

function Run:launch_ready(now)
  local lanes, concurrency = self.lane_list, self.concurrency
  for i = 1, #lanes do
    local lane = lanes[i]
    if lane.blocked_until <= now then
      local queue = lane.queue
      while lane.inflight < concurrency do
        local job = queue[lane.head]   -- peek
        if not job then break end
        if not self:launch(lane, job, now) then break end
      end
    end
  end
end

-- A call's attempt may have landed: its error (what Client:after_attempt
-- made of the answer) is kept, as the outcome if the read-back cannot tell,
-- and the read-back call is built. Returns the read-back job, or nil and
-- the error to end the call with.
local function begin_read_back(job, err)
  local client = job.client
  job.last_err, job.maybe_applied = err, true
  local child, cerr = client:read_back_job(job)
  if not child then
    err.read_back_error = tostring(cerr)   -- the outcome stays unknown
    return nil, err
  end
  child.deadline_at = job.deadline_at
  return child
end

-- What a finished read-back means for the call it checked:
--   "found", value, info    the earlier attempt landed: the call succeeded
--   "again", delay          it did not: sending again is now safe
--   "failed", err           it did not and no attempt is left, or the
--                           read-back itself failed (the outcome stays unknown)
local function after_read_back(parent, value, info)
  local client = parent.client
  local err = parent.last_err
  if value == nil then
    err.outcome = "unknown"
    err.read_back_error = tostring(info)
    return "failed", err
  end
  local found = client:read_back_found(parent, value)
  if found then
    return "found", found, { status = info and info.status, headers = info and info.headers,
                             settled = "read_back", attempts = parent.attempt,
                             read_backs = parent.read_backs }
  end
  parent.maybe_applied = false
  if parent.attempt < parent.policy.attempts then
    return "again", retry.backoff(parent.policy, parent.attempt, client.random)
  end
  err.outcome = "not_applied"
  err.settled = "read_back"
  return "failed", err
end

-- A read-back ended: the call it checked goes on or ends.
function Run:settled(child, value, info)
  local parent = child.read_back_of
  local what, a, b = after_read_back(parent, value, info)
  if what == "again" then
    local herr = parent.client:retrying(parent, a, "read_back_not_found")
    if herr then return self:finish_job(parent, nil, herr) end
    self:schedule(parent, self.clock(), a)
  elseif what == "found" then
    self:finish_job(parent, a, b)
  else
    self:finish_job(parent, nil, a)
  end
end

function Run:schedule(job, now, delay)
  if delay and delay > 0 then
    if job.deadline_at and now + delay >= job.deadline_at then
      self:finish_job(job, job.client:deadline_error(job))
      return
    end
    job.due = now + delay
    heap_push(self.timers, job)
  else
    enqueue(self:lane(job.client), job)
  end
end

-- One answer came back for job.
function Run:answered(job, resp)
  local client = job.client
  local lane = self.lanes[client]
  lane.inflight = lane.inflight - 1
  self.inflight = self.inflight - 1
  local now = self.clock()
  if job.light then
    local value, info = job:answer(resp, now)
    if value ~= nil then return self:finish_job(job, value, info) end
    local full, err = job:full()   -- the engine decides: the job with this attempt made
    if not full then return self:finish_job(job, nil, err) end
    job = full
  end
  local req = job.req
  job.req = nil
  if resp.status == 429 then self.summary.throttled = self.summary.throttled + 1 end
  local step, delay, err = client:after_attempt(job, req, resp, job.sent_at, now)
  if step == "again" then
    self:schedule(job, now, delay)
  elseif step == "settle" then
    local child
    child, err = begin_read_back(job, err)
    if not child then
      self:finish_job(job, nil, err)
      return
    end
    self.summary.read_backs = self.summary.read_backs + 1
    self.pending = self.pending + 1
    child.index = job.index
    child.started = now
    self:schedule(child, now, delay)
  else
    self:finish_job(job, delay, err)   -- "done", value, info
  end
end

function Run:next_wake(now)
  local wake = math.huge
  if self.timers[1] then wake = self.timers[1].due end
  local lanes = self.lane_list
  for i = 1, #lanes do
    local lane = lanes[i]
    if lane.head <= lane.tail and lane.inflight < self.concurrency and lane.blocked_until < wake then
      wake = lane.blocked_until
    end
  end
  if self.on_progress and self.next_progress < wake then wake = self.next_progress end
  local t = wake - now
  if t > MAX_WAIT then return MAX_WAIT end
  return t > 0 and t or 0
end

function Run:progress(now)
  local s = self.summary
  local stats = {}
  for k, v in pairs(s) do stats[k] = v end
  stats.elapsed = now - self.started
  stats.rate = stats.elapsed > 0 and s.done / stats.elapsed or 0
  stats.in_flight = self.inflight
  stats.waiting = #self.timers
  local queued = 0
  for _, l in ipairs(self.lane_list) do queued = queued + (l.tail - l.head + 1) end
  stats.queued = queued
  stats.pending = self.pending
  stats.total = self.total
  self.on_progress(stats)
  self.next_progress = now + self.progress_interval
end

function Run:poll(timeout)
  local list = self.stream_list
  if #list == 1 then return list[1]:poll(timeout) end
  local out = {}
  for _, s in ipairs(list) do
    local got = s:poll(0)
    for i = 1, #got do out[#out + 1] = got[i] end
  end
  if #out == 0 and timeout > 0 then
    local slice = timeout < MULTI_POLL and timeout or MULTI_POLL
    if #list == 0 then
      self.sleep(timeout)
    else
      local got = list[1]:poll(slice)
      for i = 1, #got do out[#out + 1] = got[i] end
    end
  end
  return out
end

function Run:loop()
  self:refill()
  if not self.clock then return end     -- nothing to send (every call failed to prepare)
  local first = self.lane_list[1]
  self.sleep = first.client.transport.sleep
  self.started = self.clock()
  self.next_progress = self.started + self.progress_interval
  while true do
    local now = self.clock()
    while self.timers[1] and self.timers[1].due <= now do
      local job = heap_pop(self.timers)
      enqueue(self:lane(job.client), job)
    end
    self:launch_ready(now)
    self:refill()
    self:launch_ready(now)
    if self.pending == 0 and (self.exhausted or self.starved) then break end
    if self.on_progress and now >= self.next_progress then self:progress(now) end
    local got = self:poll(self:next_wake(self.clock()))
    for i = 1, #got, 2 do self:answered(got[i], got[i + 1]) end
  end
end

function Run:close()
  for _, s in ipairs(self.stream_list) do s:close() end
  for l, prev in pairs(self.configured) do l.ceiling = prev.ceiling; l.rate = l:target() end
  self.configured = {}
end

-- Runs jobs to the end; see the top of the file.
function engine.run(next_job, opts)
  local run = new_run(next_job, opts)
  local ok, err = pcall(run.loop, run)
  run:close()
  if not ok then error(err, 0) end
  local s = run.summary
  if run.started then
    s.elapsed = run.clock() - run.started
    s.rate = s.elapsed > 0 and s.done / s.elapsed or 0
    if run.on_progress then run:progress(run.clock()) end
  end
  return run.results, s
end

-- engine.call's waits: false when the job's deadline would pass first.
local function call_wait(job, clock, sleep, seconds)
  if job.deadline_at and clock() + seconds >= job.deadline_at then return false end
  if seconds > 0 then sleep(seconds) end
  return true
end

-- A run of one without a stream: the same decisions, with blocking waits
-- (transport:send and transport.sleep). Returns value, info or nil, err.
-- With req and resp, the job's first attempt was already sent (at sent_at,
-- by provision.fastcall) and its answer is what happens next.
local function call_one(job, req, resp, sent_at)
  local client = job.client
  local transport = client.transport
  local clock, sleep = transport.now, transport.sleep
  if job.deadline and not job.deadline_at then
    job.started = job.started or sent_at or clock()
    job.deadline_at = job.started + job.deadline
  end
  while true do
    local now = sent_at or clock()
    sent_at = nil
    if not resp then
      if job.deadline_at and now >= job.deadline_at then return client:deadline_error(job) end
      local lim = limiter_for(job)
      local pause = lim:reserve(now)
      if pause > 0 then
        if pause > job.policy.max_retry_after then return client:throttled_error(job, pause) end
        if not call_wait(job, clock, sleep, pause) then return client:deadline_error(job) end
      else
        local err
        req, err = client:attempt_request(job)
        if not req then
          err.attempts = job.attempt
          if job.maybe_applied then err.outcome = "unknown" elseif err.outcome == nil then err.outcome = "not_applied" end
          return nil, err
        end
        if job.deadline_at then
          local left = job.deadline_at - now
          if req.timeout == nil or req.timeout == 0 or req.timeout > left then req.timeout = left end
        end
        job.limiter = lim
        local send_one = client.send_one
        if send_one then resp = send_one(transport, req) else resp = transport:send({ req })[1] end
        resp = resp or { kind = "internal", request_sent = true, message = "transport gave no answer for this request" }
      end
    end
    if resp then
      local step, delay, ferr = client:after_attempt(job, req, resp, now, clock())
      resp = nil
      if step == "again" then
        if not call_wait(job, clock, sleep, delay) then return client:deadline_error(job) end
      elseif step == "settle" then
        local child, rerr = begin_read_back(job, ferr)
        if not child then return nil, rerr end
        if not call_wait(job, clock, sleep, delay or 0) then return client:deadline_error(job) end
        local what, a, b = after_read_back(job, call_one(child))
        if what == "found" then return a, b end
        if what == "failed" then return nil, a end
        local herr = client:retrying(job, a, "read_back_not_found")
        if herr then return nil, herr end
        if not call_wait(job, clock, sleep, a) then return client:deadline_error(job) end
      else
        return delay, ferr   -- "done", value, info
      end
    end
  end
end

-- One call; with req, resp and sent_at, its first attempt was already sent
-- (provision.fastcall hands over an answer it does not take itself).
function engine.call(job, req, resp, sent_at)
  local value, info = call_one(job, req, resp, sent_at)
  if value ~= nil then return value, info end   -- Client:conclude hands a success back unchanged
  return job.client:conclude(job, value, info)
end

-- A job source over a list (or an iterator) of calls {opname, args..., n =}.
function engine.source(client, calls, prepare)
  local i = 0
  local iter
  if type(calls) == "function" then
    iter = calls
  else
    iter = function()
      i = i + 1
      return calls[i]
    end
  end
  local index = 0
  return function()
    local c = iter()
    if c == nil or c == false then return c end
    index = index + 1
    local job, err = prepare(client, c)
    if not job then return { index = index, failed = err } end
    job.index = index
    return job
  end
end

return engine
