-- Credentials masked in what bin/provision shows of a request or a
-- response (--dry-run, -vv): Authorization values after the scheme,
-- cookies and API-key headers and query parameters named by the API's
-- security schemes, Set-Cookie values. Lua 5.1/5.4 common syntax.
local mask = {}

local sensitive_headers = { authorization = true, ["proxy-authorization"] = true, cookie = true,
                            ["x-api-key"] = true, apikey = true, ["api-key"] = true }

local function secret_names(api)
  local headers, cookies, query = {}, {}, {}
  for _, s in pairs(api.security_schemes or {}) do
    if s.type == "apiKey" then
      if s["in"] == "header" then headers[s.name:lower()] = true
      elseif s["in"] == "cookie" then cookies[s.name] = true
      elseif s["in"] == "query" then query[s.name] = true end
    end
  end
  return headers, cookies, query
end

local function header_value(name, value, secret_headers, secret_cookies)
  local lname = name:lower()
  if lname == "authorization" or lname == "proxy-authorization" then
    local scheme = value:match("^(%S+)%s")
    return scheme and (scheme .. " ***") or "***"
  elseif lname == "cookie" then
    return (value:gsub("([^=;%s]+)=([^;]*)", function(k, v)
      if secret_cookies[k] then return k .. "=***" end
      return k .. "=" .. v
    end))
  elseif lname == "set-cookie" then
    return (value:gsub("^([^=;%s]+)=[^;]*", "%1=***"))
  elseif secret_headers[lname] or sensitive_headers[lname] or lname:find("token", 1, true)
      or lname:find("secret", 1, true) then
    return "***"
  end
  return value
end

-- A copy of a built request {method, url, headers = {{name, value}}, body}
-- with its credentials masked.
function mask.request(api, req)
  local secret_headers, secret_cookies, secret_query = secret_names(api)
  local headers = {}
  for i, h in ipairs(req.headers or {}) do
    headers[i] = { h[1], header_value(h[1], h[2], secret_headers, secret_cookies) }
  end
  local url = req.url
  for k in pairs(secret_query) do
    url = url:gsub("([?&]" .. k:gsub("%p", "%%%0") .. "=)[^&#]*", "%1***")
  end
  return { method = req.method, url = url, headers = headers, body = req.body }
end

-- The header lines of a response ({headers = map, header_list = {{n, v}}}),
-- masked, in the order received (or by name when the order is not known).
function mask.response_headers(api, resp)
  local secret_headers, secret_cookies = secret_names(api)
  local list = {}
  if type(resp.header_list) == "table" and #resp.header_list > 0 then
    for i, h in ipairs(resp.header_list) do list[i] = { h[1], h[2] } end
  elseif type(resp.headers) == "table" then
    for k, v in pairs(resp.headers) do list[#list + 1] = { k, tostring(v) } end
    table.sort(list, function(a, b) return a[1] < b[1] end)
  end
  for _, h in ipairs(list) do h[2] = header_value(h[1], h[2], secret_headers, secret_cookies) end
  return list
end

return mask
