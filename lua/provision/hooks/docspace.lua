-- DocSpace wraps every answer as {response, count, links, status, statusCode}.
local str = require("provision.hooks.common").str
local null = require("provision.json").null

local hooks = {}

-- The useful value is `response`; an operation that answers with
-- `response: null` succeeded with nothing to say, so it returns true.
function hooks.unwrap(body)
  if type(body) == "table" and body.response ~= nil and body.statusCode ~= nil then
    if body.response == null then return true end
    return body.response
  end
  return body
end

function hooks.error_message(body)
  if type(body) ~= "table" then return nil end
  local e = body.error
  if type(e) == "table" then return str(e.message) or str(e.type) end
  return str(e) or str(body.message)
end

return hooks
