-- Credentials and how they are put on a request. Per operation exactly one
-- scheme is applied: the first in the operation's security list for which
-- the client holds credentials.
local core = require("provision.core")
local errors = require("provision.errors")

local auth = {}

-- Scheme names are few and fixed: remember their snake_case spelling.
local snake_names = {}
local function snake(name)
  local s = snake_names[name]
  if not s then
    s = name:gsub("(%l)(%u)", "%1_%2"):gsub("[%-%s]", "_"):lower()
    snake_names[name] = s
  end
  return s
end

-- The credential configured for one scheme, or nil.
local function credential_for(creds, name, scheme)
  local c = creds[name]
  if c == nil then c = creds[snake(name)] end
  if c ~= nil then return c end
  local t = scheme.type
  if t == "http" and scheme.scheme == "basic" then
    if creds.basic then return creds.basic end
    if creds.username ~= nil then return { username = creds.username, password = creds.password } end
  elseif t == "http" then
    return creds.bearer or creds.token or creds.access_token
  elseif t == "apiKey" then
    local k = creds.api_key
    if type(k) == "table" then return k[name] end
    return k
  elseif t == "oauth2" or t == "openIdConnect" then
    return creds.oauth2 or creds.access_token
  end
  return nil
end

-- Picks the scheme for an operation. Returns name, scheme, credential, or
-- nothing when the operation needs no auth or no credential matches.
function auth.select(api, creds, security)
  if not security or #security == 0 or not creds then return nil end
  for _, name in ipairs(security) do
    local scheme = api.security_schemes[name]
    if scheme then
      local c = credential_for(creds, name, scheme)
      if c ~= nil and c ~= false then return name, scheme, c end
    end
  end
  return nil
end

local function set_header(req, name, value)
  local lname = name:lower()
  for _, h in ipairs(req.headers) do
    if h[1]:lower() == lname then h[2] = value; return end
  end
  req.headers[#req.headers + 1] = { name, value }
end

local function add_cookie(req, name, value)
  for _, h in ipairs(req.headers) do
    if h[1]:lower() == "cookie" then h[2] = h[2] .. "; " .. name .. "=" .. value; return end
  end
  req.headers[#req.headers + 1] = { "Cookie", name .. "=" .. value }
end

-- A token given as a string, a function returning one, or an OAuth2
-- client-credentials config served by `tokens` (provision.oauth2 cache).
local function token_value(c, tokens, scheme_name)
  if type(c) == "function" then
    local ok, tok, err = pcall(c)
    if not ok then return nil, "token function failed: " .. tostring(tok) end
    if type(tok) ~= "string" then return nil, err or "token function returned no token" end
    return tok
  elseif type(c) == "table" then
    if c.access_token then return token_value(c.access_token, tokens, scheme_name) end
    if c.token_url then return tokens:get(scheme_name, c) end
    return nil, "credential for " .. scheme_name .. " needs access_token or token_url"
  elseif type(c) == "string" then
    return c
  end
  return nil, "credential for " .. scheme_name .. " has type " .. type(c)
end

-- Applies the chosen scheme to req (headers / cookie / query) in place.
function auth.apply(req, name, scheme, c, tokens, opname)
  local function bad(msg)
    return nil, errors.new({ kind = "auth", operation = opname, message = msg })
  end
  local t = scheme.type
  if t == "http" and scheme.scheme == "basic" then
    if type(c) ~= "table" or type(c.username) ~= "string" or type(c.password) ~= "string" then
      return bad("Basic auth needs username and password strings")
    end
    if c.username:find(":", 1, true) then return bad("Basic auth username must not contain ':'") end
    local v = "Basic " .. core.b64encode(c.username .. ":" .. c.password)
    if not core.header_value_ok(v) then return bad("Basic auth credentials hold CR, LF or NUL") end
    set_header(req, "Authorization", v)
    return true
  end
  local value, err = token_value(c, tokens, name)
  if not value then return bad(err) end
  if value == "" or not core.header_value_ok(value) then
    return bad("credential for " .. name .. " is empty or holds CR, LF or NUL")
  end
  if t == "http" or t == "oauth2" or t == "openIdConnect" then
    if value:find("[%c%s]") then return bad("token for " .. name .. " holds a space or control character") end
    set_header(req, "Authorization", (scheme.prefix or "Bearer") .. " " .. value)
  elseif t == "apiKey" then
    local where = scheme["in"]
    if where == "header" then
      set_header(req, scheme.name, value)
    elseif where == "cookie" then
      if value:find("[%c%s;,]") then return bad("cookie value for " .. name .. " holds a forbidden character") end
      add_cookie(req, scheme.name, value)
    elseif where == "query" then
      local sep = req.url:find("?", 1, true) and "&" or "?"
      req.url = req.url .. sep .. core.build_query({ { scheme.name, value } })
    else
      return bad("apiKey scheme " .. name .. " has unknown location " .. tostring(where))
    end
  else
    return bad("unsupported security scheme type " .. tostring(t))
  end
  return true
end

-- Whether applying this credential gives the same request every time (so
-- that the headers of one attempt can serve the next): a string, or a table
-- with a string access_token or user name and password; not a function, an
-- OAuth2 client-credentials flow, or an API key in the query.
function auth.is_static(scheme, cred)
  if scheme == nil then return true end
  if scheme.type == "apiKey" and scheme["in"] == "query" then return false end
  local t = type(cred)
  if t == "string" then return true end
  if t == "table" then
    if cred.token_url ~= nil then return false end
    local a = cred.access_token
    return a == nil or type(a) == "string"
  end
  return false
end

-- nil, or what is wrong with a client's auth table for this API: names
-- none of which is one of its schemes (a typo would otherwise leave the
-- client without credentials, found only at the first call), or a
-- credential of a type no scheme takes.
function auth.check(api, creds)
  if creds == nil then return nil end
  local known = {}
  local any_basic, any_token, any_key, any_oauth = false, false, false, false
  for name, scheme in pairs(api.security_schemes or {}) do
    known[name], known[snake(name)] = true, true
    local t = scheme.type
    if t == "http" and scheme.scheme == "basic" then any_basic = true
    elseif t == "http" then any_token = true
    elseif t == "apiKey" then any_key = true
    elseif t == "oauth2" or t == "openIdConnect" then any_oauth = true end
  end
  if any_basic then known.basic, known.username, known.password = true, true, true end
  if any_token then known.bearer, known.token, known.access_token = true, true, true end
  if any_key then known.api_key = true end
  if any_oauth then known.oauth2, known.access_token = true, true end
  local names = {}
  for k in pairs(known) do names[#names + 1] = k end
  table.sort(names)
  -- one table may hold the credentials of several APIs: other names are
  -- fine as long as one is this API's
  local matched, stranger = false, nil
  for k, v in pairs(creds) do
    if type(k) == "string" and known[k] then
      matched = true
      local tv = type(v)
      if v == "" then return ("auth.%s is empty"):format(k) end
      if tv ~= "string" and tv ~= "table" and tv ~= "function" and v ~= false then
        return ("auth.%s must be a string, a function or a table, not a %s"):format(k, tv)
      end
    elseif stranger == nil or tostring(k) < stranger then
      stranger = tostring(k)
    end
  end
  if stranger and not matched then
    return ("auth holds no credential %s takes: '%s' is none of its names%s (it takes: %s)"):format(
      tostring(api.class), stranger, require("provision.suggest").did_you_mean(stranger, names),
      table.concat(names, ", "))
  end
  return nil
end

-- Names of the schemes a client holds credentials for (for tostring).
function auth.describe(api, creds)
  local names = {}
  if creds then
    for name, scheme in pairs(api.security_schemes or {}) do
      local c = credential_for(creds, name, scheme)
      if c ~= nil and c ~= false then names[#names + 1] = name end
    end
  end
  table.sort(names)
  return table.concat(names, ",")
end

auth.snake = snake
auth.set_header = set_header
return auth
