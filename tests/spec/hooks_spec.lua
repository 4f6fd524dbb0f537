-- User hooks (client `hooks = {...}` and `_call.hooks`): the order they run
-- in, what they may change, how they stop a call, what a hook that raises
-- becomes, and that they run the same under bulk and the coro transport.
-- Against the sandbox (faults, request log) and the echo server (what a
-- request carried). Inside nginx: tests/spec/nginx_host_spec.lua.
local provision = require("provision")
local sandbox = require("support.sandbox")
local echo_support = require("support.echo")
local Coro = require("provision.transport.coro")
local socket = require("socket")

local ORG = "Nw7kQ2pX9sT4vB8mL1cR3d"

describe("user hooks", function()
  local sb, echo, echo2

  setup(function()
    sb = sandbox.start({ args = { "--quiet" } })
    echo = echo_support.start()
    echo2 = echo_support.start()
  end)
  teardown(function()
    sb:stop()
    echo:stop()
    echo2:stop()
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
  local function echo_users(extra)
    local opts = { server = echo.url, auth = { bearer = "tok-hooks-SECRET" }, retries = false }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return assert(provision.UsersApi(opts))
  end

  -- hooks that append "name:attempt[:detail]" to trace
  local function recorder(trace, tag)
    tag = tag and (tag .. ".") or ""
    return {
      before_request = function(_, ctx) trace[#trace + 1] = tag .. "before_request:" .. ctx.attempt end,
      after_response = function(resp, ctx)
        trace[#trace + 1] = tag .. "after_response:" .. ctx.attempt .. ":" .. resp.status
      end,
      on_retry = function(ctx, delay, reason)
        assert(type(delay) == "number" and delay >= 0)
        trace[#trace + 1] = tag .. "on_retry:" .. ctx.attempt .. ":" .. reason
      end,
      on_error = function(err, ctx) trace[#trace + 1] = tag .. "on_error:" .. ctx.attempt .. ":" .. err.class end,
    }
  end

  describe("order", function()
    it("runs before_request, after_response, on_retry per attempt and on_error once at the end", function()
      fault({ method = "GET", path = "/agilicus/users", sequence = { "503", "pass" } })
      local trace = {}
      local api = users({ hooks = recorder(trace) })
      assert(api:list_users({ org_id = ORG, limit = 1 }))
      assert.are.same({ "before_request:1", "after_response:1:503", "on_retry:1:http_503",
                        "before_request:2", "after_response:2:200" }, trace)

      for i = #trace, 1, -1 do trace[i] = nil end
      local _, err = api:get_user("no-such-user", { org_id = ORG })
      assert.are.equal("NotFoundError", err.class)
      assert.are.same({ "before_request:1", "after_response:1:404", "on_error:1:NotFoundError" }, trace)
    end)

    it("runs the client's hooks first, then the call's", function()
      local trace = {}
      local api = users({ hooks = recorder(trace, "client") })
      local _, err = api:get_user("no-such-user", { org_id = ORG, _call = { hooks = recorder(trace, "call") } })
      assert.is_truthy(err)
      assert.are.same({ "client.before_request:1", "call.before_request:1",
                        "client.after_response:1:404", "call.after_response:1:404",
                        "client.on_error:1:NotFoundError", "call.on_error:1:NotFoundError" }, trace)
    end)

    it("sees throttling and lost connections as retries with their reason", function()
      -- (the first request of a new client goes out on a new connection, so
      -- libcurl cannot quietly re-send it on another)
      fault({ method = "GET", path = "/agilicus/users", sequence = { "close", "429", "pass" } })
      local trace = {}
      local api = users({ hooks = recorder(trace) })
      assert(api:list_users({ org_id = ORG, limit = 1 }))
      assert.are.same({ "before_request:1", "on_retry:1:network",      -- no answer: no after_response
                        "before_request:2", "after_response:2:429", "on_retry:2:throttled",
                        "before_request:3", "after_response:3:200" }, trace)
    end)

    it("gives ctx the call's names and never a credential", function()
      local seen
      local api = users({ hooks = { before_request = function(_, ctx)
        seen = {}
        for k, v in pairs(ctx) do seen[k] = v end
      end } })
      assert(api:list_users({ org_id = ORG, limit = 1 }))
      assert.are.same({ operation = "UsersApi.list_users", operation_id = "list_users", api = "agilicus",
                        class = "UsersApi", attempt = 1, base_url = sb.agilicus,
                        security_scheme = "token-valid" }, seen)
      for _, v in pairs(seen) do
        assert.is_nil(tostring(v):find(sb.credentials.agilicus.token, 1, true))
      end
    end)

    it("runs for the read-back that settles a create whose answer was lost, named in ctx", function()
      fault({ method = "POST", path = "/agilicus/users", action = "close_after", times = 1 })
      local ops = {}
      local api = users({ hooks = { before_request = function(_, ctx)
        ops[#ops + 1] = ctx.operation .. (ctx.read_back_of and (" for " .. ctx.read_back_of) or "")
      end } })
      local user, info = api:create_user({ email = "lost.answer@northwind.example", org_id = ORG, first_name = "L" })
      assert(user, tostring(info))
      assert.are.equal("read_back", info.settled)
      assert.are.same({ "UsersApi.create_user", "UsersApi.list_users for UsersApi.create_user" }, ops)
    end)

    it("runs a call's own hooks (_call.hooks) for its read-back, on a client with none", function()
      fault({ method = "POST", path = "/agilicus/users", action = "close_after", times = 1 })
      local ops = {}
      local call_hooks = { before_request = function(_, ctx)
        ops[#ops + 1] = ctx.operation .. (ctx.read_back_of and (" for " .. ctx.read_back_of) or "")
      end }
      local user, info = users():create_user({ email = "lost.call@northwind.example", org_id = ORG, first_name = "L" },
                                             { _call = { hooks = call_hooks } })
      assert(user, tostring(info))
      assert.are.equal("read_back", info.settled)
      assert.are.same({ "UsersApi.create_user", "UsersApi.list_users for UsersApi.create_user" }, ops)
    end)
  end)

  describe("changes", function()
    it("adds and replaces headers, and changes the body and the URL", function()
      local api = echo_users({ hooks = { before_request = function(req)
        req:set_header("X-Tenant", "northwind")
        table.insert(req.headers, { "X-Added", 7 })
        assert.are.equal("Bearer tok-hooks-SECRET", req:header("authorization"))
      end } })
      local got = assert(api:get_user("u1"))
      assert.are.equal("northwind", got.headers["x-tenant"])
      assert.are.equal("7", got.headers["x-added"])

      local created = assert(echo_users({ hooks = { before_request = function(req)
        req.body = req.body:gsub("ada@", "grace@")
      end } }):create_user({ email = "ada@example.com", org_id = "o1" }))
      assert.is_truthy(created.body:find("grace@example.com", 1, true), created.body)

      local moved = assert(echo_users({ hooks = { before_request = function(req)
        req.url = req.url:gsub("^http://127%.0%.0%.1:%d+", echo2.url)
      end } }):get_user("u2"))
      assert.are.equal("127.0.0.1:" .. echo2.port, moved.headers.host)
    end)

    it("may return a new request table", function()
      local api = echo_users({ hooks = { before_request = function(req)
        return { method = "GET", url = req.url .. "-replaced", headers = { { "X-Whole", "new" } } }
      end } })
      local got = assert(api:get_user("u1"))
      assert.are.equal("/users/u1-replaced", got.path)
      assert.are.equal("new", got.headers["x-whole"])
      assert.is_nil(got.headers.authorization)
    end)

    it("after_response may replace the answer, which is then judged as if it had come", function()
      local api = users({ hooks = { after_response = function(resp)
        if resp.status == 404 then
          return { status = 200, headers = { ["content-type"] = "application/json" },
                   body = '{"id": "placeholder", "email": "none@northwind.example"}' }
        end
      end } })
      local user = assert(api:get_user("no-such-user", { org_id = ORG }))
      assert.are.equal("placeholder", user.id)
    end)

    it("on_error may replace the error; the outcome stays what happened", function()
      local api = users({ hooks = { on_error = function(err)
        return { kind = "http", class = "MissingUser", status = err.status, message = "no such user here" }
      end } })
      local _, err = api:get_user("no-such-user", { org_id = ORG })
      assert.are.equal("MissingUser", err.class)
      assert.are.equal("not_applied", err.outcome)
      assert.are.equal("UsersApi.get_user", err.operation)
      assert.is_true(err:is("HTTPError"))
      assert.matches("MissingUser in UsersApi.get_user", tostring(err))
    end)
  end)

  describe("stopping a call", function()
    it("before_request returning nil, err stops it with nothing sent", function()
      local api = users({ hooks = { before_request = function(req)
        if req.method == "POST" then return nil, "writes are frozen" end
      end } })
      local r, err = api:create_user({ email = "frozen@northwind.example", org_id = ORG })
      assert.is_nil(r)
      assert.are.equal("hook", err.kind)
      assert.are.equal("HookError", err.class)
      assert.are.equal("before_request", err.hook)
      assert.are.equal("not_applied", err.outcome)
      assert.are.equal("writes are frozen", err.cause)
      assert.matches("before_request hook stopped the call: writes are frozen", tostring(err))
      assert.are.same({}, log())          -- nothing reached the sandbox
      assert(api:list_users({ org_id = ORG, limit = 1 }))
      assert.are.equal(1, #log())
    end)

    it("before_request may stop it with an error table of its own", function()
      local api = users({ hooks = { before_request = function()
        return nil, { kind = "policy", class = "PolicyError", message = "outside office hours" }
      end } })
      local _, err = api:list_users({ org_id = ORG })
      assert.are.equal("PolicyError", err.class)
      assert.are.equal("policy", err.kind)
      assert.are.equal("before_request", err.hook)
      assert.are.equal("not_applied", err.outcome)
      assert.are.same({}, log())
    end)

    it("after_response returning nil, err ends the call; a create that landed says unknown", function()
      local api = users({ hooks = { after_response = function(resp)
        if resp.status == 201 then return nil, "audit store is down" end
      end } })
      local _, err = api:create_user({ email = "landed@northwind.example", org_id = ORG, first_name = "L" })
      assert.are.equal("HookError", err.class)
      assert.are.equal("after_response", err.hook)
      assert.are.equal("unknown", err.outcome)   -- the sandbox did create it
      assert.are.equal(1, #log())
      assert.are.equal(log()[1].request_id, err.request_id)
      assert.is_true(err:is(provision.errors.UnknownOutcomeError))
    end)

    it("refuses a request a hook left unsendable, before anything is sent", function()
      for _, bad in ipairs({
        function(req) req.headers["X-Map"] = "1" end,
        function(req) req.headers[#req.headers + 1] = { "X-Bad", {} } end,
        function(req) req.body = 42 end,
        function(req) req.url = nil end,
      }) do
        local _, err = users({ hooks = { before_request = bad } }):list_users({ org_id = ORG })
        assert.are.equal("HookError", err.class)
        assert.matches("before_request hook left a request that", err.message)
      end
      assert.are.same({}, log())
    end)
  end)

  describe("a hook that raises", function()
    local function raising(name)
      return { [name] = function() error("boom in " .. name, 0) end }
    end

    it("becomes the call's HookError, in every hook, and never escapes", function()
      for _, name in ipairs({ "before_request", "after_response", "on_retry", "on_error" }) do
        fault({ method = "GET", path = "/agilicus/users", sequence = { "503", "pass" } })
        local api = users({ hooks = raising(name) })
        local ok, r, err
        if name == "on_error" then ok, r, err = pcall(api.get_user, api, "no-such-user", { org_id = ORG })
        else ok, r, err = pcall(api.list_users, api, { org_id = ORG }) end
        assert.is_true(ok, "raised out of the call: " .. tostring(r))
        assert.is_nil(r)
        assert.are.equal("hook", err.kind, name)
        assert.are.equal("HookError", err.class)
        assert.are.equal(name, err.hook)
        assert.are.equal("boom in " .. name, err.cause)
        assert.matches(name .. " hook raised: boom in " .. name, err.message)
        sb:admin("DELETE", "/faults")
      end
    end)

    it("before_request: nothing is sent; on_retry: the retry is not sent", function()
      local _, err = users({ hooks = raising("before_request") }):list_users({ org_id = ORG })
      assert.are.equal("not_applied", err.outcome)
      assert.are.same({}, log())

      fault({ method = "GET", path = "/agilicus/users", sequence = { "503", "pass" } })
      local _, rerr = users({ hooks = raising("on_retry") }):list_users({ org_id = ORG })
      assert.are.equal("on_retry", rerr.hook)
      assert.are.equal(1, #log())
      assert.are.equal(1, rerr.attempts)
    end)

    it("on_error: keeps the error it was given", function()
      local _, err = users({ hooks = raising("on_error") }):get_user("no-such-user", { org_id = ORG })
      assert.are.equal("on_error", err.hook)
      assert.are.equal("NotFoundError", err.original.class)
      assert.are.equal("not_applied", err.outcome)
    end)
  end)

  describe("options", function()
    it("refuses hooks that are not functions, and unknown hook names", function()
      for _, bad in ipairs({ { before_request = "yes" }, { after_respons = function() end }, "hook",
                             { on_error = {} } }) do
        local api, err = provision.UsersApi({ server = sb.agilicus, hooks = bad })
        assert.is_nil(api)
        assert.are.equal("invalid_argument", err.kind)
        assert.matches("hooks", err.message)
        local _, cerr = users():list_users({ org_id = ORG, _call = { hooks = bad } })
        assert.are.equal("invalid_argument", cerr.kind)
      end
      local _, err = provision.UsersApi({ server = sb.agilicus, hooks = { after_respons = function() end } })
      assert.matches("did you mean after_response", err.message)
      assert.are.same({}, log())
    end)
  end)

  describe("under bulk", function()
    it("runs each call's hooks, and a stopped call ends alone", function()
      local before, errors_seen = {}, {}
      local api = users({ hooks = {
        before_request = function(req, ctx)
          before[#before + 1] = ctx.operation
          req:set_header("X-Bulk", "1")
        end,
        on_error = function(err) errors_seen[#errors_seen + 1] = err.class end,
      } })
      local calls = {}
      for i = 1, 20 do calls[i] = { "get_user", "u" .. i, { org_id = ORG } } end
      calls[5] = { "list_users", { org_id = ORG, limit = 1,
                                   _call = { hooks = { before_request = function() return nil, "not this one" end } } } }
      local results, summary = api:bulk(calls, { concurrency = 4 })
      assert.are.equal(20, #before)
      assert.are.equal(20, #errors_seen)   -- 19 NotFoundError + the stopped one
      assert.are.equal("HookError", results[5][2].class)
      for i, r in ipairs(results) do
        if i ~= 5 then assert.are.equal("NotFoundError", r[2].class) end
      end
      assert.are.equal(19, summary.requests)
      assert.are.equal(19, #log())
    end)

    it("retries inside bulk call on_retry, and a raising hook fails only its call", function()
      fault({ method = "GET", pattern = "^/agilicus/users/u3$", sequence = { "503", "pass" } })
      local retried = {}
      local api = users({ hooks = {
        on_retry = function(ctx, _, reason) retried[#retried + 1] = ctx.operation .. ":" .. reason end,
        after_response = function(_, ctx) if ctx.attempt == 1 and ctx.raise then error("x") end end,
        before_request = function(req, ctx) if req.url:find("/u7?", 1, true) then ctx.raise = true end end,
      } })
      local calls = {}
      for i = 1, 8 do calls[i] = { "get_user", "u" .. i, { org_id = ORG } } end
      local results = api:bulk(calls, { concurrency = 8 })
      assert.are.same({ "UsersApi.get_user:http_503" }, retried)
      assert.are.equal("HookError", results[7][2].class)
      assert.are.equal("after_response", results[7][2].hook)
      for i, r in ipairs(results) do
        if i ~= 7 then assert.are.equal("NotFoundError", r[2].class, i) end
      end
    end)
  end)

  describe("under the coro transport", function()
    -- a minimal host loop: resume every waiting coroutine after a short pause
    local function run(f)
      local co = coroutine.create(f)
      local yields, out = 0, nil
      while coroutine.status(co) ~= "dead" do
        local ok, what, info = coroutine.resume(co)
        if not ok then error(debug.traceback(co, what)) end
        if coroutine.status(co) == "dead" then out = what
        else
          assert.are.equal(Coro.WAIT, what)
          yields = yields + 1
          socket.sleep(math.min(info.timeout or 0.01, 0.01))
        end
      end
      return out, yields
    end

    it("runs the hooks in the caller's coroutine, where a hook may itself yield to the host", function()
      fault({ method = "GET", path = "/agilicus/users", sequence = { "503", "pass" } })
      local trace = {}
      local hook_yielded = false
      local hooks = recorder(trace)
      local record_before = hooks.before_request
      hooks.before_request = function(req, ctx)
        record_before(req, ctx)
        -- yielding here would fail ("attempt to yield across a C-call
        -- boundary") if hooks ran inside a libcurl callback
        coroutine.yield(Coro.WAIT, { fds = {}, timeout = 0.001, complete = true, sleep = true })
        hook_yielded = true
      end
      local t = assert(Coro.new({ timeout = 10 }))
      local api = users({ transport = t, hooks = hooks })
      local out, yields = run(function()
        local page, err = api:list_users({ org_id = ORG, limit = 1 })
        return page and #page.users or tostring(err)
      end)
      assert.are.equal(1, out)
      assert.is_true(hook_yielded)
      assert.is_true(yields >= 2)
      assert.are.same({ "before_request:1", "after_response:1:503", "on_retry:1:http_503",
                        "before_request:2", "after_response:2:200" }, trace)
      t:close()
    end)

    it("turns a raise in a coroutine's hook into the call's error", function()
      local t = assert(Coro.new({ timeout = 10 }))
      local api = users({ transport = t, hooks = { after_response = function() error("bad hook", 0) end } })
      local out = run(function()
        local _, err = api:list_users({ org_id = ORG, limit = 1 })
        return err.class .. ":" .. err.hook
      end)
      assert.are.equal("HookError:after_response", out)
      t:close()
    end)
  end)
end)
