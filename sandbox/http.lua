-- sandbox/http.lua: a small HTTP/1.1 server on LuaSocket.
--
-- One coroutine per connection, scheduled over socket.select: a coroutine
-- yields ("r"|"w", sock, deadline) to wait for I/O, or ("sleep", nil, wake_at);
-- it is resumed with true when ready or false on its deadline. Keep-alive and
-- pipelining, Content-Length and chunked request bodies, Expect: 100-continue,
-- a cap on header and body size (431/413), and garbage or a vanished client
-- only ever end that one connection.
--
--   local srv = http.new{host=, port=, handler=fn(req) -> res, max_body=, ...}
--   srv:port()  srv:run()  srv:stop()
--   http.sleep(seconds)   -- from inside a handler: pause this connection only
--
-- req: {method, target, path, query (raw string), version, headers (lower-case
--       names), body (string), peer (ip), conn_id}
-- res: {status, headers = {{name, value}, ...}, body = string,
--       fault = nil|"close"|"close_mid"|"truncate", close = bool, after = fn}
-- luacheck: max line length 210
local socket = require "socket"
local util = require "sandbox.util"

local M = {}

local REASONS = {
  [100] = "Continue", [200] = "OK", [201] = "Created", [204] = "No Content",
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [408] = "Request Timeout", [409] = "Conflict",
  [411] = "Length Required", [413] = "Payload Too Large", [415] = "Unsupported Media Type",
  [422] = "Unprocessable Entity", [429] = "Too Many Requests",
  [431] = "Request Header Fields Too Large", [500] = "Internal Server Error",
  [501] = "Not Implemented", [502] = "Bad Gateway", [503] = "Service Unavailable",
  [504] = "Gateway Timeout", [505] = "HTTP Version Not Supported",
}
M.REASONS = REASONS

local yield = coroutine.yield

function M.sleep(seconds)
  if seconds and seconds > 0 then yield("sleep", nil, socket.gettime() + seconds) end
end

-- Connection: buffered reads and writes that yield instead of blocking.
local Conn = {}
Conn.__index = Conn

function Conn:fill(deadline)
  while true do
    local data, err, partial = self.sock:receive(65536)
    local got = data or partial
    if got and #got > 0 then
      self.buf = self.buf .. got
      return true
    end
    if err ~= "timeout" then return nil, err or "closed" end
    if not yield("r", self.sock, deadline) then return nil, "timeout" end
  end
end

-- Reads exactly n bytes (from the buffer first) without quadratic copying.
function Conn:read_exact(n, deadline)
  local parts, have = {}, 0
  if #self.buf > 0 then
    local take = self.buf:sub(1, n)
    parts[1], have = take, #take
    self.buf = self.buf:sub(#take + 1)
  end
  while have < n do
    local data, err, partial = self.sock:receive(math.min(n - have, 1048576))
    local got = data or partial
    if got and #got > 0 then
      parts[#parts + 1] = got
      have = have + #got
    elseif err ~= "timeout" then
      return nil, err or "closed"
    elseif not yield("r", self.sock, deadline) then
      return nil, "timeout"
    end
  end
  return table.concat(parts)
end

function Conn:read_line(deadline, limit)
  while true do
    local e = self.buf:find("\r\n", 1, true)
    if e then
      local line = self.buf:sub(1, e - 1)
      self.buf = self.buf:sub(e + 2)
      return line
    end
    if #self.buf > limit then return nil, "too long" end
    local ok, err = self:fill(deadline)
    if not ok then return nil, err end
  end
end

function Conn:send(data, deadline)
  local i, n = 1, #data
  while i <= n do
    local last, err, lastpartial = self.sock:send(data, i)
    if last then
      i = last + 1
    else
      if err ~= "timeout" then return nil, err end
      i = (lastpartial or i - 1) + 1
      if i <= n and not yield("w", self.sock, deadline) then return nil, "timeout" end
    end
  end
  return true
end

local Server = {}
Server.__index = Server

function M.new(opts)
  local self = setmetatable({
    host = opts.host or "127.0.0.1",
    handler = assert(opts.handler, "handler required"),
    max_body = opts.max_body or 8 * 1024 * 1024,
    max_header = opts.max_header or 64 * 1024,
    idle_timeout = opts.idle_timeout or 60,
    request_timeout = opts.request_timeout or 30,
    max_connections = opts.max_connections or 900, -- select() caps fds at FD_SETSIZE (1024)
    on_error = opts.on_error or function(msg) io.stderr:write("sandbox: ", msg, "\n") end,
    tick = opts.tick, -- optional fn() called about once a second
    tasks = {},
    nconn = 0,
    next_conn_id = 0,
    stopping = false,
  }, Server)
  local sock = assert(socket.tcp())
  sock:setoption("reuseaddr", true)
  local ok, err = sock:bind(self.host, opts.port or 0)
  if not ok then sock:close(); return nil, "cannot bind " .. self.host .. ":" .. tostring(opts.port) .. ": " .. tostring(err) end
  ok, err = sock:listen(512)
  if not ok then sock:close(); return nil, "cannot listen: " .. tostring(err) end
  sock:settimeout(0)
  self.listener = sock
  return self
end

function Server:port()
  local _, port = self.listener:getsockname()
  return tonumber(port)
end

function Server:stop() self.stopping = true end

local function header_block(status, headers, body_len, keep_alive)
  local out = { string.format("HTTP/1.1 %d %s\r\n", status, REASONS[status] or "Status") }
  local has = {}
  for _, h in ipairs(headers or {}) do
    has[h[1]:lower()] = true
    out[#out + 1] = h[1] .. ": " .. tostring(h[2]) .. "\r\n"
  end
  if not has["date"] then out[#out + 1] = "Date: " .. util.http_date() .. "\r\n" end
  if not has["content-length"] and body_len then
    out[#out + 1] = "Content-Length: " .. body_len .. "\r\n"
  end
  out[#out + 1] = keep_alive and "Connection: keep-alive\r\n" or "Connection: close\r\n"
  out[#out + 1] = "\r\n"
  return table.concat(out)
end

local function simple(status, message)
  local body = '{"message":"' .. message .. '"}'
  return { status = status, headers = { { "Content-Type", "application/json" } }, body = body, close = true }
end

-- Reads one request. Returns req, or nil and either a response to send
-- before closing or nothing (just close).
function Server:read_request(conn, first)
  local deadline = socket.gettime() + (first and self.request_timeout or self.idle_timeout)
  -- skip empty lines before a request line (RFC 9112 2.2)
  local line, err
  repeat
    line, err = conn:read_line(deadline, self.max_header)
    if not line then
      if err == "too long" then return nil, simple(431, "request line too long") end
      return nil
    end
  until line ~= ""
  deadline = socket.gettime() + self.request_timeout
  local method, target, major, minor = line:match("^(%u+) (%S+) HTTP/(%d)%.(%d)$")
  if not method then return nil, simple(400, "malformed request line") end
  if major ~= "1" then return nil, simple(505, "only HTTP/1.x is served") end
  local headers, size = {}, #line
  while true do
    local h
    h, err = conn:read_line(deadline, self.max_header)
    if not h then
      if err == "too long" then return nil, simple(431, "header too long") end
      return nil
    end
    if h == "" then break end
    size = size + #h
    if size > self.max_header then return nil, simple(431, "headers too large") end
    local name, value = h:match("^([!#$%%&'*+%-.^_`|~%w]+):[ \t]*(.-)[ \t]*$")
    if not name then return nil, simple(400, "malformed header") end
    name = name:lower()
    if headers[name] then
      headers[name] = headers[name] .. (name == "cookie" and "; " or ", ") .. value
    else
      headers[name] = value
    end
  end
  local req = {
    method = method, target = target, version = major .. "." .. minor,
    headers = headers, peer = conn.peer, conn_id = conn.id,
  }
  req.path, req.query = target:match("^([^?#]*)%??([^#]*)")
  if not req.path or req.path:sub(1, 1) ~= "/" then return nil, simple(400, "bad request target") end

  local te = headers["transfer-encoding"]
  local cl = headers["content-length"]
  local function continue_if_asked()
    if (headers["expect"] or ""):lower() == "100-continue" then
      return conn:send("HTTP/1.1 100 Continue\r\n\r\n", deadline)
    end
    return true
  end
  if te then
    if not te:lower():find("chunked", 1, true) then return nil, simple(501, "unsupported transfer-encoding") end
    if not continue_if_asked() then return nil end
    local parts, total = {}, 0
    while true do
      local sz = conn:read_line(deadline, 1024)
      if not sz then return nil end
      local n = tonumber(sz:match("^%s*(%x+)"), 16)
      if not n then return nil, simple(400, "bad chunk size") end
      if n == 0 then
        repeat -- trailers
          local t = conn:read_line(deadline, self.max_header)
          if not t then return nil end
        until t == ""
        break
      end
      total = total + n
      if total > self.max_body then return nil, simple(413, "request body too large") end
      local chunk = conn:read_exact(n + 2, deadline)
      if not chunk then return nil end
      parts[#parts + 1] = chunk:sub(1, n)
    end
    req.body = table.concat(parts)
  elseif cl then
    if not cl:match("^%d+$") then return nil, simple(400, "bad content-length") end
    local n = tonumber(cl)
    if n > self.max_body then return nil, simple(413, "request body too large") end
    if n > 0 then
      if not continue_if_asked() then return nil end
      req.body = conn:read_exact(n, deadline)
      if not req.body then return nil end
    else
      req.body = ""
    end
  else
    req.body = ""
  end
  local conn_hdr = (headers["connection"] or ""):lower()
  if req.version == "1.0" then
    req.keep_alive = conn_hdr:find("keep-alive", 1, true) ~= nil
  else
    req.keep_alive = conn_hdr:find("close", 1, true) == nil
  end
  return req
end

function Server:write_response(conn, req, res)
  local body = res.body or ""
  local deadline = socket.gettime() + self.request_timeout
  local keep = req and req.keep_alive and not res.close and not res.fault
  local no_body = (req and req.method == "HEAD") or res.status == 204 or res.status == 304
  if res.fault == "close" then return false end
  local len = (res.status ~= 204 and res.status ~= 304) and #body or nil
  local head = header_block(res.status, res.headers, len, keep)
  if res.fault == "close_mid" then
    conn:send(head:sub(1, math.max(1, #head // 2)), deadline)
    return false
  end
  if res.fault == "truncate" then
    if #body < 2 then body = body .. string.rep(" ", 64) end
    head = header_block(res.status, res.headers, #body, false)
    conn:send(head .. body:sub(1, #body // 2), deadline)
    return false
  end
  local ok = conn:send(no_body and head or head .. body, deadline)
  return ok and keep
end

function Server:serve(conn)
  local first = true
  while not self.stopping do
    local req, early = self:read_request(conn, first)
    first = false
    if not req then
      if early then self:write_response(conn, nil, early) end
      return
    end
    local ok, res = pcall(self.handler, req)
    if not ok then
      self.on_error("handler error: " .. tostring(res))
      res = simple(500, "internal sandbox error")
    end
    local again = self:write_response(conn, req, res)
    if res.after then pcall(res.after) end
    if not again then return end
  end
end

function Server:spawn(sock)
  self.next_conn_id = self.next_conn_id + 1
  local peer = sock:getpeername()
  local conn = setmetatable({ sock = sock, buf = "", id = self.next_conn_id, peer = peer }, Conn)
  sock:settimeout(0)
  sock:setoption("tcp-nodelay", true)
  self.nconn = self.nconn + 1
  local co = coroutine.create(function()
    local ok, err = pcall(self.serve, self, conn)
    if not ok then self.on_error("connection error: " .. tostring(err)) end
    sock:close()
    self.nconn = self.nconn - 1
  end)
  local task = { co = co }
  self.tasks[co] = task
  self:resume(task)
end

function Server:resume(task, ...)
  local ok, kind, sock, deadline = coroutine.resume(task.co, ...)
  if not ok then
    self.on_error("task crashed: " .. tostring(kind))
  end
  if coroutine.status(task.co) == "dead" then
    self.tasks[task.co] = nil
    return
  end
  task.wait, task.sock, task.deadline = kind, sock, deadline
end

function Server:accept_all()
  while self.nconn < self.max_connections do
    local client = self.listener:accept()
    if not client then return end
    self:spawn(client)
  end
end

function Server:run()
  local last_tick = socket.gettime()
  while not self.stopping do
    local recvt, sendt, bysock = {}, {}, {}
    if self.nconn < self.max_connections then recvt[1] = self.listener end
    local now = socket.gettime()
    local timeout = 1.0
    for _, t in pairs(self.tasks) do
      if t.deadline and t.deadline - now < timeout then timeout = t.deadline - now end
      if t.wait == "r" then
        recvt[#recvt + 1] = t.sock; bysock[t.sock] = t
      elseif t.wait == "w" then
        sendt[#sendt + 1] = t.sock; bysock[t.sock] = t
      end
    end
    if timeout < 0 then timeout = 0 end
    local r, w = socket.select(recvt, sendt, timeout)
    local ready = {}
    for _, s in ipairs(r or {}) do
      if s == self.listener then self:accept_all()
      elseif bysock[s] then ready[#ready + 1] = bysock[s] end
    end
    for _, s in ipairs(w or {}) do
      if bysock[s] then ready[#ready + 1] = bysock[s] end
    end
    local done = {}
    for _, t in ipairs(ready) do
      if not done[t] and self.tasks[t.co] then done[t] = true; self:resume(t, true) end
    end
    now = socket.gettime()
    local expired = {}
    for _, t in pairs(self.tasks) do
      if not done[t] and t.deadline and t.deadline <= now then expired[#expired + 1] = t end
    end
    for _, t in ipairs(expired) do
      if self.tasks[t.co] then self:resume(t, t.wait == "sleep") end
    end
    if self.tick and now - last_tick >= 1 then
      last_tick = now
      pcall(self.tick)
    end
  end
  self.listener:close()
  for _, t in pairs(self.tasks) do
    if t.sock then pcall(t.sock.close, t.sock) end
  end
end

return M
