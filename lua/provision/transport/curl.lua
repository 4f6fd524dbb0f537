-- The default transport: provision.core's libcurl engine. A transport is an
-- object with send(requests) -> list of responses or error tables (`kind`
-- set), plus now(), sleep(s) and close(). Other hosts (nginx cosockets)
-- provide the same four. A transport class may also define send_one(req),
-- send({req})[1] without the lists (a client's single calls use it when the
-- transport's own class has it), and core_responses = true when every
-- answer is a response of provision.core (lazy fields; a plain client may
-- hand one back as a call's info). provision.transport.coro is this
-- transport with a send() and sleep() that yield to the host's event loop
-- instead of blocking.
local core = require("provision.core")

local Curl = {}
Curl.__index = Curl

local session_keys = {
  "connect_timeout", "timeout", "verify", "ca_file", "ca_path", "cert", "key",
  "key_password", "proxy", "user_agent", "max_body", "max_connections",
}

function Curl.new(opts)
  opts = opts or {}
  local settings = {}
  for _, k in ipairs(session_keys) do settings[k] = opts[k] end
  if settings.verify == false then
    io.stderr:write("provision: WARNING: TLS certificate verification is OFF for this client\n")
  end
  local session, err = core.session(settings)
  if not session then return nil, err end
  return setmetatable({ session = session }, Curl)
end

-- One error per request when the session cannot run them (closed): send
-- always answers with a list, as the transport contract says.
local function all_failed(requests, err)
  local out = {}
  for i = 1, #requests do out[i] = err end
  return out
end

-- Waits in steps of at most STEP seconds from Lua rather than in one C call
-- (session:perform), so that an interpreter's signal hook (lua5.4's Ctrl-C
-- "interrupted!") runs within a step instead of after the whole transfer.
local STEP = 0.25

-- send() runs on one long-lived stream of the session (session:stream()):
-- one request is stream:request'ed (its answer comes back from that call
-- when it ends within a step), several are added and polled; either way in
-- STEP steps until all have come back. A stream still holding requests when
-- send() begins was left by a send that an error interrupted (Ctrl-C
-- between two steps): it is closed, with them. `sending` stays set when an
-- error leaves send() early, so the next send takes a new stream.
local function sender(self)
  local s = self.sender
  if s == nil or self.sending then
    if s then s:close() end
    local err
    s, err = self.session:stream()
    if not s then return nil, err end
    self.sender = s
  end
  self.sending = true
  return s
end

-- Polls s until the n requests added (tags 1..n, or true for a single
-- stream:request'ed one) have all come back into out.
local function collect(self, s, out, n)
  local got = 0
  for i = 1, n do if out[i] ~= nil then got = got + 1 end end
  while got < n do
    local ended, perr = s:poll(STEP)
    if not ended then   -- the stream was closed meanwhile (the transport's close)
      for i = 1, n do out[i] = out[i] or perr end
      break
    end
    for j = 1, #ended, 2 do
      local tag = ended[j]
      out[tag == true and 1 or tag] = ended[j + 1]
      got = got + 1
    end
  end
  self.sending = false
  return out
end

function Curl:send(requests)
  local n = #requests
  local s, err = sender(self)
  if not s then return all_failed(requests, err) end
  if n == 1 then
    local r, e = s:request(requests[1], STEP)
    if r ~= false then
      self.sending = false
      return { r or e }
    end
  else
    for i = 1, n do s:add(requests[i], i) end
  end
  return collect(self, s, {}, n)
end

-- send({req})[1] without the two lists: what the engine's single calls use
-- when the transport's class has it (provision.engine, client.send_one).
function Curl:send_one(req)
  local s, err = sender(self)
  if not s then return err end
  local r, e = s:request(req, STEP)
  if r ~= false then
    self.sending = false
    return r or e
  end
  return collect(self, s, {}, 1)[1]
end

Curl.all_failed = all_failed

-- Every answer is a response of provision.core (docs/core-api.md), also
-- through the stream: a client may hand one back as a call's info. Read
-- with rawget: a subclass that makes answers of its own does not inherit it.
Curl.core_responses = true

-- The non-blocking form (docs/core-api.md): a batch to drive with
-- step()/wait_info() from the host's own loop, then results().
-- provision.transport.coro builds send() on it.
function Curl:start(requests)
  return self.session:start(requests)
end

-- Requests started one at a time, collected as each ends (the bulk
-- engine's interface: provision.transport.stream).
function Curl:stream()
  return require("provision.transport.curl_stream").new(self.session, { sleep = Curl.sleep, max_step = STEP })
end

Curl.now = core.now
function Curl.sleep(s)
  if not (type(s) == "number" and s > 0) then return end
  local deadline = core.now() + s
  repeat
    core.sleep(math.max(0, math.min(STEP, deadline - core.now())))
  until core.now() >= deadline
end

function Curl:stats() return self.session:stats() end

function Curl:close()
  if self.sender then self.sender:close() end
  self.session:close()
end

return Curl
