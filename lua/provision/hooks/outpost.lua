-- Outpost errors are {message, data}.
local hooks = {}

function hooks.error_message(body)
  if type(body) == "table" then return body.message or body.error end
end

return hooks
