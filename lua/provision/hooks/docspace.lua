-- DocSpace wraps every answer as {response, count, links, status, statusCode}.
local hooks = {}

function hooks.unwrap(body)
  if type(body) == "table" and body.response ~= nil and body.statusCode ~= nil then
    return body.response
  end
  return body
end

function hooks.error_message(body)
  if type(body) ~= "table" then return nil end
  local e = body.error
  if type(e) == "table" then return e.message or e.type end
  if type(e) == "string" then return e end
  return body.message
end

return hooks
