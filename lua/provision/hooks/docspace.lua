-- DocSpace wraps every answer as {response, count, links, status, statusCode}.
local hooks = {}

function hooks.unwrap(body)
  if type(body) == "table" and body.response ~= nil and body.statusCode ~= nil then
    return body.response
  end
  return body
end

local function str(v)
  if type(v) == "string" and v ~= "" then return v end
  return nil
end

function hooks.error_message(body)
  if type(body) ~= "table" then return nil end
  local e = body.error
  if type(e) == "table" then return str(e.message) or str(e.type) end
  return str(e) or str(body.message)
end

return hooks
