-- The one operation executor. A client is built from an API table
-- (lua/provision/apis/*.lua) and exposes one method per operation; every
-- call goes: arguments -> request -> auth -> transport -> retries ->
-- result or error object.
local core = require("provision.core")
local errors = require("provision.errors")
local request = require("provision.request")
local auth = require("provision.auth")
local retry = require("provision.retry")
local Tokens = require("provision.oauth2")
local engine = require("provision.engine")
local limiter = require("provision.limiter")
local fastcall = require("provision.fastcall")
local options = require("provision.options")
local hooks = require("provision.hooks")
local events = require("provision.events")
local validate = require("provision.validate")
local schema = require("provision.schema")
local did_you_mean = require("provision.suggest").did_you_mean

local client = {}
local unpack = table.unpack or unpack
local json_decode = core.json_decode   -- what json.decode calls
local header = core.header
local json_null = core.null

local Client = {}
Client.__index = Client

local CALL_KEY = "_call"   -- per-call settings (provision.options); no documented parameter starts with "_"
local DEFAULT_REDIRECTS = 5  -- follow_redirects = true

local function origin(url)
  local scheme, host = url:match("^(%a[%w+.-]*)://([^/?#]*)")
  return scheme and (scheme:lower() .. "://" .. host:lower())
end

local function path_only(url)
  return (url:match("^[^?#]*"))
end

-- Operation lookup tables derived once per API table: name -> op, plus each
-- op's positional (required) params, the set of optional names, and the
-- optional params that may also come positionally after the required ones:
-- those the spec requires but the client may default (Outpost's tenant_id,
-- which Outpost's own SDKs take first: tenants.get(tenant_id)).
local derived = setmetatable({}, { __mode = "k" })

local function derive(ops)
  local d = derived[ops]
  if d then return d end
  d = {}
  for _, op in ipairs(ops) do
    local positional, optional, leading, defaults = {}, {}, {}, {}
    local has_body = false   -- validate.body checks nothing for an operation without a body
    for _, p in ipairs(op.params) do
      if p["in"] == "body" then has_body = true end
      if p.required and not p.client_default then positional[#positional + 1] = p
      else
        optional[p.name] = p
        if p.spec_required and p.client_default then leading[#leading + 1] = p end
      end
      if p.client_default then defaults[#defaults + 1] = p end
    end
    d[op.name] = { op = op, positional = positional, optional = optional, leading = leading, defaults = defaults,
                   has_body = has_body }
  end
  derived[ops] = d
  return d
end

-- For an API with server generations: generation -> {opname -> another
-- generation that has it}, the operations a client of that generation lacks.
local foreign = setmetatable({}, { __mode = "k" })

local function foreign_ops(api, generation)
  local per_api = foreign[api]
  if not per_api then
    per_api = {}
    foreign[api] = per_api
  end
  local names = per_api[generation]
  if not names then
    names = {}
    local own = {}
    for _, op in ipairs(api.generations[generation] and api.generations[generation].operations or {}) do
      own[op.name] = true
    end
    for g, gen in pairs(api.generations) do
      for _, op in ipairs(gen.operations) do
        if not own[op.name] and names[op.name] == nil then names[op.name] = g end
      end
    end
    per_api[generation] = names
  end
  return names
end

-- The API's envelope module (lua/provision/envelopes/<name>.lua): how its
-- answers wrap results and report failures.
local function load_envelope(api)
  if not api.envelope then return {} end
  local ok, h = pcall(require, "provision.envelopes." .. api.envelope)
  if not ok then error("provision: envelope '" .. api.envelope .. "' failed to load: " .. tostring(h)) end
  return h
end

-- The operations this client runs: an API table may hold several server
-- generations (Outpost); `generation` picks one, else its default.
local function select_operations(api, generation)
  if api.generations then
    local g = generation or api.default_generation
    local gen = api.generations[g]
    if not gen then
      local names = {}
      for k in pairs(api.generations) do names[#names + 1] = k end
      table.sort(names)
      return nil, "unknown generation '" .. tostring(g) .. "' (one of: " .. table.concat(names, ", ") .. ")"
    end
    return gen.operations, g, gen
  end
  return api.operations
end

local function resolve_server(api, opts, gen)
  local s = opts.server or "default"
  local template = (gen and gen.servers and gen.servers[s]) or (api.servers and api.servers[s]) or s
  if type(template) ~= "string" or not template:match("^https?://") then
    return nil, "server must be an http(s) URL or one of the API's named servers, got " .. tostring(s)
  end
  local url = request.server_url(template, opts.server_variables)
  if url:find("{", 1, true) then
    return nil, "server URL " .. url .. " needs server_variables for its placeholders"
  end
  local authority = url:match("^%a[%w+.-]*://([^/?#]*)")
  if authority and authority:find("@", 1, true) then
    return nil, "server URL must not hold user:password@; give credentials in auth = {...}"
  end
  return (url:gsub("/+$", ""))
end

function client.new(api, opts)
  opts = opts or {}
  local valid, verr = options.check_client(opts)
  if not valid then
    return nil, errors.new({ kind = "invalid_argument", operation = api.class, message = verr })
  end
  local bad_auth = auth.check(api, opts.auth)
  if bad_auth then return nil, errors.invalid(api.class, "%s", bad_auth) end
  local ops, generation, gen = select_operations(api, opts.generation)
  if not ops then return nil, errors.new({ kind = "invalid_argument", message = generation }) end
  local base, err = resolve_server(api, opts, gen)
  if not base then return nil, errors.new({ kind = "invalid_argument", message = err }) end
  local transport = opts.transport
  if not transport then
    local Curl = require("provision.transport.curl")
    local terr
    local settings = opts
    if opts.concurrency and not opts.max_connections and opts.concurrency > 8 then
      -- enough connections per host for the calls a bulk run keeps in flight
      settings = setmetatable({ max_connections = math.min(opts.concurrency, 10000) }, { __index = opts })
    end
    transport, terr = Curl.new(settings)
    if not transport then
      return nil, errors.new({ kind = (type(terr) == "table" and terr.kind) or "invalid_argument",
                               message = type(terr) == "table" and terr.message or tostring(terr) })
    end
  end
  local self = setmetatable({
    api = api,
    class = api.class,
    base = base,
    generation = generation,
    generation_table = gen,
    server_variables = opts.server_variables,
    ops = derive(ops),
    envelope = load_envelope(api),
    credentials = opts.auth,
    transport = transport,
    owns_transport = opts.transport == nil,
    retries = opts.retries,
    log = opts.log,
    log_format = opts.log_format,
    events = opts.events,
    user_hooks = opts.hooks,
    traceparent = opts.traceparent,
    headers = opts.headers,
    follow_redirects = (opts.follow_redirects == true and DEFAULT_REDIRECTS) or opts.follow_redirects or 0,
    validate = opts.validate ~= false,
    schemas = schema.set_name(api, generation),
    client_defaults = { tenant_id = opts.tenant_id },
    random = opts.random or math.random,
    rate = opts.rate,
    deadline = opts.deadline,
    concurrency = opts.concurrency,
    limiter_keys = {},
    limiters = {},        -- op -> its limiter (engine.lua, limiter_for)
    without_query = {},   -- op -> whether its urls never have a query string (success_info)
    credential_ids = {},
    -- per-operation caches (operation tables and credentials do not change)
    qualified = {},       -- opname -> "Class.opname"
    authorized = {},      -- op -> true once refuse_unauthorised let it through
    attempt_headers = {}, -- op -> {template = list, headers = list, scheme, oauth}
  }, Client)
  -- no hooks and no traceparent: a call without settings of its own skips both
  self.plain = not self.user_hooks and not self.traceparent
  -- send({req})[1] without its two lists, when the transport's own class
  -- defines send_one (not one it inherits, as the coro transport inherits
  -- the curl transport's) and the transport's send is its class's
  local mt = getmetatable(transport)
  if type(mt) == "table" and type(rawget(mt, "send_one")) == "function" and rawget(transport, "send") == nil
      and rawget(mt, "send") ~= nil then
    self.send_one = rawget(mt, "send_one")
  end
  -- its answers are the core's responses (lazy fields; may become info)
  -- (an instance with a send or stream of its own answers as it likes)
  self.core_responses = type(mt) == "table" and rawget(mt, "core_responses") == true
    and rawget(transport, "send") == nil and rawget(transport, "send_one") == nil
    and rawget(transport, "stream") == nil and rawget(transport, "start") == nil
  self.tokens = Tokens.new(transport)
  self.policy = retry.policy(self.retries)
  client.operation_methods(self)
  return self
end

function Client:__tostring()
  return string.format("provision.%s client <%s> auth=%s", self.class, self.base,
    auth.describe(self.api, self.credentials) ~= "" and auth.describe(self.api, self.credentials) or "none")
end

function Client:close()
  if self.owns_transport and self.transport.close then self.transport:close() end
end
Client.__close = Client.close

-- How many of the optional leading params were given positionally in
-- (required..., [leading...], [options]): each non-table value after the
-- required ones fills the next (a nil fills one only when more follow).
local function leading_count(entry, n, ...)
  local np, k = #entry.positional, 0
  while k < #entry.leading and np + k + 1 <= n do
    local v = select(np + k + 1, ...)
    if type(v) == "table" or (v == nil and np + k + 1 == n) then break end
    k = k + 1
  end
  return k
end
client.leading_count = leading_count

-- The call settings of a call that gives none: shared, never written.
local NO_CALL = setmetatable({}, { __newindex = function() error("provision: the empty call settings are read-only", 2) end })

-- Parameters the call left out that take a client-wide default (org_id ...).
local function fill_defaults(self, entry, values)
  local defaults = entry.defaults
  for i = 1, #defaults do
    local d = defaults[i]
    if values[d.name] == nil then values[d.name] = self.client_defaults[d.client_default] end
  end
  return values
end

-- Splits (required..., [leading...], [options]) into name -> value; returns
-- values, call settings.
local function bind(self, entry, opname, ...)
  local n = select("#", ...)
  local positional = entry.positional
  local np = #positional
  if n == 1 and np + #entry.leading > 0 then
    -- the usual call, one argument (a required or leading parameter): what
    -- the general path below makes of it, without its select()s
    local v = ...
    local p = positional[1]
    if not p and type(v) ~= "table" and v ~= nil then p = entry.leading[1] end
    if p then
      return fill_defaults(self, entry, { [p.name] = v }), NO_CALL
    end
  end
  local nl = leading_count(entry, n, ...)
  if n > np + nl + 1 then
    local names = {}
    for i, p in ipairs(entry.leading) do names[i] = p.name end
    local extra = #names > 0 and " (then optionally " .. table.concat(names, ", ") .. ")" or ""
    return nil, errors.invalid(opname, "takes %d positional argument(s)%s and an options table, got %d arguments",
      np, extra, n)
  end
  local values = {}
  for i = 1, np do
    values[positional[i].name] = (select(i, ...))
  end
  for i = 1, nl do
    values[entry.leading[i].name] = (select(np + i, ...))
  end
  local options_at = np + nl + 1
  local opts = select(options_at, ...)
  local call = NO_CALL
  if opts ~= nil then
    if type(opts) ~= "table" then
      return nil, errors.invalid(opname, "argument %d must be an options table, got %s", options_at, type(opts))
    end
    for k, v in pairs(opts) do
      if k == CALL_KEY then
        local ok, err = options.check_call(v)
        if not ok then return nil, errors.invalid(opname, "%s", err) end
        call = v
      elseif entry.optional[k] then
        if values[k] ~= nil then
          return nil, errors.invalid(opname, "parameter '%s' is given twice (positionally and in the options table)",
            tostring(k))
        end
        values[k] = v
      else
        local hint = ""
        for i, p in ipairs(positional) do
          if p.name == k then hint = " (it is positional argument " .. i .. ")" end
        end
        if hint == "" then
          local names = {}
          for name in pairs(entry.optional) do names[#names + 1] = name end
          table.sort(names)
          hint = did_you_mean(tostring(k), names)
        end
        return nil, errors.invalid(opname, "unknown parameter '%s'%s", tostring(k), hint)
      end
    end
  end
  return fill_defaults(self, entry, values), call
end

local json_types, n_json_types = {}, 0

local function is_json(ctype)
  if not ctype then return false end
  local known = json_types[ctype]
  if known ~= nil then return known end
  local l = ctype:lower()
  known = (l:find("^application/json") or l:find("^application/[%w.+-]*%+json") or l:find("^text/json")) ~= nil
  if n_json_types < 256 then   -- a server sending ever new types does not grow this
    json_types[ctype] = known
    n_json_types = n_json_types + 1
  end
  return known
end

fastcall.is_json = is_json

-- A short message from an error body that is not JSON (an HTML page, text).
local function text_message(body)
  if not body or body == "" then return nil end
  local title = body:sub(1, 4096):match("<[Tt][Ii][Tt][Ll][Ee][^>]*>(.-)</[Tt][Ii][Tt][Ll][Ee]>")
  if title then return title end
  local s = body:sub(1, 200):gsub("<[^>]*>", " "):gsub("%s+", " ")
  return s
end

-- A message from a JSON error body no envelope module understood (problem+json and
-- the common {message}/{error} shapes).
local function generic_message(body)
  for _, k in ipairs({ "detail", "title", "message", "error_description", "error" }) do
    local v = body[k]
    if type(v) == "string" and v ~= "" then return v end
  end
  return nil
end


local safe_methods = { GET = true, HEAD = true, OPTIONS = true }

-- Whether a failed attempt may have changed something on the server: it
-- was sent (or may have been) and the answer, if any, does not say it was
-- refused. Reads change nothing.
local function may_have_applied(job, resp)
  if safe_methods[job.template.method] then return false end
  if resp.kind then return resp.request_sent ~= false end
  return resp.status >= 500
end

-- err.outcome: "not_applied" when nothing happened (never sent, refused,
-- a read), "unknown" when it may have been applied.
local function outcome(job, resp)
  if job.maybe_applied then return "unknown" end
  return may_have_applied(job, resp) and "unknown" or "not_applied"
end

-- The operation's "already exists" answer (op.exists: {status, message}).
local function is_exists(op, status, message)
  local e = op.exists
  if not e or e.status ~= status then return false end
  return e.message == nil or (type(message) == "string" and message:find(e.message, 1, true) ~= nil)
end

-- Response -> result, info | nil, err.
-- The request id of an answer, read without building its headers map when
-- the API names no header of its own.
local ID1, ID2, ID3 = events.REQUEST_ID_HEADERS[1], events.REQUEST_ID_HEADERS[2], events.REQUEST_ID_HEADERS[3]
local function request_id_of(api, resp)
  if api.request_id_header then return events.request_id(api, resp.headers) end
  return events.first_request_id(header(resp, ID1, ID2, ID3))
end

function Client:finish(job, resp)
  local value, info = self:interpret(job, resp)
  if value == nil then
    if job.maybe_applied or info.outcome == nil then info.outcome = outcome(job, resp) end
    info.attempts = job.attempt
  end
  if type(info) == "table" then
    info.request_id = request_id_of(self.api, resp)
    if job.trace then info.trace_id = job.trace.trace_id end
  end
  return value, info
end

-- Whether op's requests never carry a query string (no query parameter,
-- no credential in the query): the url of their answers holds no secret.
local function without_query(self, op)
  local v = self.without_query[op]
  if v == nil then
    v = true
    for _, p in ipairs(op.params) do
      if p["in"] == "query" then v = false end
    end
    if v then
      local _, scheme = auth.select(self.api, self.credentials, op.security)
      if type(scheme) == "table" and scheme["in"] == "query" then v = false end
    end
    self.without_query[op] = v
  end
  return v
end

fastcall.without_query = without_query   -- the same rule for the answers it takes

-- The info of a 2xx answer. A plain call's answer from the core (no hook
-- replaced it, no event reads it after, no query string in its url) is
-- that info itself, its headers and time still built on first read; else
-- a new table.
local function success_info(self, job, resp, body)
  if self.core_responses and job.user_hooks == false and self.events == nil and self.log == nil
     and not job.redirected and without_query(self, job.op) then
    resp.body, resp.attempts = body, job.attempt
    return resp
  end
  return { status = resp.status, headers = resp.headers, body = body, attempts = job.attempt, time = resp.time }
end

function Client:interpret(job, resp)
  local op, opname = job.op, job.opname
  if resp.kind then
    return nil, errors.new({ kind = resp.kind, message = resp.message, operation = opname,
                             attempts = job.attempt, request_sent = resp.request_sent })
  end
  local status = resp.status
  local ctype = header(resp, "content-type")
  local body, decode_err = resp.body, nil
  local json_type = ctype and json_types[ctype]   -- is_json's cache, looked at first
  if json_type == nil then json_type = is_json(ctype) end
  if body and body ~= "" and json_type then
    -- a UTF-8 byte order mark, which some .NET servers put first, is not JSON
    if body:byte(1) == 239 and body:sub(1, 3) == "\239\187\191" then body = body:sub(4) end
    local decoded, derr = json_decode(body)
    if decoded == nil then decode_err = derr else body = decoded end
  elseif body == "" then
    body = nil
  end
  -- any 2xx succeeds (a server may answer 201 where the spec says 200);
  -- op.success documents the expected ones
  if status >= 200 and status < 300 then
    if decode_err then
      -- the server did it (2xx), but what it answered cannot be read
      return nil, errors.new({ kind = "decode", class = "DecodeError", status = status,
        message = "response is not valid JSON: " .. decode_err, body = resp.body,
        headers = resp.headers, operation = opname, attempts = job.attempt,
        outcome = safe_methods[job.template.method] and "not_applied" or "unknown" })
    end
    if op.returns and body ~= nil and type(body) ~= "table" then
      -- an operation that returns a record got text (an HTML login page from
      -- a proxy or a web console at the server URL) or a bare JSON value
      local what = json_type and ("a JSON " .. (body == json_null and "null" or type(body)))
        or ((ctype and ctype ~= "" and ctype:match("^[^;]*") or "no content type") .. ", not JSON")
      return nil, errors.new({ kind = "decode", class = "DecodeError", status = status,
        message = ("response is %s where %s returns %s (is the server URL right?)"):format(what, opname, op.returns),
        body = resp.body, headers = resp.headers, operation = opname, attempts = job.attempt,
        outcome = safe_methods[job.template.method] and "not_applied" or "unknown" })
    end
    -- An envelope may report a failure inside a 2xx; `detail.status` is the
    -- status it states (DocSpace statusCode), which picks the class.
    local check, detail
    if self.envelope.check then check, detail = self.envelope.check(body, resp) end
    if check then
      local api_status = type(detail) == "table" and tonumber(detail.status) or nil
      return nil, errors.new({ kind = "api", status = status, api_status = api_status,
        class = api_status and errors.class_for_status(api_status, self.api.errors) or "APIError",
        message = check, body = body, headers = resp.headers, operation = opname, attempts = job.attempt })
    end
    local value = body
    if body == nil then value = true
    elseif self.envelope.unwrap then value = self.envelope.unwrap(body, resp, op) end
    return value, success_info(self, job, resp, body)   -- (last: it may turn resp into info)
  end
  local message = (type(body) == "table" and ((self.envelope.error_message and self.envelope.error_message(body))
      or generic_message(body)))
    or (type(body) == "string" and text_message(body)) or ("HTTP " .. status)
  if type(message) ~= "string" then message = tostring(message) end
  local class = (op.errors and op.errors[status]) or errors.class_for_status(status, self.api.errors)
  return nil, errors.new({
    kind = "http", status = status, class = class,
    message = message, body = body, headers = resp.headers, operation = opname,
    attempts = job.attempt, retry_after = resp.headers and resp.headers["retry-after"],
    exists = is_exists(op, status, message) or nil,
  })
end

-- The request for one attempt: the built template plus auth and extra headers.
-- The usual attempt (the operation's own headers, no per-call headers, no
-- redirect, a credential that is the same every time) reuses the header
-- list its operation's first attempt built: req.headers may be shared, so
-- copy it before changing it.
function Client:attempt_request(job)
  local t = job.template
  local call = job.call
  -- only the fields that are set: a smaller table, and fewer keys for the
  -- transport to walk
  local req = { method = t.method, url = job.url or t.url, body = t.body, headers = false }
  if call ~= NO_CALL then
    req.timeout, req.connect_timeout, req.max_body = call.timeout, call.connect_timeout, call.max_body
  end
  local idempotent = job.op.idempotent
  if idempotent then req.idempotent = idempotent end
  local cached = self.attempt_headers[job.op]
  if cached and cached.template == t.headers and not job.redirected and call.headers == nil then
    req.headers = cached.headers            -- shared: before_send copies it before changing it
    job.scheme_name, job.oauth_flow = cached.scheme, cached.oauth
    if job.trace == false and job.user_hooks == false then return req end   -- before_send has nothing to do
    return self:before_send(job, req, false, true)
  end
  local headers = {}
  req.headers = headers
  for i, h in ipairs(t.headers) do headers[i] = { h[1], h[2] } end
  if job.redirected and origin(req.url) ~= origin(self.base) then
    -- neither credentials nor caller headers (nor before_request hooks) follow a redirect to another origin
    return self:before_send(job, req, true)
  end
  for _, extra in ipairs({ self.headers or {}, call.headers or {} }) do
    for _, h in ipairs(extra) do auth.set_header(req, h[1], h[2]) end
  end
  local name, scheme, cred = auth.select(self.api, self.credentials, job.op.security)
  if name then
    local ok, err = auth.apply(req, name, scheme, cred, self.tokens, job.opname)
    if not ok then return nil, err end
    job.scheme_name, job.oauth_flow = name, type(cred) == "table" and cred.token_url ~= nil
  end
  local shared = false
  if not job.redirected and call.headers == nil and req.url == (job.url or t.url) and auth.is_static(scheme, cred) then
    self.attempt_headers[job.op] = { template = t.headers, headers = headers, scheme = job.scheme_name,
                                     oauth = job.oauth_flow }
    shared = true
  end
  return self:before_send(job, req, false, shared)
end

-- Whether the client holds any credential at all (a false entry is none).
local function holds_credentials(creds)
  if type(creds) ~= "table" then return false end
  for _, v in pairs(creds) do
    if v ~= false then return true end
  end
  return false
end

-- An operation that needs auth, on a client that holds credentials but none
-- for this operation's schemes, is refused before anything is sent (else it
-- would go out with no credential at all). A client with no credentials
-- sends as asked, and operations with an empty security list need none.
function Client:refuse_unauthorised(op, qualified)
  local security = op.security
  if not security or #security == 0 or not holds_credentials(self.credentials) then return nil end
  if auth.select(self.api, self.credentials, security) then return nil end
  local held = auth.describe(self.api, self.credentials)
  return errors.new({ kind = "auth", operation = qualified,
    message = string.format("needs credentials for %s; this client holds %s", table.concat(security, " or "),
      held ~= "" and ("credentials for " .. held .. " only") or "none that match this API's schemes") })
end

-- "no such operation", with the name and a suggestion.
function Client:unknown_operation(opname)
  local names = {}
  for name in pairs(self.ops) do names[#names + 1] = name end
  table.sort(names)
  return errors.invalid(self.class .. "." .. tostring(opname), "%s has no operation '%s'%s", self.class,
    tostring(opname), did_you_mean(tostring(opname), names))
end

function Client:prepare(opname, ...)
  local entry = self.ops[opname]
  if not entry then return nil, self:unknown_operation(opname) end
  local qualified = self.qualified[opname]
  if not qualified then
    qualified = self.class .. "." .. opname
    self.qualified[opname] = qualified
  end
  local values, call = bind(self, entry, qualified, ...)
  if not values then return nil, call end
  if not self.authorized[entry.op] then
    local refused = self:refuse_unauthorised(entry.op, qualified)
    if refused then return nil, refused end
    self.authorized[entry.op] = true
  end
  local op = entry.op
  local base, check = self.base, self.validate
  if call ~= NO_CALL then
    if call.server then
      local b, err = resolve_server(self.api, { server = call.server, server_variables = self.server_variables },
        self.generation_table)
      if not b then return nil, errors.invalid(qualified, "%s", err) end
      base = b
    end
    -- _call.validate overrides the client's setting
    if call.validate ~= nil then check = call.validate end
  end
  -- the body against the operation's schema
  if check and entry.has_body then
    local invalid = validate.body(self.schemas, op, values, qualified)
    if invalid then return nil, invalid end
  end
  local template, err = request.build(op, values, base, qualified)
  if not template then return nil, err end
  if call == NO_CALL then
    -- a call with no settings of its own: on a client with no hooks and no
    -- traceparent it has neither (job_hooks and job_trace would find so)
    local plain   -- false: none; nil: job_hooks and job_trace look
    if self.plain then plain = false end
    return {
      client = self, op = op, opname = qualified, template = template, call = call, attempt = 0,
      values = values, deadline = self.deadline, policy = self.policy, user_hooks = plain, trace = plain,
    }
  end
  -- job.base only when a per-call server changed it (context() falls back)
  return {
    client = self, op = entry.op, opname = qualified, template = template, call = call, attempt = 0,
    values = values, deadline = call.deadline or self.deadline, base = base ~= self.base and base or nil,
    policy = call.retries == nil and self.policy or retry.policy(self.retries, call.retries),
  }
end

local redirect_codes = { [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }

-- Seconds from the answer's Retry-After, after the limiter of the API
-- origin and credential has learned from the answer.
local RL1, RL2, RL3 = limiter.HEADERS[1], limiter.HEADERS[2], limiter.HEADERS[3]

function Client.observe(_, job, resp, now)
  if resp.kind then return nil end
  local ra, rl1, rl2, rl3 = header(resp, "retry-after", RL1, RL2, RL3)
  local seconds = ra and retry.parse_retry_after(ra)
  -- the limiter reads the headers map only when one of its headers is there
  if job.limiter then job.limiter:observe(now, resp.status, (rl1 or rl2 or rl3) and resp.headers or nil, seconds) end
  return seconds
end

local function can_settle(job)
  return job.op.read_back ~= nil and job.policy.read_back ~= false
    and not job.op.idempotent and (job.read_backs or 0) < job.policy.attempts
end

-- Why an attempt is sent again (on_retry's reason, an event's retry_reason).
local function retry_reason(resp)
  if resp.kind then return resp.kind end
  if resp.status == 429 then return "throttled" end
  return "http_" .. tostring(resp.status)
end

-- Decides what happens after one attempt: "done"; "again" after a delay;
-- or "settle" (after a delay): the attempt may have landed, so the
-- operation's read-back looks before anything is sent again. The third
-- value says why ("redirect", "token_refresh", or retry_reason's).
function Client:next_step(job, req, resp, retry_after)
  if not resp.kind then
    local status = resp.status
    if status == 401 and job.oauth_flow and not job.refreshed then
      job.refreshed = true
      self.tokens:invalidate(job.scheme_name)
      return "again", 0, "token_refresh"
    end
    if redirect_codes[status] and (job.redirects or 0) < self.follow_redirects then
      local loc = resp.headers and resp.headers["location"]
      if loc then
        if loc:sub(1, 1) == "/" then loc = origin(req.url) .. loc end
        local authority = loc:match("^https?://([^/?#]*)")
        if authority and not authority:find("@", 1, true) then
          job.redirects = (job.redirects or 0) + 1
          job.redirected, job.url = true, loc
          if status == 303 then   -- "see other": a GET without the body or its Content-Type
            local headers = {}
            for _, h in ipairs(job.template.headers) do
              if h[1]:lower() ~= "content-type" then headers[#headers + 1] = h end
            end
            job.template = { method = "GET", url = loc, headers = headers }
          end
          job.attempt = job.attempt - 1   -- a redirect is not a failed attempt
          return "again", 0, "redirect"
        end
      end
    end
    if status < 400 then return "done" end
  end
  local reason = retry_reason(resp)
  if may_have_applied(job, resp) then
    if can_settle(job) then
      return "settle", retry_after or (resp.kind and 0) or retry.backoff(job.policy, job.attempt, self.random),
        reason
    end
    job.maybe_applied = true
  elseif job.maybe_applied and not resp.kind and can_settle(job)
      and (resp.status == 409 or (job.op.exists and resp.status == job.op.exists.status)) then
    -- "already exists" after an attempt that may have landed: ours, or another's?
    return "settle", 0, reason
  end
  local policy = job.policy
  local throttles = job.throttles or 0
  if not resp.kind and resp.status == 429 then
    -- "later", not "failed": a waited-out 429 does not use up an attempt
    local d = retry.throttle(policy, throttles, retry_after, self.random)
    if not d then return "done" end
    job.throttles = throttles + 1
    return "again", d, reason
  end
  local delay = retry.decide(policy, job.attempt - throttles, req.method, job.op, resp,
                             self.random, retry_after)
  if delay then return "again", delay, reason end
  return "done"
end

-- User hooks, events and trace context ------------------------------------------
-- (lua/provision/hooks.lua, lua/provision/events.lua.) The engine calls
-- attempt_request (which ends in before_send), after_attempt once per
-- answer, retrying when a read-back says "send again", and conclude as a
-- call ends: the one place each hook runs, for every transport and in bulk.

-- The user hooks of a job: the client's, then its call's; a read-back runs
-- with those of the call it checks.
local function job_hooks(job)
  local h = job.user_hooks
  if h == nil then
    local parent = job.read_back_of
    local call_hooks = job.call.hooks or (parent and parent.call.hooks)
    h = hooks.merge(job.client.user_hooks, call_hooks)
    job.user_hooks = h
  end
  return h
end

-- The job's trace ({trace_id, parent_id?, flags}) when it sends traceparent.
local function job_trace(job)
  if job.trace == nil then
    local parent = job.read_back_of
    local setting = job.call.traceparent
    if setting == nil then setting = job.client.traceparent end
    if parent then
      job.trace = job_trace(parent)
    elseif setting == true then
      job.trace = events.new_trace()
    elseif type(setting) == "string" then
      job.trace = events.parse_traceparent(setting) or false   -- checked by options already
    else
      job.trace = false
    end
  end
  return job.trace
end

-- The hooks' ctx: one table per call (a hook may keep its own fields in it).
local function context(job, attempt)
  local ctx = job.ctx
  if not ctx then
    local self = job.client
    local parent = job.read_back_of
    ctx = { operation = job.opname, operation_id = job.op.operation_id or job.op.name, api = self.api.api,
            class = self.class, base_url = job.base or self.base, read_back_of = parent and parent.opname,
            trace_id = job.trace and job.trace.trace_id or nil }
    job.ctx = ctx
  end
  ctx.attempt = attempt or job.attempt
  ctx.security_scheme = job.scheme_name
  return ctx
end

-- err.outcome for a call a hook ended after an answer came: a read or a
-- refusal (4xx) changed nothing; anything else may have been applied.
local function answered_outcome(job, resp)
  if job.maybe_applied then return "unknown" end
  if safe_methods[job.template.method] then return "not_applied" end
  if resp.kind then return resp.request_sent == false and "not_applied" or "unknown" end
  return (resp.status >= 400 and resp.status < 500) and "not_applied" or "unknown"
end

local function delivers(self) return self.events ~= nil or self.log ~= nil end

-- The start of one attempt's event (nil when nobody listens).
local function new_event(self, job, req, sent_at, now)
  if not delivers(self) then return nil end
  local url = path_only(req.url)
  local trace = job.trace
  return {
    operation = job.opname, api = self.api.api, method = req.method, url = url,
    path = url:match("^%a[%w+.-]*://[^/]*(.*)$") or url,
    attempt = job.attempt, duration = now - sent_at,
    delay_before = job.retry_delay or 0, retry_reason = job.retry_reason,
    bytes_sent = type(req.body) == "string" and #req.body or 0, bytes_received = 0,
    trace_id = trace and trace.trace_id or nil, span_id = trace and job.span_id or nil,
    read_back_of = job.read_back_of and job.read_back_of.opname or nil, sent = true,
  }
end

local function reused(resp)
  if type(resp.reused) == "number" then return resp.reused > 0 end
  if type(resp.new_connections) == "number" then return resp.new_connections == 0 end
  return nil
end

-- Completes an event with what came back and what happens next, and hands
-- it to events and log (neither may break the call: errors are dropped).
function Client:emit(ev, job, resp, step, err, delay)
  if not ev then return end
  if resp then
    ev.status = resp.status
    if resp.kind then ev.kind = resp.kind; ev.class = errors.class_for_kind(resp.kind) end
    ev.request_id = events.request_id(self.api, resp.headers)
    ev.bytes_received = type(resp.body) == "string" and #resp.body or 0
    ev.connection_reused = reused(resp)
    if not resp.kind and resp.status >= 400 then
      ev.kind = "http"
      ev.class = (job.op.errors and job.op.errors[resp.status]) or errors.class_for_status(resp.status, self.api.errors)
    end
  end
  if err then
    ev.kind, ev.class, ev.error_outcome = err.kind, err.class, err.outcome
    if err.hook then ev.hook = err.hook end
  end
  ev.outcome = step
  if delay then ev.retry_in = delay end
  if self.events then pcall(self.events, ev) end
  if self.log then
    local ok, line = pcall(self.log_format or events.format, ev)
    if ok and type(line) == "string" then pcall(self.log, line) end
  end
end

-- The end of attempt_request: the traceparent header, then the
-- before_request hooks. Returns the request to send, or nil, err (nothing
-- sent).
function Client:before_send(job, req, is_foreign, shared)
  local trace = job_trace(job)
  local h = job_hooks(job)
  local list = not is_foreign and h and h.before_request
  if shared and (trace or list) then
    -- the attempt's headers are the client's cached list: change a copy
    local copy = {}
    for i, x in ipairs(req.headers) do copy[i] = { x[1], x[2] } end
    req.headers = copy
  end
  if trace then
    job.span_id = trace.parent_id or events.span_id()
    auth.set_header(req, "traceparent", "00-" .. trace.trace_id .. "-" .. job.span_id .. "-" .. trace.flags)
  end
  if not list then return req end
  local ctx = context(job, job.attempt + 1)
  hooks.request(req)
  for _, f in ipairs(list) do
    local ok, r, e = pcall(f, req, ctx)
    local err
    if not ok then
      err = hooks.error(job.opname, "before_request", "raised: " .. tostring(r), r)
    elseif r == false or (r == nil and e ~= nil) then
      err = hooks.stopped(job.opname, "before_request", e)
    else
      if type(r) == "table" then req = r end
      local problem = hooks.request_problem(req)
      if problem then err = hooks.error(job.opname, "before_request", "left a request that " .. problem) end
    end
    if err then
      if job.maybe_applied then err.outcome = "unknown" elseif err.outcome == nil then err.outcome = "not_applied" end
      local now = self.transport.now()
      local ev = new_event(self, job, type(req) == "table" and type(req.url) == "string" and req or job.template,
                           now, now)
      if ev then
        ev.attempt, ev.sent, ev.bytes_sent = job.attempt + 1, false, 0
        self:emit(ev, job, nil, "error", err)
      end
      return nil, err
    end
  end
  return req
end

-- Runs the on_retry hooks before the call waits `delay` s to send again;
-- returns the error that ends the call when one raises.
function Client.retrying(_, job, delay, reason, resp)
  job.retry_delay, job.retry_reason = delay, reason
  local h = job_hooks(job)
  local list = h and h.on_retry
  if not list then return nil end
  local ctx = context(job)
  for _, f in ipairs(list) do
    local ok, r = pcall(f, ctx, delay, reason)
    if not ok then
      local err = hooks.error(job.opname, "on_retry", "raised: " .. tostring(r), r)
      err.outcome = resp and outcome(job, resp) or (job.maybe_applied and "unknown" or "not_applied")
      err.attempts = job.attempt
      return err
    end
  end
  return nil
end

-- One answer (or transport error) for job's attempt: after_response hooks,
-- the limiter, the decision, on_retry hooks and the attempt's event.
-- Returns "again", delay | "settle", delay, err (err: what the attempt
-- failed with, kept while the read-back looks) | "done", value, info.
function Client:after_attempt(job, req, resp, sent_at, now)
  job.attempt = job.attempt + 1
  local ev = (self.events ~= nil or self.log ~= nil) and new_event(self, job, req, sent_at, now) or nil
  local h = job.user_hooks
  if h == nil then h = job_hooks(job) end
  local list = h and not resp.kind and h.after_response
  if list then
    local ctx = context(job)
    for _, f in ipairs(list) do
      local ok, r, e = pcall(f, resp, ctx)
      local err
      if not ok then
        err = hooks.error(job.opname, "after_response", "raised: " .. tostring(r), r)
      elseif r == false or (r == nil and e ~= nil) then
        err = hooks.stopped(job.opname, "after_response", e)
      elseif type(r) == "table" then
        if type(r.status) ~= "number" then
          err = hooks.error(job.opname, "after_response", "returned a response without a numeric status")
        else
          resp = r
          if ev then ev.replaced = true end
        end
      end
      if err then
        err.outcome, err.attempts = answered_outcome(job, resp), job.attempt
        if err.request_id == nil then err.request_id = events.request_id(self.api, resp.headers) end
        self:emit(ev, job, resp, "error", err)
        return "done", nil, err
      end
    end
  end
  local retry_after = self:observe(job, resp, now)
  local step, delay, reason = "done", nil, nil
  local status = resp.status
  -- next_step's answer for any 2xx is "done"
  if resp.kind or status < 200 or status >= 300 then
    step, delay, reason = self:next_step(job, req, resp, retry_after)
  end
  if step == "again" then
    if not resp.kind then job.last_answer = resp end   -- kept for an error that ends the call later
    if reason == "redirect" then
      job.retry_delay, job.retry_reason = nil, nil
      self:emit(ev, job, resp, "redirect")
      return "again", delay
    end
    local herr = self:retrying(job, delay, reason, resp)
    if herr then
      self:emit(ev, job, resp, "error", herr)
      return "done", nil, herr
    end
    self:emit(ev, job, resp, "retry", nil, delay)
    return "again", delay
  elseif step == "settle" then
    local _, err = self:finish(job, resp)
    job.retry_delay, job.retry_reason = nil, nil
    self:emit(ev, job, resp, "read_back", err, delay)
    return "settle", delay, err
  end
  local value, info = self:finish(job, resp)
  if ev then
    if value == nil then self:emit(ev, job, resp, "error", info) else self:emit(ev, job, resp, "ok") end
  end
  return "done", value, info
end

-- A call ends: the on_error hooks see (and may replace) its error. Returns
-- value, info_or_err.
function Client:conclude(job, value, info)
  if value ~= nil or type(info) ~= "table" then return value, info end
  -- an attempt whose timeout the deadline cut short: the deadline ended the call
  if info.kind == "timeout" and not info.deadline and job.deadline_at
     and self.transport.now() >= job.deadline_at - 0.05 then
    info.deadline = true
    info.message = "deadline of " .. tostring(job.deadline) .. " s passed (" .. tostring(info.message) .. ")"
  end
  local h = job_hooks(job)
  local list = h and h.on_error
  if not list then return nil, info end
  local ctx = context(job)
  for _, f in ipairs(list) do
    local ok, r = pcall(f, info, ctx)
    if not ok then
      local herr = hooks.error(job.opname, "on_error", "raised: " .. tostring(r), r)
      herr.outcome, herr.attempts, herr.original = info.outcome, info.attempts, info
      return nil, herr
    end
    if type(r) == "table" then
      if not errors.is_error(r) then r = errors.new(r) end
      if r.outcome == nil then r.outcome = info.outcome end   -- whether it may have landed is a fact
      if r.attempts == nil then r.attempts = info.attempts end
      if r.operation == nil then r.operation = info.operation end
      info = r
    end
  end
  return nil, info
end

-- The key of the limiter a job's attempts draw on: the API origin and a
-- fingerprint of the credential the operation will use (never the
-- credential itself).
local function fingerprint(cred)
  local t = type(cred)
  if t == "string" then return core.hex(core.sha256(cred)):sub(1, 16) end
  if t == "table" then
    local parts = {}
    for _, k in ipairs({ "username", "password", "token_url", "client_id", "access_token" }) do
      local v = cred[k]
      parts[#parts + 1] = type(v) == "string" and v or tostring(v)
    end
    return core.hex(core.sha256(table.concat(parts, "\0"))):sub(1, 16)
  end
  return tostring(cred)   -- a function: its identity
end

function Client:limiter_key(job)
  local url = job.url
  local cache = not url and not job.call.server
  if cache then
    local k = self.limiter_keys[job.op]
    if k then return k end
  end
  local name, _, cred = auth.select(self.api, self.credentials, job.op.security)
  local id = "anonymous"
  if name then
    id = self.credential_ids[name]
    if not id then
      id = name .. ":" .. fingerprint(cred)
      self.credential_ids[name] = id
    end
  end
  local key = (origin(url or job.template.url) or "") .. "|" .. id
  if cache then self.limiter_keys[job.op] = key end
  return key
end

-- A value at a dotted path ("user.email") of a table.
local function dig(t, path)
  for part in path:gmatch("[^%.]+") do
    if type(t) ~= "table" then return nil end
    t = t[part]
  end
  return t
end

-- The call settings a read-back takes from the call it checks.
local READ_BACK_CALL = { "server", "headers", "timeout", "connect_timeout", "max_body" }

-- The read-back call for a job whose attempt may have landed (op.read_back,
-- docs/api-tables.md): built from the job's own arguments.
function Client:read_back_job(job)
  local rb = job.op.read_back
  job.read_backs = (job.read_backs or 0) + 1
  local entry = self.ops[rb.operation]
  if not entry then
    return nil, errors.invalid(job.opname, "read-back operation '%s' is not on this client", rb.operation)
  end
  local named = {}
  for param, path in pairs(rb.args) do named[param] = dig(job.values, path) end
  -- it looks where the call went: the call's own server, headers, timeouts
  local call = job.call
  if call and call ~= NO_CALL then
    local inherit
    for _, k in ipairs(READ_BACK_CALL) do
      if call[k] ~= nil then
        inherit = inherit or {}
        inherit[k] = call[k]
      end
    end
    named[CALL_KEY] = inherit
  end
  local args = {}
  local np = #entry.positional
  for i, p in ipairs(entry.positional) do
    args[i] = named[p.name]
    named[p.name] = nil
  end
  args[np + 1] = named
  local child, err = self:prepare(rb.operation, unpack(args, 1, np + 1))
  if not child then return nil, err end
  child.read_back_of = job
  child.user_hooks, child.trace = nil, nil   -- a read-back has those of the call it checks
  return child
end

local function same(a, b)
  if type(a) == "string" and type(b) == "string" then return a:lower() == b:lower() end
  return a == b
end

-- What a read-back found: the record (a truthy value) or false.
function Client.read_back_found(_, job, value)
  local rb = job.op.read_back
  if rb.present then
    return dig(value, rb.present) == true and value or false
  end
  local items = rb.items and dig(value, rb.items) or value
  if type(items) ~= "table" then return false end
  for _, item in ipairs(items) do
    local all = type(item) == "table"
    for field, path in pairs(rb.match or {}) do
      if all and not same(item[field], dig(job.values, path)) then all = false end
    end
    if all then return item end
  end
  return false
end

function Client.deadline_error(_, job)
  local last = job.last_err
  return nil, errors.new({
    kind = "timeout", class = "TimeoutError", operation = job.opname, attempts = job.attempt,
    message = "deadline of " .. tostring(job.deadline) .. " s passed"
      .. (last and (" (last error: " .. tostring(last.message) .. ")") or ""),
    outcome = job.maybe_applied and "unknown" or "not_applied", deadline = true,
  })
end

-- The limiter would hold the call longer than the policy waits for a
-- Retry-After: it ends now, nothing sent.
function Client.throttled_error(_, job, wait)
  local last = job.last_answer
  local body = last and last.body
  if body == "" then body = nil end
  return nil, errors.new({
    kind = "throttled", class = "RateLimitedError", operation = job.opname, attempts = job.attempt,
    message = string.format("the rate limit of this API and credential is spent for another %.0f s "
      .. "(more than max_retry_after, %s s); %s", wait, tostring(job.policy.max_retry_after),
      last and ("not sent again (the last answer: HTTP " .. tostring(last.status) .. ")") or "nothing was sent"),
    outcome = job.maybe_applied and "unknown" or "not_applied", retry_after = wait,
    status = last and last.status, body = body, headers = last and last.headers,
  })
end

function Client.transport_error(_, job, err)
  return errors.new({ kind = (type(err) == "table" and err.kind) or "internal", operation = job.opname,
                      message = type(err) == "table" and err.message or tostring(err),
                      outcome = "not_applied", attempts = job.attempt })
end

-- One operation: returns result, info or nil, err.
function Client:call(opname, ...)
  local job, err = self:prepare(opname, ...)
  if not job then return nil, err end
  return engine.call(job)
end

local function prepare_call(self, c)
  if type(c) ~= "table" then
    return nil, errors.invalid(self.class, "each call must be a table {opname, args...}, got %s", type(c))
  end
  local n = c.n or #c
  if n == 2 then
    local light = fastcall.light(self, c[1], c[2])
    if light then return light end
  end
  return self:prepare(c[1], unpack(c, 2, n))
end

-- Several operations at once over the same connections:
-- client:all({ {"get_user", id1}, {"get_user", id2} }) -> list of {result, info_or_err}.
-- nil, or where a list of calls has a hole (a nil before other calls,
-- which # and ipairs would stop at, dropping the calls after it).
local function list_hole(calls)
  local n = #calls
  for k in pairs(calls) do
    if type(k) == "number" and k > n and k == math.floor(k) then
      return ("calls[%d] is nil but calls[%d] is set: a list of calls cannot have a hole"):format(n + 1, k)
    end
  end
  return nil
end

function Client:all(calls)
  if type(calls) ~= "table" then
    return nil, errors.invalid(self.class .. ".all", "expects a list of calls, got %s", type(calls))
  end
  local hole = list_hole(calls)
  if hole then return nil, errors.invalid(self.class .. ".all", "%s", hole) end
  local results = engine.run(engine.source(self, calls, prepare_call),
                             { concurrency = math.max(#calls, 1), total = #calls })
  return results
end

local bulk_options = { concurrency = true, rate = true, on_result = true, on_progress = true,
                       progress_interval = true, collect = true }

-- A large job: calls is a list or an iterator of {opname, args...}; see
-- README "Bulk work". Returns results, summary.
function Client:bulk(calls, opts)
  opts = opts or {}
  if type(calls) ~= "table" and type(calls) ~= "function" then
    return nil, errors.invalid(self.class .. ".bulk", "calls must be a list or an iterator, got %s", type(calls))
  end
  if type(opts) ~= "table" then
    return nil, errors.invalid(self.class .. ".bulk", "options must be a table, got %s", type(opts))
  end
  if type(calls) == "table" then
    local hole = list_hole(calls)
    if hole then return nil, errors.invalid(self.class .. ".bulk", "%s", hole) end
  end
  for k in pairs(opts) do
    if not bulk_options[k] then
      local names = {}
      for name in pairs(bulk_options) do names[#names + 1] = name end
      table.sort(names)
      return nil, errors.invalid(self.class .. ".bulk", "unknown option '%s'%s", tostring(k),
        did_you_mean(tostring(k), names))
    end
  end
  local pi = opts.progress_interval
  if pi ~= nil and not (type(pi) == "number" and pi > 0 and pi < math.huge) then
    return nil, errors.invalid(self.class .. ".bulk", "progress_interval must be a number of seconds > 0")
  end
  if opts.collect ~= nil and type(opts.collect) ~= "boolean" then
    return nil, errors.invalid(self.class .. ".bulk", "collect must be true or false")
  end
  local c = opts.concurrency or self.concurrency or 8
  local ok, cerr = options.concurrency(c)
  if not ok then return nil, errors.invalid(self.class .. ".bulk", "concurrency %s", cerr) end
  if opts.rate ~= nil then
    local rok, rerr = options.rate(opts.rate)
    if not rok then return nil, errors.invalid(self.class .. ".bulk", "%s", rerr) end
  end
  for _, k in ipairs({ "on_result", "on_progress" }) do
    if opts[k] ~= nil and type(opts[k]) ~= "function" then
      return nil, errors.invalid(self.class .. ".bulk", "%s must be a function", k)
    end
  end
  -- A callback or an iterator that raises stops the job: no call is taken
  -- after it, those taken finish (they may have been sent), and bulk
  -- returns nil, err with what was done in err.results and err.summary.
  local stopped
  local function stop(what, e)
    -- lua5.4's Ctrl-C ("interrupted!") is not the callback's fault: it goes on up
    if type(e) == "string" and e:find("interrupted!$") then error(e, 0) end
    stopped = stopped or errors.new({ kind = "hook", class = "HookError", hook = what,
      operation = self.class .. ".bulk", message = what .. " raised: " .. tostring(e) })
  end
  local function guard(what, f)
    if f == nil then return nil end
    return function(...)
      if stopped then return end
      local fine, e = pcall(f, ...)
      if not fine then stop(what, e) end
    end
  end
  local source = engine.source(self, calls, prepare_call)
  local function next_job()
    if stopped then return nil end
    local fine, job = pcall(source)
    if fine then return job end
    stop("the calls iterator", job)
    return nil
  end
  local results, summary = engine.run(next_job, {
    concurrency = c, rate = opts.rate, on_result = guard("on_result", opts.on_result),
    on_progress = guard("on_progress", opts.on_progress),
    progress_interval = opts.progress_interval, collect = opts.collect,
    total = type(calls) == "table" and #calls or nil,
  })
  if stopped then
    stopped.message = ("%s; %d call%s ended (see err.results and err.summary), no more were taken"):format(
      stopped.message, summary.done, summary.done == 1 and "" or "s")
    stopped.results, stopped.summary = results, summary
    return nil, stopped
  end
  return results, summary
end

-- Methods named after the operations (api:get_user(id, opts)) are fields of
-- each client, set by client.new; so is, for an API with server
-- generations, a method for each operation only another generation has,
-- which says so. Client's own methods come first; any other key is nil
-- (Client.__index is Client).

local function operation_methods(self)
  for name in pairs(self.ops) do
    if Client[name] == nil and rawget(self, name) == nil then
      rawset(self, name, function(me, ...)   -- me:call(name, ...), one vararg call fewer
        if me ~= self then   -- api.get_user(id): called with "." where ":" was meant
          return nil, errors.invalid(self.class .. "." .. name, "call it as a method: api:%s(...), not api.%s(...)",
            name, name)
        end
        if select("#", ...) == 1 then
          local value, info = fastcall.call(me, name, (...))
          if value ~= nil or info ~= nil then return value, info end
        end
        local job, err = me:prepare(name, ...)
        if not job then return nil, err end
        return engine.call(job)
      end)
    end
  end
  local api = self.api
  if api.generations then
    local generation = self.generation
    for name, g in pairs(foreign_ops(api, generation)) do
      if Client[name] == nil and rawget(self, name) == nil then
        rawset(self, name, function()
          return nil, errors.invalid(api.class .. "." .. name,
            "exists only on the '%s' server generation; this client targets '%s'", g, generation)
        end)
      end
    end
  end
end
client.operation_methods = operation_methods

-- Paged list operations: api:each("list_users", {org_id = o}) and friends.
local paginate = require("provision.paginate")
function Client:pages(opname, ...) return paginate.pages(self, opname, ...) end
function Client:each(opname, ...) return paginate.each(self, opname, ...) end
function Client:collect(opname, ...) return paginate.collect(self, opname, ...) end

-- Names of this client's operations, sorted.
function Client:operations()
  local names = {}
  for name in pairs(self.ops) do names[#names + 1] = name end
  table.sort(names)
  return names
end

client.Client = Client
client.select_operations = select_operations
return client
