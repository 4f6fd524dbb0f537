-- sandbox/faults.lua: fault injection rules.
--
-- A rule (from --faults FILE, a Lua table, or POST /_sandbox/faults JSON):
--   method      "GET" | "*"/nil for any
--   path        prefix of the full request path ("/agilicus/users"), or
--   pattern     a Lua pattern matched against it ("^/outpost/api/v1/[^/]+$")
--   api         "docspace" | "outpost" | "outpost-latest" | "agilicus" | "document360"
--   sequence    list of actions, one per matching request, then the rule is
--               spent (or starts over with loop = true)
--   probability 0..1: apply `action` to that share of matching requests
--   action      used when there is no sequence (default "503")
--   times       stop after this many injected faults
--   delay_ms    latency added to every matching request (then `action`, if any)
--   retry_after seconds for the Retry-After of a 429 (default 1) or of any other status
-- Actions (strings, or tables like {action = "delay", ms = 200}):
--   "500" | "502" | "503" | any 4xx/5xx  status (502/503 with an HTML body)
--   "429"        Too Many Requests with Retry-After
--   "delay:MS"   wait MS milliseconds, then serve normally
--   "close"      close the connection before acting on the request
--   "close_after" act on the request, then close without answering
--   "close_mid"  act on it, then close in the middle of the response headers
--   "truncate"   act on it, send full headers (Content-Length) but half the body
--   "pass"       no fault for this request
-- luacheck: max line length 210
local M = {}
local Faults = {}
Faults.__index = Faults

local KINDS = { close = true, close_after = true, close_mid = true, truncate = true, pass = true }

-- Normalises one action; returns {kind=..., status=, ms=, retry_after=} or nil, err.
function M.parse_action(a, rule)
  if type(a) == "number" then a = tostring(math.floor(a)) end
  if type(a) == "table" then
    local kind = a.action or a.kind
    if a.status then
      return { kind = "status", status = tonumber(a.status), retry_after = a.retry_after or (rule and rule.retry_after) }
    end
    if kind == "delay" or kind == "latency" or (not kind and (a.ms or a.delay_ms)) then
      return { kind = "delay", ms = tonumber(a.ms or a.delay_ms) or 0 }
    end
    if kind then
      local parsed, err = M.parse_action(tostring(kind), rule)
      if parsed and parsed.kind == "status" then parsed.retry_after = a.retry_after or parsed.retry_after end
      return parsed, err
    end
    return nil, "action table needs status, action or ms"
  end
  if type(a) ~= "string" then return nil, "action must be a string or table" end
  a = a:lower():gsub("%-", "_")
  local status = a:match("^(%d%d%d)$")
  if status then
    status = tonumber(status)
    if status < 400 or status > 599 then return nil, "fault status must be 4xx or 5xx" end
    return { kind = "status", status = status, retry_after = rule and rule.retry_after }
  end
  local ms = a:match("^delay:(%d+)$") or a:match("^latency:(%d+)$")
  if ms then return { kind = "delay", ms = tonumber(ms) } end
  if KINDS[a] then return { kind = a } end
  return nil, "unknown fault action '" .. a .. "'"
end

function M.new(seed)
  local self = setmetatable({ rules = {}, next_id = 0 }, Faults)
  self:seed(seed or 1)
  return self
end

function Faults.seed(_, n)
  math.randomseed(n)
end

-- Adds one rule; returns the stored rule or nil, err.
function Faults:add(spec)
  if type(spec) ~= "table" then return nil, "a fault rule must be an object" end
  local rule = {
    method = spec.method and spec.method:upper() or nil,
    path = spec.path, pattern = spec.pattern, api = spec.api,
    probability = tonumber(spec.probability), times = tonumber(spec.times),
    delay_ms = tonumber(spec.delay_ms or spec.latency_ms), retry_after = tonumber(spec.retry_after),
    loop = spec.loop and true or false, hits = 0, seen = 0,
  }
  if rule.method == "*" then rule.method = nil end
  if rule.pattern then
    local ok = pcall(string.match, "", rule.pattern)
    if not ok then return nil, "bad Lua pattern" end
  end
  if spec.sequence then
    if type(spec.sequence) ~= "table" or #spec.sequence == 0 then return nil, "sequence must be a non-empty list" end
    rule.sequence = {}
    for i, a in ipairs(spec.sequence) do
      local parsed, err = M.parse_action(a, rule)
      if not parsed then return nil, "sequence[" .. i .. "]: " .. err end
      rule.sequence[i] = parsed
    end
  elseif spec.action or not rule.delay_ms then
    local parsed, err = M.parse_action(spec.action or "503", rule)
    if not parsed then return nil, err end
    rule.action = parsed
  end
  if rule.probability and (rule.probability < 0 or rule.probability > 1) then
    return nil, "probability must be within 0..1"
  end
  self.next_id = self.next_id + 1
  rule.id = self.next_id
  self.rules[#self.rules + 1] = rule
  return rule
end

function Faults:clear() self.rules = {} end

function Faults:remove(id)
  for i, r in ipairs(self.rules) do
    if r.id == id then table.remove(self.rules, i); return true end
  end
  return false
end

local function matches(rule, method, path, api)
  if rule.method and rule.method ~= method then return false end
  if rule.api and rule.api ~= api then return false end
  if rule.pattern and not path:match(rule.pattern) then return false end
  if rule.path and path:sub(1, #rule.path) ~= rule.path then return false end
  return true
end

-- Decides the fault for one request: returns delay_ms (or 0) and an action
-- (nil = serve normally) and the rule id that fired.
function Faults:decide(method, path, api)
  local delay = 0
  for _, rule in ipairs(self.rules) do
    if matches(rule, method, path, api) and not (rule.times and rule.hits >= rule.times) then
      rule.seen = rule.seen + 1
      if rule.delay_ms then delay = delay + rule.delay_ms end
      local action
      if rule.sequence then
        local n = #rule.sequence
        if rule.loop or rule.hits < n then
          action = rule.sequence[rule.hits % n + 1]
          rule.hits = rule.hits + 1
          if action.kind == "pass" then return delay, nil, rule.id end
        end
      elseif rule.action then
        if not rule.probability or math.random() < rule.probability then
          action = rule.action
          rule.hits = rule.hits + 1
        end
      end
      if action then
        if action.kind == "delay" then
          return delay + action.ms, nil, rule.id
        end
        if action.kind == "pass" then return delay, nil, rule.id end
        return delay, action, rule.id
      end
    end
  end
  return delay, nil
end

function Faults:describe()
  local out = {}
  for _, r in ipairs(self.rules) do
    local function show(a)
      if a.kind == "status" then return tostring(a.status) end
      if a.kind == "delay" then return "delay:" .. a.ms end
      return a.kind
    end
    local seq
    if r.sequence then
      seq = {}
      for i, a in ipairs(r.sequence) do seq[i] = show(a) end
    end
    out[#out + 1] = {
      id = r.id, method = r.method, path = r.path, pattern = r.pattern, api = r.api,
      probability = r.probability, times = r.times, delay_ms = r.delay_ms, retry_after = r.retry_after,
      loop = r.loop, hits = r.hits, seen = r.seen, sequence = seq, action = r.action and show(r.action),
    }
  end
  return out
end

return M
