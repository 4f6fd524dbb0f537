-- provision.limiter on its own: pacing arithmetic with a hand-driven clock.
local limiter = require("provision.limiter")

-- Sends as many requests as the limiter lets through between t0 and t1
-- (a client that can send one per 0.1 ms), asking again exactly when it
-- says; returns the send times.
local function drive(l, t0, t1)
  local sent, now = {}, t0
  while now < t1 do
    local wait = l:reserve(now)
    if wait == 0 then
      sent[#sent + 1] = now
      l:observe(now, 200, {})
      now = now + 1e-4
    else
      now = now + wait
    end
  end
  return sent
end

local function max_in_window(times, window)
  local best, j = 0, 1
  for i = 1, #times do
    while times[i] - times[j] >= window do j = j + 1 end
    if i - j + 1 > best then best = i - j + 1 end
  end
  return best
end

describe("provision.limiter", function()
  it("parses rates as requests per second", function()
    assert.are.equal(50, limiter.parse_rate("50/1"))
    assert.are.equal(5, limiter.parse_rate("300/60"))
    assert.are.equal(10, limiter.parse_rate("10"))
    assert.are.equal(2.5, limiter.parse_rate(2.5))
    for _, bad in ipairs({ "0/1", "5/0", "fast", "-1/1", {}, 0, -3 }) do
      local r, err = limiter.parse_rate(bad)
      assert.is_nil(r, tostring(bad))
      assert.is_string(err)
    end
  end)

  it("is unlimited until it knows a rate", function()
    local l = limiter.new()
    for i = 1, 1000 do assert.are.equal(0, l:reserve(i * 1e-6)) end
  end)

  it("paces a configured rate so that no sliding window of the server overflows", function()
    local l = assert(limiter.new({ rate = "50/1" }))
    local sent = drive(l, 100, 110)
    assert.is_true(max_in_window(sent, 1) <= 50, "at most 50 in any second")
    assert.is_true(#sent >= 480, "close to 49 per second: " .. #sent)
  end)

  it("waits out X-RateLimit-Remaining: 0 until the reset", function()
    local l = limiter.new()
    l:observe(10, 200, { ["x-ratelimit-remaining"] = "0", ["x-ratelimit-reset"] = "3" })
    assert.are.equal(3, l:reserve(10))
    assert.are.equal(0, l:reserve(13))
    -- the IETF header, too
    l:observe(20, 200, { ratelimit = "limit=10, remaining=0, reset=2" })
    assert.are.equal(2, l:reserve(20))
  end)

  it("takes the rate from RateLimit-Policy", function()
    local l = limiter.new()
    l:observe(0, 200, { ["ratelimit-policy"] = '"default";q=100;w=10' })
    local sent = drive(l, 1, 11)
    assert.is_true(max_in_window(sent, 10) <= 100)
    assert.is_true(#sent >= 95)
  end)

  it("leaves the pace alone for stray 429s among successes", function()
    local l = assert(limiter.new({ rate = "20/1" }))
    drive(l, 0, 2)
    l:observe(2, 429, {}, 1)
    assert.are.equal(0, l:state(2).paused_for)
    assert.is_true(l:reserve(2.1) < 0.1)
    -- two in sixteen answers, again and again (a flaky proxy): still strays
    local now = 3
    for _ = 1, 20 do
      for _ = 1, 7 do l:observe(now, 200, {}); now = now + 0.01 end
      l:observe(now, 429, {}, 1)
      now = now + 0.01
    end
    assert.are.equal(0, l:state(now).paused_for)
    assert.is_nil(l:state(now).estimate)
  end)

  it("pauses for the Retry-After and slows down when the budget is spent", function()
    local l = limiter.new()
    drive(l, 0, 0.01)                         -- a burst the server let through
    l:observe(0.05, 429, {}, 1)
    l:observe(0.055, 429, {}, 1)
    l:observe(0.06, 429, {}, 1)               -- a third among the last answers: not strays
    local st = l:state(0.06)
    assert.is_true(st.paused_for > 0.9)
    assert.is_true(l:reserve(0.5) > 0)
    assert.is_number(st.estimate)
    -- after the pause it sends again, slower than the burst
    local sent = drive(l, 1.1, 3.1)
    assert.is_true(#sent > 0)
    assert.is_true(#sent < 2000)
  end)

  it("is one limiter per key and transport", function()
    local t1, t2 = {}, {}
    assert.are.equal(limiter.shared(t1, "a"), limiter.shared(t1, "a"))
    assert.are_not.equal(limiter.shared(t1, "a"), limiter.shared(t1, "b"))
    assert.are_not.equal(limiter.shared(t1, "a"), limiter.shared(t2, "a"))
  end)
end)
