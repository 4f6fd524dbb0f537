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

-- Bodies of the locations add_locations serves.
M.USER_JSON = '{"id":"u","email":"ada@example.com","first_name":"Ada","last_name":"Lovelace",'
  .. '"org_id":"o1","type":"user","status":"active","created":"2024-01-02T12:00:00Z",'
  .. '"roles":{"o1":["admin","viewer"]},"member_of":[{"id":"g1","name":"Engineering"}],'
  .. '"external_id":null,"enabled":true,"cascade":false}'
M.TENANT_JSON = '{"id":"t1","destinations_count":3,"topics":["user.created","user.deleted"],'
  .. '"created_at":"2024-01-02T12:00:00Z","updated_at":"2024-01-02T12:00:00Z","metadata":{"env":"prod"}}'

-- An Outpost TenantPaginatedResult of about `size` bytes (the 50 KB list).
function M.tenant_list(size)
  local parts, n, total = {}, 0, 0
  while total < size - 300 do
    n = n + 1
    local s = string.format('{"id":"tenant-%05d","destinations_count":%d,"topics":["user.created",'
      .. '"user.updated","user.deleted"],"created_at":"2024-01-%02dT12:00:00Z",'
      .. '"updated_at":"2024-02-%02dT08:30:00Z","metadata":{"env":"prod","team":"team-%d"}}',
      n, n % 7, n % 28 + 1, n % 28 + 1, n % 13)
    parts[n] = s
    total = total + #s + 1
  end
  return '{"models":[' .. table.concat(parts, ",") .. '],"pagination":{"next":"cursor-abc","prev":null},"count":'
    .. n .. '}', n
end

-- Adds the benches' locations to an nginx of tests/support/nginx.lua, then
-- reloads it (SIGHUP) and waits until the new worker answers:
--   /users/<id>     a 288-byte JSON user
--   /tenants/<id>   a JSON Outpost tenant
--   /tenants        a 50 KB tenant list (a static file)
--   /tls-reused     nginx's $ssl_session_reused
-- plus a TLS session cache (libcurl 7.88 does not use TLS 1.2 tickets: without
-- one, every new connection would be a full handshake).
function M.add_locations(srv)
  local core = require "provision.core"
  local list = M.tenant_list(50 * 1024)
  local lf = assert(io.open(srv.dir .. "/www/tenants.json", "w"))
  lf:write(list)
  lf:close()
  local conf_path = srv.dir .. "/nginx.conf"
  local conf = assert(M.read(conf_path))
  local loc = "    location ^~ /users/ { default_type application/json; return 200 '" .. M.USER_JSON .. "'; }\n"
    .. "    location ^~ /tenants/ { default_type application/json; return 200 '" .. M.TENANT_JSON .. "'; }\n"
    .. "    location = /tenants { default_type application/json; try_files /tenants.json =404; }\n"
    .. "    location = /tls-reused { default_type text/plain; return 200 \"$ssl_session_reused\"; }\n"
    .. "    location = /echo {"
  local new, n = conf:gsub("    location = /echo {", function() return loc end, 1)
  assert(n == 1, "nginx.conf layout changed: no /echo location to anchor on")
  new, n = new:gsub("\n    root ", "\n    ssl_session_cache shared:BENCH:1m;\n    root ", 1)
  assert(n == 1, "nginx.conf layout changed: no root line to anchor on")
  local f = assert(io.open(conf_path, "w"))
  f:write(new)
  f:close()
  assert(os.execute("kill -HUP " .. srv.pid))
  local t0 = core.now()
  while core.now() - t0 < 10 do
    local s = core.session()
    local a = s:request({ url = srv:url("/tenants/t1") })
    local b = s:request({ url = srv:url("/tenants") })
    s:close()
    if a and a.status == 200 and a.body == M.TENANT_JSON and b and b.status == 200 and b.body == list then
      return list
    end
    core.sleep(0.05)
  end
  error("nginx did not pick up the bench locations:\n" .. (M.read(srv.dir .. "/error.log") or ""))
end

return M
