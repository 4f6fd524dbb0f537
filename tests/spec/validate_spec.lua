-- Request bodies are validated against their operation's schema (the data
-- in lua/provision/schemas/, generated from the published specs) before
-- anything is sent: per API, a required field, a wrong type, an enum, a
-- nested array, additionalProperties: false, open schemas, formats; a
-- violation is invalid_argument naming the JSON path, and nothing is sent
-- (a real transport that counts, to the echo server of
-- tests/support/echo_server.lua); validate = false (client or call) sends it.
local provision = require("provision")
local json = require("provision.json")
local schema = require("provision.schema")
local validate = require("provision.validate")
local echo_support = require("support.echo")
local A = require("support.contract_args")
local specs = require("support.specs")
local Curl = require("provision.transport.curl")

local APIS = {
  { label = "PortalUsersApi", module = "provision.apis.docspace", bodies = 0 },
  { label = "Tenants (v0)", module = "provision.apis.outpost", generation = "v0", bodies = 0 },
  { label = "Tenants (latest)", module = "provision.apis.outpost", generation = "latest", bodies = 1 },
  { label = "UsersApi", module = "provision.apis.agilicus", bodies = 17 },
  { label = "TeamsApi", module = "provision.apis.document360", bodies = 4 },
}

local function ops_of(api, generation)
  if api.generations then return api.generations[generation or api.default_generation].operations end
  return api.operations
end

local function body_param(op)
  for _, p in ipairs(op.params) do if p["in"] == "body" then return p end end
end

describe("request body validation", function()
  local echo

  setup(function() echo = echo_support.start() end)
  teardown(function() echo:stop() end)

  -- A real transport that counts what it sends.
  local function counting()
    local real = assert(Curl.new({ timeout = 5 }))
    local t = { sent = 0 }
    function t.send(_, reqs) t.sent = t.sent + #reqs; return real:send(reqs) end
    t.now, t.sleep = Curl.now, Curl.sleep
    function t.close() real:close() end
    return t
  end

  local function client(class, opts)
    opts = opts or {}
    local t = opts.transport or counting()
    opts.transport, opts.server = t, echo.url
    return assert(provision[class](opts)), t
  end

  -- Asserts a refusal that names each expected "path: message" and sent nothing.
  local function refused(t, v, err, ...)
    assert.is_nil(v)
    assert.is_table(err, "expected an error")
    assert.equals("invalid_argument", err.kind, tostring(err))
    assert.equals("InvalidArgumentError", err.class)
    assert.equals("not_applied", err.outcome)
    assert.is_false(err.request_sent)
    for _, want in ipairs({ ... }) do
      assert(err.message:find(want, 1, true), "message lacks '" .. want .. "': " .. err.message)
    end
    assert.equals(0, t.sent, "nothing may be sent")
  end

  describe("schema data", function()
    it("loads the body schema of every operation that takes a body (counts per API)", function()
      local total = 0
      for _, case in ipairs(APIS) do
        local api = require(case.module)
        local set = assert(schema.load(schema.set_name(api, case.generation)))
        local n = 0
        for _, op in ipairs(ops_of(api, case.generation)) do
          local p = body_param(op)
          if p then
            local entry = schema.operation(set, op)
            assert(entry and entry.body, case.label .. "." .. op.name .. ": no body schema")
            assert.equals(p.schema, schema.model_name(entry.body), case.label .. "." .. op.name)
            assert(schema.definition(set, p.schema), case.label .. "." .. op.name .. ": " .. p.schema .. " undefined")
            -- compiles and checks (an empty table: some bodies require fields)
            validate.value(set, entry.body, {}, p.name)
            n = n + 1
          end
        end
        assert.equals(case.bodies, n, case.label)
        print(("  %-17s %2d of %2d operations take a body; %2d body schemas loaded"):format(case.label,
          n, #ops_of(api, case.generation), n))
        total = total + n
      end
      assert.equals(22, total)
    end)

    it("accepts every request body example of the published specs (tests/contract/)", function()
      local checked = 0
      for _, case in ipairs(APIS) do
        local api = require(case.module)
        local gen = api.generations and api.generations[case.generation]
        local doc = specs.load((gen or api).spec)
        local set = assert(schema.load(schema.set_name(api, case.generation)))
        for _, op in ipairs(ops_of(api, case.generation)) do
          local p = body_param(op)
          local sop = specs.find(doc, op.method, op.path)
          local media = p and sop.raw.requestBody and sop.raw.requestBody.content[p.content_type]
          if media then
            local examples = {}
            if media.example ~= nil then examples[#examples + 1] = media.example end
            for _, e in pairs(media.examples or {}) do examples[#examples + 1] = e.value end
            for _, value in ipairs(examples) do
              -- the examples as provision reads JSON (arrays marked, null as provision.json.null)
              local v = json.decode(require("cjson").encode(value))
              local list = validate.value(set, schema.operation(set, op).body, v, p.name)
              assert(list == nil, case.label .. "." .. op.name .. ": " .. table.concat(list or {}, "; "))
              checked = checked + 1
            end
          end
        end
      end
      assert.is_true(checked >= 5, "examples checked: " .. checked)
    end)

    it("accepts every body of the contract test (tests/support/contract_args.lua)", function()
      local n = 0
      for _, case in ipairs({ { "outpost_latest", "Tenants", { generation = "latest", tenant_id = "t1" } },
                              { "agilicus", "UsersApi" }, { "document360", "TeamsApi" } }) do
        local c, t = client(case[2], case[3])
        for _, entry in ipairs(A[case[1]]) do
          for _, args in ipairs(entry.calls) do
            local job, err = c:prepare(entry.op, table.unpack(args, 1, (entry.n and entry.n[1]) or #args))
            assert(job, case[2] .. "." .. entry.op .. ": " .. tostring(err))
            n = n + 1
          end
        end
        assert.equals(0, t.sent)
      end
      assert.is_true(n > 80)
    end)
  end)

  describe("UsersApi (Agilicus: open models)", function()
    it("refuses a wrong type, an enum value and a nested array, naming each path", function()
      local api, t = client("UsersApi")
      local v, err = api:create_user({ email = "ada@example.com", first_name = 42, status = "activ",
                                       roles = { app = "viewer" }, member_of = { "engineering" } })
      refused(t, v, err,
        "user.first_name: expected a string, got an integer",
        "user.status: expected one of 'active', 'pending', 'disabled', got 'activ'",
        "user.roles.app: expected an array, got a string",
        "user.member_of[1]: expected an object, got a string")
      assert.equals(4, #err.violations)
      v, err = api:create_user({ email = "ada@example.com", member_of = { group = "engineering" } })
      refused(t, v, err, "user.member_of: expected an array, got an object")
      v, err = api:replace_user("u1", { user = { enabled = "yes", roles = { ["urn:agilicus:app:wiki"] = { "viewer", 7 } } } })
      refused(t, v, err, "user.enabled: expected a boolean, got a string",
        'user.roles["urn:agilicus:app:wiki"][2]: expected a string, got an integer')
      t:close()
    end)

    it("refuses a create_user without an email, which the service requires (the spec does not say)", function()
      local api, t = client("UsersApi")
      local v, err = api:create_user({ first_name = "Ada" })
      refused(t, v, err, "user.email: required")
      v, err = api:create_user({ first_name = "Ada", emial = "ada@example.com" })
      refused(t, v, err, "user.email: required")
      t:close()
    end)

    it("passes unknown fields of an open model, and sends what the spec allows", function()
      local api, t = client("UsersApi")
      -- User is additionalProperties: true: an unknown field goes out as given
      local got = assert(api:create_user({ email = "ada@example.com", first_name = "Ada", department = "eng",
                                           attributes = { { name = "dept", value = "eng" } } }))
      assert.truthy(got.body:find('"department":"eng"', 1, true))
      got = assert(api:create_user_metadata({ spec = { anything = { 1, 2, 3 } } }))
      assert.equals("POST", got.method)
      assert.equals(2, t.sent)
      t:close()
    end)

    it("has no closed model (additionalProperties: false) among its bodies", function()
      local set = assert(schema.load("agilicus"))
      for _, op in pairs(set.operations) do
        if op.body then
          local f = schema.flatten(set, op.body)
          assert.is_not_false(f.additional_properties)
        end
      end
    end)

    it("refuses a date-time without an offset (readOnly fields are still typed)", function()
      local api, t = client("UsersApi")
      local v, err = api:replace_user("u1", { user = { email = "a@example.com", created = "2024-05-01T10:00:00" } })
      refused(t, v, err, "user.created: not an RFC 3339 date-time")
      -- a read-back record goes out again as it came (readOnly fields included)
      assert(api:replace_user("u1", { user = { id = "u1", email = "a@example.com", created = "2024-05-01T10:00:00Z",
                                               type = "user" } }))
      assert.equals(1, t.sent)
      t:close()
    end)
  end)

  describe("TeamsApi (Document360: closed models)", function()
    local function member(extra)
      local b = { email_id = "ada@example.com", invited_by = "f11efc6f", associated_portal_role_id = "r1",
                  content_permissions = {} }
      for k, v in pairs(extra or {}) do b[k] = v end
      return { add_team_account_customer = b }
    end

    it("refuses missing required fields and a field the schema does not allow (did you mean)", function()
      local api, t = client("TeamsApi")
      local v, err = api:v2_teams_post({ add_team_account_customer = { emial_id = "ada@example.com",
                                                                       content_permissions = {} } })
      refused(t, v, err,
        "add_team_account_customer.associated_portal_role_id: required",
        "add_team_account_customer.email_id: required",
        "add_team_account_customer.invited_by: required",
        "add_team_account_customer.emial_id: unknown field (did you mean email_id?)")
      t:close()
    end)

    it("refuses a wrong type, an enum value, an e-mail and an empty required string", function()
      local api, t = client("TeamsApi")
      local v, err = api:v2_teams_post(member({ email_id = "ada at example.com", invited_by = "", is_sso_user = "yes" }))
      refused(t, v, err, "add_team_account_customer.email_id: not an e-mail address",
        "add_team_account_customer.invited_by: must not be empty",
        "add_team_account_customer.is_sso_user: expected a boolean, got a string")
      v, err = api:v2_teams_user_id_content_put("u1", { edit_content_role_customer = { content_permissions = {
        { associated_content_role_id = "r1", access_scope = { access_level = 9 } } } } })
      refused(t, v, err, "edit_content_role_customer.content_permissions[1].access_scope.access_level: "
        .. "expected one of 0, 1, 2, 3, 4, 5, 6, got 9")
      v, err = api:v2_teams_user_id_content_put("u1", { edit_content_role_customer = { content_permissions = {
        { associated_content_role_id = "r1", access_scope = { access_level = 1.5 } } } } })
      refused(t, v, err, "access_scope.access_level: expected an integer, got a number with a fraction")
      t:close()
    end)

    it("walks nested arrays: each element's required fields and closed objects", function()
      local api, t = client("TeamsApi")
      local v, err = api:v2_teams_post(member({ content_permissions = {
        { associated_content_role_id = "r1", access_scope = { access_level = 3 } },
        { access_scope = { access_level = 1, categories = { { category_id = "c1", language_code = "en", colour = "red" } },
                           languages = { "en" } } },
        { associated_content_role_id = "r2", access_scope = "all" },
      }, associated_groups = { "g1", 2 } }))
      refused(t, v, err,
        "add_team_account_customer.content_permissions[2].associated_content_role_id: required",
        "content_permissions[2].access_scope.categories[1].project_version_id: required",
        "content_permissions[2].access_scope.categories[1].colour: unknown field",
        "content_permissions[2].access_scope.languages[1]: expected an object, got a string",
        "content_permissions[3].access_scope: expected an object, got a string")
      assert.equals(6, #err.violations)   -- and associated_groups[2]
      assert.matches("; and 1 more$", err.message)
      t:close()
    end)

    it("takes null where the schema says nullable, and only there", function()
      local api, t = client("TeamsApi")
      assert(api:v2_teams_post(member({ first_name = json.null, associated_groups = json.null,
        content_permissions = { { associated_content_role_id = "r1",
                                  access_scope = { access_level = 2, project_versions = json.null } } } })))
      local v, err = api:v2_teams_post(member({ content_permissions = json.null, is_sso_user = json.null }))
      assert.is_nil(v)
      assert.matches("add_team_account_customer.content_permissions: expected an array, got null", err.message, 1, true)
      assert.matches("add_team_account_customer.is_sso_user: expected a boolean, got null", err.message, 1, true)
      assert.equals(1, t.sent)
      t:close()
    end)

    it("sends a valid body as before ([] for the arrays the table names)", function()
      local api, t = client("TeamsApi")
      local got = assert(api:v2_teams_post(member({ content_permissions = A.bodies.d360_permissions(),
                                                    associated_groups = {} })))
      assert.truthy(got.body:find('"associated_groups":[]', 1, true))
      assert.equals(1, t.sent)
      t:close()
    end)
  end)

  describe("Tenants (Outpost)", function()
    it("checks the metadata map of upsert (latest): string values, an object, null allowed", function()
      local api, t = client("Tenants", { tenant_id = "t1" })
      local v, err = api:upsert({ params = { metadata = { plan = 5, name = "Acme" } } })
      refused(t, v, err, "params.metadata.plan: expected a string, got an integer")
      v, err = api:upsert({ params = { metadata = { "pro" } } })
      refused(t, v, err, "params.metadata: expected an object, got an array")
      -- TenantUpsert is an open object; null clears the metadata; {} is an empty map
      assert(api:upsert({ params = { metadata = json.null, note = 1 } }))
      assert(api:upsert({ params = { metadata = {} } }))
      assert.equals(2, t.sent)
      t:close()
    end)

    it("has no request body on the older server (v0): nothing to check", function()
      local api, t = client("Tenants", { generation = "v0", tenant_id = "t1" })
      assert(api:upsert())
      assert.equals(1, t.sent)
      t:close()
    end)
  end)

  describe("PortalUsersApi (DocSpace)", function()
    it("has no request bodies; EmployeeType still takes its name or its old number", function()
      local api, t = client("PortalUsersApi")
      local got = assert(api:get_invitation_link("RoomAdmin"))
      assert.equals("/api/2.0/portal/users/invite/RoomAdmin", got.path)
      got = assert(api:get_invitation_link(1))
      assert.equals("/api/2.0/portal/users/invite/RoomAdmin", got.path)
      assert.equals(2, t.sent)
      local set = assert(schema.load("docspace"))
      assert.equals("UserInfoWrapper", set.operations["GET /api/2.0/portal/users/{userID}"].responses[200].ref)
      t:close()
    end)
  end)

  describe("validate = false", function()
    local BAD = { email = "ada@example.com", first_name = 42 }

    it("as a client option sends the body the server may take although its spec does not", function()
      local api, t = client("UsersApi", { validate = false })
      local got = assert(api:create_user(BAD))
      assert.truthy(got.body:find('"first_name":42', 1, true))
      assert.equals(1, t.sent)
      t:close()
    end)

    it("per call (_call.validate), either way round", function()
      local api, t = client("UsersApi")
      assert(api:create_user(BAD, { _call = { validate = false } }))
      assert.equals(1, t.sent)
      local off = client("UsersApi", { validate = false, transport = t })
      local v, err = off:create_user(BAD, { _call = { validate = true } })
      assert.is_nil(v)
      assert.equals("invalid_argument", err.kind)
      assert.equals(1, t.sent)
      t:close()
    end)

    it("is a checked option: a non-boolean is refused", function()
      local ok, err = provision.UsersApi({ validate = "no" })
      assert.is_nil(ok)
      assert.matches("client option validate must be true or false", err.message, 1, true)
      local api, t = client("UsersApi")
      local v, cerr = api:create_user({ email = "a@example.com" }, { _call = { validate = 0 } })
      assert.is_nil(v)
      assert.matches("call setting validate must be true or false", cerr.message, 1, true)
      assert.equals(0, t.sent)
      t:close()
    end)
  end)

  describe("bodies given as JSON text, in bulk, and many violations", function()
    it("decodes and checks a JSON text body (the command line passes one)", function()
      local api, t = client("UsersApi")
      local v, err = api:create_user('{"email": "a@example.com", "first_name": 42}')
      refused(t, v, err, "user.first_name: expected a string, got an integer")
      v, err = api:create_user('{"email": ')
      refused(t, v, err, "user: not valid JSON")
      local got = assert(api:create_user('{"email": "a@example.com", "member_of": []}'))
      assert.truthy(got.body:find('"member_of": []', 1, true))
      assert.equals(1, t.sent)
      t:close()
    end)

    it("fails only the invalid calls of a bulk run, each as not applied", function()
      local api, t = client("UsersApi")
      local calls = {}
      for i = 1, 6 do
        calls[i] = { "create_user", { email = "u" .. i .. "@example.com", first_name = (i % 3 == 0) and i or "U" } }
      end
      local results, summary = api:bulk(calls, { concurrency = 2 })
      assert.equals(4, summary.ok)
      assert.equals(2, summary.failed)
      for i = 1, 6 do
        if i % 3 == 0 then
          assert.is_nil(results[i][1])
          assert.equals("invalid_argument", results[i][2].kind)
          assert.equals("not_applied", results[i][2].outcome)
        else
          assert.is_table(results[i][1])
        end
      end
      assert.equals(4, t.sent)
      t:close()
    end)

    it("names the first five violations in the message and keeps twenty", function()
      local api, t = client("TeamsApi")
      local perms = {}
      for i = 1, 30 do perms[i] = { access_scope = { access_level = 1 } } end
      local v, err = api:v2_teams_user_id_content_put("u1", { edit_content_role_customer = { content_permissions = perms } })
      refused(t, v, err, "content_permissions[1].associated_content_role_id: required",
        "content_permissions[5].associated_content_role_id: required", "; and 25 more")
      assert.is_nil(err.message:find("content_permissions[6]", 1, true))
      assert.equals(20, #err.violations)
      t:close()
    end)

    it("never echoes a value in its message except an enum's", function()
      local api, t = client("TeamsApi")
      local v, err = api:v2_teams_post({ add_team_account_customer = { email_id = "S3cret-Zq9 not-an-email",
        invited_by = { "S3cret-Zq9" }, associated_portal_role_id = "r", content_permissions = {} } })
      assert.is_nil(v)
      assert.is_nil(err.message:find("S3cret", 1, true))
      assert.is_nil(tostring(err):find("S3cret", 1, true))
      assert.equals(0, t.sent)
      t:close()
    end)
  end)
end)

describe("validator (provision.validate.value)", function()
  local set = { source = "test", operations = {}, definitions = {
    Node = { type = "object", required = { "id" }, additional_properties = false,
             properties = { { name = "id", type = "string", format = "uuid" },
                            { name = "kids", type = "array", items = { ref = "Node" } } } },
  } }
  local function check(node, v) return validate.value(set, node, v, "v") end
  local function ok(node, v)
    local list = check(node, v)
    assert(list == nil, table.concat(list or {}, "; "))
  end
  local function bad(node, v, want)
    local list = check(node, v)
    assert(list, "expected a violation")
    assert(list[1]:find(want, 1, true), list[1])
  end

  it("tells integer from number (an integral float is an integer), and refuses what JSON cannot hold", function()
    ok({ type = "integer" }, 3)
    ok({ type = "integer" }, 3.0)
    bad({ type = "integer" }, 3.5, "v: expected an integer, got a number with a fraction")
    ok({ type = "number" }, 3.5)
    bad({ type = "number" }, 0 / 0, "not finite")
    bad({ type = "number" }, math.huge, "not finite")
    bad({ type = "integer", format = "int32" }, 2 ^ 31, "out of the int32 range")
    ok({ type = "integer", format = "int32" }, -2 ^ 31)
    bad({ type = "integer", minimum = 1, maximum = 100 }, 0, "must be at least 1")
    bad({ type = "integer", minimum = 1, maximum = 100 }, 101, "must be at most 100")
    bad({ type = "string" }, print, "expected a string, got a function")
  end)

  it("tells array from object; an empty table is either, a marked one only an array", function()
    ok({ type = "array" }, {})
    ok({ type = "object" }, {})
    ok({ type = "array" }, json.array({}))
    bad({ type = "object" }, json.array({}), "expected an object, got an array")
    bad({ type = "array" }, { a = 1 }, "expected an array, got an object")
    bad({ type = "array" }, { 1, 2, x = 3 }, "expected an array (a table with keys 1..2), got one with 3 keys")
    bad({ type = "array", min_items = 1 }, {}, "needs at least 1 item(s), has 0")
    bad({ type = "object", additional_properties = false }, { [1.5] = true }, "a field name must be a string")
  end)

  it("checks the formats that matter: email, uuid, date-time (with its offset), date", function()
    local email = { type = "string", format = "email" }
    for _, good in ipairs({ "ada@example.com", "a.b+c@x", "ADA@EXAMPLE.COM" }) do ok(email, good) end
    for _, e in ipairs({ "ada", "@example.com", "ada@", "a@b@c", "ada @example.com", "ada@exa\nmple.com" }) do
      bad(email, e, "not an e-mail address")
    end
    local uuid = { type = "string", format = "uuid" }
    ok(uuid, "3f2a1c9e-8b4d-4e7a-9c21-5d6e7f809a1b")
    ok(uuid, "00000000-0000-0000-0000-000000000000")
    bad(uuid, "3f2a1c9e8b4d4e7a9c215d6e7f809a1b", "not a UUID")
    bad(uuid, "3f2a1c9e-8b4d-4e7a-9c21-5d6e7f809a1g", "not a UUID")
    local dt = { type = "string", format = "date-time" }
    for _, good in ipairs({ "2024-05-01T10:00:00Z", "2024-05-01t10:00:00.123456z", "2024-02-29T23:59:60+14:00",
                            "2024-05-01T10:00:00-05:30" }) do ok(dt, good) end
    for _, e in ipairs({ "2024-05-01T10:00:00", "2024-05-01 10:00:00Z", "2023-02-29T10:00:00Z", "2024-13-01T10:00:00Z",
                         "2024-05-01T24:00:00Z", "2024-05-01T10:00:00+5:00", "2024-05-01" }) do
      bad(dt, e, "not an RFC 3339 date-time")
    end
    ok({ type = "string", format = "date" }, "2024-05-01")
    bad({ type = "string", format = "date" }, "2024-5-1", "not an RFC 3339 full-date")
    ok({ type = "string", format = "url" }, "not checked")
  end)

  it("counts string lengths in characters, not bytes", function()
    ok({ type = "string", max_length = 4 }, "café")
    bad({ type = "string", max_length = 3 }, "café", "takes at most 3 characters")
    bad({ type = "string", min_length = 5 }, "café", "needs at least 5 characters")
  end)

  it("follows refs (cycles stay finite), allOf, anyOf and oneOf", function()
    ok({ ref = "Node" }, { id = "00000000-0000-0000-0000-000000000000",
                          kids = { { id = "00000000-0000-0000-0000-000000000001", kids = {} } } })
    local list = check({ ref = "Node" }, { id = "x", kids = { { kids = { { id = 1 } } } } })
    assert.same({ "v.id: not a UUID (8-4-4-4-12 hex digits)", "v.kids[1].id: required",
                  "v.kids[1].kids[1].id: expected a string, got an integer" }, list)
    ok({ all_of = { { ref = "Node" } }, nullable = true }, json.null)
    bad({ all_of = { { type = "integer" } } }, json.null, "expected an integer, got null")
    local either = { any_of = { { type = "string" }, { type = "array", items = { type = "string" } } } }
    ok(either, "a")
    ok(either, { "a", "b" })
    bad(either, 5, "v: matches none of string, array")
    local one = { one_of = { { type = "array" }, { type = "object", additional_properties = true } } }
    ok(one, {})              -- both: an empty Lua table cannot say which
    bad({ type = "string", enum = { "a", "b" } }, "c", "expected one of 'a', 'b', got 'c'")
    ok({ types = { "string", "integer" } }, 5)
    bad({ types = { "string", "integer" } }, true, "expected one of string, integer, got a boolean")
  end)
end)
