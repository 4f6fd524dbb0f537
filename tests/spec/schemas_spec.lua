-- The committed schema data (lua/provision/schemas/*.lua) and the generator
-- that writes it from the published specs (scripts/gen-schemas.lua with
-- scripts/schemas/*.lua). A bare clone has no published specs, so the data
-- is held to the committed contract fixtures (tests/contract/), which are
-- cut from the same documents with their prose stripped: the generator run
-- over the fixtures must give the committed data's structure exactly (all
-- but the short descriptions), and each file's provenance must name the
-- fixture's own source (same file, same sha256, same versions).
local ROOT = debug.getinfo(1, "S").source:sub(2):match("^(.*)/tests/spec/[^/]*$") or "."
package.path = ROOT .. "/scripts/?.lua;" .. package.path
local cjson = require("cjson")
local luadata = require("schemas.luadata")
local convert = require("schemas.convert")
local contract_json = require("contract.json")
local SOURCES = require("schemas.sources")
local schema = require("provision.schema")

local DATA = ROOT .. "/lua/provision/schemas/"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function load_data(path)
  return assert(loadfile(path, "t", {}))()
end

local function header_of(text)
  local lines = {}
  for line in text:gmatch("([^\n]*)\n") do
    if line:sub(1, 6) == "return" then break end
    lines[#lines + 1] = line:gsub("^%-%- ?", "")
  end
  return lines
end

local PROVENANCE = { source_sha256 = true, generated = true }

-- A deep copy without descriptions (the fixtures carry none) and, at the
-- top, without what names the source file's bytes and date.
local function structure(v, top)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do
    if k ~= "description" and not (top and PROVENANCE[k]) then out[k] = structure(x) end
  end
  return out
end

-- The first difference between two plain values, as "path: a vs b", or nil.
local function diff(a, b, where)
  where = where or "data"
  if type(a) ~= type(b) then return where .. ": " .. tostring(a) .. " vs " .. tostring(b) end
  if type(a) ~= "table" then
    if a ~= b then return where .. ": " .. tostring(a) .. " vs " .. tostring(b) end
    return nil
  end
  for k, x in pairs(a) do
    local d = diff(x, b[k], where .. "." .. tostring(k))
    if d then return d end
  end
  for k, x in pairs(b) do
    if a[k] == nil then return where .. "." .. tostring(k) .. ": missing vs " .. tostring(x) end
  end
  return nil
end

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok == true, out, code
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Every definition name the data references, from its operations, transitively.
local function referenced(set)
  local seen, queue = {}, {}
  local function walk(n)
    if type(n) ~= "table" then return end
    if n.ref and not seen[n.ref] then seen[n.ref] = true; queue[#queue + 1] = n.ref end
    for k, x in pairs(n) do
      if k ~= "ref" then walk(x) end
    end
  end
  walk(set.operations)
  local i = 0
  while i < #queue do
    i = i + 1
    walk(set.definitions[queue[i]])
  end
  return seen
end

describe("schema data", function()
  local generated   -- folder the generator wrote from the fixtures
  setup(function()
    generated = os.tmpname()
    os.remove(generated)
    assert(os.execute("mkdir -p " .. q(generated)))
    local ok, out = sh("cd " .. q(ROOT) .. " && lua5.4 scripts/gen-schemas.lua --specs tests/contract --out " .. q(generated))
    assert(ok, out)
  end)
  teardown(function() if generated then os.execute("rm -rf " .. q(generated)) end end)

  local counts = {}
  for _, s in ipairs(SOURCES) do
    describe(s.out .. ".lua", function()
      local path = DATA .. s.out .. ".lua"
      local text = read(path)
      local data = load_data(path)
      local fixture = cjson.decode(read(ROOT .. "/tests/contract/" .. s.file))

      it("is written in the generator's own format (loading and writing it gives the same bytes)", function()
        assert.is_true(luadata.file(header_of(text), data) == text)
      end)

      it("names its source: the fixture's published spec, by file, sha256 and versions", function()
        local note = fixture["x-provenance"]
        assert.equals(s.file, data.source)
        assert.equals(note.source_sha256, data.source_sha256)
        assert.equals(note.source_openapi, data.source_openapi)
        assert.equals(note.source_info_version, data.source_info_version)
        assert.matches("^%d%d%d%d%-%d%d%-%d%d$", data.generated)
        assert.matches("scripts/gen%-schemas%.lua", data.generator)
        assert.truthy(text:find(data.source_sha256, 1, true), "the header names the sha256")
      end)

      it("has the structure the generator makes of tests/contract/" .. s.file, function()
        local made = load_data(generated .. "/" .. s.out .. ".lua")
        local d = diff(structure(data, true), structure(made, true))
        assert(d == nil, "committed vs generated from the fixture: " .. tostring(d))
      end)

      it("defines every model it references and no other; short one-line descriptions", function()
        local refs = referenced(data)
        for name in pairs(refs) do assert(data.definitions[name], "undefined " .. name) end
        for name in pairs(data.definitions) do assert(refs[name], "unreferenced " .. name) end
        local n = 0
        local function walk(v)
          if type(v) ~= "table" then return end
          if type(v.description) == "string" then
            n = n + 1
            assert(#v.description <= convert.DESCRIPTION_MAX, v.description)
            assert(not v.description:find("%c"), v.description)
          end
          for _, x in pairs(v) do walk(x) end
        end
        walk(data)
        counts[s.out] = { operations = 0, bodies = 0, responses = 0, definitions = 0, descriptions = n }
        local c = counts[s.out]
        for _, op in pairs(data.operations) do
          c.operations = c.operations + 1
          if op.body then c.bodies = c.bodies + 1 end
          for _ in pairs(op.responses or {}) do c.responses = c.responses + 1 end
        end
        for _ in pairs(data.definitions) do c.definitions = c.definitions + 1 end
        assert(#text < 100000, "keep the data small: " .. #text .. " bytes")
      end)
    end)
  end

  it("counts per file (operations, request bodies, 2xx responses, definitions, descriptions)", function()
    local want = {
      docspace = { operations = 5, bodies = 0, responses = 3, definitions = 8 },
      outpost_v0 = { operations = 7, bodies = 0, responses = 7, definitions = 4 },
      outpost_latest = { operations = 6, bodies = 1, responses = 7, definitions = 7 },
      agilicus = { operations = 45, bodies = 17, responses = 36, definitions = 27 },
      document360 = { operations = 10, bodies = 4, responses = 10, definitions = 36 },
    }
    for _, src in ipairs(SOURCES) do
      local name, w = src.out, want[src.out]
      local c = assert(counts[name], name)
      for k, v in pairs(w) do assert.equals(v, c[k], name .. " " .. k) end
      print(("  schema data %-15s %2d operations, %2d request bodies, %2d responses, %2d definitions, %3d descriptions")
        :format(name, c.operations, c.bodies, c.responses, c.definitions, c.descriptions))
    end
  end)

  it("is loaded on first use only: a client of one API loads no other API's data", function()
    local script = [[
      local provision = require("provision")
      local T = { send = function(_, reqs) local o = {} for i = 1, #reqs do o[i] = { status = 201, headers = {}, body = "" } end return o end,
                  now = os.clock, sleep = function() end }
      local users = assert(provision.UsersApi({ transport = T }))
      assert(users:create_user({ email = "a@example.com" }))
      local names = {}
      for k in pairs(package.loaded) do if k:find("^provision%.schemas%.") then names[#names + 1] = k end end
      table.sort(names)
      io.write(table.concat(names, " "))
    ]]
    local ok, out = sh("cd " .. q(ROOT) .. " && lua5.4 -e " .. q(script))
    assert(ok, out)
    assert.equals("provision.schemas.agilicus", out)
  end)
end)

describe("schema data generator", function()
  local tmp
  before_each(function()
    tmp = os.tmpname()
    os.remove(tmp)
    assert(os.execute("mkdir -p " .. q(tmp)))
  end)
  after_each(function() os.execute("rm -rf " .. q(tmp)) end)

  it("is deterministic: a rerun writes nothing, --check passes, and fails on a stale file", function()
    local gen = "cd " .. q(ROOT) .. " && lua5.4 scripts/gen-schemas.lua --specs tests/contract --out " .. q(tmp)
    local ok, out = sh(gen)
    assert(ok, out)
    assert.matches("5 written, 0 unchanged", out)
    local before = read(tmp .. "/document360.lua")
    ok, out = sh(gen)
    assert(ok, out)
    assert.matches("0 written, 5 unchanged", out)
    assert.equals(before, read(tmp .. "/document360.lua"))
    ok, out = sh(gen .. " --check")
    assert(ok, out)
    local f = assert(io.open(tmp .. "/agilicus.lua", "ab"))
    f:write("-- edited by hand\n")
    f:close()
    local code
    ok, out, code = sh(gen .. " --check")
    assert.is_false(ok)
    assert.equals(1, code)
    assert.matches("agilicus%.lua", out)
  end)

  local function doc(schemas, body)
    return contract_json.decode(([[{
      "openapi": "3.0.3", "info": {"title": "T", "version": "1"},
      "paths": {"/x": {"post": {"tags": ["A"],
        "requestBody": {"content": {"text/plain": {"schema": {"type": "string"}},
                                    "application/json": {"schema": %s}}},
        "responses": {"201": {"description": "made", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}},
                      "404": {"description": "no"}}}}},
      "components": {"schemas": %s}
    }]]):format(body, schemas))
  end

  it("keeps structure, resolves $refs into named definitions and keeps cycles finite", function()
    local data, stats = convert.build(doc([[{
      "Node": {"type": "object", "description": "A node.\n\nMore prose here.", "required": ["id"],
               "additionalProperties": false,
               "properties": {"id": {"type": "string", "format": "uuid"},
                              "kids": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
                              "tag": {"type": ["string", "null"], "enum": ["a", "b", null], "example": "a"},
                              "n": {"type": "integer", "minimum": 1, "maximum": 9, "default": 2}}},
      "Unused": {"type": "string"}
    }]], [[{"$ref": "#/components/schemas/Node"}]]), { tags = { "A" } })
    assert.same({ operations = 1, bodies = 1, responses = 1, definitions = 1 }, stats)
    local op = data.operations["POST /x"]
    assert.equals("application/json", op.content_type)
    assert.same({ ref = "Node" }, op.body)
    assert.same({ [201] = { ref = "Node" } }, op.responses)
    assert.same({
      type = "object", description = "A node. More prose here.", required = { "id" }, additional_properties = false,
      properties = {
        { name = "id", type = "string", format = "uuid" },
        { name = "kids", type = "array", items = { ref = "Node" } },
        { name = "tag", type = "string", nullable = true, enum = { "a", "b" } },
        { name = "n", type = "integer", minimum = 1, maximum = 9, default = 2 },
      },
    }, data.definitions.Node)
    assert.is_nil(data.definitions.Unused)
    local set = { operations = data.operations, definitions = data.definitions }
    assert.same({ "kids" }, schema.array_paths(set, op.body))
  end)

  it("refuses a schema keyword it does not know, so that a spec change cannot be dropped silently", function()
    local ok, err = pcall(convert.build, doc('{"Node": {"type": "string", "pattern": "^a"}}', '{"type": "string"}'),
      { tags = { "A" } })
    assert.is_false(ok)
    assert.matches("Node%.pattern: schema keyword 'pattern' is not supported", err)
    ok, err = pcall(convert.build, doc('{"Node": {"$ref": "#/components/schemas/Gone"}}', '{"type": "string"}'),
      { tags = { "A" } })
    assert.is_false(ok)
    assert.matches("dangling %$ref #/components/schemas/Gone", err)
  end)

  it("cuts descriptions to their first sentence, at most 120 bytes, at a word", function()
    assert.equals("The email address of the team account", convert.short("The email address of the team account"))
    assert.equals("Cursor for the next page of results. Null if no more results.",
      convert.short("Cursor for the next page of results. Null if no more results."))
    assert.equals("The list of groups the user belongs to, e.g. admins.",
      convert.short("The list of groups the user belongs to, e.g. admins. Other text that is not needed here."))
    local long = convert.short(("word "):rep(60))
    assert.is_true(#long <= 120)
    assert.matches("word%.%.%.$", long)
    assert.is_nil(convert.short("  "))
  end)
end)
