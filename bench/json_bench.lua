-- JSON codec benchmark: provision.core's json_decode/json_encode against
-- lua-cjson on the same ~1 MB document, in one run. Prints figures only.
--   lua5.4 bench/json_bench.lua [N]      (N round trips per codec, default 20)
-- Finds provision/core.so through LUA_CPATH (the Makefile sets it) or
-- PROVISION_BUILD=<build dir>.
local build = os.getenv("PROVISION_BUILD")
if build then package.cpath = build .. "/?.so;" .. package.cpath end
local core = require "provision.core"
local ok_cjson, cjson = pcall(require, "cjson")

local N = tonumber(arg and arg[1]) or 20

-- A realistic document: a page of user records as the provisioning APIs
-- return them (64-bit IDs, strings with escapes and non-ASCII, nulls,
-- booleans, floats, nested objects and arrays, some empty).
local function make_doc(target)
  local names = { "Ana María", "Jürgen", "Zoë", "李雷", "O'Brien", "Dvořák", "Søren", "José \"Pepe\"" }
  local users, size, i = {}, 0, 0
  while size < target do
    i = i + 1
    local u = {
      id = 1000000000000000000 + i * 7919,
      userName = "user" .. i,
      displayName = names[i % #names + 1] .. " " .. i,
      email = "user" .. i .. "@example.com",
      isAdmin = i % 17 == 0,
      activated = i % 3 ~= 0,
      quotaLimit = i % 5 == 0 and core.null or i * 1048576,
      usedSpace = i * 1234.5678,
      score = i / 7,
      title = i % 4 == 0 and core.null or "Engineer\tL" .. (i % 5),
      avatar = "/storage/userPhotos/root/" .. string.format("%08x", i * 2654435761 % 4294967296) .. ".png",
      groups = { { id = "group-" .. (i % 10), name = "Team " .. (i % 10), manager = core.null } },
      tags = setmetatable(i % 6 == 0 and {} or { "alpha", "beta\\gamma", "line\nbreak" }, core.array_mt),
      profile = { created = "2024-01-0" .. (i % 9 + 1) .. "T12:00:00.000Z", location = "Zürich", listAdminModules = {} },
    }
    users[i] = u
    size = size + 470
  end
  local doc = assert(core.json_encode({ response = users, count = #users, total = #users, status = 0 }))
  return doc
end

local doc = make_doc(1024 * 1024)
io.write(string.format("document: %.2f MB\n", #doc / 1048576))

local function bench(name, decode, encode)
  collectgarbage("collect")
  -- warm up once
  local v = decode(doc)
  local out = encode(v)
  local t0 = os.clock()
  for _ = 1, N do v = decode(doc) end
  local t1 = os.clock()
  for _ = 1, N do out = encode(v) end
  local t2 = os.clock()
  local dec, enc = (t1 - t0) / N, (t2 - t1) / N
  io.write(string.format("%-15s decode %7.2f ms (%6.1f ops/s, %6.1f MB/s)  encode %7.2f ms (%6.1f ops/s, %6.1f MB/s)  round trip %6.1f ops/s\n",
    name, dec * 1e3, 1 / dec, #doc / 1048576 / dec, enc * 1e3, 1 / enc, #out / 1048576 / enc, 1 / (dec + enc)))
  return dec, enc
end

io.write(string.format("N = %d round trips per codec (CPU time, os.clock)\n", N))
local pd, pe = bench("provision.core", core.json_decode, core.json_encode)
if ok_cjson then
  local cd, ce = bench("lua-cjson " .. tostring(cjson._VERSION), cjson.decode, cjson.encode)
  io.write(string.format("ratio provision/cjson time: decode %.2fx, encode %.2fx, round trip %.2fx (>1 = provision slower)\n",
    pd / cd, pe / ce, (pd + pe) / (cd + ce)))
else
  io.write("lua-cjson not installed: no comparison\n")
end
