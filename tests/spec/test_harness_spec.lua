-- The test harness itself must not hide failures: tests skipped by a failed
-- setup count as failed in the closing line (tests/support/summary.lua), a
-- server started through support.once fails each test that needs it, and a
-- shared Prism that cannot start fails every caller with the same reason.
local once = require("support.once")
local prism = require("support.prism")

local ROOT = debug.getinfo(1, "S").source:sub(2):match("^(.*)/tests/spec/[^/]*$") or "."

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Run busted with the summary handler on one spec file; returns the counts
-- it wrote ("passed failed skipped") and its output.
local function busted_on(source)
  local spec, counts = os.tmpname() .. "_spec.lua", os.tmpname()
  local f = assert(io.open(spec, "w"))
  f:write(source)
  f:close()
  local p = io.popen(("cd %s && PROVISION_TEST_COUNTS=%s lua5.4 /usr/bin/busted --lua=lua5.4 " ..
    "-o tests/support/summary.lua %s 2>&1"):format(q(ROOT), q(counts), q(spec)))
  local out = p:read("a")
  p:close()
  local c = io.open(counts)
  local line = c and c:read("l")
  if c then c:close() end
  os.remove(spec)
  os.remove(counts)
  return line, out
end

describe("test harness", function()
  it("counts the tests a failed setup skipped as failed", function()
    local counts, out = busted_on([[
      describe("outer", function()
        setup(function() error("server down") end)
        it("a", function() end)
        it("b", function() end)
        describe("inner", function() it("c", function() end) end)
      end)
      describe("fine", function() it("d", function() end) end)
    ]])
    -- the setup error, a, b, and inner (unread: one at least)
    assert.equals("1 4 0", counts, out)
    assert.matches("busted: 1 passed, 4 failed, 0 skipped", out, nil, true)
    assert.matches('strict_setup of "outer" failed: 3 test(s) did not run', out, nil, true)
  end)

  it("once() in a before_each fails every test of the block on its own", function()
    local counts, out = busted_on([[
      local once = require("support.once")
      describe("needs a server", function()
        before_each(once(function() error("server down") end, "server"))
        it("a", function() end)
        it("b", function() end)
        describe("inner", function() it("c", function() end) end)
      end)
    ]])
    assert.equals("0 3 0", counts, out)
    assert.matches("server: .*server down", out)
  end)

  it("once() runs its start once and raises the first error again", function()
    local calls = 0
    local f = once(function() calls = calls + 1; error("down " .. calls, 0) end, "what")
    local ok1, e1 = pcall(f)
    local ok2, e2 = pcall(f)
    assert.is_false(ok1)
    assert.is_false(ok2)
    assert.equals("what: down 1", e1)
    assert.equals(e1, e2)
    assert.equals(1, calls)
    local ok = once(function() calls = calls + 1 end)
    ok(); ok()
    assert.equals(2, calls)
  end)

  it("a shared Prism that cannot start fails every caller with the same reason", function()
    local bin = prism.bin
    prism.bin = "/nonexistent/prism"
    local spec = prism.spec("outpost")
    local opts = { errors = true, name = "harness-missing" }
    local ok1, e1 = pcall(prism.shared_mock, spec, opts)
    local ok2, e2 = pcall(prism.shared_mock, spec, opts)
    prism.bin = bin
    local ok3, e3 = pcall(prism.shared_mock, spec, opts)   -- remembered: not retried
    assert.is_false(ok1)
    assert.matches("/nonexistent/prism missing", e1, nil, true)
    assert.is_false(ok2)
    assert.equals(e1, e2)
    assert.is_false(ok3)
    assert.equals(e1, e3)
  end)

  it("a shared Prism that exits before answering is not started again", function()
    local bad = os.tmpname() .. ".json"
    local f = io.open(bad, "w")
    f:write('{"openapi":"3.0.0","info":{"title":"x","version":"1"},"paths":{"/a":{"get":{"responses":',
      '{"200":{"description":"ok","content":{"application/json":{"schema":{"$ref":"#/components/schemas/Nope"}}}}}}}}}')
    f:close()
    local ok1, e1 = pcall(prism.shared_mock, bad)
    local ok2, e2 = pcall(prism.shared_mock, bad)
    os.remove(bad)
    assert.is_false(ok1)
    assert.matches("exited before answering", e1)
    assert.is_false(ok2)
    assert.equals(e1, e2)   -- the same log named: no second server
  end)
end)

-- `make mutate` (scripts/mutate.lua) is slow and not part of `make test`;
-- this keeps its list from drifting away from the code it mutates.
describe("scripts/mutations.lua", function()
  it("names a spec that exists and a text found exactly once in its file, for every mutation", function()
    local list = dofile(ROOT .. "/scripts/mutations.lua")
    assert.is_true(#list >= 80, "read the mutation list")
    local problems, names = {}, {}
    for _, m in ipairs(list) do
      if names[m.name] then problems[#problems + 1] = m.name .. ": name used twice" end
      names[m.name] = true
      local f = io.open(ROOT .. "/" .. m.file, "rb")
      local text = f and f:read("a")
      if f then f:close() end
      local n, i = 0, 1
      while text do
        local a, b = text:find(m.find, i, true)
        if not a then break end
        n, i = n + 1, b + 1
      end
      if n ~= 1 then problems[#problems + 1] = ("%s: text found %d times in %s"):format(m.name, n, m.file) end
      for spec in tostring(m.spec):gmatch("%S+") do
        local s = io.open(ROOT .. "/" .. spec, "rb")
        if s then s:close() else problems[#problems + 1] = m.name .. ": no spec " .. spec end
      end
    end
    assert.are.same({}, problems)
  end)
end)
