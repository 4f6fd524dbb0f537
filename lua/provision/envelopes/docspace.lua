-- DocSpace wraps every answer as {response, count, links, status, statusCode}.
local str = require("provision.envelopes.common").str
local null = require("provision.json").null

local envelope = {}

-- The useful value is `response`; an operation that answers with
-- `response: null` succeeded with nothing to say, so it returns true.
function envelope.unwrap(body)
  if type(body) == "table" and body.response ~= nil and body.statusCode ~= nil then
    if body.response == null then return true end
    return body.response
  end
  return body
end

-- A 2xx whose envelope reports a failure (statusCode >= 400, or an error
-- object) is an error: message, {status = statusCode}.
function envelope.check(body)
  if type(body) ~= "table" then return nil end
  local code = body.statusCode
  local failed_code = type(code) == "number" and code >= 400
  local e = body.error
  if not failed_code and (e == nil or e == null or e == false) then return nil end
  local message = envelope.error_message(body)
    or ("request failed (envelope statusCode " .. tostring(code) .. ")")
  return message, { status = failed_code and code or nil }
end

function envelope.error_message(body)
  if type(body) ~= "table" then return nil end
  local e = body.error
  if type(e) == "table" then return str(e.message) or str(e.type) end
  return str(e) or str(body.message)
end

return envelope
