-- sandbox/jwt.lua: HS256 JSON Web Tokens for the Outpost tenant JWT.
-- Signing and checking need provision.core (jwt_sign_hs256, hmac_sha256,
-- b64url_encode/decode); there is deliberately no pure-Lua HMAC. Without the
-- core, sign/verify return nil and a message saying how to build it.
local json = require "sandbox.json"

local M = {}

local ok_core, core = pcall(require, "provision.core")
if not (ok_core and type(core) == "table") then core = nil end

local MISSING = "JWT support needs provision.core (run `make build`; it is loaded from <repo>/build/?.so)"

function M.available()
  return core ~= nil and core.jwt_sign_hs256 ~= nil and core.hmac_sha256 ~= nil
    and core.b64url_encode ~= nil and core.b64url_decode ~= nil
end

function M.sign(payload, secret)
  if not M.available() then return nil, MISSING end
  local body, err = json.encode(payload)
  if not body then return nil, err end
  return core.jwt_sign_hs256(body, secret)
end

local function equal_ct(a, b)
  if #a ~= #b then return false end
  local diff = 0
  for i = 1, #a do diff = diff | (a:byte(i) ~ b:byte(i)) end
  return diff == 0
end

-- Returns the payload table when the token is a well-formed HS256 JWT signed
-- with `secret` and not expired; otherwise nil and a reason (never the token).
function M.verify(token, secret, now)
  if not M.available() then return nil, MISSING end
  if type(token) ~= "string" then return nil, "no token" end
  local h64, p64, s64 = token:match("^([%w%-_]+)%.([%w%-_]+)%.([%w%-_]+)$")
  if not h64 then return nil, "malformed token" end
  local header = json.decode(core.b64url_decode(h64) or "")
  if type(header) ~= "table" or header.alg ~= "HS256" then return nil, "unsupported alg" end
  local expect = core.b64url_encode(core.hmac_sha256(secret, h64 .. "." .. p64))
  if not equal_ct(expect, s64) then return nil, "bad signature" end
  local payload = json.decode(core.b64url_decode(p64) or "")
  if type(payload) ~= "table" then return nil, "malformed payload" end
  if type(payload.exp) == "number" and payload.exp < (now or os.time()) then
    return nil, "token expired"
  end
  return payload
end

return M
