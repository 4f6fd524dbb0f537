/* Registration entry points of the parts of provision.core.
 * Each adds its functions to the module table on top of the stack. */
#ifndef PROVISION_CORE_H
#define PROVISION_CORE_H

#include "compat.h"

void prv_open_http(lua_State *L);   /* http.c: session(), the libcurl engine */
void prv_open_codec(lua_State *L);  /* codec.c: base64, sha256, hmac, random, uuid, jwt, percent-encoding */
void prv_open_json(lua_State *L);   /* json.c: json_encode / json_decode */
void prv_open_clock(lua_State *L);  /* clock.c: now(), sleep() */

#endif
