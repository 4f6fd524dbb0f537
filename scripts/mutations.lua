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
local BULK = "tests/spec/bulk_spec.lua"
local WORKFLOW = "tests/spec/workflow_spec.lua"
local LIMITER = "tests/spec/limiter_spec.lua"
local HOOKS = "tests/spec/hooks_spec.lua"
local EVENTS = "tests/spec/events_spec.lua"
local ERRCLASS = "tests/spec/error_classes_spec.lua"
local VALIDATE = "tests/spec/validate_spec.lua"
local RECONCILE = "tests/spec/reconcile_spec.lua"
local ROSTER = "tests/spec/roster_spec.lua"

return {
  -- TLS
  { name = "tls-verify-peer-off", file = "csrc/http.c", spec = CORE_HTTP,
    find = "CURLOPT_SSL_VERIFYPEER, t->o_verify ? 1L : 0L", replace = "CURLOPT_SSL_VERIFYPEER, 0L" },
  { name = "tls-verify-host-off", file = "csrc/http.c", spec = H,
    find = "CURLOPT_SSL_VERIFYHOST, t->o_verify ? 2L : 0L", replace = "CURLOPT_SSL_VERIFYHOST, 0L" },
  { name = "tls-verify-per-request-ignored", file = "csrc/http.c", spec = CORE_HTTP,
    find = "EASY_OK(curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L));",
    replace = "EASY_OK(curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L));" },

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
    find = "  if throttles >= policy.max_throttled then", replace = "  if true then" },
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
  { name = "docspace-null-response-not-true", file = "lua/provision/envelopes/docspace.lua", spec = H,
    find = "if body.response == null then return true end", replace = "" },
  { name = "null-message-used", file = "lua/provision/envelopes/common.lua", spec = H,
    find = [[if type(v) == "string" and v ~= "" then return v end]], replace = "if v then return v end" },
  { name = "docspace-error-envelope-ignored", file = "lua/provision/envelopes/docspace.lua", spec = H,
    find = "if not failed_code and (e == nil or e == null or e == false) then return nil end",
    replace = "do return nil end" },
  { name = "message-uncapped", file = "lua/provision/errors.lua", spec = H,
    find = [[if type(fields.message) == "string" then fields.message = cap(fields.message) end]], replace = "" },

  -- auth selection
  { name = "unauthorised-operation-sent", file = "lua/provision/client.lua", spec = H,
    find = "if auth.select(self.api, self.credentials, security) then return nil end",
    replace = "do return nil end" },

  -- the bulk engine: settled outcomes, pacing, slots
  { name = "lost-answer-counts-as-not-applied", file = "lua/provision/client.lua", spec = WORKFLOW,
    find = "  if resp.kind then return resp.request_sent ~= false end\n  return resp.status >= 500",
    replace = "  if resp.kind then return false end\n  return resp.status >= 500" },
  { name = "read-back-skipped", file = "lua/provision/client.lua", spec = WORKFLOW,
    find = "  return job.op.read_back ~= nil and job.policy.read_back ~= false",
    replace = "  return false and job.op.read_back ~= nil and job.policy.read_back ~= false" },
  { name = "read-back-absent-taken-as-found", file = "lua/provision/client.lua", spec = BULK,
    find = "    if all then return item end", replace = "    if true then return item end" },
  { name = "limiter-never-waits", file = "lua/provision/limiter.lua", spec = LIMITER,
    find = "  if now < self.paused_until then return self.paused_until - now end",
    replace = "  do return 0 end" },
  { name = "ratelimit-remaining-ignored", file = "lua/provision/limiter.lua", spec = WORKFLOW,
    find = "  if remaining == 0 and status ~= 429 then self:pause(now, reset or 1) end", replace = "" },
  { name = "throttle-uses-attempts", file = "lua/provision/client.lua", spec = BULK,
    find = "retry.decide(policy, job.attempt - throttles,", replace = "retry.decide(policy, job.attempt," },
  { name = "iterator-drained-ahead", file = "lua/provision/engine.lua", spec = BULK,
    find = "    if not room or not self:pull() then return end", replace = "    if not self:pull() then return end" },
  { name = "deadline-ignored", file = "lua/provision/engine.lua", spec = BULK,
    find = "    job.deadline_at = job.started + job.deadline\n  end\n  while true do",
    replace = "  end\n  while true do" },
  { name = "deadline-ignored-in-bulk", file = "lua/provision/engine.lua", spec = BULK,
    find = "    job.deadline_at = job.started + job.deadline\n  end\n  enqueue(",
    replace = "  end\n  enqueue(" },
  -- user hooks, events, error classes
  { name = "before-request-hooks-skipped", file = "lua/provision/client.lua", spec = HOOKS,
    find = "  if not list then return req end\n  local ctx = context(job, job.attempt + 1)",
    replace = "  do return req end\n  local ctx = context(job, job.attempt + 1)" },
  { name = "before-request-raise-escapes", file = "lua/provision/client.lua", spec = HOOKS,
    find = "local ok, r, e = pcall(f, req, ctx)", replace = "local ok, r, e = true, f(req, ctx)" },
  { name = "before-request-stop-ignored", file = "lua/provision/client.lua", spec = HOOKS,
    find = [[      err = hooks.stopped(job.opname, "before_request", e)]], replace = "" },
  { name = "on-error-hooks-skipped", file = "lua/provision/engine.lua", spec = HOOKS,
    find = "  if value == nil and job.client then value, info = job.client:conclude(job, value, info) end\n",
    replace = "" },
  { name = "on-error-hooks-skipped-single-call", file = "lua/provision/engine.lua", spec = HOOKS,
    find = "  return job.client:conclude(job, value, info)\nend", replace = "  return value, info\nend" },
  { name = "after-response-hooks-skipped", file = "lua/provision/client.lua", spec = HOOKS,
    find = "local list = h and not resp.kind and h.after_response", replace = "local list = false" },
  { name = "on-retry-hooks-skipped", file = "lua/provision/client.lua", spec = HOOKS,
    find = "  local list = h and h.on_retry\n", replace = "  local list = false\n" },
  { name = "events-not-delivered", file = "lua/provision/client.lua", spec = EVENTS,
    find = "  if self.events then pcall(self.events, ev) end\n", replace = "" },
  { name = "events-request-id-ignored", file = "lua/provision/events.lua", spec = EVENTS,
    find = [[events.REQUEST_ID_HEADERS = { "x-request-id", "x-correlation-id", "request-id" }]],
    replace = [[events.REQUEST_ID_HEADERS = { "x-correlation-id", "request-id" }]] },
  { name = "sandbox-no-request-id", file = "sandbox/app.lua", spec = EVENTS,
    find = [[  headers[#headers + 1] = { "X-Request-Id", request_id }]], replace = "" },
  { name = "events-retry-reason-lost", file = "lua/provision/client.lua", spec = EVENTS,
    find = "  job.retry_delay, job.retry_reason = delay, reason\n", replace = "" },
  { name = "traceparent-not-sent", file = "lua/provision/client.lua", spec = EVENTS,
    find = [[    auth.set_header(req, "traceparent", ]], replace = [[    local _ = select(2, req, "traceparent", ]] },
  { name = "err-is-kind-family-ignored", file = "lua/provision/errors.lua", spec = ERRCLASS,
    find = "descends(kind_family[v.kind], t) or ", replace = "" },
  { name = "err-is-unknown-outcome-ignored", file = "lua/provision/errors.lua", spec = ERRCLASS,
    find = [[return t == UnknownOutcomeError and v.outcome == "unknown"]], replace = "return false" },
  -- request body validation
  { name = "validation-skipped", file = "lua/provision/client.lua", spec = VALIDATE,
    find = "local invalid = validate.body(self.schemas, op, values, qualified)",
    replace = "local invalid = nil" },
  { name = "closed-object-takes-unknown-fields", file = "lua/provision/validate.lua", spec = VALIDATE,
    find = "local closed = ap == false\n", replace = "local closed = false\n" },
  { name = "required-not-checked", file = "lua/provision/validate.lua", spec = VALIDATE,
    find = [=[if v[req[i]] == nil then fail_at(req[i], "required") end]=], replace = "" },
  { name = "integer-takes-fractions", file = "lua/provision/validate.lua", spec = VALIDATE,
    find = "return type(v) == \"number\" and v == floor(v) and v > -2^63 and v < 2^63",
    replace = "return type(v) == \"number\"" },
  { name = "date-time-offset-optional", file = "lua/provision/validate.lua", spec = VALIDATE,
    find = [[if off == "Z" or off == "z" then return true end]],
    replace = [[if off == "" or off == "Z" or off == "z" then return true end]] },
  { name = "violation-echoes-value", file = "lua/provision/validate.lua", spec = VALIDATE,
    find = [=[if fmt and not fmt[1](v) then fail(fmt[2]) end]=],
    replace = [=[if fmt and not fmt[1](v) then fail(fmt[2] .. ": " .. v) end]=] },
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
    find = [[if util.is_interrupt(res) then]], replace = "if false then" },
  { name = "cli-exists-counted-as-failure", file = "lua/provision/cli/bulk.lua", spec = "tests/spec/cli_bulk_spec.lua",
    find = [[if err.exists or (err.kind == "http" and err.status == 409) then return "exists", exit.OK end]], replace = "" },
  { name = "cli-interrupted-rows-dropped", file = "lua/provision/cli/bulk.lua", spec = "tests/spec/cli_bulk_spec.lua",
    find = [[        record(pending[i], "unknown", exit.UNKNOWN,]],
    replace = [[        do end (function() end)(pending[i], "unknown", exit.UNKNOWN,]] },
  { name = "cli-unknown-outcome-exit-code", file = "lua/provision/cli/exit.lua", spec = "tests/spec/cli_exit_spec.lua",
    find = [[if err.outcome == "unknown" then return exit.UNKNOWN end]], replace = "" },
  { name = "cli-vv-headers-unmasked", file = "lua/provision/cli/mask.lua", spec = "tests/spec/cli_config_spec.lua",
    find = [[headers[i] = { h[1], header_value(h[1], h[2], secret_headers, secret_cookies) }]],
    replace = [[headers[i] = { h[1], h[2] }]] },
  { name = "cli-yaml-boolean-words-unquoted", file = "lua/provision/cli/yaml.lua", spec = "tests/spec/cli_output_spec.lua",
    find = [["true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"]], replace = [["true", "false", "null", "~"]] },
  -- the fast path and light jobs (lua/provision/fastcall.lua)
  { name = "fastcall-limiter-not-told", file = "lua/provision/fastcall.lua", spec = "tests/spec/fastcall_spec.lua",
    find = "  lim:observe(now, status, (rl1 or rl2 or rl3) and resp.headers or nil, nil)\n", replace = "\n" },
  { name = "fastcall-takes-a-4xx", file = "lua/provision/fastcall.lua", spec = "tests/spec/fastcall_spec.lua",
    find = "if resp.kind or status < 200 or status >= 300 then return nil end",
    replace = "if resp.kind then return nil end" },
  { name = "light-job-full-loses-its-index", file = "lua/provision/fastcall.lua", spec = "tests/spec/fastcall_spec.lua",
    find = "job.index, job.req, job.sent_at = self.index, self.req, self.sent_at",
    replace = "job.req, job.sent_at = self.req, self.sent_at" },
  { name = "light-job-without-the-usual-limiter", file = "lua/provision/fastcall.lua",
    spec = "tests/spec/fastcall_spec.lua",
    find = "  if not self.limiters[shape.op] then return nil end\n", replace = "\n" },
  { name = "light-job-unqualified-operation", file = "lua/provision/fastcall.lua", spec = "tests/spec/fastcall_spec.lua",
    find = "name = opname, opname = qualified,", replace = "name = opname, opname = opname," },
  { name = "info-is-a-canned-response", file = "lua/provision/client.lua", spec = "tests/spec/fastcall_spec.lua",
    find = "    and rawget(transport, \"send\") == nil and rawget(transport, \"send_one\") == nil\n",
    replace = "    and true\n" },
  { name = "info-url-with-a-query", file = "lua/provision/client.lua", spec = "tests/spec/fastcall_spec.lua",
    find = "     and not job.redirected and without_query(self, job.op) then", replace = "     then" },
  { name = "fastcall-info-without-the-query-rule", file = "lua/provision/fastcall.lua",
    spec = "tests/spec/fastcall_spec.lua",
    find = "      own = self.without_query[shape.op]   -- the rule's cached answer, else the rule\n"
      .. "      if own == nil then own = fastcall.without_query(self, shape.op) end\n", replace = "" },
  { name = "fastcall-info-on-any-transport", file = "lua/provision/fastcall.lua",
    spec = "tests/spec/fastcall_spec.lua",
    find = "    local own = self.core_responses\n", replace = "    local own = true\n" },
  { name = "light-job-info-without-the-query-rule", file = "lua/provision/fastcall.lua",
    spec = "tests/spec/fastcall_spec.lua",
    find = "    own = client.without_query[self.op]\n    if own == nil then own = fastcall.without_query(client, self.op) end\n",
    replace = "" },
  { name = "request-proxy-without-no-proxy", file = "csrc/http.c", spec = CORE_HTTP,
    find = "          EASY_OK(curl_easy_setopt(e, CURLOPT_NOPROXY, NULL));", replace = "" },
  { name = "core-header-first-name-only", file = "csrc/http.c", spec = "tests/spec/core_lazy_spec.lua",
    find = "  for (k = 2; k <= top; k++) {\n    lua_pushvalue(L, k);\n    lua_gettable(L, top + 1);\n  }\n  return nnames;",
    replace = "  lua_pushvalue(L, 2);\n  lua_gettable(L, top + 1);\n  return 1;" },
  { name = "curl-send-blocks-in-c", file = "lua/provision/transport/curl.lua", spec = H,
    find = "function Curl:send_one(req)\n",
    replace = "function Curl:send_one(req)\n  do local out, perr = self.session:perform({ req })\n"
      .. "    if not out then return perr end\n    return out[1] end\n" },
}
