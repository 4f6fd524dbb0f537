-- The rockspec builds and installs the module offline into a private tree,
-- from which `require "provision"` and bin/provision work in any folder.
describe("luarocks", function()
  it("installs provision from rockspec/provision-scm-1.rockspec", function()
    local tree = os.tmpname()
    os.remove(tree)
    finally(function() os.execute("rm -rf '" .. tree .. "'") end)
    local cmd = ("luarocks --lua-version=5.4 --tree='%s' make --deps-mode=none "
      .. "rockspec/provision-scm-1.rockspec > '%s.log' 2>&1"):format(tree, tree)
    local ok = os.execute(cmd)
    local log = io.open(tree .. ".log"):read("a")
    os.remove(tree .. ".log")
    assert.is_true(ok == true or ok == 0, log)
    local probe = ("cd /tmp && LUA_PATH='%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua' "
      .. "LUA_CPATH='%s/lib/lua/5.4/?.so' lua5.4 -e \"local p = require('provision'); "
      .. "local u = assert(p.UsersApi{}); io.write(p.version, ' ', u.base, ' ', "
      .. "package.searchpath('provision.core', package.cpath))\""):format(tree, tree, tree)
    local out = io.popen(probe):read("a")
    assert.is_truthy(out:find("https://api.agilicus.com", 1, true), out)
    assert.is_truthy(out:find(tree .. "/lib/lua/5.4/provision/core.so", 1, true), out)
    -- the command line is installed too, and runs from the rock's paths
    local cli = ("cd /tmp && eval \"$(luarocks --lua-version=5.4 --tree='%s' path)\" && '%s/bin/provision' apis 2>&1")
      :format(tree, tree)
    local listing = io.popen(cli):read("a")
    assert.is_truthy(listing:find("UsersApi", 1, true), listing)
  end)
end)
