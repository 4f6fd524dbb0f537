-- provision.transport.ngx hardening, inside a real nginx (lua-nginx-module,
-- LuaJIT) against raw lua5.4 peers: header joins in one pass (no time is
-- asserted: GC cycles count what was allocated), a bare CR or a NUL refuses
-- the response, chunked trailers kept apart. The same cases for
-- provision.core are in core_hardening_spec.lua: the transports agree.
-- (Not in scripts/memcheck.sh: nothing of the C core runs here.)
local openresty = require("support.openresty")
local json = require("provision.json")
local socket = require("socket")

local ROOT = openresty.root

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

-- provision/core.so for LuaJIT (as nginx_host_spec.lua builds it)
local function build_luajit()
  local dir = os.getenv("PROVISION_LUAJIT_BUILD") or (ROOT .. "/build-luajit")
  local q = "'" .. dir:gsub("'", "'\\''") .. "'"
  local log = os.tmpname()
  local ok = true
  local f = io.open(dir .. "/CMakeCache.txt")
  if f then f:close() else
    ok = sh(("cmake -S '%s' -B %s -DLUA_PKG=luajit -DCMAKE_BUILD_TYPE=RelWithDebInfo >%s 2>&1"):format(ROOT, q, log))
  end
  ok = ok and sh(("cmake --build %s -j2 >>%s 2>&1"):format(q, log))
  local lf = io.open(log)
  local out = lf and lf:read("a") or ""
  if lf then lf:close() end
  os.remove(log)
  if not ok then error("building provision.core for LuaJIT failed:\n" .. out) end
  return dir
end

-- A raw HTTP peer in a child lua5.4 answering one connection with `response`.
local function peer(response)
  local script, ready, finished = os.tmpname(), os.tmpname(), os.tmpname()
  os.remove(ready)
  os.remove(finished)
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  local f = assert(io.open(script, "w"))
  f:write(([[
    local socket = require "socket"
    local srv = assert(socket.bind("127.0.0.1", %d))
    io.open(%q, "w"):close()
    srv:settimeout(20)
    local c = srv:accept()
    if c then
      c:settimeout(10)
      repeat local l = c:receive("*l") until l == "" or l == nil
      c:send(%s)
      c:close()
    end
    io.open(%q, "w"):close()
  ]]):format(port, ready, response, finished))
  f:close()
  local p = io.popen("lua5.4 " .. script .. " >/dev/null 2>&1 & echo $!")
  local pid = tonumber(p:read("a"):match("%d+"))
  p:close()
  local t0 = socket.gettime()
  while not io.open(ready) and socket.gettime() - t0 < 20 do socket.sleep(0.02) end
  return tonumber(port), function()
    local t1 = socket.gettime()
    while not io.open(finished) and socket.gettime() - t1 < 20 do socket.sleep(0.02) end
    if pid then os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
    os.remove(script); os.remove(ready); os.remove(finished)
  end
end

-- Runs inside nginx (LuaJIT, Lua 5.1 syntax): one GET through the ngx
-- transport to the peer on ?port=, reported as JSON; GC cycles during the
-- exchange are counted by a re-arming finalizer (newproxy: LuaJIT).
local SCENARIOS = [==[
local T = require("provision.transport.ngx")
local json = require("provision.json")
local M = {}

local cycles, counting = 0, false
local function arm()
  local u = newproxy(true)
  getmetatable(u).__gc = function() if counting then cycles = cycles + 1 end; arm() end
end
arm()

local function plain(map)
  local out = {}
  for k, v in pairs(map) do out[k] = v end
  return out
end

function M.fetch()
  local t = assert(T.new({ max_header_bytes = tonumber(ngx.var.arg_max) or nil }))
  collectgarbage("collect")
  cycles, counting = 0, true
  local r = t:send({ { url = "http://127.0.0.1:" .. ngx.var.arg_port .. "/", timeout = 20 } })[1]
  counting = false
  local out = { cycles = cycles }
  if r.kind then
    out.kind, out.message, out.request_sent = r.kind, r.message, r.request_sent
  else
    out.status, out.body = r.status, r.body
    out.header_n, out.trailer_n = #r.header_list, r.trailer_list and #r.trailer_list
    out.a_len = r.headers.a and #r.headers.a
    out.f_len = r.headers.f and #r.headers.f
    if out.header_n < 20 then
      out.headers, out.header_list = plain(r.headers), r.header_list
      out.trailers = r.trailers and plain(r.trailers)
      out.trailer_list = r.trailer_list and json.array(r.trailer_list)
      out.trailer_ct = r.trailers and r.trailers["Content-Type"]
    end
  end
  ngx.header["Content-Type"] = "application/json"
  ngx.say(assert(json.encode(out)))
end
return M
]==]

describe("provision.transport.ngx response hardening (inside nginx)", function()
  local srv

  setup(function()
    local build = build_luajit()
    srv = openresty.start({
      build = build,
      modules = { hscenarios = SCENARIOS },
      locations = [[
    location = /fetch { content_by_lua_block { require("hscenarios").fetch() } }
]],
    })
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  -- response: Lua source of the string the peer sends
  local function fetch(response, max)
    local port, done = peer(response)
    local status, body = srv:get("/fetch?port=" .. port .. (max and ("&max=" .. max) or ""))
    done()
    assert(status == 200, ("fetch: HTTP %s %s\n%s"):format(tostring(status), tostring(body), srv:log():sub(-3000)))
    return json.decode(body)
  end

  -- Joining one line at a time built ever longer strings (quadratic): a
  -- few GC cycles became dozens (the CPU cost grew much faster still).
  it("joins 100000 repeats of one header in one pass", function()
    local doc = fetch([["HTTP/1.1 200 OK\r\n" .. string.rep("A: 1\r\n", 100000) .. "Content-Length: 2\r\n\r\nok"]])
    assert.are.equal(200, doc.status, doc.message)
    assert.are.equal(100001, doc.header_n)
    assert.are.equal(100000 + 2 * 99999, doc.a_len)
    assert.is_true(doc.cycles < 15, "GC cycles during the exchange: " .. doc.cycles)
  end)

  it("joins 50000 folded lines in one pass", function()
    local doc = fetch([["HTTP/1.1 200 OK\r\nF: x\r\n" .. string.rep(" y\r\n", 50000) .. "Content-Length: 2\r\n\r\nok"]])
    assert.are.equal(200, doc.status, doc.message)
    assert.are.equal(2, doc.header_n)
    assert.are.equal(1 + 2 * 50000, doc.f_len)
    assert.is_true(doc.cycles < 15, "GC cycles during the exchange: " .. doc.cycles)
  end)

  it("refuses a bare CR or a NUL anywhere in the header block (kind protocol), as provision.core does", function()
    for _, resp in ipairs({
      [["HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nok"]],
      [["HTTP/1.1 200 OK\r\nX\rY: z\r\nContent-Length: 2\r\n\r\nok"]],
      [["HTTP/1.1 200 OK\r\nX-A: a\rContent-Length: 2\r\n\r\nok"]],
      [["HTTP/1.1 200 OK\r\nX-A: a\r\r\nContent-Length: 2\r\n\r\nok"]],
      [["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\r\nok"]],
      [["HTTP/1.1 200 O\rK\r\nContent-Length: 2\r\n\r\nok"]],
      [["HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 2\r\n\r\nok"]],
      [["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r2\r\n\r\n"]],
      [["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX\rT: 1\r\n\r\n"]],
      [["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nno colon\r\n\r\n"]],
    }) do
      local doc = fetch(resp)
      assert.are.equal("protocol", doc.kind, resp .. ": " .. tostring(doc.status))
      assert.is_true(doc.request_sent)
    end
  end)

  it("keeps chunked trailers apart from the headers", function()
    local doc = fetch([["HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
      .. "2\r\n{}\r\n0\r\nContent-Type: text/html\r\nX-Checksum: abc\r\nx-checksum: def\r\n\r\n"]])
    assert.are.equal(200, doc.status, doc.message)
    assert.are.equal("{}", doc.body)
    assert.are.equal("application/json", doc.headers["content-type"])
    assert.are.same({ { "Content-Type", "application/json" }, { "Transfer-Encoding", "chunked" } }, doc.header_list)
    assert.are.same({ ["content-type"] = "text/html", ["x-checksum"] = "abc, def" }, doc.trailers)
    assert.are.equal("text/html", doc.trailer_ct)
    assert.are.same({ { "Content-Type", "text/html" }, { "X-Checksum", "abc" }, { "x-checksum", "def" } },
                    doc.trailer_list)
  end)
end)
