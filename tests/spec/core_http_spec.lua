-- provision.core HTTP engine (csrc/http.c) against a real nginx
-- (tests/support/nginx.lua) and a few lua-socket misbehaving peers.
local core = require "provision.core"
local nginx = require "tests.support.nginx"
local socket = require "socket"
local refused_port = require("tests.support.proc").refused_port

local function count_lines(path)
  local f = io.open(path, "rb")
  if not f then return 0 end
  local n = 0
  for _ in f:lines() do n = n + 1 end
  f:close()
  return n
end

-- Run a one-shot HTTP peer in a child lua5.4: it binds a port of its own
-- choosing (port 0: none is probed free first and lost to another process)
-- and writes it to a file, accepts one connection, reads the request head
-- (and a Content-Length body), saves the raw request, then runs `respond`
-- (Lua source using `c`, the client socket).
-- Returns port, and done() → the raw request bytes (nil if none came).
-- Waits are bounded, generously for a loaded machine, and end as soon as
-- their file is there.
local function wait_file(path, secs)
  local t0 = socket.gettime()
  repeat
    local g = io.open(path, "rb")
    if g then
      local data = g:read("a")
      g:close()
      return data
    end
    socket.sleep(0.02)
  until socket.gettime() - t0 > secs
  return nil
end

local function peer(respond)
  local script, ready, saved = os.tmpname(), os.tmpname(), os.tmpname()
  os.remove(ready)
  os.remove(saved)
  local f = assert(io.open(script, "w"))
  f:write(([[
    local socket = require "socket"
    local srv = assert(socket.bind("127.0.0.1", 0))
    local _, port = srv:getsockname()
    local w = io.open(%q .. ".part", "w")
    w:write(port)
    w:close()
    os.rename(%q .. ".part", %q)
    srv:settimeout(60)
    local c = assert(srv:accept())
    c:settimeout(5)
    local head, len = {}, 0
    repeat
      local l = c:receive("*l")
      head[#head + 1] = l
      local n = l and l:lower():match("^content%%-length:%%s*(%%d+)")
      if n then len = tonumber(n) end
    until l == "" or l == nil
    local body = len > 0 and c:receive(len) or ""
    local out = io.open(%q .. ".part", "wb")
    out:write(table.concat(head, "\n"), "\n", body)
    out:close()
    os.rename(%q .. ".part", %q)
    %s
    c:close()
  ]]):format(ready, ready, ready, saved, saved, saved, respond))
  f:close()
  os.execute("lua5.4 " .. script .. " >/dev/null 2>&1 &")
  local port = tonumber(wait_file(ready, 60))
  assert(port, "the peer did not report its port")
  return port, function()
    local raw = wait_file(saved, 10)
    os.remove(script); os.remove(ready); os.remove(saved)
    return raw
  end
end

describe("provision.core HTTP engine", function()
  local srv, s

  setup(function()
    srv = nginx.start()
    s = core.session({ ca_file = srv.ca_file })
  end)

  teardown(function()
    if s then s:close() end
    nginx.stop(srv)
  end)

  describe("requests", function()
    it("GETs a small JSON file with status, headers and body", function()
      local r = assert(s:request({ url = srv:url("/small.json") }))
      assert.equal(200, r.status)
      assert.equal(srv.json, r.body)
      assert.equal("application/json", r.headers["content-type"])
      assert.equal("1.1", r.http_version)
      assert.equal(srv:url("/small.json"), r.url)
      assert.is_number(r.time)
      assert.is_number(r.local_port)
      assert.equal(tostring(#srv.json), r.headers["content-length"])
    end)

    it("looks headers up case-insensitively", function()
      local r = assert(s:request({ url = srv:url("/small.json") }))
      assert.equal("application/json", r.headers["Content-Type"])
      assert.equal("application/json", r.headers["CONTENT-TYPE"])
      assert.is_nil(r.headers["X-Not-There"])
      assert.is_nil(rawget(r.headers, "Content-Type"))  -- stored lower-case
    end)

    it("keeps every value of repeated headers", function()
      local r = assert(s:request({ url = srv:url("/headers") }))
      assert.equal("a=1\nb=2", r.headers["Set-Cookie"])
      assert.equal("one, two", r.headers["x-multi"])
      assert.equal("yes", r.headers["X-Single"])
      local cookies, multi = {}, {}
      for _, h in ipairs(r.header_list) do
        if h[1]:lower() == "set-cookie" then cookies[#cookies + 1] = h[2] end
        if h[1]:lower() == "x-multi" then multi[#multi + 1] = h[2] end
      end
      assert.same({ "a=1", "b=2" }, cookies)
      assert.same({ "one", "two" }, multi)
    end)

    it("sends headers given as a list or as a map", function()
      local r = assert(s:request({ url = srv:url("/echo?x=1"), headers = { { "X-Test", "listed" } } }))
      assert.equal("GET /echo?x=1 listed", r.body)
      r = assert(s:request({ url = srv:url("/echo"), headers = { ["X-Test"] = "mapped" } }))
      assert.equal("GET /echo mapped", r.body)
      r = assert(s:request({ url = srv:url("/echo"), headers = { ["X-Test"] = 42 } }))
      assert.equal("GET /echo 42", r.body)
    end)

    it("sends each request's own headers when a pooled unit's last request had the same lines", function()
      -- Sequential requests take the same pooled unit, which keeps the
      -- lines of its last request; a line with the same bytes is neither
      -- checked nor built again. The same table mutated, a new table, a
      -- number, a shorter or longer value: each must go out as given.
      local h = { { "Accept", "text/plain" }, { "X-Test", "one" } }
      local function echo(headers)
        local r, err = s:request({ url = srv:url("/echo"), headers = headers })
        return r and r.body or err.kind .. ": " .. err.message
      end
      assert.equal("GET /echo one", echo(h))
      assert.equal("GET /echo one", echo(h))
      h[2][2] = "two"
      assert.equal("GET /echo two", echo(h))
      assert.equal("GET /echo tw", echo({ { "Accept", "text/plain" }, { "X-Test", "tw" } }))
      assert.equal("GET /echo twoo", echo({ { "Accept", "text/plain" }, { "X-Test", "twoo" } }))
      assert.equal("GET /echo 7", echo({ { "Accept", "text/plain" }, { "X-Test", 7 } }))
      assert.equal("GET /echo 7", echo({ { "Accept", "text/plain" }, { "X-Test", "7" } }))
      assert.equal("GET /echo ", echo({ { "X-Test", "" } }))
      assert.equal("GET /echo ", echo({ { "X-Test", "" } }))
      -- the same bytes split elsewhere are not the same header: "A: b" is no token
      assert.equal("GET /echo ", echo({ { "A", "b: c" } }))
      assert.matches("^invalid_argument: header 1: name is not a token", echo({ { "A: b", "c" } }))
      assert.equal("GET /echo ", echo({ { "A", "b: c" } }))
      assert.matches("^invalid_argument: header 1: name is not a token", echo({ { "A: b", "c" } }))
      assert.equal("GET /echo v", echo({ { "X-Test", "v" } }))
      assert.matches("^invalid_argument: header 1: value contains CR", echo({ { "X-Test", "v\r\nX-Evil: 1" } }))
      assert.equal("GET /echo v", echo({ { "X-Test", "v" } }))
      assert.matches("^invalid_argument: header 2: Content%-Length is set by the core",
                     echo({ { "X-Test", "v" }, { "Content-Length", "5" } }))
      assert.equal("GET /echo v", echo({ ["X-Test"] = "v" }))
    end)

    local payload = "line1\r\nline2\0binary\255\254 end" .. string.rep("z", 100000)
    for _, method in ipairs({ "POST", "PUT", "DELETE", "PATCH" }) do
      it(method .. " sends the body intact", function()
        local r = assert(s:request({ method = method, url = srv:url("/upload"), body = payload }))
        assert.equal(200, r.status)
        local m, len, path = r.body:match("^(%S+) (%d+) (%S+)$")
        assert.equal(method, m)
        assert.equal(#payload, tonumber(len))
        assert.equal(payload, srv:read_file(path))
      end)
    end

    it("POST without a body sends Content-Length: 0, no form Content-Type", function()
      local r = assert(s:request({ method = "POST", url = srv:url("/upload") }))
      assert.equal("POST 0", r.body:match("^(%S+ %d+)"))
    end)

    it("PUT then GET through WebDAV round-trips the body; DELETE removes it", function()
      local url = srv:url("/dav/file.bin")
      local r = assert(s:request({ method = "PUT", url = url, body = payload,
                                   headers = { { "Content-Type", "application/octet-stream" } } }))
      assert.equal(201, r.status)
      r = assert(s:request({ url = url }))
      assert.equal(payload, r.body)
      r = assert(s:request({ method = "DELETE", url = url }))
      assert.equal(204, r.status)
      r = assert(s:request({ url = url }))
      assert.equal(404, r.status)
    end)

    it("DELETE without a body, HEAD and other status codes", function()
      local r = assert(s:request({ method = "DELETE", url = srv:url("/echo") }))
      assert.equal("DELETE /echo ", r.body)
      r = assert(s:request({ method = "HEAD", url = srv:url("/small.json") }))
      assert.equal(200, r.status)
      assert.equal("", r.body)
      assert.equal(tostring(#srv.json), r.headers["content-length"])
      for _, code in ipairs({ 201, 204, 404, 429, 500, 503 }) do
        r = assert(s:request({ url = srv:url("/status/" .. code) }))
        assert.equal(code, r.status)
      end
    end)

    it("goes through a proxy when asked, and proxy='' disables it", function()
      local r = assert(s:request({ url = "http://provision.invalid/echo", proxy = srv.proxy }))
      assert.equal("GET /echo via-proxy", r.body)
      local via = core.session({ proxy = srv.proxy })
      r = assert(via:request({ url = "http://provision.invalid/echo" }))
      assert.equal("GET /echo via-proxy", r.body)
      r = assert(via:request({ url = srv:url("/echo"), proxy = "" }))
      assert.equal("GET /echo ", r.body)
      via:close()
    end)

    it("keeps the environment's no_proxy for a request's own proxy", function()
      -- a session with no proxy tells libcurl to skip no_proxy; a request
      -- that brings a proxy must get the environment's list back
      local script = os.tmpname()
      local f = assert(io.open(script, "w"))
      f:write(([[
        local core = require "provision.core"
        local s = core.session()
        local r = assert(s:request({ url = %q, proxy = %q }))
        io.write(r.body)
        s:close()
      ]]):format(srv:url("/echo"), srv.proxy))
      f:close()
      local cpath = (os.getenv("PROVISION_BUILD") or "build") .. "/?.so;;"
      local function run(env)
        local p = io.popen("env -u http_proxy -u HTTP_PROXY -u all_proxy -u ALL_PROXY -u no_proxy -u NO_PROXY "
          .. env .. " LUA_CPATH='" .. cpath .. "' lua5.4 " .. script .. " 2>&1")
        local out = p:read("a")
        p:close()
        return out
      end
      local listed, unlisted, upper = run("no_proxy=127.0.0.1"), run(""), run("NO_PROXY=127.0.0.1")
      os.remove(script)
      assert.equal("GET /echo ", listed)             -- straight to the server, as no_proxy says
      assert.equal("GET /echo ", upper)
      assert.equal("GET /echo via-proxy", unlisted)  -- through the request's proxy
    end)

    it("presents a client certificate (plain and encrypted key)", function()
      local url = srv.mtls_base .. "/whoami"
      local r = assert(s:request({ url = url }))
      assert.equal(400, r.status)     -- nginx: no required SSL certificate was sent
      r = assert(s:request({ url = url, cert = srv.client_cert, key = srv.client_key }))
      assert.equal(200, r.status)
      assert.matches("provision%-test%-client", r.body)
      local m = core.session({ ca_file = srv.ca_file, cert = srv.client_cert, key = srv.client_key_enc,
                               key_password = srv.client_key_password })
      r = assert(m:request({ url = url }))
      assert.matches("provision%-test%-client", r.body)
      m:close()
      m = core.session({ ca_file = srv.ca_file, cert = srv.client_cert, key = srv.client_key_enc,
                         key_password = "wrong" })
      local _, err = m:request({ url = url })
      assert.equal("tls", err.kind)
      assert.is_false(err.request_sent)
      m:close()
    end)

    it("sends exactly the request asked for (as seen by a raw peer)", function()
      local ok = [[c:send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")]]
      local big = string.rep("b", 2 * 1024 * 1024)   -- over libcurl's Expect: 100-continue threshold
      local port, done = peer(ok)
      local r = assert(s:request({ method = "POST", url = "http://127.0.0.1:" .. port .. "/p?q=1", body = big,
                                   headers = { { "X-Empty", "" }, { "X-Dup", "1" }, { "X-Dup", "2" } } }))
      local raw = done()  -- head lines joined with "\n" (CRs stripped), "\n", body
      assert.equal("ok", r.body)
      local head = raw:sub(1, #raw - #big)
      assert.equal(big, raw:sub(-#big))
      assert.matches("^POST /p%?q=1 HTTP/1%.1\n", head)
      assert.matches("\nX%-Empty:\n", head)
      assert.matches("\nX%-Dup: 1\nX%-Dup: 2\n", head)
      assert.matches("\nContent%-Length: 2097152\n", head)
      assert.matches("\nUser%-Agent: provision/[%d.]+ libcurl/", head)
      assert.is_nil(head:lower():find("\nexpect:"))
      assert.is_nil(head:lower():find("\ncontent%-type:"))
      -- a caller's Content-Type and User-Agent are sent as given
      port, done = peer(ok)
      assert(s:request({ method = "PUT", url = "http://127.0.0.1:" .. port .. "/", body = "{}",
                         headers = { ["Content-Type"] = "application/json", ["User-Agent"] = "mine/1" } }))
      head = done()
      assert.matches("^PUT / HTTP/1%.1\n", head)
      assert.matches("\nContent%-Type: application/json\n", head)
      assert.matches("\nUser%-Agent: mine/1\n", head)
      assert.matches("\n{}$", head)
    end)

    it("never follows redirects", function()
      local r = assert(s:request({ url = srv:url("/redirect") }))
      assert.equal(302, r.status)
      assert.matches("/small.json$", r.headers.location)
    end)

    it("reuses one kept-alive connection for 20 sequential requests", function()
      local fresh = core.session()
      local sum, ports = 0, {}
      for i = 1, 20 do
        local r = assert(fresh:request({ url = srv:url("/echo?i=" .. i) }))
        assert.equal(200, r.status)
        sum = sum + r.new_connections
        ports[r.local_port] = true
      end
      assert.equal(1, sum)
      local n = 0
      for _ in pairs(ports) do n = n + 1 end
      assert.equal(1, n)
      assert.same({ requests = 20, connections = 1 }, fresh:stats())
      fresh:close()
    end)

    it("reuses TLS connections too", function()
      local fresh = core.session({ ca_file = srv.ca_file })
      local sum = 0
      for _ = 1, 5 do
        sum = sum + assert(fresh:request({ url = srv:url("/small.json", true) })).new_connections
      end
      assert.equal(1, sum)
      fresh:close()
    end)

    it("perform() runs 16 requests at once and returns them in order", function()
      local reqs = {}
      for i = 1, 16 do
        reqs[i] = { url = srv:url("/echo?n=" .. i), headers = { ["X-Test"] = "r" .. i } }
      end
      local out = s:perform(reqs)
      assert.equal(16, #out)
      for i = 1, 16 do
        assert.is_nil(out[i].kind)
        assert.equal(200, out[i].status)
        assert.equal(("GET /echo?n=%d r%d"):format(i, i), out[i].body)
      end
      assert.same({}, s:perform({}))
    end)

    it("perform() reports a bad entry in place and still runs the others", function()
      local out = s:perform({
        { url = srv:url("/echo?a") },
        { url = "ftp://127.0.0.1/x" },
        { url = srv:url("/big.bin"), max_body = 1000 },
        { url = srv:url("/small.json", true) },
      })
      assert.equal(4, #out)
      assert.equal(200, out[1].status)
      assert.equal("invalid_argument", out[2].kind)
      assert.equal("too_large", out[3].kind)
      assert.equal(200, out[4].status)
    end)
  end)

  describe("errors", function()
    it("total timeout fires against a peer that accepts and never answers", function()
      local silent = assert(socket.bind("127.0.0.1", 0))
      local _, port = silent:getsockname()
      local t0 = socket.gettime()
      local r, err = s:request({ method = "POST", url = "http://127.0.0.1:" .. port .. "/", body = "x", timeout = 0.3 })
      local elapsed = socket.gettime() - t0
      assert.is_nil(r)
      assert.equal("timeout", err.kind)
      assert.is_true(err.request_sent)
      assert.is_true(elapsed < 2, "took " .. elapsed)
      -- over TLS the handshake never completes: the request provably never left
      r, err = s:request({ url = "https://127.0.0.1:" .. port .. "/", timeout = 0.3 })
      assert.is_nil(r)
      assert.equal("timeout", err.kind)
      assert.is_false(err.request_sent)
      silent:close()
    end)

    it("a timeout in the middle of a body is a timeout with request_sent", function()
      local r, err = s:request({ url = srv:url("/slow.bin"), timeout = 0.3 })
      assert.is_nil(r)
      assert.equal("timeout", err.kind)
      assert.is_true(err.request_sent)
    end)

    it("a closed port gives kind connect and request_sent=false", function()
      local r, err = s:request({ method = "POST", url = "http://127.0.0.1:" .. refused_port() .. "/", body = "x" })
      assert.is_nil(r)
      assert.equal("connect", err.kind)
      assert.is_false(err.request_sent)
      assert.equal(7, err.code)
      assert.matches("^connect: ", tostring(err))
    end)

    it("an unknown host name gives kind dns", function()
      local r, err = s:request({ url = "http://no-such-host.invalid/", connect_timeout = 2 })
      assert.is_nil(r)
      assert.equal("dns", err.kind)
      assert.is_false(err.request_sent)
    end)

    it("cuts a body larger than max_body off with too_large", function()
      local r, err = s:request({ url = srv:url("/big.bin"), max_body = 1024 * 1024 })
      assert.is_nil(r)
      assert.equal("too_large", err.kind)
      assert.is_true(err.request_sent)
      -- the session-wide cap applies too, and a body exactly at the cap passes
      local small = core.session({ max_body = #srv.json })
      assert.equal(srv.json, assert(small:request({ url = srv:url("/small.json") })).body)
      r, err = small:request({ url = srv:url("/big.bin") })
      assert.is_nil(r)
      assert.equal("too_large", err.kind)
      small:close()
      -- the whole 10 MiB under the default cap
      r = assert(s:request({ url = srv:url("/big.bin") }))
      assert.equal(srv.big_size, #r.body)
    end)

    it("cuts off a body of unannounced size (chunked) as well", function()
      -- nginx always knows the length of its files: a peer streams 4 MiB in
      -- chunks with no Content-Length
      local port, done = peer([[
        c:send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        local chunk = string.rep("y", 65536)
        for _ = 1, 64 do
          if not c:send(("%x\r\n"):format(#chunk) .. chunk .. "\r\n") then break end
        end
        c:send("0\r\n\r\n")
      ]])
      local r, err = s:request({ url = "http://127.0.0.1:" .. port .. "/", max_body = 100000, timeout = 5 })
      done()
      assert.is_nil(r)
      assert.equal("too_large", err.kind)
      assert.matches("max_body", err.message)
    end)

    it("refuses the self-signed certificate by default, accepts it with ca_file or verify=false", function()
      local plain = core.session()
      local r, err = plain:request({ url = srv:url("/small.json", true) })
      assert.is_nil(r)
      assert.equal("tls", err.kind)
      assert.is_false(err.request_sent)
      r = assert(plain:request({ url = srv:url("/small.json", true), ca_file = srv.ca_file }))
      assert.equal(srv.json, r.body)
      r = assert(plain:request({ url = "https://localhost:" .. srv.tls_port .. "/small.json", ca_file = srv.ca_file }))
      assert.equal(200, r.status)
      r = assert(plain:request({ url = srv:url("/small.json", true), verify = false }))
      assert.equal(200, r.status)
      -- the next request gets the session's verification back (pooled
      -- transfers keep their options), and a request may ask for it on an
      -- insecure session
      r, err = plain:request({ url = srv:url("/small.json", true) })
      assert.is_nil(r)
      assert.equal("tls", err.kind)
      plain:close()
      local insecure = core.session({ verify = false })
      assert.equal(200, assert(insecure:request({ url = srv:url("/small.json", true) })).status)
      r, err = insecure:request({ url = srv:url("/small.json", true), verify = true })
      assert.is_nil(r)
      assert.equal("tls", err.kind)
      assert.equal(200, assert(insecure:request({ url = srv:url("/small.json", true) })).status)
      insecure:close()
      -- the session that trusts the CA
      assert.equal(200, assert(s:request({ url = srv:url("/small.json", true) })).status)
    end)

    describe("invalid arguments are refused before anything is sent", function()
      local cases = {
        { "CR in a header value", { headers = { { "X-Test", "a\rb" } } } },
        { "LF in a header value", { headers = { { "X-Test", "a\nInjected: 1" } } } },
        { "NUL in a header value", { headers = { { "X-Test", "a\0b" } } } },
        { "CR in a header name", { headers = { { "X-Te\rst", "v" } } } },
        { "LF in a header name", { headers = { ["X-Te\nst"] = "v" } } },
        { "NUL in a header name", { headers = { { "X-Te\0st", "v" } } } },
        { "colon in a header name", { headers = { { "X-Test:", "v" } } } },
        { "space in a header name", { headers = { { "X Test", "v" } } } },
        { "empty header name", { headers = { { "", "v" } } } },
        { "ftp:// url", { url = "ftp://127.0.0.1/file" } },
        { "file:// url", { url = "file:///etc/passwd" } },
        { "url without scheme", { url = "127.0.0.1/x" } },
        { "CRLF in the url", { url = "http://127.0.0.1/x\r\nX-Injected: 1" } },
        { "method with a space", { method = "GET /x HTTP/1.1\r\n" } },
        { "HEAD with a body", { method = "HEAD", body = "x" } },
        { "CRLF in user_agent", { user_agent = "ua\r\nX-Injected: 1" } },
        { "LF in proxy", { proxy = "http://127.0.0.1:1\nX-Injected: 1" } },
        -- past libcurl's 1 MiB for the request head (it would fail after "sending")
        { "headers over 1 MB", { headers = { { "X-Big", string.rep("b", 1100000) } } } },
        { "a URL over 1 MB", { url = "http://127.0.0.1:1/" .. string.rep("a", 1100000) } },
      }
      for _, c in ipairs(cases) do
        it(c[1], function()
          local before = count_lines(srv.dir .. "/access.log")
          local req = { url = srv:url("/echo") }
          for k, v in pairs(c[2]) do req[k] = v end
          local r, err = s:request(req)
          assert.is_nil(r)
          assert.equal("invalid_argument", err.kind)
          assert.is_false(err.request_sent)
          assert.is_string(err.message)
          assert.equal(before, count_lines(srv.dir .. "/access.log"))
        end)
      end
    end)

    it("refuses a session whose user_agent or proxy holds CR or LF", function()
      assert.has_error(function() core.session({ user_agent = "ua\r\nX-Injected: 1" }) end, "user_agent: contains CR or LF")
      assert.has_error(function() core.session({ proxy = "http://p\n" }) end, "proxy: contains CR or LF")
    end)

    it("raises on programming errors (wrong types)", function()
      assert.has_error(function() core.session({ timeout = "soon" }) end)
      assert.has_error(function() core.session({ verify = 0 }) end)
      assert.has_error(function() s:request("http://x") end)
      assert.has_error(function() s:request({ url = 42 }) end)
      assert.has_error(function() s:request({ url = srv:url("/echo"), body = {} }) end)
      assert.has_error(function() s:perform({ "nope" }) end)
    end)
  end)

  describe("session lifetime", function()
    it("a closed session answers every call with nil, closed", function()
      local c = core.session()
      assert(c:request({ url = srv:url("/echo") }))
      assert.is_true(c:close())
      assert.is_true(c:close())   -- the closer is idempotent
      local r, err = c:request({ url = srv:url("/echo") })
      assert.is_nil(r)
      assert.equal("closed", err.kind)
      r, err = c:perform({ { url = srv:url("/echo") } })
      assert.is_nil(r)
      assert.equal("closed", err.kind)
      r, err = c:stats()
      assert.is_nil(r)
      assert.equal("closed", err.kind)
      assert.matches("closed", tostring(c))
    end)

    it("<close> closes the session at the end of the scope", function()
      local outside
      do
        local c <close> = core.session()
        outside = c
        assert(c:request({ url = srv:url("/echo") }))
      end
      local r, err = outside:request({ url = srv:url("/echo") })
      assert.is_nil(r)
      assert.equal("closed", err.kind)
    end)

    it("garbage-collects unclosed sessions with live connections", function()
      for _ = 1, 5 do
        local c = core.session({ ca_file = srv.ca_file })
        assert(c:request({ url = srv:url("/echo") }))
        assert(c:request({ url = srv:url("/small.json", true) }))
      end
      collectgarbage()
      collectgarbage()
      assert(s:request({ url = srv:url("/echo") }))
    end)

    it("a Lua error while reading a request list leaks nothing and leaves the session usable", function()
      local bad = setmetatable({}, { __index = function(_, k)
        if k == "headers" then error("boom") end
        if k == "url" then return srv:url("/echo") end
      end })
      assert.has_error(function() s:perform({ { url = srv:url("/echo") }, bad }) end)
      collectgarbage()
      assert(s:request({ url = srv:url("/echo") }))
    end)

    it("a request whose reading closes the session gets closed", function()
      local c = core.session()
      local sneaky = setmetatable({}, { __index = function(_, k)
        if k == "url" then c:close(); return srv:url("/echo") end
      end })
      local r, err = c:request(sneaky)
      assert.is_nil(r)
      assert.equal("closed", err.kind)
    end)
  end)

  it("refuses a caller's Content-Length or Transfer-Encoding (framing is the core's)", function()
    for _, h in ipairs({ { "Content-Length", "1" }, { "transfer-encoding", "chunked" } }) do
      local r, err = s:request({ method = "PUT", url = srv:url("/echo"), body = "abc", headers = { h } })
      assert.is_nil(r)
      assert.are.equal("invalid_argument", err.kind)
      assert.is_false(err.request_sent)
    end
  end)

  it("batch:results() stays intact when a finalizer closes the batch meanwhile", function()
    -- 3000 response headers make results() allocate a lot; a self-re-arming
    -- finalizer closes the batch during that (a use-after-free before the
    -- fix). It runs in a fresh lua5.4 so that the GC's pacing is predictable.
    local port, done = peer([[
      local h = {}
      for i = 1, 3000 do h[i] = "X-H" .. i .. ": value-" .. i .. "\r\n" end
      c:send("HTTP/1.1 200 OK\r\n" .. table.concat(h) .. "Content-Length: 2\r\nConnection: close\r\n\r\nok")
    ]])
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write(([[
      local core = require "provision.core"
      local s = core.session({})
      local b = assert(s:start({ { url = "http://127.0.0.1:%d/" } }))
      while not b:step(0.1) do end
      local armed, fired = false, false
      local function arm()
        setmetatable({}, { __gc = function()
          if armed and not fired then fired = true; b:close() else arm() end
        end })
      end
      arm()
      collectgarbage("incremental", 1, 100)
      armed = true
      local r = b:results()
      armed = false
      local again, err = b:results()
      io.write(tostring(fired), " ", r[1].status, " ", r[1].body, " ", r[1].headers["x-h3000"], " ",
               tostring(again), " ", err and err.kind or "-")
    ]]):format(port))
    f:close()
    local cpath = (os.getenv("PROVISION_BUILD") or "build") .. "/?.so;;"
    local p = io.popen("LUA_CPATH='" .. cpath .. "' lua5.4 " .. script .. " 2>&1")
    local out = p:read("a")
    p:close()
    os.remove(script)
    done()
    assert.are.equal("true 200 ok value-3000 nil closed", out)
  end)
end)
