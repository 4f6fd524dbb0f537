-- The curated code changes `make mutate` (scripts/mutate.lua) applies one at
-- a time to a scratch copy of the repository. Each must make its named spec
-- fail; one that does not "survived", and the suite has a hole there.
--
--   name    short id (also what `scripts/mutate.lua NAME...` selects)
--   file    path in the repository
--   find    exact text, found exactly once in the file (else an error: the
--           code drifted and the mutation needs updating)
--   replace what it becomes
--   spec    the spec file expected to fail (only it runs)
--
-- A mutation under csrc/ rebuilds the scratch copy's core before its run.
local H = "tests/spec/hardening_spec.lua"
local CLIENT = "tests/spec/client_spec.lua"
local RETRY = "tests/spec/retry_spec.lua"
local CORE_HTTP = "tests/spec/core_http_spec.lua"
local CORE_JSON = "tests/spec/core_json_spec.lua"
local RECONCILE = "tests/spec/reconcile_spec.lua"
local ROSTER = "tests/spec/roster_spec.lua"

return {
  -- TLS
  { name = "tls-verify-peer-off", file = "csrc/http.c", spec = CORE_HTTP,
    find = "CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L", replace = "CURLOPT_SSL_VERIFYPEER, 0L" },
  { name = "tls-verify-host-off", file = "csrc/http.c", spec = H,
    find = "CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L", replace = "CURLOPT_SSL_VERIFYHOST, 0L" },

  -- secrets in error messages
  { name = "auth-token-in-error", file = "lua/provision/auth.lua", spec = H,
    find = [[return bad("token for " .. name .. " holds a space or control character")]],
    replace = [[return bad("token " .. value .. " for " .. name .. " holds a space or control character")]] },
  { name = "auth-password-in-error", file = "lua/provision/auth.lua", spec = H,
    find = [[return bad("Basic auth username must not contain ':'")]],
    replace = [[return bad("Basic auth username must not contain ':' (password " .. c.password .. ")")]] },
  { name = "auth-cookie-in-error", file = "lua/provision/auth.lua", spec = H,
    find = [[return bad("cookie value for " .. name .. " holds a forbidden character")]],
    replace = [[return bad("cookie value " .. value .. " for " .. name .. " holds a forbidden character")]] },
  { name = "oauth2-secret-in-error", file = "lua/provision/oauth2.lua", spec = H,
    find = [[return nil, "token request answered HTTP " .. resp.status]],
    replace = [[return nil, "token request answered HTTP " .. resp.status .. " for " .. cfg.client_id .. ":" .. cfg.client_secret]] },
  { name = "oauth2-token-url-userinfo-allowed", file = "lua/provision/options.lua", spec = H,
    find = [[if authority and authority:find("@", 1, true) then
    return nil, "token_url must not hold]],
    replace = [[if false then
    return nil, "token_url must not hold]] },
  { name = "config-syntax-error-quoted", file = "lua/provision/cli/settings.lua", spec = H,
    find = [[if line then return nil, "config " .. path .. ": syntax error on line " .. line end]],
    replace = "" },

  -- header injection
  { name = "client-header-crlf-unchecked", file = "lua/provision/options.lua", spec = H,
    find = [[if not core.header_value_ok(tostring(h[2])) then]], replace = "if false then" },
  { name = "core-header-crlf-unchecked", file = "csrc/http.c", spec = CORE_HTTP,
    find = "  if (has_ctl(value, vlen)) {", replace = "  if (0) {" },

  -- settings checked up front
  { name = "unknown-option-accepted", file = "lua/provision/options.lua", spec = H,
    find = "local f = checks[k]\n", replace = "local f = checks[k] or function() return true end\n" },
  { name = "negative-seconds-accepted", file = "lua/provision/options.lua", spec = H,
    find = [[if type(v) ~= "number" or v ~= v or v < 0 or v > 1e12 then]], replace = [[if type(v) ~= "number" then]] },

  -- retries
  { name = "retry-408-dropped", file = "lua/provision/retry.lua", spec = H,
    find = "local retry_statuses = { [408] = true, [502] = true, [503] = true, [504] = true }",
    replace = "local retry_statuses = { [502] = true, [503] = true, [504] = true }" },
  { name = "retry-502-dropped", file = "lua/provision/retry.lua", spec = H,
    find = "local retry_statuses = { [408] = true, [502] = true, [503] = true, [504] = true }",
    replace = "local retry_statuses = { [408] = true, [503] = true, [504] = true }" },
  { name = "retry-503-dropped", file = "lua/provision/retry.lua", spec = H,
    find = "local retry_statuses = { [408] = true, [502] = true, [503] = true, [504] = true }",
    replace = "local retry_statuses = { [408] = true, [502] = true, [504] = true }" },
  { name = "retry-504-dropped", file = "lua/provision/retry.lua", spec = H,
    find = "local retry_statuses = { [408] = true, [502] = true, [503] = true, [504] = true }",
    replace = "local retry_statuses = { [408] = true, [502] = true, [503] = true }" },
  { name = "put-not-idempotent", file = "lua/provision/retry.lua", spec = H,
    find = "local idempotent_methods = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true }",
    replace = "local idempotent_methods = { GET = true, HEAD = true, DELETE = true, OPTIONS = true }" },
  { name = "delete-not-idempotent", file = "lua/provision/retry.lua", spec = H,
    find = "local idempotent_methods = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true }",
    replace = "local idempotent_methods = { GET = true, HEAD = true, PUT = true, OPTIONS = true }" },
  { name = "post-idempotent", file = "lua/provision/retry.lua", spec = H,
    find = "local idempotent_methods = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true }",
    replace = "local idempotent_methods = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true, POST = true }" },
  { name = "op-idempotent-ignored", file = "lua/provision/retry.lua", spec = H,
    find = "local idempotent = idempotent_methods[method] or (op and op.idempotent)",
    replace = "local idempotent = idempotent_methods[method]" },
  { name = "retry-429-dropped", file = "lua/provision/retry.lua", spec = H,
    find = "    if status == 429 then", replace = "    if status == 0 then" },
  { name = "retry-after-seconds-ignored", file = "lua/provision/retry.lua", spec = H,
    find = "if n then return n >= 0 and n or nil end", replace = "if n then return nil end" },
  { name = "retry-after-date-off-by-an-hour", file = "lua/provision/retry.lua", spec = RETRY,
    find = "local delta = t - (now_epoch or os.time())", replace = "local delta = t + 3600 - (now_epoch or os.time())" },
  { name = "never-sent-shortcut-dropped", file = "lua/provision/retry.lua", spec = CLIENT,
    find = "if outcome.request_sent ~= false and not idempotent then", replace = "if not idempotent then" },
  { name = "one-attempt-too-many", file = "lua/provision/retry.lua", spec = CLIENT,
    find = "if attempt >= policy.attempts then", replace = "if attempt > policy.attempts then" },
  { name = "tls-failure-retried", file = "lua/provision/retry.lua", spec = RETRY,
    find = [[or outcome.kind == "tls" or outcome.kind == "aborted" then]], replace = [[or outcome.kind == "aborted" then]] },
  { name = "oauth2-401-not-refreshed", file = "lua/provision/client.lua", spec = CLIENT,
    find = "if status == 401 and job.oauth_flow and not job.refreshed then", replace = "if false then" },

  -- redirects
  { name = "redirect-303-keeps-method", file = "lua/provision/client.lua", spec = H,
    find = "if status == 303 then", replace = "if false then" },
  { name = "redirect-relative-location-ignored", file = "lua/provision/client.lua", spec = H,
    find = [[if loc:sub(1, 1) == "/" then loc = origin(req.url) .. loc end]], replace = "" },
  { name = "redirect-keeps-credentials-cross-origin", file = "lua/provision/client.lua", spec = CLIENT,
    find = "if job.redirected and origin(req.url) ~= origin(self.base) then", replace = "if false then" },
  { name = "redirects-followed-by-default", file = "lua/provision/client.lua", spec = CLIENT,
    find = "or opts.follow_redirects or 0,", replace = "or opts.follow_redirects or 3," },

  -- request building
  { name = "dot-dot-path-segment-allowed", file = "lua/provision/request.lua", spec = CLIENT,
    find = [[if s == "" or s == "." or s == ".." then]], replace = [[if s == "" then]] },
  { name = "json-null-param-sent", file = "lua/provision/request.lua", spec = H,
    find = "if v == nil or v == json.null then", replace = "if v == nil then" },
  { name = "outpost-tenant-id-not-positional", file = "lua/provision/client.lua", spec = H,
    find = "if p.spec_required and p.client_default then leading[#leading + 1] = p end", replace = "" },

  -- answers
  { name = "json-null-decoded-as-nil", file = "csrc/json.c", spec = CORE_JSON,
    find = "      lua_pushlightuserdata(d->L, NULL);\n      return 0;\n    default:",
    replace = "      lua_pushnil(d->L);\n      return 0;\n    default:" },
  { name = "docspace-null-response-not-true", file = "lua/provision/hooks/docspace.lua", spec = H,
    find = "if body.response == null then return true end", replace = "" },
  { name = "null-message-used", file = "lua/provision/hooks/common.lua", spec = H,
    find = [[if type(v) == "string" and v ~= "" then return v end]], replace = "if v then return v end" },
  { name = "docspace-error-envelope-ignored", file = "lua/provision/hooks/docspace.lua", spec = H,
    find = "if not failed_code and (e == nil or e == null or e == false) then return nil end",
    replace = "do return nil end" },
  { name = "message-uncapped", file = "lua/provision/errors.lua", spec = H,
    find = [[if type(fields.message) == "string" then fields.message = cap(fields.message) end]], replace = "" },

  -- auth selection
  { name = "unauthorised-operation-sent", file = "lua/provision/client.lua", spec = H,
    find = "if auth.select(self.api, self.credentials, security) then return nil end",
    replace = "do return nil end" },

  -- the reconciler
  { name = "reconcile-no-intent-before-send", file = "lua/provision/reconcile/apply.lua", spec = RECONCILE,
    find = "if ctx.run then", replace = "if false then" },
  { name = "reconcile-resume-without-read-back", file = "lua/provision/reconcile/apply.lua", spec = RECONCILE,
    find = "if run and opts.unsettled and #opts.unsettled > 0 then", replace = "if false then" },
  { name = "reconcile-invitation-link-journaled", file = "lua/provision/reconcile/apply.lua", spec = RECONCILE,
    find = "      step.value = value\n",
    replace = "      step.value = value\n      if type(value) == \"string\" then row.message = value end\n" },
  { name = "reconcile-no-mass-removal-threshold", file = "lua/provision/reconcile/plan.lua", spec = RECONCILE,
    find = "if opts.prune and removals > limit then", replace = "if false then" },
  { name = "reconcile-fields-not-compared", file = "lua/provision/reconcile/plan.lua", spec = RECONCILE,
    find = "if not f.kind_of.equal(have, want) then", replace = "if false then" },
  { name = "roster-duplicate-email-kept", file = "lua/provision/reconcile/roster.lua", spec = ROSTER,
    find = "if by_email[le] then", replace = "if false then" },

  -- the command line
  { name = "ctrl-c-internal-error", file = "lua/provision/cli.lua", spec = H,
    find = [[if type(res) == "string" and res:find("interrupted!$") then]], replace = "if false then" },
  { name = "curl-send-blocks-in-c", file = "lua/provision/transport/curl.lua", spec = H,
    find = "  local batch, err = self.session:start(requests)\n",
    replace = "  do local out, perr = self.session:perform(requests)\n"
      .. "    if not out then return all_failed(requests, perr) end\n    return out end\n"
      .. "  local batch, err = self.session:start(requests)\n" },
}
