-- "Did you mean" suggestions for misspelt names (client options, call
-- settings, CLI flags and commands). Lua 5.1/5.4 common syntax.
local suggest = {}

-- Edit distance (Levenshtein), for suggestions.
local function distance(a, b)
  local la, lb = #a, #b
  if la == 0 then return lb end
  if lb == 0 then return la end
  local prev, cur = {}, {}
  for j = 0, lb do prev[j] = j end
  for i = 1, la do
    cur[0] = i
    local ca = a:byte(i)
    for j = 1, lb do
      local cost = (ca == b:byte(j)) and 0 or 1
      local v = prev[j] + 1
      if cur[j - 1] + 1 < v then v = cur[j - 1] + 1 end
      if prev[j - 1] + cost < v then v = prev[j - 1] + cost end
      cur[j] = v
    end
    prev, cur = cur, prev
  end
  return prev[lb]
end
suggest.distance = distance

local function norm(s)
  return (tostring(s):lower():gsub("[%-_%.%s]", ""))
end

-- Up to `max` names from `candidates` close to `word`: equal ignoring case
-- and separators, then containing it (or contained), then a small edit
-- distance. Returns a list (possibly empty).
function suggest.suggest(word, candidates, max)
  max = max or 3
  local w = norm(word)
  local scored = {}
  for _, c in ipairs(candidates) do
    local nc = norm(c)
    local score
    if nc == w then
      score = 0
    elseif #w >= 3 and (nc:find(w, 1, true) or w:find(nc, 1, true)) then
      score = 1
    else
      local d = distance(w, nc)
      local limit = math.max(2, math.floor(#w / 3))
      if d <= limit then score = 1 + d end
    end
    if score then scored[#scored + 1] = { c, score } end
  end
  table.sort(scored, function(a, b)
    if a[2] ~= b[2] then return a[2] < b[2] end
    return a[1] < b[1]
  end)
  local out = {}
  for i = 1, math.min(max, #scored) do out[i] = scored[i][1] end
  return out
end

-- " (did you mean x or y?)" or "".
function suggest.did_you_mean(word, candidates, prefix)
  local s = suggest.suggest(word, candidates)
  if #s == 0 then return "" end
  prefix = prefix or ""
  for i, v in ipairs(s) do s[i] = prefix .. v end
  if #s == 1 then return "; did you mean " .. s[1] .. "?" end
  return "; did you mean " .. table.concat(s, ", ", 1, #s - 1) .. " or " .. s[#s] .. "?"
end

return suggest
