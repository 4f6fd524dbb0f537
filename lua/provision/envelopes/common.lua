-- Small helpers shared by the per-API envelope modules.
local common = {}

-- A usable message string, or nil: JSON null decodes to a light userdata,
-- which is truthy, so `a or b` alone would let it through.
function common.str(v)
  if type(v) == "string" and v ~= "" then return v end
  return nil
end

return common
