-- Document360 answers {result|data, success, errors[], warnings[], information[]};
-- a non-empty errors[] is a failure even when success is true.
local hooks = {}

local function first_error(body)
  local errs = type(body) == "table" and body.errors
  if type(errs) == "table" and errs[1] ~= nil then
    local e = errs[1]
    if type(e) == "table" then
      return e.description or e.error_code or "request failed", errs
    end
    return tostring(e), errs
  end
  return nil
end

function hooks.check(body)
  local msg = first_error(body)
  if msg then return msg end
  if type(body) == "table" and body.success == false then return "request failed (success: false)" end
  return nil
end

function hooks.unwrap(body)
  if type(body) ~= "table" then return body end
  if body.data ~= nil then return body.data end
  if body.result ~= nil then return body.result end
  if body.success ~= nil then return true end
  return body
end

function hooks.error_message(body)
  return (first_error(body))
end

return hooks
