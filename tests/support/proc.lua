-- Small process and file helpers shared by the test servers' launchers
-- (tests/support/nginx.lua, openresty.lua) and the specs.
local socket = require "socket"

local M = {}

function M.sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

function M.capture(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  p:close()
  return out
end

function M.write_file(path, data)
  local f = assert(io.open(path, "wb"))
  assert(f:write(data))
  assert(f:close())
end

function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function M.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

function M.quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- A port that was free a moment ago (the caller retries if it is taken).
function M.free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

-- A port on 127.0.0.1 where a connection is refused, for as long as this
-- process runs: a socket bound to it without listening holds it, so no other
-- process can take it meanwhile (a port probed free and closed could be).
local held = {}
function M.refused_port()
  local s = assert(socket.tcp())
  assert(s:bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  held[#held + 1] = s   -- referenced, so the collector never closes it
  return tonumber(port)
end

function M.alive(pid) return M.sh("kill -0 " .. pid .. " 2>/dev/null") end

function M.my_pid()
  local s = M.read_file("/proc/self/stat")
  return s and tonumber(s:match("^(%d+)"))
end

return M
