-- bin/provision's exit codes (lua/provision/cli/exit.lua), each one
-- produced for real against the sandbox (faults injected where a server
-- misbehaves), and the table that `provision help exit-codes` and
-- docs/cli.md show.
local sandbox = require("support.sandbox")
local clirun = require("support.cli")
local exit = require("provision.cli.exit")
local refused_port = require("support.proc").refused_port

local ORG = "Nw7kQ2pX9sT4vB8mL1cR3d"

describe("exit codes", function()
  it("map errors by what they mean, unknown outcome first", function()
    local cases = {
      { { kind = "http", status = 404, outcome = "not_applied" }, 1 },
      { { kind = "http", status = 409, outcome = "not_applied", exists = true }, 1 },
      { { kind = "http", status = 429, outcome = "not_applied" }, 1 },
      { { kind = "throttled", outcome = "not_applied" }, 1 },
      { { kind = "invalid_argument", outcome = "not_applied" }, 2 },
      { { kind = "connect", outcome = "not_applied" }, 3 },
      { { kind = "tls", outcome = "not_applied" }, 3 },
      { { kind = "timeout", outcome = "not_applied" }, 3 },
      { { kind = "http", status = 401, outcome = "not_applied" }, 4 },
      { { kind = "http", status = 403, outcome = "not_applied" }, 4 },
      { { kind = "auth", outcome = "not_applied" }, 4 },
      { { kind = "api", status = 200, api_status = 401, outcome = "not_applied" }, 4 },
      { { kind = "http", status = 503, outcome = "not_applied" }, 5 },
      { { kind = "decode", status = 200, outcome = "not_applied" }, 5 },
      { { kind = "api", status = 200, api_status = 500, outcome = "not_applied" }, 5 },
      { { kind = "api", status = 200, outcome = "not_applied" }, 1 },
      { { kind = "http", status = 502, outcome = "unknown" }, 6 },
      { { kind = "timeout", outcome = "unknown" }, 6 },
      { { kind = "closed", outcome = "unknown" }, 6 },
    }
    for _, c in ipairs(cases) do
      assert.are.equal(c[2], exit.for_error(c[1]), c[1].kind .. " " .. tostring(c[1].status))
    end
  end)

  it("the worst of a bulk run wins: 130, 6, 5, 3, 4, 2, 1, 0", function()
    local order = { 0, 1, 2, 4, 3, 5, 6, 130 }
    for i = 1, #order do
      for j = 1, #order do
        local expect = order[math.max(i, j)]
        assert.are.equal(expect, exit.worst(order[i], order[j]), order[i] .. " vs " .. order[j])
      end
    end
  end)

  it("are listed by `provision help exit-codes` and in docs/cli.md", function()
    local runner = clirun.runner()
    local r = runner.run({ "help", "exit-codes" })
    runner.cleanup()
    assert.are.equal(0, r.code)
    local doc = clirun.slurp(clirun.ROOT .. "/docs/cli.md")
    for _, row in ipairs(exit.table) do
      assert.matches("\n%s+" .. row[1] .. "  ", r.out)
      assert.matches("\n| " .. row[1] .. " |", doc, nil, true)
    end
  end)
end)

describe("bin/provision exits", function()
  local sb, runner, env

  setup(function()
    sb = sandbox.start({ args = { "--quiet" } })
    runner = clirun.runner()
    env = { PROVISION_SANDBOX_URL = sb.url }
  end)
  teardown(function()
    if sb then sb:stop() end
    if runner then runner.cleanup() end
  end)
  before_each(function()
    assert.are.equal(200, (sb:admin("POST", "/reset")))
    sb:admin("DELETE", "/faults")
  end)

  local function run(argv)
    local full = { "--sandbox" }
    for _, a in ipairs(argv) do full[#full + 1] = a end
    return runner.run(full, { env = env })
  end

  local function fault(rule)
    local status, body = sb:admin("POST", "/faults", rule)
    assert.are.equal(201, status, tostring(body))
  end

  it("0 on success, 1 when the API rejects (404, 409 already exists)", function()
    assert.are.equal(0, run({ "agilicus", "list_users", "--limit", "1" }).code)
    local nf = run({ "agilicus", "get_user", "no-such-user" })
    assert.are.equal(1, nf.code, nf.err)
    local dup = run({ "agilicus", "create_user", '{"email":"aisha.khan@northwind.example","org_id":"' .. ORG .. '"}' })
    assert.are.equal(1, dup.code, dup.err)
    assert.matches("HTTP 409", dup.err, nil, true)
  end)

  it("2 for usage, 3 for a refused connection, 4 for 401 and 403", function()
    assert.are.equal(2, run({ "agilicus", "get_usr" }).code)
    local port = refused_port()
    local net = run({ "agilicus", "list_users", "--server", "http://127.0.0.1:" .. port, "--retries", "0" })
    assert.are.equal(3, net.code, net.err)
    fault({ path = "/agilicus/users", action = "403" })
    local forbidden = run({ "agilicus", "list_users" })
    assert.are.equal(4, forbidden.code, forbidden.err)
    assert.matches("hint: check the credentials", forbidden.err, nil, true)
    sb:admin("DELETE", "/faults")
    local wrong = runner.run({ "agilicus", "list_users" },
      { env = { PROVISION_AGILICUS_URL = sb.agilicus, PROVISION_AGILICUS_TOKEN = "zz-not-the-token" } })
    assert.are.equal(4, wrong.code, wrong.err)
  end)

  it("5 for a server error on a read (nothing applied)", function()
    fault({ path = "/agilicus/users", action = "503" })
    local r = run({ "agilicus", "list_users", "--retries", "0" })
    assert.are.equal(5, r.code, r.err)
    assert.matches("HTTP 503", r.err, nil, true)
  end)

  it("--deadline bounds the whole call across its retries and waits (--timeout stays per attempt)", function()
    fault({ path = "/agilicus/users", action = "503", retry_after = 30 })
    local r = run({ "agilicus", "list_users", "--retries", "5", "--deadline", "2" })
    assert.are.equal(3, r.code, r.err)
    assert.matches("deadline of 2 s passed", r.err, nil, true)
    -- one 503 answered: the 30 s Retry-After does not fit in the deadline, so no second attempt
    local _, faults = sb:admin("GET", "/faults")
    assert.are.equal(1, faults.rules[1].hits)
    local bad = run({ "agilicus", "list_users", "--deadline", "soon" })
    assert.are.equal(2, bad.code, bad.err)
    assert.matches("--deadline needs a number", bad.err, nil, true)
  end)

  it("6 when a create may have been applied (502 after sending, no read-back to settle it)", function()
    fault({ method = "POST", path = "/agilicus/v1/service_accounts", action = "502" })
    local r = run({ "agilicus", "create_service_account", '{"name":"robot","org_id":"' .. ORG .. '"}',
                    "--retries", "0" })
    assert.are.equal(6, r.code, r.err)
    assert.matches("may have been applied", r.err, nil, true)
    -- the same create that lost its answer after landing ("close_after"): still unknown
    sb:admin("DELETE", "/faults")
    fault({ method = "POST", path = "/agilicus/v1/service_accounts", action = "close_after" })
    local lost = run({ "agilicus", "create_service_account", '{"name":"robot2","org_id":"' .. ORG .. '"}',
                       "--retries", "0" })
    assert.are.equal(6, lost.code, lost.err)
  end)
end)
