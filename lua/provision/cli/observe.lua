-- What bin/provision shows of a client's work on stderr:
--   -v    one line per attempt (the client's `log` line: operation, method,
--         path without the query, status, time, attempt)
--   -vv   also the request line and headers and the response status and
--         headers, credentials masked (cli/mask.lua)
--   always: a line when a 429 is waited out,
--         "provision: waiting 3 s for the rate limit (Retry-After)"
--
-- This is the one place that hooks into a client. Until the client
-- reports events of its own, it wraps two methods of the one client
-- instance: log_attempt (request and answer of each attempt) and next_step
-- (the decision to wait and send again). Lua 5.1/5.4 common syntax.
local mask = require("provision.cli.mask")

local observe = {}

local function seconds(d)
  local s = string.format("%.1f", d)
  return (s:gsub("%.0$", ""))
end

-- opts: {verbose = 0|1|2, api = <API table>, quiet_waits = bool}
function observe.attach(client, out, opts)
  local verbose = opts.verbose or 0
  if verbose >= 2 then
    local base = client.log_attempt
    rawset(client, "log_attempt", function(self, job, req, resp, started)
      local shown = mask.request(opts.api, req)
      local lines = { "> " .. shown.method .. " " .. shown.url }
      for _, h in ipairs(shown.headers) do lines[#lines + 1] = "> " .. h[1] .. ": " .. h[2] end
      if resp.kind then
        lines[#lines + 1] = "< (no answer: " .. tostring(resp.kind) .. ")"
      else
        lines[#lines + 1] = "< HTTP " .. tostring(resp.status)
        for _, h in ipairs(mask.response_headers(opts.api, resp)) do lines[#lines + 1] = "< " .. h[1] .. ": " .. h[2] end
      end
      out:err(table.concat(lines, "\n"))
      return base(self, job, req, resp, started)
    end)
  end
  if not opts.quiet_waits then
    local base = client.next_step
    local last_line_at = -math.huge
    rawset(client, "next_step", function(self, job, req, resp, retry_after)
      local step, delay = base(self, job, req, resp, retry_after)
      if step == "again" and not resp.kind and resp.status == 429 and delay then
        local now = self.transport.now()
        -- in a bulk run many calls wait at once: one line a second is enough
        if now - last_line_at >= 1 then
          last_line_at = now
          out:err(string.format("provision: waiting %s s for the rate limit (%s)", seconds(delay),
            retry_after and "Retry-After" or "back-off"))
        end
      end
      return step, delay
    end)
  end
end

return observe
