-- Outpost errors are {message, data}.
local str = require("provision.hooks.common").str

local hooks = {}

function hooks.error_message(body)
  if type(body) ~= "table" then return nil end
  return str(body.message) or str(body.error)
end

return hooks
