/* luaopen_provision_core: the module table of provision.core. */
#include "core.h"
#include "prv_pure.h"

int luaopen_provision_core(lua_State *L);

int luaopen_provision_core(lua_State *L) {
  lua_newtable(L);
  lua_pushstring(L, prv_pure_version());   /* csrc/pure/version.c */
  lua_setfield(L, -2, "version");
  prv_open_codec(L);
  prv_open_json(L);
  prv_open_http(L);
  prv_open_clock(L);
  return 1;
}
