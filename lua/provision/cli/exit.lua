-- Exit codes of bin/provision, and which one an error (or a bulk run) gets.
--
--   0    success (for --input: every row ok or already there)
--   1    the API rejected the request (4xx: bad request, not found, conflict,
--        rate limited after every wait)
--   2    usage or configuration error (nothing was sent)
--   3    network or transport error (connect, DNS, TLS, timeout of a call
--        that changes nothing, connection closed) with nothing applied
--   4    authentication: 401 or 403, or credentials that do not fit the operation
--   5    server error (5xx, an unreadable answer) with nothing applied
--   6    outcome unknown: the request may have been applied (lost answer,
--        5xx or timeout after a create was sent, no read-back could settle it)
--   130  interrupted (Ctrl-C)
--
-- For --input, the worst row decides: 130, then 6, 5, 3, 4, 2, 1, 0.
-- Lua 5.1/5.4 common syntax.
local exit = {
  OK = 0, REJECTED = 1, USAGE = 2, TRANSPORT = 3, AUTH = 4, SERVER = 5, UNKNOWN = 6,
  INTERRUPTED = 130,
}

-- What each code means, for `provision help exit-codes` and docs/cli.md.
exit.table = {
  { 0, "success (--input: every row ok, or already there)" },
  { 1, "the API rejected the request: 4xx (bad request, not found, conflict, rate limited)" },
  { 2, "usage or configuration error; nothing was sent" },
  { 3, "network or transport error (connect, DNS, TLS, timeout, connection lost); nothing applied" },
  { 4, "authentication: 401 or 403, or credentials that do not fit the operation" },
  { 5, "server error (5xx, or an answer that cannot be read); nothing applied" },
  { 6, "outcome unknown: the request may have been applied (check before sending again)" },
  { 130, "interrupted (Ctrl-C): in-flight requests cancelled, what was done is printed" },
  { 70, "internal error: a bug in provision (please report it)" },
}

local transport_kinds = { connect = true, dns = true, timeout = true, tls = true, network = true,
                          closed = true, protocol = true, aborted = true, too_large = true }

local function auth_status(s) return s == 401 or s == 403 end

-- The exit code for a library error object.
function exit.for_error(err)
  if type(err) ~= "table" then return exit.REJECTED end
  if err.outcome == "unknown" then return exit.UNKNOWN end
  local kind = err.kind
  if kind == "invalid_argument" then return exit.USAGE end
  if kind == "auth" then return exit.AUTH end
  if transport_kinds[kind] then return exit.TRANSPORT end
  local status = tonumber(err.api_status) or tonumber(err.status)
  if kind == "api" and tonumber(err.api_status) == nil then status = nil end
  if status and auth_status(status) then return exit.AUTH end
  if kind == "decode" then return exit.SERVER end
  if status and status >= 500 then return exit.SERVER end
  return exit.REJECTED
end

local rank = { [0] = 0, [1] = 1, [2] = 2, [4] = 3, [3] = 4, [5] = 5, [6] = 6, [130] = 7 }

-- The worse of two exit codes.
function exit.worst(a, b)
  if (rank[b] or 1) > (rank[a] or 1) then return b end
  return a
end

return exit
