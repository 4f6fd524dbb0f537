-- provision.core responses: the fields built on first read (docs/core-api.md,
-- "resp") and core.header, which reads one header straight from the
-- response's header block. Served by a raw peer (a child lua5.4) that sends
-- exactly the bytes given, so that odd blocks reach the core as written.
local build = os.getenv("PROVISION_BUILD")
if build then package.cpath = build .. "/?.so;" .. package.cpath end
local core = require "provision.core"
local socket = require "socket"

-- A peer that answers connection i with responses[i] (keeping every socket
-- open to the end, so the client reads by Content-Length or chunks). Returns
-- the port and done(), which waits for it to finish (and kills it if not).
local function peer(responses)
  local script, ready, finished = os.tmpname(), os.tmpname(), os.tmpname()
  os.remove(ready)
  os.remove(finished)
  local lits = {}
  for i, r in ipairs(responses) do lits[i] = ("%q"):format(r) end
  local f = assert(io.open(script, "w"))
  f:write(([[
    local socket = require "socket"
    local responses = { %s }
    local srv = assert(socket.bind("127.0.0.1", 0))
    local _, port = srv:getsockname()
    local g = io.open(%q, "w"); g:write(port); g:close()
    srv:settimeout(20)
    local open = {}
    for i = 1, #responses do
      local c = srv:accept()
      if not c then break end
      c:settimeout(10)
      repeat local l = c:receive("*l") until l == "" or l == nil
      c:send(responses[i])
      open[#open + 1] = c
    end
    for _, c in ipairs(open) do c:close() end
    io.open(%q, "w"):close()
  ]]):format(table.concat(lits, ",\n"), ready, finished))
  f:close()
  local p = io.popen("lua5.4 " .. script .. " >/dev/null 2>&1 & echo $!")
  local pid = tonumber(p:read("a"):match("%d+"))
  p:close()
  local port
  local t0 = socket.gettime()
  while not port and socket.gettime() - t0 < 20 do
    local g = io.open(ready)
    if g then port = tonumber(g:read("a")); g:close() end
    if not port then socket.sleep(0.02) end
  end
  assert(port, "the peer did not start")
  return port, function()
    local t1 = socket.gettime()
    while not io.open(finished) and socket.gettime() - t1 < 20 do socket.sleep(0.02) end
    if pid then os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
    os.remove(script); os.remove(ready); os.remove(finished)
  end
end

-- One response per header block (lines without the status line), each with
-- a body "ok" and Connection: close (the next request takes the next
-- connection).
local function responses_for(blocks)
  local out = {}
  for i, b in ipairs(blocks) do
    if b:find("Transfer-Encoding: chunked", 1, true) then
      out[i] = "HTTP/1.1 200 OK\r\n" .. b .. "Connection: close\r\n\r\n2\r\nok\r\n0\r\nX-Trailer: t\r\n\r\n"
    else
      out[i] = "HTTP/1.1 200 OK\r\n" .. b .. "Content-Length: 2\r\nConnection: close\r\n\r\nok"
    end
  end
  return out
end

local function fetch_all(blocks)
  local port, done = peer(responses_for(blocks))
  local s = core.session()
  local out = {}
  for i = 1, #blocks do
    local r, err = s:request({ url = "http://127.0.0.1:" .. port .. "/" .. i, timeout = 20 })
    out[i] = r or err
  end
  s:close()
  done()
  return out
end

local many = {}
for i = 1, 30 do many[#many + 1] = ("X-Field-%d: value %d\r\n"):format(i, i) end

local BLOCKS = {
  "Content-Type: application/json\r\nX-A: 1\r\n",                              -- the usual block
  "X-Multi: one\r\nx-multi: two\r\nX-MULTI: three\r\n",                        -- repeats, any case
  "Set-Cookie: a=1\r\nset-cookie: b=2\r\nX-Other: o\r\n",                      -- joined with "\n"
  "cOnTeNt-TyPe: text/plain\r\nRETRY-AFTER: 5\r\n",                            -- odd case
  "X-Sp:    padded value   \r\nX-Tab:\tv\t\r\n",                               -- surrounding whitespace
  "X-Empty:\r\nX-Blank:    \r\nX-Last: z\r\n",                                 -- empty values
  "X-Colon: a:b: c\r\nX-Inner: a  b\r\n",                                      -- colons, inner spaces
  "X-Trail  : v\r\n",                                                          -- space before the colon
  "X-LF: lf\nX-CRLF: crlf\r\n",                                                -- a bare LF line end
  "X-\195\137: accent\r\n",                                                    -- a non-ASCII name
  table.concat(many),                                                          -- more fields than the quick path takes
  table.concat(many) .. "x-field-3: again\r\n",                                -- ... with a repeat
  "X-Big: " .. string.rep("b", 70000) .. "\r\nX-After: after\r\n",            -- a block over 64 KiB
  "Content-Type: text/csv\r\nTransfer-Encoding: chunked\r\n",                  -- with a trailer
  "",                                                                          -- no header line at all
  "X-Fold: a\r\n  b\r\nX-Next: n\r\n",                                        -- obsolete folding
}

-- Every name of a block in three spellings, plus names no block has.
local function names_of(block)
  local names = { "nope", "", "content-type ", " content-type", "x-field-", "content-length", "Content-Length",
                  "x-trailer", "X-Multi", "SET-COOKIE", "x-é", "X-\195\137", "x-\195\169" }
  for line in block:gmatch("[^\n]+") do
    local name = line:match("^([^:%s][^:]*):")
    if name then
      local trimmed = name:match("^(.-)%s*$")
      for _, n in ipairs({ name, trimmed, trimmed:lower(), trimmed:upper() }) do names[#names + 1] = n end
    end
  end
  return names
end

describe("core.header", function()
  local results
  before_each(function() results = results or fetch_all(BLOCKS) end)

  it("answers what resp.headers[name] answers, for every block and spelling, without building the map", function()
    local compared = 0
    for i, block in ipairs(BLOCKS) do
      local r = results[i]
      assert.are.equal(200, r.status, ("block %d: %s"):format(i, tostring(r.kind and r.message)))
      assert.is_nil(rawget(r, "headers"), "the map was built before it was read")
      local names, before = names_of(block), {}
      for j, n in ipairs(names) do before[j] = core.header(r, n) end
      local all = table.pack(core.header(r, table.unpack(names)))   -- every name in one call
      assert.is_nil(rawget(r, "headers"), "core.header built the map")
      assert.are.equal(#names, all.n, ("block %d: one value per name"):format(i))
      local h = r.headers
      for j, n in ipairs(names) do
        assert.are.equal(h[n], before[j], ("block %d, name %q"):format(i, n))
        assert.are.equal(h[n], all[j], ("block %d, name %q (several names at once)"):format(i, n))
        assert.are.equal(h[n], core.header(r, n), ("block %d, name %q (map built)"):format(i, n))
        compared = compared + 1
      end
    end
    assert.is_true(compared > 150, "compared " .. compared)
  end)

  it("gets the values a caller asks for, joined and trimmed as the map has them", function()
    assert.are.equal("application/json", core.header(results[1], "Content-Type"))
    assert.are.equal("one, two, three", core.header(results[2], "x-multi"))
    assert.are.equal("a=1\nb=2", core.header(results[3], "Set-Cookie"))
    assert.are.equal("5", core.header(results[4], "Retry-After"))
    assert.are.equal("padded value", core.header(results[5], "x-sp"))
    assert.are.equal("", core.header(results[6], "X-Empty"))
    assert.are.equal("", core.header(results[6], "x-blank"))
    assert.are.equal("a:b: c", core.header(results[7], "X-Colon"))
    assert.are.equal("v", core.header(results[8], "X-Trail"))
    assert.are.equal("lf", core.header(results[9], "x-lf"))
    assert.are.equal("value 30", core.header(results[11], "X-FIELD-30"))
    assert.are.equal("value 3, again", core.header(results[12], "X-Field-3"))
    assert.are.equal(70000, #core.header(results[13], "x-big"))
    assert.are.equal("after", core.header(results[13], "X-After"))
    assert.are.equal("text/csv", core.header(results[14], "content-type"))
    assert.is_nil(core.header(results[14], "X-Trailer"))   -- a trailer is not a header
    assert.are.equal("t", results[14].trailers["x-trailer"])
    assert.is_nil(core.header(results[15], "content-type"))
    assert.are.equal("2", core.header(results[15], "Content-Length"))
    assert.are.equal("a b", core.header(results[16], "x-fold"))
    assert.are.equal("n", core.header(results[16], "X-Next"))
  end)

  it("reads resp.headers of a table the core did not make, and a map set by hand", function()
    local ci = setmetatable({ ["content-type"] = "text/html" }, {
      __index = function(t, k) return type(k) == "string" and rawget(t, k:lower()) or nil end })
    assert.are.equal("text/html", core.header({ headers = ci }, "Content-Type"))
    assert.are.equal("v", core.header({ headers = { ["x-a"] = "v" } }, "x-a"))
    assert.is_nil(core.header({ headers = { ["x-a"] = "v" } }, "X-A"))   -- a plain map is what it is
    assert.is_nil(core.header({}, "x-a"))
    local via_index = setmetatable({}, { __index = function(_, k) if k == "headers" then return { a = "1" } end end })
    assert.are.equal("1", core.header(via_index, "a"))
    local r = results[1]
    local own = setmetatable({ status = 200, headers = { ["x-mine"] = "m" } }, getmetatable(r))
    assert.are.equal("m", core.header(own, "x-mine"))
    assert.are.same({ n = 3, "m", nil, "m" }, table.pack(core.header(own, "x-mine", "x-none", "x-mine")))
    assert.are.same({ n = 2 }, table.pack(core.header({}, "a", "b")))
    assert.are.same({ n = 2 }, table.pack(core.header({ headers = false }, "a", "b")))   -- a hook's false: no map
    assert.has_error(function() core.header(r, 1) end)
    assert.has_error(function() core.header(r, "content-type", false) end)
    assert.has_error(function() core.header(r) end)
    assert.has_error(function() core.header(nil, "x") end)
  end)
end)

describe("lazy response fields", function()
  local results
  before_each(function() results = results or fetch_all({ "Content-Type: application/json\r\nX-A: 1\r\n",
                                                         "X-A: 1\r\nx-a: 2\r\n" }) end)

  local LAZY = { "headers", "header_list", "trailers", "trailer_list", "url", "http_version", "time",
                 "new_connections", "local_port" }

  it("holds only status and body until a field is read, which then stays a plain field", function()
    local r = results[1]
    local keys = {}
    for k in pairs(r) do keys[#keys + 1] = k end
    table.sort(keys)
    assert.are.same({ "body", "status" }, keys)
    assert.is_nil(rawget(r, "time"))
    local t = r.time
    assert.is_number(t)
    assert.are.equal(t, rawget(r, "time"))
    assert.is_true(t >= 0 and t < 60)
    assert.matches("^http://127%.0%.0%.1:%d+/1$", r.url)
    assert.are.equal("1.1", r.http_version)
    assert.are.equal(1, r.new_connections)
    assert.is_true(r.local_port > 0)
    assert.are.same({ { "Content-Type", "application/json" }, { "X-A", "1" }, { "Content-Length", "2" },
                      { "Connection", "close" } }, r.header_list)
    assert.are.equal("2", results[2].headers["X-A"] and results[2].header_list[2][2])
    assert.are.equal("1, 2", results[2].headers["x-a"])
    assert.is_nil(r.kind)
    assert.is_nil(r.nope)
  end)

  it("are all there after core.response_fields, for pairs and encoders", function()
    local r = core.response_fields(results[2])
    assert.are.equal(results[2], r)
    for _, k in ipairs(LAZY) do assert.is_not_nil(rawget(r, k), k) end
    local encoded = core.json_encode(r)
    for _, k in ipairs(LAZY) do assert.matches('"' .. k .. '":', encoded, 1, true) end
  end)
end)

describe("responses of a session already closed", function()
  -- a batch outlives its session (docs/core-api.md): its results are
  -- still responses with lazy fields after the session's __close ran
  it("are built by a batch whose session a <close> variable closed", function()
    local port, done = peer(responses_for({ "Content-Type: application/json\r\nX-A: 1\r\n" }))
    local batch
    do
      local s <close> = core.session()
      batch = assert(s:start({ { url = "http://127.0.0.1:" .. port .. "/1", timeout = 20 } }))
      local t0 = core.now()
      while not batch:step(0.05) and core.now() - t0 < 30 do end
    end
    local results = assert(batch:results())
    done()
    local r = results[1]
    assert.are.equal(200, r.status, tostring(r.kind and r.message))
    assert.are.equal("ok", r.body)
    assert.are.equal("application/json", r.headers["content-type"])
    assert.are.equal("1", core.header(r, "x-a"))
    batch:close()
  end)
end)

