-- luacheck finds nothing in the library, the sandbox, the examples, the CLI,
-- the benches, the scripts and the tests (settings in .luacheckrc), and every library
-- file parses as Lua 5.1 (LuaJIT).
describe("lint", function()
  local function run(cmd)
    local p = io.popen(cmd .. " 2>&1")
    local out = p:read("a")
    local ok = p:close()
    return ok, out
  end

  it("luacheck reports no warnings", function()
    local ok, out = run("luacheck -q --codes --no-color lua/provision tests examples bin sandbox bench scripts")
    assert.is_true(ok, out)
  end)

  it("library files are Lua 5.1 syntax", function()
    local ok, out = run("find lua/provision -name '*.lua' -exec luac5.1 -p {} +")
    assert.is_true(ok, out)
  end)
end)
