-- sandbox/router.lua: method + path template routing for one API.
--   local r = router.new()
--   r:add("GET", "/users/{user_id}", {operation = "get_user", handler = fn, ...})
--   local route, params, allowed = r:match("GET", "/users/abc")
-- A literal segment beats a {param} in the same place (so /users/org_user_roles
-- is not taken for a user id). No route for the path -> nil; the path exists
-- with other methods -> nil, nil, "GET, PUT".
local util = require "sandbox.util"

local M = {}
local Router = {}
Router.__index = Router

function M.new() return setmetatable({ routes = {} }, Router) end

local function split(path)
  local segs = {}
  for seg in path:gmatch("[^/]+") do segs[#segs + 1] = seg end
  return segs
end

function Router:add(method, template, route)
  local segs = split(template)
  local spec = {}
  for i, s in ipairs(segs) do
    local name = s:match("^{(.+)}$")
    spec[i] = name and { param = name } or { literal = s }
  end
  route.method, route.template, route.segs = method, template, spec
  self.routes[#self.routes + 1] = route
  return route
end

local function try(route, segs)
  if #route.segs ~= #segs then return nil end
  local params, literals = {}, 0
  for i, s in ipairs(route.segs) do
    if s.literal then
      if s.literal ~= segs[i] then return nil end
      literals = literals + 1
    else
      params[s.param] = util.url_decode(segs[i])
    end
  end
  return params, literals
end

function Router:match(method, path)
  local segs = split(path)
  local best, best_params, best_score = nil, nil, -1
  local methods, seen = {}, {}
  -- first find the best-scoring template, then look for the method on it
  for _, r in ipairs(self.routes) do
    local params, score = try(r, segs)
    if params and score > best_score then best_score = score end
  end
  if best_score < 0 then return nil end
  for _, r in ipairs(self.routes) do
    local params, score = try(r, segs)
    if params and score == best_score then
      if r.method == method and not best then best, best_params = r, params end
      if not seen[r.method] then seen[r.method] = true; methods[#methods + 1] = r.method end
    end
  end
  if best then return best, best_params end
  return nil, nil, table.concat(methods, ", ")
end

return M
