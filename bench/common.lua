-- What every bench starts with: the repository's modules on the path
-- (lua/, tests/ for the test servers, the root), the build's
-- provision/core.so (PROVISION_BUILD, else build/), and a few facts about
-- this process for pinning runs to one CPU.
--   local ROOT = debug.getinfo(1, "S").source:sub(2):match("^(.*)/bench/[^/]*$") or "."
--   package.path = ROOT .. "/?.lua;" .. package.path
--   local common = require("bench.common").setup(ROOT)
local M = {}

function M.setup(root)
  package.path = table.concat({ root .. "/lua/?.lua", root .. "/lua/?/init.lua", root .. "/tests/?.lua",
                                root .. "/?.lua", package.path }, ";")
  local build = os.getenv("PROVISION_BUILD")
  if build then package.cpath = build .. "/?.so;" .. package.cpath end
  package.cpath = package.cpath .. ";" .. root .. "/build/?.so"
  M.root = root
  return M
end

function M.read(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- This process's pid, the CPUs it may run on, and whether taskset exists.
function M.process()
  local pid = tonumber(M.read("/proc/self/stat"):match("^(%d+)"))
  local cpus = (M.read("/proc/self/status") or ""):match("Cpus_allowed_list:%s*(%S+)") or "0"
  return pid, cpus, os.execute("command -v taskset >/dev/null 2>&1") == true
end

return M
