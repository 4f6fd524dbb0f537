-- tests/spec/sandbox_spec.lua: the sandbox over real HTTP (raw LuaSocket
-- sockets via tests/support/sandbox.lua, and socket.http where it fits).
-- luacheck: max line length 210
local socket = require "socket"
local shttp = require "socket.http"
local ltn12 = require "ltn12"
local sandbox = require "support.sandbox"
local json = sandbox.json

local DS = "/docspace/api/2.0/portal"
local OP = "/outpost/api/v1"
local OPL = "/outpost-latest/api/v1"
local AG = "/agilicus"
local D3 = "/document360/v2/Teams"

local function b64url_decode(s)
  s = s:gsub("-", "+"):gsub("_", "/")
  s = s .. string.rep("=", (4 - #s % 4) % 4)
  return require("sandbox.util").b64decode(s)
end

local function merge(a, b)
  local t = {}
  for k, v in pairs(a or {}) do t[k] = v end
  for k, v in pairs(b or {}) do t[k] = v end
  return t
end

describe("provision-sandbox", function()
  local sb, H

  setup(function()
    sb = sandbox.start()
    H = sb.headers
  end)

  teardown(function()
    if sb then sb:stop() end
  end)

  before_each(function()
    sb:admin("DELETE", "/faults")
    sb:admin("POST", "/reset")
  end)

  describe("start-up", function()
    it("reports its base URLs and answers health", function()
      assert.matches("^http://127%.0%.0%.1:%d+$", sb.url)
      assert.equals(sb.url .. "/docspace", sb.docspace)
      assert.equals(sb.url .. "/outpost/api/v1", sb.outpost)
      assert.equals(sb.url .. "/outpost-latest/api/v1", sb.outpost_latest)
      local status, body = sb:admin("GET", "/health")
      assert.equals(200, status)
      assert.equals("ok", body.status)
    end)

    it("is reachable with socket.http", function()
      local out = {}
      local ok, code, headers = shttp.request {
        url = sb.docspace .. "/api/2.0/portal/userscount", headers = H.docspace_bearer,
        sink = ltn12.sink.table(out),
      }
      assert.equals(1, ok)
      assert.equals(200, code)
      assert.matches("application/json", headers["content-type"])
      assert.equals(200, json.decode(table.concat(out)).statusCode)
    end)

    it("answers 404 for paths outside the APIs", function()
      local status = sb:json("GET", "/nowhere")
      assert.equals(404, status)
    end)

    -- the helper waits for the first line with a bound, never in a blocking
    -- read: a process that stays silent is reported and killed
    it("the test helper gives up on a sandbox that never prints its URL", function()
      local bound = sandbox.start_timeout
      sandbox.start_timeout = 0.5
      local ok, err = pcall(sandbox.start, { lua = "sleep 31.5 #" })   -- "exec sleep 31.5 # <sandbox args>"
      sandbox.start_timeout = bound
      assert.is_false(ok)
      assert.matches("did not print its URL within 0.5s", err)
      local p = io.popen("pgrep -f -x 'sleep 31.5'")
      local left = p:read("a")
      p:close()
      assert.equals("", left)   -- killed, not left behind
    end)

    it("the test helper reports a sandbox that exits before listening", function()
      local ok, err = pcall(sandbox.start, { args = { "--no-such-option" } })
      assert.is_false(ok)
      assert.matches("sandbox did not start", err)
    end)
  end)

  describe("auth", function()
    it("DocSpace accepts each scheme and answers 401 in its envelope otherwise", function()
      for _, name in ipairs({ "docspace", "docspace_bearer", "docspace_api_key", "docspace_cookie", "docspace_oauth2" }) do
        local status, body = sb:json("GET", DS .. "/userscount", { headers = H[name] })
        assert.equals(200, status, name)
        assert.equals(0, body.status)
      end
      local status, body = sb:json("GET", DS .. "/userscount", { headers = { Authorization = "Basic d3Jvbmc6d3Jvbmc=" } })
      assert.equals(401, status)
      assert.equals(401, body.statusCode)
      assert.equals(1, body.status)
      assert.is_string(body.error.message)
      assert.equals(0, #body.links - 1)
      status = sb:json("GET", DS .. "/userscount", { headers = { ApiKeyBearer = "nope" } })
      assert.equals(401, status)
      status = sb:json("GET", DS .. "/userscount")
      assert.equals(401, status)
    end)

    it("DocSpace send_congratulations needs no auth", function()
      local _, user = sb:json("GET", DS .. "/users/invite/User", { headers = H.docspace })
      assert.is_string(user.response)
      -- find a user id through the log-free admin state: use the first fixture user
      local status = sb:json("POST", DS .. "/sendcongratulations?Userid=00000000-0000-0000-0000-000000000000&Key=birthday")
      assert.equals(403, status) -- unknown user: no permission
    end)

    it("Outpost answers 401 {message, data} for a wrong admin key", function()
      local status, body = sb:json("GET", OP .. "/northwind", { headers = { Authorization = "Bearer wrong" } })
      assert.equals(401, status)
      assert.is_string(body.message)
      assert.is_table(body.data)
      status, body = sb:json("GET", OPL .. "/tenants/northwind")
      assert.equals(401, status)
      assert.is_string(body.message)
    end)

    it("Agilicus answers 401 {error}", function()
      local status, body = sb:json("GET", AG .. "/users", { headers = { Authorization = "Bearer wrong" } })
      assert.equals(401, status)
      assert.is_string(body.error)
    end)

    it("Document360 answers 401 with success=false and errors[]", function()
      local status, body = sb:json("GET", D3, { headers = { api_token = "wrong" } })
      assert.equals(401, status)
      assert.is_false(body.success)
      assert.is_string(body.errors[1].description)
    end)
  end)

  describe("DocSpace", function()
    it("wraps responses and sends rate-limit headers on 200", function()
      local status, body, headers = sb:json("GET", DS .. "/userscount", { headers = H.docspace })
      assert.equals(200, status)
      assert.equals("number", type(body.response))
      assert.equals(200, body.statusCode)
      assert.is_table(body.links)
      assert.equals(1, body.count)
      assert.equals("1000", headers["x-ratelimit-limit"])
      assert.is_truthy(tonumber(headers["x-ratelimit-remaining"]))
      assert.is_truthy(tonumber(headers["x-ratelimit-reset"]))
    end)

    it("userscount reflects state", function()
      local _, before = sb:json("GET", DS .. "/userscount", { headers = H.docspace })
      local st, created = sb:admin("POST", "/docspace/users", { email = "new.person@northwind.example", firstName = "New" })
      assert.equals(201, st)
      local _, after = sb:json("GET", DS .. "/userscount", { headers = H.docspace })
      assert.equals(before.response + 1, after.response)
      local status, user = sb:json("GET", DS .. "/users/" .. created.id, { headers = H.docspace_api_key })
      assert.equals(200, status)
      assert.equals("new.person@northwind.example", user.response.email)
      assert.equals(created.id, user.response.id)
      assert.is_table(user.response.contactsList)
      sb:admin("DELETE", "/docspace/users/" .. created.id)
      local _, again = sb:json("GET", DS .. "/userscount", { headers = H.docspace })
      assert.equals(before.response, again.response)
    end)

    it("get_user_by_id answers 404 for an unknown user", function()
      local status, body = sb:json("GET", DS .. "/users/00000000-0000-0000-0000-000000000000", { headers = H.docspace })
      assert.equals(404, status)
      assert.equals(404, body.statusCode)
    end)

    it("get_invitation_link accepts EmployeeType names and numbers 0-4", function()
      for _, t in ipairs({ "All", "RoomAdmin", "Guest", "DocSpaceAdmin", "User", "0", "1", "2", "3", "4" }) do
        local status, body = sb:json("GET", DS .. "/users/invite/" .. t, { headers = H.docspace })
        assert.equals(200, status, t)
        assert.matches("^http://", body.response)
      end
      local _, a = sb:json("GET", DS .. "/users/invite/RoomAdmin", { headers = H.docspace })
      local _, b = sb:json("GET", DS .. "/users/invite/1", { headers = H.docspace })
      assert.matches("emplType=1", a.response)
      assert.matches("emplType=1", b.response)
      assert.equals(400, (sb:json("GET", DS .. "/users/invite/5", { headers = H.docspace })))
      assert.equals(400, (sb:json("GET", DS .. "/users/invite/Boss", { headers = H.docspace })))
    end)

    it("mark_gift_message_as_read and send_congratulations succeed", function()
      assert.equals(200, (sb:json("POST", DS .. "/present/mark", { headers = H.docspace })))
      local st, created = sb:admin("POST", "/docspace/users", { email = "bday@northwind.example" })
      assert.equals(201, st)
      local status, body = sb:json("POST", DS .. "/sendcongratulations?Userid=" .. created.id .. "&Key=birthday")
      assert.equals(200, status)
      assert.equals(200, body.statusCode)
    end)
  end)

  describe("Outpost", function()
    it("older generation upsert is idempotent and answers 200 both times", function()
      local s1, t1 = sb:json("PUT", OP .. "/fresh-tenant", { headers = H.outpost })
      local s2, t2 = sb:json("PUT", OP .. "/fresh-tenant", { headers = H.outpost })
      assert.equals(200, s1)
      assert.equals(200, s2)
      assert.equals("fresh-tenant", t1.id)
      assert.equals(t1.created_at, t2.created_at)
      assert.is_table(t1.topics)
      assert.equals("[]", (select(4, sb:json("GET", OP .. "/fresh-tenant", { headers = H.outpost }))):match('"topics":(%[%])'))
    end)

    it("current generation upsert answers 201 then 200 and stores metadata", function()
      local s1, t1 = sb:json("PUT", OPL .. "/tenants/t-new", { headers = H.outpost, body = { metadata = { plan = "pro" } } })
      assert.equals(201, s1)
      assert.equals("pro", t1.metadata.plan)
      local s2, t2 = sb:json("PUT", OPL .. "/tenants/t-new", { headers = H.outpost, body = { metadata = { plan = "team" } } })
      assert.equals(200, s2)
      assert.equals("team", t2.metadata.plan)
      -- both generations share one store
      local s3, t3 = sb:json("GET", OP .. "/t-new", { headers = H.outpost })
      assert.equals(200, s3)
      assert.equals("t-new", t3.id)
      local s4, e4 = sb:json("PUT", OPL .. "/tenants/t-new", { headers = H.outpost, body = { metadata = { n = 1 } } })
      assert.equals(422, s4)
      assert.is_string(e4.message)
    end)

    it("get_token issues an HS256 JWT accepted for that tenant only", function()
      local status, body = sb:json("GET", OP .. "/northwind/token", { headers = H.outpost })
      assert.equals(200, status)
      local h64, p64 = body.token:match("^([^.]+)%.([^.]+)%.[^.]+$")
      local header = json.decode(b64url_decode(h64))
      local payload = json.decode(b64url_decode(p64))
      assert.equals("HS256", header.alg)
      assert.equals("northwind", payload.sub)
      assert.equals(86400, payload.exp - payload.iat)
      local jwt = { Authorization = "Bearer " .. body.token }
      assert.equals(200, (sb:json("GET", OP .. "/northwind", { headers = jwt })))
      assert.equals(200, (sb:json("GET", OPL .. "/tenants/northwind", { headers = jwt })))
      assert.equals(401, (sb:json("GET", OP .. "/northwind-labs", { headers = jwt })))
      -- admin-only operations refuse the tenant JWT
      assert.equals(401, (sb:json("GET", OP .. "/northwind/token", { headers = jwt })))
      -- JWT-context operations infer the tenant
      local s5, tok = sb:json("GET", OP .. "/token", { headers = jwt })
      assert.equals(200, s5)
      assert.is_string(tok.token)
      local s6, portal = sb:json("GET", OP .. "/portal?theme=dark", { headers = jwt })
      assert.equals(200, s6)
      assert.matches("theme=dark", portal.redirect_url)
      -- a tenant JWT lists only its tenant
      local s7, list = sb:json("GET", OPL .. "/tenants", { headers = jwt })
      assert.equals(200, s7)
      assert.equals(1, #list.models)
      -- a token signed with another secret is refused
      local forged = h64 .. "." .. p64 .. ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
      assert.equals(401, (sb:json("GET", OP .. "/northwind", { headers = { Authorization = "Bearer " .. forged } })))
    end)

    it("current generation token and portal carry tenant_id", function()
      local _, tok = sb:json("GET", OPL .. "/tenants/northwind/token", { headers = H.outpost })
      assert.equals("northwind", tok.tenant_id)
      local _, portal = sb:json("GET", OPL .. "/tenants/northwind/portal", { headers = H.outpost })
      assert.equals("northwind", portal.tenant_id)
      assert.matches("token=", portal.redirect_url)
    end)

    it("delete removes the tenant", function()
      local status, body = sb:json("DELETE", OP .. "/acme-partner", { headers = H.outpost })
      assert.equals(200, status)
      assert.is_true(body.success)
      assert.equals(404, (sb:json("GET", OPL .. "/tenants/acme-partner", { headers = H.outpost })))
      assert.equals(404, (sb:json("DELETE", OP .. "/acme-partner", { headers = H.outpost })))
    end)

    it("lists tenants with next/prev cursors", function()
      local seen, cursor, pages = {}, nil, 0
      repeat
        local q = "?limit=1" .. (cursor and ("&next=" .. cursor) or "")
        local status, page = sb:json("GET", OPL .. "/tenants" .. q, { headers = H.outpost })
        assert.equals(200, status)
        assert.equals(3, page.count)
        assert.equals(1, #page.models)
        seen[#seen + 1] = page.models[1].id
        cursor = page.pagination.next ~= json.null and page.pagination.next or nil
        pages = pages + 1
      until not cursor or pages > 5
      assert.same({ "acme-partner", "northwind-labs", "northwind" }, seen)
      -- back one page from the last
      local _, last = sb:json("GET", OPL .. "/tenants?limit=1&dir=asc", { headers = H.outpost })
      assert.equals("northwind", last.models[1].id)
      assert.equals(json.null, last.pagination.prev)
      local _, second = sb:json("GET", OPL .. "/tenants?limit=1&dir=asc&next=" .. last.pagination.next, { headers = H.outpost })
      assert.equals("northwind-labs", second.models[1].id)
      local _, back = sb:json("GET", OPL .. "/tenants?limit=1&dir=asc&prev=" .. second.pagination.prev, { headers = H.outpost })
      assert.equals("northwind", back.models[1].id)
      local _, filtered = sb:json("GET", OPL .. "/tenants?id[]=northwind&id[]=acme-partner", { headers = H.outpost })
      assert.equals(2, filtered.count)
      assert.equals(400, (sb:json("GET", OPL .. "/tenants?limit=500", { headers = H.outpost })))
    end)
  end)

  describe("Agilicus", function()
    local ORG
    before_each(function()
      local _, list = sb:json("GET", AG .. "/users?limit=1&email=amelia.hart@northwind.example", { headers = H.agilicus })
      ORG = list.users[1].org_id
    end)

    it("create_user answers 201 with an id, 409 for an existing email in the org", function()
      local user = { email = "new.hire@northwind.example", first_name = "New", last_name = "Hire", org_id = ORG,
                     custom_field = "kept" }
      local status, body = sb:json("POST", AG .. "/users", { headers = H.agilicus, body = user })
      assert.equals(201, status)
      assert.is_string(body.id)
      assert.equals("kept", body.custom_field)
      assert.equals("user", body.type)
      local s2, e2 = sb:json("POST", AG .. "/users", { headers = H.agilicus, body = merge(user, { email = "New.Hire@northwind.example" }) })
      assert.equals(409, s2)
      assert.is_string(e2.error)
      local s3 = sb:json("POST", AG .. "/users", { headers = H.agilicus, body = merge(user, { org_id = "other-org" }) })
      assert.equals(201, s3)
      local s4, got = sb:json("GET", AG .. "/users/" .. body.id, { headers = H.agilicus })
      assert.equals(200, s4)
      assert.equals("new.hire@northwind.example", got.email)
    end)

    it("list_users pages by email keyset, forwards and backwards", function()
      local _, all = sb:json("GET", AG .. "/users?org_id=" .. ORG, { headers = H.agilicus })
      assert.equals(500, all.limit)
      assert.is_true(#all.users > 20)
      local emails, prev = {}, ""
      for _ = 1, 20 do
        local status, page = sb:json("GET", AG .. "/users?limit=7&org_id=" .. ORG .. "&previous_email=" .. prev, { headers = H.agilicus })
        assert.equals(200, status)
        assert.equals(7, page.limit)
        for _, u in ipairs(page.users) do emails[#emails + 1] = u.email end
        if #page.users < 7 then break end
        prev = page.users[#page.users].email
      end
      assert.equals(#all.users, #emails)
      for i = 2, #emails do assert.is_true(emails[i - 1] < emails[i]) end
      local _, back = sb:json("GET", AG .. "/users?limit=3&search_direction=backwards&org_id=" .. ORG
        .. "&previous_email=" .. emails[10], { headers = H.agilicus })
      assert.same({ emails[7], emails[8], emails[9] }, { back.users[1].email, back.users[2].email, back.users[3].email })
      local _, empty = sb:json("GET", AG .. "/users?email=nobody@nowhere.example", { headers = H.agilicus })
      assert.equals("[]", json.encode(empty.users) == "[]" and "[]" or json.encode(empty.users))
    end)

    it("replace_user (PUT) and delete_user work and 404 afterwards", function()
      local _, u = sb:json("POST", AG .. "/users", { headers = H.agilicus, body = { email = "temp@northwind.example", org_id = ORG } })
      local s1, r = sb:json("PUT", AG .. "/users/" .. u.id, { headers = H.agilicus,
        body = { email = "temp@northwind.example", org_id = ORG, first_name = "Temp" } })
      assert.equals(200, s1)
      assert.equals("Temp", r.first_name)
      assert.equals(u.created, r.created)
      assert.equals(404, (sb:json("DELETE", AG .. "/v1/orgs/wrong-org/users/" .. u.id, { headers = H.agilicus })))
      assert.equals(204, (sb:request("DELETE", AG .. "/v1/orgs/" .. ORG .. "/users/" .. u.id, { headers = H.agilicus })))
      local s3, e3 = sb:json("GET", AG .. "/users/" .. u.id, { headers = H.agilicus })
      assert.equals(404, s3)
      assert.is_string(e3.error)
    end)

    it("user requests: POST updates, PUT replaces; orgs and roles render", function()
      local _, u = sb:json("GET", AG .. "/users?limit=1&email=rahul.menon@northwind.example", { headers = H.agilicus })
      local uid = u.users[1].id
      local _, orgs = sb:json("GET", AG .. "/users/" .. uid .. "/orgs", { headers = H.agilicus })
      assert.equals(2, #orgs.orgs)
      local _, roles = sb:json("GET", AG .. "/users/" .. uid .. "/render_roles", { headers = H.agilicus })
      assert.same({ "owner" }, roles.roles.admin)
      local s1, req = sb:json("POST", AG .. "/v1/user_requests", { headers = H.agilicus,
        body = { spec = { user_id = uid, org_id = ORG, request_type = "application_access", requested_resource = "wiki" } } })
      assert.equals(201, s1)
      local id = req.metadata.id
      local s2, upd = sb:json("POST", AG .. "/v1/user_requests/" .. id, { headers = H.agilicus, body = { spec = { state = "approved" } } })
      assert.equals(200, s2)
      assert.equals("approved", upd.spec.state)
      assert.equals("wiki", upd.spec.requested_resource)
      local s3, rep = sb:json("PUT", AG .. "/v1/user_requests/" .. id, { headers = H.agilicus, body = { spec = { user_id = uid, org_id = ORG, request_type = "application_access", state = "declined" } } })
      assert.equals(200, s3)
      assert.is_nil(rep.spec.requested_resource)
      local _, list = sb:json("GET", AG .. "/v1/user_requests?user_id=" .. uid, { headers = H.agilicus })
      assert.equals(1, #list.user_requests)
      assert.equals(204, (sb:request("DELETE", AG .. "/v1/user_requests/" .. id, { headers = H.agilicus })))
      assert.equals(404, (sb:json("GET", AG .. "/v1/user_requests/" .. id, { headers = H.agilicus })))
      local _, fs = sb:json("GET", AG .. "/v1/user_file_share_access_info?org_id=" .. ORG .. "&user_id=" .. uid, { headers = H.agilicus })
      assert.equals(500, fs.limit)
      assert.is_table(fs.user_file_share_access_info)
    end)
  end)

  describe("Document360", function()
    local function role_ids()
      local _, roles = sb:json("GET", D3 .. "/roles", { headers = H.document360 })
      local portal, content
      for _, r in ipairs(roles.result) do
        if r.role_type == 0 and r.title == "Editor" then portal = r.id end
        if r.role_type == 1 and not content then content = r.id end
      end
      return portal, content
    end

    local function member(email, portal, content, extra)
      return merge({
        email_id = email, first_name = "Test", last_name = "Member", invited_by = "amelia.hart@northwind.example",
        associated_portal_role_id = portal,
        content_permissions = { { associated_content_role_id = content, access_scope = { access_level = 0 } } },
      }, extra)
    end

    it("adds a team member; a duplicate email is a 400 'Existing team member'", function()
      local portal, content = role_ids()
      local status, body = sb:json("POST", D3, { headers = H.document360, body = member("writer@northwind.example", portal, content) })
      assert.equals(200, status)
      assert.is_true(body.success)
      assert.is_string(body.result.id)
      local s2, dup = sb:json("POST", D3, { headers = H.document360, body = member("Writer@northwind.example", portal, content) })
      assert.equals(400, s2)
      assert.is_false(dup.success)
      assert.equals("Existing team member", dup.errors[1].description)
      local s3, got = sb:json("GET", D3 .. "/" .. body.result.id, { headers = H.document360 })
      assert.equals(200, s3)
      assert.equals("Editor", got.result.portal_role.role_name)
      assert.equals(1, #got.result.content_roles)
    end)

    it("email-exists reflects state", function()
      local portal, content = role_ids()
      local _, before = sb:json("GET", D3 .. "/email-exists?emailId=late@northwind.example", { headers = H.document360 })
      assert.is_false(before.data.exists)
      local _, added = sb:json("POST", D3, { headers = H.document360, body = member("late@northwind.example", portal, content) })
      local _, after = sb:json("GET", D3 .. "/email-exists?emailId=late@northwind.example&isAnSsoUser=false", { headers = H.document360 })
      assert.is_true(after.data.exists)
      assert.equals(added.result.id, after.data.user_id)
      assert.equals(400, (sb:json("GET", D3 .. "/email-exists", { headers = H.document360 })))
    end)

    it("pages with skip/take", function()
      local _, all = sb:json("GET", D3 .. "?take=100", { headers = H.document360 })
      local got = {}
      for skip = 0, #all.result, 5 do
        local _, page = sb:json("GET", D3 .. "?skip=" .. skip .. "&take=5", { headers = H.document360 })
        for _, u in ipairs(page.result) do got[#got + 1] = u.user_id end
      end
      assert.equals(#all.result, #got)
      local _, def = sb:json("GET", D3, { headers = H.document360 })
      assert.is_true(#def.result <= 20)
      local _, past = sb:json("GET", D3 .. "?skip=1000", { headers = H.document360 })
      assert.equals(0, #past.result)
    end)

    it("updates portal role, groups and content; deletes", function()
      local _, all = sb:json("GET", D3 .. "?take=1", { headers = H.document360 })
      local id = all.result[1].user_id
      local _, roles = sb:json("GET", D3 .. "/roles", { headers = H.document360 })
      local reader
      for _, r in ipairs(roles.result) do if r.title == "Reader" then reader = r.id end end
      local s1, b1 = sb:json("PUT", D3 .. "/" .. id .. "/portal", { headers = H.document360, body = { associated_portal_role_id = reader } })
      assert.equals(200, s1)
      assert.is_true(b1.result)
      local _, groups = sb:json("GET", D3 .. "/groups", { headers = H.document360 })
      local s2 = sb:json("PUT", D3 .. "/" .. id .. "/groups", { headers = H.document360,
        body = { associated_groups = { groups.result[1].group_id } } })
      assert.equals(200, s2)
      local _, got = sb:json("GET", D3 .. "/" .. id, { headers = H.document360 })
      assert.equals("Reader", got.result.portal_role.role_name)
      assert.equals(groups.result[1].group_id, got.result.associated_groups[1].id)
      local s3 = sb:json("DELETE", D3 .. "/" .. id, { headers = H.document360 })
      assert.equals(200, s3)
      local s4, gone = sb:json("GET", D3 .. "/" .. id, { headers = H.document360 })
      assert.equals(400, s4)
      assert.is_false(gone.success)
    end)

    it("keeps the documented oddity: a 400 with success=true and errors[]", function()
      local portal, content = role_ids()
      local status, body = sb:json("POST", D3, { headers = H.document360,
        body = member("grouped@northwind.example", portal, content, { associated_groups = { "no-such-group" } }) })
      assert.equals(400, status)
      assert.is_true(body.success)
      assert.is_true(#body.errors > 0)
    end)
  end)

  describe("rate limiting", function()
    after_each(function()
      sb:admin("PUT", "/ratelimit", { limit = 1000, window = 60 })
    end)

    it("answers 429 with Retry-After past the per-credential budget", function()
      assert.equals(200, (sb:admin("PUT", "/ratelimit", { limit = 3, window = 60 })))
      for i = 1, 3 do
        local status, _, headers = sb:json("GET", DS .. "/userscount", { headers = H.docspace })
        assert.equals(200, status)
        assert.equals(tostring(3 - i), headers["x-ratelimit-remaining"])
      end
      local status, body, headers = sb:json("GET", DS .. "/userscount", { headers = H.docspace })
      assert.equals(429, status)
      assert.equals(429, body.statusCode)
      local ra = tonumber(headers["retry-after"])
      assert.is_truthy(ra)
      assert.is_true(ra >= 1 and ra <= 60)
      -- another credential has its own budget
      assert.equals(200, (sb:json("GET", DS .. "/userscount", { headers = H.docspace_api_key })))
      local s2, b2, h2 = sb:json("GET", AG .. "/users?limit=1", { headers = H.agilicus })
      assert.equals(200, s2)
      for _ = 1, 3 do s2, b2, h2 = sb:json("GET", AG .. "/users?limit=1", { headers = H.agilicus }) end
      assert.equals(429, s2)
      assert.is_string(b2.error)
      assert.is_truthy(h2["retry-after"])
    end)

    it("can be set with --rate at start", function()
      local other = sandbox.start({ rate = "2/30" })
      local ok, err = pcall(function()
        local h = other.headers.document360
        assert.equals(200, (other:json("GET", D3, { headers = h })))
        assert.equals(200, (other:json("GET", D3, { headers = h })))
        local status, body, headers = other:json("GET", D3, { headers = h })
        assert.equals(429, status)
        assert.is_false(body.success)
        assert.is_truthy(tonumber(headers["retry-after"]))
      end)
      other:stop()
      assert(ok, err)
    end)
  end)

  describe("fault injection", function()
    local function fault(rule)
      local status, body = sb:admin("POST", "/faults", rule)
      assert.equals(201, status, body and body.error)
    end

    it("500 comes in the API's error shape", function()
      fault({ path = AG .. "/users", action = "500", times = 1 })
      local status, body = sb:json("GET", AG .. "/users", { headers = H.agilicus })
      assert.equals(500, status)
      assert.is_string(body.error)
      assert.equals(200, (sb:json("GET", AG .. "/users?limit=1", { headers = H.agilicus })))
    end)

    it("502 and 503 come with an HTML body", function()
      fault({ method = "GET", path = DS, sequence = { "502", "503" } })
      for _, want in ipairs({ 502, 503 }) do
        local status, body, headers = sb:request("GET", DS .. "/userscount", { headers = H.docspace })
        assert.equals(want, status)
        assert.matches("text/html", headers["content-type"])
        assert.matches("<html>", body)
      end
      assert.equals(200, (sb:request("GET", DS .. "/userscount", { headers = H.docspace })))
    end)

    it("429 carries Retry-After", function()
      fault({ pattern = "^/outpost", sequence = { "429" }, retry_after = 7 })
      local status, body, headers = sb:json("GET", OP .. "/northwind", { headers = H.outpost })
      assert.equals(429, status)
      assert.equals("7", headers["retry-after"])
      assert.is_string(body.message)
    end)

    it("a scripted sequence makes retries deterministic", function()
      fault({ method = "PUT", pattern = "^/outpost%-latest/api/v1/tenants/[^/]+$", sequence = { "503", "503", "pass" } })
      local got = {}
      for i = 1, 4 do got[i] = (sb:request("PUT", OPL .. "/tenants/retry-me", { headers = H.outpost })) end
      assert.same({ 503, 503, 201, 200 }, got)
      local _, rules = sb:admin("GET", "/faults")
      assert.equals(3, rules.rules[1].hits)
    end)

    it("adds latency", function()
      fault({ path = D3, sequence = { "delay:250" } })
      local t0 = socket.gettime()
      local status = sb:json("GET", D3 .. "/roles", { headers = H.document360 })
      local dt = socket.gettime() - t0
      assert.equals(200, status)
      assert.is_true(dt >= 0.2, "took " .. dt)
    end)

    it("closes the connection before the response", function()
      fault({ path = AG .. "/users", sequence = { "close" } })
      local status, err = sb:request("GET", AG .. "/users", { headers = H.agilicus })
      assert.is_nil(status)
      assert.equals("closed", err)
    end)

    it("closes the connection in the middle of the response", function()
      fault({ path = AG .. "/users", sequence = { "close_mid" } })
      local status, err = sb:request("GET", AG .. "/users", { headers = H.agilicus })
      assert.is_nil(status)
      assert.is_truthy(err == "truncated" or err == "closed")
    end)

    it("truncates the body below its Content-Length", function()
      fault({ path = AG .. "/users", sequence = { "truncate" } })
      local status, err, partial = sb:request("GET", AG .. "/users?limit=5", { headers = H.agilicus })
      assert.is_nil(status)
      assert.equals("truncated", err)
      assert.equals(200, partial.status)
      assert.is_true(#partial.body < tonumber(partial.headers["content-length"]))
    end)

    it("probability 1 always fires, probability 0 never", function()
      fault({ path = D3 .. "/groups", probability = 0, action = "500" })
      fault({ path = D3 .. "/roles", probability = 1, action = "500" })
      for _ = 1, 3 do
        assert.equals(200, (sb:json("GET", D3 .. "/groups", { headers = H.document360 })))
        assert.equals(500, (sb:json("GET", D3 .. "/roles", { headers = H.document360 })))
      end
      assert.equals(200, (sb:admin("DELETE", "/faults")))
      assert.equals(200, (sb:json("GET", D3 .. "/roles", { headers = H.document360 })))
    end)

    it("rejects a malformed rule", function()
      local status, body = sb:admin("POST", "/faults", { sequence = { "explode" } })
      assert.equals(400, status)
      assert.is_string(body.error)
    end)

    it("reads rules from --faults FILE at start", function()
      local path = os.tmpname()
      local f = assert(io.open(path, "w"))
      f:write('return { { method = "GET", path = "/agilicus/users", sequence = { "503", "pass" } } }\n')
      f:close()
      local other = sandbox.start({ faults = path })
      local ok, err = pcall(function()
        local h = other.headers.agilicus
        assert.equals(503, (other:request("GET", AG .. "/users", { headers = h })))
        assert.equals(200, (other:request("GET", AG .. "/users", { headers = h })))
      end)
      other:stop()
      os.remove(path)
      assert(ok, err)
    end)
  end)

  describe("connections", function()
    it("serves several requests on one kept-alive connection", function()
      local c = sb:connect()
      local _, port1 = c.sock:getsockname()
      for _ = 1, 5 do
        local status, _, headers = c:request("GET", DS .. "/userscount", { headers = H.docspace })
        assert.equals(200, status)
        assert.equals("keep-alive", headers.connection)
      end
      local _, port2 = c.sock:getsockname()
      assert.equals(port1, port2)
      local status, _, headers = c:request("GET", D3 .. "/roles", { headers = H.document360, close = true })
      assert.equals(200, status)
      assert.equals("close", headers.connection)
      c:close()
    end)

    it("answers pipelined requests in order", function()
      local c = sb:connect()
      local req = "GET /_sandbox/health HTTP/1.1\r\nHost: x\r\n\r\n"
      c.sock:send(req .. req .. req)
      for _ = 1, 3 do assert.equals(200, (sandbox.read_response(c.sock, "GET"))) end
      c:close()
    end)

    it("serves 64 concurrent connections", function()
      local conns = {}
      for i = 1, 64 do
        conns[i] = sb:connect()
      end
      local raw = "GET " .. AG .. "/users?limit=2 HTTP/1.1\r\nHost: x\r\nAuthorization: " .. H.agilicus.Authorization .. "\r\n\r\n"
      sb:admin("PUT", "/ratelimit", { limit = 1000, window = 60 })
      for i = 1, 64 do assert(conns[i].sock:send(raw)) end
      local ok = 0
      for i = 1, 64 do
        local status = sandbox.read_response(conns[i].sock, "GET")
        if status == 200 then ok = ok + 1 end
        conns[i]:close()
      end
      assert.equals(64, ok)
    end)

    it("survives clients that vanish mid-request or send garbage", function()
      local c1 = sb:connect()
      c1.sock:send("GET /agilicus/users HTTP/1.1\r\nHost: x\r\nAuthor")
      c1:close()
      local c2 = sb:connect()
      c2.sock:send("POST /agilicus/users HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"email\":")
      c2:close()
      local c3 = sb:connect()
      c3.sock:send("\0\1\2 garbage garbage\r\n\r\n")
      local status = sandbox.read_response(c3.sock, "GET")
      assert.equals(400, status)
      c3:close()
      local c4 = sb:connect()
      c4.sock:send("GET /agilicus/users HTTP/1.1\r\nX: " .. string.rep("a", 70000) .. "\r\n\r\n")
      assert.equals(431, (sandbox.read_response(c4.sock, "GET")))
      c4:close()
      -- the server still answers
      assert.equals(200, (sb:admin("GET", "/health")))
      assert.equals(200, (sb:json("GET", AG .. "/users?limit=1", { headers = H.agilicus })))
    end)

    it("refuses a body over the size limit with 413", function()
      local c = sb:connect()
      c.sock:send("POST /agilicus/users HTTP/1.1\r\nHost: x\r\nContent-Length: 9000000\r\n\r\n")
      assert.equals(413, (sandbox.read_response(c.sock, "POST")))
      c:close()
    end)

    it("accepts a chunked request body", function()
      local c = sb:connect()
      local body = json.encode({ email = "chunky@northwind.example", org_id = "chunk-org" })
      local head = "POST /agilicus/users HTTP/1.1\r\nHost: x\r\nAuthorization: " .. H.agilicus.Authorization
        .. "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
      local a, b = body:sub(1, 10), body:sub(11)
      c.sock:send(head .. string.format("%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n", #a, a, #b, b))
      local status, resp = sandbox.read_response(c.sock, "POST")
      assert.equals(201, status)
      assert.equals("chunky@northwind.example", json.decode(resp).email)
      c:close()
    end)
  end)

  describe("request log and admin", function()
    it("records method, path, status, api and credential names, never secrets", function()
      sb:admin("DELETE", "/log")
      sb:json("GET", DS .. "/userscount", { headers = H.docspace })
      sb:json("GET", DS .. "/userscount", { headers = H.docspace_cookie })
      sb:json("GET", OP .. "/northwind", { headers = H.outpost })
      sb:json("GET", AG .. "/users?limit=1", { headers = H.agilicus })
      sb:json("GET", D3 .. "/roles", { headers = { api_token = "wrong-token-value" } })
      local status, log, _, raw = sb:admin("GET", "/log")
      assert.equals(200, status)
      assert.equals(5, #log.entries)
      local e = log.entries[1]
      assert.equals("GET", e.method)
      assert.equals("/docspace/api/2.0/portal/userscount", e.path)
      assert.equals(200, e.status)
      assert.equals("docspace", e.api)
      assert.equals("docspace:basic", e.credential)
      assert.equals("get_portal_users_count", e.operation)
      assert.equals("docspace:asc_auth_key", log.entries[2].credential)
      assert.equals("outpost:admin_api_key", log.entries[3].credential)
      assert.equals("agilicus:token", log.entries[4].credential)
      assert.equals(401, log.entries[5].status)
      assert.equals("invalid", log.entries[5].credential)
      local c = sb.credentials
      for _, secret in ipairs({ c.docspace.password, c.docspace.bearer_token, c.docspace.api_key, c.docspace.auth_cookie,
                                c.docspace.oauth2_token, c.outpost.admin_api_key, c.outpost.jwt_secret,
                                c.agilicus.token, c.document360.api_token, "wrong-token-value",
                                H.docspace.Authorization:match("Basic (.*)") }) do
        assert.is_nil(raw:find(secret, 1, true), "secret found in log")
      end
      assert.equals(200, (sb:admin("DELETE", "/log")))
      local _, empty = sb:admin("GET", "/log")
      assert.equals(0, #empty.entries)
    end)

    it("reset restores the fixture", function()
      sb:json("POST", AG .. "/users", { headers = H.agilicus, body = { email = "ephemeral@northwind.example", org_id = "x" } })
      local _, found = sb:json("GET", AG .. "/users?email=ephemeral@northwind.example", { headers = H.agilicus })
      assert.equals(1, #found.users)
      assert.equals(200, (sb:admin("POST", "/reset")))
      local _, gone = sb:json("GET", AG .. "/users?email=ephemeral@northwind.example", { headers = H.agilicus })
      assert.equals(0, #gone.users)
    end)

    it("stops on POST /_sandbox/shutdown", function()
      local other = sandbox.start()
      assert.equals(200, (other:admin("POST", "/shutdown")))
      local down = false
      for _ = 1, 50 do
        local c = require("socket").tcp()
        c:settimeout(0.2)
        if not c:connect(other.host, other.port) then down = true; c:close(); break end
        c:close()
        socket.sleep(0.05)
      end
      other:stop()
      assert.is_true(down)
    end)
  end)
end)
