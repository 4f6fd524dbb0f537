rockspec_format = "3.0"
package = "provision"
version = "scm-1"
source = {
  url = "git+https://github.com/provision-lua/provision.git",
  branch = "main",
}
description = {
  summary = "Provision people and tenants across DocSpace, Outpost, Agilicus and Document360",
  detailed = [[
    A Lua module with a C core (libcurl, OpenSSL): one client per API class,
    mirroring the published SDKs method for method, with safe retries, clear
    errors, paging and re-runnable workflows.
  ]],
  homepage = "https://github.com/provision-lua/provision",
  license = "MIT",
}
dependencies = {
  "lua >= 5.1",
}
external_dependencies = {
  CURL = { library = "curl" },
  OPENSSL = { library = "crypto" },
}
build = {
  -- CMake builds provision/core.so (see CMakeLists.txt) and installs it and
  -- lua/provision/ into the rock's own folders.
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    LUA_PKG = "lua$(LUA_VERSION)",
    PROVISION_LUA_CDIR = "$(LIBDIR)",
    PROVISION_LUA_LDIR = "$(LUADIR)",
  },
  install = {
    bin = { provision = "bin/provision" },
  },
}
