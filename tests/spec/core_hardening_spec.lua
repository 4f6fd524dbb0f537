-- provision.core hardening: finalizers that change input while the core
-- reads it, quadratic joins, hostile response headers, JSON edges, the TLS
-- host name check. Each case was a bug; each test fails without its fix.
-- Cases that need a predictable GC or may crash run in a fresh lua5.4.
local build = os.getenv("PROVISION_BUILD")
if build then package.cpath = build .. "/?.so;" .. package.cpath end
local core = require "provision.core"
local socket = require "socket"

local CPATH = (build or "build") .. "/?.so;;"

-- Run Lua source in a fresh lua5.4 with this build of provision.core; returns
-- its output (stdout and stderr) and whether it exited 0.
local function lua_child(src)
  local script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(src)
  f:close()
  local p = io.popen("LUA_CPATH='" .. CPATH .. "' lua5.4 " .. script .. " 2>&1; echo \"exit=$?\"")
  local out = p:read("a")
  p:close()
  os.remove(script)
  local code = tonumber(out:match("exit=(%d+)%s*$"))
  return out:gsub("exit=%d+%s*$", ""), code == 0
end

describe("core.build_query", function()
  it("survives a finalizer that lengthens values while it runs (heap overflow before)", function()
    -- Every build_query call runs with a finalizer armed that, when the GC
    -- calls it, makes every value 4000 bytes long; the GC runs at nearly
    -- every allocation. Measuring all entries, allocating the output, then
    -- writing them overflowed the buffer (segfault, or an ASan report).
    local out, ok = lua_child([[
      local core = require "provision.core"
      local N = 16
      local t = {}
      for i = 1, N do t[i] = { "k" .. i, "v" } end
      local armed, fired = false, 0
      local function arm()
        setmetatable({}, { __gc = function()
          if armed then
            armed = false; fired = fired + 1
            for i = 1, N do t[i][2] = string.rep("\255", 4000) end
          end
          arm()
        end })
      end
      arm()
      collectgarbage("incremental", 100, 100, 13)
      local long = string.rep("%FF", 4000)
      local bad = 0
      for _ = 1, 50 do
        for i = 1, N do t[i][2] = "v" end
        armed = true
        local q = core.build_query(t)
        armed = false
        -- each entry read once: short entries, then (after the finalizer) long ones
        local i, seen_long = 0, false
        for k, v in q:gmatch("([^&=]*)=([^&]*)") do
          i = i + 1
          if k ~= "k" .. i then bad = bad + 1 end
          if v == long then seen_long = true
          elseif v ~= "v" or seen_long then bad = bad + 1 end
        end
        if i ~= N then bad = bad + 1 end
      end
      io.write("fired ", fired, " bad ", bad)
    ]])
    assert.is_true(ok, out)
    local fired, bad = out:match("^fired (%d+) bad (%d+)$")
    assert.is_string(fired, out)
    assert.is_true(tonumber(fired) > 0, "the finalizer never ran inside build_query: " .. out)
    assert.are.equal("0", bad)
  end)
end)

describe("core JSON", function()
  it("refuses an object whose keys would be written twice", function()
    for _, opts in ipairs({ {}, { sort_keys = true } }) do
      local s, err = core.json_encode({ [1] = "a", ["1"] = "b" }, opts)
      assert.is_nil(s)
      assert.are.equal('cannot encode an object with two keys written as "1" (a number and a string)', err)
      s, err = core.json_encode({ x = { [2.5] = true, ["2.5"] = false, y = 1 } }, opts)
      assert.is_nil(s)
      assert.matches('"2%.5"', err)
      -- numbers and strings that differ are fine
      assert.are.equal('{"1":"a","2":"b"}', core.json_encode({ [1] = "a", ["2"] = "b" }, { sort_keys = true }))
    end
  end)

  -- raw bytes that are not UTF-8 (RFC 3629), and their 1-based offset in the string
  local INVALID = {
    { "stray continuation byte", "ab\128", 3 },
    { "lead byte without continuation", "\195(", 1 },
    { "truncated 3-byte sequence", "x\226\130", 2 },
    { "overlong 2-byte form of '/'", "\192\175", 1 },
    { "overlong 3-byte form", "\224\128\175", 1 },
    { "overlong 4-byte form", "\240\130\130\172", 1 },
    { "UTF-16 surrogate U+D800", "\237\160\128", 1 },
    { "UTF-16 surrogate U+DFFF", "\237\191\191", 1 },
    { "above U+10FFFF", "\244\144\128\128", 1 },
    { "byte 0xFF", "ok\255", 3 },
  }
  local VALID = { "\127", "\194\128", "\223\191", "\224\160\128", "\237\159\191", "\238\128\128",
                  "\239\191\191", "\240\144\128\128", "\244\143\191\191", "é😀" }

  it("refuses to encode strings (values and keys) that are not UTF-8", function()
    for _, c in ipairs(INVALID) do
      local s, err = core.json_encode(c[2])
      assert.is_nil(s, c[1])
      assert.are.equal("cannot encode a string that is not valid UTF-8 (byte " .. c[3] .. ")", err, c[1])
      s, err = core.json_encode({ [c[2]] = 1 })
      assert.is_nil(s, c[1])
      assert.matches("not valid UTF%-8", err, c[1])
      s = core.json_encode({ ok = { c[2] } }, { sort_keys = true })
      assert.is_nil(s, c[1])
    end
    for _, v in ipairs(VALID) do
      local s = assert(core.json_encode(v))
      assert.are.equal(v, core.json_decode(s))
    end
  end)

  it("refuses to decode raw bytes that are not UTF-8, naming the byte", function()
    for _, c in ipairs(INVALID) do
      -- fast path (plain string) and slow path (after an escape)
      local v, err = core.json_decode('"' .. c[2] .. '"')
      assert.is_nil(v, c[1])
      assert.are.equal("invalid JSON at byte " .. (c[3] + 1) .. ": invalid UTF-8 in string", err, c[1])
      v, err = core.json_decode('{"\\n' .. c[2] .. '":1}')
      assert.is_nil(v, c[1])
      assert.are.equal("invalid JSON at byte " .. (c[3] + 4) .. ": invalid UTF-8 in string", err, c[1])
    end
    for _, s in ipairs(VALID) do
      assert.are.equal(s, core.json_decode('"' .. s .. '"'))
      assert.are.equal("\n" .. s, core.json_decode('"\\n' .. s .. '"'))
    end
  end)

  it("sort_keys writes a consistent object when a finalizer adds keys meanwhile", function()
    -- The key count was taken, then the key array allocated (a finalizer may
    -- run there and add keys), then filled up to the old count: the object
    -- came out with some keys silently missing.
    local out, ok = lua_child([[
      local core = require "provision.core"
      local t
      local armed, fired = 0, 0   -- armed: act at the armed-th call
      local function arm()
        setmetatable({}, { __gc = function()
          if armed > 0 then
            armed = armed - 1
            if armed == 0 then
              fired = fired + 1
              for i = 1, 100 do t["b" .. i] = i end
            end
          end
          arm()
        end })
      end
      arm()
      collectgarbage("incremental", 100, 100, 13)
      local bad = 0
      for it = 1, 300 do
        t = {}
        for i = 1, 20 do t["a" .. i] = i end
        armed = it % 6 + 1
        local s = assert(core.json_encode(t, { sort_keys = true }))
        armed = 0
        -- all 20 original keys, and either none or all of the added ones
        local na, nb = 0, 0
        for _ in s:gmatch('"a%d+":') do na = na + 1 end
        for _ in s:gmatch('"b%d+":') do nb = nb + 1 end
        if na ~= 20 or (nb ~= 0 and nb ~= 100) then bad = bad + 1 end
      end
      io.write("fired ", fired, " bad ", bad)
    ]])
    assert.is_true(ok, out)
    local fired, bad = out:match("^fired (%d+) bad (%d+)$")
    assert.is_string(fired, out)
    assert.is_true(tonumber(fired) > 0, "the finalizer never ran inside json_encode: " .. out)
    assert.are.equal("0", bad)
  end)
end)
