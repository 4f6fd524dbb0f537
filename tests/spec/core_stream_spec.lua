-- provision.core's streams (session:stream(): add, poll, request, inflight,
-- wait_info, close) against a real nginx (tests/support/nginx.lua), and the
-- responses' lazily built header_list / trailers / trailer_list. Also run
-- under valgrind and ASan (scripts/memcheck.sh).
local core = require "provision.core"
local nginx = require "tests.support.nginx"
local socket = require "socket"

-- Loops bounded in time, generously for a loaded machine, never by a count
-- of polls (a poll returns as soon as anything happens).
local BOUND = 120

-- Poll `st` until `n` answers have come back: tag -> answer.
local function collect(st, n)
  local got, count, deadline = {}, 0, socket.gettime() + BOUND
  while count < n do
    assert(socket.gettime() < deadline, "the stream's answers did not all come back")
    local ended = assert(st:poll(0.05))
    for i = 1, #ended, 2 do
      assert.is_nil(got[ended[i]], "a tag came back twice")
      got[ended[i]] = ended[i + 1]
      count = count + 1
    end
  end
  return got
end

-- A fresh lua5.4 running `code` with provision.core on its path; its output.
local function lua_child(code)
  local script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(code)
  f:close()
  local cpath = (os.getenv("PROVISION_BUILD") or "build") .. "/?.so;;"
  local p = io.popen("LUA_CPATH='" .. cpath .. "' lua5.4 " .. script .. " 2>&1")
  local out = p:read("a")
  p:close()
  os.remove(script)
  return out
end

describe("provision.core streams", function()
  local srv, s

  setup(function()
    srv = nginx.start()
    s = core.session({ ca_file = srv.ca_file })
  end)

  teardown(function()
    if s then s:close() end
    nginx.stop(srv)
  end)

  it("hands each request back with its tag, as request() answers it", function()
    local st = assert(s:stream())
    assert.are.equal("userdata", type(st))
    local reqs = {
      a = { url = srv:url("/small.json") },
      b = { url = srv:url("/echo"), headers = { ["X-Test"] = "b" } },
      [3] = { url = srv:url("/small.json", true) },
      [false] = { method = "PUT", url = srv:url("/upload"), body = "twelve bytes" },
    }
    local n = 0
    for tag, req in pairs(reqs) do
      assert.is_true(st:add(req, tag))
      n = n + 1
    end
    assert.are.equal(n, st:inflight())
    local got = collect(st, n)
    assert.are.equal(0, st:inflight())
    for tag, req in pairs(reqs) do
      local want = assert(s:request(req))
      assert.are.equal(want.status, got[tag].status)
      if tag ~= false then assert.are.equal(want.body, got[tag].body) end
    end
    assert.are.equal("GET /echo b", got.b.body)
    assert.matches("^PUT 12 ", got[false].body)
    assert.are.same({}, st:poll(0))       -- nothing in flight: empty at once
    assert.matches("0 in flight", tostring(st))
    assert.is_true(st:close())
    assert.is_true(st:close())            -- idempotent
    local none, err = st:poll(0)
    assert.is_nil(none)
    assert.are.equal("closed", err.kind)
    assert.matches("closed", tostring(st))
  end)

  it("answers invalid requests in the next poll and runs the others", function()
    local st = assert(s:stream())
    st:add({ url = "ftp://example.com/" }, "ftp")
    st:add({ url = srv:url("/small.json"), headers = { { "Bad Name", "x" } } }, "header")
    st:add({ url = srv:url("/small.json") }, "ok")
    local got = collect(st, 3)
    assert.are.equal("invalid_argument", got.ftp.kind)
    assert.is_false(got.ftp.request_sent)
    assert.are.equal("invalid_argument", got.header.kind)
    assert.are.equal(200, got.ok.status)
    st:close()
  end)

  it("raises for a wrong type or a nil tag and stays usable", function()
    local st = assert(s:stream())
    assert.has_error(function() st:add({ url = 42 }, 1) end)
    assert.has_error(function() st:add({ url = srv:url("/small.json") }) end)
    assert.has_error(function() st:add("not a table", 1) end)
    local bad = setmetatable({}, { __index = function(_, k)
      if k == "headers" then error("boom") end
      if k == "url" then return srv:url("/echo") end
    end })
    assert.has_error(function() st:add(bad, 1) end)
    assert.has_error(function() st:request(bad, 1) end)
    assert.are.equal(0, st:inflight())
    st:add({ url = srv:url("/small.json") }, "after")
    assert.are.equal(200, collect(st, 1).after.status)
    st:close()
  end)

  it("request() answers at once when the transfer ends within its wait", function()
    local st = assert(s:stream())
    local r = assert(st:request({ url = srv:url("/small.json") }, BOUND))
    assert.are.equal(200, r.status)
    assert.are.equal(srv.json, r.body)
    local none, err = st:request({ url = "ftp://x/" }, 1)
    assert.is_nil(none)
    assert.are.equal("invalid_argument", err.kind)
    assert.are.equal(0, st:inflight())
    st:close()
  end)

  it("request() that does not end within its wait comes back from poll with the tag true", function()
    local st = assert(s:stream())
    -- /slow.bin takes minutes at 64 KiB/s: a short wait cannot see it end
    assert.is_false(st:request({ url = srv:url("/slow.bin") }, 0.01))
    assert.are.equal(1, st:inflight())
    st:add({ url = srv:url("/small.json") }, "small")
    assert.are.equal(200, collect(st, 1).small.status)
    assert.are.equal(1, st:inflight())
    st:close()                            -- takes the slow one out: nothing handed back
    assert.are.equal(0, st:inflight())
    -- the same with a transfer that does end
    local st2 = assert(s:stream())
    local r = st2:request({ url = srv:url("/big.bin") }, 0)
    if r == false then r = collect(st2, 1)[true] end
    assert.are.equal(srv.big_size, #r.body)
    st2:close()
    assert.are.equal(200, assert(s:request({ url = srv:url("/small.json") })).status)
  end)

  it("ends its transfers as closed when the session closes", function()
    local s1 = core.session({})
    local st = assert(s1:stream())
    st:add({ url = srv:url("/slow.bin") }, "slow")
    st:add({ url = srv:url("/small.json") }, "small")
    local got = {}
    local deadline = socket.gettime() + BOUND
    while not got.small do
      assert(socket.gettime() < deadline, "small.json did not come back")
      local ended = st:poll(0.05)
      for i = 1, #ended, 2 do got[ended[i]] = ended[i + 1] end
    end
    assert.is_true(s1:close())
    got = collect(st, 1)
    assert.are.equal("closed", got.slow.kind)
    st:add({ url = srv:url("/small.json") }, "late")   -- after the close: answered as closed, never sent
    got = collect(st, 1)
    assert.are.equal("closed", got.late.kind)
    assert.is_false(got.late.request_sent)
    local none, err = st:request({ url = srv:url("/small.json") }, 1)
    assert.is_nil(none)
    assert.are.equal("closed", err.kind)
    local no_stream, serr = s1:stream()
    assert.is_nil(no_stream)
    assert.are.equal("closed", serr.kind)
    st:close()
  end)

  it("a collected live stream leaves the session usable", function()
    local s1 = core.session({})
    do
      local st = assert(s1:stream())
      st:add({ url = srv:url("/slow.bin") }, 1)
      st:add({ url = srv:url("/slow.bin") }, 2)
      for _ = 1, 10 do st:poll(0.01) end
    end
    collectgarbage()
    collectgarbage()
    assert.are.equal(200, assert(s1:request({ url = srv:url("/small.json") })).status)
    -- a session whose only reference is a live stream stays alive for it
    local st = assert(core.session({}):stream())
    st:add({ url = srv:url("/small.json") }, "x")
    collectgarbage()
    collectgarbage()
    assert.are.equal(200, collect(st, 1).x.status)
    do
      local st2 <close> = assert(s1:stream())
      st2:add({ url = srv:url("/slow.bin") }, 1)
      st2:poll(0.01)
    end
    assert.are.equal(200, assert(s1:request({ url = srv:url("/small.json") })).status)
    s1:close()
  end)

  it("progresses batches and streams of one session together", function()
    local st = assert(s:stream())
    local b = assert(s:start({ { url = srv:url("/echo"), headers = { ["X-Test"] = "batch" } } }))
    st:add({ url = srv:url("/echo"), headers = { ["X-Test"] = "stream" } }, 1)
    assert.are.equal("GET /echo stream", collect(st, 1)[1].body)
    local deadline = socket.gettime() + BOUND
    while not b:step(0.05) do assert(socket.gettime() < deadline) end
    assert.are.equal("GET /echo batch", b:results()[1].body)
    st:close()
  end)

  it("wait_info lists the session's descriptors while requests run", function()
    local st = assert(s:stream())
    st:add({ url = srv:url("/slow.bin") }, 1)
    local deadline = socket.gettime() + BOUND
    local info
    repeat
      st:poll(0.01)
      info = st:wait_info()
      assert(socket.gettime() < deadline, "no descriptor listed")
    until #info.fds > 0
    assert.is_true(info.timeout >= 0 and info.timeout <= 1)
    assert.is_true(info.complete)
    st:close()
    local none, err = st:wait_info()
    assert.is_nil(none)
    assert.are.equal("closed", err.kind)
  end)

  it("poll's answers stay intact when a finalizer closes the stream meanwhile", function()
    -- A self-re-arming finalizer closes the stream while poll builds its
    -- answer (the GC runs at nearly every allocation); the close waits until
    -- poll is done. Runs in a fresh lua5.4 so that the GC's pacing is
    -- predictable.
    local out = lua_child(([[
      local core = require "provision.core"
      local s = core.session({})
      local st, armed, fired
      local function arm()
        setmetatable({}, { __gc = function()
          if armed and not fired then fired = true; st:close() end
          arm()
        end })
      end
      arm()
      collectgarbage("incremental", 1, 100, 0)
      for _ = 1, 500 do
        st, armed, fired = s:stream(), false, false
        st:add({ url = %q }, "tag")
        -- other requests drive the session until the stream's has ended (not yet built)
        repeat assert(s:request({ url = %q })) until st:wait_info().timeout == 0
        armed = true
        local ended = st:poll(0)
        armed = false
        if fired then
          local again, err = st:poll(0)
          io.write(tostring(ended[1]), " ", ended[2].status, " ", ended[2].headers["x-single"], " ",
                   #ended[2].header_list, " ", tostring(again), " ", err and err.kind or "-")
          os.exit(0)
        end
        st:close()
      end
      io.write("the finalizer never ran during a poll")
    ]]):format(srv:url("/headers"), srv:url("/small.json")))
    assert.matches("^tag 200 yes %d+ nil closed$", out)
  end)
end)

describe("provision.core responses", function()
  local srv, s

  setup(function()
    srv = nginx.start()
    s = core.session({})
  end)

  teardown(function()
    if s then s:close() end
    nginx.stop(srv)
  end)

  it("build header_list, trailers and trailer_list on first use", function()
    local r = assert(s:request({ url = srv:url("/headers") }))
    assert.is_nil(rawget(r, "header_list"))
    local list = r.header_list
    assert.are.equal(list, rawget(r, "header_list"))   -- built once, then a plain field
    local names = {}
    for _, h in ipairs(list) do names[#names + 1] = h[1] .. "=" .. h[2] end
    local joined = table.concat(names, "|")
    assert.matches("Set%-Cookie=a=1|Set%-Cookie=b=2|X%-Multi=one|X%-Multi=two|X%-Single=yes", joined)
    assert.are.equal("a=1\nb=2", r.headers["set-cookie"])
    assert.are.equal("one, two", r.headers["X-Multi"])
    assert.are.same({}, r.trailer_list)
    assert.are.same({}, r.trailers)
    assert.is_nil(r.trailers["Content-Type"])
    assert.is_nil(r.no_such_field)
    -- the usual response: each name once
    local q = assert(s:request({ url = srv:url("/small.json") }))
    assert.are.equal("application/json", q.headers["Content-Type"])
    local seen = {}
    for _, h in ipairs(q.header_list) do seen[h[1]:lower()] = h[2] end
    assert.are.equal(q.headers["content-type"], seen["content-type"])
    assert.are.equal(tostring(#srv.json), seen["content-length"])
  end)

  it("a lower-case header that is absent costs no string (and an upper-case one is still found)", function()
    local r = assert(s:request({ url = srv:url("/small.json") }))
    assert.is_nil(r.headers["x-absent"])
    assert.is_nil(r.headers["X-Absent"])
    assert.are.equal("application/json", r.headers["CONTENT-TYPE"])
  end)
end)
