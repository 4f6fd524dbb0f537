-- The ceiling of bench/http_bench.lua: bench/raw_curl.c (plain libcurl in
-- C), built here with the system's C compiler and run as a child process
-- that times its own transfers (see the file's head comment).
--   local raw = require("bench.raw")
--   local exe, cjson_or_reason = raw.build(root, dir)   -- nil, reason when it cannot be built
--   local r = raw.run(exe, "seq", url, n, nil, headers)  -- {n =, wall = s, cpu = s}
-- headers: {"Name: value", ...}, the same lines provision sends.
-- And the Lua floor, bench/lua_floor.c (the least a Lua binding can do per
-- request), built as a module this process loads:
--   local floor = raw.floor(root, dir)   -- the module, or nil, reason
--   lua5.4 bench/raw.lua floor SO URL N [HEADER...]   (N requests: for callgrind)
local M = {}

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

-- Builds dir/raw_curl. Returns the path and whether it has cJSON (or why
-- not), or nil and the reason it could not be built.
function M.build(root, dir)
  local src, exe, log = root .. "/bench/raw_curl.c", dir .. "/raw_curl", dir .. "/raw_curl.log"
  local cc = os.getenv("CC") or "cc"
  local base = ("%s -std=c99 -O2 -Wall -Wextra -Werror -o %s %s"):format(cc, quote(exe), quote(src))
  if sh(base .. " -DHAVE_CJSON -lcurl -lcjson >" .. quote(log) .. " 2>&1") then return exe, true end
  if sh(base .. " -lcurl >" .. quote(log) .. " 2>&1") then
    return exe, "cJSON not found (Debian: libcjson-dev): no libcurl + cJSON row"
  end
  local f = io.open(log)
  local why = f and f:read("a") or ""
  if f then f:close() end
  return nil, "cannot build bench/raw_curl.c (needs cc and libcurl4-openssl-dev): " .. why:sub(1, 300)
end

-- Builds dir/lua_floor.so and loads it: the module, or nil and why not.
function M.floor(root, dir)
  local src, so, log = root .. "/bench/lua_floor.c", dir .. "/lua_floor.so", dir .. "/lua_floor.log"
  local cc = os.getenv("CC") or "cc"
  local cflags = io.popen("pkg-config --cflags lua5.4 2>/dev/null"):read("l") or ""
  local cmd = ("%s -std=c99 -O2 -Wall -Wextra -Werror -shared -fPIC %s -o %s %s -lcurl >%s 2>&1"):format(cc, cflags,
    quote(so), quote(src), quote(log))
  if not sh(cmd) then
    local f = io.open(log)
    local why = f and f:read("a") or ""
    if f then f:close() end
    return nil, "cannot build bench/lua_floor.c (needs cc, liblua5.4-dev, libcurl4-openssl-dev): " .. why:sub(1, 300)
  end
  local open, err = package.loadlib(so, "luaopen_lua_floor")
  if not open then return nil, "cannot load " .. so .. ": " .. tostring(err) end
  return open()
end

-- Runs one timed loop of the program; `wrap` (optional) prefixes the command
-- (valgrind). Returns {n, wall, cpu} in seconds, or raises with its output.
function M.run(exe, mode, url, n, k, headers, wrap)
  local args = { quote(exe), mode, quote(url), tostring(n) }
  if mode == "multi" then args[#args + 1] = tostring(k) end
  for _, h in ipairs(headers or {}) do args[#args + 1] = quote(h) end
  local cmd = (wrap and (wrap .. " ") or "") .. table.concat(args, " ") .. " 2>&1"
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  local rn, wall, cpu = out:match("n=(%d+) wall=([%d.]+) cpu=([%d.]+)")
  if not rn then error("raw_curl failed: " .. out:sub(1, 400), 0) end
  return { n = tonumber(rn), wall = tonumber(wall), cpu = tonumber(cpu), output = out }
end

-- Worker mode: N floor requests, for instruction counts under callgrind.
if arg and arg[0] and arg[0]:match("raw%.lua$") and arg[1] == "floor" then
  local open = assert(package.loadlib(arg[2], "luaopen_lua_floor"))
  local h = open().new({ table.unpack(arg, 5) })
  for _ = 1, tonumber(arg[4]) do
    local resp = h:get(arg[3])
    if resp.status ~= 200 then error("unexpected status " .. resp.status) end
  end
end

return M
