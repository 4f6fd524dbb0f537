-- When a failed attempt may be tried again, and after how long.
--
-- Safe means the retry cannot do a thing twice:
--   * the request never left (DNS, connect, TLS handshake): any method;
--   * 429 (the server refused before acting): any method;
--   * other transport failures, 502/503/504 and 408: only idempotent
--     methods (GET HEAD PUT DELETE OPTIONS), or operations whose table
--     marks them idempotent.
local retry = {}

retry.defaults = {
  attempts = 3,         -- total tries, the first included
  base_delay = 0.25,    -- seconds; doubles each time, with full jitter
  max_delay = 8,        -- cap on one wait
  max_retry_after = 60, -- a Retry-After beyond this is not waited for
  read_back = true,     -- settle a maybe-applied attempt by the operation's read-back
  max_throttled = 10,   -- 429 answers waited out per call, on top of `attempts`
}

local idempotent_methods = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true }
local retry_statuses = { [408] = true, [502] = true, [503] = true, [504] = true }

function retry.policy(client_cfg, call_cfg)
  local p = {}
  for k, v in pairs(retry.defaults) do p[k] = v end
  for _, cfg in ipairs({ client_cfg == nil and {} or client_cfg, call_cfg == nil and {} or call_cfg }) do
    if cfg == false then
      p.attempts = 1
      p.max_throttled = 0
    elseif cfg == true then
      p.attempts = math.max(p.attempts, retry.defaults.attempts)
    elseif type(cfg) == "number" then
      p.attempts = cfg + 1
    else
      for k, v in pairs(cfg) do p[k] = v end
    end
  end
  return p
end

-- Seconds from a Retry-After header: delta-seconds or an HTTP date.
function retry.parse_retry_after(value, now_epoch)
  if not value then return nil end
  local n = tonumber(value)
  if n then return n >= 0 and n or nil end
  local months = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8,
                   Sep = 9, Oct = 10, Nov = 11, Dec = 12 }
  local d, mon, y, h, mi, s = value:match("%a+, (%d+) (%a+) (%d+) (%d+):(%d+):(%d+) GMT")
  if not d or not months[mon] then return nil end
  -- days since 1970-01-01 of a UTC date (H. Hinnant's days_from_civil),
  -- without os.time's local-time view
  local yy, mm, dd = tonumber(y), months[mon], tonumber(d)
  if mm <= 2 then yy = yy - 1 end
  local era = math.floor(yy / 400)
  local yoe = yy - era * 400
  local doy = math.floor((153 * ((mm + 9) % 12) + 2) / 5) + dd - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  local t = days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s)
  local delta = t - (now_epoch or os.time())
  return delta > 0 and delta or 0
end

-- Exponential back-off with full jitter before attempt `attempt + 1`.
function retry.backoff(policy, attempt, random)
  local cap = math.min(policy.max_delay, policy.base_delay * 2 ^ (attempt - 1))
  return (random or math.random)() * cap
end

-- A 429: the server refused before acting and said when to come back.
-- Waited out on its own budget (max_throttled answers per call), apart from
-- `attempts`, for any method. Returns delay, or nil, reason.
function retry.throttle(policy, throttles, retry_after, random)
  if throttles >= policy.max_throttled then
    return nil, "throttled " .. throttles .. " time(s), max_throttled is " .. policy.max_throttled
  end
  local d = retry_after or retry.backoff(policy, throttles + 1, random)
  if d > policy.max_retry_after then
    return nil, "Retry-After of " .. d .. " s exceeds max_retry_after"
  end
  return d
end

-- Decide about one failed attempt (a 429 is retry.throttle's). `outcome` is either a transport error
-- {kind, request_sent} or a response {status, headers}; `retry_after` the
-- seconds its Retry-After asked for, if already parsed. Returns delay
-- (seconds) or nil, reason why not.
function retry.decide(policy, attempt, method, op, outcome, random, retry_after)
  if attempt >= policy.attempts then return nil, "no attempts left" end
  local idempotent = idempotent_methods[method] or (op and op.idempotent)
  local parsed = retry_after
  retry_after = nil
  if outcome.kind then
    -- A refused certificate or an oversized answer will not change on a
    -- retry; a cancelled or closed transfer was stopped on purpose.
    if outcome.kind == "invalid_argument" or outcome.kind == "too_large" or outcome.kind == "closed"
       or outcome.kind == "tls" or outcome.kind == "aborted" then
      return nil, "not retryable"
    end
    if outcome.request_sent ~= false and not idempotent then
      return nil, "request may have reached the server and " .. method .. " is not idempotent"
    end
  else
    local status = outcome.status
    if status == 429 then
      return nil, "a 429 is waited out by retry.throttle, not retried as a failure"
    elseif retry_statuses[status] then
      if not idempotent then return nil, method .. " is not idempotent" end
      retry_after = parsed or retry.parse_retry_after(outcome.headers and outcome.headers["retry-after"])
    else
      return nil, "status " .. tostring(status) .. " is not retryable"
    end
  end
  if retry_after then
    if retry_after > policy.max_retry_after then
      return nil, "Retry-After of " .. retry_after .. " s exceeds max_retry_after"
    end
    return retry_after
  end
  return retry.backoff(policy, attempt, random)
end

return retry
