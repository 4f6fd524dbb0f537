-- Agilicus errors carry {error: "..."} (sometimes {error_message}).
local str = require("provision.envelopes.common").str

local envelope = {}

function envelope.error_message(body)
  if type(body) ~= "table" then return nil end
  local e = body.error
  if type(e) == "table" then return str(e.message) or str(e.error) end
  return str(e) or str(body.error_message) or str(body.message)
end

return envelope
