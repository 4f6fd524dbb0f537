-- The error class hierarchy (provision.errors.<Name>, err:is): class objects
-- and their parents, err:is by object and by name across the families, on
-- real failures from the sandbox, a refused port and a silent server, with
-- err.class staying the exact string and Outpost keeping its SDK's mapping.
local provision = require("provision")
local errors = require("provision.errors")
local sandbox = require("support.sandbox")
local proc = require("support.proc")
local socket = require("socket")

local ORG = "Nw7kQ2pX9sT4vB8mL1cR3d"
local E = provision.errors

describe("error classes", function()
  describe("the hierarchy", function()
    it("is made of named class objects with parents", function()
      assert.are.equal(errors, E)
      assert.are.equal("NotFoundError", E.NotFoundError.name)
      assert.are.equal("NotFoundError", tostring(E.NotFoundError))
      assert.are.equal(E.HTTPError, E.NotFoundError.parent)
      assert.are.equal(E.APIError, E.HTTPError.parent)
      assert.are.equal(E.Error, E.APIError.parent)
      assert.are.equal(E.TransportError, E.ConnectionError.parent)
      assert.are.equal(E.TransportError, E.TLSError.parent)
      assert.is_nil(E.Error.parent)
      assert.is_true(E.NotFoundError:is(E.APIError))
      assert.is_true(E.NotFoundError:is("HTTPError"))
      assert.is_false(E.NotFoundError:is(E.TransportError))
      assert.are.equal(E.ConflictError, errors.class("ConflictError"))
      local names = {}
      for _, c in ipairs(errors.classes()) do names[#names + 1] = c.name end
      for _, n in ipairs({ "APIError", "HTTPError", "TransportError", "InvalidArgumentError", "UnknownOutcomeError",
                           "TimeoutError", "RateLimitedError", "HookError" }) do
        assert.is_truthy(errors.class(n), n)
      end
      assert.is_true(#names >= 25)
    end)

    it("puts every status class under HTTPError and APIError", function()
      for status = 400, 599 do
        local e = errors.new({ kind = "http", status = status })
        assert.is_true(e:is(E.HTTPError), status)
        assert.is_true(e:is(E.APIError), status)
        assert.is_true(e:is(E.Error), status)
        assert.is_false(e:is(E.TransportError), status)
        assert.is_true(e:is(e.class))
        assert.is_true(e:is(errors.class(e.class) or e.class))
      end
    end)

    it("puts every failure with no answer under TransportError", function()
      local expect = { connect = "ConnectionError", dns = "ConnectionError", network = "ConnectionError",
                       tls = "TLSError", timeout = "TimeoutError", protocol = "ProtocolError",
                       too_large = "ResponseTooLargeError", closed = "ClosedError", aborted = "AbortedError" }
      for kind, class in pairs(expect) do
        local e = errors.new({ kind = kind, message = "x" })
        assert.are.equal(class, e.class)
        assert.is_true(e:is(E.TransportError), kind)
        assert.is_true(e:is(class), kind)
        assert.is_false(e:is(E.APIError), kind)
        assert.is_false(e:is(E.HTTPError), kind)
      end
    end)

    it("asks by name too, and a name outside the hierarchy matches only itself", function()
      local e = errors.new({ kind = "http", status = 404 })
      assert.is_true(e:is("NotFoundError"))
      assert.is_true(e:is("APIError"))
      assert.is_false(e:is("ConflictError"))
      assert.is_false(e:is("NoSuchClassAnywhere"))
      local custom = errors.new({ kind = "journal", class = "JournalBusyError", message = "locked" })
      assert.is_true(custom:is(E.JournalError))
      local own = errors.new({ kind = "policy", class = "PolicyError", message = "no" })
      assert.is_true(own:is("PolicyError"))
      assert.is_true(own:is(E.Error))
      assert.is_false(own:is(E.APIError))
      assert.is_false(e:is(42))
      assert.is_false(e:is({ name = "NotFoundError" }))   -- not a class object
    end)

    it("handles plain error tables from transports with errors.is", function()
      assert.is_true(errors.is({ kind = "dns", message = "cannot resolve" }, E.ConnectionError))
      assert.is_true(errors.is({ kind = "tls", message = "x" }, "TransportError"))
      assert.is_false(errors.is({ kind = "tls" }, E.APIError))
      assert.is_false(errors.is("timeout", E.TimeoutError))
      assert.is_false(errors.is(nil, E.Error))
      assert.is_true(errors.is_error(errors.new({ kind = "dns" })))
      assert.is_false(errors.is_error({ kind = "dns" }))
    end)

    it("places the names that serve two kinds by what happened", function()
      local gateway = errors.new({ kind = "http", status = 504 })
      assert.are.equal("TimeoutError", gateway.class)
      assert.is_true(gateway:is(E.TimeoutError))
      assert.is_true(gateway:is(E.HTTPError))
      assert.is_false(gateway:is(E.TransportError))
      local silent = errors.new({ kind = "timeout", message = "no answer" })
      assert.is_true(silent:is(E.TimeoutError))
      assert.is_true(silent:is(E.TransportError))
      local deadline = errors.new({ kind = "timeout", class = "TimeoutError", deadline = true, message = "d" })
      assert.is_true(deadline:is(E.TimeoutError))
      assert.is_false(deadline:is(E.TransportError))
      local throttled = errors.new({ kind = "throttled", class = "RateLimitedError", message = "spent" })
      assert.is_true(throttled:is(E.RateLimitedError))
      assert.is_false(throttled:is(E.HTTPError))
      local answered429 = errors.new({ kind = "http", status = 429 })
      assert.is_true(answered429:is(E.RateLimitedError))
      assert.is_true(answered429:is(E.HTTPError))
      local envelope = errors.new({ kind = "api", status = 200, class = "APIError", message = "failed inside" })
      assert.is_true(envelope:is(E.APIError))
      assert.is_false(envelope:is(E.HTTPError))
    end)

    it("makes every failure whose outcome is unknown an UnknownOutcomeError", function()
      assert.is_true(errors.new({ kind = "network", outcome = "unknown" }):is(E.UnknownOutcomeError))
      assert.is_false(errors.new({ kind = "network", outcome = "not_applied" }):is(E.UnknownOutcomeError))
      assert.is_false(errors.new({ kind = "http", status = 404 }):is("UnknownOutcomeError"))
    end)
  end)

  describe("on real failures", function()
    local sb

    setup(function() sb = sandbox.start({ args = { "--quiet" } }) end)
    teardown(function() sb:stop() end)
    before_each(function()
      assert.are.equal(200, (sb:admin("POST", "/reset")))
      sb:admin("DELETE", "/faults")
    end)

    local function users(extra)
      local opts = { server = sb.agilicus, auth = { bearer = sb.credentials.agilicus.token }, retries = false }
      for k, v in pairs(extra or {}) do opts[k] = v end
      return assert(provision.UsersApi(opts))
    end

    it("a 404 is a NotFoundError, an HTTPError and an APIError, with the same class string", function()
      local _, err = users():get_user("nobody", { org_id = ORG })
      assert.are.equal("NotFoundError", err.class)
      assert.is_true(err:is(E.NotFoundError))
      assert.is_true(err:is("NotFoundError"))
      assert.is_true(err:is(E.HTTPError))
      assert.is_true(err:is(E.APIError))
      assert.is_false(err:is(E.TransportError))
      assert.is_false(err:is(E.UnknownOutcomeError))
      assert.are.equal("NotFoundError in UsersApi.get_user (HTTP 404): user does not exist", tostring(err))
    end)

    it("a refused connection is a ConnectionError and a TransportError", function()
      local api = assert(provision.UsersApi({ server = "http://127.0.0.1:" .. proc.refused_port(), retries = false }))
      local _, err = api:get_user("u1")
      assert.are.equal("ConnectionError", err.class)
      assert.is_true(err:is(E.ConnectionError))
      assert.is_true(err:is(E.TransportError))
      assert.is_false(err:is(E.APIError))
    end)

    it("a server that never answers is a TimeoutError and a TransportError", function()
      local silent = assert(socket.bind("127.0.0.1", 0))
      local _, port = silent:getsockname()
      local api = assert(provision.UsersApi({ server = "http://127.0.0.1:" .. port, retries = false, timeout = 0.3 }))
      local _, err = api:get_user("u1")
      silent:close()
      assert.are.equal("timeout", err.kind)
      assert.is_true(err:is(E.TimeoutError))
      assert.is_true(err:is(E.TransportError))
      assert.is_false(err:is(E.HTTPError))
    end)

    it("a sandbox 504 is a TimeoutError and an HTTPError, not a TransportError", function()
      assert.are.equal(201, (sb:admin("POST", "/faults", { method = "GET", path = "/agilicus/users", action = "504" })))
      local _, err = users():list_users({ org_id = ORG })
      assert.are.equal("TimeoutError", err.class)
      assert.is_true(err:is(E.TimeoutError))
      assert.is_true(err:is(E.HTTPError))
      assert.is_false(err:is(E.TransportError))
    end)

    it("bad input is an InvalidArgumentError, sent nowhere", function()
      local _, err = users():get_user()
      assert.are.equal("InvalidArgumentError", err.class)
      assert.is_true(err:is(E.InvalidArgumentError))
      assert.is_false(err:is(E.APIError))
    end)

    it("a create that may have landed is an UnknownOutcomeError", function()
      assert.are.equal(201, (sb:admin("POST", "/faults", { method = "POST", path = "/agilicus/users",
                                                           action = "close_after", times = 1 })))
      local _, err = users({ retries = { attempts = 1, read_back = false } })
        :create_user({ email = "maybe@northwind.example", org_id = ORG })
      assert.are.equal("unknown", err.outcome)
      assert.is_true(err:is(E.UnknownOutcomeError))
      assert.is_true(err:is(E.TransportError))
    end)

    it("Outpost keeps its SDK's mapping (a 404 on the documented get is an APIError), in the hierarchy", function()
      local key = sb.credentials.outpost.admin_api_key
      local v0 = assert(provision.Tenants({ server = sb.outpost, generation = "v0", retries = false,
                                            auth = { admin_api_key = key } }))
      local _, err = v0:get("no-such-tenant")
      assert.are.equal(404, err.status)
      assert.are.equal("APIError", err.class)        -- the SDK's page: get raises errors.APIError on 404
      assert.is_true(err:is(E.APIError))
      assert.is_true(err:is(E.HTTPError))
      assert.is_false(err:is(E.NotFoundError))
      local latest = assert(provision.Tenants({ server = sb.outpost_latest, retries = false,
                                                auth = { admin_api_key = key } }))
      local _, nerr = latest:get("no-such-tenant")
      assert.are.equal("NotFoundError", nerr.class)
      assert.is_true(nerr:is(E.NotFoundError))
      local bad = assert(provision.Tenants({ server = sb.outpost_latest, retries = false,
                                             auth = { admin_api_key = "wrong-key" } }))
      local _, uerr = bad:get("northwind")
      assert.are.equal(401, uerr.status)
      assert.are.equal("UnauthorizedError", uerr.class)
      assert.is_true(uerr:is(E.UnauthorizedError))
      assert.is_true(uerr:is(E.APIError))
    end)
  end)
end)
