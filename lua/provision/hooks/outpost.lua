-- Outpost errors are {message, data}.
local hooks = {}

function hooks.error_message(body)
  if type(body) ~= "table" then return nil end
  for _, k in ipairs({ "message", "error" }) do
    if type(body[k]) == "string" and body[k] ~= "" then return body[k] end
  end
  return nil
end

return hooks
