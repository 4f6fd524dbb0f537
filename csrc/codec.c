/* Placeholder registration until this part lands (see docs/core-api.md). */
#include "core.h"
void prv_open_codec(lua_State *L) { (void)L; }
