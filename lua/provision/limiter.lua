-- Pacing for one API origin and credential: a token bucket whose rate comes
-- from the caller (rate = "50/1") or from what the server says, slowed when
-- the server throttles and recovered step by step.
--
-- What the server can say, and what the limiter does with it:
--   * 429 (with or without Retry-After): the call that got it waits its
--     Retry-After (the engine does that). Stray 429s among successes (a
--     flaky proxy, a per-request refusal) change nothing else; SPENT of
--     them within the last RECENT answers mean the budget is spent (when it
--     is, every request in flight meets one): every send waits until the
--     Retry-After has passed (a pause), and the rate is cut:
--       - with a known rate (configured, or announced by the server), to
--         DECREASE of it, then regained linearly over RECOVER_S seconds;
--         a throttle that comes back within REPEAT_S lowers the known rate
--         itself by 5 % (it was optimistic);
--       - with no known rate, to what the server let through: the requests
--         accepted since the last throttle (or the first send), divided by
--         that time (plus the pause it asks for, when the time is shorter
--         than two pauses: a burst that spent a window's budget). That
--         estimate then becomes the plateau, probed upwards by PROBE per
--         second.
--   * X-RateLimit-Remaining: 0 with X-RateLimit-Reset (DocSpace), or the
--     IETF RateLimit header with remaining 0: a pause until the reset.
--   * RateLimit-Policy (`q=100;w=60`, or `100;w=60`): the rate is at most
--     q/w.
-- Known rates are paced at SAFETY of their value, so that clock jitter
-- between client and server does not turn a sliding window's last slot into
-- a 429.
--
-- Limiters are shared by every client on one transport (the registry is
-- keyed weakly by the transport object), so two clients with the same
-- credential against the same API draw on one budget.
local limiter = {}

local Limiter = {}
Limiter.__index = Limiter

local SAFETY = 0.98        -- pace at this share of a known rate
local DECREASE = 0.5       -- share of a known rate kept right after a 429
local RECOVER_S = 2        -- seconds to regain a known rate after a 429
local REPEAT_S = 5         -- a 429 sooner than this after the last one: the known rate is too high
local PROBE = 0.003        -- share of an estimated rate added per second without a 429
local MIN_RATE = 0.2       -- requests per second; never slower than this
local SLACK_SECONDS = 0.005 -- tokens held beyond one: 5 ms worth, so a late wake-up loses no pace
local MAX_PAUSE = 300      -- seconds; a longer pause asked by a server is cut to this
local EVENT_S = 1          -- 429s this close together are one throttling event
local RECENT = 16          -- answers remembered to tell a spent budget from stray 429s
local SPENT = 3            -- 429s among them that mean the budget is spent

-- "50/1", "300/60", "10" (per second) or a number -> requests per second.
function limiter.parse_rate(v)
  if type(v) == "number" then
    if v > 0 and v < math.huge then return v end
    return nil, "rate must be a positive number of requests per second"
  end
  if type(v) ~= "string" then return nil, "rate must be a string like \"50/1\" or a number" end
  local n, w = v:match("^%s*(%d+%.?%d*)%s*/%s*(%d+%.?%d*)%s*$")
  if not n then
    n = v:match("^%s*(%d+%.?%d*)%s*$")
    w = n and "1"
  end
  n, w = tonumber(n), tonumber(w)
  if not n or not w or n <= 0 or w <= 0 then
    return nil, "rate must look like \"50/1\" (requests / seconds), got '" .. v .. "'"
  end
  return n / w
end

function limiter.new(opts)
  local self = setmetatable({
    ceiling = nil,        -- configured requests/s
    learned = nil,        -- limit/window the server announced
    estimate = nil,       -- what the server let through before it throttled (no known rate)
    rate = nil,           -- current pacing rate; nil = unlimited
    tokens = 1,
    refilled = nil,
    paused_until = 0,
    last_throttle = nil,
    cut_at = nil,         -- when the rate was last cut (recovery runs from there)
    cut_rate = nil,
    accepted = 0,         -- accepted responses since episode_start
    episode_start = nil,
    throttled = 0,        -- 429s seen
    pauses = 0,
    recent = {},          -- the last RECENT answers: true for a 429
    recent_pos = 0,
  }, Limiter)
  if opts and opts.rate then
    local ok, err = self:configure(opts.rate)
    if not ok then return nil, err end
  end
  return self
end

-- The known rate the bucket may run at (paced at SAFETY), or nil.
function Limiter:known()
  local c = self.ceiling
  if self.learned and (not c or self.learned < c) then c = self.learned end
  return c
end

-- A caller-given ceiling (requests per second, or "N/S").
function Limiter:configure(rate)
  local r, err = limiter.parse_rate(rate)
  if not r then return nil, err end
  self.ceiling = r
  self.rate = self:target()
  return true
end

-- Where the rate settles when nothing goes wrong.
function Limiter:target()
  local k = self:known()
  if k then
    k = k * SAFETY
    if self.estimate and self.estimate < k then return self.estimate end
    return k
  end
  return self.estimate
end

local function burst(rate)
  return 1 + rate * SLACK_SECONDS
end

-- The pacing rate now: after a cut, a known rate is regained linearly over
-- RECOVER_S; an estimated one is probed upwards by PROBE per second.
function Limiter:current(now)
  local target = self:target()
  if not target or not self.cut_at or now < self.cut_at then return target and (self.cut_rate or target) end
  local dt = now - self.cut_at
  if not self:known() then return target * (1 + PROBE * dt) end
  if self.cut_rate >= target then return target end
  local r = self.cut_rate + (target - self.cut_rate) * dt / RECOVER_S
  return r < target and r or target
end

-- Seconds until a send may go; 0 means go now (a token was taken).
function Limiter:reserve(now)
  if now < self.paused_until then return self.paused_until - now end
  if not self.episode_start then self.episode_start = now end
  if not (self.ceiling or self.learned or self.estimate) then   -- no rate known: no pacing (current() is nil)
    self.rate = nil
    return 0
  end
  local rate = self:current(now)
  self.rate = rate
  if not rate then return 0 end
  if self.refilled then
    local cap = burst(rate)
    local t = self.tokens + (now - self.refilled) * rate
    self.tokens = t < cap and t or cap
  end
  self.refilled = now
  if self.tokens >= 1 - 1e-9 then    -- (a wait computed from the shortfall lands within rounding)
    self.tokens = self.tokens - 1
    return 0
  end
  return (1 - self.tokens) / rate
end

function Limiter:pause(now, seconds)
  if not seconds or seconds <= 0 then return end
  if seconds > MAX_PAUSE then seconds = MAX_PAUSE end
  local untl = now + seconds
  if untl > self.paused_until then
    self.paused_until = untl
    self.pauses = self.pauses + 1
  end
end

local function remember(self, was_429)
  local pos = self.recent_pos % RECENT + 1
  self.recent_pos = pos
  self.recent[pos] = was_429
  if not was_429 then return 0 end
  local n = 0
  for i = 1, RECENT do if self.recent[i] then n = n + 1 end end
  return n
end

local function throttle(self, now, retry_after)
  self.throttled = self.throttled + 1
  local pause = retry_after or 1
  if remember(self, true) < SPENT and not (self.last_throttle and now - self.last_throttle < EVENT_S) then
    return   -- a stray 429: only its own call waits
  end
  if self.last_throttle and now - self.last_throttle < EVENT_S then
    self:pause(now, pause)        -- the same event: already cut
    return
  end
  local repeated = self.last_throttle and now - self.last_throttle < REPEAT_S
  self.last_throttle = now
  local known = self:known()
  if known then
    if repeated then
      if self.learned and self.learned <= known then self.learned = self.learned * 0.95 end
      if self.ceiling and self.ceiling <= known then self.ceiling = self.ceiling * 0.95 end
    end
    local r = self:target() * DECREASE
    self.cut_rate = r > MIN_RATE and r or MIN_RATE
  else
    local span = now - (self.episode_start or now)
    if span < 2 * pause then span = span + pause end
    local est = span > 0 and self.accepted / span or MIN_RATE
    if self.estimate and repeated and est > self.estimate * 0.9 then est = self.estimate * 0.9 end
    est = est * SAFETY
    self.estimate = est > MIN_RATE and est or MIN_RATE
    self.cut_rate = self.estimate
  end
  self.cut_at = now + pause
  self.tokens = 0
  self.refilled = now + pause
  self.accepted = 0
  self.episode_start = now + pause
  self:pause(now, pause)
end

-- Parameters of a structured-field item: `"name";q=100;w=60` or
-- `limit=100, remaining=5, reset=3` (earlier drafts of the IETF headers).
local function sf_params(v)
  local out = {}
  for k, n in v:gmatch("([%a_%-]+)%s*=%s*(%d+%.?%d*)") do out[k:lower()] = tonumber(n) end
  return out
end

-- Reset values: delta seconds, or an epoch time (a value beyond a day is
-- taken as epoch seconds).
local function reset_seconds(v, wall)
  local n = tonumber(v)
  if not n then return nil end
  if n > 86400 then n = n - (wall or os.time()) end
  return n > 0 and n or 0
end

-- Learns from one response: status and headers (a table keyed by lower-case
-- name). retry_after: seconds from Retry-After, if any.
-- The headers observe() learns from (x-ratelimit-reset is read only with
-- x-ratelimit-remaining): an answer with none of them teaches nothing but
-- its status.
limiter.HEADERS = { "ratelimit-policy", "ratelimit", "x-ratelimit-remaining" }

function Limiter:observe(now, status, headers, retry_after)
  if status == 429 then
    throttle(self, now, retry_after)
  elseif status and status < 400 then
    self.accepted = self.accepted + 1
    local pos = self.recent_pos % RECENT + 1   -- remember(self, false), inline: every answer passes here
    self.recent_pos = pos
    self.recent[pos] = false
  end
  if not headers then return end
  local policy = headers["ratelimit-policy"]
  if policy then
    local p = sf_params(policy)
    local q = p.q or p.limit or tonumber(policy:match("^%s*(%d+)"))
    local w = p.w or p.window
    if q and w and q > 0 and w > 0 and self.learned ~= q / w then
      self.learned = q / w
    end
  end
  local remaining, reset
  local rl = headers["ratelimit"]
  if rl then
    local p = sf_params(rl)
    remaining, reset = p.r or p.remaining, p.t or p.reset
  end
  if remaining == nil then
    local xr = headers["x-ratelimit-remaining"]
    remaining = xr and tonumber(xr)
    if remaining == 0 then reset = reset_seconds(headers["x-ratelimit-reset"]) end   -- read only when used
  end
  if remaining == 0 and status ~= 429 then self:pause(now, reset or 1) end
end

-- A snapshot for progress lines and tests.
function Limiter:state(now)
  return { rate = now and self:current(now) or self.rate, ceiling = self.ceiling, learned = self.learned,
           estimate = self.estimate,
           paused_for = now and self.paused_until > now and (self.paused_until - now) or 0,
           throttled = self.throttled, pauses = self.pauses }
end

-- The limiter for `key` on `transport`, created on first use.
local registries = setmetatable({}, { __mode = "k" })

function limiter.shared(transport, key)
  local reg = registries[transport]
  if not reg then
    reg = {}
    registries[transport] = reg
  end
  local l = reg[key]
  if not l then
    l = limiter.new()
    reg[key] = l
  end
  return l
end

limiter.Limiter = Limiter
limiter.SAFETY = SAFETY
return limiter
