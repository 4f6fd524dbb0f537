-- provision.transport.ngx: the transport for nginx Lua hosts (lua-nginx-module,
-- OpenResty), on ngx.socket.tcp cosockets, so that a provision call never
-- blocks the nginx worker. Same contract as provision.transport.curl:
--
--   local T = require("provision.transport.ngx")
--   local t = assert(T.new{ timeout = 10, verify = true })
--   t:send({req1, req2, ...}) -> {resp_or_err, ...}   (in order; run at once,
--                                                       one light thread each)
--   T.now(), T.sleep(s)         ngx.now() after ngx.update_time(); ngx.sleep(s)
--   t:stats()                   {requests, connections, reused, errors}
--   t:close()                   later sends answer {kind = "closed"}
--
-- A request is {method, url, headers = {{name, value}, ...} or {Name = value},
-- body, timeout, connect_timeout, max_body, verify}; a response is {status,
-- headers (lower-case keys, case-insensitive lookup; repeats joined with ", ",
-- set-cookie with "\n"), header_list, trailers and trailer_list (the same for
-- chunked trailers, empty when none), body, url, http_version, time,
-- new_connections, reused}; a header or trailer line holding a bare CR or a
-- NUL refuses the response (kind protocol); an error is {kind, message, request_sent, time}
-- with kind one of invalid_argument, dns, connect, timeout, tls, too_large,
-- network, protocol, closed, internal. request_sent is false when the
-- request provably never left (invalid, DNS, connect, TLS handshake).
--
-- Usable where cosockets are: rewrite/access/content_by_lua*, ngx.timer.*,
-- ssl_certificate_by_lua* (not init_by_lua*, set_by_lua*, header/body
-- filters or log_by_lua*). TLS trust comes from nginx.conf
-- (lua_ssl_trusted_certificate, lua_ssl_verify_depth); host names need a
-- `resolver` in nginx.conf or an entry in new{resolve = {host = "ip"}}.
-- Lua 5.1 syntax only. See docs/embedding.md.
-- luacheck: read globals ngx
local ngx = ngx

local M = {}
local Transport = {}
Transport.__index = Transport

local DEFAULTS = {
  connect_timeout = 10,       -- seconds (includes name resolution)
  timeout = 60,               -- total seconds per request, 0 = no limit
  read_timeout = 60,          -- seconds between two reads (capped by what is left of timeout)
  send_timeout = 60,          -- seconds for one send (capped likewise)
  max_body = 64 * 1024 * 1024,
  max_header_bytes = 1024 * 1024,
  pool_size = 32,             -- idle keep-alive connections kept per pool (per worker)
  keepalive_timeout = 60,     -- seconds an idle pooled connection is kept
  max_concurrency = 16,       -- light threads per send()
}
local NUMBER_OPTS = { "connect_timeout", "timeout", "read_timeout", "send_timeout", "max_body",
                      "max_header_bytes", "pool_size", "keepalive_timeout", "max_concurrency" }
-- Options of the curl transport that cosockets cannot honour per client.
local UNSUPPORTED = {
  ca_file = "set lua_ssl_trusted_certificate in nginx.conf",
  ca_path = "set lua_ssl_trusted_certificate in nginx.conf",
  cert = "client certificates are not supported by this transport",
  key = "client certificates are not supported by this transport",
  key_password = "client certificates are not supported by this transport",
  proxy = "proxies are not supported by this transport",
}
local CHUNK = 65536

-- Errors ------------------------------------------------------------------------

local ErrorMT = { __tostring = function(e) return e.kind .. ": " .. e.message end }

local function fail(kind, message, request_sent)
  return setmetatable({ kind = kind, message = message, request_sent = request_sent and true or false },
    ErrorMT)
end

-- Response headers: lower-case keys, lookups by any case.
local HeadersMT = {
  __index = function(t, k)
    if type(k) == "string" then
      local lk = k:lower()
      if lk ~= k then return rawget(t, lk) end
    end
    return nil
  end,
}

local function clock()
  ngx.update_time()
  return ngx.now()
end

-- Requests ----------------------------------------------------------------------

local TOKEN = "^[%w!#$%%&'*+%-.^_`|~]+$"

local function has_ctl(s) return s:find("[%z\r\n]") ~= nil end

-- url -> {scheme, host, port, target, authority, sni} or nil, message
local function parse_url(url)
  if has_ctl(url) then return nil, "url contains CR, LF or NUL" end
  if url:find("[%c%s\127]") then return nil, "malformed url (space or control character)" end
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then return nil, "malformed url" end
  scheme = scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then return nil, "only http:// and https:// urls are accepted" end
  local authority, target = rest:match("^([^/?#]*)(.*)$")
  if authority:find("@", 1, true) then return nil, "credentials in the url are not supported" end
  local host, port
  if authority:sub(1, 1) == "[" then
    host, port = authority:match("^(%[[%x:.]+%])(.*)$")
  else
    host, port = authority:match("^([%w._~%-]+)(.*)$")
  end
  if not host then return nil, "malformed url (host)" end
  local default_port = scheme == "https" and 443 or 80
  if port == "" or port == ":" then
    port = default_port
  else
    port = tonumber(port:match("^:(%d+)$"))
    if not port or port < 1 or port > 65535 then return nil, "malformed url (port)" end
  end
  target = target:gsub("#.*$", "")
  if target == "" then target = "/" elseif target:sub(1, 1) == "?" then target = "/" .. target end
  local sni = host
  if sni:sub(1, 1) == "[" then sni = sni:sub(2, -2) end
  return {
    scheme = scheme, host = host:lower(), port = port, target = target, sni = sni:lower(),
    authority = host .. (port ~= default_port and (":" .. port) or ""),
  }
end

local BODY_METHODS = { POST = true, PUT = true, PATCH = true }
local IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true }
local OWN_HEADERS = { ["content-length"] = true, ["transfer-encoding"] = true }

local function number_field(req, k, name, default)
  local v = req[name]
  if v == nil then return default end
  if type(v) ~= "number" or v ~= v or v < 0 then
    error("request " .. k .. ": " .. name .. " must be a number >= 0", 3)
  end
  return v
end

-- Validates one request and builds its wire form. Raises on wrong types (as
-- provision.core does); returns a spec or an invalid_argument error.
local function prepare(self, req, k)
  if type(req) ~= "table" then error("request " .. k .. ": table expected, got " .. type(req), 2) end
  local method = req.method
  if method == nil then method = "GET" end
  if type(method) ~= "string" then error("request " .. k .. ": method must be a string", 2) end
  if type(req.url) ~= "string" then error("request " .. k .. ": url must be a string", 2) end
  local body = req.body
  if body ~= nil and type(body) ~= "string" then error("request " .. k .. ": body must be a string", 2) end
  local headers = req.headers
  if headers ~= nil and type(headers) ~= "table" then error("request " .. k .. ": headers must be a table", 2) end
  local spec = {
    connect_timeout = number_field(req, k, "connect_timeout", self.opts.connect_timeout),
    timeout = number_field(req, k, "timeout", self.opts.timeout),
    max_body = number_field(req, k, "max_body", self.opts.max_body),
    verify = self.opts.verify,
    method = method,
    url = req.url,
  }
  if req.verify ~= nil then
    if type(req.verify) ~= "boolean" then error("request " .. k .. ": verify must be a boolean", 2) end
    spec.verify = req.verify
  end
  for name, hint in pairs(UNSUPPORTED) do
    if req[name] ~= nil then return fail("invalid_argument", name .. " is not available: " .. hint) end
  end
  if #method > 32 or not method:find(TOKEN) then return fail("invalid_argument", "method is not an HTTP token") end
  local u, uerr = parse_url(req.url)
  if not u then return fail("invalid_argument", uerr) end
  spec.u = u
  if method == "HEAD" and body ~= nil then
    return fail("invalid_argument", "a HEAD request cannot carry a body")
  end

  -- caller headers, validated, in order
  local list = {}
  if headers ~= nil then
    if headers[1] ~= nil then
      for i = 1, #headers do
        local h = headers[i]
        if type(h) ~= "table" then error("header " .. i .. ": {name, value} pair expected", 2) end
        list[i] = { h[1], h[2] }
      end
    else
      local names = {}
      for name in pairs(headers) do
        if type(name) ~= "string" then error("headers: keys must be strings", 2) end
        names[#names + 1] = name
      end
      table.sort(names)
      for i, name in ipairs(names) do list[i] = { name, headers[name] } end
    end
  end
  local has = {}
  local lines = { method, " ", u.target, " HTTP/1.1\r\n" }
  local extra = {}
  for i, h in ipairs(list) do
    local name, value = h[1], h[2]
    if type(name) ~= "string" then error("header " .. i .. ": name must be a string", 2) end
    if type(value) == "number" then value = tostring(value) end
    if type(value) ~= "string" then error("header " .. i .. ": value must be a string", 2) end
    if has_ctl(name) then return fail("invalid_argument", "header " .. i .. ": name contains CR, LF or NUL") end
    if not name:find(TOKEN) then
      return fail("invalid_argument",
        "header " .. i .. ": name is not a token (empty, or holds ':', space or other separator)")
    end
    if has_ctl(value) then return fail("invalid_argument", "header " .. i .. ": value contains CR, LF or NUL") end
    local lname = name:lower()
    if not OWN_HEADERS[lname] then
      has[lname] = true
      extra[#extra + 1] = name
      extra[#extra + 1] = ": "
      extra[#extra + 1] = value
      extra[#extra + 1] = "\r\n"
    end
  end
  local function add(name, value)
    lines[#lines + 1] = name
    lines[#lines + 1] = ": "
    lines[#lines + 1] = value
    lines[#lines + 1] = "\r\n"
  end
  if not has.host then add("Host", u.authority) end
  if not has["user-agent"] then add("User-Agent", self.user_agent) end
  if not has.accept then add("Accept", "*/*") end
  for _, s in ipairs(extra) do lines[#lines + 1] = s end
  if body ~= nil or BODY_METHODS[method] then add("Content-Length", tostring(body and #body or 0)) end
  lines[#lines + 1] = "\r\n"
  if body ~= nil and body ~= "" then lines[#lines + 1] = body end
  spec.wire = lines
  spec.max_header_bytes = self.opts.max_header_bytes
  spec.close_requested = false
  for i = 1, #list do
    if tostring(list[i][1]):lower() == "connection" and tostring(list[i][2]):lower():find("close", 1, true) then
      spec.close_requested = true
    end
  end
  spec.head = method == "HEAD"
  -- The address a `resolve` entry maps the host to is part of the key, so
  -- two transports that resolve one name differently never share sockets.
  local resolve = self.resolve
  local addr = resolve and (resolve[u.host .. ":" .. u.port] or resolve[u.host]) or u.host
  spec.pool = u.scheme .. ":" .. u.host .. ":" .. u.port .. ":" .. u.sni .. ":" .. (spec.verify and "v" or "nv")
    .. "@" .. addr .. (self.pool_name and (":" .. self.pool_name) or "")
  return spec
end

-- Reading -----------------------------------------------------------------------

-- A buffered reader over one cosocket with a total deadline.
local Reader = {}
Reader.__index = Reader

local function ms(s) return math.max(1, math.floor(s * 1000 + 0.5)) end

function Reader:budget()
  local read_timeout, send_timeout = self.read_timeout, self.send_timeout
  if self.deadline then
    local left = self.deadline - clock()
    if left <= 0 then return nil end
    if left < read_timeout then read_timeout = left end
    if left < send_timeout then send_timeout = left end
  end
  self.sock:settimeouts(ms(self.connect_timeout), ms(send_timeout), ms(read_timeout))
  return true
end

-- Reads one more piece into the buffer; nil, kind, message on failure.
function Reader:fill()
  if not self:budget() then return nil, "timeout", "total timeout reached" end
  local data, err = self.sock:receiveany(CHUNK)
  if not data then
    if err == "timeout" then return nil, "timeout", "timed out reading the response" end
    self.eof = true
    return nil, "network", (err == "closed" and "connection closed by the server" or ("read failed: " .. tostring(err)))
  end
  self.received = true
  if self.pos > #self.buf then
    self.buf, self.pos = data, 1
  else
    self.buf, self.pos = self.buf:sub(self.pos) .. data, 1
  end
  return true
end

-- One line without its CR LF; limit counts bytes buffered without a newline.
function Reader:line(limit, over_kind)
  while true do
    local i = self.buf:find("\n", self.pos, true)
    if i then
      local line = self.buf:sub(self.pos, i - 1)
      self.pos = i + 1
      self.header_bytes = self.header_bytes + #line + 1
      if line:sub(-1) == "\r" then line = line:sub(1, -2) end
      return line
    end
    if #self.buf - self.pos + 1 > limit then
      if over_kind then return nil, over_kind, "malformed chunked body" end
      return nil, "too_large", "response header line too long"
    end
    local ok, kind, msg = self:fill()
    if not ok then return nil, kind, msg end
  end
end

-- Exactly n bytes appended to parts.
function Reader:exact(n, parts)
  local avail = #self.buf - self.pos + 1
  if avail > 0 then
    local take = avail < n and avail or n
    parts[#parts + 1] = self.buf:sub(self.pos, self.pos + take - 1)
    self.pos = self.pos + take
    n = n - take
  end
  while n > 0 do
    if not self:budget() then return nil, "timeout", "total timeout reached" end
    local data, err = self.sock:receiveany(n < CHUNK and n or CHUNK)
    if not data then
      if err == "timeout" then return nil, "timeout", "timed out reading the response body" end
      self.eof = true
      return nil, "network", "connection closed before the end of the response body"
    end
    parts[#parts + 1] = data
    n = n - #data
  end
  return true
end

-- Everything until the server closes, at most cap bytes.
function Reader:rest(parts, cap)
  local total = 0
  local avail = #self.buf - self.pos + 1
  if avail > 0 then
    parts[#parts + 1] = self.buf:sub(self.pos)
    total = avail
    self.pos = #self.buf + 1
  end
  while true do
    if total > cap then return nil, "too_large", "response body exceeds max_body (" .. cap .. " bytes)" end
    if not self:budget() then return nil, "timeout", "total timeout reached" end
    local data, err = self.sock:receiveany(CHUNK)
    if not data then
      if err == "closed" then self.eof = true; return true end
      if err == "timeout" then return nil, "timeout", "timed out reading the response body" end
      self.eof = true
      return nil, "network", "read failed: " .. tostring(err)
    end
    parts[#parts + 1] = data
    total = total + #data
  end
end

local function token_list_has(value, token)
  for t in value:lower():gmatch("[^,%s]+") do if t == token then return true end end
  return false
end

-- A CR that does not end a line, or a NUL, refuses the response (as
-- provision.core does): it would reach names and values otherwise.
local function bad_line(line) return line:find("[%z\r]") ~= nil end
local BAD_LINE = "a response header line holds a bare CR or a NUL"

-- Header (or trailer) lines into list {{name, value}, ...}: a line starting
-- with a space or tab continues the previous value (obsolete folding). The
-- pieces are kept apart and joined once at the end, like repeated names in
-- fields_map: joining line by line costs time quadratic in the block.
local function add_line(list, folds, h)
  local first = h:sub(1, 1)
  if first == " " or first == "\t" then
    if #list == 0 then return nil, "malformed response header line" end
    local piece = h:match("^%s*(.-)%s*$")
    if piece ~= "" then
      local f = folds[#list]
      if not f then f = { list[#list][2] }; folds[#list] = f end
      if f[#f] == "" then f[#f] = piece else f[#f + 1] = piece end
    end
    return true
  end
  local name, value = h:match("^([^:%s]+):%s*(.-)%s*$")
  if not name then return nil, "malformed response header line" end
  list[#list + 1] = { name, value }
  return true
end

local function join_folds(list, folds)
  for i, f in pairs(folds) do list[i][2] = table.concat(f, " ") end
end

-- list -> lower-case name -> values joined with ", " (set-cookie: "\n")
local function fields_map(list)
  local groups, order = {}, {}
  for _, h in ipairs(list) do
    local k = h[1]:lower()
    local g = groups[k]
    if not g then g = {}; groups[k] = g; order[#order + 1] = k end
    g[#g + 1] = h[2]
  end
  local map = setmetatable({}, HeadersMT)
  for _, k in ipairs(order) do
    local g = groups[k]
    map[k] = #g == 1 and g[1] or table.concat(g, k == "set-cookie" and "\n" or ", ")
  end
  return map
end

-- Status line and header block of the final response.
local function read_head(r, max_header_bytes)
  while true do
    local line, kind, msg = r:line(max_header_bytes)
    if not line then return nil, kind, msg end
    if bad_line(line) then return nil, "protocol", BAD_LINE end
    local major, minor, status = line:match("^HTTP/(%d)%.(%d) (%d%d%d)")
    if not status then
      if line == "" and not r.status_seen then   -- tolerate one stray empty line
        r.status_seen = true
      else
        return nil, "protocol", "malformed status line"
      end
    else
      status = tonumber(status)
      local list, folds = {}, {}
      while true do
        local h, hkind, hmsg = r:line(max_header_bytes)
        if not h then return nil, hkind, hmsg end
        if r.header_bytes > max_header_bytes then
          return nil, "too_large", "response headers exceed " .. max_header_bytes .. " bytes"
        end
        if h == "" then break end
        if bad_line(h) then return nil, "protocol", BAD_LINE end
        local ok, err = add_line(list, folds, h)
        if not ok then return nil, "protocol", err end
      end
      if status >= 100 and status < 200 and status ~= 101 then
        r.header_bytes = 0          -- interim response: drop it, read the next
      else
        join_folds(list, folds)
        return { status = status, version = major .. "." .. minor, headers = fields_map(list), header_list = list,
                 trailers = setmetatable({}, HeadersMT), trailer_list = {} }
      end
    end
  end
end

local function content_length(headers)
  local v = rawget(headers, "content-length")
  if v == nil then return nil end
  local n
  for part in v:gmatch("[^,]+") do
    local d = part:match("^%s*(%d+)%s*$")
    if not d or #d > 15 then return false end
    d = tonumber(d)
    if n and n ~= d then return false end
    n = d
  end
  return n
end

-- Body per RFC 9112 section 6.3; sets head.reusable.
local function read_body(r, spec, head)
  local status, headers = head.status, head.headers
  local parts = {}
  local keep = head.version == "1.1" and not token_list_has(rawget(headers, "connection") or "", "close")
  if head.version == "1.0" then keep = token_list_has(rawget(headers, "connection") or "", "keep-alive") end
  if spec.head or status == 204 or status == 304 or status == 101 then
    head.reusable = keep and status ~= 101
    return ""
  end
  local te = rawget(headers, "transfer-encoding")
  if te then
    if not te:lower():find("chunked%s*$") then
      local ok, kind, msg = r:rest(parts, spec.max_body)
      if not ok then return nil, kind, msg end
      head.reusable = false
      return table.concat(parts)
    end
    local total = 0
    while true do
      local line, kind, msg = r:line(4096, "protocol")
      if not line then return nil, kind, msg end
      local hex = line:match("^%s*(%x+)%s*[;]?")
      if not hex or #hex > 12 then return nil, "protocol", "malformed chunk size" end
      local size = tonumber(hex, 16)
      if size == 0 then
        r.header_bytes = 0
        local list, folds = {}, {}
        while true do   -- trailers: kept apart from the headers
          local t, tkind, tmsg = r:line(spec.max_header_bytes)
          if not t then return nil, tkind, tmsg end
          if r.header_bytes > spec.max_header_bytes then
            return nil, "too_large", "response headers exceed " .. spec.max_header_bytes .. " bytes"
          end
          if t == "" then break end
          if bad_line(t) then return nil, "protocol", BAD_LINE end
          local ok, err = add_line(list, folds, t)
          if not ok then return nil, "protocol", err end
        end
        join_folds(list, folds)
        head.trailer_list, head.trailers = list, fields_map(list)
        break
      end
      total = total + size
      if total > spec.max_body then
        return nil, "too_large", "response body exceeds max_body (" .. spec.max_body .. " bytes)"
      end
      local ok, ekind, emsg = r:exact(size, parts)
      if not ok then return nil, ekind, emsg end
      local crlf, ckind, cmsg = r:line(2, "protocol")
      if not crlf then return nil, ckind, cmsg end
      if crlf ~= "" then return nil, "protocol", "malformed chunk (no CRLF after data)" end
    end
    head.reusable = keep
    return table.concat(parts)
  end
  local n = content_length(headers)
  if n == false then return nil, "protocol", "malformed Content-Length" end
  if n then
    if n > spec.max_body then
      return nil, "too_large", "Content-Length " .. n .. " exceeds max_body (" .. spec.max_body .. " bytes)"
    end
    local ok, kind, msg = r:exact(n, parts)
    if not ok then return nil, kind, msg end
    head.reusable = keep
    return table.concat(parts)
  end
  local ok, kind, msg = r:rest(parts, spec.max_body)
  if not ok then return nil, kind, msg end
  head.reusable = false
  return table.concat(parts)
end

-- One exchange ------------------------------------------------------------------

local function connect_kind(err)
  err = tostring(err)
  if err == "timeout" then return "timeout" end
  if err:find("resolv", 1, true) or err:find("host not found", 1, true) then return "dns" end
  return "connect"
end

-- Connects (or takes a pooled connection) and shakes hands.
-- Returns sock, reused_times or nil, err.
function Transport:open(spec, deadline)
  local u = spec.u
  local sock = ngx.socket.tcp()
  local ct = spec.connect_timeout
  if deadline then
    local left = deadline - clock()
    if left <= 0 then return nil, fail("timeout", "total timeout reached before connecting", false) end
    if ct <= 0 or left < ct then ct = left end
  end
  if ct <= 0 then ct = DEFAULTS.connect_timeout end
  sock:settimeouts(ms(ct), ms(self.opts.send_timeout), ms(self.opts.read_timeout))
  local resolve = self.resolve
  local addr = resolve and (resolve[u.host .. ":" .. u.port] or resolve[u.host]) or u.host
  local ok, err = sock:connect(addr, u.port, { pool = spec.pool, pool_size = self.opts.pool_size })
  if not ok then
    local kind = connect_kind(err)
    local what = kind == "timeout" and "connect to " .. u.authority .. " timed out"
      or ((kind == "dns" and "cannot resolve " or "cannot connect to ") .. u.authority .. ": " .. tostring(err))
    return nil, fail(kind, what, false)
  end
  local reused = sock:getreusedtimes() or 0
  if u.scheme == "https" and reused == 0 then
    -- With Debian's lua-resty-core 0.1.25 a failed certificate verification
    -- is not reported as nil, err: with reused_session nil it raises an
    -- assertion inside resty.core, with false it returns true on a socket
    -- that nginx has closed. Handle both (nginx's error.log has the reason).
    local pok, hok, herr = pcall(sock.sslhandshake, sock, nil, u.sni, spec.verify)
    if not pok or (hok and not sock:getreusedtimes()) then
      hok, herr = nil, "certificate verification failed (untrusted issuer or host name mismatch)"
    end
    if not hok then
      sock:close()
      if herr == "timeout" then
        return nil, fail("timeout", "TLS handshake with " .. u.authority .. " timed out", false)
      end
      return nil, fail("tls", "TLS handshake with " .. u.authority .. " failed: " .. tostring(herr), false)
    end
  end
  return sock, reused
end

function Transport:exchange(spec)
  local started = clock()
  local deadline = spec.timeout > 0 and started + spec.timeout or nil
  local stats = self.counters
  stats.requests = stats.requests + 1
  local result
  for _ = 1, 3 do   -- a pooled connection the server has just closed: try another
    local sock, reused = self:open(spec, deadline)
    if not sock then result = reused; break end
    if reused > 0 then stats.reused = stats.reused + 1 else stats.connections = stats.connections + 1 end
    local r = setmetatable({ sock = sock, buf = "", pos = 1, deadline = deadline, header_bytes = 0,
      connect_timeout = spec.connect_timeout > 0 and spec.connect_timeout or DEFAULTS.connect_timeout,
      send_timeout = self.opts.send_timeout, read_timeout = self.opts.read_timeout }, Reader)
    local kind, msg, send_failed
    local head, body
    if not r:budget() then
      kind, msg = "timeout", "total timeout reached"
    else
      local ok, err = sock:send(spec.wire)
      if not ok then
        send_failed = true
        kind = err == "timeout" and "timeout" or "network"
        msg = err == "timeout" and "timed out sending the request" or ("send failed: " .. tostring(err))
      end
    end
    if not kind then
      head, kind, msg = read_head(r, spec.max_header_bytes)
      if head then
        body, kind, msg = read_body(r, spec, head)
      end
    end
    if body then
      if head.reusable and not spec.close_requested and r.pos > #r.buf then
        -- 0 means "no idle timeout" to nginx; ms() would turn it into 1 ms
        local idle = self.opts.keepalive_timeout
        sock:setkeepalive(idle > 0 and ms(idle) or 0, self.opts.pool_size)
      else
        sock:close()
      end
      result = {
        status = head.status, headers = head.headers, header_list = head.header_list, body = body,
        trailers = head.trailers, trailer_list = head.trailer_list,
        url = spec.url, http_version = head.version, time = clock() - started,
        new_connections = reused > 0 and 0 or 1, reused = reused,
      }
      break
    end
    sock:close()
    -- A pooled connection the server closed as it was taken: nothing came
    -- back. Send again on another connection if the request did not leave
    -- (send failed) or may be repeated safely; never a POST that may have
    -- been acted on (the caller's retry policy decides about those).
    if reused > 0 and not r.received and kind == "network" and (send_failed or IDEMPOTENT[spec.method]) then
      stats.stale = stats.stale + 1
    else
      result = fail(kind, msg, true)
      result.new_connections = reused > 0 and 0 or 1
      if head then result.status = head.status end
      break
    end
  end
  if not result then result = fail("network", "pooled connections kept failing", true) end
  if result.kind then
    stats.errors = stats.errors + 1
    result.time = clock() - started
  end
  return result
end

-- The transport -----------------------------------------------------------------

function M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("provision.transport.ngx.new: options table expected", 2) end
  if type(ngx) ~= "table" or not (ngx.socket and ngx.socket.tcp) then
    return nil, fail("invalid_argument", "provision.transport.ngx needs an nginx Lua host (ngx.socket.tcp)")
  end
  for name, hint in pairs(UNSUPPORTED) do
    if opts[name] ~= nil then return nil, fail("invalid_argument", name .. " is not available: " .. hint) end
  end
  local o = {}
  for _, k in ipairs(NUMBER_OPTS) do
    local v = opts[k]
    if v == nil then v = DEFAULTS[k] end
    if type(v) ~= "number" or v ~= v or v < 0 then error(k .. ": number >= 0 expected", 2) end
    o[k] = v
  end
  if o.pool_size < 1 then o.pool_size = 1 end
  if o.max_concurrency < 1 then o.max_concurrency = 1 end
  if o.read_timeout == 0 then o.read_timeout = DEFAULTS.read_timeout end
  if o.send_timeout == 0 then o.send_timeout = DEFAULTS.send_timeout end
  o.max_body = math.floor(o.max_body)
  if opts.verify ~= nil and type(opts.verify) ~= "boolean" then error("verify: boolean expected", 2) end
  o.verify = opts.verify ~= false
  if not o.verify then
    ngx.log(ngx.WARN, "provision: WARNING: TLS certificate verification is OFF for this transport")
  end
  local ua = opts.user_agent
  if ua ~= nil and (type(ua) ~= "string" or has_ctl(ua)) then
    error("user_agent: string without CR, LF or NUL expected", 2)
  end
  if not ua then
    local ok, core = pcall(require, "provision.core")
    local v = ngx.config and ngx.config.ngx_lua_version
    ua = "provision/" .. ((ok and type(core) == "table" and core.version) or "0")
      .. " ngx_lua/" .. (v and string.format("%d.%d.%d", math.floor(v / 1000000), math.floor(v / 1000) % 1000, v % 1000) or "?")
  end
  local resolve
  if opts.resolve ~= nil then
    if type(opts.resolve) ~= "table" then error("resolve: table expected", 2) end
    resolve = {}
    for k, v in pairs(opts.resolve) do
      if type(k) ~= "string" or type(v) ~= "string" or not v:find("^[%x:.%[%]]+$") then
        error("resolve: {[\"host\" or \"host:port\"] = \"ip address\"} expected", 2)
      end
      resolve[k:lower()] = v
    end
  end
  if opts.pool ~= nil and type(opts.pool) ~= "string" then error("pool: string expected", 2) end
  return setmetatable({ opts = o, user_agent = ua, closed = false, resolve = resolve, pool_name = opts.pool,
    counters = { requests = 0, connections = 0, reused = 0, errors = 0, stale = 0 } }, Transport)
end

function Transport:send(requests)
  if type(requests) ~= "table" then error("send: list of requests expected", 2) end
  local n = #requests
  local results, specs = {}, {}
  for i = 1, n do specs[i] = prepare(self, requests[i], i) end
  if self.closed then
    for i = 1, n do results[i] = fail("closed", "transport is closed", false) end
    return results
  end
  local function run(i)
    local spec = specs[i]
    if spec.kind then results[i] = spec; return end
    local ok, res = pcall(self.exchange, self, spec)
    if ok then results[i] = res
    else results[i] = fail("internal", "transport error: " .. tostring(res), true) end
  end
  if n == 1 then
    run(1)
    return results
  end
  local next_i = 0
  local function worker()
    while true do
      next_i = next_i + 1
      local i = next_i
      if i > n then return end
      run(i)
    end
  end
  local threads = {}
  local workers = math.min(n, self.opts.max_concurrency)
  for w = 1, workers do
    local th, err = ngx.thread.spawn(worker)
    if not th then
      if w == 1 then error("provision.transport.ngx: cannot spawn a light thread: " .. tostring(err)) end
      break
    end
    threads[#threads + 1] = th
  end
  for _, th in ipairs(threads) do ngx.thread.wait(th) end
  for i = 1, n do
    if results[i] == nil then results[i] = fail("internal", "request was not run", false) end
  end
  return results
end

-- Streams (the bulk engine's interface, provision.transport.stream) -------------
--
-- add() queues a request; light threads (at most max_concurrency, spawned
-- as work arrives, then reused) take requests in order, run them and hand
-- each answer back; poll() waits on a semaphore until one is back or the
-- timeout passes. close() kills the threads. Needs ngx.semaphore
-- (lua-resty-core); without it the engine falls back to send().

local Stream = {}
Stream.__index = Stream

local semaphore_ok, semaphore = pcall(require, "ngx.semaphore")

local function stream_worker(s)
  while not s.closed do
    if s.qhead > s.qtail then
      s.idle = s.idle + 1
      s.work:wait(3600)
      s.idle = s.idle - 1
    else
      local item = s.queue[s.qhead]
      s.queue[s.qhead] = nil
      s.qhead = s.qhead + 1
      s.busy = s.busy + 1
      local spec = item[1]
      local res
      if spec.kind then
        res = spec
      elseif s.t.closed then
        res = fail("closed", "transport is closed", false)
      else
        local ok, r = pcall(s.t.exchange, s.t, spec)
        res = ok and r or fail("internal", "transport error: " .. tostring(r), true)
      end
      s.busy = s.busy - 1
      local d = s.done
      d[#d + 1] = item[2]
      d[#d + 1] = res
      s.ready:post(1)
    end
  end
end

function Stream:add(req, tag)
  local ok, spec = pcall(prepare, self.t, req, 1)
  if not ok then spec = fail("invalid_argument", tostring(spec), false) end
  self.qtail = self.qtail + 1
  self.queue[self.qtail] = { spec, tag }
  if self.idle > 0 then
    self.work:post(1)
  elseif #self.threads < self.t.opts.max_concurrency then
    local th, err = ngx.thread.spawn(stream_worker, self)
    if th then
      self.threads[#self.threads + 1] = th
    elseif #self.threads == 0 then
      error("provision.transport.ngx: cannot spawn a light thread: " .. tostring(err))
    end
  end
end

function Stream:inflight()
  return (self.qtail - self.qhead + 1) + self.busy + #self.done / 2
end

function Stream:poll(timeout)
  timeout = timeout or 0
  if timeout > 1 then timeout = 1 end   -- ngx.semaphore's wait returns at once for huge timeouts
  if #self.done == 0 then
    if timeout > 0 then self.ready:wait(timeout) else ngx.sleep(0) end
  end
  local out = self.done
  self.done = {}
  -- every answer posted once; the ones collected here are counted off
  while self.ready:count() > 0 do self.ready:wait(0) end
  return out
end

function Stream:close()
  self.closed = true
  for _, th in ipairs(self.threads) do ngx.thread.kill(th) end
  self.threads, self.queue, self.qhead, self.qtail, self.done = {}, {}, 1, 0, {}
end

if semaphore_ok then
  function Transport:stream()
    return setmetatable({ t = self, queue = {}, qhead = 1, qtail = 0, done = {}, busy = 0,
                          threads = {}, idle = 0, closed = false,
                          work = semaphore.new(0), ready = semaphore.new(0) }, Stream)
  end
end

function M.now() return clock() end
function M.sleep(s) ngx.sleep(s) end
Transport.now = M.now
Transport.sleep = M.sleep

function Transport:stats()
  local c = self.counters
  return { requests = c.requests, connections = c.connections, reused = c.reused, errors = c.errors,
           stale = c.stale }
end

function Transport:close()
  self.closed = true
  return true
end

M.Transport = Transport
M._parse_url = parse_url
return M
