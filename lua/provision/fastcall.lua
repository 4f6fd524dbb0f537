-- A plain call's first attempt without a job. For an operation whose
-- request is its path with one string argument (get_user(id),
-- Tenants:get(id), a delete ...), on a client with nothing to run around an
-- attempt (no hooks, events, log, traceparent, rate or deadline), once the
-- operation's first call through the engine has cached what an attempt
-- sends (the auth headers) and which limiter it draws on. A 2xx answer
-- whose JSON body is the operation's result is returned from here; any
-- other answer (an error, a retry, a read-back, a body that is not JSON)
-- is handed to the engine as the first attempt of a job made by
-- Client:prepare, so every decision after an attempt stays in one place.
-- What it skips is the cost of a job and its tables when there is nothing
-- to decide.
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
-- general path must look at it. `own` says resp is the core's (the
-- transport says so: client.core_responses): then resp itself becomes info, its headers and time still
-- read on first use; another transport's answer is left as it is.
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

-- client:opname(v) when it can run here: returns value, info_or_err, or
-- nothing when the call is the engine's from the start. is_json is the
-- client's content-type test.
function fastcall.call(self, opname, v, is_json)
  if type(v) ~= "string" or v == "" or v == "." or v == ".." then return end
  if not self.plain or self.events ~= nil or self.log ~= nil or self.deadline or self.rate then return end
  local send_one = self.send_one
  local entry = send_one and self.ops[opname]
  if not entry then return end
  local shape = shapes[entry]
  if shape == nil then
    shape = shape_of(entry)
    shapes[entry] = shape
  end
  if not shape then return end
  local op = shape.op
  local cached = self.attempt_headers[op]
  local lim = self.limiters[op]
  if not cached or cached.template ~= shape.plan.headers or not lim
     or lim.ceiling or lim.learned or lim.estimate then
    return
  end
  local transport = self.transport
  local now = transport.now()
  if now < lim.paused_until then return end
  -- what lim:reserve(now) does for a limiter that knows no rate
  if not lim.episode_start then lim.episode_start = now end
  lim.rate = nil
  local base = self.base
  local prefix = shape.prefix
  if shape.base ~= base then
    prefix = request.trim_base(base)
    shape.base, shape.prefix = base, prefix
  end
  local req = { method = shape.method, url = prefix .. shape.head .. encode_segment(v) .. shape.tail,
                headers = cached.headers, idempotent = shape.idempotent }
  local resp = send_one(transport, req)
  if resp then
    local value, info = taken(self, shape, resp, lim, now, is_json, self.core_responses)
    if value ~= nil then return value, info end
  end
  -- the engine decides: the job this call would have been, with this attempt made
  local job, err = self:prepare(opname, v)
  if not job then return nil, err end
  job.scheme_name, job.oauth_flow, job.limiter = cached.scheme, cached.oauth, lim
  return engine.call(job, req, resp or { kind = "internal", request_sent = true,
                                         message = "transport gave no answer for this request" }, now)
end

return fastcall
