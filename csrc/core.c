/* luaopen_provision_core: the module table of provision.core. */
#include "core.h"

#define PROVISION_VERSION "0.1.0"

int luaopen_provision_core(lua_State *L);

int luaopen_provision_core(lua_State *L) {
  lua_newtable(L);
  lua_pushliteral(L, PROVISION_VERSION);
  lua_setfield(L, -2, "version");
  prv_open_codec(L);
  prv_open_json(L);
  prv_open_http(L);
  prv_open_clock(L);
  return 1;
}
