-- Agilicus errors carry {error: "..."} (sometimes {error_message}).
local hooks = {}

function hooks.error_message(body)
  if type(body) ~= "table" then return nil end
  local e = body.error
  if type(e) == "table" then return e.message or e.error end
  return e or body.error_message or body.message
end

return hooks
