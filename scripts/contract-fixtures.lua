#!/usr/bin/env lua5.4
-- Write the committed contract fixtures (tests/contract/) from the published
-- OpenAPI documents and the documented SDK pages:
--
--   tests/contract/<spec>.openapi.json  each spec cut to the operations
--       provision covers (see contract/openapi_cut.lua), its prose stripped;
--       Prism serves these files and the specs read them.
--   tests/contract/seeds/<page>.json    each SDK page's method list:
--       names in order, parameter order, types, defaults, auth, codes,
--       error classes (see contract/seed_pages.lua).
--
-- Each file carries a provenance note (x-provenance in a spec, provenance in
-- a seed list): source file, its sha256, the spec's versions, the generation
-- date. The output is deterministic: a rerun on unchanged sources changes no
-- byte (the date stays that of the last content change).
--
-- Usage: lua5.4 scripts/contract-fixtures.lua [--specs DIR] [--seeds DIR] [--out DIR] [--check]
--   --specs  published specs  (default $PROVISION_SPECS_DIR, else ../shared/specs beside the repo)
--   --seeds  SDK pages        (default $PROVISION_SEEDS_DIR, else ../shared/seeds)
--   --out    fixture folder   (default tests/contract in the repo)
--   --check  write nothing; exit 1 when a fixture is not what the sources give
-- Rerun (make contract-fixtures) only when a spec or SDK page changes.
local here = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or "."
package.path = here .. "/?.lua;" .. package.path

local json = require "contract.json"
local generator = require "generator"
local cut = require "contract.openapi_cut"
local pages = require "contract.seed_pages"

-- The operations we cover, by the tag the SDK class is generated from.
local SPECS = {
  { file = "docspace.seed.openapi.json", tags = { "Portal / Users" }, class = "PortalUsersApi" },
  { file = "outpost.openapi.json", tags = { "Tenants" }, class = "Tenants (v0)" },
  { file = "outpost.latest.openapi.json", tags = { "Tenants" }, class = "Tenants (latest)" },
  { file = "agilicus.reconstructed.openapi.json", tags = { "users" }, class = "UsersApi" },
  { file = "document360.openapi.json", tags = { "Teams" }, class = "TeamsApi" },
}

local SEEDS = {
  { file = "docspace-PortalUsersApi.md", format = "generator" },
  { file = "outpost-Tenants.md", format = "speakeasy" },
  { file = "agilicus-UsersApi.md", format = "generator" },
  { file = "document360-TeamsApi.md", format = "generator" },
}

local GENERATOR = "scripts/contract-fixtures.lua"

local die = generator.die("contract-fixtures")
local read, quote = generator.read, generator.quote
local function sha256(path) return generator.sha256(path, die) end

-- ------------------------------------------------------------------ options
local repo = here:match("^(.*)/scripts$") or (here == "scripts" and ".") or (here .. "/..")
local opts = {
  specs = os.getenv("PROVISION_SPECS_DIR") or (repo .. "/../shared/specs"),
  seeds = os.getenv("PROVISION_SEEDS_DIR") or (repo .. "/../shared/seeds"),
  out = repo .. "/tests/contract",
  check = false,
}
generator.parse_args(arg, opts, { "specs", "seeds", "out" },
  "usage: lua5.4 scripts/contract-fixtures.lua [--specs DIR] [--seeds DIR] [--out DIR] [--check]", die)

-- ------------------------------------------------------------------ output
local stale, written, same = {}, 0, 0

-- Write `build(date)` to `path` unless it already holds the same content:
-- the date in the note is kept when nothing else changed.
local function emit(path, build, old_date_of)
  local old = read(path)
  local text = build(os.date("!%Y-%m-%d"))
  if old then
    local old_date = old_date_of(old)
    if old_date then
      local again = build(old_date)
      if again == old then same = same + 1 return end
    end
  end
  if opts.check then stale[#stale + 1] = path return end
  local f = assert(io.open(path, "wb"))
  assert(f:write(text))
  assert(f:close())
  written = written + 1
  print("wrote " .. path)
end

local function date_in(text) return text:match('"generated": "(%d%d%d%d%-%d%d%-%d%d)"') end

local function spec_fixture(s)
  local path = opts.specs .. "/" .. s.file
  local text, err = read(path)
  if not text then die("cannot read " .. path .. ": " .. tostring(err)) end
  local ok, doc = pcall(json.decode, text)
  if not ok then die(path .. ": " .. tostring(doc)) end
  local ok2, fixture, stats = pcall(cut.cut, doc, { tags = s.tags })
  if not ok2 then die(path .. ": " .. tostring(fixture)) end
  local info = json.get(doc, "info")
  local research = json.get(doc, "x-research-provenance")
  local sum = sha256(path)
  emit(opts.out .. "/" .. s.file, function(date)
    local note = json.object()
    json.set(note, "source", s.file)
    json.set(note, "source_sha256", sum)
    json.set(note, "source_openapi", json.get(doc, "openapi"))
    json.set(note, "source_info_version", json.get(info, "version"))
    if json.is_object(research) and type(json.get(research, "source")) == "string" then
      json.set(note, "upstream", json.get(research, "source"))
    end
    json.set(note, "covers", ("%s: the %d operations tagged %s, the %d components they reference " ..
      "(transitively) and every security scheme"):format(s.class, stats.operations,
      table.concat(s.tags, ", "), stats.components))
    json.set(note, "stripped", "description, summary (a response's required description is kept " ..
      "empty), externalDocs, OAuth scope texts, vendor x- extensions except x-speakeasy-name-override; " ..
      "key order, schemas and examples as published")
    json.set(note, "generator", GENERATOR .. " (make contract-fixtures); do not edit by hand")
    json.set(note, "generated", date)
    local out = json.object()
    json.set(out, "x-provenance", note)
    for _, k in ipairs(fixture.keys) do json.set(out, k, fixture.values[k]) end
    return json.encode(out)
  end, date_in)
end

-- A seed table in JSON: error codes become string keys ("401", "4XX").
local function seed_json(seed)
  local ops = {}
  for name, op in pairs(seed.ops) do
    local o = {
      section = op.section, method = op.method, path = op.path, returns = op.returns,
      positional = json.array(op.positional), keywords = json.array(op.keywords), all = json.array(op.all),
      no_auth = op.no_auth,
    }
    if op.params then
      o.params = {}
      for pn, p in pairs(op.params) do
        o.params[pn] = { type = p.type, optional = p.optional, default = p.default }
      end
      if next(o.params) == nil then o.params = json.object() end
    end
    if op.auth then o.auth = json.array(op.auth) end
    if op.codes then o.codes = json.array(op.codes) end
    if op.errors then
      o.errors = {}
      for code, class in pairs(op.errors) do o.errors[tostring(code)] = class end
      if next(o.errors) == nil then o.errors = json.object() end
    end
    ops[name] = o
  end
  return ops
end

local function seed_fixture(s)
  local path = opts.seeds .. "/" .. s.file
  local text, err = read(path)
  if not text then die("cannot read " .. path .. ": " .. tostring(err)) end
  local ok, seed = pcall(pages[s.format], text)
  if not ok then die(path .. ": " .. tostring(seed)) end
  local sum = sha256(path)
  local name = s.file:gsub("%.md$", ".json")
  emit(opts.out .. "/seeds/" .. name, function(date)
    return json.encode({
      provenance = {
        source = s.file, source_sha256 = sum, page_format = s.format,
        covers = ("%s: %d methods in documented order"):format(seed.class, #seed.order),
        generator = GENERATOR .. " (make contract-fixtures); do not edit by hand",
        generated = date,
      },
      class = seed.class,
      format = s.format,
      order = json.array(seed.order),
      ops = seed_json(seed),
    })
  end, date_in)
end

os.execute("mkdir -p " .. quote(opts.out .. "/seeds"))
for _, s in ipairs(SPECS) do spec_fixture(s) end
for _, s in ipairs(SEEDS) do seed_fixture(s) end

if opts.check then
  if #stale > 0 then
    io.stderr:write("contract-fixtures: out of date (run make contract-fixtures):\n  ",
      table.concat(stale, "\n  "), "\n")
    os.exit(1)
  end
  print(("contract fixtures up to date (%d files)"):format(same))
else
  print(("contract fixtures: %d written, %d unchanged"):format(written, same))
end
