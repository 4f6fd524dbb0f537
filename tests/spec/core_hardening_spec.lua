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
