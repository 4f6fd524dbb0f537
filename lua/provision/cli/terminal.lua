-- Is stdout (stderr) a terminal, and how wide is it?
--
-- Plain Lua has no isatty. A child started by os.execute inherits our
-- stdout and stderr, so one `sh -c '[ -t 1 ] ...'` answers both at the
-- cost of one fork, done once and only when a command needs to know (the
-- default output format, the progress line). io.popen cannot answer it:
-- its child's stdout is the pipe. The width comes from $COLUMNS, else
-- `stty size` on /dev/tty when a terminal is there, else 80.
--
-- Overrides: a host running cli.main in-process passes ctx.terminal =
-- {stdout = bool, stderr = bool, width = n}; streams other than the
-- process's own io.stdout/io.stderr are never terminals.
-- Lua 5.1/5.4 common syntax.
local terminal = {}

local function exit_code(a, b, c)
  if type(a) == "number" then return a end         -- Lua 5.1: the status
  if b == "exit" then return c end
  return nil
end

-- {stdout = bool, stderr = bool}
function terminal.probe(ctx)
  local o = ctx.terminal
  if o then return { stdout = o.stdout == true, stderr = o.stderr == true } end
  local real_out = ctx.stdout == io.stdout
  local real_err = ctx.stderr == io.stderr
  if not real_out and not real_err then return { stdout = false, stderr = false } end
  local code = exit_code(os.execute("r=0; [ -t 1 ] && r=1; [ -t 2 ] && r=$((r+2)); exit $r"))
  if type(code) == "number" and code > 255 then code = math.floor(code / 256) end   -- 5.1 wait status
  code = code or 0
  return { stdout = real_out and (code % 2 == 1), stderr = real_err and (code >= 2) }
end

-- Columns of the terminal (or of $COLUMNS); nil when neither says.
function terminal.width(ctx, is_terminal)
  if ctx.terminal and ctx.terminal.width then return ctx.terminal.width end
  local cols = tonumber(ctx.getenv("COLUMNS") or "")
  if cols and cols >= 20 then return math.floor(cols) end
  if not is_terminal then return nil end
  local p = io.popen("stty size </dev/tty 2>/dev/null")
  local line = p and p:read("*l")
  if p then p:close() end
  local w = line and tonumber(line:match("^%d+%s+(%d+)"))
  if w and w >= 20 then return w end
  return 80
end

return terminal
