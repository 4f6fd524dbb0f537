-- luacheck: std lua54+busted
-- Proves tests/support/prism.lua: Prism mock and proxy servers start, answer,
-- reject requests that break the spec in the documented ways, and
-- prism.violations() reports what Prism logged. The document360 --errors mock
-- and the five of the last case are the shared contract mocks
-- (tests/support/contract_mocks.lua), also used by contract_spec.
-- Needs node_modules/.bin/prism (scripts/prism-install.sh): without it every
-- test here fails with the reason.
local prism = require 'support.prism'
local contract_mocks = require 'support.contract_mocks'
local once = require 'support.once'
local http = require 'socket.http'
local ltn12 = require 'ltn12'
local cjson = require 'cjson'

local D360 = prism.spec('document360')

local function request(url, headers, method)
  local chunks = {}
  local _, status, h = http.request {
    url = url, method = method or 'GET', headers = headers or {},
    sink = ltn12.sink.table(chunks),
  }
  return status, h or {}, table.concat(chunks)
end

local function has(list, needle)
  for _, s in ipairs(list) do
    if s:find(needle, 1, true) then return true end
  end
  return false
end

describe('support.prism mock (document360, --errors)', function()
  local srv
  before_each(once(function() srv = contract_mocks.get('document360') end))

  it('returns a handle on a running node process', function()
    assert.matches('^http://127%.0%.0%.1:%d+$', srv.url)
    assert.equals('http://127.0.0.1:' .. srv.port, srv.url)
    assert.is_true(srv.alive())
    local comm = io.open('/proc/' .. srv.pid .. '/comm'):read('l')
    assert.equals('node', comm)
    assert.is_number(srv.startup)   -- seconds it took to answer; a figure, not a limit
    assert.same({}, prism.violations(srv, 0, srv.ready_offset))   -- it started cleanly
  end)

  it('answers a valid request with 200 and the JSON example', function()
    local since = srv.mark()
    local status, h, body = request(srv.url .. '/v2/Teams?skip=0&take=5', { api_token = 'tok' })
    assert.equals(200, status)
    assert.matches('^application/json', h['content-type'])
    assert.is_nil(h['sl-violations'])
    local doc = cjson.decode(body)
    assert.is_true(doc.success)
    assert.equals('Peter', doc.result[1].first_name)
    assert.same({}, prism.violations(srv, since))
  end)

  it('rejects a request without the api_token header: 401 problem+json', function()
    local since = srv.mark()
    local status, h, body = request(srv.url .. '/v2/Teams')
    assert.equals(401, status)
    assert.equals('application/problem+json', h['content-type'])
    local doc = cjson.decode(body)
    assert.equals('https://stoplight.io/prism/errors#UNAUTHORIZED', doc.type)
    local v = prism.violations(srv, since)
    assert.is_true(has(v, 'Invalid security scheme used'), table.concat(v, '\n'))
    assert.is_true(has(v, 'GET /v2/Teams: UNAUTHORIZED'), table.concat(v, '\n'))
  end)

  it('rejects a query parameter of the wrong type: 422 problem+json', function()
    local since = srv.mark()
    local status, h, body = request(srv.url .. '/v2/Teams?skip=abc', { api_token = 'tok' })
    assert.equals(422, status)
    assert.equals('application/problem+json', h['content-type'])
    local doc = cjson.decode(body)
    assert.equals('https://stoplight.io/prism/errors#UNPROCESSABLE_ENTITY', doc.type)
    assert.same({ 'query', 'skip' }, doc.validation[1].location)
    local v = prism.violations(srv, since)
    assert.is_true(has(v, 'Request query parameter skip must be integer'), table.concat(v, '\n'))
    assert.is_true(has(v, 'GET /v2/Teams: UNPROCESSABLE_ENTITY'), table.concat(v, '\n'))
  end)

  it('answers with the spec\'s 400 and an sl-violations header when the operation defines one', function()
    local since = srv.mark()
    local status, h, body = request(srv.url .. '/v2/Teams/email-exists?emailId=not-an-email',
      { api_token = 'tok' })
    assert.equals(400, status)
    assert.is_string(h['sl-violations'])
    local sl = cjson.decode(h['sl-violations'])
    assert.same({ 'request', 'query', 'emailid' }, sl[1].location)
    assert.is_table(cjson.decode(body))
    local v = prism.violations(srv, since)
    assert.same({ 'request.query.emailid Request query parameter emailid must match format "email"' }, v)
  end)

  it('honours Prefer: code=', function()
    local since = srv.mark()
    -- 400 is defined for GET /v2/Teams/{userId}: its example comes back.
    local status, _, body = request(srv.url .. '/v2/Teams/u1', { api_token = 'tok', Prefer = 'code=400' })
    assert.equals(400, status)
    assert.equals('The user id does not exist.', cjson.decode(body).errors[1].description)
    -- document360 defines no 404 anywhere: Prism answers 404 #NOT_FOUND itself.
    local status2, h2, body2 = request(srv.url .. '/v2/Teams', { api_token = 'tok', Prefer = 'code=404' })
    assert.equals(404, status2)
    assert.equals('application/problem+json', h2['content-type'])
    assert.equals('https://stoplight.io/prism/errors#NOT_FOUND', cjson.decode(body2).type)
    -- neither is a violation of the spec
    assert.same({}, prism.violations(srv, since))
  end)

  it('reports a path that is not in the spec', function()
    local since = srv.mark()
    local status = request(srv.url .. '/v2/NoSuchThing', { api_token = 'tok' })
    assert.equals(404, status)
    assert.same({ 'GET /v2/NoSuchThing: NO_PATH_MATCHED_ERROR: Route not resolved, no path matched' },
      prism.violations(srv, since))
  end)

  it('reports every violation since start when no mark is given', function()
    local v = prism.violations(srv)
    assert.is_true(has(v, 'skip must be integer'))
    assert.is_true(has(v, 'Invalid security scheme used'))
  end)

  it('stop() kills the node process and waits for it', function()
    local other = prism.mock(D360, { transform = prism.fixups.document360 })
    assert.is_true(other.alive())
    assert.is_true(other.stop())
    assert.is_false(prism.alive(other.pid))
    local status = request(other.url .. '/v2/Teams', { api_token = 'tok' })
    assert.equals('connection refused', status)
    assert.is_true(other.stop())  -- idempotent
  end)
end)

describe('support.prism on the document360 fixture, served unmodified', function()
  it('shows the date-time defect that prism.fixups.document360 works around', function()
    local raw = prism.mock(D360)   -- no --errors: answer + sl-violations header
    local status, h = request(raw.url .. '/v2/Teams', { api_token = 'tok' })
    local v = prism.violations(raw)
    raw.stop()
    assert.equals(200, status)
    assert.matches('last_login_at must match format \\"date%-time\\"', h['sl-violations'])
    assert.same({ 'response.body.result.0.last_login_at Response body property ' ..
      'result.0.last_login_at must match format "date-time"' }, v)
  end)

  it('fails loudly on a document Prism cannot load', function()
    local bad = os.tmpname()
    local f = io.open(bad, 'w')
    f:write('{"openapi":"3.0.0","info":{"title":"x","version":"1"},"paths":{"/a":{"get":{"responses":',
      '{"200":{"description":"ok","content":{"application/json":{"schema":{"$ref":"#/components/schemas/Nope"}}}}}}}}}')
    f:close()
    local ok, err = pcall(prism.mock, bad)
    os.remove(bad)
    assert.is_false(ok)
    assert.matches('exited before answering', err)
    assert.matches('does not exist', err)
  end)
end)

-- A tiny upstream: LuaSocket in a child lua5.4 process, canned answers by path.
local UPSTREAM = [[
local socket = require 'socket'
local s = assert(socket.bind('127.0.0.1', 0))
print(select(2, s:getsockname())); io.stdout:flush()
local good = '{"result":[{"user_id":"u1","first_name":"A","email_id":"a@b.example",' ..
  '"last_login_at":"2024-06-13T14:30:00Z"}],"success":true,"errors":[],"warnings":[],"information":[]}'
local bad_exists = '{"data":{"exists":"yes"},"success":true,"errors":[],"warnings":[],"information":[]}'
local bad_teams = '{"result":"not-a-list","success":"yes","errors":[],"warnings":[],"information":[]}'
while true do
  local c = s:accept()
  c:settimeout(5)
  local line = c:receive('*l') or ''
  repeat local h = c:receive('*l') until not h or h == ''
  local path = line:match('^%u+ (%S+)') or '/'
  local body = good
  if path:find('^/v2/Teams/email%-exists') then body = bad_exists
  elseif path:find('^/v2/Teams/roles') then body = bad_teams end
  c:send('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ' .. #body ..
    '\r\nConnection: close\r\n\r\n' .. body)
  c:close()
end
]]

describe('support.prism proxy (document360 in front of a LuaSocket upstream)', function()
  local up_pid, up_url, script, up_log
  before_each(once(function()
    script = os.tmpname()
    local f = io.open(script, 'w'); f:write(UPSTREAM); f:close()
    up_log = os.tmpname()
    up_pid = prism.spawn('lua5.4 ' .. prism.quote(script), up_log)
    local deadline = os.time() + 60   -- a bound for a loaded machine; it answers in well under 1 s
    repeat
      local port = (io.open(up_log):read('a') or ''):match('^(%d+)')
      if port then up_url = 'http://127.0.0.1:' .. port end
      if not up_url then
        assert(prism.alive(up_pid), 'upstream exited: ' .. (io.open(up_log):read('a') or ''))
        require('socket').sleep(0.05)
      end
    until up_url or os.time() > deadline
    assert(up_url, 'upstream did not start')
  end))
  teardown(function()
    if up_pid then prism.kill(up_pid) end
    if script then os.remove(script) end
    if up_log then os.remove(up_log) end
  end)

  describe('without --errors', function()
    local px
    before_each(once(function()
      px = prism.proxy(D360, up_url, { errors = false, transform = prism.fixups.document360 })
    end))
    teardown(function() if px then px.stop() end end)

    it('passes a conforming upstream answer through, with no violations', function()
      local since = px.mark()
      local status, h, body = request(px.url .. '/v2/Teams', { api_token = 'tok' })
      assert.equals(200, status)
      assert.is_nil(h['sl-violations'])
      assert.equals('u1', cjson.decode(body).result[1].user_id)
      assert.same({}, prism.violations(px, since))
    end)

    it('forwards everything, flags bad responses and requests in sl-violations and the log', function()
      local since = px.mark()
      local status, h, body = request(px.url .. '/v2/Teams/email-exists?emailId=a@b.example', { api_token = 'tok' })
      assert.equals(200, status)
      assert.equals('yes', cjson.decode(body).data.exists)      -- upstream's answer, untouched
      assert.matches('data%.exists must be boolean', h['sl-violations'])
      local status2, h2 = request(px.url .. '/v2/Teams?skip=abc', { api_token = 'tok' })
      assert.equals(200, status2)                                -- bad request forwarded too
      assert.matches('skip must be integer', h2['sl-violations'])
      assert.same({
        'response.body.data.exists Response body property data.exists must be boolean',
        'request.query.skip Request query parameter skip must be integer',
      }, prism.violations(px, since))
    end)
  end)

  it('with --errors (the default): 500 problem+json for a bad response, 401/422 for bad requests', function()
    local px = prism.proxy(D360, up_url, { transform = prism.fixups.document360 })
    local status, h, body = request(px.url .. '/v2/Teams/roles', { api_token = 'tok' })
    local status2 = request(px.url .. '/v2/Teams')
    local v = prism.violations(px)
    px.stop()
    assert.equals(500, status)
    assert.equals('application/problem+json', h['content-type'])
    assert.equals('https://stoplight.io/prism/errors#VIOLATIONS', cjson.decode(body).type)
    assert.is_string(h['sl-violations'])
    assert.equals(401, status2)
    assert.same({
      'GET /v2/Teams/roles: VIOLATIONS: Request/Response not valid',
      'GET /v2/Teams: UNAUTHORIZED: Invalid security scheme used',
    }, v)
  end)
end)

describe('support.prism on each contract fixture (the shared mocks)', function()
  -- one GET per spec that the spec's own example should satisfy
  local cases = {
    { 'docspace', '/api/2.0/portal/userscount', { ApiKeyBearer = 'k' } },
    { 'outpost_v0', '/acme-corp-42', { Authorization = 'Bearer k' } },
    { 'outpost_latest', '/tenants/acme-corp-42', { Authorization = 'Bearer k' } },
    { 'agilicus', '/users', { Authorization = 'Bearer k' } },
    { 'document360', '/v2/Teams/roles', { api_token = 'k' } },
  }
  for _, c in ipairs(cases) do
    it(c[1] .. ': loads in --errors mode and answers 2xx from its examples', function()
      local server = contract_mocks.get(c[1])   -- raises if Prism does not answer within its bound
      assert.is_true(server.alive(), c[1])
      local since = server.mark()
      local status, _, body = request(server.url .. c[2], c[3])
      assert.is_true(status >= 200 and status < 300, c[1] .. ' ' .. c[2] .. ' -> ' .. tostring(status) .. ' ' .. body)
      assert.same({}, prism.violations(server, since), c[1])
      assert.same({}, prism.violations(server, 0, server.ready_offset), c[1] .. ' started cleanly')
    end)
  end
end)
