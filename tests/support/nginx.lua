--[[ tests/support/nginx.lua: a real nginx for tests, from a private prefix.

Starts Debian's nginx (nginx-light, /usr/sbin/nginx; override with the
NGINX_BIN environment variable) in a fresh temporary folder, on free
127.0.0.1 ports, one plain HTTP and one TLS, with a throwaway CA and a server
certificate for 127.0.0.1 / localhost made at start with the openssl command.
Nothing outside the temporary folder is read or written (temp paths, logs and
the pid file all live in it). Needs: nginx, openssl, lua-socket.

API
  local nginx = require "tests.support.nginx"
  local srv = nginx.start()        -- raises an error (with error.log) on failure
  srv.port, srv.tls_port           -- numbers
  srv.base, srv.tls_base           -- "http://127.0.0.1:PORT", "https://127.0.0.1:TLS_PORT"
  srv.ca_file                      -- PEM of the CA that signed the server certificate
  srv.proxy_port, srv.proxy        -- a forward proxy for http:// URLs ("http://127.0.0.1:P"):
                                   -- whatever the URL's host, it serves this server's
                                   -- locations and sets X-Test: via-proxy
  srv.mtls_port, srv.mtls_base     -- TLS port that requires a client certificate
  srv.client_cert, srv.client_key  -- a client certificate (CN=provision-test-client) and key
  srv.client_key_enc, srv.client_key_password  -- the same key encrypted (AES-256)
  srv.dir                          -- the prefix folder (nginx.conf, error.log, www/, ...)
  srv.json, srv.big_size           -- content of /small.json; size of /big.bin (10 MiB)
  srv:url(path [, tls])            -- base .. path
  srv:read_file(path)              -- contents of a file (e.g. a stored request body)
  srv:stop()                       -- idempotent; nginx.stop(srv) is the same
  nginx.stop()                     -- stops every server started by this module

  Use it from busted as
    local srv
    setup(function() srv = nginx.start() end)
    teardown(function() nginx.stop(srv) end)
  (a forgotten stop still happens when the Lua state closes: __gc.)

Set PROVISION_KEEP_NGINX=1 to keep the folder after stop (for reading logs).

Locations served (plain and TLS alike, keep-alive on, HTTP/1.1):
  /whoami        (mTLS port only) 200 "<client subject DN>"
  /small.json    {"ok":true,"name":"provision","n":42}   application/json
  /big.bin       10 MiB of 'x' (Content-Length known)
  /slow.bin      the same 10 MiB, sent at 64 KiB/s (for mid-body timeouts)
  /echo          200 "<method> <request uri> <X-Test header>"  text/plain
                 (nginx reads no request body here)
  /headers       200 "headers" with Set-Cookie: a=1, Set-Cookie: b=2,
                 X-Multi: one, X-Multi: two, X-Single: yes
  /status/NNN    NNN in 200 201 204 400 401 403 404 409 429 500 502 503,
                 body "status NNN" (none for 204)
  /redirect      302 to /small.json
  /upload        any method with a body: nginx stores the body in a file and
                 answers 200 "<method> <content length> <path of stored body>"
                 (read it back with srv:read_file(path))
  /dav/NAME      WebDAV PUT/DELETE/GET of files (PUT stores, GET reads back)
]]

local socket = require "socket"

local M = {}
local running = {}   -- servers started and not yet stopped

local proc = require "support.proc"
local sh, capture, write_file, read_file, quote, free_port, alive =
  proc.sh, proc.capture, proc.write_file, proc.read_file, proc.quote, proc.free_port, proc.alive

local function make_certs(dir)
  local q = quote
  local ext = dir .. "/server.ext"
  write_file(ext, table.concat({
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage=serverAuth",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
  }, "\n") .. "\n")
  local ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
  local cmds = {
    ("openssl req -x509 %s -keyout %s -out %s -days 2 -subj /CN=provision-test-ca"
      .. " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign")
      :format(ec, q(dir .. "/ca.key"), q(dir .. "/ca.pem")),
    ("openssl req %s -keyout %s -out %s -subj /CN=localhost")
      :format(ec, q(dir .. "/server.key"), q(dir .. "/server.csr")),
    ("openssl x509 -req -in %s -CA %s -CAkey %s -CAcreateserial -out %s -days 2 -extfile %s")
      :format(q(dir .. "/server.csr"), q(dir .. "/ca.pem"), q(dir .. "/ca.key"),
              q(dir .. "/server.pem"), q(ext)),
  }
  write_file(dir .. "/client.ext", "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n")
  cmds[#cmds + 1] = ("openssl req %s -keyout %s -out %s -subj /CN=provision-test-client")
    :format(ec, q(dir .. "/client.key"), q(dir .. "/client.csr"))
  cmds[#cmds + 1] = ("openssl x509 -req -in %s -CA %s -CAkey %s -CAcreateserial -out %s -days 2 -extfile %s")
    :format(q(dir .. "/client.csr"), q(dir .. "/ca.pem"), q(dir .. "/ca.key"),
            q(dir .. "/client.pem"), q(dir .. "/client.ext"))
  cmds[#cmds + 1] = ("openssl pkey -in %s -out %s -aes256 -passout pass:test-key-password")
    :format(q(dir .. "/client.key"), q(dir .. "/client.enc.key"))
  for _, c in ipairs(cmds) do
    if not sh(c .. " >>" .. q(dir .. "/openssl.log") .. " 2>&1") then
      error("openssl failed: " .. c .. "\n" .. (read_file(dir .. "/openssl.log") or ""))
    end
  end
end

local STATUSES = { 200, 201, 204, 400, 401, 403, 404, 409, 429, 500, 502, 503 }

local function config(dir, port, tls_port, proxy_port, mtls_port)
  local is_root = capture("id -u"):match("^0") ~= nil
  local status_locs = {}
  for _, s in ipairs(STATUSES) do
    status_locs[#status_locs + 1] = s == 204
      and "    location = /status/204 { return 204; }"
      or ("    location = /status/%d { return %d \"status %d\"; }"):format(s, s, s)
  end
  return ([[
# generated by tests/support/nginx.lua
%s
daemon off;
master_process on;
worker_processes 1;
pid DIR/nginx.pid;
error_log DIR/error.log warn;
events { worker_connections 512; }
http {
  access_log DIR/access.log;
  client_body_temp_path DIR/tmp/body;
  proxy_temp_path DIR/tmp/proxy;
  fastcgi_temp_path DIR/tmp/fastcgi;
  uwsgi_temp_path DIR/tmp/uwsgi;
  scgi_temp_path DIR/tmp/scgi;
  types { application/json json; text/plain txt; application/octet-stream bin; }
  default_type application/octet-stream;
  keepalive_timeout 60s;
  keepalive_requests 100000;
  sendfile on;
  server {
    listen 127.0.0.1:PORT;
    listen 127.0.0.1:TLS_PORT ssl;
    server_name localhost;
    ssl_certificate DIR/server.pem;
    ssl_certificate_key DIR/server.key;
    root DIR/www;
    client_max_body_size 64m;

    location = /echo {
      default_type text/plain;
      return 200 "$request_method $request_uri $http_x_test";
    }
    location = /headers {
      default_type text/plain;
      add_header Set-Cookie a=1;
      add_header Set-Cookie b=2;
      add_header X-Multi one;
      add_header X-Multi two;
      add_header X-Single yes;
      return 200 "headers";
    }
    location = /redirect { return 302 /small.json; }
    location = /slow.bin { limit_rate 64k; try_files /big.bin =404; }
STATUS_LOCATIONS
    # the body is stored in a kept file, then the request is proxied to
    # /_stored, which reports the method, length and file path
    location = /upload {
      client_body_in_file_only on;
      client_body_buffer_size 1m;
      proxy_pass http://127.0.0.1:PORT/_stored;
      proxy_set_header X-Body-File $request_body_file;
      proxy_set_header X-Method $request_method;
      proxy_set_header X-Length $content_length;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_method GET;
    }
    location = /_stored {
      default_type text/plain;
      return 200 "$http_x_method $http_x_length $http_x_body_file";
    }
    location /dav/ {
      dav_methods PUT DELETE;
      create_full_put_path on;
      client_body_temp_path DIR/tmp/dav;
    }
  }
  server {
    listen 127.0.0.1:PROXY_PORT;
    location / {
      proxy_pass http://127.0.0.1:PORT;
      proxy_set_header X-Test via-proxy;
      proxy_set_header Host $host;
    }
  }
  server {
    listen 127.0.0.1:MTLS_PORT ssl;
    ssl_certificate DIR/server.pem;
    ssl_certificate_key DIR/server.key;
    ssl_client_certificate DIR/ca.pem;
    ssl_verify_client on;
    location = /whoami { default_type text/plain; return 200 "$ssl_client_s_dn"; }
  }
}
]]):gsub("STATUS_LOCATIONS", table.concat(status_locs, "\n"))
     :gsub("MTLS_PORT", tostring(mtls_port)):gsub("TLS_PORT", tostring(tls_port))
     :gsub("PROXY_PORT", tostring(proxy_port)):gsub("PORT", tostring(port))
     :gsub("DIR", dir)
     :format(is_root and "user root root;" or "")
end

local Server = {}
Server.__index = Server

function Server:url(path, tls) return (tls and self.tls_base or self.base) .. path end
function Server.read_file(_, path) return read_file(path) end

function Server:stop()
  if self.stopped then return end
  self.stopped = true
  running[self] = nil
  if self.pid and alive(self.pid) then
    sh("kill -TERM " .. self.pid .. " 2>/dev/null")
    local t0 = socket.gettime()
    while alive(self.pid) and socket.gettime() - t0 < 5 do socket.sleep(0.02) end
    if alive(self.pid) then sh("kill -KILL " .. self.pid .. " 2>/dev/null") end
  end
  if os.getenv("PROVISION_KEEP_NGINX") ~= "1" and self.dir then sh("rm -rf " .. quote(self.dir)) end
end
Server.__gc = Server.stop
Server.__close = Server.stop

local function wait_listening(pid, ports)
  local t0 = socket.gettime()
  local pending = {}
  for _, p in ipairs(ports) do pending[p] = true end
  while socket.gettime() - t0 < 10 do
    if not alive(pid) then return false end
    for p in pairs(pending) do
      local c = socket.tcp()
      c:settimeout(0.2)
      if c:connect("127.0.0.1", p) then pending[p] = nil end
      c:close()
    end
    if next(pending) == nil then return true end
    socket.sleep(0.02)
  end
  return false
end

local function try_start(dir, bin)
  local ports, seen = {}, {}
  while #ports < 4 do
    local p = free_port()
    if not seen[p] then seen[p] = true; ports[#ports + 1] = p end
  end
  write_file(dir .. "/nginx.conf", config(dir, table.unpack(ports)))
  local cmd = ("%s -p %s -c %s -e %s >>%s 2>&1 </dev/null & echo $!"):format(
    quote(bin), quote(dir .. "/"), quote(dir .. "/nginx.conf"), quote(dir .. "/error.log"),
    quote(dir .. "/nginx.out"))
  local pid = tonumber(capture("sh -c " .. quote(cmd)):match("%d+"))
  if not pid then return nil end
  if wait_listening(pid, ports) then return pid, ports end
  if alive(pid) then sh("kill -KILL " .. pid) end
  return nil
end

function M.start()
  local bin = os.getenv("NGINX_BIN") or "/usr/sbin/nginx"
  local dir = capture("mktemp -d /tmp/provision-nginx.XXXXXX"):gsub("%s+$", "")
  assert(dir ~= "", "mktemp failed")
  for _, sub in ipairs({ "www", "www/dav", "tmp", "tmp/body", "tmp/proxy", "tmp/fastcgi",
                         "tmp/uwsgi", "tmp/scgi", "tmp/dav" }) do
    assert(sh("mkdir -p " .. quote(dir .. "/" .. sub)))
  end
  local srv = setmetatable({ dir = dir }, Server)
  srv.json = '{"ok":true,"name":"provision","n":42}'
  srv.big_size = 10 * 1024 * 1024
  write_file(dir .. "/www/small.json", srv.json)
  write_file(dir .. "/www/big.bin", string.rep("x", srv.big_size))
  local ok, err = pcall(make_certs, dir)
  if not ok then srv:stop(); error(err, 2) end
  srv.ca_file = dir .. "/ca.pem"

  local pid, ports
  for _ = 1, 3 do   -- a free port may be taken between probe and bind: retry
    pid, ports = try_start(dir, bin)
    if pid then break end
  end
  if not pid then
    local log = (read_file(dir .. "/error.log") or "") .. (read_file(dir .. "/nginx.out") or "")
    srv:stop()
    error("nginx did not start:\n" .. log, 2)
  end
  srv.pid = pid
  srv.port, srv.tls_port, srv.proxy_port, srv.mtls_port = table.unpack(ports)
  srv.base = "http://127.0.0.1:" .. srv.port
  srv.tls_base = "https://127.0.0.1:" .. srv.tls_port
  srv.proxy = "http://127.0.0.1:" .. srv.proxy_port
  srv.mtls_base = "https://127.0.0.1:" .. srv.mtls_port
  srv.client_cert, srv.client_key = dir .. "/client.pem", dir .. "/client.key"
  srv.client_key_enc, srv.client_key_password = dir .. "/client.enc.key", "test-key-password"
  running[srv] = true
  return srv
end

function M.stop(srv)
  if srv then return srv:stop() end
  for s in pairs(running) do s:stop() end
end

return M
