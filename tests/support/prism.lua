-- Test support: run Prism (@stoplight/prism-cli 5.14.2, pinned in
-- package.json / package-lock.json, installed by scripts/prism-install.sh into
-- node_modules/) as a mock server or as a validating proxy for one of the
-- published OpenAPI documents, from busted specs under Lua 5.4.
--
--   local prism = require 'support.prism'
--   local srv = prism.shared_mock(prism.spec('document360'), { errors = true })
--   local since = srv.mark()
--   -- ... point a client at srv.url ...
--   assert.same({}, prism.violations(srv, since))
--
-- API
--   prism.shared_mock(spec_path, opts)            -> handle, started once per busted run
--   prism.shared_proxy(spec_path, upstream, opts) -> handle, likewise
--     The first call for a given spec + mode + options starts the server; later
--     calls return the same handle (stop_all() stops it when the Lua state
--     closes). A failure (Prism missing, spec missing, Prism exited or did not
--     answer in time) is remembered and raised again, the same message, by
--     every later call and handle.wait(): each test that needs the server
--     fails on its own, none is skipped. Give the same transform functions to
--     share a server (they are compared by identity).
--   prism.mock(spec_path, opts)            -> handle   a private server, the caller stops it
--   prism.proxy(spec_path, upstream, opts) -> handle   `prism proxy SPEC UPSTREAM ... --errors`
--     opts.errors    mock: default false; proxy: default true. Adds `--errors`.
--     opts.dynamic   default false. Adds `--dynamic` (examples generated from
--                    the schemas instead of the spec's own examples).
--     opts.seed      with dynamic: `--seed` for repeatable generated bodies.
--     opts.transform function(text) -> text, or a list of them: rewrite the
--                    spec's JSON text into a temp file next to the log and
--                    serve that (see prism.fixups; the fixture stays untouched).
--     opts.port      default 0: Prism binds a free port itself and logs it
--                    ("Prism is listening on URL"), so no port is probed
--                    free first and then lost to another process.
--     opts.timeout   seconds to wait for the server to answer (default
--                    prism.start_timeout: $PRISM_START_TIMEOUT, else 120; a
--                    bound, not a delay: it returns as soon as Prism answers).
--     opts.verbose   Prism's -v level (default "info"; violations() needs info).
--     opts.args      extra CLI arguments, a list of strings.
--     opts.name      log file stem (default: spec name + mode).
--     opts.wait      default true; false returns at once and the caller calls
--                    handle.wait() later (start several servers in parallel).
--   handle = { url = "http://127.0.0.1:PORT", port = (both set once it answered),
--              pid = (the node process), log = path (tests/.prism/NAME-MODE-N-M.log,
--              kept after stop; $PRISM_LOG_DIR overrides), spec = path served (a
--              transformed copy is removed by stop), mode = "mock"|"proxy",
--              stop = function() (kill, wait for exit; idempotent),
--              alive = function() -> bool, mark = function() -> log offset,
--              wait = function() -> handle, startup = seconds until it answered,
--              ready_offset = log size when it first answered }
--   prism.violations(handle [, since [, upto]]) -> { "string", ... } (empty when clean);
--     `since` is an offset from handle.mark() to look only at later requests,
--     `upto` one to stop at. Before reading, it sends Prism a request of its
--     own (GET /__prism_sync/N) and waits until the log shows it: Prism handles
--     and logs requests in order, so every line about the earlier requests is
--     then in the log, however late Prism wrote it. That request is not in the
--     spec, so Prism answers it 404 itself, except a proxy without --errors,
--     which forwards it to the upstream; its lines are never reported.
--   prism.spec(name) -> absolute path of tests/contract/NAME(.openapi.json), the
--     committed fixtures (scripts/contract-fixtures.lua writes them).
--   prism.available() -> true | false, reason     (is node_modules/.bin/prism there)
--   prism.spawn(cmd, log) -> pid, prism.kill(pid [, secs]),
--   prism.alive(pid), prism.stop_all()   (also run when the Lua state closes;
--     each server also has a shell watchdog that kills it if this Lua process
--     dies without cleaning up).
--   prism.fixups.document360 / prism.transforms.relax_format(fmt): see below.
--
-- What Prism 5.14.2 does (each seen by experiment against document360, outpost
-- and a LuaSocket upstream; CORS headers `Access-Control-*` are on every answer):
--
-- Mock mode (`prism mock`):
--   * valid request -> the status asked for by `Prefer: code=NNN`, else the
--     lowest 2xx; body = the spec's first example for that response (or one
--     generated from the schema with --dynamic). `Prefer: example=NAME` picks
--     a named example.
--   * security requirement not met (e.g. missing `api_token` header) -> 401,
--     content-type application/problem+json,
--     {"type":"https://stoplight.io/prism/errors#UNAUTHORIZED","title":"Invalid security scheme used","status":401,...}
--     (a 401 response defined in the spec is used instead, if any). Same with
--     or without --errors. No sl-violations header.
--   * request breaks the spec (wrong query type, missing required param or
--     body field, bad format) and the operation defines no 422/400/default
--     response -> 422 application/problem+json
--     {"type":"...#UNPROCESSABLE_ENTITY","title":"Invalid request","status":422,
--      "validation":[{"location":["query","skip"],"severity":"Error","code":"type",
--                     "message":"Request query parameter skip must be integer"}]}
--     Same with or without --errors.
--   * request breaks the spec and the operation defines a 422 (else 400, else
--     default) response -> that status with the spec's example body, plus a
--     header `sl-violations: [{"location":["request","query","emailid"],...}]`.
--     Same with or without --errors. Query parameter names are lowercased in
--     locations and messages ("emailid").
--   * the mock's own response breaks the spec (the spec's example does not
--     match its schema): without --errors -> the response as usual plus an
--     `sl-violations` header listing the response violations; with --errors ->
--     500 application/problem+json {"type":"...#VIOLATIONS","title":"Request/Response not valid",
--     "status":500,"validation":[...]} and the same sl-violations header.
--   * `Prefer: code=NNN` for a status the operation does not define -> 404
--     application/problem+json "#NOT_FOUND" "Requested status code NNN is not
--     defined in the document." Unknown path -> 404 "#NO_PATH_MATCHED_ERROR";
--     known path, wrong method -> 405 "#NO_METHOD_MATCHED_ERROR".
--   * the `servers` base path is ignored: outpost's `/api/v1` is not part of
--     the mock's URLs (GET {url}/healthz, not {url}/api/v1/healthz).
-- Proxy mode (`prism proxy SPEC UPSTREAM`):
--   * with --errors: a request that breaks the spec is answered by Prism
--     itself (401 #UNAUTHORIZED / 422 #UNPROCESSABLE_ENTITY as above) and never
--     reaches the upstream; an upstream response that breaks the spec becomes
--     500 application/problem+json #VIOLATIONS with an sl-violations header
--     listing e.g. {"location":["response","body","success"],"code":"type",
--     "message":"Response body property success must be boolean"}.
--   * without --errors: everything is forwarded, the upstream's answer is
--     passed through, and any request/response violation is only reported in
--     the `sl-violations` header (a missing api key shows as
--     {"location":["request"],"code":401,"message":"Invalid security scheme used"}).
--     A path not in the spec is forwarded and logged as a warning
--     "Violation: request Selected route not found".
--   * an upstream 501 becomes "#UPSTREAM_NOT_IMPLEMENTED".
-- Log lines (stdout+stderr to handle.log, no colours when not a terminal):
--   [2:29:57 PM] ›     [VALIDATOR] ⚠  warning   Request did not pass the validation rules
--   [2:29:57 PM] ›     [VALIDATOR] ✖  error     Request query parameter skip must be integer
--   [2:29:57 PM] ›     [VALIDATOR] ✖  error     Invalid security scheme used
--   [2:29:57 PM] ›     [VALIDATOR] ✖  error     Violation: request.query.emailid Request query
--                                                     parameter emailid must match format "email"   (one line)
--   [2:30:11 PM] ›     [VALIDATOR] ✖  error     Violation: response.body.result.0.last_login_at
--                                 Response body property ... must match format "date-time"   (one line)
--   [2:31:19 PM] ›     [VALIDATOR] ⚠  warning   Violation: request Selected route not found
--   [2:29:57 PM] › [HTTP SERVER] get /v2/Teams ✖  error     Request terminated with error:
--                   https://stoplight.io/prism/errors#UNPROCESSABLE_ENTITY: Invalid request   (one line)
--   [2:31:49 PM] › [CLI] ✖  fatal     <why the document could not be loaded>   (then exit 1)
--   "Violation: LOCATION MESSAGE" lines are the detailed report (request and
--   response) when Prism answers normally. With --errors a response violation
--   is logged only as "Request terminated with error: ...#VIOLATIONS" -- the
--   details are then in the HTTP answer (sl-violations / validation[]), not in
--   the log. violations() returns, in log order: each "Violation:" text
--   ("request.query.skip Request query parameter skip must be integer"), each
--   other VALIDATOR error ("Invalid security scheme used"; folded into the
--   matching "Violation:" entry when both are logged), each "Request terminated
--   with error" as "GET /v2/Teams: UNPROCESSABLE_ENTITY: Invalid request"
--   (except #NOT_FOUND, which only says a `Prefer: code=` is not in the spec),
--   and any fatal line. So one bad request may give two entries.
-- Readiness: Prism logs "Prism is listening on http://127.0.0.1:PORT" once
-- bound; then a CORS preflight (OPTIONS + Origin + Access-Control-Request-Method)
-- is answered 204 by Prism itself, is not logged and is not forwarded upstream,
-- so mock()/proxy() poll with it and leave the log clean.
-- Cost: each instance is one node process of ~150-165 MB RSS and answers after
-- ~1.1-2.4 s on an idle machine, but more than 20 s was seen with five starting
-- at once on a loaded 2-CPU machine: hence the generous bound, the shared
-- servers, and the fixtures cut to the operations we cover (smaller specs
-- start faster).
--
-- Spec defects Prism trips on (see prism.fixups), as published and as kept in
-- the fixtures (which keep the published examples and formats):
--   * document360.openapi.json: 97 example timestamps (those of TeamsApi too) such as
--     "last_login_at": "2024-06-13T14:30:00" have no UTC offset, so they break
--     their schemas' `format: date-time`: GET /v2/Teams and GET /v2/Teams/{userId}
--     answer 500 #VIOLATIONS with --errors (200 + sl-violations without).
--     prism.fixups.document360 renames `"format": "date-time"` to
--     `"x-format": "date-time"` in a temp copy (the real API sends such
--     offset-less timestamps, so the client must accept them anyway).
--     (Outside TeamsApi, so not in the fixture, 8 published operations have a
--     200 example that breaks its schema in other ways.)
--   * docspace.seed.openapi.json: `employeeType` is a string enum (All, RoomAdmin,
--     Guest, DocSpaceAdmin, User) but its parameter example is the integer 1;
--     Prism lists the route as /invite/1 and answers a request for it 422.
--     A client that sends the old integer form is rejected by the mock.
--   * The five fixtures load with no warning.
local socket = require 'socket'

local M = {}

-- ---------------------------------------------------------------- paths
local function dirname(p) return (p:match('^(.*)/[^/]*$')) or '.' end

local function abspath(p)
  if p:sub(1, 1) == '/' then return p end
  local cwd = os.getenv('PWD')
  if not cwd then
    local h = io.popen('pwd')
    cwd = h and h:read('l') or '.'
    if h then h:close() end
  end
  p = p:gsub('^%./', '')
  return cwd .. '/' .. p
end

local function normalize(p)
  local parts = {}
  for seg in p:gmatch('[^/]+') do
    if seg == '..' and #parts > 0 and parts[#parts] ~= '..' then
      parts[#parts] = nil
    elseif seg ~= '.' then
      parts[#parts + 1] = seg
    end
  end
  return '/' .. table.concat(parts, '/')
end

local here = debug.getinfo(1, 'S').source:gsub('^@', '')
M.root = os.getenv('PROVISION_ROOT') or normalize(abspath(dirname(here)) .. '/../..')
M.bin = M.root .. '/node_modules/.bin/prism'
M.specs_dir = M.root .. '/tests/contract'
M.log_dir = os.getenv('PRISM_LOG_DIR') or (M.root .. '/tests/.prism')
-- Bounds, not delays: each wait ends as soon as its condition holds.
M.start_timeout = tonumber(os.getenv('PRISM_START_TIMEOUT') or '') or 120
M.sync_timeout = tonumber(os.getenv('PRISM_SYNC_TIMEOUT') or '') or 60

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
M.quote = q

local function file_exists(p)
  local f = io.open(p, 'rb')
  if f then f:close() return true end
  return false
end

local function read_file(p)
  local f, err = io.open(p, 'rb')
  if not f then return nil, err end
  local s = f:read('a')
  f:close()
  return s
end

local function write_file(p, s)
  local f = assert(io.open(p, 'wb'))
  assert(f:write(s))
  f:close()
end

local function mkdir_p(d)
  local ok = os.execute('mkdir -p ' .. q(d))
  if not ok then error('prism: cannot create ' .. d, 0) end
end

--- Absolute path of a committed fixture: 'document360' or 'document360.openapi.json'
--- (tests/contract/), or of any other file given with a '/'.
function M.spec(name)
  if name:find('/') then return normalize(abspath(name)) end
  if not name:find('%.json$') and not name:find('%.ya?ml$') then name = name .. '.openapi.json' end
  return M.specs_dir .. '/' .. name
end

function M.available()
  if not file_exists(M.bin) then
    return false, M.bin .. ' missing: run scripts/prism-install.sh (make deps-test)'
  end
  return true
end

-- ---------------------------------------------------------------- processes
local self_pid
local function my_pid()
  if not self_pid then
    local s = read_file('/proc/self/stat')
    self_pid = s and tonumber(s:match('^(%d+)'))
  end
  return self_pid
end

local function stat_state(path)
  local s = read_file(path)
  return s and s:match('%)%s+(%a)')
end

--- true while process `pid` exists and is not a zombie. A multi-threaded
--- process (node) whose main thread has exited shows 'Z' while its other
--- threads still run and hold its sockets, so every thread is looked at.
function M.alive(pid)
  local state = stat_state('/proc/' .. tostring(pid) .. '/stat')
  if not state then return false end
  if state ~= 'Z' and state ~= 'X' then return true end
  local h = io.popen('ls /proc/' .. tostring(pid) .. '/task 2>/dev/null')
  local tids = h and h:read('a') or ''
  if h then h:close() end
  for tid in tids:gmatch('%d+') do
    local st = stat_state('/proc/' .. tostring(pid) .. '/task/' .. tid .. '/stat')
    if st and st ~= 'Z' and st ~= 'X' then return true end
  end
  return false
end

--- Start a shell command line in the background with stdin from /dev/null and
--- stdout+stderr to `log` (truncated). Returns the pid of the process that
--- the command `exec`s into (so a single command is its own pid). With
--- opts.guard (default true) a watchdog shell kills it once this Lua process
--- is gone.
function M.spawn(cmd, log, opts)
  opts = opts or {}
  local line = '(exec ' .. cmd .. ') <' .. '/dev/null >' .. q(log) .. ' 2>&1 & echo $!'
  -- `(exec CMD) &`: the background subshell execs CMD, so $! is CMD's pid.
  local h = assert(io.popen(line, 'r'))
  local out = h:read('a')
  h:close()
  local pid = tonumber(out:match('(%d+)'))
  if not pid then error('prism: could not start: ' .. cmd .. ' (' .. tostring(out) .. ')', 2) end
  local me = my_pid()
  if opts.guard ~= false and me then
    os.execute(('(while kill -0 %d 2>/dev/null && kill -0 %d 2>/dev/null; do sleep 1; done; ' ..
      'kill %d 2>/dev/null) </dev/null >/dev/null 2>&1 &'):format(me, pid, pid))
  end
  return pid
end

--- SIGTERM `pid`, wait up to `secs` (default 5) for it to exit, then SIGKILL.
--- Returns true once it is gone.
function M.kill(pid, secs)
  if not M.alive(pid) then return true end
  os.execute('kill ' .. tostring(pid) .. ' 2>/dev/null')
  local deadline = socket.gettime() + (secs or 5)
  while socket.gettime() < deadline do
    if not M.alive(pid) then return true end
    socket.sleep(0.02)
  end
  os.execute('kill -9 ' .. tostring(pid) .. ' 2>/dev/null')
  deadline = socket.gettime() + 2
  while socket.gettime() < deadline do
    if not M.alive(pid) then return true end
    socket.sleep(0.02)
  end
  return not M.alive(pid)
end

-- ---------------------------------------------------------------- readiness
-- CORS preflight: Prism answers it itself (204), without logging or proxying.
local function answers(port)
  local c = socket.tcp()
  c:settimeout(2)
  local ok = c:connect('127.0.0.1', port)
  if not ok then c:close() return false end
  c:send('OPTIONS /__prism_ready HTTP/1.1\r\nHost: 127.0.0.1:' .. port ..
    '\r\nOrigin: http://127.0.0.1\r\nAccess-Control-Request-Method: GET\r\nConnection: close\r\n\r\n')
  local status = c:receive('*l')
  c:close()
  return status ~= nil and status:match('^HTTP/1%.[01] %d%d%d') ~= nil
end

local function tail(path, n)
  local s = read_file(path) or ''
  local lines = {}
  for l in s:gmatch('[^\n]+') do lines[#lines + 1] = l end
  local from = math.max(1, #lines - (n or 25) + 1)
  return table.concat(lines, '\n', from)
end

-- ---------------------------------------------------------------- transforms
M.transforms = {}

--- Rename `"format": "<fmt>"` to `"x-format": "<fmt>"` so Prism stops
--- checking that format (text-level: keeps the JSON byte-for-byte otherwise).
function M.transforms.relax_format(fmt)
  local pat = '"format"(%s*:%s*)"' .. fmt:gsub('%p', '%%%0') .. '"'
  return function(text)
    return (text:gsub(pat, '"x-format"%1"' .. fmt:gsub('%%', '%%%%') .. '"'))
  end
end

--- Known spec defects that make Prism reject the spec's own examples.
M.fixups = {
  document360 = M.transforms.relax_format('date-time'),
}

local function apply_transforms(spec_path, transform, out_path)
  local text = assert(read_file(spec_path))
  local list = type(transform) == 'function' and { transform } or transform
  for _, f in ipairs(list) do
    text = f(text)
    assert(type(text) == 'string', 'prism: a transform must return the new text')
  end
  write_file(out_path, text)
  return out_path
end

-- ---------------------------------------------------------------- servers
local running = {}   -- pid -> handle
local shared = {}    -- key -> handle (or a failed stand-in)
local started = 0    -- servers started by this process (log names)

local function start(mode, spec_path, upstream, opts)
  opts = opts or {}
  local ok, why = M.available()
  if not ok then error('prism: ' .. why, 0) end
  spec_path = normalize(abspath(spec_path))
  if not file_exists(spec_path) then error('prism: no such spec: ' .. spec_path, 0) end
  mkdir_p(M.log_dir)

  started = started + 1
  local stem = opts.name
    or (spec_path:match('([^/]+)$'):gsub('%.openapi%.json$', ''):gsub('%.json$', '') .. '-' .. mode)
  local base = ('%s/%s-%d-%d'):format(M.log_dir, stem, my_pid() or 0, started)
  local log = base .. '.log'
  local served = spec_path
  if opts.transform then
    served = apply_transforms(spec_path, opts.transform, base .. '.openapi.json')
  end

  local args = { q(M.bin), mode, q(served) }
  if mode == 'proxy' then args[#args + 1] = q(upstream) end
  args[#args + 1] = '-h 127.0.0.1 -p ' .. math.tointeger(opts.port or 0)
  local errors = opts.errors
  if errors == nil then errors = (mode == 'proxy') end
  if errors then args[#args + 1] = '--errors' end
  if mode == 'mock' and opts.dynamic then
    args[#args + 1] = '--dynamic'
    if opts.seed then args[#args + 1] = '--seed ' .. q(opts.seed) end
  end
  if opts.verbose then args[#args + 1] = '-v ' .. q(opts.verbose) end
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = q(a) end
  local cmd = table.concat(args, ' ')
  local limit = opts.timeout or M.start_timeout

  local t0 = socket.gettime()
  local pid = M.spawn(cmd, log)
  local h = { pid = pid, log = log, spec = served, mode = mode, upstream = upstream, cmd = cmd,
              errors = errors }
  running[pid] = h
  function h.alive() return M.alive(pid) end
  function h.stop()
    running[pid] = nil
    -- a stopped shared server is started afresh by the next caller; a failed
    -- one stays registered, so that every caller gets its error
    if h.shared_key and shared[h.shared_key] == h and not h.failed then shared[h.shared_key] = nil end
    h.stopped = true
    local gone = M.kill(pid)
    if served ~= spec_path then os.remove(served) end   -- the transformed copy; the log stays
    -- and until its port refuses connections (the listening socket is gone)
    local deadline = socket.gettime() + 5
    while gone and h.port and socket.gettime() < deadline do
      local c = socket.tcp()
      c:settimeout(0.5)
      local connected = c:connect('127.0.0.1', h.port)
      c:close()
      if not connected then break end
      socket.sleep(0.02)
    end
    return gone
  end
  function h.mark()
    local f = io.open(log, 'rb')
    if not f then return 0 end
    local n = f:seek('end')
    f:close()
    return n
  end

  local function fail(msg)
    h.failed = msg
    h.stop()
    error(msg, 0)
  end

  --- Block until the server answers (raises, with the log's tail, if it
  --- exits first or does not answer within the bound). A failure is kept:
  --- every later wait() raises the same message.
  function h.wait()
    if h.startup then return h end
    if h.failed then error(h.failed, 0) end
    local deadline = t0 + limit
    while true do
      if not M.alive(pid) then
        fail(('prism %s %s exited before answering; %s:\n%s'):format(mode, spec_path, log, tail(log)))
      end
      if not h.port then
        local port = (read_file(log) or ''):match('Prism is listening on http://127%.0%.0%.1:(%d+)')
        h.port = tonumber(port)
      end
      if h.port and answers(h.port) then break end
      if socket.gettime() > deadline then
        fail(('prism %s %s did not answer within %gs (the bound, $PRISM_START_TIMEOUT); %s:\n%s'):format(
          mode, spec_path, limit, log, tail(log)))
      end
      socket.sleep(0.1)
    end
    h.url = 'http://127.0.0.1:' .. h.port
    h.startup = socket.gettime() - t0
    h.ready_offset = h.mark()
    return h
  end
  if opts.port then
    h.port = math.tointeger(opts.port)
  end
  if opts.wait == false then return h end
  return h.wait()
end

function M.mock(spec_path, opts) return start('mock', spec_path, nil, opts) end

function M.proxy(spec_path, upstream_url, opts)
  assert(type(upstream_url) == 'string', 'prism.proxy: upstream URL required')
  return start('proxy', spec_path, upstream_url, opts)
end

-- What makes two requests for a shared server ask for the same server.
local function shared_key(mode, spec_path, upstream, opts)
  local parts = { mode, normalize(abspath(spec_path)), tostring(upstream) }
  for _, k in ipairs({ 'errors', 'dynamic', 'seed', 'verbose', 'port', 'name' }) do
    parts[#parts + 1] = k .. '=' .. tostring(opts[k])
  end
  local t = opts.transform
  if type(t) == 'function' then t = { t } end
  for _, f in ipairs(t or {}) do parts[#parts + 1] = 'transform=' .. tostring(f) end
  for _, a in ipairs(opts.args or {}) do parts[#parts + 1] = 'arg=' .. a end
  return table.concat(parts, '\0')
end

local function shared_start(mode, spec_path, upstream, opts)
  opts = opts or {}
  local key = shared_key(mode, spec_path, upstream, opts)
  local h = shared[key]
  if not h then
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    o.wait = false
    local ok, res = pcall(start, mode, spec_path, upstream, o)
    if ok then
      h = res
    else
      local msg = tostring(res)
      h = { failed = msg, wait = function() error(msg, 0) end }
    end
    h.shared_key = key
    shared[key] = h
  end
  if h.failed then error(h.failed, 0) end
  if opts.wait == false then return h end
  return h.wait()
end

function M.shared_mock(spec_path, opts) return shared_start('mock', spec_path, nil, opts) end

function M.shared_proxy(spec_path, upstream_url, opts)
  assert(type(upstream_url) == 'string', 'prism.shared_proxy: upstream URL required')
  return shared_start('proxy', spec_path, upstream_url, opts)
end

function M.stop_all()
  for pid, h in pairs(running) do
    running[pid] = nil
    M.kill(pid, 2)
    h.stopped = true
  end
  for key in pairs(shared) do shared[key] = nil end
end

-- Stop what is left when the Lua state closes (busted exits with os.exit(code, true)).
M._sentinel = setmetatable({}, { __gc = function() M.stop_all() end })

-- ---------------------------------------------------------------- violations
local SYNC_PATH = '/__prism_sync/'
local syncs = 0

-- Send Prism a request of our own and wait until its log shows it; returns
-- the log offset where that request's lines begin (nil when the server is
-- gone: the log is then complete as it is).
local function sync(handle)
  if handle.stopped or not handle.port or not M.alive(handle.pid) then return nil end
  syncs = syncs + 1
  local path = SYNC_PATH .. syncs
  local c = socket.tcp()
  c:settimeout(M.sync_timeout)
  local ok, err = c:connect('127.0.0.1', handle.port)
  if ok then
    ok, err = c:send('GET ' .. path .. ' HTTP/1.1\r\nHost: 127.0.0.1:' .. handle.port ..
      '\r\nConnection: close\r\n\r\n')
  end
  if ok then ok, err = c:receive('*l') end
  c:close()
  if not ok then
    if not M.alive(handle.pid) then return nil end
    error(('prism: no answer to %s on %s: %s'):format(path, handle.url, tostring(err)), 0)
  end
  local needle = ' ' .. path .. ' '
  local deadline = socket.gettime() + M.sync_timeout
  while true do
    local text = read_file(handle.log) or ''
    local at = text:find(needle, 1, true)
    if at then
      local line_start = at
      while line_start > 1 and text:sub(line_start - 1, line_start - 1) ~= '\n' do line_start = line_start - 1 end
      return line_start - 1
    end
    if socket.gettime() > deadline then
      error(('prism: %s did not show %s within %gs ($PRISM_SYNC_TIMEOUT)'):format(handle.log, path,
        M.sync_timeout), 0)
    end
    socket.sleep(0.02)
  end
end

--- Parse Prism log text into a list of violation strings (see the header),
--- from the lines that begin at or after byte `from` (default 1); the text
--- before it is read only to know which request a line belongs to. The lines
--- of violations()'s own sync requests are left out.
function M.parse_violations(text, from)
  from = from or 1
  local out = {}
  local block = {}   -- message -> index in out, for the current request
  local in_sync = false
  for pos, line in text:gmatch('()([^\n]+)') do
    line = line:gsub('\27%[[%d;]*m', '')
    local msg = line:match('%[VALIDATOR%] %S+%s+%a+%s+(.-)%s*$')
    local server_path = line:match('%[HTTP SERVER%] %S+ (%S+)')
    if server_path then in_sync = server_path:sub(1, #SYNC_PATH) == SYNC_PATH end
    if in_sync or pos < from then -- luacheck: ignore 542 (a sync request's line, or before `from`)
    elseif line:find('Request did not pass the validation rules', 1, true)
      or line:find('The request passed the validation rules', 1, true)
      or line:find('Request received', 1, true) then
      block = {}
    elseif msg and msg:find('^Violation: ') then
      local v = msg:sub(#'Violation: ' + 1)
      local rest = v:match('^%S+ (.*)$')
      local i = rest and block[rest]
      if i then out[i] = v else out[#out + 1] = v end
    elseif msg and line:find('[VALIDATOR] ✖', 1, true) then
      out[#out + 1] = msg
      block[msg] = #out
    else
      local method, path, code, title =
        line:match('%[HTTP SERVER%] (%S+) (%S+) .-Request terminated with error: %S-#([%u_]+): (.-)%s*$')
      if method and code ~= 'NOT_FOUND' then
        out[#out + 1] = ('%s %s: %s: %s'):format(method:upper(), path, code, title)
      elseif line:find('✖  fatal', 1, true) then
        out[#out + 1] = line:match('fatal%s+(.*)$') or line
      end
    end
  end
  return out
end

--- Violations Prism logged for `handle` (optionally only after offset `since`
--- from handle.mark(), and before offset `upto`). Empty list when every
--- request and response matched the spec.
function M.violations(handle, since, upto)
  local sync_at = sync(handle)
  local text = read_file(handle.log) or ''
  local stop = math.min(upto or #text, sync_at or #text)
  return M.parse_violations(text:sub(1, stop), (since or 0) + 1)
end

return M
