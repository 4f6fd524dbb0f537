-- What the generators of committed files (contract-fixtures.lua,
-- gen-schemas.lua) share: failing under their own name, reading a source and
-- its sha256 (for the provenance note), and their command line.
local M = {}

function M.read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("a")
  f:close()
  return s
end

function M.quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- A function that prints "NAME: message" and exits 2.
function M.die(name)
  return function(msg)
    io.stderr:write(name, ": ", msg, "\n")
    os.exit(2)
  end
end

function M.sha256(path, die)
  local p = assert(io.popen("sha256sum " .. M.quote(path)))
  local out = p:read("a")
  p:close()
  local sum = out:match("^(%x+)")
  if not sum or #sum ~= 64 then die("sha256sum failed on " .. path) end
  return sum
end

-- Reads `--check` and `--FOLDER DIR` (each name of `folders`) from argv
-- into opts; -h prints `usage` and exits.
function M.parse_args(argv, opts, folders, usage, die)
  local takes = {}
  for _, name in ipairs(folders) do takes["--" .. name] = name end
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--check" then opts.check = true
    elseif takes[a] then
      i = i + 1
      if not argv[i] then die(a .. " needs a folder") end
      opts[takes[a]] = argv[i]
    elseif a == "-h" or a == "--help" then
      io.write(usage, "\n")
      os.exit(0)
    else
      die("unknown argument " .. a)
    end
    i = i + 1
  end
  return opts
end

return M
