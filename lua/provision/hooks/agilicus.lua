-- Agilicus errors carry {error: "..."} (sometimes {error_message}).
local hooks = {}

local function str(v)
  if type(v) == "string" and v ~= "" then return v end
  return nil
end

function hooks.error_message(body)
  if type(body) ~= "table" then return nil end
  local e = body.error
  if type(e) == "table" then return str(e.message) or str(e.error) end
  return str(e) or str(body.error_message) or str(body.message)
end

return hooks
