-- Read the documented SDK pages (../shared/seeds/*.md) into plain tables:
-- the class name, its methods in documented order, and per method the HTTP
-- method and path, the signature (positional parameters in order, then the
-- keyword ones), each parameter's documented type, optionality and default,
-- the return type, the auth schemes, the status codes and (Speakeasy pages)
-- the error classes per status.
--
--   generator(text)  openapi-generator pages (DocSpace, Agilicus, Document360)
--   speakeasy(text)  Speakeasy pages (Outpost)
--
-- Both return
--   { class = "d361api.TeamsApi", order = { "v2_teams_get", ... },
--     ops = { [name] = { section = true, method =, path =, returns =,
--                        positional = {...}, keywords = {...}, all = {...},
--                        params = { [name] = { type =, optional =, default = } },
--                        auth = {...}, no_auth =, codes = {...},
--                        errors = { [code or "4XX"] = class } } } }
-- Types are the page's text without its markdown ("str", "Optional[int]",
-- "list[str]", "models.X"); defaults are the documented value as text
-- ("forwards", "500", "false").
local M = {}

local function split_cells(line)
  local cells = {}
  for cell in (line .. "|"):gmatch("(.-)|") do
    cells[#cells + 1] = cell:match("^%s*(.-)%s*$")
  end
  return cells
end

-- "[**list[str]**](str.md)" -> "list[str]"; "*Optional[int]*" -> "Optional[int]"
local function plain_type(cell)
  if not cell then return nil end
  local s = cell:gsub("%[(.-)%]%([^)]*%)", "%1")
  s = s:gsub("^%*+", ""):gsub("%*+$", "")
  return s
end

-- "&#39;forwards&#39;" -> "forwards"; False -> "false"
local function plain_default(s)
  if not s then return nil end
  s = s:gsub("&#39;", ""):gsub("^'(.*)'$", "%1"):gsub('^"(.*)"$', "%1")
  if s == "False" then return "false" elseif s == "True" then return "true" end
  return s
end

function M.generator(text)
  local seed = { class = text:match("^# (%S+)"), order = {}, ops = {} }
  for name, method, path in text:gmatch("\n%[%*%*([%w_]+)%*%*%]%([^)]*%) | %*%*(%u+)%*%* (%S+) |") do
    seed.order[#seed.order + 1] = name
    seed.ops[name] = { method = method, path = path }
  end
  local heads = {}
  for pos, name in text:gmatch("()\n# %*%*([%w_]+)%*%*\n") do heads[#heads + 1] = { pos = pos, name = name } end
  for i, h in ipairs(heads) do
    local body = text:sub(h.pos + 1, heads[i + 1] and heads[i + 1].pos or #text)
    local op = seed.ops[h.name] or {}
    seed.ops[h.name] = op
    op.section = true
    local sig = body:match("\n> ([^\n]+)")
    if not sig then error("seed page: no signature line for " .. h.name, 0) end
    local ret, args = sig:match("^(%S+) [%w_]+%((.*)%)%s*$")
    if not ret then args = sig:match("^[%w_]+%((.*)%)%s*$") end
    if not args then error("seed page: cannot read the signature of " .. h.name .. ": " .. sig, 0) end
    op.returns = ret
    op.positional, op.keywords, op.all = {}, {}, {}
    for arg in args:gmatch("[^,%s][^,]*") do
      local kw = arg:match("^([%w_]+)=")
      local nm = kw or arg:match("^([%w_]+)")
      op.all[#op.all + 1] = nm
      if kw then op.keywords[#op.keywords + 1] = nm else op.positional[#op.positional + 1] = nm end
    end
    op.params = {}
    local ptext = body:match("### Parameters(.-)### Return type") or ""
    for line in ptext:gmatch("[^\n]+") do
      local nm = line:match("^ %*%*([%w_]+)%*%*")
      if nm then
        local cells = split_cells(line)
        local notes = cells[4] or ""
        op.params[nm] = {
          type = plain_type(cells[2]),
          optional = notes:find("[optional]", 1, true) ~= nil,
          default = plain_default(notes:match("%[default to (.-)%]")),
        }
      end
    end
    local auth = body:match("### Authorization(.-)\n###") or ""
    op.auth = {}
    for scheme in auth:gmatch("%[([%w_%-]+)%]%(") do op.auth[#op.auth + 1] = scheme end
    op.no_auth = auth:find("No authorization required", 1, true) ~= nil
    op.codes = {}
    for code in body:gmatch("\n%*%*(%d%d%d)%*%* |") do op.codes[#op.codes + 1] = tonumber(code) end
  end
  return seed
end

function M.speakeasy(text)
  local seed = { class = text:match("^# (%S+)"), order = {}, ops = {} }
  local avail = text:match("### Available Operations(.-)\n## ") or ""
  for name in avail:gmatch("%* %[([%w_]+)%]%(#") do seed.order[#seed.order + 1] = name end
  local heads = {}
  for pos, name in text:gmatch("()\n## ([%w_]+)\n") do heads[#heads + 1] = { pos = pos, name = name } end
  for i, h in ipairs(heads) do
    local body = text:sub(h.pos + 1, heads[i + 1] and heads[i + 1].pos or #text)
    local op = { section = true, all = {}, positional = {}, keywords = {}, params = {}, errors = {} }
    seed.ops[h.name] = op
    local ptext = body:match("### Parameters(.-)### Response") or ""
    for line in ptext:gmatch("[^\n]+") do
      local nm = line:match("^| `([%w_]+)`")
      if nm then
        local cells = split_cells(line)
        local required = (cells[4] or ""):find(":heavy_check_mark:", 1, true) ~= nil
        -- `security` (per-call credentials) and `retries` are SDK call
        -- settings, not API parameters: provision takes them in opts._call.
        if nm ~= "retries" and nm ~= "security" then
          op.all[#op.all + 1] = nm
          if required then op.positional[#op.positional + 1] = nm else op.keywords[#op.keywords + 1] = nm end
          op.params[nm] = { type = plain_type(cells[3]), optional = not required }
        end
      end
    end
    op.returns = body:match("### Response%s+%*%*%[models%.([%w_]+)%]")
    local etext = body:match("### Errors(.*)") or ""
    for line in etext:gmatch("[^\n]+") do
      local class, codes = line:match("^| errors%.([%w_]+)%s*| ([%dX, ]+)|")
      if class then
        if class == "TimeoutErrorT" then class = "TimeoutError" end
        for code in codes:gmatch("[%dX]+") do op.errors[tonumber(code) or code] = class end
      end
    end
  end
  if #seed.order == 0 then error("seed page: no \"Available Operations\" list", 0) end
  return seed
end

return M
