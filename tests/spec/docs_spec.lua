-- Every fenced code block of README.md, docs/*.md and sandbox/README.md is
-- one test, named FILE:LINE (the opening fence), run against one sandbox
-- (bin/provision-sandbox, started once; POST /_sandbox/reset before each
-- block), so that the docs cannot drift from the code.
--
-- What a block does depends on its info string, or on a marker: an HTML
-- comment on the line just before the fence, `<!-- docs-test: KIND ... -->`.
--
--   ```lua                  runs in a fresh lua5.4 with the repository's lua/, build/,
--                           the repo root and tests/ on its paths; must exit 0.
--   ```sh, ```console       every line is a `provision ...` command (or `echo|printf|cat ... |
--                           provision ...`), run by sh with bin/provision first on PATH;
--                           each must exit 0. Lines starting `$ ` make a transcript: the
--                           lines after a `$ ` command are its expected output, compared
--                           with its stdout followed by its stderr, after these
--                           normalisations: the sandbox's URL is written as the default
--                           http://127.0.0.1:8090; trailing spaces and trailing blank
--                           lines are ignored; a line `...` matches any number of lines.
--                           A command ending in a comment `# exits N` must exit N instead
--                           (provision plan exits 2 when changes are pending).
--   skip: REASON            not run (a real host, nginx, a package install, the suite
--                           itself); counted as skipped.
--   file NAME               setup: the block is written to NAME in the doc's working
--                           folder, for the blocks after it.
--   continue                lua: runs after the previous lua block of the same file, in
--                           the same process (a doc that builds an example in steps).
--   api-table API [operation NAME | param NAME]
--                           lua: the block is an excerpt of lua/provision/apis/API.lua
--                           (the whole table, one operation, or the first parameter of that
--                           name): every value it shows must equal the file's. A `...` in a
--                           table means "and more"; an array without one must match in length.
--   schema-data NAME        lua: the block is an excerpt of lua/provision/schemas/NAME.lua,
--                           checked as an api-table excerpt is.
--   cli-config              lua: a bin/provision config file; every API section in it, and
--                           in each of its profiles (--profile NAME), must be accepted (a
--                           --dry-run of one operation per API, with placeholder values for
--                           the variables it reads).
--   sandbox-faults          json: one fault rule a line, each accepted by POST
--                           /_sandbox/faults; lua: a --faults FILE the sandbox starts with.
--
-- Anything else FAILS: an unmarked ```nginx, ```text or plain ``` block, a sh
-- line that is not a provision command, an unknown marker, or a marker that
-- is not just before a fence. A new doc block is therefore never silently
-- untested.
--
-- Every block (lua, sh and the checks) gets this environment, and nothing
-- else but PATH, HOME (an empty folder) and the Lua paths:
--   PROVISION_SANDBOX_URL=<the sandbox>, and the bin/provision settings of
--   docs/cli.md pointed at it: PROVISION_{DOCSPACE,OUTPOST,AGILICUS,DOCUMENT360}_URL
--   with PROVISION_DOCSPACE_TOKEN, PROVISION_OUTPOST_API_KEY,
--   PROVISION_AGILICUS_TOKEN, PROVISION_DOCUMENT360_TOKEN (the sandbox's fake ones).
-- Each block has a time bound (`timeout`), generous for a loaded machine.
local docblocks = require("support.docblocks")
local sandbox = require("support.sandbox")
local json = require("provision.json")

local ROOT = debug.getinfo(1, "S").source:sub(2):match("^(.*)/tests/spec/[^/]*$") or "."
if ROOT:sub(1, 1) ~= "/" then   -- absolute, since blocks run in their own folders
  local p = io.popen("cd '" .. ROOT .. "' && pwd")
  ROOT = p:read("l")
  p:close()
end
local BUILD = os.getenv("PROVISION_BUILD") or (ROOT .. "/build")
local BLOCK_TIMEOUT = 180   -- seconds; a bound against a hung block, not a speed check
local DOC_URL = "http://127.0.0.1:8090"   -- how the docs write the sandbox's URL

local proc = require("support.proc")
local q, slurp, spit = proc.quote, proc.read_file, proc.write_file

local function mkdtemp()
  local p = io.popen("mktemp -d")
  local dir = p:read("l")
  p:close()
  assert(dir and dir ~= "", "mktemp -d failed")
  return dir
end

local TMP = mkdtemp()
local BIN = TMP .. "/bin"                  -- `provision` on PATH: a symlink to bin/provision
local HOME = TMP .. "/home"                -- no config file in it
os.execute("mkdir -p " .. q(BIN) .. " " .. q(HOME) .. " && ln -s " .. q(ROOT .. "/bin/provision") .. " " .. q(BIN .. "/provision"))

-- The sandbox, started on first use so that a failure to start fails every
-- block that needs it (instead of one setup error).
local sb, sb_err
local function need_sandbox()
  if not sb and not sb_err then
    local ok, started = pcall(sandbox.start, { args = { "--quiet" } })
    if ok then sb = started else sb_err = tostring(started) end
  end
  assert(sb, "sandbox did not start: " .. tostring(sb_err))
  local status = sb:admin("POST", "/reset")
  assert.are.equal(200, status, "POST /_sandbox/reset")
  status = sb:admin("DELETE", "/faults")
  assert.are.equal(200, status, "DELETE /_sandbox/faults")
  return sb
end

local function block_env()
  local c = sb.credentials
  return {
    PATH = BIN .. ":" .. (os.getenv("PATH") or "/usr/bin:/bin"),
    HOME = HOME,
    LUA_PATH = table.concat({ ROOT .. "/lua/?.lua", ROOT .. "/lua/?/init.lua", ROOT .. "/?.lua",
                              ROOT .. "/tests/?.lua", "" }, ";") .. ";",
    LUA_CPATH = BUILD .. "/?.so;;",
    PROVISION_BUILD = BUILD,
    PROVISION_SANDBOX_URL = sb.url,
    PROVISION_DOCSPACE_URL = sb.docspace, PROVISION_DOCSPACE_TOKEN = c.docspace.bearer_token,
    PROVISION_OUTPOST_URL = sb.outpost_latest, PROVISION_OUTPOST_API_KEY = c.outpost.admin_api_key,
    PROVISION_AGILICUS_URL = sb.agilicus, PROVISION_AGILICUS_TOKEN = c.agilicus.token,
    PROVISION_DOCUMENT360_URL = sb.document360, PROVISION_DOCUMENT360_TOKEN = c.document360.api_token,
  }
end

-- run(argv_string, env, cwd) -> {code, out, err}: one shell command line,
-- in a clean environment, bounded by `timeout`.
local function run(cmdline, env, cwd)
  local vars = {}
  for k, v in pairs(env) do vars[#vars + 1] = k .. "=" .. q(v) end
  table.sort(vars)
  local out, err = os.tmpname(), os.tmpname()
  local cmd = ("cd %s && env -i %s timeout -k 5 %d sh -c %s >%s 2>%s </dev/null"):format(
    q(cwd), table.concat(vars, " "), BLOCK_TIMEOUT, q(cmdline), q(out), q(err))
  local _, _, code = os.execute(cmd)
  local r = { code = code, out = slurp(out) or "", err = slurp(err) or "" }
  os.remove(out)
  os.remove(err)
  return r
end

local function clip(s)
  if #s > 4000 then s = s:sub(1, 2000) .. "\n[...]\n" .. s:sub(-2000) end
  return s
end

local function report(what, r)
  return ("%s exited %s\n--- stdout\n%s--- stderr\n%s"):format(what, tostring(r.code), clip(r.out), clip(r.err))
end

-- Transcripts -------------------------------------------------------------------

local function split_lines(s)
  local t = {}
  for line in (s .. (s:sub(-1) == "\n" and "" or "\n")):gmatch("(.-)\n") do t[#t + 1] = (line:gsub("%s+$", "")) end
  while #t > 0 and t[#t] == "" do t[#t] = nil end
  return t
end

local function normalise(text, url)
  local s = text:gsub(url:gsub("%p", "%%%0"), (DOC_URL:gsub("%%", "%%%%")))
  return split_lines(s)
end

-- expected lines (with `...` wildcards) against actual lines
local function matches(expect, actual, i, j)
  i, j = i or 1, j or 1
  if i > #expect then return j > #actual end
  if expect[i]:match("^%s*%.%.%.$") then
    for k = j, #actual + 1 do
      if matches(expect, actual, i + 1, k) then return true end
    end
    return false
  end
  return j <= #actual and expect[i] == actual[j] and matches(expect, actual, i + 1, j + 1)
end

-- The block runners -----------------------------------------------------------------

local function run_lua(code, ctx)
  local path = ctx.dir .. "/block-" .. ctx.line .. ".lua"
  spit(path, code)
  local r = run("exec lua5.4 " .. q(path), block_env(), ctx.dir)
  assert(r.code == 0, report("lua5.4 " .. ctx.name, r))
end

local function run_shell(plan, ctx)
  for _, c in ipairs(plan.commands) do
    local r = run(c.cmd, block_env(), ctx.dir)
    local want = tonumber(c.cmd:match("#%s*exits%s+(%d+)%s*$")) or 0
    assert(r.code == want, report("`" .. c.cmd .. "` (" .. ctx.name .. ", expected to exit " .. want .. ")", r))
    if c.expect then
      local actual = normalise(r.out .. r.err, sb.url)
      local expect = {}
      for i, l in ipairs(c.expect) do expect[i] = l:gsub("%s+$", "") end
      assert(matches(expect, actual), ("output of `%s` (%s) differs from the doc\n--- doc\n%s\n--- actual "
        .. "(stdout, then stderr; sandbox URL as %s)\n%s"):format(c.cmd, ctx.name, table.concat(expect, "\n"),
        DOC_URL, table.concat(actual, "\n")))
    end
  end
end

-- api-table: `...` in the excerpt evaluates to OPEN ("and more").
local OPEN = setmetatable({}, { __tostring = function() return "..." end })

local function evaluate_excerpt(code, name)
  local env = {}
  local f = load(code, "=" .. name, "t", env)
  if not f then f = load("return " .. code, "=" .. name, "t", env) end
  assert(f, name .. ": the excerpt is neither a Lua chunk nor an expression")
  local ok, v = pcall(f, OPEN)
  assert(ok, name .. ": " .. tostring(v))
  assert(type(v) == "table", name .. ": the excerpt is not a table")
  return v
end

local function show(v) return type(v) == "string" and string.format("%q", v) or tostring(v) end

local function compare(doc, real, path, problems)
  if type(doc) ~= "table" then
    if doc ~= real then problems[#problems + 1] = ("%s: the doc says %s, the file has %s"):format(path, show(doc), show(real)) end
    return
  end
  if type(real) ~= "table" then
    problems[#problems + 1] = ("%s: the doc shows a table, the file has %s"):format(path, show(real))
    return
  end
  local open = false
  for k, v in pairs(doc) do
    if v == OPEN then
      open = true
    else
      compare(v, real[k], path .. (type(k) == "string" and k:match("^[%a_][%w_]*$") and "." .. k or "[" .. show(k) .. "]"),
        problems)
    end
  end
  if not open and #doc > 0 and #doc ~= #real then
    problems[#problems + 1] = ("%s: %d items in the doc, %d in the file"):format(path, #doc, #real)
  end
end

local function run_api_table(plan, code, ctx)
  local doc = evaluate_excerpt(code, ctx.name)
  local api = require("provision.apis." .. plan.api)
  local real, where = api, plan.api
  if plan.what then
    real = nil
    for _, op in ipairs(api.operations) do
      if plan.what == "operation" and op.name == plan.name then real = op end
      for _, p in ipairs(plan.what == "param" and op.params or {}) do
        if not real and p.name == plan.name then real = p; where = plan.api .. "." .. op.name end
      end
    end
    assert(real, ctx.name .. ": " .. plan.api .. " has no " .. plan.what .. " " .. plan.name)
    where = where .. " " .. plan.what .. " " .. plan.name
  end
  local problems = {}
  compare(doc, real, where, problems)
  assert(#problems == 0, ctx.name .. " disagrees with lua/provision/apis/" .. plan.api .. ".lua:\n  "
    .. table.concat(problems, "\n  "))
end

local function run_schema_data(plan, code, ctx)
  local doc = evaluate_excerpt(code, ctx.name)
  local problems = {}
  compare(doc, require("provision.schemas." .. plan.name), plan.name, problems)
  assert(#problems == 0, ctx.name .. " disagrees with lua/provision/schemas/" .. plan.name .. ".lua:\n  "
    .. table.concat(problems, "\n  "))
end

-- One dry-run per API to prove a config section is accepted.
local DRY_RUNS = {
  docspace = "docspace get_invitation_link User", PortalUsersApi = "docspace get_invitation_link User",
  outpost = "outpost get t1", Tenants = "outpost get t1",
  agilicus = "agilicus list_users --org_id=o1", UsersApi = "agilicus list_users --org_id=o1",
  document360 = "document360 v2_teams_get", TeamsApi = "document360 v2_teams_get",
}

local function run_cli_config(code, ctx)
  local path = ctx.dir .. "/config-" .. ctx.line .. ".lua"
  spit(path, code)
  local env = { PATH = BIN .. ":" .. (os.getenv("PATH") or "/usr/bin:/bin"), HOME = HOME, PROVISION_BUILD = BUILD }
  for name in code:gmatch("os%.getenv%(%s*[\"']([%w_]+)[\"']%s*%)") do env[name] = "docs-test-" .. name:lower() end
  local chunk = assert(load(code, "=" .. ctx.name, "t", { os = { getenv = function(n) return env[n] end } }))
  local sections = chunk()
  local tried = 0
  -- the top-level API sections, and those of each profile (with --profile NAME)
  local function try(list, profile)
    for key in pairs(list) do
      if key ~= "defaults" and key ~= "profiles" then
        local dry = DRY_RUNS[key]
        assert(dry, ctx.name .. ": section '" .. tostring(key) .. "' is not an API the docs test knows")
        local r = run("provision --config " .. q(path) .. (profile and (" --profile " .. q(profile)) or "")
          .. " --dry-run " .. dry, env, ctx.dir)
        assert(r.code == 0, report("provision --config (section " .. key .. ", " .. ctx.name .. ")", r))
        assert(r.err:find("dry run: nothing was sent", 1, true), report("provision --config " .. key, r))
        tried = tried + 1
      end
    end
  end
  try(sections)
  for name, profile in pairs(sections.profiles or {}) do try(profile, name) end
  assert(tried > 0, ctx.name .. ": the config has no API section")
end

local function run_sandbox_faults(plan, code, ctx)
  if plan.lang == "json" then
    local n = 0
    for line in code:gmatch("[^\n]+") do
      if line:match("%S") then
        local rule = assert(json.decode(line))
        local status, body = sb:admin("POST", "/faults", rule)
        assert(status == 201, ctx.name .. ": the sandbox refused " .. line .. ": " .. json.encode(body))
        n = n + 1
      end
    end
    assert(n > 0, ctx.name .. ": no rule in the block")
    local _, listed = sb:admin("GET", "/faults")
    assert.are.equal(n, #listed.rules, ctx.name)
  else
    local path = ctx.dir .. "/faults-" .. ctx.line .. ".lua"
    spit(path, code)
    local own = sandbox.start({ faults = path, args = { "--quiet" } })
    local status, listed = own:admin("GET", "/faults")
    own:stop()
    assert.are.equal(200, status)
    local rules = assert(load(code, "=" .. ctx.name, "t", {}))()
    assert.are.equal(#(rules.rules or rules), #listed.rules, ctx.name .. ": rules loaded")
  end
end

-- The documents -------------------------------------------------------------------

local function doc_files()
  local files = { "README.md" }
  local p = io.popen("cd " .. q(ROOT) .. " && ls docs/*.md")
  for f in p:lines() do files[#files + 1] = f end
  p:close()
  files[#files + 1] = "sandbox/README.md"
  return files
end

local counts = {}   -- file -> {run =, skipped =, setup =}

describe("docs", function()
  for _, file in ipairs(doc_files()) do
    describe(file, function()
      local text = slurp(ROOT .. "/" .. file)
      it("can be read", function() assert(text, "cannot read " .. file) end)
      if not text then return end
      local c = { run = 0, skipped = 0, setup = 0 }
      counts[#counts + 1] = { file = file, c = c }
      local dir = TMP .. "/" .. file:gsub("[/.]", "_")
      os.execute("mkdir -p " .. q(dir))
      local previous_lua     -- the code of the last lua block, for `continue`
      for _, b in ipairs(docblocks.parse(text)) do
        local name = ("%s:%d"):format(file, b.line)
        local ctx = { name = name, line = b.line, dir = dir }
        local plan, why = docblocks.classify(b)
        local label = name .. " " .. (b.info ~= "" and b.info or "(no info string)")
        if not plan then
          it(label, function() error(name .. ": " .. why, 0) end)
        elseif plan.kind == "skip" then
          c.skipped = c.skipped + 1
          pending(label .. ": " .. plan.reason)
        elseif plan.kind == "file" then
          -- setup happens while registering, so it holds for every later block
          c.setup = c.setup + 1
          spit(dir .. "/" .. plan.name, b.code)
        else
          c.run = c.run + 1
          local code = b.code
          if plan.kind == "continue" then
            code = (previous_lua or "error('continue: no lua block before this one')\n") .. code
          end
          if b.lang == "lua" and (plan.kind == "lua" or plan.kind == "continue") then previous_lua = code end
          it(label .. " (" .. plan.kind .. ")", function()
            need_sandbox()
            if plan.kind == "lua" or plan.kind == "continue" then run_lua(code, ctx)
            elseif plan.kind == "shell" then run_shell(plan, ctx)
            elseif plan.kind == "api-table" then run_api_table(plan, code, ctx)
            elseif plan.kind == "schema-data" then run_schema_data(plan, code, ctx)
            elseif plan.kind == "cli-config" then run_cli_config(code, ctx)
            elseif plan.kind == "sandbox-faults" then run_sandbox_faults(plan, code, ctx)
            else error("no runner for " .. plan.kind) end
          end)
        end
      end
    end)
  end

  teardown(function()
    if sb then sb:stop() end
    os.execute("rm -rf " .. q(TMP))
    local total = { run = 0, skipped = 0, setup = 0 }
    io.write("\n")   -- after busted's progress characters
    for _, e in ipairs(counts) do
      io.write(("docs blocks: %-20s %2d run, %2d skipped, %d setup\n"):format(e.file, e.c.run, e.c.skipped, e.c.setup))
      for k in pairs(total) do total[k] = total[k] + e.c[k] end
    end
    io.write(("docs blocks: %-20s %2d run, %2d skipped, %d setup\n"):format("all", total.run, total.skipped, total.setup))
  end)
end)

-- The harness's own rules, on made-up Markdown: what cannot run must fail.
describe("docs test conventions", function()
  local function plans(md)
    local out = {}
    for _, b in ipairs(docblocks.parse(md)) do
      local plan, why = docblocks.classify(b)
      out[#out + 1] = plan or { kind = "FAIL", why = why }
    end
    return out
  end

  it("fails an unmarked block it cannot run", function()
    for _, md in ipairs({ "```nginx\nhttp {}\n```\n", "```\nsome text\n```\n", "```c\nint x;\n```\n",
                          "```sh\nmake test\n```\n", "```sh\nprovision apis\nrm -rf /tmp/x\n```\n",
                          "```console\nno dollar line\n```\n" }) do
      local p = plans(md)
      assert.are.equal(1, #p, md)
      assert.are.equal("FAIL", p[1].kind, md)
    end
  end)

  it("fails unknown markers, skips without a reason, and markers away from a fence", function()
    assert.are.equal("FAIL", plans("<!-- docs-test: sometimes -->\n```lua\nx()\n```\n")[1].kind)
    assert.are.equal("FAIL", plans("<!-- docs-test: skip -->\n```nginx\nx\n```\n")[1].kind)
    local p = plans("<!-- docs-test: skip: nginx -->\n\n```nginx\nx\n```\n")
    assert.are.equal(2, #p)
    assert.are.equal("FAIL", p[1].kind)   -- the stray marker
    assert.are.equal("FAIL", p[2].kind)   -- the block it did not mark
    assert.are.equal("FAIL", plans("```lua\nnever closed\n")[1].kind)
  end)

  it("reads markers, shell commands and transcripts", function()
    local p = plans(table.concat({
      "<!-- docs-test: skip: needs nginx -->", "```nginx", "http {}", "```",
      "```lua", "print(1)", "```",
      "```sh", "# a comment", "provision apis   # list", "echo '{}' | provision agilicus create_user --body=-", "```",
      "```console", "$ provision apis", "API  CLASS", "...", "", "$ provision docspace ops", "```",
      "<!-- docs-test: file ada.json -->", "```json", "{}", "```",
      "<!-- docs-test: api-table agilicus operation create_user -->", "```lua", "{}", "```",
    }, "\n"))
    assert.are.equal("skip", p[1].kind)
    assert.are.equal("needs nginx", p[1].reason)
    assert.are.equal("lua", p[2].kind)
    assert.are.equal("shell", p[3].kind)
    assert.are.equal(2, #p[3].commands)
    assert.is_nil(p[3].commands[1].expect)
    assert.are.equal("shell", p[4].kind)
    assert.are.same({ "API  CLASS", "..." }, p[4].commands[1].expect)
    assert.are.same({}, p[4].commands[2].expect)
    assert.are.equal("file", p[5].kind)
    assert.are.equal("ada.json", p[5].name)
    assert.are.same({ kind = "api-table", api = "agilicus", what = "operation", name = "create_user" }, p[6])
  end)

  it("matches transcripts with `...` and the documented sandbox URL", function()
    local actual = normalise("POST http://127.0.0.1:41234/agilicus/users  \nA\nB\nC\n\n", "http://127.0.0.1:41234")
    assert.are.same({ "POST http://127.0.0.1:8090/agilicus/users", "A", "B", "C" }, actual)
    assert.is_true(matches({ "POST http://127.0.0.1:8090/agilicus/users", "...", "C" }, actual))
    assert.is_true(matches({ "POST http://127.0.0.1:8090/agilicus/users", "A", "B", "C", "..." }, actual))
    assert.is_false(matches({ "POST http://127.0.0.1:8090/agilicus/users", "A", "C" }, actual))
    assert.is_false(matches({ "POST http://127.0.0.1:8090/agilicus/users", "...", "D" }, actual))
  end)

  it("checks api-table excerpts value by value", function()
    local problems = {}
    compare(evaluate_excerpt('{ name = "create_user", path = "/v1/users", success = { 201 }, params = { ... } }', "x"),
      { name = "create_user", path = "/users", success = { 200, 201 }, params = { {}, {} } }, "op", problems)
    table.sort(problems)
    assert.are.same({ 'op.path: the doc says "/v1/users", the file has "/users"',
                      "op.success: 1 items in the doc, 2 in the file",
                      "op.success[1]: the doc says 201, the file has 200" }, problems)
  end)
end)

-- README's package list is the one `make test` installs.
describe("README set-up", function()
  it("names every Debian package scripts/deps.sh installs, and the pinned Prism", function()
    local readme = assert(slurp(ROOT .. "/README.md"))
    local deps = assert(slurp(ROOT .. "/scripts/deps.sh"))
    -- every NAME="..." list of the script; $NAME inside a list is that list
    local lists = {}
    for _, list in deps:gmatch('([%a_]+)="([^"]*)"') do lists[#lists + 1] = list end
    local names = {}
    for _, list in ipairs(lists) do
      for word in list:gmatch("%$?[%w][%w.+_-]*") do
        if word:sub(1, 1) ~= "$" then names[#names + 1] = word end
      end
    end
    assert.is_true(#names >= 20, "found the package lists of scripts/deps.sh")
    local missing = {}
    for _, p in ipairs(names) do
      if not readme:find("`" .. p .. "`", 1, true) then missing[#missing + 1] = p end
    end
    assert.are.same({}, missing)
    local pkg = assert(json.decode(assert(slurp(ROOT .. "/package.json"))))
    for name, version in pairs(pkg.devDependencies) do
      assert.is_truthy(readme:find("`" .. name .. "@" .. version .. "`", 1, true), name .. "@" .. version .. " in README")
    end
  end)
end)

-- docs/cli.md is the CLI's reference: every flag `provision --help` lists is in it.
describe("docs/cli.md", function()
  it("documents every flag of bin/provision", function()
    local doc = assert(slurp(ROOT .. "/docs/cli.md"))
    local args = require("provision.cli.args")
    assert.is_true(#args.flags >= 25, "read the CLI's flag table")
    local missing = {}
    for _, f in ipairs(args.flags) do
      local shown = doc:find("`--" .. f.name, 1, true) or doc:find(", --" .. f.name, 1, true)
      if not shown then missing[#missing + 1] = "--" .. f.name end
    end
    assert.are.same({}, missing)
  end)
end)
