#!/usr/bin/env lua5.4
-- Write the schema data (lua/provision/schemas/<api>.lua) from the published
-- OpenAPI documents: for each operation provision covers, its request body
-- schema and its 2xx response schemas, with every model they reference as a
-- named definition (see scripts/schemas/convert.lua; format in
-- docs/api-tables.md "Schema data"). The library validates request bodies
-- against these files and the command line builds its body flags and
-- `help OP` from them; nothing reads the specs at build, test or run time.
--
-- Each file starts with its provenance (source file, sha256, openapi and
-- info.version, date). The output is deterministic: a rerun on unchanged
-- specs changes no byte (the date stays that of the last content change).
--
-- Usage: lua5.4 scripts/gen-schemas.lua [--specs DIR] [--out DIR] [--check]
--   --specs  published specs (default $PROVISION_SPECS_DIR, else ../shared/specs beside the repo)
--   --out    output folder   (default lua/provision/schemas in the repo)
--   --check  write nothing; exit 1 when a file is not what the specs give
-- Rerun (make schemas) only when a spec changes; tests/spec/schemas_spec.lua
-- checks the committed files against the contract fixtures (tests/contract/).
local here = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or "."
package.path = here .. "/?.lua;" .. package.path

local json = require "contract.json"
local generator = require "generator"
local convert = require "schemas.convert"
local luadata = require "schemas.luadata"
local SOURCES = require "schemas.sources"

local GENERATOR = "scripts/gen-schemas.lua"

local die = generator.die("gen-schemas")
local read = generator.read
local function sha256(path) return generator.sha256(path, die) end

local repo = here:match("^(.*)/scripts$") or (here == "scripts" and ".") or (here .. "/..")
local opts = {
  specs = os.getenv("PROVISION_SPECS_DIR") or (repo .. "/../shared/specs"),
  out = repo .. "/lua/provision/schemas",
  check = false,
}
generator.parse_args(arg, opts, { "specs", "out" },
  "usage: lua5.4 scripts/gen-schemas.lua [--specs DIR] [--out DIR] [--check]", die)

-- The text of one data file for a given date.
local function render(s, doc, data, stats, sum, date)
  data.source = s.file
  data.source_sha256 = sum
  data.source_openapi = json.get(doc, "openapi")
  data.source_info_version = json.get(json.get(doc, "info"), "version")
  data.generator = GENERATOR .. " (make schemas); do not edit by hand"
  data.generated = date
  local header = {
    ("Schema data of %s: request and response schemas of the %d operations tagged %s"):format(
      s.class, stats.operations, table.concat(s.tags, ", ")),
    ("(request bodies: %d, responses: %d, definitions: %d), from the published spec"):format(
      stats.bodies, stats.responses, stats.definitions),
    ("%s (sha256 %s, openapi %s, info.version %s), %s."):format(s.file, sum, data.source_openapi,
      data.source_info_version, date),
    "Written by " .. GENERATOR .. " (make schemas): do not edit by hand. Format: docs/api-tables.md.",
  }
  return luadata.file(header, data)
end

local stale, written, same = {}, 0, 0

for _, s in ipairs(SOURCES) do
  local path = opts.specs .. "/" .. s.file
  local text, err = read(path)
  if not text then die("cannot read " .. path .. ": " .. tostring(err)) end
  local ok, doc = pcall(json.decode, text)
  if not ok then die(path .. ": " .. tostring(doc)) end
  local ok2, data, stats = pcall(convert.build, doc, { tags = s.tags })
  if not ok2 then die(path .. ": " .. tostring(data)) end
  local sum = sha256(path)
  local out = opts.out .. "/" .. s.out .. ".lua"
  local old = read(out)
  local new = render(s, doc, data, stats, sum, os.date("!%Y-%m-%d"))
  local old_date = old and old:match('generated = "(%d%d%d%d%-%d%d%-%d%d)"')
  if old_date and render(s, doc, data, stats, sum, old_date) == old then
    same = same + 1
  elseif opts.check then
    stale[#stale + 1] = out
  else
    local f = assert(io.open(out, "wb"))
    assert(f:write(new))
    assert(f:close())
    written = written + 1
    print("wrote " .. out)
  end
end

if opts.check then
  if #stale > 0 then
    io.stderr:write("gen-schemas: out of date (run make schemas):\n  ", table.concat(stale, "\n  "), "\n")
    os.exit(1)
  end
  print(("schema data up to date (%d files)"):format(same))
else
  print(("schema data: %d written, %d unchanged"):format(written, same))
end
