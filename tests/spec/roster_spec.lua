-- Rosters without a server: CSV (quotes, CRLF, a BOM, embedded newlines),
-- JSON Lines and Lua tables read alike; columns come from the resources;
-- bad rows are all reported with their lines; a mapping renames an HR
-- export; the digest names the people, not the file's order or format.
local roster = require("provision.reconcile.roster")
local kinds = require("provision.reconcile.kinds")
local proc = require("support.proc")

local function row_of(r, email)
  for _, row in ipairs(r.rows) do if row.email == email then return row end end
end

describe("roster", function()
  it("reads CSV with quotes, doubled quotes, CRLF, a byte order mark and a newline in a field", function()
    local text = "\239\187\191email,first_name,last_name,agilicus_roles\r\n"
      .. "ada@example.com,Ada,\"Lovelace, Countess\",\"vpn:self; crm:user\"\r\n"
      .. "\r\n"
      .. "bob@example.com,\"Bob \"\"B\"\"\",\"Two\nLines\",\r\n"
      .. "carl@example.com,Carl,,-\r\n"
    local r = assert(roster.parse(text, { source = "people.csv" }))
    assert.are.equal(3, #r.rows)
    local ada = row_of(r, "ada@example.com")
    assert.are.equal(2, ada.line)
    assert.are.equal("Lovelace, Countess", ada.values.last_name)
    assert.are.same({ crm = { "user" }, vpn = { "self" } }, ada.systems.agilicus.desired.roles)
    local bob = row_of(r, "bob@example.com")
    assert.are.equal(4, bob.line)
    assert.are.equal('Bob "B"', bob.values.first_name)
    assert.is_nil(bob.systems.agilicus.desired.roles)          -- empty: not managed
    assert.are.equal(6, row_of(r, "carl@example.com").line)    -- after the two-line field
    assert.are.same({}, row_of(r, "carl@example.com").systems.agilicus.desired.roles)   -- "-": none
  end)

  it("reads JSON Lines and Lua tables to the same rows and the same digest, whatever the order", function()
    local csv = "email,first_name,agilicus_roles,document360_role,outpost_tenant,outpost_metadata.team,docspace_invite\n"
      .. "b@example.com,B,vpn:self,Reader,b-t,ops,4\n"
      .. "a@example.com,A,,,,,\n"
    local jsonl = '{"email":"a@example.com","first_name":"A"}\n\n'
      .. '{"email":"b@example.com","first_name":"B","agilicus_roles":{"vpn":["self"]},"document360_role":"Reader",'
      .. '"outpost_tenant":"b-t","outpost_metadata":{"team":"ops"},"docspace_invite":"User"}\n'
    local lua = { { email = "b@example.com", first_name = "B", agilicus_roles = { "vpn:self" }, document360_role = "Reader",
                    outpost_tenant = "b-t", outpost_metadata = { team = "ops" }, docspace_invite = "User" },
                  { email = "a@example.com", first_name = "A" } }
    local r1 = assert(roster.parse(csv, { source = "x.csv" }))
    local r2 = assert(roster.parse(jsonl, { source = "x.jsonl" }))
    local r3 = assert(roster.from_rows(lua))
    assert.are.equal(r1.digest, r2.digest)
    assert.are.equal(r1.digest, r3.digest)
    local b = row_of(r2, "b@example.com").systems
    assert.is_true(b.document360.member)
    assert.are.equal("b-t", b.outpost.key)
    assert.are.same({ team = "ops" }, b.outpost.desired.metadata)
    assert.are.equal("User", b.docspace.desired.employee_type)   -- 4 = User (the enum's numbers)
    assert.is_false(row_of(r1, "a@example.com").systems.document360.member)
    -- someone else: another digest
    local r4 = assert(roster.parse(csv:gsub("B,vpn", "Bee,vpn"), { source = "x.csv" }))
    assert.are_not.equal(r1.digest, r4.digest)
  end)

  it("reports every bad row with its line, and keeps none", function()
    local text = table.concat({
      "email,agilicus_roles,agilicus_status,outpost_tenant,docspace_invite,document360_content_permissions",
      "good@example.com,vpn:self,active,good-t,,",
      ",,,,,",
      "not an email,,,,,",
      "GOOD@example.com,,,,,",
      "roles@example.com,vpn:,,,,",
      "status@example.com,,frozen,,,",
      "tenant@example.com,,,bad/tenant,,",
      "dup.tenant@example.com,,,good-t,,",
      "invite@example.com,,,,Boss,",
      "json@example.com,,,,,{oops",
    }, "\n")
    local r, err = roster.parse(text, { source = "hr.csv" })
    assert.is_nil(r)
    assert.are.equal("RosterError", err.class)
    assert.are.equal("invalid_argument", err.kind)
    local lines = {}
    for _, b in ipairs(err.rows) do lines[#lines + 1] = b.line end
    assert.are.same({ 3, 4, 5, 6, 7, 8, 9, 10, 11 }, lines)
    local msg = tostring(err)
    assert.is_truthy(msg:find("hr.csv: 9 bad rows, nothing planned", 1, true), msg)
    assert.is_truthy(msg:find("line 3: no email", 1, true))
    assert.is_truthy(msg:find('line 4: malformed email "not an email"', 1, true))
    assert.is_truthy(msg:find("line 5: duplicate email GOOD@example.com (also on line 2)", 1, true))
    assert.are.equal('agilicus_status "frozen" is not one of active, disabled', err.rows[5].message)
    assert.is_truthy(err.rows[6].message:find("is not a valid id", 1, true))
    assert.is_truthy(err.rows[7].message:find("good-t is also on line 2", 1, true))
    assert.is_truthy(err.rows[8].message:find('docspace_invite "Boss" is not one of All, RoomAdmin', 1, true))
    assert.is_truthy(err.rows[9].message:find("is not JSON", 1, true))
  end)

  it("refuses an unknown column with a suggestion, unless a mapping renames or drops it", function()
    local r, err = roster.parse("email,agilicus_role\na@example.com,vpn:self\n", { source = "x.csv" })
    assert.is_nil(r)
    assert.is_truthy(tostring(err):find('unknown column "agilicus_role"; did you mean agilicus_roles?', 1, true),
      tostring(err))
    local dir = proc.capture("mktemp -d /tmp/provision-roster-XXXXXX"):gsub("%s+$", "")
    local mpath = dir .. "/map.json"
    proc.write_file(mpath, '{"Work Email": "email", "Roles": "agilicus_roles", "Team": "outpost_metadata.team",'
      .. ' "Tenant": "outpost_tenant", "Badge": null}')
    local mapping = assert(roster.read_mapping(mpath))
    local hr = "Work Email,Roles,Team,Tenant,Badge,Cost Centre\nh@example.com,vpn:self,ops,h-t,42,CC1\n"
    local r2 = assert(roster.parse(hr, { source = "hr.csv", mapping = mapping }))
    local h = r2.rows[1].systems
    assert.are.same({ vpn = { "self" } }, h.agilicus.desired.roles)
    assert.are.same({ team = "ops" }, h.outpost.desired.metadata)
    assert.are.same({ "Cost Centre" }, r2.ignored)
    local r3, err3 = roster.parse(hr, { source = "hr.csv", mapping = { ["Work Email"] = "e_mail" } })
    assert.is_nil(r3)
    assert.is_truthy(tostring(err3):find('"e_mail", which is not a roster column; did you mean email?', 1, true))
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("refuses a malformed CSV with the line, and an empty one", function()
    local r, err = roster.parse('email,first_name\n"a@example.com,A\n', { source = "x.csv" })
    assert.is_nil(r)
    assert.is_truthy(tostring(err):find("line 2: a quoted field is not closed", 1, true), tostring(err))
    r, err = roster.parse("email\na@example.com,extra\n", { source = "x.csv" })
    assert.is_nil(r)
    assert.is_truthy(tostring(err):find("line 2: 2 fields, but the header has 1", 1, true))
    r, err = roster.parse("", { source = "x.csv" })
    assert.is_nil(r)
    assert.is_truthy(tostring(err):find("empty", 1, true))
    r, err = roster.parse('{"email": "a@example.com"}\n[1]\n', { source = "x.jsonl" })
    assert.is_nil(r)
    assert.is_truthy(tostring(err):find("line 2: not a JSON object", 1, true))
  end)

  it("refuses a roster that holds nobody (with prune it would empty every system), and a folder", function()
    for _, case in ipairs({ { "email,first_name\n", "x.csv" }, { "", "x.jsonl" }, { "\n\n  \n", "x.jsonl" } }) do
      local r, err = roster.parse(case[1], { source = case[2] })
      assert.is_nil(r, case[2])
      assert.are.equal("RosterError", err.class)
      assert.is_truthy(tostring(err):find(case[2] .. ": the roster holds nobody, nothing planned", 1, true), tostring(err))
    end
    local r, err = roster.from_rows({})
    assert.is_nil(r)
    assert.is_truthy(tostring(err):find("holds nobody", 1, true))
    r = assert(roster.from_rows({}, { allow_empty = true }))
    assert.are.equal(0, #r.rows)
    r, err = roster.read("/tmp")
    assert.is_nil(r)
    assert.is_truthy(tostring(err):find("cannot read the roster: /tmp: Is a directory", 1, true), tostring(err))
  end)

  describe("field kinds", function()
    it("compare role maps without regard to order, and empty apps as none", function()
      local k = kinds.role_map
      assert.is_true(k.equal(k.read({ a = { "y", "x" }, b = {} }), assert(k.parse("a:x;a:y"))))
      assert.is_false(k.equal(k.read({ a = { "x" } }), assert(k.parse("a:x;b:z"))))
      assert.are.equal("a:x;a:y;b:z", k.show(assert(k.parse("b:z;a:y;a:x;a:x"))))
      assert.is_nil((k.parse("a:x;broken")))
    end)

    it("compare maps whole, text exactly or without case, enums in their own spelling", function()
      assert.is_true(kinds.map.equal(kinds.map.read(require("provision.json").null), {}))
      assert.is_false(kinds.map.equal({ a = "1" }, { a = "1", b = "2" }))
      assert.is_true(kinds.text_ci.equal("Editor", "editor"))
      assert.is_false(kinds.text.equal("Ada", "ada"))
      assert.are.equal("disabled", kinds.enum.parse("DISABLED", { values = { "active", "disabled" } }))
      assert.are.same({ "a", "b" }, kinds.set.parse("b; a;b"))
    end)
  end)
end)
