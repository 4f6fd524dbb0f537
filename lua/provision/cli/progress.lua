-- The progress line of a long apply, drawn on a terminal's stderr and
-- redrawn in place: done/total per system, the rate, the time left and the
-- failures so far. Nothing is drawn when stderr is not a terminal (a pipe,
-- a file, CI): then the summary at the end is all there is.
--
--   local p = progress.new(io.stderr, { width = 80 })
--   p:update({ order = {"agilicus", ...}, systems = { agilicus = {done =, total =, failed =, unknown =} },
--              elapsed = seconds })
--   p:finish()     -- clears the line
-- Lua 5.1/5.4 common syntax.
local tbl = require("provision.cli.table")

local progress = {}

-- Whether the process's stderr is a terminal (the shell's test -t 2 sees
-- the same descriptor, inherited).
function progress.stderr_is_terminal()
  local ok = os.execute("test -t 2")
  return ok == true or ok == 0
end

-- Columns of the terminal (stty on /dev/tty), else $COLUMNS, else 80.
function progress.terminal_width(getenv)
  getenv = getenv or os.getenv
  local p = io.popen("stty size </dev/tty 2>/dev/null", "r")
  local out = p and p:read("*a") or ""
  if p then p:close() end
  local cols = tonumber(out:match("^%s*%d+%s+(%d+)"))
  if cols and cols > 0 then return cols end
  cols = tonumber(getenv("COLUMNS") or "")
  if cols and cols > 0 then return cols end
  return 80
end

local function clock(seconds)
  if seconds ~= seconds or seconds == math.huge then return "?" end
  seconds = math.floor(seconds + 0.5)
  if seconds < 60 then return seconds .. "s" end
  if seconds < 3600 then return ("%dm%02ds"):format(math.floor(seconds / 60), seconds % 60) end
  return ("%dh%02dm"):format(math.floor(seconds / 3600), math.floor(seconds / 60) % 60)
end

-- The text of one progress line for `state`, at most `width` columns.
function progress.line(state, width)
  local done, total, failed = 0, 0, 0
  local parts = {}
  for _, name in ipairs(state.order) do
    local c = state.systems[name]
    if c and c.total > 0 then
      done, total = done + c.done, total + c.total
      failed = failed + (c.failed or 0) + (c.unknown or 0)
      parts[#parts + 1] = { name = name, text = c.done .. "/" .. c.total }
    end
  end
  local elapsed = state.elapsed or 0
  local rate = elapsed > 0 and done / elapsed or 0
  local tail = ("%.0f/s  ETA %s  %d failed"):format(rate, rate > 0 and clock((total - done) / rate) or "?", failed)
  local function compose(cut)
    local shown = {}
    for i, p in ipairs(parts) do
      local name = cut and p.name:sub(1, cut) or p.name
      shown[i] = name .. " " .. p.text
    end
    return table.concat(shown, "  ") .. "  |  " .. tail
  end
  local s = compose(nil)
  if tbl.width(s) > width - 1 then s = compose(5) end
  if tbl.width(s) > width - 1 then s = compose(2) end
  if #s > width - 1 then s = s:sub(1, width - 1) end
  return s
end

local Progress = {}
Progress.__index = Progress

function progress.new(stream, opts)
  opts = opts or {}
  return setmetatable({ stream = stream, width = opts.width or 80, drawn = false }, Progress)
end

function Progress:update(state)
  self.stream:write("\r", progress.line(state, self.width), "\27[K")
  if self.stream.flush then self.stream:flush() end
  self.drawn = true
end

function Progress:finish()
  if self.drawn then
    self.stream:write("\r\27[K")
    if self.stream.flush then self.stream:flush() end
  end
  self.drawn = false
end

return progress
