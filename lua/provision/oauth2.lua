-- OAuth2 client-credentials tokens, fetched through the client's transport
-- and cached until shortly before they expire (from expires_in, or the JWT's
-- exp claim when the server gives no expires_in).
local core = require("provision.core")
local json = require("provision.json")
local check_token_url = require("provision.options").token_url

local Tokens = {}
Tokens.__index = Tokens

local EARLY = 30   -- seconds before expiry at which a token counts as stale

local function form(pairs_list)
  return core.build_query(pairs_list)
end

function Tokens.new(transport, wallclock)
  return setmetatable({ transport = transport, cache = {}, time = wallclock or os.time,
                        fetches = 0 }, Tokens)
end

function Tokens:invalidate(scheme_name)
  if scheme_name then self.cache[scheme_name] = nil else self.cache = {} end
end

local function expiry(now, doc, token)
  local ttl = tonumber(doc.expires_in)
  if ttl then return now + ttl end
  local payload = core.jwt_decode(token)
  if type(payload) == "table" and tonumber(payload.exp) then return tonumber(payload.exp) end
  return now + 300
end

function Tokens:get(scheme_name, cfg)
  local now = self.time()
  local hit = self.cache[scheme_name]
  -- Renew EARLY seconds before expiry, or halfway through a shorter life.
  if hit and now < hit.expires_at - math.min(EARLY, (hit.expires_at - hit.fetched_at) / 2) then
    return hit.token
  end

  if type(cfg.client_id) ~= "string" or type(cfg.client_secret) ~= "string" then
    return nil, "OAuth2 client credentials need client_id and client_secret strings"
  end
  -- also checked by client.new; a credential table changed later lands here
  local url_ok, url_err = check_token_url(cfg.token_url)
  if not url_ok then return nil, url_err end
  local fields = { { "grant_type", "client_credentials" } }
  if cfg.scope then fields[#fields + 1] = { "scope", cfg.scope } end
  if cfg.audience then fields[#fields + 1] = { "audience", cfg.audience } end
  local headers = {
    { "Content-Type", "application/x-www-form-urlencoded" },
    { "Accept", "application/json" },
  }
  if cfg.auth_method == "post" then
    fields[#fields + 1] = { "client_id", cfg.client_id }
    fields[#fields + 1] = { "client_secret", cfg.client_secret }
  else
    -- RFC 6749 2.3.1: both parts form-encoded before Basic encoding
    local id = core.encode_query_component(cfg.client_id)
    local secret = core.encode_query_component(cfg.client_secret)
    headers[#headers + 1] = { "Authorization", "Basic " .. core.b64encode(id .. ":" .. secret) }
  end
  self.fetches = self.fetches + 1
  local resp = self.transport:send({ { method = "POST", url = cfg.token_url, headers = headers,
                                       body = form(fields) } })[1]
  if resp.kind then
    return nil, "token request to " .. (cfg.token_url:match("^[^?#]*")) .. " failed: " .. resp.message
  end
  if resp.status ~= 200 then
    return nil, "token request answered HTTP " .. resp.status
  end
  local doc = json.decode(resp.body)
  if type(doc) ~= "table" or type(doc.access_token) ~= "string" then
    return nil, "token response has no access_token"
  end
  self.cache[scheme_name] = { token = doc.access_token, fetched_at = now,
                              expires_at = expiry(now, doc, doc.access_token) }
  return doc.access_token
end

return Tokens
