-- Body fields as flags (lua/provision/cli/bodyfields.lua, from the request
-- body schemas): `--email ... --first-name ...` instead of --body JSON,
-- nested and map fields dotted, arrays repeated, typed --input CSV columns,
-- and `help OP` listing every field with its type and whether it is required.
local sandbox = require("support.sandbox")
local clirun = require("support.cli")
local json = require("provision.json")

local ORG = "Nw7kQ2pX9sT4vB8mL1cR3d"

describe("bin/provision body fields as flags", function()
  local sb, runner, env

  setup(function()
    sb = sandbox.start({ args = { "--quiet" } })
    runner = clirun.runner({ secrets = { sb.credentials.agilicus.token, sb.credentials.document360.api_token } })
    env = { PROVISION_SANDBOX_URL = sb.url }
  end)
  teardown(function()
    sb:stop()
    runner.cleanup()
  end)
  before_each(function() assert.are.equal(200, (sb:admin("POST", "/reset"))) end)

  local function run(argv) return runner.run(argv, { env = env }) end
  local function ok(argv)
    local r = run(argv)
    assert.are.equal(0, r.code, r.err)
    return json.decode(r.out)
  end

  it("lists the body's fields in help, with type, required and description", function()
    local r = run({ "document360", "help", "v2_teams_post" })
    assert.are.equal(0, r.code, r.err)
    assert.matches("%-%-email%-id%s+string %(email%)%s+required", r.out)
    assert.matches("%-%-associated%-portal%-role%-id%s+string%s+required", r.out)
    assert.matches("%-%-content%-permissions%s+object%[%] %(repeat the flag%)%s+required", r.out)
    assert.matches("%-%-skip%-sso%-invitation%-email%s+boolean", r.out)
    r = run({ "agilicus", "help", "create_user" })
    assert.matches("%-%-first%-name%s+string", r.out)
    assert.matches("%-%-roles%.KEY%s+string%[%]", r.out)
  end)

  it("adds a Document360 member from flags alone (kebab-case, booleans, an empty array)", function()
    local roles = ok({ "document360", "--sandbox", "v2_teams_roles_get", "-o", "json" })
    local members = ok({ "document360", "--sandbox", "v2_teams_get", "-o", "json" })
    local editor
    for _, role in ipairs(roles) do if role.title == "Editor" then editor = role.id end end
    local added = ok({ "document360", "--sandbox", "v2_teams_post", "-o", "json",
      "--email-id", "ada@northwind.example", "--first-name", "Ada", "--invited-by", members[1].user_id,
      "--associated-portal-role-id", editor, "--content-permissions=[]", "--skip-sso-invitation-email" })
    assert.is_string(added.id)
    local found = ok({ "document360", "--sandbox", "v2_teams_email_exists_get", "ada@northwind.example", "-o", "json" })
    assert.is_true(found.exists)
  end)

  it("sets map fields dotted and repeats array flags; flags override --body", function()
    local u = ok({ "agilicus", "--sandbox", "create_user", "-o", "json", "--org-id", ORG,
      "--body", '{"email":"grace@northwind.example","first_name":"Old"}', "--first-name", "Grace",
      "--roles.portal=admin", "--roles.portal=viewer" })
    assert.are.equal("Grace", u.first_name)
    assert.are.same({ "admin", "viewer" }, u.roles.portal)
  end)

  it("refuses a misspelt field with a did-you-mean, and a missing required one before sending", function()
    local r = run({ "agilicus", "--sandbox", "create_user", "--email", "x@northwind.example", "--frist-name", "G" })
    assert.are.equal(2, r.code)
    assert.matches("did you mean %-%-first%-name", r.err)
    sb:admin("DELETE", "/log")
    r = run({ "document360", "--sandbox", "v2_teams_post", "--email-id", "bob@northwind.example" })
    assert.are.equal(2, r.code)
    assert.matches("associated_portal_role_id: required", r.err)
    local _, logged = sb:admin("GET", "/log")
    assert.are.equal(0, #logged.entries, "nothing was sent")
    -- --no-validate sends it, and the sandbox answers for itself
    r = run({ "document360", "--sandbox", "v2_teams_post", "--email-id", "bob@northwind.example", "--no-validate" })
    assert.are.equal(1, r.code, r.err)
    _, logged = sb:admin("GET", "/log")
    assert.are.equal(1, #logged.entries)
  end)

  it("types --input CSV columns by the body's schema", function()
    local dir = clirun.mkdtemp()
    local csv = dir .. "/people.csv"
    local f = assert(io.open(csv, "w"))
    f:write("email,first_name,org_id,enabled\n", "csv.one@northwind.example,One,", ORG, ",false\n",
            "csv.two@northwind.example,Two,", ORG, ",true\n")
    f:close()
    local r = runner.run({ "agilicus", "--sandbox", "create_user", "--input", csv, "--results", dir .. "/r.jsonl" },
      { env = env })
    assert.are.equal(0, r.code, r.err)
    local page = ok({ "agilicus", "--sandbox", "list_users", "--org-id", ORG, "--email", "csv.one@northwind.example",
                      "-o", "json" })
    assert.are.equal(false, page.users[1].enabled)   -- a boolean, not the text "false"
    os.execute("rm -rf " .. clirun.q(dir))
  end)
end)
