-- Starts tests/support/echo_server.lua as a child process.
--   local echo = require("support.echo").start()  -- echo.url, echo.port
--   echo:stop()
local M = {}
M.__index = M

function M.start()
  local tmp = os.tmpname()
  local cmd = string.format("lua5.4 tests/support/echo_server.lua > %s 2>&1 & echo $!", tmp)
  local p = io.popen(cmd)
  local pid = tonumber(p:read("*l"))
  p:close()
  local port
  for _ = 1, 200 do
    local f = io.open(tmp)
    local s = f and f:read("*a") or ""
    if f then f:close() end
    port = tonumber(s:match("PORT (%d+)"))
    if port then break end
    os.execute("sleep 0.02")
  end
  os.remove(tmp)
  assert(port, "echo server did not start")
  return setmetatable({ pid = pid, port = port, url = "http://127.0.0.1:" .. port }, M)
end

function M:stop()
  if self.pid then os.execute("kill " .. self.pid .. " 2>/dev/null"); self.pid = nil end
end

return M
