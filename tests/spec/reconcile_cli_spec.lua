-- provision plan / apply / journal as a person runs them: bin/provision in a
-- subprocess against the sandbox, the journal an SQLite file in a temp
-- folder. Exit codes (plan 0/2/1, apply 0/1/2), text and JSON output, saved
-- plans, the mass-removal refusal, the progress line on a terminal (tmux)
-- and none without one, and a 1,000-person apply killed by SIGKILL at about
-- 40% then resumed (also through 10% injected faults): every person once in
-- every system, no create sent twice, one settled outcome per step.
local journal = require("provision.journal")
local provision = require("provision")
local json = require("provision.json")
local sandbox = require("support.sandbox")
local once = require("support.once")
local proc = require("support.proc")
local rosters = require("support.rosters")
local socket = require("socket")

local ROOT = debug.getinfo(1, "S").source:sub(2):match("^(.*)/tests/spec/[^/]*$") or "."
if ROOT:sub(1, 1) ~= "/" then ROOT = proc.capture("cd '" .. ROOT .. "' && pwd"):gsub("%s+$", "") end
local BUILD = os.getenv("PROVISION_BUILD") or (ROOT .. "/build")
local ORG = "Nw7kQ2pX9sT4vB8mL1cR3d"
local BOUND = 240   -- seconds: a bound against a hung child, never a speed check

describe("provision plan/apply/journal (bin/provision) against the sandbox", function()
  local sb, dir, home

  before_each(once(function()
    sb = sandbox.start({ args = { "--quiet" }, rate = "10000000/60" })
    dir = proc.capture("mktemp -d /tmp/provision-rcli-XXXXXX"):gsub("%s+$", "")
    assert(dir:find("^/tmp/provision%-rcli%-"), dir)
    home = dir .. "/home"
    assert(proc.sh("mkdir -p '" .. home .. "'"))
  end, "sandbox"))
  before_each(function()
    assert.are.equal(200, (sb:admin("POST", "/reset")))
    sb:admin("DELETE", "/faults")
    sb:admin("DELETE", "/log")
  end)
  teardown(function()
    if sb then sb:stop() end
    if dir then os.execute("rm -rf '" .. dir .. "'") end
  end)

  local n = 0
  local function fresh(name)
    n = n + 1
    return ("%s/%d-%s"):format(dir, n, name)
  end

  -- The environment of a child: nothing of ours but PATH.
  local function env_prefix(extra)
    local vars = { "PATH=" .. (os.getenv("PATH") or "/usr/bin:/bin"), "HOME=" .. home,
                   "PROVISION_BUILD=" .. BUILD, "XDG_STATE_HOME=" .. home .. "/state" }
    for k, v in pairs(extra or {}) do vars[#vars + 1] = k .. "=" .. v end
    local q = {}
    for i, v in ipairs(vars) do q[i] = proc.quote(v) end
    return "env -i " .. table.concat(q, " ")
  end

  local function command(argv, extra)
    local q = {}
    for i, a in ipairs(argv) do q[i] = proc.quote(a) end
    return ("cd %s && %s timeout %d lua5.4 bin/provision %s"):format(proc.quote(ROOT), env_prefix(extra), BOUND,
      table.concat(q, " "))
  end

  -- Runs bin/provision; returns exit code, stdout, stderr.
  local function run(argv, extra)
    local out, err = fresh("out"), fresh("err")
    local code = tonumber(proc.capture(command(argv, extra) .. " >" .. proc.quote(out) .. " 2>" .. proc.quote(err)
      .. "; echo $?"):match("(%d+)%s*$"))
    return code, proc.read_file(out) or "", proc.read_file(err) or ""
  end

  local function sbargs(...)
    local a = { "--sandbox", sb.url }
    for _, x in ipairs({ ... }) do a[#a + 1] = x end
    return a
  end

  local function log_entries()
    local _, doc = sb:admin("GET", "/log")
    return doc.entries
  end

  it("plan exits 2 with changes, apply exits 0, then plan exits 0; bad rosters and options exit 1", function()
    local j = fresh("journal.sqlite")
    local _
    local code, out, err = run(sbargs("plan", "examples/roster.csv", "--journal", j))
    assert.are.equal(2, code, err)
    assert.is_truthy(out:find("Plan: 6 to create, 2 to update, 0 to remove, 0 to disable, 2 invitations.", 1, true), out)
    assert.is_truthy(out:find("~ update  aisha.khan@northwind.example  roles: crm:user -> crm:admin", 1, true), out)
    assert.is_truthy(out:find("docspace: 2 invitations (cannot check who already has an account", 1, true), out)
    for _, e in ipairs(log_entries()) do assert.are.equal("GET", e.method) end
    code, out, err = run(sbargs("apply", "examples/roster.csv", "--journal", j))
    assert.are.equal(0, code, err .. out)
    assert.are.equal("", err)
    assert.is_truthy(out:find("agilicus           2        2", 1, true), out)
    assert.is_truthy(out:find("Invitation links", 1, true), out)
    code, out = run(sbargs("plan", "examples/roster.csv", "--journal", j))
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("No changes: the systems match the roster.", 1, true), out)
    local bad = fresh("bad.csv")
    proc.write_file(bad, "email,first_name\nok@northwind.example,Ok\nbroken,Bad\n")
    code, _, err = run(sbargs("plan", bad))
    assert.are.equal(1, code)
    assert.is_truthy(err:find("1 bad row, nothing planned: line 3: malformed email", 1, true), err)
    -- more bad rows than one line can name: each on a line of its own
    local many = { "email,first_name" }
    for i = 1, 60 do many[#many + 1] = ("bad%d,Bad"):format(i) end
    proc.write_file(bad, table.concat(many, "\n") .. "\n")
    code, _, err = run(sbargs("plan", bad))
    assert.are.equal(1, code)
    assert.is_truthy(err:find("60 bad rows, nothing planned:\n", 1, true), err)
    for i = 1, 60 do
      assert.is_truthy(err:find(('\n  line %d: malformed email "bad%d"'):format(i + 1, i), 1, true), err)
    end
    code, _, err = run(sbargs("plan", "examples/roster.csv", "--prunne"))
    assert.are.equal(1, code)
    assert.is_truthy(err:find("unknown option --prunne; did you mean --prune?", 1, true), err)
    code, _, err = run(sbargs("apply", "examples/roster.csv", "--prunne"))
    assert.are.equal(2, code, err)
    code, _, err = run(sbargs("plan", "examples/roster.csv", "--rate", "fast"))
    assert.are.equal(1, code)
    assert.is_truthy(err:find('rate must look like "50/1"', 1, true), err)
    code, out = run({ "help", "apply" })
    assert.are.equal(0, code)
    assert.is_truthy(out:find("--allow-mass-removal", 1, true), out)
  end)

  it("prints the plan and the result as JSON, and scopes to --systems", function()
    local j = fresh("journal.sqlite")
    local code, out = run(sbargs("plan", "examples/roster.csv", "--output", "json", "--systems", "agilicus,outpost",
                                 "--journal", j))
    assert.are.equal(2, code)
    local p = assert(json.decode(out))
    assert.are.equal(2, #p.systems)
    assert.are.equal("agilicus", p.systems[1].system)
    assert.are.equal("outpost", p.systems[2].system)
    assert.are.equal(6, p.totals.create + p.totals.update)
    assert.is_truthy(p.systems[1].steps[1].fingerprint)
    code, out = run(sbargs("apply", "examples/roster.csv", "--output", "json", "--journal", j))
    assert.are.equal(0, code, out)
    local r = assert(json.decode(out))
    assert.is_true(r.ok)
    assert.are.equal(2, r.systems.document360.created)
    assert.are.equal(2, #r.invitations)
    assert.are.equal(1, r.run_id)
  end)

  it("applies a saved plan, and refuses (exit 2, nothing sent) when the records changed since", function()
    local saved, j = fresh("plan.json"), fresh("journal.sqlite")
    local code = run(sbargs("plan", "examples/roster.csv", "--save", saved, "--systems", "agilicus"))
    assert.are.equal(2, code)
    assert.are.equal("600", proc.capture("stat -c %a " .. proc.quote(saved)):gsub("%s+", ""))
    -- a place it cannot write: said once, by provision, not by a shell (nor a SIGPIPE)
    for _ = 1, 5 do
      local c, _, e = run(sbargs("plan", "examples/roster.csv", "--save", "/proc/nowhere/plan.json",
                                 "--systems", "agilicus"))
      assert.are.equal(1, c, e)
      assert.is_truthy(e:find("provision: cannot write /proc/nowhere/plan.json: ", 1, true), e)
      assert.is_nil(e:find("sh:", 1, true), e)
    end
    -- drift after the plan was made
    local users = assert(provision.UsersApi({ server = sb.agilicus, auth = { bearer = sb.credentials.agilicus.token } }))
    assert(users:create_user({ email = "alan.turing@northwind.example", org_id = ORG }))
    sb:admin("DELETE", "/log")
    local out, err
    code, out, err = run(sbargs("apply", "--plan", saved, "--journal", j))
    assert.are.equal(2, code, out)
    assert.is_truthy(err:find("the saved plan is stale: 1 record changed since it was made "
      .. "(agilicus alan.turing@northwind.example)", 1, true), err)
    for _, e in ipairs(log_entries()) do assert.are.equal("GET", e.method) end
    -- a fresh one applies
    assert.are.equal(2, (run(sbargs("plan", "examples/roster.csv", "--save", saved, "--systems", "agilicus"))))
    code, out, err = run(sbargs("apply", "--plan", saved, "--journal", j))
    assert.are.equal(0, code, err .. out)
    assert.are.equal(0, (run(sbargs("plan", "examples/roster.csv", "--systems", "agilicus"))))
  end)

  it("refuses a saved plan whose steps were edited, and options that would change a saved plan", function()
    local saved, j = fresh("plan.json"), fresh("journal.sqlite")
    assert.are.equal(2, (run(sbargs("plan", "examples/roster.csv", "--save", saved, "--systems", "agilicus"))))
    local data = assert(json.decode(proc.read_file(saved)))
    local edited = 0
    for _, step in ipairs(data.systems[1].steps) do
      if step.action == "update" then step.operation = "delete_user"; edited = edited + 1 end
    end
    assert.is_true(edited > 0, "the plan has an update to edit")
    local tampered = fresh("tampered.json")
    proc.write_file(tampered, json.encode(data))
    sb:admin("DELETE", "/log")
    local code, out, err = run(sbargs("apply", "--plan", tampered, "--journal", j))
    assert.are.equal(2, code, out .. err)
    assert.is_truthy(err:find("not a plan this reconciler made: agilicus step %d+: delete_user does not update a user"), err)
    assert.are.equal(0, #log_entries())
    for _, extra in ipairs({ { "--prune" }, { "--prune-mode", "disable" }, { "--systems", "agilicus" },
                             { "--max-removals", "3" } }) do
      local argv = sbargs("apply", "--plan", saved, "--journal", j)
      for _, a in ipairs(extra) do argv[#argv + 1] = a end
      code, out, err = run(argv)
      assert.are.equal(2, code, out .. err)
      assert.is_truthy(err:find(extra[1] .. " cannot change a saved plan", 1, true), err)
    end
    code, out, err = run(sbargs("apply", "examples/roster.csv", "--plan", saved, "--journal", j))
    assert.are.equal(2, code, out .. err)
    assert.is_truthy(err:find("give a roster or --plan FILE, not both", 1, true), err)
    assert.are.equal(0, #log_entries())
    -- the untouched plan still applies
    code, out, err = run(sbargs("apply", "--plan", saved, "--journal", j))
    assert.are.equal(0, code, err .. out)
  end)

  it("refuses a mass removal (exit 2, nothing sent) unless --allow-mass-removal; config sets the threshold", function()
    local small = fresh("small.csv")
    proc.write_file(small, "email\namelia.hart@northwind.example\n")
    local j = fresh("journal.sqlite")
    local code, out, err = run(sbargs("apply", small, "--systems", "agilicus", "--prune", "--journal", j))
    assert.are.equal(2, code, out)
    assert.is_truthy(err:find("refused, nothing was sent: agilicus: the prune would remove 29 of 30 users, more "
      .. "than 25", 1, true), err)
    for _, e in ipairs(log_entries()) do assert.are.equal("GET", e.method) end
    code, out = run(sbargs("plan", small, "--systems", "agilicus", "--prune"))
    assert.are.equal(2, code)
    assert.is_truthy(out:find("REFUSED: agilicus: the prune would remove 29", 1, true), out)
    local cfg = fresh("config.lua")
    proc.write_file(cfg, "return { reconcile = { max_removals = 29 } }")
    code, out = run(sbargs("--config", cfg, "plan", small, "--systems", "agilicus", "--prune"))
    assert.are.equal(2, code)
    assert.is_nil(out:find("REFUSED", 1, true), out)
    code, out, err = run(sbargs("apply", small, "--systems", "agilicus", "--prune", "--allow-mass-removal",
                                "--journal", j))
    assert.are.equal(0, code, err)
    assert.is_truthy(out:find("agilicus%s+0%s+0%s+29%s"), out)
  end)

  it("refuses a roster of nobody (a prune would empty every system), a folder, and --concurrency 0", function()
    local j = fresh("journal.sqlite")
    for _, case in ipairs({ { "empty.jsonl", "" }, { "blank.jsonl", "\n\n" }, { "header.csv", "email,first_name\n" } }) do
      local path = fresh(case[1])
      proc.write_file(path, case[2])
      local code, out, err = run(sbargs("apply", path, "--prune", "--systems", "outpost,document360", "--journal", j))
      assert.are.equal(2, code, out .. err)   -- refused before anything was sent
      assert.is_truthy(err:find("the roster holds nobody, nothing planned", 1, true), err)
    end
    local code, _, err = run(sbargs("plan", dir))
    assert.are.equal(1, code)
    assert.is_truthy(err:find("Is a directory", 1, true), err)
    for _, e in ipairs(log_entries()) do assert.are.equal("GET", e.method) end
    code, _, err = run(sbargs("plan", "examples/roster.csv", "--concurrency", "0"))
    assert.are.equal(1, code, err)
    assert.is_truthy(err:find("--concurrency needs a whole number >= 1, got '0'", 1, true), err)
    assert.is_nil(err:find("internal error", 1, true), err)
    code, _, err = run({ "journal", "--journal", j, "--limit", "0" })
    assert.are.equal(2, code, err)
    assert.is_truthy(err:find("--limit needs a whole number >= 1", 1, true), err)
    code, _, err = run(sbargs("agilicus", "create_user", "--input", dir))
    assert.are.equal(2, code, err)
    assert.is_truthy(err:find("Is a directory", 1, true), err)
    -- messages name the flag as it is written, and say why it does not fit
    code, _, err = run(sbargs("apply", "examples/roster.csv", "-H", "X-A: b"))
    assert.are.equal(2, code, err)
    assert.is_truthy(err:find("--header does not apply to the reconciler's commands (the reconciler builds", 1, true), err)
    code, _, err = run(sbargs("plan", "examples/roster.csv", "--server-var", "a=b"))
    assert.are.equal(1, code, err)
    assert.is_truthy(err:find("--server-var does not apply", 1, true), err)
    code, _, err = run(sbargs("plan", "examples/roster.csv", "--resume"))
    assert.are.equal(1, code, err)
    assert.is_truthy(err:find("--resume is an apply option, not a plan one", 1, true), err)
    code, _, err = run(sbargs("plan", "examples/roster.csv", "--systems", ""))
    assert.are.equal(1, code, err)
    assert.is_truthy(err:find("--systems needs one or more of agilicus,", 1, true), err)
    assert.are.equal(0, #log_entries())
  end)

  it("shows a killed run that was resumed as resumed, and refuses to resume it again (exit 2)", function()
    local j = fresh("journal.sqlite")
    local jn = assert(journal.open(j))
    local killed = assert(jn:begin_run({ roster_digest = "sha256:x", systems = { "agilicus" } }))
    local taker = assert(jn:begin_run({ roster_digest = "sha256:x", systems = { "agilicus" }, resume_of = killed.id }))
    assert(taker:finish({ status = "failed" }))
    assert(jn:close())
    local code, out, err = run({ "journal", "--journal", j })
    assert.are.equal(0, code, err)
    assert.is_truthy(out:find("\n%s*" .. killed.id .. "%s+resumed%s"), out)
    code, out, err = run(sbargs("apply", "examples/roster.csv", "--journal", j, "--resume=" .. killed.id))
    assert.are.equal(2, code, out .. err)
    assert.is_truthy(err:find(("run %d was already resumed by run %d"):format(killed.id, taker.id), 1, true), err)
    assert.is_nil(err:find("the journal failed", 1, true), err)
    for _, e in ipairs(log_entries()) do assert.are.equal("GET", e.method) end   -- the plan's reads only
  end)

  it("takes --output text|json (or PROVISION_OUTPUT) and refuses other formats before reading anything", function()
    local j = fresh("journal.sqlite")
    local jn = assert(journal.open(j))
    local r = assert(jn:begin_run({ roster_digest = "sha256:x", systems = { "agilicus" } }))
    assert(r:finish({ status = "done" }))
    assert(jn:close())
    local code, out, err = run({ "journal", "--journal", j, "-o", "xml" })
    assert.are.equal(2, code, out .. err)
    assert.is_truthy(err:find("--output must be text or json here, got 'xml'", 1, true), err)
    code, out, err = run({ "journal", "--journal", j }, { PROVISION_OUTPUT = "json" })
    assert.are.equal(0, code, err)
    assert.are.equal("done", assert(json.decode(out))[1].status)
    code, out = run({ "journal", "--journal", j }, { PROVISION_OUTPUT = "yaml" })   -- another command's format
    assert.are.equal(0, code)
    assert.is_truthy(out:find("RUN", 1, true), out)
    code, out, err = run(sbargs("plan", "examples/roster.csv", "-o", "tsv"))
    assert.are.equal(1, code, out .. err)
    assert.is_truthy(err:find("--output must be text or json here", 1, true), err)
    assert.are.equal(0, #log_entries())
    code, out, err = run(sbargs("plan", "examples/roster.csv", "--systems", "agilicus"), { PROVISION_OUTPUT = "json" })
    assert.are.equal(2, code, err)
    assert.is_table(assert(json.decode(out)).systems)
  end)

  it("exits 1 and lists the failures when a step fails", function()
    assert.are.equal(201, (sb:admin("POST", "/faults", { method = "POST", path = "/document360/v2/Teams",
                                                        action = "422" })))
    local code, out = run(sbargs("apply", "examples/roster.csv", "--journal", fresh("journal.sqlite")))
    assert.are.equal(1, code, out)
    assert.is_truthy(out:find("2 steps did not succeed:", 1, true), out)
    assert.is_truthy(out:find("document360 create ada.lovelace@northwind.example: failed", 1, true), out)
    assert.is_truthy(out:find("Finished with failures", 1, true), out)
  end)

  it("takes the org, servers and credentials from the environment and the config file", function()
    local extra = {
      PROVISION_AGILICUS_URL = sb.agilicus, PROVISION_AGILICUS_TOKEN = sb.credentials.agilicus.token,
      PROVISION_AGILICUS_ORG_ID = ORG,
    }
    local _
    local code, out, err = run({ "plan", "examples/roster.csv" }, extra)
    assert.are.equal(2, code, err)
    assert.is_truthy(out:find("agilicus (UsersApi): 30 users listed", 1, true), out)
    assert.is_truthy(err:find("docspace skipped: no credentials configured", 1, true), err)
    -- a flag beats the environment: another org has other users
    code, out = run({ "plan", "examples/roster.csv", "--org-id", "Lb5hR8tY2wK6nM0pQ4sF7g" }, extra)
    assert.are.equal(2, code)
    assert.is_truthy(out:find("agilicus (UsersApi): 9 users listed", 1, true), out)
    extra.PROVISION_AGILICUS_ORG_ID = nil
    code, _, err = run({ "plan", "examples/roster.csv" }, extra)
    assert.are.equal(1, code)
    assert.is_truthy(err:find("agilicus needs org_id", 1, true), err)
    local cfg = fresh("config.lua")
    proc.write_file(cfg, ("return { agilicus = { org_id = %q } }"):format(ORG))
    code = run({ "--config", cfg, "plan", "examples/roster.csv" }, extra)
    assert.are.equal(2, code)
  end)

  it("lists the journal's runs and shows what one did per system and person", function()
    local j = fresh("journal.sqlite")
    assert.are.equal(0, (run(sbargs("apply", "examples/roster.csv", "--journal", j))))
    local code, out = run({ "journal", "--journal", j })
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("RUN  STATUS", 1, true), out)
    assert.is_truthy(out:match("\n%s*1%s+done%s"), out)
    code, out = run({ "journal", "1", "--journal", j })
    assert.are.equal(0, code)
    assert.is_truthy(out:find("agilicus:", 1, true), out)
    assert.is_truthy(out:find("aisha.khan@northwind.example%s+update%s+replace_user_role%s+ok%s+204"), out)
    assert.is_truthy(out:find("docspace:", 1, true))
    code, out = run({ "journal", "1", "--journal", j, "--output", "json" })
    assert.are.equal(0, code)
    local r = assert(json.decode(out))
    assert.are.equal(10, #r.steps)
    -- the default journal place, under XDG_STATE_HOME
    assert.are.equal(0, (run(sbargs("apply", "examples/roster.csv"))))
    assert.is_truthy(proc.exists(home .. "/state/provision/journal.sqlite"))
    code, out = run({ "journal" })
    assert.are.equal(0, code)
    assert.is_truthy(out:match("\n%s*1%s+done%s"), out)
  end)

  describe("progress", function()
    it("draws a progress line on a terminal (tmux) and clears it for the summary; nothing without one", function()
      local roster = fresh("r300.csv")
      proc.write_file(roster, rosters.csv(300))
      local j = fresh("journal.sqlite")
      local sock = "provision-test-" .. (proc.my_pid and proc.my_pid() or os.time())
      local function tmux(args) return proc.capture("tmux -L " .. sock .. " " .. args .. " 2>&1") end
      local shell = command(sbargs("apply", roster, "--journal", j, "--rate", "150/1")) .. "; echo EXIT=$?; sleep 60"
      finally(function() tmux("kill-server") end)
      tmux("new-session -d -s t -x 100 -y 30 " .. proc.quote(shell))
      local seen_progress, final
      local deadline = socket.gettime() + BOUND
      while socket.gettime() < deadline do
        local pane = tmux("capture-pane -p -t t")
        if pane:find("agilicus %d+/300") and pane:find("ETA") then seen_progress = seen_progress or pane end
        if pane:find("EXIT=%d") then final = tmux("capture-pane -p -S - -t t") break end
        socket.sleep(0.05)
      end
      assert.is_truthy(seen_progress, "no progress line seen")
      assert.is_truthy(seen_progress:find("document360 %d+/300"), seen_progress)
      assert.is_truthy(seen_progress:find("%d+ failed"), seen_progress)
      assert.is_truthy(final, "the apply did not end")
      assert.is_truthy(final:find("EXIT=0", 1, true), final)
      assert.is_truthy(final:find("SYSTEM%s+CREATED"), final)
      assert.is_nil(final:find("ETA", 1, true), "the progress line was left on screen:\n" .. final)
      local bar = seen_progress:match("[^\n]*ETA[^\n]*")
      assert.is_true(#bar < 100, bar)   -- one line: it never wraps
      -- the same without a terminal: nothing on stderr, the summary on stdout
      assert.are.equal(200, (sb:admin("POST", "/reset")))
      local code, out, err = run(sbargs("apply", roster, "--journal", fresh("journal.sqlite"), "--rate", "400/1"))
      assert.are.equal(0, code)
      assert.are.equal("", err)
      assert.is_truthy(out:find("SYSTEM%s+CREATED"))
      assert.is_nil(out:find("ETA", 1, true))
    end)
  end)

  describe("killed by SIGKILL at about 40% and resumed", function()
    local PEOPLE = 1000

    local function count_by(list, field, pattern)
      local c = {}
      for _, item in ipairs(list) do
        local v = item[field]
        if type(v) == "string" and v:find(pattern) then c[v:lower()] = (c[v:lower()] or 0) + 1 end
      end
      return c
    end

    local function settled_now(jpath)
      if not proc.exists(jpath) then return 0, 0 end
      local j = journal.open(jpath)
      if not j then return 0, 0 end
      local runs = j:runs({ limit = 1 })
      j:close()
      if not runs or not runs[1] then return 0, 0 end
      return runs[1].counts.total - runs[1].counts.unsettled, runs[1].counts.total
    end

    local function kill_and_resume(label, extra_args)
      local roster = fresh("r1000.csv")
      proc.write_file(roster, rosters.csv(PEOPLE))
      local jpath = fresh("journal.sqlite")
      local total_steps = PEOPLE * 3 + PEOPLE // 10
      local argv = sbargs("apply", roster, "--journal", jpath, "--concurrency", "16", "--rate", "500/1")
      for _, a in ipairs(extra_args or {}) do argv[#argv + 1] = a end
      local out1 = fresh("out")
      local q = {}
      for i, a in ipairs(argv) do q[i] = proc.quote(a) end
      -- exec all the way down, so that $! is the apply's own pid
      local p = assert(io.popen(("(cd %s && exec %s lua5.4 bin/provision %s) >%s 2>&1 & echo $!"):format(
        proc.quote(ROOT), env_prefix(), table.concat(q, " "), proc.quote(out1)), "r"))
      local pid = assert(tonumber(p:read("l")))
      p:close()
      local deadline = socket.gettime() + BOUND
      while socket.gettime() < deadline do
        if settled_now(jpath) >= 0.4 * total_steps then break end
        if not proc.exists("/proc/" .. pid .. "/stat") then break end
        socket.sleep(0.01)
      end
      assert.is_true(proc.sh("kill -KILL " .. pid), label .. ": kill failed")
      while proc.exists("/proc/" .. pid .. "/stat") and socket.gettime() < deadline do socket.sleep(0.01) end
      local at_kill = settled_now(jpath)
      assert.is_true(at_kill >= 0.3 * total_steps and at_kill < total_steps,
        ("%s: killed at %d of %d steps settled (the apply ended or was killed too early): %s"):format(label, at_kill,
          total_steps, proc.read_file(out1) or ""))
      local before = #log_entries()
      -- resume
      local rargv = sbargs("apply", roster, "--journal", jpath, "--resume", "--concurrency", "16")
      for _, a in ipairs(extra_args or {}) do rargv[#rargv + 1] = a end
      local code, out, err = run(rargv)
      assert.are.equal(0, code, label .. ": " .. err .. out)
      assert.is_truthy(out:find("Resumed run 1: %d+ steps? it left open settled by read%-back"), out)
      local entries = log_entries()
      local after = #entries - before
      local _, fdoc = sb:admin("GET", "/faults")
      local fault_hits = 0
      for _, r in ipairs(fdoc.rules) do fault_hits = fault_hits + (r.hits or 0) end
      sb:admin("DELETE", "/faults")   -- the checks below read without faults

      -- every person exactly once in every system
      local users = assert(provision.UsersApi({ server = sb.agilicus, auth = { bearer = sb.credentials.agilicus.token } }))
      local teams = assert(provision.TeamsApi({ server = sb.document360,
                                                auth = { api_token = sb.credentials.document360.api_token } }))
      local tenants = assert(provision.Tenants({ server = sb.outpost_latest,
                                                 auth = { admin_api_key = sb.credentials.outpost.admin_api_key } }))
      local u = count_by(assert(users:collect("list_users", { org_id = ORG })), "email", "^person%d+@load%.example$")
      local m = count_by(assert(teams:collect("v2_teams_get", { take = 500 })), "email_id", "^person%d+@load%.example$")
      local t = count_by(assert(tenants:collect("list", { limit = 100 })), "id", "^load%-%d+$")
      local duplicates = 0
      for i = 1, PEOPLE do
        local e, tid = rosters.email(i), rosters.tenant(i)
        assert.are.equal(1, u[e], label .. ": Agilicus " .. e)
        assert.are.equal(1, m[e], label .. ": Document360 " .. e)
        assert.are.equal(1, t[tid], label .. ": Outpost " .. tid)
        duplicates = duplicates + (u[e] - 1) + (m[e] - 1) + (t[tid] - 1)
      end
      -- no create was sent for someone already there
      local creates = { agilicus = 0, document360 = 0, outpost = 0 }
      local refused_dup = 0
      for _, e in ipairs(entries) do
        local served = e.served or e.status   -- what the service did, answer lost or not
        if e.method == "POST" and e.path == "/agilicus/users" then
          if served == 201 then creates.agilicus = creates.agilicus + 1 end
          if served == 409 then refused_dup = refused_dup + 1 end
        elseif e.method == "POST" and e.path == "/document360/v2/Teams" then
          if served == 200 then creates.document360 = creates.document360 + 1 end
          if served == 400 then refused_dup = refused_dup + 1 end
        elseif e.method == "PUT" and e.path:find("^/outpost%-latest/api/v1/tenants/load%-") and served == 201 then
          creates.outpost = creates.outpost + 1
        end
      end
      assert.are.same({ agilicus = PEOPLE, document360 = PEOPLE, outpost = PEOPLE }, creates)
      assert.are.equal(0, refused_dup, label .. ": a create was sent for someone already there")
      -- the journal: every step of both runs settled; one create and one invitation per person
      local j = assert(journal.open(jpath))
      local runs = assert(j:runs())
      assert.are.equal(2, #runs)
      assert.are.equal(1, runs[1].resume_of)
      assert.are.equal("done", runs[1].status)
      assert.are.equal(0, #assert(j:unsettled(runs[1].id)))
      local done = {}
      for _, r in ipairs({ 1, 2 }) do
        for _, s in ipairs(assert(j:run(r)).steps) do
          assert.is_truthy(s.outcome, "step " .. s.id .. " has no outcome")
          if s.outcome == "ok" or s.outcome == "exists" then
            local k = s.system .. " " .. s.action .. " " .. s.key
            done[k] = (done[k] or 0) + 1
          end
        end
      end
      local settled_steps = 0
      for k, c in pairs(done) do
        assert.are.equal(1, c, label .. ": " .. k .. " done " .. c .. " times")
        settled_steps = settled_steps + 1
      end
      assert.are.equal(total_steps, settled_steps)
      j:close()
      io.stderr:write(("\n[%s] %d people, %d steps; killed at %d settled (%.0f%%); %d requests before the kill, "
        .. "%d after (resume); %d faults injected; duplicates found: %d\n"):format(label, PEOPLE, total_steps, at_kill,
        100 * at_kill / total_steps, before, after, fault_hits, duplicates))
      return fault_hits
    end

    it("ends with every person present exactly once in every system", function()
      kill_and_resume("sigkill")
    end)

    it("does the same through 10% injected faults", function()
      local rules = {}
      for _, api in ipairs({ "agilicus", "document360", "outpost-latest", "docspace" }) do
        for _, f in ipairs({ { "503", 0.03 }, { "close_after", 0.03 }, { "truncate", 0.02 }, { "close", 0.02 } }) do
          rules[#rules + 1] = { api = api, probability = f[2], action = f[1] }
        end
      end
      assert.are.equal(201, (sb:admin("POST", "/faults", { rules = rules, seed = 7 })))
      local hits = kill_and_resume("sigkill+faults", { "--retries", "8" })
      assert.is_true(hits > 300, "only " .. hits .. " faults were injected")
    end)
  end)
end)
