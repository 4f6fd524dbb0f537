-- Outpost errors are {message, data}.
local str = require("provision.envelopes.common").str

local envelope = {}

function envelope.error_message(body)
  if type(body) ~= "table" then return nil end
  return str(body.message) or str(body.error)
end

return envelope
