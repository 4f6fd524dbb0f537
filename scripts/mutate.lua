-- Mutation testing: applies each code change of scripts/mutations.lua, one
-- at a time, to a scratch copy of the repository and runs the one spec that
-- should catch it. Prints which mutations were killed and which survived;
-- exits 1 if any survived or could not be judged (text not found, spec
-- missing or failing before any change, build broken).
--
--   lua5.4 scripts/mutate.lua [NAME...]     (make mutate)
--   MUTATE_KEEP=1 keeps the scratch copy; MUTATE_LIST=file uses another list; MUTATE_TIMEOUT=s bounds one spec run (default 600).
local function sh(cmd)
  local ok, _, code = os.execute(cmd)
  if ok == true then return 0 end
  return code or 1
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  assert(f:write(s))
  assert(f:close())
end

local function count(hay, needle)
  local n, i = 0, 1
  while true do
    local a, b = hay:find(needle, i, true)
    if not a then return n end
    n, i = n + 1, b + 1
  end
end

local script_dir = (arg[0]:match("^(.*)/[^/]*$") or ".")
local root = io.popen("cd " .. q(script_dir .. "/..") .. " && pwd"):read("l")
local mutations = dofile(os.getenv("MUTATE_LIST") or (root .. "/scripts/mutations.lua"))
local timeout = tonumber(os.getenv("MUTATE_TIMEOUT") or "") or 600

local wanted = {}
for _, a in ipairs(arg) do wanted[a] = true end
local selected = {}
for _, m in ipairs(mutations) do
  if next(wanted) == nil or wanted[m.name] then selected[#selected + 1] = m end
end
if #selected == 0 then
  io.stderr:write("mutate: no mutation named ", table.concat(arg, ", "), "\n")
  os.exit(2)
end
-- Lua changes first, on one build; then those that need a rebuild.
local function is_c(m) return m.file:match("^csrc/") ~= nil or m.file == "CMakeLists.txt" end
do
  local lua_first, c_last = {}, {}
  for _, m in ipairs(selected) do
    local list = is_c(m) and c_last or lua_first
    list[#list + 1] = m
  end
  for _, m in ipairs(c_last) do lua_first[#lua_first + 1] = m end
  selected = lua_first
end

-- The scratch copy: the working tree's tracked and untracked (not ignored)
-- files, so uncommitted edits are tested too; node_modules linked (Prism).
local scratch = io.popen("mktemp -d /tmp/provision-mutate.XXXXXX"):read("l")
local function cleanup()
  if os.getenv("MUTATE_KEEP") == "1" then
    print("mutate: scratch copy kept in " .. scratch)
  else
    sh("rm -rf " .. q(scratch))
  end
end
if sh("cd " .. q(root) .. " && git ls-files -z -co --exclude-standard | tar --null -T - -cf - 2>/dev/null"
      .. " | tar -C " .. q(scratch) .. " -xf -") ~= 0 then
  io.stderr:write("mutate: cannot copy the repository to ", scratch, "\n")
  cleanup()
  os.exit(2)
end
if sh("test -d " .. q(root .. "/node_modules")) == 0 then
  sh("ln -s " .. q(root .. "/node_modules") .. " " .. q(scratch .. "/node_modules"))
end

local log = scratch .. "/mutate.log"
local function build()
  return sh("cd " .. q(scratch) .. " && make -s build >" .. q(log) .. " 2>&1") == 0
end

print("mutate: building the scratch copy in " .. scratch)
if not build() then
  io.stderr:write(read(log) or "", "mutate: the unmodified scratch copy does not build\n")
  cleanup()
  os.exit(2)
end

-- Runs one spec in the scratch copy; true when it passed.
local function run_spec(spec)
  local env = ("LUA_PATH=%s LUA_CPATH=%s PROVISION_BUILD=%s"):format(
    q(scratch .. "/lua/?.lua;" .. scratch .. "/lua/?/init.lua;" .. scratch .. "/?.lua;;"),
    q(scratch .. "/build/?.so;;"), q(scratch .. "/build"))
  local cmd = ("cd %s && %s timeout -s KILL %d lua5.4 /usr/bin/busted --lua=lua5.4 -o tests/support/summary.lua %s >%s 2>&1")
    :format(q(scratch), env, timeout, q(spec), q(log))
  local code = sh(cmd)
  local out = read(log) or ""
  local failed = tonumber(out:match("busted: %d+ passed, (%d+) failed"))
  return code == 0 and failed == 0, out
end

-- Check every selected mutation before running any: drift is an error.
local errors, results = 0, {}
for _, m in ipairs(selected) do
  local text = read(scratch .. "/" .. m.file)
  if not text then
    m.error = "file " .. m.file .. " not found"
  elseif count(text, m.find) ~= 1 then
    m.error = ("text to change found %d times in %s (expected once; update scripts/mutations.lua)")
      :format(count(text, m.find), m.file)
  elseif not read(scratch .. "/" .. m.spec) then
    m.error = "spec " .. m.spec .. " not found"
  end
end

-- Each spec must pass before anything is changed, or it proves nothing.
local baseline = {}
for _, m in ipairs(selected) do
  if not m.error and baseline[m.spec] == nil then
    local ok, out = run_spec(m.spec)
    baseline[m.spec] = ok
    if not ok then
      io.stderr:write(out:sub(-3000), "\nmutate: ", m.spec, " fails before any change\n")
    end
  end
  if not m.error and not baseline[m.spec] then m.error = m.spec .. " fails without the mutation" end
end

for i, m in ipairs(selected) do
  local status
  if m.error then
    status = "ERROR"
  else
    local path = scratch .. "/" .. m.file
    local original = read(path)
    local a, b = original:find(m.find, 1, true)
    write(path, original:sub(1, a - 1) .. m.replace .. original:sub(b + 1))
    if is_c(m) and not build() then
      status, m.error = "ERROR", "does not build with the change"
    else
      local passed, out = run_spec(m.spec)
      status = passed and "SURVIVED" or "killed"
      if not passed then
        -- which test caught it: a load error instead would show here too
        local n, first = 0, nil
        for name in out:gmatch("\n[FE][a-z]+ %-> [^\n]*\n([^\n]*)") do
          n = n + 1
          first = first or name
        end
        m.by = first and (n .. " failed, first: " .. first) or "the spec run failed (no test named)"
      end
    end
    write(path, original)
    if is_c(m) and not build() then
      io.stderr:write(read(log) or "", "mutate: the scratch copy no longer builds after restoring ", m.file, "\n")
      cleanup()
      os.exit(2)
    end
  end
  if status ~= "killed" then errors = errors + 1 end
  results[#results + 1] = { m = m, status = status }
  print(("[%2d/%d] %-9s %-40s %s%s"):format(i, #selected, status, m.name, m.spec,
    m.error and ("  (" .. m.error .. ")") or ""))
  if m.by then print("          by: " .. m.by) end
  io.stdout:flush()
end

local survived, errored = {}, {}
for _, r in ipairs(results) do
  if r.status == "SURVIVED" then survived[#survived + 1] = r.m.name end
  if r.status == "ERROR" then errored[#errored + 1] = r.m.name end
end
print(("mutate: %d killed, %d survived, %d errors (of %d)"):format(#results - errors, #survived, #errored, #results))
if #survived > 0 then print("survived: " .. table.concat(survived, ", ")) end
if #errored > 0 then print("errors: " .. table.concat(errored, ", ")) end
cleanup()
os.exit(errors == 0 and 0 or 1)
