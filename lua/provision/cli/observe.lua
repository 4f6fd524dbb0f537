-- What bin/provision shows of a client's work on stderr:
--   -v    one line per attempt (the client's `log` line: operation, method,
--         path without the query, status, time, attempt)
--   -vv   also the request line and headers and the response status and
--         headers, credentials masked (cli/mask.lua)
--   always: a line when a 429 is waited out,
--         "provision: waiting 3 s for the rate limit (Retry-After)"
--
-- All of it through the client's own user hooks and events (README "Hooks
-- and events"): observe.options() gives the `hooks` and `events` client
-- options. Lua 5.1/5.4 common syntax.
local mask = require("provision.cli.mask")

local observe = {}

local function seconds(d)
  local s = string.format("%.1f", d)
  return (s:gsub("%.0$", ""))
end

-- opts: {verbose = 0|1|2, api = <API table>, quiet_waits = bool, now = clock}
-- -> hooks (or nil), events (or nil)
function observe.options(out, opts)
  local verbose = opts.verbose or 0
  local h = {}
  local events
  if verbose >= 2 then
    h.before_request = function(req)
      local shown = mask.request(opts.api, req)
      local lines = { "> " .. shown.method .. " " .. shown.url }
      for _, x in ipairs(shown.headers) do lines[#lines + 1] = "> " .. x[1] .. ": " .. x[2] end
      out:err(table.concat(lines, "\n"))
      return req
    end
    h.after_response = function(resp)
      local lines = { "< HTTP " .. tostring(resp.status) }
      for _, x in ipairs(mask.response_headers(opts.api, resp)) do lines[#lines + 1] = "< " .. x[1] .. ": " .. x[2] end
      out:err(table.concat(lines, "\n"))
      return resp
    end
    events = function(ev)
      if ev.sent and ev.status == nil and ev.kind then out:err("< (no answer: " .. tostring(ev.kind) .. ")") end
    end
  end
  if not opts.quiet_waits then
    local last_line_at = -math.huge
    local now = opts.now or os.time
    h.on_retry = function(_, delay, reason)
      if reason ~= "throttled" or not delay then return end
      -- in a bulk run many calls wait at once: one line a second is enough
      local t = now()
      if t - last_line_at >= 1 then
        last_line_at = t
        out:err(string.format("provision: waiting %s s for the rate limit (Retry-After)", seconds(delay)))
      end
    end
  end
  return next(h) and h or nil, events
end

return observe
