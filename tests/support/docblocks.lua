-- tests/support/docblocks.lua: the fenced code blocks of a Markdown file,
-- the docs-test marker each one carries, and what the docs test should do
-- with it. Text work only: nothing here runs a block (tests/spec/docs_spec.lua
-- does, and documents the conventions at its top).
--
--   local docblocks = require "support.docblocks"
--   for _, b in ipairs(docblocks.parse(text)) do
--     -- b.line (of the opening fence), b.info ("lua", "sh", ""), b.lang, b.code,
--     -- b.marker ("skip: needs nginx" or nil), b.error (a parse problem or nil)
--     local plan, why = docblocks.classify(b)   -- plan.kind, or nil + why
--   end
local M = {}

local MARKER = "^%s*<!%-%-%s*docs%-test:%s*(.-)%s*%-%->%s*$"

-- Shell info strings whose lines are commands (or, with `$ `, a transcript).
M.shells = { sh = true, shell = true, bash = true, console = true }

local function lines_of(text)
  local lines = {}
  for line in (text .. (text:sub(-1) == "\n" and "" or "\n")):gmatch("(.-)\r?\n") do
    lines[#lines + 1] = line
  end
  return lines
end

-- A fence opens with 3+ backticks or tildes, indented by at most 3 spaces
-- (CommonMark); it closes with the same character, at least as many, and
-- nothing but spaces after.
local function opening(line)
  local indent, fence, info = line:match("^( ? ? ?)(```+)%s*([^`]*)$")
  if not fence then indent, fence, info = line:match("^( ? ? ?)(~~~+)%s*(.*)$") end
  if not fence then return nil end
  return #indent, fence, (info:gsub("%s+$", ""))
end

local function closes(line, fence)
  local f = line:match("^ ? ? ?([`~]+)%s*$")
  return f ~= nil and f:sub(1, 1) == fence:sub(1, 1) and #f >= #fence
end

function M.parse(text)
  local lines = lines_of(text)
  local blocks, i = {}, 1
  local used_markers = {}
  while i <= #lines do
    local indent, fence, info = opening(lines[i])
    if fence then
      local b = { line = i, info = info, lang = (info:match("^(%S+)") or ""):lower() }
      local marker = i > 1 and lines[i - 1]:match(MARKER)
      if marker then b.marker = marker; used_markers[i - 1] = true end
      local body, j = {}, i + 1
      while j <= #lines and not closes(lines[j], fence) do
        local l = lines[j]
        -- drop the fence's own indentation from content lines (as CommonMark does)
        local lead = #(l:match("^ *"))
        body[#body + 1] = l:sub(math.min(lead, indent) + 1)
        j = j + 1
      end
      if j > #lines then b.error = "code block opened here is never closed" end
      b.code = table.concat(body, "\n") .. (#body > 0 and "\n" or "")
      blocks[#blocks + 1] = b
      i = j + 1
    else
      i = i + 1
    end
  end
  -- A marker that is not on the line just before a fence marks nothing:
  -- report it, or the block it was meant for would silently run unmarked.
  for n, line in ipairs(lines) do
    if line:match(MARKER) and not used_markers[n] then
      blocks[#blocks + 1] = { line = n, info = "", lang = "", code = "", marker = line:match(MARKER),
                              error = "docs-test marker is not on the line just before a code block" }
    end
  end
  table.sort(blocks, function(a, b) return a.line < b.line end)
  return blocks
end

-- Shell blocks -------------------------------------------------------------------

-- A runnable command: `provision ...`, or a pipeline whose last stage is
-- `provision ...` fed by echo/printf/cat.
local function provision_command(cmd)
  local stages = {}
  for stage in (cmd .. "|"):gmatch("(.-)|") do stages[#stages + 1] = stage:match("^%s*(.-)%s*$") end
  if not stages[#stages]:match("^provision%f[%s\0]") then return false end
  for k = 1, #stages - 1 do
    local word = stages[k]:match("^(%S+)")
    if word ~= "echo" and word ~= "printf" and word ~= "cat" then return false end
  end
  return true
end
M.provision_command = provision_command

-- commands(code, lang) -> list of {cmd = "provision ...", expect = {lines} or nil}, or nil, why.
-- A block with `$ ` lines is a transcript: the lines after a `$ ` command up
-- to the next one are its expected output (trailing blank lines dropped). A
-- block without is a list of commands, one a line (`#` comment lines and
-- blank lines ignored), whose output is not compared.
function M.commands(code, lang)
  local lines = lines_of(code)
  local transcript = lang == "console"
  for _, l in ipairs(lines) do if l:match("^%$ ") then transcript = true end end
  local cmds = {}
  for n, l in ipairs(lines) do
    if transcript then
      local cmd = l:match("^%$ (.*)$")
      if cmd then
        cmds[#cmds + 1] = { cmd = cmd, expect = {}, line = n }
      elseif #cmds == 0 then
        if l:match("%S") then return nil, "output before the first `$ ` command (line " .. n .. " of the block)" end
      else
        local e = cmds[#cmds].expect
        e[#e + 1] = l
      end
    elseif l:match("%S") and not l:match("^%s*#") then
      cmds[#cmds + 1] = { cmd = l, line = n }
    end
  end
  if #cmds == 0 then return nil, "no command in the block" end
  for _, c in ipairs(cmds) do
    if not provision_command(c.cmd) then
      return nil, "`" .. c.cmd .. "` is not a provision command"
    end
    if c.expect then
      while #c.expect > 0 and not c.expect[#c.expect]:match("%S") do c.expect[#c.expect] = nil end
    end
  end
  return cmds
end

-- Classification -------------------------------------------------------------------

-- classify(block) -> plan or nil, why. plan.kind is one of
--   "skip" (plan.reason), "file" (plan.name), "lua", "continue", "shell" (plan.commands),
--   "api-table" (plan.api, plan.what = nil|"operation"|"param", plan.name),
--   "schema-data" (plan.name),
--   "cli-config", "sandbox-faults".
function M.classify(b)
  if b.error then return nil, b.error end
  local m = b.marker
  if m then
    local kind, rest = m:match("^([%w-]+)%s*:?%s*(.-)$")
    if kind == "skip" then
      if rest == "" then return nil, "`skip` needs a reason: <!-- docs-test: skip: why -->" end
      return { kind = "skip", reason = rest }
    elseif kind == "file" then
      if not rest:match("^[%w][%w._-]*$") then return nil, "`file` needs a plain file name, got '" .. rest .. "'" end
      return { kind = "file", name = rest }
    elseif kind == "continue" then
      if b.lang ~= "lua" then return nil, "`continue` is for lua blocks" end
      return { kind = "continue" }
    elseif kind == "api-table" then
      local api, what, name = rest:match("^(%w+)%s*(%a*)%s*([%w_]*)$")
      if not api or (what ~= "" and what ~= "operation" and what ~= "param") or (what ~= "") ~= (name ~= "") then
        return nil, "`api-table` wants API [operation NAME | param NAME], got '" .. rest .. "'"
      end
      if b.lang ~= "lua" then return nil, "`api-table` is for lua blocks" end
      return { kind = "api-table", api = api, what = what ~= "" and what or nil, name = name ~= "" and name or nil }
    elseif kind == "schema-data" then
      if not rest:match("^[%w_]+$") then return nil, "`schema-data` wants the name of a lua/provision/schemas/ file" end
      if b.lang ~= "lua" then return nil, "`schema-data` is for lua blocks" end
      return { kind = "schema-data", name = rest }
    elseif kind == "cli-config" then
      if b.lang ~= "lua" then return nil, "`cli-config` is for lua blocks" end
      return { kind = "cli-config" }
    elseif kind == "sandbox-faults" then
      if b.lang ~= "lua" and b.lang ~= "json" then return nil, "`sandbox-faults` is for json or lua blocks" end
      return { kind = "sandbox-faults", lang = b.lang }
    end
    return nil, "unknown docs-test marker '" .. m .. "'"
  end
  if b.lang == "lua" then return { kind = "lua" } end
  if M.shells[b.lang] then
    local cmds, why = M.commands(b.code, b.lang)
    if not cmds then
      return nil, why .. ": make every line a provision command, or mark the block "
        .. "(<!-- docs-test: skip: why -->)"
    end
    return { kind = "shell", commands = cmds }
  end
  return nil, ("a ```%s block cannot run: mark it (<!-- docs-test: skip: why -->) or make it "
    .. "a lua or sh block"):format(b.info)
end

return M
