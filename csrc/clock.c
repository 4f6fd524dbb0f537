/* Monotonic clock and sleep for the default (blocking) transport.
 * Hosts with their own event loop supply these through their transport. */
#include <errno.h>
#include <time.h>

#include "core.h"

static int l_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

static int l_sleep(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  struct timespec req, rem;
  if (!(s > 0)) return 0; /* also rejects NaN */
  if (s > 86400) s = 86400;
  req.tv_sec = (time_t)s;
  req.tv_nsec = (long)((s - (lua_Number)req.tv_sec) * 1e9);
  while (nanosleep(&req, &rem) != 0 && errno == EINTR) req = rem;
  return 0;
}

void prv_open_clock(lua_State *L) {
  static const luaL_Reg fns[] = {{"now", l_now}, {"sleep", l_sleep}, {NULL, NULL}};
  prv_setfuncs(L, fns);
}
