-- The rockspecs build and install the module offline into a private tree,
-- from which `require "provision"` and bin/provision work in any folder; and
-- the version, licence and source they declare agree with the code.
local ROOT = debug.getinfo(1, "S").source:sub(2):match("^(.*)/tests/spec/[^/]*$") or "."

local slurp = require("support.proc").read_file

-- A rockspec is Lua that sets globals: read them into a table.
local function load_rockspec(path)
  local text = assert(slurp(path), "cannot read " .. path)
  local fields = {}
  assert(load(text, "=" .. path, "t", fields))()
  return fields
end

local function rockspecs()
  local list = {}
  local p = io.popen("cd '" .. ROOT .. "' && ls rockspec/*.rockspec")
  for f in p:lines() do list[#list + 1] = f end
  p:close()
  return list
end

local provision = require("provision")

describe("luarocks", function()
  for _, rockspec in ipairs({ "rockspec/provision-scm-1.rockspec",
                              "rockspec/provision-" .. provision.version .. "-1.rockspec" }) do
    it("installs provision from " .. rockspec, function()
      local tree = os.tmpname()
      os.remove(tree)
      finally(function() os.execute("rm -rf '" .. tree .. "'") end)
      local cmd = ("cd '%s' && luarocks --lua-version=5.4 --tree='%s' make --deps-mode=none "
        .. "%s > '%s.log' 2>&1"):format(ROOT, tree, rockspec, tree)
      local ok = os.execute(cmd)
      local log = slurp(tree .. ".log") or ""
      os.remove(tree .. ".log")
      assert.is_true(ok == true or ok == 0, log)
      local probe = ("cd /tmp && LUA_PATH='%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua' "
        .. "LUA_CPATH='%s/lib/lua/5.4/?.so' lua5.4 -e \"local p = require('provision'); "
        .. "local u = assert(p.UsersApi{}); io.write(p._VERSION, ' ', p.version, ' ', u.base, ' ', "
        .. "package.searchpath('provision.core', package.cpath))\""):format(tree, tree, tree)
      local out = io.popen(probe):read("a")
      assert.is_truthy(out:find("provision " .. provision.version .. " " .. provision.version, 1, true), out)
      assert.is_truthy(out:find("https://api.agilicus.com", 1, true), out)
      assert.is_truthy(out:find(tree .. "/lib/lua/5.4/provision/core.so", 1, true), out)
      -- the command line is installed too, and runs from the rock's paths
      local cli = ("cd /tmp && eval \"$(luarocks --lua-version=5.4 --tree='%s' path)\" && '%s/bin/provision' apis 2>&1")
        :format(tree, tree)
      local listing = io.popen(cli):read("a")
      assert.is_truthy(listing:find("UsersApi", 1, true), listing)
    end)
  end
end)

describe("release metadata", function()
  it("one version everywhere: _VERSION, the C core, the rockspec, CHANGELOG.md", function()
    assert.is_truthy(provision.version:match("^%d+%.%d+%.%d+$"), provision.version)
    assert.are.equal("provision " .. provision.version, provision._VERSION)
    assert.are.equal(provision.version, require("provision.core").version)
    local path = ROOT .. "/rockspec/provision-" .. provision.version .. "-1.rockspec"
    local spec = load_rockspec(path)
    assert.are.equal(provision.version .. "-1", spec.version)
    assert.are.equal("v" .. provision.version, spec.source.tag)
    local changelog = assert(slurp(ROOT .. "/CHANGELOG.md"), "CHANGELOG.md")
    assert.is_truthy(changelog:find("\n## " .. provision.version:gsub("%.", "%%.") .. "[%s(]"),
      "CHANGELOG.md has a section for " .. provision.version)
    local cli = io.popen("lua5.4 '" .. ROOT .. "/bin/provision' --version"):read("a")
    assert.is_truthy(cli:find(provision._VERSION, 1, true), cli)
  end)

  it("every rockspec names its own version in its file name, a remote source and the MIT licence", function()
    local list = rockspecs()
    assert.is_true(#list >= 2, "the scm rockspec and a versioned one")
    for _, f in ipairs(list) do
      local spec = load_rockspec(ROOT .. "/" .. f)
      assert.are.equal("rockspec/" .. spec.package .. "-" .. spec.version .. ".rockspec", f)
      local url = spec.source.url
      assert.is_truthy(url:match("^git%+https://") or url:match("^https://"), f .. ": source.url " .. url)
      assert.are.equal("MIT", spec.description.license, f)
    end
    local license = assert(slurp(ROOT .. "/LICENSE"), "LICENSE")
    assert.is_truthy(license:match("^MIT License\n"), "LICENSE is the MIT licence")
    local pkg = assert(require("provision.json").decode(assert(slurp(ROOT .. "/package.json"))))
    assert.are.equal("MIT", pkg.license, "package.json")
  end)

  it("the versioned rockspec builds exactly what the scm one does", function()
    local scm = load_rockspec(ROOT .. "/rockspec/provision-scm-1.rockspec")
    local rel = load_rockspec(ROOT .. "/rockspec/provision-" .. provision.version .. "-1.rockspec")
    for _, field in ipairs({ "rockspec_format", "package", "description", "dependencies",
                             "external_dependencies", "build" }) do
      assert.are.same(scm[field], rel[field], field)
    end
    assert.are.equal(scm.source.url, rel.source.url)
  end)
end)
