/* C-side entry points of the JSON codec (json.c) for other parts of the core. */
#ifndef PROVISION_JSON_H
#define PROVISION_JSON_H

#include "compat.h"

#define PRV_JSON_MAX_DEPTH 512

/* Decode s[0..len) and push the value (returns 1), or push an error message
 * "invalid JSON at byte N: reason" (returns 0). Never raises for bad data.
 * Decoded arrays get core.array_mt (kept in the registry). */
int prv_json_decode(lua_State *L, const char *s, size_t len);

#endif
