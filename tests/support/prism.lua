-- Test support: run Prism (@stoplight/prism-cli 5.14.2, pinned in
-- package.json / package-lock.json, installed by scripts/prism-install.sh into
-- node_modules/) as a mock server or as a validating proxy for one of the
-- published OpenAPI documents, from busted specs under Lua 5.4.
--
--   local prism = require 'support.prism'
--   local srv = prism.mock(prism.spec('document360'), { errors = true })
--   -- ... point a client at srv.url ...
--   assert.same({}, prism.violations(srv))
--   srv.stop()
--
-- API
--   prism.mock(spec_path, opts)            -> handle   `prism mock SPEC -h 127.0.0.1 -p PORT`
--   prism.proxy(spec_path, upstream, opts) -> handle   `prism proxy SPEC UPSTREAM ... --errors`
--     opts.errors    mock: default false; proxy: default true. Adds `--errors`.
--     opts.dynamic   default false. Adds `--dynamic` (examples generated from
--                    the schemas instead of the spec's own examples).
--     opts.seed      with dynamic: `--seed` for repeatable generated bodies.
--     opts.transform function(text) -> text, or a list of them: rewrite the
--                    spec's JSON text into a temp file next to the log and
--                    serve that (see prism.fixups; /work/shared stays untouched).
--     opts.port      default: a free port (bind port 0 with LuaSocket, close).
--     opts.timeout   seconds to wait for the server to answer (default 20).
--     opts.verbose   Prism's -v level (default "info"; violations() needs info).
--     opts.args      extra CLI arguments, a list of strings.
--     opts.name      log file stem (default: spec name + mode).
--     opts.wait      default true; false returns at once and the caller calls
--                    handle.wait() later (start several servers in parallel).
--   handle = { url = "http://127.0.0.1:PORT", port =, pid = (the node process),
--              log = path (tests/.prism/NAME-MODE-PORT.log, kept after stop;
--              $PRISM_LOG_DIR overrides), spec = path served (a transformed
--              copy is removed by stop), mode = "mock"|"proxy",
--              stop = function() (kill, wait for exit; idempotent),
--              alive = function() -> bool, mark = function() -> log offset,
--              wait = function() -> handle, startup = seconds until it answered }
--   prism.violations(handle [, since]) -> { "string", ... } (empty when clean);
--     `since` is an offset from handle.mark() to look only at later requests.
--   prism.spec(name) -> absolute path of ../shared/specs/NAME(.openapi.json)
--     ($PROVISION_SPECS_DIR overrides the folder).
--   prism.available() -> true | false, reason     (is node_modules/.bin/prism there)
--   prism.free_port(), prism.spawn(cmd, log) -> pid, prism.kill(pid [, secs]),
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
-- Readiness: a CORS preflight (OPTIONS + Origin + Access-Control-Request-Method)
-- is answered 204 by Prism itself, is not logged and is not forwarded upstream,
-- so mock()/proxy() poll with it and leave the log clean.
-- Cost: each instance is one node process of ~150-165 MB RSS (document360:
-- 165 MB; the whole docspace.openapi.json: 207 MB) and answers after ~1.1-2.4 s
-- (whole docspace: ~4.5 s), so several per run are fine on this 24 GB machine.
--
-- Spec defects Prism trips on (see prism.fixups):
--   * document360.openapi.json: 97 example timestamps such as
--     "last_login_at": "2024-06-13T14:30:00" have no UTC offset, so they break
--     their schemas' `format: date-time`: GET /v2/Teams and GET /v2/Teams/{userId}
--     answer 500 #VIOLATIONS with --errors (200 + sl-violations without).
--     prism.fixups.document360 renames `"format": "date-time"` to
--     `"x-format": "date-time"` in a temp copy (the real API sends such
--     offset-less timestamps, so the client must accept them anyway).
--     Outside TeamsApi the same copy still has 8 operations whose 200 example
--     breaks its schema (Articles content_type not in 0..2, extra properties).
--   * docspace.seed.openapi.json: `employeeType` is a string enum (All, RoomAdmin,
--     Guest, DocSpaceAdmin, User) but its parameter example is the integer 1;
--     Prism lists the route as /invite/1 and answers a request for it 422.
--     A client that sends the old integer form is rejected by the mock.
--   * outpost.latest.openapi.json: the 200 example of GET /destination-types
--     lacks config_fields[2].required (500 with --errors); not a Tenants route.
--   * The five specs load with no warning; the whole docspace.openapi.json
--     loads too, and its `/api/2.0/files/group` defect (a required `id` path
--     parameter not in the URL) makes Prism answer every call there 422
--     "Request path must have required property 'id'".
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
M.specs_dir = os.getenv('PROVISION_SPECS_DIR') and normalize(abspath(os.getenv('PROVISION_SPECS_DIR')))
  or normalize(M.root .. '/../shared/specs')
M.log_dir = os.getenv('PRISM_LOG_DIR') or (M.root .. '/tests/.prism')

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
  if not ok then error('prism: cannot create ' .. d, 3) end
end

--- Absolute path of a spec in ../shared/specs: 'document360' or 'document360.openapi.json'.
function M.spec(name)
  if name:find('/') then return normalize(abspath(name)) end
  if not name:find('%.json$') and not name:find('%.ya?ml$') then name = name .. '.openapi.json' end
  return M.specs_dir .. '/' .. name
end

function M.available()
  if not file_exists(M.bin) then
    return false, M.bin .. ' missing: run scripts/prism-install.sh'
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

--- A TCP port that was free a moment ago on 127.0.0.1.
function M.free_port()
  local s = assert(socket.bind('127.0.0.1', 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

-- ---------------------------------------------------------------- readiness
-- CORS preflight: Prism answers it itself (204), without logging or proxying.
local function answers(port)
  local c = socket.tcp()
  c:settimeout(0.5)
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

local function start(mode, spec_path, upstream, opts)
  opts = opts or {}
  local ok, why = M.available()
  if not ok then error('prism: ' .. why, 3) end
  spec_path = normalize(abspath(spec_path))
  if not file_exists(spec_path) then error('prism: no such spec: ' .. spec_path, 3) end
  mkdir_p(M.log_dir)

  local port = opts.port or M.free_port()
  local stem = opts.name
    or (spec_path:match('([^/]+)$'):gsub('%.openapi%.json$', ''):gsub('%.json$', '') .. '-' .. mode)
  local base = M.log_dir .. '/' .. stem .. '-' .. port
  local log = base .. '.log'
  local served = spec_path
  if opts.transform then
    served = apply_transforms(spec_path, opts.transform, base .. '.openapi.json')
  end

  local args = { q(M.bin), mode, q(served) }
  if mode == 'proxy' then args[#args + 1] = q(upstream) end
  args[#args + 1] = '-h 127.0.0.1 -p ' .. port
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

  local t0 = socket.gettime()
  local pid = M.spawn(cmd, log)
  local h = { url = 'http://127.0.0.1:' .. port, port = port, pid = pid, log = log,
              spec = served, mode = mode, upstream = upstream, cmd = cmd }
  running[pid] = h
  function h.alive() return M.alive(pid) end
  function h.stop()
    running[pid] = nil
    local gone = M.kill(pid)
    if served ~= spec_path then os.remove(served) end   -- the transformed copy; the log stays
    -- and until its port refuses connections (the listening socket is gone)
    local deadline = socket.gettime() + 2
    while gone and socket.gettime() < deadline do
      local c = socket.tcp()
      c:settimeout(0.2)
      local connected = c:connect('127.0.0.1', port)
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

  --- Block until the server answers (raises, with the log's tail, if it
  --- exits first or does not answer within opts.timeout seconds).
  function h.wait()
    if h.startup then return h end
    local deadline = t0 + (opts.timeout or 20)
    while true do
      if not M.alive(pid) then
        running[pid] = nil
        error(('prism %s %s exited before answering; %s:\n%s'):format(mode, spec_path, log, tail(log)), 2)
      end
      if answers(port) then break end
      if socket.gettime() > deadline then
        h.stop()
        error(('prism %s %s did not answer on port %d within %gs; %s:\n%s'):format(
          mode, spec_path, port, opts.timeout or 20, log, tail(log)), 2)
      end
      socket.sleep(0.05)
    end
    h.startup = socket.gettime() - t0
    return h
  end
  if opts.wait == false then return h end
  return h.wait()
end

function M.mock(spec_path, opts) return start('mock', spec_path, nil, opts) end

function M.proxy(spec_path, upstream_url, opts)
  assert(type(upstream_url) == 'string', 'prism.proxy: upstream URL required')
  return start('proxy', spec_path, upstream_url, opts)
end

function M.stop_all()
  for pid, h in pairs(running) do
    running[pid] = nil
    M.kill(pid, 2)
    h.stopped = true
  end
end

-- Stop what is left when the Lua state closes (busted exits with os.exit(code, true)).
M._sentinel = setmetatable({}, { __gc = function() M.stop_all() end })

-- ---------------------------------------------------------------- violations
-- Wait until the log has not grown for `quiet` seconds (max `max`): Prism
-- writes some lines (response violations) just after it has answered.
local function settle(path, quiet, max)
  local deadline = socket.gettime() + max
  local last, since = -1, socket.gettime()
  while socket.gettime() < deadline do
    local f = io.open(path, 'rb')
    local n = f and f:seek('end') or 0
    if f then f:close() end
    if n ~= last then
      last, since = n, socket.gettime()
    elseif socket.gettime() - since >= quiet then
      return
    end
    socket.sleep(0.02)
  end
end

--- Parse Prism log text into a list of violation strings (see the header).
function M.parse_violations(text)
  local out = {}
  local block = {}   -- message -> index in out, for the current request
  for line in text:gmatch('[^\n]+') do
    line = line:gsub('\27%[[%d;]*m', '')
    local msg = line:match('%[VALIDATOR%] %S+%s+%a+%s+(.-)%s*$')
    if line:find('Request did not pass the validation rules', 1, true)
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
--- from handle.mark()). Empty list when every request and response matched the spec.
function M.violations(handle, since)
  settle(handle.log, 0.1, 2)
  local text = read_file(handle.log) or ''
  if since and since > 0 then text = text:sub(since + 1) end
  return M.parse_violations(text)
end

return M
