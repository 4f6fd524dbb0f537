-- Structured events (client `events = function(ev) end`): one table per
-- attempt with the fields README "Hooks and events" lists, the request id
-- the sandbox sends (X-Request-Id, also in its log), `log` as a formatter
-- over the same events, and W3C traceparent.
local provision = require("provision")
local json = require("provision.json")
local sandbox = require("support.sandbox")
local echo_support = require("support.echo")
local proc = require("support.proc")

local ORG = "Nw7kQ2pX9sT4vB8mL1cR3d"

describe("events", function()
  local sb, echo

  setup(function()
    sb = sandbox.start({ args = { "--quiet" } })
    echo = echo_support.start()
  end)
  teardown(function()
    sb:stop()
    echo:stop()
  end)
  before_each(function()
    assert.are.equal(200, (sb:admin("POST", "/reset")))
    sb:admin("DELETE", "/faults")
    sb:admin("DELETE", "/log")
  end)

  local function fault(rule) assert.are.equal(201, (sb:admin("POST", "/faults", rule))) end
  local function log()
    local _, doc = sb:admin("GET", "/log")
    return doc.entries
  end
  local function users(extra)
    local opts = { server = sb.agilicus, auth = { bearer = sb.credentials.agilicus.token },
                   retries = { attempts = 3, base_delay = 0.01, max_delay = 0.05 } }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return assert(provision.UsersApi(opts))
  end
  local function collector()
    local list = {}
    return list, function(ev) list[#list + 1] = ev end
  end

  describe("the sandbox's request ids", function()
    it("come on every API answer, differ, and are in the request log", function()
      fault({ method = "GET", pattern = "^/agilicus/users/faulty$", action = "503" })
      local seen = {}
      for _, path in ipairs({ "/agilicus/users?org_id=" .. ORG, "/agilicus/users/nobody", "/agilicus/users/faulty",
                              "/nothing-here", "/docspace/api/2.0/people/@self" }) do
        local status, _, headers = sb:request("GET", path, { headers = sb.headers.agilicus })
        assert.is_number(status)
        local id = headers["x-request-id"]
        assert.is_string(id, path)
        assert.is_nil(seen[id], "request ids repeat")
        seen[id] = path
      end
      local entries = log()
      assert.are.equal(4, #entries)   -- the path with no API is not logged
      for _, e in ipairs(entries) do
        assert.are.equal(e.path, seen[e.request_id]:match("^[^?]*"))
      end
    end)
  end)

  describe("per attempt", function()
    it("describes an attempt: names, status, request id, sizes, reuse, duration", function()
      local evs, sink = collector()
      local api = users({ events = sink })
      local created, info = assert(api:create_user({ email = "ev.one@northwind.example", org_id = ORG,
                                                     first_name = "Ev" }))
      assert(api:get_user(created.id, { org_id = ORG }))
      assert.are.equal(2, #evs)
      local entries = log()
      local c, g = evs[1], evs[2]
      assert.are.equal("UsersApi.create_user", c.operation)
      assert.are.equal("agilicus", c.api)
      assert.are.equal("POST", c.method)
      assert.are.equal("/agilicus/users", c.path)
      assert.are.equal(sb.agilicus .. "/users", c.url)
      assert.are.equal(201, c.status)
      assert.are.equal(1, c.attempt)
      assert.are.equal("ok", c.outcome)
      assert.are.equal(0, c.delay_before)
      assert.is_nil(c.retry_reason)
      assert.is_nil(c.kind)
      assert.is_nil(c.class)
      assert.is_true(c.sent)
      assert.is_true(c.duration >= 0)
      assert.are.equal(entries[1].request_id, c.request_id)
      assert.are.equal(entries[1].request_id, info.request_id)
      assert.are.equal(entries[2].request_id, g.request_id)
      assert.are_not.equal(c.request_id, g.request_id)
      assert.is_true(c.bytes_sent > #"ev.one@northwind.example")
      assert.is_true(c.bytes_received > 0)
      assert.are.equal(0, g.bytes_sent)
      assert.is_false(c.connection_reused)
      assert.is_true(g.connection_reused)
      assert.are.equal("/agilicus/users/" .. created.id, g.path)   -- the query (org_id) is left out
    end)

    it("says why and after how long an attempt was retried", function()
      fault({ method = "GET", path = "/agilicus/users", sequence = { "503", "pass" } })
      local evs, sink = collector()
      local api = users({ events = sink })
      assert(api:list_users({ org_id = ORG, limit = 1 }))
      assert.are.equal(2, #evs)
      local first, second = evs[1], evs[2]
      assert.are.equal(503, first.status)
      assert.are.equal("http", first.kind)
      assert.are.equal("ServiceUnavailableError", first.class)
      assert.are.equal("retry", first.outcome)
      assert.is_number(first.retry_in)
      assert.are.equal(2, second.attempt)
      assert.are.equal("http_503", second.retry_reason)
      assert.are.equal(first.retry_in, second.delay_before)
      assert.are.equal("ok", second.outcome)
      assert.are.equal(log()[1].request_id, first.request_id)
    end)

    it("reports a failed call's class and outcome, and failures with no answer by kind", function()
      local evs, sink = collector()
      local _, err = users({ events = sink }):get_user("nobody", { org_id = ORG })
      assert.are.equal(1, #evs)
      assert.are.equal("error", evs[1].outcome)
      assert.are.equal("NotFoundError", evs[1].class)
      assert.are.equal("not_applied", evs[1].error_outcome)
      assert.are.equal(err.request_id, evs[1].request_id)

      local port = proc.refused_port()
      local evs2, sink2 = collector()
      local api = assert(provision.UsersApi({ server = "http://127.0.0.1:" .. port, events = sink2,
                                              retries = { attempts = 2, base_delay = 0.01 } }))
      local _, cerr = api:get_user("u1")
      assert.are.equal("connect", cerr.kind)
      assert.are.equal(2, #evs2)
      for i, ev in ipairs(evs2) do
        assert.is_nil(ev.status)
        assert.are.equal("connect", ev.kind)
        assert.are.equal("ConnectionError", ev.class)
        assert.is_nil(ev.request_id)
        assert.are.equal(i == 1 and "retry" or "error", ev.outcome)
      end
      assert.are.equal("connect", evs2[2].retry_reason)
    end)

    it("follows a create whose answer was lost through its read-back", function()
      fault({ method = "POST", path = "/agilicus/users", action = "close_after", times = 1 })
      local evs, sink = collector()
      local user = assert(users({ events = sink }):create_user({ email = "ev.lost@northwind.example",
                                                                 org_id = ORG, first_name = "L" }))
      assert.is_string(user.id)
      assert.are.equal(2, #evs)
      assert.are.equal("read_back", evs[1].outcome)
      assert.are.equal("network", evs[1].kind)
      assert.are.equal("UsersApi.list_users", evs[2].operation)
      assert.are.equal("UsersApi.create_user", evs[2].read_back_of)
      assert.are.equal("ok", evs[2].outcome)
    end)

    it("reports an attempt a hook stopped as not sent", function()
      local evs, sink = collector()
      users({ events = sink, hooks = { before_request = function() return nil, "no" end } })
        :list_users({ org_id = ORG })
      assert.are.equal(1, #evs)
      assert.is_false(evs[1].sent)
      assert.are.equal("hook", evs[1].kind)
      assert.are.equal("HookError", evs[1].class)
      assert.are.equal("before_request", evs[1].hook)
      assert.are.equal(0, evs[1].bytes_sent)
      assert.are.same({}, log())
    end)

    it("holds no credential, query string or body, and encodes as JSON", function()
      local evs, sink = collector()
      local api = users({ events = sink })
      assert(api:list_users({ org_id = ORG, email = "secret.person@northwind.example" }))
      assert(api:create_user({ email = "body.person@northwind.example", org_id = ORG }))
      local text = assert(json.encode(evs))
      for _, s in ipairs({ sb.credentials.agilicus.token, "secret.person", "body.person", "org_id=" }) do
        assert.is_nil(text:find(s, 1, true), s)
      end
    end)

    it("never lets a failing events or log function break the call", function()
      local api = users({ events = function() error("sink down") end, log = function() error("log down") end,
                          log_format = function() error("format down") end })
      assert(api:list_users({ org_id = ORG, limit = 1 }))
    end)

    it("reach every call of a bulk run", function()
      local evs, sink = collector()
      local calls = {}
      for i = 1, 12 do calls[i] = { "get_user", "u" .. i, { org_id = ORG } } end
      users({ events = sink }):bulk(calls, { concurrency = 4 })
      assert.are.equal(12, #evs)
      local ids = {}
      for _, ev in ipairs(evs) do ids[ev.request_id] = true end
      for _, e in ipairs(log()) do assert.is_true(ids[e.request_id], e.request_id) end
    end)
  end)

  describe("log", function()
    it("is a formatter over the events: the same line as ever, or log_format's", function()
      fault({ method = "GET", path = "/agilicus/users", sequence = { "503", "pass" } })
      local lines, evs = {}, {}
      local api = users({ log = function(l) lines[#lines + 1] = l end, events = function(ev) evs[#evs + 1] = ev end })
      assert(api:list_users({ org_id = ORG, limit = 1 }))
      assert.are.equal(2, #lines)
      assert.matches("^UsersApi%.list_users GET " .. sb.agilicus:gsub("%p", "%%%0") .. "/users %-> 503 %(%d+%.%d ms, attempt 1%)$",
        lines[1])
      assert.matches("%-> 200 %(%d+%.%d ms, attempt 2%)$", lines[2])
      assert.are.equal(provision.events.format(evs[2]), lines[2])

      local custom = {}
      local api2 = users({ log = function(l) custom[#custom + 1] = l end,
                           log_format = function(ev) return ev.request_id .. " " .. ev.outcome end })
      assert(api2:list_users({ org_id = ORG, limit = 1 }))
      assert.are.equal(log()[3].request_id .. " ok", custom[1])
    end)
  end)

  describe("traceparent", function()
    local function echo_users(extra)
      local opts = { server = echo.url, retries = false }
      for k, v in pairs(extra or {}) do opts[k] = v end
      return assert(provision.UsersApi(opts))
    end

    it("sends a new trace per call with a new span per attempt, named in the event", function()
      local evs, sink = collector()
      local api = echo_users({ traceparent = true, events = sink })
      local a = assert(api:get_user("u1"))
      local b = assert(api:get_user("u2"))
      local ta, tb = a.headers.traceparent, b.headers.traceparent
      assert.matches("^00%-" .. string.rep("%x", 32) .. "%-" .. string.rep("%x", 16) .. "%-01$", ta)
      assert.are.equal("00-" .. evs[1].trace_id .. "-" .. evs[1].span_id .. "-01", ta)
      assert.are_not.equal(evs[1].trace_id, evs[2].trace_id)
      assert.are.equal("00-" .. evs[2].trace_id .. "-" .. evs[2].span_id .. "-01", tb)
    end)

    it("sends a caller's traceparent as given, per call", function()
      local given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
      local evs, sink = collector()
      local api = echo_users({ events = sink })
      local got = assert(api:get_user("u1", { _call = { traceparent = given } }))
      assert.are.equal(given, got.headers.traceparent)
      assert.are.equal("4bf92f3577b34da6a3ce929d0e0e4736", evs[1].trace_id)
      local _, info = api:get_user("u2")
      assert.is_nil(info.trace_id)
      assert.is_nil(evs[2].trace_id)
      local plain = assert(api:get_user("u3"))
      assert.is_nil(plain.headers.traceparent)
    end)

    it("keeps one trace across retries and returns its id with the result", function()
      fault({ method = "GET", path = "/agilicus/users", sequence = { "503", "pass" } })
      local evs, sink = collector()
      local _, info = assert(users({ events = sink, traceparent = true }):list_users({ org_id = ORG, limit = 1 }))
      assert.are.equal(2, #evs)
      assert.are.equal(evs[1].trace_id, evs[2].trace_id)
      assert.are_not.equal(evs[1].span_id, evs[2].span_id)
      assert.are.equal(evs[1].trace_id, info.trace_id)
    end)

    it("refuses a traceparent that is not W3C's", function()
      for _, bad in ipairs({ "yes", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                             "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                             "00-00000000000000000000000000000000-00f067aa0ba902b7-01", 5 }) do
        local api, err = provision.UsersApi({ server = echo.url, traceparent = bad })
        assert.is_nil(api)
        assert.are.equal("invalid_argument", err.kind)
        local _, cerr = echo_users():get_user("u1", { _call = { traceparent = bad } })
        assert.are.equal("invalid_argument", cerr.kind)
      end
    end)
  end)
end)
