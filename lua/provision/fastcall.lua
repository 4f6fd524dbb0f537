-- Calls with nothing to decide, without a job. For an operation whose
-- request is its path with one string argument (get_user(id),
-- Tenants:get(id), a delete ...), on a client with nothing to run around an
-- attempt (no hooks, events, log or traceparent), once the operation's
-- first call through the engine has cached what an attempt sends (the
-- auth headers). Two forms:
--   fastcall.call    a single call (client:get(id)) on a client without
--                    a rate or deadline, while its limiter knows no rate:
--                    sent here with the transport's send_one
--   fastcall.light   a call of all()/bulk(): a light job, which the engine
--                    paces and sends like any other (job:request() is its
--                    attempt) but which is only a few fields
-- A 2xx answer whose JSON body is the operation's result is taken here; any
-- other answer (an error, a retry, a read-back, a body that is not JSON)
-- goes to the engine as the first attempt of the job Client:prepare makes,
-- so every decision after an attempt stays in one place.
local core = require("provision.core")
local request = require("provision.request")
local events = require("provision.events")
local engine = require("provision.engine")
local limiter = require("provision.limiter")

local fastcall = {}

local json_decode = core.json_decode
local encode_segment = core.encode_path_segment
local header = core.header

-- entry -> its shape, or false when no call of it takes this path
local shapes = setmetatable({}, { __mode = "k" })

local function shape_of(entry)
  local op = entry.op
  local plan = request.plan(op)
  local slot = plan and plan.n == 1 and plan.slots[1]
  local p = entry.positional[1] or entry.leading[1]   -- where bind() puts a single argument
  if not slot or p ~= slot or #entry.positional > 1 or entry.has_body then return false end
  for _, q in ipairs(plan.others) do
    if q.required or q.spec_required then return false end
  end
  for _, d in ipairs(entry.defaults) do
    if d ~= slot then return false end   -- a default would fill another parameter
  end
  return { op = op, plan = plan, head = plan.pieces[1], tail = plan.tail, method = op.method,
           idempotent = op.idempotent or nil, returns = op.returns }
end

-- The headers every answer is asked for, in one core.header call: its
-- content type, the limiter's, and the request id's.
local RL1, RL2, RL3 = limiter.HEADERS[1], limiter.HEADERS[2], limiter.HEADERS[3]
local ID1, ID2, ID3 = events.REQUEST_ID_HEADERS[1], events.REQUEST_ID_HEADERS[2], events.REQUEST_ID_HEADERS[3]
assert(#limiter.HEADERS == 3 and #events.REQUEST_ID_HEADERS == 3, "provision.fastcall reads three of each")

-- The 2xx answer as the call's result: value, info; or nil when the
-- general path must look at it. `own` says resp may be the call's info,
-- as success_info (client.lua) decides for the engine: the answer is the
-- core's (client.core_responses) and the operation's urls never carry a
-- query (fastcall.without_query: an operation with an optional query
-- parameter gets a table of its own there, even when none is given). Then
-- resp itself becomes info, its headers and time still read on first use;
-- any other answer is left as it is.
local function taken(self, shape, resp, lim, now, is_json, own)
  local status = resp.status
  if resp.kind or status < 200 or status >= 300 then return nil end
  local ctype, rl1, rl2, rl3, id1, id2, id3 = header(resp, "content-type", RL1, RL2, RL3, ID1, ID2, ID3)
  local body = resp.body
  if not (ctype and body and body ~= "" and is_json(ctype)) then return nil end
  local decoded = json_decode(body)   -- nil for a body that is not JSON (or starts with a byte order mark)
  if decoded == nil or (shape.returns and type(decoded) ~= "table") then return nil end
  local envelope = self.envelope
  if envelope.check and envelope.check(decoded, resp) then return nil end
  lim:observe(now, status, (rl1 or rl2 or rl3) and resp.headers or nil, nil)
  local api = self.api
  local request_id
  if api.request_id_header then request_id = events.request_id(api, resp.headers)
  else request_id = events.first_request_id(id1, id2, id3) end
  local value = decoded
  if envelope.unwrap then value = envelope.unwrap(decoded, resp, shape.op) end
  if own then
    resp.body, resp.attempts, resp.request_id = decoded, 1, request_id
    return value, resp
  end
  return value, { status = status, headers = resp.headers, body = decoded, attempts = 1, time = resp.time,
                  request_id = request_id }
end

-- The shape of client:opname(v) and the headers its attempts send (cached
-- by its first call through the engine); nil when the engine must make it.
local function eligible(self, opname, v)
  if type(v) ~= "string" or v == "" or v == "." or v == ".." then return nil end
  if not self.plain or self.events ~= nil or self.log ~= nil or self.deadline then return nil end
  local entry = self.ops[opname]
  if not entry then return nil end
  local shape = shapes[entry]
  if shape == nil then
    shape = shape_of(entry)
    shapes[entry] = shape
  end
  if not shape then return nil end
  local cached = self.attempt_headers[shape.op]
  if not cached or cached.template ~= shape.plan.headers then return nil end
  -- and the limiter of the operation's usual calls (a call with its own
  -- server caches the headers but draws on another limiter)
  if not self.limiters[shape.op] then return nil end
  return shape, cached
end

local function url_of(self, shape, v)
  local base = self.base
  local prefix = shape.prefix
  if shape.base ~= base then
    prefix = request.trim_base(base)
    shape.base, shape.prefix = base, prefix
  end
  return prefix .. shape.head .. encode_segment(v) .. shape.tail
end

-- The job the call would have been (Client:prepare), with one attempt made.
local function full_job(self, opname, v, cached, lim)
  local job, err = self:prepare(opname, v)
  if not job then return nil, err end
  job.scheme_name, job.oauth_flow, job.limiter = cached.scheme, cached.oauth, lim
  return job
end

-- client:opname(v) when it can run here: returns value, info_or_err, or
-- nothing when the call is the engine's from the start.
function fastcall.call(self, opname, v)
  local send_one = self.send_one
  if not send_one or self.rate then return end
  local shape, cached = eligible(self, opname, v)
  if not shape then return end
  local lim = self.limiters[shape.op]
  if not lim or lim.ceiling or lim.learned or lim.estimate then return end
  local transport = self.transport
  local now = transport.now()
  if now < lim.paused_until then return end
  -- what lim:reserve(now) does for a limiter that knows no rate
  if not lim.episode_start then lim.episode_start = now end
  lim.rate = nil
  local req = { method = shape.method, url = url_of(self, shape, v), headers = cached.headers,
                idempotent = shape.idempotent }
  local resp = send_one(transport, req)
  if resp then
    -- the limiter learns at the answer's time, as after_attempt tells it
    local own = self.core_responses
    if own then
      own = self.without_query[shape.op]   -- the rule's cached answer, else the rule
      if own == nil then own = fastcall.without_query(self, shape.op) end
    end
    local value, info = taken(self, shape, resp, lim, transport.now(), fastcall.is_json, own)
    if value ~= nil then return value, info end
  end
  local job, err = full_job(self, opname, v, cached, lim)
  if not job then return nil, err end
  return engine.call(job, req, resp or { kind = "internal", request_sent = true,
                                         message = "transport gave no answer for this request" }, now)
end

-- Light jobs ------------------------------------------------------------------
-- The engine reads of a job: client, op, call (for limiter_for), attempt,
-- policy, index, req/sent_at/limiter (set at launch); a light job has those
-- and the methods below, and becomes a full job when its answer is not
-- taken.
local LightJob = {}
LightJob.__index = LightJob
local NO_SETTINGS = {}   -- job.call of a light job: no per-call settings

-- A light job for {opname, v} of all()/bulk(), or nil (the call gets a full job).
function fastcall.light(self, opname, v)
  local shape, cached = eligible(self, opname, v)
  if not shape then return nil end
  -- opname as errors name it (Client:prepare's); name for prepare itself
  local qualified = self.qualified[opname] or (self.class .. "." .. opname)
  return setmetatable({ light = true, client = self, op = shape.op, shape = shape, cached = cached,
                        name = opname, opname = qualified, v = v, call = NO_SETTINGS, attempt = 0,
                        policy = self.policy }, LightJob)
end

-- The attempt's request (what Client:attempt_request gives a full job).
function LightJob:request()
  local shape = self.shape
  return { method = shape.method, url = url_of(self.client, shape, self.v), headers = self.cached.headers,
           idempotent = shape.idempotent }
end

-- value, info when the answer is taken; else nil.
function LightJob:answer(resp, now)
  local client = self.client
  local own = client.core_responses
  if own then
    own = client.without_query[self.op]
    if own == nil then own = fastcall.without_query(client, self.op) end
  end
  return taken(client, self.shape, resp, self.limiter, now, fastcall.is_json, own)
end

-- The full job, carrying this one's attempt (req, sent_at, limiter, index);
-- or nil, err.
function LightJob:full()
  local job, err = full_job(self.client, self.name, self.v, self.cached, self.limiter)
  if not job then return nil, err end
  job.index, job.req, job.sent_at = self.index, self.req, self.sent_at
  return job
end

return fastcall
