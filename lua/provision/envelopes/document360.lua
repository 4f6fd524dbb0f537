-- Document360 answers {result|data, success, errors[], warnings[], information[]};
-- a non-empty errors[] is a failure even when success is true.
local str = require("provision.envelopes.common").str

local envelope = {}

local function first_error(body)
  local errs = type(body) == "table" and body.errors
  if type(errs) == "table" and errs[1] ~= nil then
    local e = errs[1]
    if type(e) == "table" then
      return str(e.description) or str(e.error_code) or "request failed", errs
    end
    return str(e) or "request failed", errs
  end
  return nil
end

function envelope.check(body)
  local msg = first_error(body)
  if msg then return msg end
  if type(body) == "table" and body.success == false then return "request failed (success: false)" end
  return nil
end

-- The useful value: data or result; `true` when the answer carries none
-- (a bare success, or a boolean/null result), so assert() reads well.
function envelope.unwrap(body)
  if type(body) ~= "table" then return body end
  for _, key in ipairs({ "data", "result" }) do
    local v = body[key]
    if type(v) == "table" or type(v) == "string" or type(v) == "number" then return v end
  end
  if body.success ~= nil or body.data ~= nil or body.result ~= nil then return true end
  return body
end

function envelope.error_message(body)
  return (first_error(body))
end

return envelope
