-- bin/provision's output (lua/provision/cli/output.lua and its helpers):
-- --output json|table|tsv|yaml, --fields with dotted paths, raw scalars,
-- tables fitted to a width, TSV escaping, and YAML that a real YAML parser
-- (libyaml, through lua-yaml) reads back as the same value.
local sandbox = require("support.sandbox")
local clirun = require("support.cli")
local core = require("provision.core")
local lyaml = require("lyaml")
local yaml = require("provision.cli.yaml")
local tabular = require("provision.cli.tabular")

local ORG = "Nw7kQ2pX9sT4vB8mL1cR3d"

-- Lua values from lyaml against the JSON value: null, arrays and numbers compared loosely.
local function same(a, b, path)
  path = path or "$"
  if a == core.null or a == lyaml.null then a = nil end
  if b == core.null or b == lyaml.null then b = nil end
  if type(a) ~= "table" or type(b) ~= "table" then
    assert(a == b or (a == nil and type(b) == "table" and next(b) == nil)
      or (b == nil and type(a) == "table" and next(a) == nil),
      path .. ": " .. tostring(a) .. " ~= " .. tostring(b))
    return
  end
  for k, v in pairs(a) do same(v, b[k], path .. "." .. tostring(k)) end
  for k, v in pairs(b) do if a[k] == nil then same(nil, v, path .. "." .. tostring(k)) end end
end

describe("yaml emitter", function()
  it("quotes every string a YAML reader would take for something else, and libyaml reads it back", function()
    local tricky = { "", "true", "False", "yes", "no", "on", "off", "y", "N", "null", "~", "1", "-1", "1.5", ".5",
      "1e3", "0x1F", "0o17", "1_000", ".inf", "-.nan", "12:30", "2024-01-01", "- item", "? q", ": c", "a: b",
      "a #b", "#c", "&anchor", "*alias", "!tag", "|", ">", "'", "\"", "%x", "@x", "`x", "{a}", "[a]", ",",
      " lead", "trail ", "two\nlines", "tab\there", "é and ü", "plain words", "a:b", "http://x.example/?a=1&b=2",
      "=", "<<", "caf\u{e9}" }
    local doc = {}
    for i, s in ipairs(tricky) do doc["k" .. i] = s end
    doc[""] = "empty key"
    doc["yes"] = "a key that reads as a boolean"
    local text = yaml.encode(doc)
    local back = lyaml.load(text)
    for k, v in pairs(doc) do
      assert.are.equal(v, back[k], "key " .. k .. " in:\n" .. text)
    end
  end)

  it("writes nested records, lists, empty ones, null, numbers and booleans", function()
    local v = assert(core.json_decode([==[{"a":[1,2,{"b":[],"c":{}}],"d":{"e":{"f":null}},"g":true,"h":-2.5,
      "i":[[1,2],[]],"j":"x","k":9007199254740993}]==]))
    local text = yaml.encode(v)
    assert.matches("\na:\n%- 1\n%- 2\n%- b: %[%]\n  c: {}\n", "\n" .. text)
    assert.matches("\nk: 9007199254740993\n", text .. "\n")   -- 64-bit integers exact
    local back = lyaml.load(text)
    back.k = nil
    v.k = nil
    same(v, back)
    assert.are.equal("[]", yaml.encode(core.json_decode("[]")))
    assert.are.equal("{}", yaml.encode({}))
    assert.are.equal("null", yaml.encode(core.null))
  end)
end)

describe("tables and TSV", function()
  local rows = {}
  for i = 1, 5 do
    rows[i] = { "id-" .. i .. string.rep("x", 18), "user" .. i .. "@northwind.example", "active",
      string.rep("long text ", 8) .. i, "ü" .. i }
  end
  local header = { "ID", "EMAIL", "STATUS", "NOTE", "UML" }

  it("fit a width: no line wider, columns dropped from the right, cut cells end in the ellipsis", function()
    for _, width in ipairs({ 120, 80, 60, 40, 25 }) do
      local lines, dropped = tabular.table_lines(header, rows, width, { ellipsis = "~" })
      for _, l in ipairs(lines) do
        assert.is_true(tabular.width_of(l) <= width, width .. ": " .. l)
      end
      assert.matches("^ID", lines[1])
      if width < 100 then assert.is_true(dropped > 0, "dropped at " .. width) end
    end
    local wide = tabular.table_lines(header, rows, nil)
    assert.matches("long text long text long text long text long text long text long text long text 1", wide[2],
      nil, true)
    -- chosen columns stay, cut to fit
    local kept, dropped = tabular.table_lines(header, rows, 40, { keep_all = true, ellipsis = "~" })
    assert.are.equal(0, dropped)
    assert.matches("^ID%s.*EMAIL%s.*STATUS%s.*NOTE%s.*UML", kept[1])
    for _, l in ipairs(kept) do assert.is_true(tabular.width_of(l) <= 40, l) end
    assert.matches("~", kept[2], nil, true)
  end)

  it("TSV escapes tabs, newlines, carriage returns and backslashes", function()
    local lines = tabular.tsv_lines({ "a", "b" }, { { "x\ty", "1\n2\r\\" } })
    assert.are.same({ "a\tb", "x\\ty\t1\\n2\\r\\\\" }, lines)
  end)

  it("shapes: a list, an envelope of one list, a record, a scalar; dotted fields", function()
    local user = { id = "u1", email = "a@x", member_of = { { name = "g1" } }, roles = { crm = { "user" } } }
    assert.are.equal("record", (tabular.shape(user)))
    assert.are.equal("list", (tabular.shape({ users = { user }, limit = 1 })))
    assert.are.equal("list", (tabular.shape({ users = { user }, limit = 1 }, "users")))
    assert.are.equal("scalar", (tabular.shape("x")))
    assert.are.equal("g1", tabular.get(user, "member_of.0.name"))
    assert.are.same({ "user" }, tabular.get(user, "roles.crm"))
    assert.are.same({ email = "a@x", roles = { crm = { "user" } } }, tabular.project(user, { "email", "roles.crm" }))
  end)
end)

describe("bin/provision --output", function()
  local sb, env, runner

  setup(function()
    sb = sandbox.start({ args = { "--quiet" } })
    runner = clirun.runner()
    env = { PROVISION_SANDBOX_URL = sb.url }
  end)
  teardown(function()
    if sb then sb:stop() end
    if runner then runner.cleanup() end
  end)
  before_each(function() assert.are.equal(200, (sb:admin("POST", "/reset"))) end)

  local function run(argv, extra)
    local e = {}
    for k, v in pairs(env) do e[k] = v end
    for k, v in pairs(extra or {}) do e[k] = v end
    local full = { "--sandbox" }
    for _, a in ipairs(argv) do full[#full + 1] = a end
    return runner.run(full, { env = e })
  end

  it("prints JSON when stdout is not a terminal; scalars raw, quoted only with -o json", function()
    local list = run({ "agilicus", "list_users", "--org-id", ORG, "--limit", "2" })
    assert.are.equal(0, list.code, list.err)
    assert.is_table(assert(core.json_decode(list.out)).users)
    local link = run({ "docspace", "get_invitation_link", "User" })
    assert.are.equal(0, link.code, link.err)
    assert.matches("^http://127%.0%.0%.1:%d+/docspace/accessright%?[^\n\"]*\n$", link.out)
    local quoted = run({ "docspace", "get_invitation_link", "User", "-o", "json" })
    assert.matches('^"http://', quoted.out)
    local portal = run({ "outpost", "get_portal_url", "acme-partner", "--fields", "redirect_url" })
    assert.are.equal(0, portal.code, portal.err)
    assert.matches("^https://portal%.outpost%.sandbox%.example/%?token=[^\n]+\n$", portal.out)
  end)

  it("-o table: a list with a header row, chosen --fields (dotted paths), a record as FIELD VALUE", function()
    local t = run({ "agilicus", "list_users", "--org-id", ORG, "--limit", "3", "-o", "table",
                    "--fields", "email,status,member_of.0.name" })
    assert.are.equal(0, t.code, t.err)
    local lines = {}
    for l in t.out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal(4, #lines)
    assert.matches("^EMAIL%s+STATUS%s+MEMBER_OF%.0%.NAME$", lines[1])
    assert.matches("^aisha%.khan@northwind%.example%s+active%s+Customer Success$", lines[2])
    local rec = run({ "agilicus", "get_user", "l2mkKF6E7v9TIuSYOOfNi8", "-o", "table" })
    assert.are.equal(0, rec.code, rec.err)
    assert.matches("^FIELD%s+VALUE\n", rec.out)
    assert.matches("\nemail%s+aisha%.khan@northwind%.example\n", rec.out)
    assert.matches("\nroles%.crm%s+%[\"user\"%]\n", rec.out)
  end)

  it("-o tsv: a header row and one row a record; -o yaml reads back as the JSON", function()
    local t = run({ "document360", "v2_teams_get", "--take", "2", "-o", "tsv", "--fields", "email_id,portal_role" })
    assert.are.equal(0, t.code, t.err)
    assert.are.equal("email_id\tportal_role\namelia.hart@northwind.example\tOwner\n"
      .. "rahul.menon@northwind.example\tAdministrator\n", t.out)
    local j = run({ "agilicus", "get_user", "l2mkKF6E7v9TIuSYOOfNi8" })
    local y = run({ "agilicus", "get_user", "l2mkKF6E7v9TIuSYOOfNi8", "-o", "yaml" })
    assert.are.equal(0, y.code, y.err)
    same(assert(core.json_decode(j.out)), lyaml.load(y.out))
    local yf = run({ "agilicus", "list_users", "--org-id", ORG, "--limit", "2", "-o", "yaml", "--fields", "email,roles" })
    local back = lyaml.load(yf.out)
    assert.are.equal("aisha.khan@northwind.example", back[1].email)
    assert.are.same({ "user" }, back[1].roles.crm)
    assert.is_nil(back[1].id)
  end)

  it("PROVISION_OUTPUT sets the format; a bad format or empty --fields is a usage error", function()
    local t = run({ "document360", "v2_teams_get", "--take", "1", "--fields", "email_id" }, { PROVISION_OUTPUT = "tsv" })
    assert.are.equal("email_id\namelia.hart@northwind.example\n", t.out)
    local bad = run({ "agilicus", "list_users", "-o", "tabel" })
    assert.are.equal(2, bad.code)
    assert.matches("--output must be one of json, table, tsv, yaml, got 'tabel'; did you mean table?", bad.err, nil, true)
    assert.are.equal("", bad.out)
    local envbad = run({ "agilicus", "list_users" }, { PROVISION_OUTPUT = "xml" })
    assert.are.equal(2, envbad.code)
    assert.matches("PROVISION_OUTPUT must be one of", envbad.err, nil, true)
    local nofields = run({ "agilicus", "list_users", "--fields", "," })
    assert.are.equal(2, nofields.code)
  end)

  it("on a terminal (in-process, ctx.terminal) the default is a table fitted to its width", function()
    local cli = require("provision.cli")
    local buf, ebuf = {}, {}
    local function sink(b)
      return { write = function(self, ...) for _, s in ipairs({ ... }) do b[#b + 1] = s end return self end,
               flush = function() end }
    end
    local vars = { PROVISION_SANDBOX_URL = sb.url }
    local code = cli.main({ "--sandbox", "agilicus", "list_users", "--org-id", ORG },
      { stdout = sink(buf), stderr = sink(ebuf), getenv = function(k) return vars[k] end,
        terminal = { stdout = true, stderr = true, width = 80 } })
    assert.are.equal(0, code, table.concat(ebuf))
    local text = table.concat(buf)
    assert.matches("^ID%s+EMAIL%s+STATUS", text)
    local n = 0
    for l in text:gmatch("[^\n]+") do
      n = n + 1
      assert.is_true(tabular.width_of(l) <= 80, l)
    end
    assert.is_true(n > 10)
    assert.matches("more fields not shown", table.concat(ebuf), nil, true)
  end)
end)
