-- bin/provision as a person sees it, in a real terminal: tmux panes of 80
-- columns (the table fitted, the progress line of an --input run), and the
-- completion scripts loaded by bash (`complete -p provision`, a real TAB in
-- the pane), zsh (bashcompinit) and fish (`complete -C`).
local sandbox = require("support.sandbox")
local clirun = require("support.cli")
local socket = require("socket")
local tabular = require("provision.cli.tabular")

local q = clirun.q
local ORG = "Nw7kQ2pX9sT4vB8mL1cR3d"

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

-- A tmux server of our own (its socket in our temporary folder), one 80x24
-- pane running bash without rc files.
local panes = 0
local function new_pane(env, dir)
  panes = panes + 1
  local name = q(dir .. "/tmux-" .. panes)
  local vars = {}
  for k, v in pairs(env) do vars[#vars + 1] = k .. "=" .. q(v) end
  local cmd = ("tmux -S %s new-session -d -x 80 -y 24 -s t %s"):format(name,
    q("env -i PATH=" .. q(os.getenv("PATH")) .. " TERM=xterm LANG=C.UTF-8 " .. table.concat(vars, " ")
      .. " bash --norc --noprofile"))
  local out, code = sh(cmd)
  assert(code == 0, "tmux did not start: " .. out)
  local pane = { name = name }
  function pane.keys(...)
    local words = {}
    for i, k in ipairs({ ... }) do words[i] = q(k) end
    sh(("tmux -S %s send-keys -t t %s"):format(name, table.concat(words, " ")))
  end
  function pane.text()
    return (sh(("tmux -S %s capture-pane -p -t t"):format(name)))
  end
  -- waits (with a generous bound) until the pane shows `pattern`
  function pane.wait(pattern, plain)
    local text
    for _ = 1, 1200 do
      text = pane.text()
      if text:find(pattern, 1, plain) then return text end
      socket.sleep(0.05)
    end
    error("the pane never showed " .. pattern .. ":\n" .. tostring(text))
  end
  function pane.kill() sh(("tmux -S %s kill-server; rm -f %s"):format(name, name)) end
  return pane
end

describe("bin/provision in a terminal", function()
  local sb, dir, bindir

  setup(function()
    sb = sandbox.start({ args = { "--quiet" }, rate = "100000/60" })
    dir = clirun.mkdtemp()
    bindir = dir .. "/bin"
    os.execute("mkdir -p " .. q(bindir) .. " && ln -s " .. q(clirun.BIN) .. " " .. q(bindir .. "/provision"))
  end)
  teardown(function()
    if sb then sb:stop() end
    if dir then os.execute("rm -rf " .. q(dir)) end
  end)
  before_each(function() assert.are.equal(200, (sb:admin("POST", "/reset"))) end)

  local function pane_env()
    return { PROVISION_SANDBOX_URL = sb.url, HOME = dir, PATH = bindir .. ":" .. os.getenv("PATH") }
  end

  it("prints a table that fits 80 columns by default (stdout is the terminal)", function()
    local pane = new_pane(pane_env(), dir)
    finally(pane.kill)
    pane.keys("clear; provision --sandbox agilicus list_users --org-id " .. ORG .. " --limit 12; echo rc=$?", "Enter")
    local text = pane.wait("rc=%d")
    assert.matches("rc=0", text, nil, true)
    assert.matches("\nID%s+EMAIL%s+STATUS", "\n" .. text)
    assert.matches("aisha%.khan@northwind%.example%s+active", text)
    assert.matches("more fields not shown", text, nil, true)
    for line in text:gmatch("[^\n]+") do
      assert.is_true(tabular.width_of(line) <= 80, line)
    end
    -- the same command into a pipe is JSON
    pane.keys("clear; provision --sandbox agilicus list_users --org-id " .. ORG .. " --limit 1 | head -c 1; echo; echo rc2=$?",
      "Enter")
    text = pane.wait("rc2=%d")
    assert.matches("\n{\n", "\n" .. text)
  end)

  it("shows a progress line on stderr during --input, then the summary", function()
    local lines = { "email,org_id" }
    for i = 1, 60 do lines[#lines + 1] = ("tty%03d@northwind.example,%s"):format(i, ORG) end
    local f = assert(io.open(dir .. "/rows.csv", "w"))
    f:write(table.concat(lines, "\n"), "\n")
    f:close()
    assert.are.equal(201, (sb:admin("POST", "/faults", { method = "POST", path = "/agilicus/users", delay_ms = 100 })))
    finally(function() sb:admin("DELETE", "/faults") end)
    local pane = new_pane(pane_env(), dir)
    finally(pane.kill)
    pane.keys("clear; cd " .. dir .. " && provision --sandbox agilicus create_user --input rows.csv --concurrency 2"
      .. " --results out.jsonl; echo rc=$?", "Enter")
    local during = pane.wait("provision: %d+/60 rows  %d+ ok  %d+ exists  %d+ failed  %d+ unknown  %d+ in flight")
    for line in during:gmatch("[^\n]+") do assert.is_true(tabular.width_of(line) <= 80, line) end
    local text = pane.wait("rc=%d")
    assert.matches("rc=0", text, nil, true)
    assert.matches("provision: 60 rows: 60 ok, 0 exists, 0 failed, 0 unknown, 0 invalid", text, nil, true)
    -- the progress line was cleared, not left behind
    assert.not_matches("in flight", text, nil, true)
  end)

  it("bash loads the completion (complete -p provision) and TAB completes operations and values", function()
    local pane = new_pane(pane_env(), dir)
    finally(pane.kill)
    pane.keys("clear; source <(provision completion bash); complete -p provision", "Enter")
    local text = pane.wait("complete %-o default %-F _provision provision")
    assert.matches("complete -o default -F _provision provision", text, nil, true)
    pane.keys("clear", "Enter")
    pane.keys("provision agilicus get_us", "Tab")
    pane.wait("provision agilicus get_user", true)
    pane.keys("C-u")
    pane.keys("provision docspace get_invitation_link Gu", "Tab")
    pane.wait("get_invitation_link Guest", true)
    pane.keys("C-u")
    pane.keys("provision -o ya", "Tab")
    pane.wait("provision -o yaml", true)
  end)

  -- COMP_LINE as bash sets it; the function's candidates
  local function bash_candidates(script, line)
    local prog = ("source %s; COMP_LINE=%s; COMP_POINT=${#COMP_LINE}; COMP_WORDS=(%s); COMP_CWORD=0; _provision;"
      .. " printf '%%s\\n' \"${COMPREPLY[@]}\""):format(q(script), q(line), line)
    return (sh("bash --norc --noprofile -c " .. q(prog)))
  end

  local function sorted_lines(text)
    local got = {}
    for l in text:gmatch("[^\n]+") do got[#got + 1] = l:match("^(%S+)") end
    table.sort(got)
    return table.concat(got, "\n") .. "\n"
  end

  it("the bash, zsh and fish scripts offer the same words", function()
    local runner = clirun.runner()
    finally(runner.cleanup)
    for _, shell in ipairs({ "bash", "zsh", "fish" }) do
      local r = runner.run({ "completion", shell })
      assert.are.equal(0, r.code, r.err)
      local f = assert(io.open(dir .. "/c." .. shell, "w"))
      f:write(r.out)
      f:close()
    end
    assert.are.equal(2, runner.run({ "completion", "tcsh" }).code)
    local cases = {
      { "provision agilicus get_user_m", { "get_user_metadata" } },
      { "provision agilicus list_users --sta", { "--status" } },
      { "provision agilicus list_users --status act", { "active" } },
      { "provision docspace get_invitation_link Room", { "RoomAdmin" } },
      { "provision --output t", { "table", "tsv" } },
      { "provision completion z", { "zsh" } },
      { "provision help exit", { "exit-codes" } },
      { "provision outpost get_", { "get_portal_url", "get_portal_url_jwt_context", "get_token", "get_token_jwt_context" } },
    }
    for _, c in ipairs(cases) do
      local expect = table.concat(c[2], "\n") .. "\n"
      local b = bash_candidates(dir .. "/c.bash", c[1])
      assert.are.equal(expect, sorted_lines(b), "bash: " .. c[1])
      local zprog = ("source %s; COMP_LINE=%s; COMP_POINT=${#COMP_LINE}; _provision; print -l -- $COMPREPLY")
        :format(q(dir .. "/c.zsh"), q(c[1]))
      local z = sh("zsh -f -c " .. q(zprog))
      assert.are.equal(expect, sorted_lines(z), "zsh: " .. c[1])
      local fz = sh("fish --no-config -c " .. q("source " .. q(dir .. "/c.fish") .. "; complete -C " .. q(c[1])))
      assert.are.equal(expect, sorted_lines(fz), "fish: " .. c[1])
    end
    -- `--name=value` in fish completes the whole word
    local fz = sh("fish --no-config -c " .. q("source " .. q(dir .. "/c.fish")
      .. "; complete -C 'provision agilicus list_users --status=pe'"))
    assert.matches("^%-%-status=pending", fz)
  end)
end)
