-- A tiny HTTP/1.1 server for executor tests: answers every request with a
-- JSON description of what it received (method, path, query, headers, body).
-- Special paths: /status/NNN answers NNN; /json-bad answers invalid JSON;
-- /html/NNN answers NNN with an HTML page of ?size bytes; /redirect?to=URL[&code=N]
-- answers 302 (or N); /reply?status=&type=&body= answers exactly that. One connection at a time, closed after each answer. Prints "PORT n".
local socket = require("socket")
local cjson = require("cjson")

local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()
io.write("PORT ", port, "\n"); io.flush()

local function parse_query(q)
  local list = {}
  for pair in (q or ""):gmatch("[^&]+") do list[#list + 1] = pair end
  return list
end

local function respond(c, status, headers, body)
  local out = { "HTTP/1.1 " .. status .. " X\r\n" }
  headers["Content-Length"] = #body
  headers["Connection"] = "close"   -- one connection at a time: never hold a client
  for k, v in pairs(headers) do out[#out + 1] = k .. ": " .. v .. "\r\n" end
  out[#out + 1] = "\r\n"
  out[#out + 1] = body
  c:send(table.concat(out))
end

local tokens_issued = 0

local function serve(c)
  c:settimeout(10)
  do
    local line = c:receive("*l")
    if not line then return end
    local method, target = line:match("^(%u+) (%S+) HTTP/1%.%d$")
    if not method then return end
    local headers, list, len = {}, {}, 0
    while true do
      local h = c:receive("*l")
      if not h or h == "" then break end
      local name, value = h:match("^([^:]+):%s*(.-)%s*$")
      if name then
        headers[name:lower()] = value
        list[#list + 1] = { name, value }
        if name:lower() == "content-length" then len = tonumber(value) end
      end
    end
    local body = len > 0 and c:receive(len) or ""
    local path, query = target:match("^([^?]*)%??(.*)$")
    local status = tonumber(path:match("^/status/(%d+)")) or 200
    local want = path:match("^/expect%-token/([^/]+)")
    if path == "/oauth/token" then
      tokens_issued = tokens_issued + 1
      respond(c, 200, { ["Content-Type"] = "application/json" }, cjson.encode({
        access_token = "at-" .. tokens_issued, token_type = "Bearer",
        expires_in = tonumber(query:match("ttl=(%d+)")) or 3600,
        seen_authorization = headers["authorization"] ~= nil, seen_body = body }))
    elseif want and headers["authorization"] ~= "Bearer " .. want then
      respond(c, 401, { ["Content-Type"] = "application/json" }, '{"error":"token expired"}')
    elseif path:match("^/reply") then
      -- /reply?status=N&type=T&body=URL-encoded text: answers exactly that
      local function arg(name)
        local v = query:match("[?&]?" .. name .. "=([^&]*)")
        return v and v:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
      end
      respond(c, tonumber(arg("status")) or 200, { ["Content-Type"] = arg("type") or "application/json" },
        arg("body") or "")
    elseif path:match("^/json%-bad") then
      respond(c, 200, { ["Content-Type"] = "application/json" }, "{\"broken\": ")
    elseif path:match("^/html/%d+") then
      local size = tonumber(query:match("size=(%d+)")) or 100
      local page = "<html><head><title>Service Unavailable</title></head><body>"
      page = page .. string.rep("x", math.max(0, size - #page - 14)) .. "</body></html>"
      respond(c, tonumber(path:match("^/html/(%d+)")), { ["Content-Type"] = "text/html" }, page)
    elseif path == "/redirect" then
      local to = query:match("to=([^&]*)"):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
      respond(c, tonumber(query:match("code=(%d+)")) or 302, { Location = to }, "")
    else
      local doc = { method = method, path = path, raw_query = query, query = parse_query(query),
                    headers = headers, header_list = list, body = body }
      respond(c, status, { ["Content-Type"] = "application/json", ["X-Echo"] = "1" }, cjson.encode(doc))
    end
  end
end

while true do
  local c = server:accept()
  if c then
    pcall(serve, c)
    c:close()
  end
end
