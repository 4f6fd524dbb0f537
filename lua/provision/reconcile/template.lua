-- Argument templates of resource operations (docs/reconcile.md,
-- "Resources"): the SDK arguments of a call, in order, where a string
-- starting with "=" is a reference filled from the step:
--
--   =key              the record's natural key (as the roster writes it)
--   =desired.NAME     the roster's value of field NAME, as the operation takes
--                     it (through the field's kind and lookup), or its default
--   =observed.PATH    a field of the record as read (dotted path)
--   =found.PATH       a field of the first answer of a two-step read
--   =context.NAME     a setting of the system (Agilicus org_id)
--   =lookup.NAME      a single value found by a lookup (Document360 inviter)
--   =merged           the record as read, with every managed field set to the
--                     roster's value (for operations that replace a record)
--
-- A reference that has no value leaves its key out; a table all of whose
-- references had no value is left out too (so an unmanaged field sends
-- nothing), while a table written empty stays (an empty list to send).
local template = {}

local function dig(t, path)
  for part in path:gmatch("[^%.]+") do
    if type(t) ~= "table" then return nil end
    t = t[part]
  end
  return t
end
template.dig = dig

-- env: { key =, desired = function(name), observed =, found =, context =,
--        lookup = function(name), merged = function() }
local function ref(s, env)
  local what, rest = s:match("^=(%a+)%.?(.*)$")
  if what == "key" then return env.key end
  if what == "desired" then return env.desired(rest) end
  if what == "observed" then return env.observed and dig(env.observed, rest) end
  if what == "found" then return env.found and dig(env.found, rest) end
  if what == "context" then return env.context and env.context[rest] end
  if what == "lookup" then return env.lookup(rest) end
  if what == "merged" then return env.merged() end
  error("template: unknown reference " .. s, 0)
end

-- value, had_refs, all_nil
local function fill(v, env)
  if type(v) == "string" and v:sub(1, 1) == "=" then
    local x = ref(v, env)
    return x, true, x == nil
  end
  if type(v) ~= "table" then return v, false, false end
  local out, refs, literal = {}, false, next(v) == nil
  for k, x in pairs(v) do
    local y, r, none = fill(x, env)
    if r then refs = true end
    if y ~= nil then out[k] = y end
    if not none then literal = true end
  end
  if refs and not literal then return nil, true, true end
  return setmetatable(out, getmetatable(v)), refs, false
end

-- The argument list of a call, and its count (arguments may be nil).
function template.args(list, env)
  local out, n = {}, 0
  for i, v in ipairs(list or {}) do
    out[i] = (fill(v, env))
    n = i
  end
  return out, n
end

function template.value(v, env)
  return (fill(v, env))
end

return template
