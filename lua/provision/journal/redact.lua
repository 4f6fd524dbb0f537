-- What may go into the journal: a journal is read in audits, copied and
-- shared, so no secret may reach it. The rules:
--
--   * A table field whose NAME looks like a secret has its value replaced by
--     "[redacted]" (the field name stays, so an audit still shows that a
--     password changed, never to what). A name looks like a secret when,
--     lower-cased with everything but letters and digits removed, it
--     contains one of `secret_words` ("X-Api-Key" -> "xapikey" contains
--     "apikey"). Nested tables and arrays are walked.
--   * A string VALUE that starts like an Authorization header credential
--     ("Bearer ...", "Basic ...") is replaced the same way.
--   * Free text (error messages, the argv summary) is made one line, has
--     `name=value` / `name: value` pairs with a secret-like name and
--     "Bearer ..."/"Basic ..." credentials masked, and is capped.
--
-- The caller is still expected to hand over sanitized text and never a
-- request's headers or body; these rules are the last line, not the first.
local redact = {}

redact.MARK = "[redacted]"

redact.secret_words = {
  "password", "passwd", "passphrase", "secret", "token", "apikey", "accesskey",
  "authorization", "cookie", "credential", "privatekey", "sessionid", "bearer",
}

function redact.is_secret_name(name)
  if type(name) ~= "string" then return false end
  local n = name:lower():gsub("[^%w]", "")
  for _, w in ipairs(redact.secret_words) do
    if n:find(w, 1, true) then return true end
  end
  return false
end

local function credential_value(s)
  return s:find("^%s*[Bb][Ee][Aa][Rr][Ee][Rr]%s") ~= nil or s:find("^%s*[Bb][Aa][Ss][Ii][Cc]%s") ~= nil
end

-- A copy of `value` with secret-named fields and credential-looking strings
-- replaced by redact.MARK; metatables (JSON array marks) are kept. The
-- caller's table is never modified. Cycles are left for the JSON encoder to
-- refuse.
function redact.table(value, seen)
  if type(value) == "string" then
    return credential_value(value) and redact.MARK or value
  end
  if type(value) ~= "table" then return value end
  seen = seen or {}
  if seen[value] then return value end
  seen[value] = true
  local out = {}
  for k, v in pairs(value) do
    if redact.is_secret_name(k) then
      out[k] = redact.MARK
    else
      out[k] = redact.table(v, seen)
    end
  end
  seen[value] = nil
  return setmetatable(out, getmetatable(value))
end

-- Cut `s` to at most `max` bytes without splitting a UTF-8 sequence.
function redact.cap(s, max)
  if #s <= max then return s end
  local cut = max - 3
  -- step back over continuation bytes (10xxxxxx) to the start of a character
  while cut > 0 and s:byte(cut + 1) and s:byte(cut + 1) >= 0x80 and s:byte(cut + 1) < 0xC0 do
    cut = cut - 1
  end
  return s:sub(1, cut) .. "..."
end

-- One line of free text fit for the journal, at most `max` bytes.
function redact.text(s, max)
  s = tostring(s):gsub("%c+", " ")
  s = s:gsub("([Bb][Ee][Aa][Rr][Ee][Rr])%s+[^%s,;\"']+", "%1 " .. redact.MARK)
  s = s:gsub("([Bb][Aa][Ss][Ii][Cc])%s+[A-Za-z0-9+/=]+", "%1 " .. redact.MARK)
  -- scanned name by name (not one gsub), so that "error: token=abc" masks
  -- abc: a gsub would take "token=abc" as the value of "error"
  local out, pos = {}, 1
  while true do
    local from, to, name = s:find("([%w_%-]+)\"?%s*[=:]%s*\"?", pos)
    if not from then break end
    out[#out + 1] = s:sub(pos, to)
    pos = to + 1
    if redact.is_secret_name(name) then
      local _, vend = s:find("^[^%s&,;\"']+", pos)
      if vend then
        out[#out + 1] = redact.MARK
        pos = vend + 1
      end
    end
  end
  out[#out + 1] = s:sub(pos)
  return redact.cap(table.concat(out), max or 1024)
end

return redact
