-- The retry policy on its own: which outcomes may be tried again, after how long.
local retry = require("provision.retry")

describe("retry policy", function()
  local policy = retry.policy({ attempts = 3, base_delay = 0.5, max_delay = 4 })
  local function decide(method, outcome, attempt)
    return retry.decide(policy, attempt or 1, method, nil, outcome, function() return 1 end)
  end

  it("retries what never left, for any method", function()
    assert.are.equal(0.5, decide("POST", { kind = "connect", request_sent = false }))
    assert.are.equal(0.5, decide("POST", { kind = "dns", request_sent = false }))
  end)

  it("does not repeat a POST that may have landed", function()
    assert.is_nil(decide("POST", { kind = "network", request_sent = true }))
    assert.is_nil(decide("POST", { kind = "timeout", request_sent = true }))
    assert.is_nil(decide("POST", { status = 503, headers = {} }))
    assert.are.equal(0.5, decide("PUT", { kind = "network", request_sent = true }))
    assert.are.equal(0.5, decide("GET", { status = 503, headers = {} }))
  end)

  it("never retries a refused certificate, an oversized answer, bad input or a cancel", function()
    for _, kind in ipairs({ "tls", "too_large", "invalid_argument", "closed", "aborted" }) do
      assert.is_nil(decide("GET", { kind = kind, request_sent = false }), kind)
    end
  end)

  it("waits for Retry-After on 429, for any method, within max_retry_after, on its own budget", function()
    assert.are.equal(7, retry.throttle(policy, 0, 7))
    assert.is_nil(retry.throttle(policy, 0, 3600))
    assert.are.equal(7, retry.throttle(policy, 9, 7))
    assert.is_nil(retry.throttle(policy, 10, 7))                      -- max_throttled
    assert.is_nil(retry.throttle(retry.policy(false), 0, 1))         -- retries = false
    assert.is_nil(decide("POST", { status = 429, headers = { ["retry-after"] = "7" } }))
    local now = os.time()
    local date = os.date("!%a, %d %b %Y %H:%M:%S GMT", now + 5)
    local d = retry.parse_retry_after(date, now)
    assert.is_true(d >= 4 and d <= 5)
  end)

  it("backs off exponentially up to max_delay and stops after the attempts", function()
    assert.are.equal(1, decide("GET", { status = 502, headers = {} }, 2))
    assert.is_nil(decide("GET", { status = 502, headers = {} }, 3))
    local long = retry.policy({ attempts = 10, base_delay = 0.5, max_delay = 4 })
    assert.are.equal(4, retry.decide(long, 8, "GET", nil, { status = 502, headers = {} }, function() return 1 end))
  end)

  it("reads false, true, a number and a table", function()
    assert.are.equal(1, retry.policy(false).attempts)
    assert.are.equal(retry.defaults.attempts, retry.policy(true).attempts)
    assert.are.equal(5, retry.policy(4).attempts)
    assert.are.equal(1, retry.policy({ attempts = 6 }, false).attempts)
    assert.is_nil(decide("GET", { status = 404, headers = {} }))
  end)
end)
