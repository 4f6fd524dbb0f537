/* The one place that knows Lua API versions (5.4 and 5.1/LuaJIT).
 * Everything else in csrc/ calls only what is declared or used here. */
#ifndef PROVISION_COMPAT_H
#define PROVISION_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM >= 502
#define prv_rawlen(L, i) lua_rawlen((L), (i))
#define prv_setfuncs(L, l) luaL_setfuncs((L), (l), 0)
#define prv_newuserdata(L, sz) lua_newuserdatauv((L), (sz), 1)
#else
#define prv_rawlen(L, i) lua_objlen((L), (i))
#define prv_setfuncs(L, l) luaL_register((L), NULL, (l))
#define prv_newuserdata(L, sz) lua_newuserdata((L), (sz))
#endif

#if LUA_VERSION_NUM < 502
#define LUA_OK 0
#endif

/* Push an integer that may not fit a lua_Number exactly on 5.1. */
static inline void prv_pushint64(lua_State *L, long long v) {
#if LUA_VERSION_NUM >= 503
  lua_pushinteger(L, (lua_Integer)v);
#else
  lua_pushnumber(L, (lua_Number)v);
#endif
}

/* True when the value at idx is a Lua integer (5.3+) or an integral number (5.1). */
static inline int prv_isinteger(lua_State *L, int idx, long long *out) {
#if LUA_VERSION_NUM >= 503
  if (lua_isinteger(L, idx)) { *out = (long long)lua_tointeger(L, idx); return 1; }
  return 0;
#else
  lua_Number n = lua_tonumber(L, idx);
  /* range first: converting NaN or an out-of-range float to long long is UB */
  if (n >= -9007199254740992.0 && n <= 9007199254740992.0 && n == (lua_Number)(long long)n) {
    *out = (long long)n; return 1;
  }
  return 0;
#endif
}

/* Metatable helpers that exist under different names across versions. */
static inline void prv_setmetatable(lua_State *L, const char *tname) {
  luaL_getmetatable(L, tname);
  lua_setmetatable(L, -2);
}

static inline void *prv_testudata(lua_State *L, int idx, const char *tname) {
#if LUA_VERSION_NUM >= 502
  return luaL_testudata(L, idx, tname);
#else
  void *p = lua_touserdata(L, idx);
  if (p == NULL || !lua_getmetatable(L, idx)) return NULL;
  luaL_getmetatable(L, tname);
  if (!lua_rawequal(L, -1, -2)) p = NULL;
  lua_pop(L, 2);
  return p;
#endif
}

#endif
