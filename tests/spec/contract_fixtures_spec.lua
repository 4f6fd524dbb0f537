-- The committed contract fixtures (tests/contract/) and the generator that
-- writes them (scripts/contract-fixtures.lua with scripts/contract/*.lua):
-- each fixture is exactly what the generator makes of it, carries its
-- provenance, and the cut keeps structure and examples while it drops prose,
-- noise and what the covered operations do not reference.
local ROOT = debug.getinfo(1, "S").source:sub(2):match("^(.*)/tests/spec/[^/]*$") or "."
package.path = ROOT .. "/scripts/?.lua;" .. package.path
local json = require("contract.json")
local cut = require("contract.openapi_cut")

local SPECS = {
  ["docspace.seed.openapi.json"] = 5, ["outpost.openapi.json"] = 7, ["outpost.latest.openapi.json"] = 6,
  ["agilicus.reconstructed.openapi.json"] = 45, ["document360.openapi.json"] = 10,
}
local SEEDS = {
  ["docspace-PortalUsersApi.json"] = 5, ["outpost-Tenants.json"] = 7, ["agilicus-UsersApi.json"] = 45,
  ["document360-TeamsApi.json"] = 10,
}

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function names(obj) return obj.keys end

local function without_note(doc)
  local out = json.object()
  for _, k in ipairs(doc.keys) do
    if k ~= "x-provenance" then json.set(out, k, doc.values[k]) end
  end
  return out
end

local function count_operations(doc)
  local n = 0
  local paths = json.get(doc, "paths")
  for _, p in ipairs(paths.keys) do
    for _, m in ipairs(paths.values[p].keys) do
      if m ~= "parameters" and m ~= "servers" then n = n + 1 end
    end
  end
  return n
end

describe("contract fixtures", function()
  for name, ops in pairs(SPECS) do
    describe(name, function()
      local path = ROOT .. "/tests/contract/" .. name
      local text = read(path)
      local doc = json.decode(text)

      it("is written in the generator's own format (decode + encode gives the same bytes)", function()
        assert.is_true(json.encode(doc) == text)
      end)

      it("carries its provenance: source, sha256, versions, date", function()
        local note = json.get(doc, "x-provenance")
        assert.equals(name, json.get(note, "source"))
        assert.matches("^%x+$", json.get(note, "source_sha256"))
        assert.equals(64, #json.get(note, "source_sha256"))
        assert.equals(json.get(doc, "openapi"), json.get(note, "source_openapi"))
        assert.equals(json.get(json.get(doc, "info"), "version"), json.get(note, "source_info_version"))
        assert.matches("^%d%d%d%d%-%d%d%-%d%d$", json.get(note, "generated"))
        assert.matches("scripts/contract%-fixtures%.lua", json.get(note, "generator"))
      end)

      it("holds the " .. ops .. " covered operations and is what the generator makes of it", function()
        assert.equals(ops, count_operations(doc))
        -- cutting it again changes nothing: no prose or noise left, every
        -- $ref resolves, no component that nothing references
        local tags, seen = {}, {}
        local paths = json.get(doc, "paths")
        for _, p in ipairs(paths.keys) do
          for _, m in ipairs(paths.values[p].keys) do
            local list = json.get(paths.values[p].values[m], "tags")
            for i = 1, (json.is_array(list) and list.n or 0) do
              if not seen[list[i]] then seen[list[i]] = true; tags[#tags + 1] = list[i] end
            end
          end
        end
        local again = cut.cut(without_note(doc), { tags = tags })
        assert.is_true(json.encode(again) == json.encode(without_note(doc)))
      end)
    end)
  end

  for name, ops in pairs(SEEDS) do
    it("seeds/" .. name .. " lists the " .. ops .. " documented methods, with its provenance", function()
      local seed = json.decode(read(ROOT .. "/tests/contract/seeds/" .. name))
      local note = json.get(seed, "provenance")
      assert.equals(name:gsub("%.json$", ".md"), json.get(note, "source"))
      assert.equals(64, #json.get(note, "source_sha256"))
      assert.matches("^%d%d%d%d%-%d%d%-%d%d$", json.get(note, "generated"))
      local order = json.get(seed, "order")
      assert.equals(ops, order.n)
      local all = json.get(seed, "ops")
      for i = 1, order.n do
        local op = json.get(all, order[i])
        assert.is_true(json.get(op, "section"), order[i])
        assert.is_true(json.is_array(json.get(op, "all")), order[i])
      end
    end)
  end
end)

describe("contract fixture generator", function()
  it("reads and writes JSON without losing key order, number text, [] vs {} or null", function()
    local text = '{\n  "b": 1.50,\n  "a": [],\n  "c": {},\n  "d": null,\n  "e": 9007199254740993,\n' ..
      '  "f": "café \\"q\\" \\\\ \\n",\n  "g": [\n    true,\n    false,\n    -2e-3\n  ]\n}\n'
    local doc = json.decode(text)
    assert.same({ "b", "a", "c", "d", "e", "f", "g" }, names(doc))
    assert.equals("café \"q\" \\ \n", json.get(doc, "f"))
    assert.equals(text, json.encode(doc))
    assert.equals("café 😀", json.decode('"caf\\u00e9 \\ud83d\\ude00"'))
    assert.has_error(function() json.decode('{"a":1,"a":2}') end)
    assert.has_error(function() json.decode('[1,]') end)
  end)

  local SOURCE = [[{
    "openapi": "3.0.3",
    "info": {"title": "T", "version": "9", "description": "prose"},
    "servers": [{"url": "https://api.example", "description": "prose"}],
    "tags": [{"name": "A", "description": "prose"}, {"name": "B"}],
    "externalDocs": {"url": "https://docs.example"},
    "x-tagGroups": [],
    "paths": {
      "/a/{id}": {
        "summary": "prose",
        "parameters": [{"$ref": "#/components/parameters/Id"}],
        "get": {
          "tags": ["A"], "summary": "prose", "description": "prose", "operationId": "getA",
          "x-codegen": {"n": 1},
          "responses": {
            "200": {"description": "prose", "content": {"application/json": {
              "schema": {"$ref": "#/components/schemas/Thing"},
              "examples": {
                "second": {"summary": "prose", "value": {"description": "data", "x-y": 1}},
                "first": {"value": {}}
              }}}},
            "404": {"description": "prose"}
          }
        },
        "post": {"tags": ["B"], "responses": {"201": {"$ref": "#/components/responses/Made"}}}
      },
      "/b": {"get": {"tags": ["B"], "responses": {"200": {"description": "x"}}}}
    },
    "components": {
      "parameters": {"Id": {"name": "id", "in": "path", "required": true, "description": "prose",
                            "schema": {"type": "string", "format": "uuid"}}},
      "responses": {"Made": {"description": "prose"}},
      "schemas": {
        "Unused": {"type": "string"},
        "Thing": {"type": "object", "description": "prose", "required": ["description"],
                  "properties": {"description": {"type": "string", "description": "prose", "default": "d"},
                                 "child": {"$ref": "#/components/schemas/Node"}},
                  "example": {"description": "data"}},
        "Node": {"type": "object", "properties": {"next": {"$ref": "#/components/schemas/Node"}}}
      },
      "securitySchemes": {
        "key": {"type": "apiKey", "in": "header", "name": "k", "description": "prose"},
        "oauth": {"type": "oauth2", "flows": {"clientCredentials": {"tokenUrl": "https://t.example",
                  "scopes": {"read": "Read things"}}}}
      }
    }
  }]]

  it("keeps the tagged operations, what they reference and the examples; drops prose and noise", function()
    local out, stats = cut.cut(json.decode(SOURCE), { tags = { "A" } })
    local get = json.get
    assert.same({ "openapi", "info", "servers", "tags", "paths", "components" }, names(out))
    assert.same({ "title", "version" }, names(get(out, "info")))
    assert.same({ "url" }, names(get(out, "servers")[1]))
    assert.equals(1, get(out, "tags").n)
    assert.same({ "name" }, names(get(out, "tags")[1]))
    local paths = get(out, "paths")
    assert.same({ "/a/{id}" }, names(paths))
    assert.same({ "parameters", "get" }, names(get(paths, "/a/{id}")))
    local op = get(get(paths, "/a/{id}"), "get")
    assert.same({ "tags", "operationId", "responses" }, names(op))
    local responses = get(op, "responses")
    assert.equals("", get(get(responses, "404"), "description"))   -- required: kept, empty
    local media = get(get(get(responses, "200"), "content"), "application/json")
    local examples = get(media, "examples")
    assert.same({ "second", "first" }, names(examples))             -- document order
    assert.same({ "value" }, names(get(examples, "second")))
    local value = get(get(examples, "second"), "value")
    assert.same({ "description", "x-y" }, names(value))             -- data is data
    local comps = get(out, "components")
    assert.same({ "parameters", "schemas", "securitySchemes" }, names(comps))
    assert.same({ "Thing", "Node" }, names(get(comps, "schemas")))   -- Unused dropped, the self-reference kept
    assert.same({ "name", "in", "required", "schema" }, names(get(get(comps, "parameters"), "Id")))
    local thing = get(get(comps, "schemas"), "Thing")
    assert.same({ "type", "required", "properties", "example" }, names(thing))
    assert.same({ "type", "default" }, names(get(get(thing, "properties"), "description")))
    assert.equals("data", get(get(thing, "example"), "description"))
    local schemes = get(comps, "securitySchemes")
    assert.same({ "key", "oauth" }, names(schemes))                  -- all of them, used or not
    assert.same({ "type", "in", "name" }, names(get(schemes, "key")))
    local flow = get(get(get(schemes, "oauth"), "flows"), "clientCredentials")
    assert.equals("", get(get(flow, "scopes"), "read"))
    assert.same({ operations = 1, components = 5 }, stats)

    local both = cut.cut(json.decode(SOURCE), { tags = { "A", "B" } })
    assert.same({ "/a/{id}", "/b" }, names(get(both, "paths")))
    assert.same({ "parameters", "responses", "schemas", "securitySchemes" }, names(get(both, "components")))
    assert.equals("", get(get(get(get(both, "components"), "responses"), "Made"), "description"))
  end)

  it("refuses what it cannot keep valid", function()
    local function with(old, new)
      local s = SOURCE:gsub(old:gsub("%p", "%%%0"), (new:gsub("%%", "%%%%")))
      return json.decode(s)
    end
    local ok, err = pcall(cut.cut, with('"#/components/schemas/Node"}}}', '"#/components/schemas/Gone"}}}'),
      { tags = { "A" } })
    assert.is_false(ok)
    assert.matches("dangling %$ref #/components/schemas/Gone", err)
    ok, err = pcall(cut.cut, with('"#/components/schemas/Thing"', '"other.json#/Thing"'), { tags = { "A" } })
    assert.is_false(ok)
    assert.matches("cannot follow %$ref other%.json#/Thing", err)
    ok, err = pcall(cut.cut, json.decode(SOURCE), { tags = { "Nope" } })
    assert.is_false(ok)
    assert.matches("no operation is tagged Nope", err)
  end)
end)
