-- The contract mocks: one Prism mock in --errors mode per committed fixture
-- (tests/contract/), shared by every spec file of the busted run
-- (prism.shared_mock): contract_spec and prism_support_spec use the same five
-- servers, started once, all five in parallel on the first use of any.
--
--   local mocks = require 'support.contract_mocks'
--   local m = mocks.get('document360')   -- handle; raises when Prism is not up
--
-- get() raises the same error for every test while a server is unavailable,
-- so each test that needs one fails on its own.
local prism = require 'support.prism'

local M = {}

-- Where `text` has the `{` at `open`, the position of its matching `}`.
local function object_end(text, open)
  local depth, i, n = 0, open, #text
  while i <= n do
    local c = text:sub(i, i)
    if c == '"' then
      i = i + 1
      while text:sub(i, i) ~= '"' do
        if text:sub(i, i) == '\\' then i = i + 1 end
        i = i + 1
        if i > n then error('unterminated string') end
      end
    elseif c == '{' then
      depth = depth + 1
    elseif c == '}' then
      depth = depth - 1
      if depth == 0 then return i end
    end
    i = i + 1
  end
  error('unbalanced braces')
end

-- An extra named example for the 400 of GET /v2/Teams/{userId}, added after
-- the spec's own (so the default answers are unchanged): BaseError.description
-- is nullable, so {description: null, error_code: "..."} is a body the API may
-- send. contract_spec asks for it with `Prefer: code=400, example=NAME`.
M.D360_NULL_DESCRIPTION = 'contract-null-description'
local function add_null_description_example(text)
  local _, j = text:find('"Teams - Invalid User Id": {', 1, true)
  assert(j, 'example "Teams - Invalid User Id" not found in document360.openapi.json')
  local close = object_end(text, j)
  return text:sub(1, close) .. ',\n"' .. M.D360_NULL_DESCRIPTION .. '": {"value": ' ..
    '{"extension_data":null,"success":false,"errors":[{"extension_data":null,"stack_trace":null,' ..
    '"description":null,"error_code":"USER_NOT_FOUND","custom_data":null}],"warnings":[],"information":[]}}' ..
    text:sub(close + 1)
end

M.KEYS = { 'docspace', 'outpost_v0', 'outpost_latest', 'agilicus', 'document360' }

M.SPECS = {
  docspace = { spec = 'docspace.seed' },
  outpost_v0 = { spec = 'outpost' },
  outpost_latest = { spec = 'outpost.latest' },
  agilicus = { spec = 'agilicus.reconstructed' },
  -- document360.openapi.json's own examples break its schemas: 97
  -- timestamps such as "last_login_at": "2024-06-13T14:30:00" carry no
  -- UTC offset, so with --errors GET /v2/Teams and GET /v2/Teams/{userId}
  -- would answer 500 #VIOLATIONS for every request, valid or not. The
  -- fixup stops Prism checking format date-time (in a temp copy); the real
  -- API sends such timestamps too, and the client must accept them.
  document360 = { spec = 'document360', transform = { prism.fixups.document360, add_null_description_example } },
}

local function start(key, wait)
  local s = assert(M.SPECS[key], 'no contract mock ' .. tostring(key))
  return prism.shared_mock(prism.spec(s.spec), { errors = true, transform = s.transform, wait = wait })
end

local launched = false

--- The running mock for `key` (one of M.KEYS); raises if it is not up.
function M.get(key)
  if not launched then
    launched = true
    for _, k in ipairs(M.KEYS) do pcall(start, k, false) end   -- boot in parallel; errors come per key below
  end
  return start(key, true)
end

return M
