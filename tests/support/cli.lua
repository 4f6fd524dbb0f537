-- tests/support/cli.lua: run bin/provision as a subprocess, in a clean
-- environment, and check that no given secret shows in its output.
--
--   local cli = require "support.cli"
--   local runner = cli.runner({ secrets = {"s1", ...} })
--   local r = runner.run({"agilicus", "list_users"}, { env = {...}, stdin = "text", cwd = dir })
--     -> r.code, r.out, r.err
--   runner.home        an empty HOME (no config file); runner.cleanup()
--   cli.ROOT, cli.BIN  the repository and bin/provision
local M = {}

local ROOT = debug.getinfo(1, "S").source:sub(2):match("^(.*)/tests/support/[^/]*$") or "."
if ROOT:sub(1, 1) ~= "/" then
  local p = io.popen("cd '" .. ROOT .. "' && pwd")
  ROOT = p:read("l")
  p:close()
end
M.ROOT = ROOT
M.BIN = ROOT .. "/bin/provision"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
M.q = q

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end
M.slurp = slurp

function M.mkdtemp()
  local p = io.popen("mktemp -d")
  local dir = p:read("l")
  p:close()
  assert(dir and dir ~= "", "mktemp -d failed")
  return dir
end

function M.runner(opts)
  opts = opts or {}
  local self = { secrets = opts.secrets or {}, transcript = {} }
  self.home = M.mkdtemp()
  function self.run(argv, ro)
    ro = ro or {}
    local envs = { "PATH=" .. q(os.getenv("PATH") or "/usr/bin:/bin"), "HOME=" .. q(self.home) }
    for k, v in pairs(ro.env or {}) do envs[#envs + 1] = k .. "=" .. q(v) end
    local words = {}
    for i, a in ipairs(argv) do words[i] = q(a) end
    local out, err = os.tmpname(), os.tmpname()
    local input
    local cmd = (ro.cwd and ("cd " .. q(ro.cwd) .. " && ") or "") .. "env -i " .. table.concat(envs, " ")
      .. " timeout -k 5 300 lua5.4 " .. q(M.BIN) .. " " .. table.concat(words, " ") .. " >" .. q(out) .. " 2>" .. q(err)
    if ro.stdin then
      input = os.tmpname()
      local f = assert(io.open(input, "wb"))
      f:write(ro.stdin)
      f:close()
      cmd = cmd .. " <" .. q(input)
    else
      cmd = cmd .. " </dev/null"
    end
    local _, _, code = os.execute(cmd)
    local r = { code = code, out = slurp(out), err = slurp(err) }
    os.remove(out)
    os.remove(err)
    if input then os.remove(input) end
    self.transcript[#self.transcript + 1] = r.out
    self.transcript[#self.transcript + 1] = r.err
    for _, secret in pairs(self.secrets) do
      assert(not r.out:find(secret, 1, true), "a secret in stdout of: " .. table.concat(argv, " "))
      assert(not r.err:find(secret, 1, true), "a secret in stderr of: " .. table.concat(argv, " "))
    end
    return r
  end
  function self.cleanup()
    os.execute("rm -rf " .. q(self.home))
  end
  return self
end

return M
