-- bin/provision's profiles (--profile, PROVISION_PROFILE), `provision
-- doctor` (configuration, reachability over trusted TLS, credentials,
-- clock; worst check's exit code; no secret printed), and what -v, -vv and
-- a waited-out 429 show on stderr, all against the sandbox (and openssl
-- s_server for TLS).
local sandbox = require("support.sandbox")
local clirun = require("support.cli")
local proc = require("support.proc")
local socket = require("socket")
local core = require("provision.core")
local doctor = require("provision.cli.doctor")

local q = clirun.q

local SECRETS = {
  ["agilicus.token"] = "zz-cfg-secret-agilicus-58",
  ["document360.api_token"] = "zz-cfg-secret-d360-91",
}

describe("bin/provision profiles, doctor, verbosity", function()
  local sb, runner, dir, cfg

  setup(function()
    sb = sandbox.start({ args = { "--quiet" }, set = SECRETS })
    runner = clirun.runner({ secrets = { SECRETS["agilicus.token"], SECRETS["document360.api_token"],
                                         "zz-cfg-wrong-token-77" } })
    dir = clirun.mkdtemp()
    cfg = dir .. "/config.lua"
    local f = assert(io.open(cfg, "w"))
    f:write(([[
return {
  agilicus = { url = %q, token = "zz-cfg-wrong-token-77" },
  defaults = { retries = 0 },
  profiles = {
    sandbox = {
      agilicus = { url = %q, token = os.getenv("AGILICUS_TOKEN") },
      document360 = { url = %q, token = os.getenv("D360_TOKEN") },
    },
    broken = { agilicus = { url = %q, token = "zz-cfg-wrong-token-77" } },
  },
}
]]):format(sb.agilicus, sb.agilicus, sb.document360, sb.agilicus))
    f:close()
  end)
  teardown(function()
    if sb then sb:stop() end
    if runner then runner.cleanup() end
    if dir then os.execute("rm -rf " .. q(dir)) end
  end)
  before_each(function()
    assert.are.equal(200, (sb:admin("POST", "/reset")))
    sb:admin("DELETE", "/faults")
  end)

  local tokens = { AGILICUS_TOKEN = SECRETS["agilicus.token"], D360_TOKEN = SECRETS["document360.api_token"] }
  local function env(extra)
    local e = { PROVISION_CONFIG = cfg }
    for k, v in pairs(tokens) do e[k] = v end
    for k, v in pairs(extra or {}) do e[k] = v end
    return e
  end

  it("--profile and PROVISION_PROFILE pick a profile; its sections replace the top-level ones", function()
    local top = runner.run({ "agilicus", "list_users", "--limit", "1" }, { env = env() })
    assert.are.equal(4, top.code, top.err)     -- the top-level section's token is wrong
    local p = runner.run({ "--profile", "sandbox", "agilicus", "list_users", "--limit", "1", "-v" }, { env = env() })
    assert.are.equal(0, p.code, p.err)
    assert.matches("(profile sandbox)", p.err, nil, true)
    local e = runner.run({ "document360", "v2_teams_roles_get", "--fields", "title" },
      { env = env({ PROVISION_PROFILE = "sandbox" }) })
    assert.are.equal(0, e.code, e.err)
    -- the flag beats the variable
    local b = runner.run({ "--profile", "broken", "agilicus", "list_users" }, { env = env({ PROVISION_PROFILE = "sandbox" }) })
    assert.are.equal(4, b.code, b.err)
    -- an API the profile does not configure gets nothing from the top level
    local none = runner.run({ "--profile", "broken", "document360", "v2_teams_get" }, { env = env() })
    assert.are.equal(2, none.code)
    assert.matches("no credentials", none.err, nil, true)
    local typo = runner.run({ "--profile", "sandbx", "agilicus", "list_users" }, { env = env() })
    assert.are.equal(2, typo.code)
    assert.matches("has no profile 'sandbx'; did you mean sandbox? (profiles: broken, sandbox)", typo.err, nil, true)
    local nofile = runner.run({ "--profile", "x", "agilicus", "list_users" }, { env = { PROVISION_CONFIG = "" } })
    assert.are.equal(2, nofile.code)
    assert.matches("needs a config file", nofile.err, nil, true)
  end)

  it("doctor: each configured API checked, exit 0, nothing secret printed", function()
    local r = runner.run({ "doctor", "--profile", "sandbox", "-o", "json" }, { env = env() })
    assert.are.equal(0, r.code, r.out .. r.err)
    local rows = assert(core.json_decode(r.out))
    local got = {}
    for _, row in ipairs(rows) do got[row.api .. " " .. row.check] = row end
    assert.are.equal("ok", got["- config"].result)
    assert.matches("(profile sandbox)", got["- config"].detail, nil, true)
    for _, key in ipairs({ "agilicus", "document360" }) do
      assert.are.equal("ok", got[key .. " server"].result, key)
      assert.are.equal("ok", got[key .. " credential"].result, key)
      assert.are.equal("ok", got[key .. " clock"].result, key)
    end
    assert.matches("accepted by list_users %(credentials from config .*%(profile sandbox%)%)", got["agilicus credential"].detail)
    assert.are.equal("skip", got["docspace settings"].result)
    local t = runner.run({ "doctor", "--sandbox", "-o", "table" }, { env = { PROVISION_SANDBOX_URL = sb.url,
      SANDBOX_AGILICUS_TOKEN = tokens.AGILICUS_TOKEN,
      SANDBOX_DOCUMENT360_TOKEN = tokens.D360_TOKEN } })
    assert.are.equal(0, t.code, t.out .. t.err)
    assert.matches("\nagilicus%s+credential%s+ok%s+accepted", t.out)
    assert.matches("\noutpost%s+server%s+ok", t.out)
  end)

  it("doctor: a rejected credential exits 4, an unreachable server 3, nothing configured 2", function()
    local bad = runner.run({ "doctor", "--profile", "broken", "-o", "tsv" }, { env = env() })
    assert.are.equal(4, bad.code, bad.out .. bad.err)
    assert.matches("\nagilicus\tcredential\tfail\trejected, HTTP 401", bad.out)
    local port = proc.refused_port()
    local down = runner.run({ "doctor", "-o", "tsv" }, { env = { PROVISION_AGILICUS_URL = "http://127.0.0.1:" .. port,
      PROVISION_AGILICUS_TOKEN = "zz-cfg-wrong-token-77" } })
    assert.are.equal(3, down.code, down.out .. down.err)
    assert.matches("\nagilicus\tserver\tfail\t[^\n]*not reachable", down.out)
    local none = runner.run({ "doctor" }, { env = {} })
    assert.are.equal(2, none.code)
    assert.matches("no API is configured", none.out, nil, true)
  end)

  it("doctor: a certificate from an unknown CA fails the TLS check (3); with --ca-file it passes", function()
    local tls = clirun.mkdtemp()
    local pid
    finally(function()
      if pid then os.execute("kill -9 " .. pid .. " 2>/dev/null") end
      os.execute("rm -rf " .. q(tls))
    end)
    assert(proc.sh(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout %s/k.pem"
      .. " -out %s/c.pem -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1")
      :format(q(tls), q(tls))))
    local port
    for _ = 1, 5 do
      port = proc.free_port()
      pid = tonumber(proc.capture(("openssl s_server -accept 127.0.0.1:%d -cert %s/c.pem -key %s/k.pem -www -quiet"
        .. " >/dev/null 2>&1 & echo $!"):format(port, q(tls), q(tls))))
      local up = false
      for _ = 1, 200 do
        local c = socket.connect("127.0.0.1", port)
        if c then c:close(); up = true; break end
        if not proc.alive(pid) then break end
        socket.sleep(0.05)
      end
      if up then break end
      os.execute("kill -9 " .. pid .. " 2>/dev/null")
      pid = nil
    end
    assert(pid, "openssl s_server did not start")
    local e = { PROVISION_AGILICUS_URL = "https://127.0.0.1:" .. port, PROVISION_AGILICUS_TOKEN = "zz-cfg-wrong-token-77" }
    local r = runner.run({ "doctor", "-o", "tsv" }, { env = e })
    assert.are.equal(3, r.code, r.out .. r.err)
    assert.matches("\nagilicus\tserver\tfail\t[^\n]*TLS not trusted", r.out)
    local ok = runner.run({ "doctor", "-o", "tsv", "--ca-file", tls .. "/c.pem" }, { env = e })
    assert.matches("\nagilicus\tserver\tok\thttps://127%.0%.0%.1:%d+ answers %(TLS verified with ", ok.out)
  end)

  it("doctor reads the server's Date header for the clock", function()
    assert.are.equal(784111777, doctor.parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"))
    assert.are.equal(951782400, doctor.parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"))
    assert.is_nil(doctor.parse_http_date("yesterday"))
  end)

  it("-v shows each attempt; -vv adds headers with credentials masked; a 429 wait gets a line", function()
    local e = env({ PROVISION_PROFILE = "sandbox" })
    local v = runner.run({ "agilicus", "list_users", "--limit", "1", "-v" }, { env = e })
    assert.are.equal(0, v.code, v.err)
    assert.matches("UsersApi.list_users GET [^\n]*/agilicus/users %-> 200", v.err)
    assert.not_matches("\n> ", v.err)
    local vv = runner.run({ "agilicus", "list_users", "--limit", "1", "-vv" }, { env = e })
    assert.are.equal(0, vv.code, vv.err)
    assert.matches("\n> GET [^\n]*/agilicus/users%?limit=1\n", vv.err)
    assert.matches("\n> Authorization: Bearer %*%*%*\n", vv.err)
    assert.matches("\n< HTTP 200\n", vv.err)
    assert.matches("\n< Content%-Type: application/json", vv.err)
    local d = runner.run({ "document360", "v2_teams_roles_get", "-v", "-v" }, { env = e })
    assert.matches("\n> api_token: %*%*%*\n", d.err)
    -- a credential too short for the output's redactor is masked all the same
    local short = runner.run({ "document360", "v2_teams_roles_get", "-vv" },
      { env = { PROVISION_DOCUMENT360_URL = sb.document360, PROVISION_DOCUMENT360_TOKEN = "zq9x7" } })
    assert.are.equal(4, short.code, short.err)
    assert.matches("\n> api_token: %*%*%*\n", short.err)
    assert.not_matches("zq9x7", short.err, nil, true)
    assert.are.equal(201, (sb:admin("POST", "/faults", { path = "/agilicus/users", sequence = { "429" }, retry_after = 1 })))
    local w = runner.run({ "agilicus", "list_users", "--limit", "1" }, { env = e })
    assert.are.equal(0, w.code, w.err)
    assert.matches("provision: waiting 1 s for the rate limit (Retry-After)\n", w.err, nil, true)
  end)
end)
