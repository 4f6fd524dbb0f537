-- tests/support/sandbox.lua: start and stop bin/provision-sandbox from a test.
--
--   local sandbox = require "support.sandbox"      -- busted's lpath has tests/?.lua
--   local sb = sandbox.start(opts)                 -- raises if it cannot start
--   ... sb.url, sb.port, sb.pid
--   ... sb.docspace        "http://127.0.0.1:PORT/docspace"
--       sb.outpost         ".../outpost/api/v1"          (older generation)
--       sb.outpost_latest  ".../outpost-latest/api/v1"   (current generation)
--       sb.agilicus        ".../agilicus"
--       sb.document360     ".../document360"
--       sb.credentials     the effective config sections {docspace = {user, password,
--                          bearer_token, api_key, auth_cookie, oauth2_token},
--                          outpost = {admin_api_key, jwt_secret}, agilicus = {token},
--                          document360 = {api_token}}
--       sb.headers         ready-made auth headers: docspace (Basic), docspace_bearer,
--                          docspace_api_key, docspace_cookie, docspace_oauth2,
--                          outpost (admin key), agilicus, document360
--   sb:stop()  (or sandbox.stop(sb))               SIGTERM, then reap the process
--
-- opts (all optional):
--   rate = "5/60"          --rate
--   faults = "path.lua"    --faults FILE      fixture = "path.lua"   --fixture FILE
--   set = {["agilicus.token"] = "x", ...}     --set key=value (also reflected in sb.credentials)
--   args = {"--quiet"}     extra arguments    lua = "lua5.4"
--
-- A tiny HTTP/1.1 client for tests, on raw LuaSocket sockets:
--   local status, body, headers = sb:request("GET", "/docspace/...", {headers = {...}, body = "..."})
--     status is nil and body an error ("closed", "timeout", "truncated") on failure;
--     headers are lower-case; sb:json(...) is the same but decodes a JSON body.
--   local c = sb:connect()  c:request(...)  c:close()   -- one kept-alive connection
--   sb:admin(method, path, table_or_nil) -> status, decoded   (path under /_sandbox)
-- The sandbox process exits on its own when the test process goes away.
local socket = require "socket"

local M = {}

local function repo_root()
  local src = debug.getinfo(1, "S").source:sub(2)
  local dir = src:match("^(.*)/tests/support/[^/]*$")
  if dir and dir ~= "" then return dir end
  return "."
end

local ROOT = repo_root()
package.path = ROOT .. "/?.lua;" .. package.path
package.cpath = ROOT .. "/build/?.so;" .. package.cpath

local json = require "sandbox.json"
local util = require "sandbox.util"
local config = require "sandbox.config"
M.json = json

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Bound on the wait for the sandbox's first line, in seconds (it is up in
-- well under a second on an idle machine).
M.start_timeout = 60

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a") or ""
  f:close()
  return s
end

-- true while `pid` (our child) runs; a zombie waiting for proc:close() is not running
local function running(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  local state = stat:match("%)%s+(%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

local function my_pid()
  local f = io.open("/proc/self/stat", "r")
  if not f then return nil end
  local pid = f:read("l"):match("^(%d+)")
  f:close()
  return tonumber(pid)
end

-- HTTP client ---------------------------------------------------------------------

local Client = {}
Client.__index = Client

local function read_response(sock, method)
  local line, err = sock:receive("*l")
  if not line then return nil, err end
  local status = tonumber(line:match("^HTTP/1%.%d (%d%d%d)"))
  if not status then return nil, "bad status line: " .. line end
  local headers = {}
  while true do
    local h, herr = sock:receive("*l")
    if not h then return nil, herr == "closed" and "truncated" or herr end
    if h == "" then break end
    local k, v = h:match("^([^:]+):%s*(.-)%s*$")
    if k then headers[k:lower()] = v end
  end
  local body = ""
  if status >= 200 and status ~= 204 and status ~= 304 and method ~= "HEAD" then
    local n = tonumber(headers["content-length"] or "")
    if n then
      if n > 0 then
        local data, berr, partial = sock:receive(n)
        if not data then return nil, "truncated", { status = status, headers = headers, body = partial, err = berr } end
        body = data
      end
    else
      body = sock:receive("*a") or ""
    end
  end
  return status, body, headers
end
M.read_response = read_response

function Client:request(method, path, opts)
  opts = opts or {}
  local body = opts.body
  if type(body) == "table" then body = assert(json.encode(body)) end
  local lines = { string.format("%s %s HTTP/1.1", method, path), "Host: " .. self.host .. ":" .. self.port }
  local has_ct = false
  for k, v in pairs(opts.headers or {}) do
    if k:lower() == "content-type" then has_ct = true end
    lines[#lines + 1] = k .. ": " .. v
  end
  if body then
    if not has_ct then lines[#lines + 1] = "Content-Type: application/json" end
    lines[#lines + 1] = "Content-Length: " .. #body
  end
  if opts.close then lines[#lines + 1] = "Connection: close" end
  local ok, err = self.sock:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or ""))
  if not ok then return nil, err end
  return read_response(self.sock, method)
end

function Client:json(method, path, opts)
  local status, body, headers = self:request(method, path, opts)
  if not status then return nil, body, headers end
  local decoded = body
  if (headers["content-type"] or ""):find("json", 1, true) and body ~= "" then decoded = json.decode(body) end
  return status, decoded, headers, body
end

function Client:close() self.sock:close() end

function M.connect(host, port, timeout)
  local sock = assert(socket.tcp())
  sock:settimeout(timeout or 10)
  local ok, err = sock:connect(host, port)
  if not ok then return nil, err end
  return setmetatable({ sock = sock, host = host, port = port }, Client)
end

-- The sandbox process -----------------------------------------------------------

local Sandbox = {}
Sandbox.__index = Sandbox

function Sandbox:connect(timeout)
  return assert(M.connect(self.host, self.port, timeout))
end

function Sandbox:request(method, path, opts)
  local c = self:connect()
  local status, body, headers = c:request(method, path, opts)
  c:close()
  return status, body, headers
end

function Sandbox:json(method, path, opts)
  local c = self:connect()
  local a, b, h, raw = c:json(method, path, opts)
  c:close()
  return a, b, h, raw
end

function Sandbox:admin(method, path, body)
  return self:json(method, "/_sandbox" .. path, { body = body })
end

function Sandbox:stop()
  if self.stopped then return end
  self.stopped = true
  os.execute("kill " .. self.pid .. " 2>/dev/null")
  if self.proc then self.proc:close() end
  if self.stderr_path then os.remove(self.stderr_path) end
  if self.stdout_path then os.remove(self.stdout_path) end
end

function M.stop(sb) return sb:stop() end

local function auth_headers(c)
  return {
    docspace = { Authorization = "Basic " .. util.b64encode(c.docspace.user .. ":" .. c.docspace.password) },
    docspace_bearer = { Authorization = "Bearer " .. c.docspace.bearer_token },
    docspace_api_key = { ApiKeyBearer = c.docspace.api_key },
    docspace_cookie = { Cookie = "asc_auth_key=" .. c.docspace.auth_cookie },
    docspace_oauth2 = { Authorization = "Bearer " .. c.docspace.oauth2_token },
    outpost = { Authorization = "Bearer " .. c.outpost.admin_api_key },
    agilicus = { Authorization = "Bearer " .. c.agilicus.token },
    document360 = { api_token = c.document360.api_token },
  }
end

function M.start(opts)
  opts = opts or {}
  local args = { "--port", "0" }
  local parent = my_pid()
  if parent then args[#args + 1] = "--exit-with-parent"; args[#args + 1] = tostring(parent) end
  if opts.rate then args[#args + 1] = "--rate"; args[#args + 1] = opts.rate end
  if opts.faults then args[#args + 1] = "--faults"; args[#args + 1] = opts.faults end
  if opts.fixture then args[#args + 1] = "--fixture"; args[#args + 1] = opts.fixture end
  for k, v in pairs(opts.set or {}) do args[#args + 1] = "--set"; args[#args + 1] = k .. "=" .. v end
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = a end
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = shell_quote(a) end
  -- stdout goes to a file polled with a bound (never a blocking read of a
  -- pipe that may stay silent); `exec` keeps the popen'd shell's pid, and
  -- proc:close() in stop() reaps the process.
  local stdout_path, stderr_path = os.tmpname(), os.tmpname()
  local cmd = string.format("echo $$; exec %s %s %s >%s 2>%s", opts.lua or "lua5.4",
    shell_quote(ROOT .. "/bin/provision-sandbox"), table.concat(quoted, " "), shell_quote(stdout_path),
    shell_quote(stderr_path))
  local proc = assert(io.popen(cmd, "r"))
  local pid = tonumber(proc:read("l") or "")
  local limit = tonumber(os.getenv("PROVISION_SANDBOX_START_TIMEOUT") or "") or M.start_timeout
  local deadline = socket.gettime() + limit
  local line, url, why
  while pid do
    line = read_file(stdout_path):match("^([^\n]*)\n")
    url = line and line:match("^sandbox listening on (http://%S+)$")
    if url or line then break end
    if not running(pid) then why = "exited before listening"; break end
    if socket.gettime() > deadline then
      why = ("did not print its URL within %gs (the bound, $PROVISION_SANDBOX_START_TIMEOUT)"):format(limit)
      break
    end
    socket.sleep(0.02)
  end
  if not (pid and url) then
    local err = read_file(stderr_path)
    if pid then os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
    proc:close()
    os.remove(stdout_path)
    os.remove(stderr_path)
    error("sandbox did not start: " .. (why or tostring(line)) .. " " .. err, 2)
  end
  local host, port = url:match("^http://([^:/]+):(%d+)$")
  local cfg = config.load(opts.set or {})
  local sb = setmetatable({
    pid = pid, proc = proc, url = url, host = host, port = tonumber(port), stderr_path = stderr_path,
    stdout_path = stdout_path,
    docspace = url .. "/docspace",
    outpost = url .. "/outpost/api/v1",
    outpost_latest = url .. "/outpost-latest/api/v1",
    agilicus = url .. "/agilicus",
    document360 = url .. "/document360",
    credentials = { docspace = cfg.docspace, outpost = cfg.outpost, agilicus = cfg.agilicus,
                    document360 = cfg.document360 },
  }, Sandbox)
  sb.headers = auth_headers(cfg)
  return sb
end

return M
