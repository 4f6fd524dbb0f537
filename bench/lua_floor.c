/* lua_floor.c: the least any Lua binding of libcurl can do per request, for
 * bench/http_bench.lua. It prices what Lua itself adds to raw_curl.c's
 * loop, so that the core's ratio to raw libcurl can be read against the
 * best ratio a binding could have on the same machine, in the same run.
 *
 *   local floor = package.loadlib(SO, "luaopen_lua_floor")()
 *   local h = floor.new({ "Name: value", ... })   -- one reused easy handle
 *   local resp = h:get(url)                       -- { status = 200, body = "..." }
 *
 * Per request: one Lua C call, the URL set, curl_easy_perform (keep-alive),
 * the status read, and a table of two fields (status, body) returned; a
 * transfer error raises. No timeout, no header capture, no validation, no
 * pooling or multi handle: everything the core does beyond this is
 * provision's own cost. Not a product path; built by the bench with cc.
 */
#include <curl/curl.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "body_buf.h"

#define FLOOR_MT "lua_floor.handle"

typedef struct {
  CURL *e;
  struct curl_slist *headers;
  Buf body;
} Floor;

static void floor_free(Floor *f) {
  if (f->e != NULL) curl_easy_cleanup(f->e);
  curl_slist_free_all(f->headers);
  free(f->body.p);
  f->e = NULL;
  f->headers = NULL;
  f->body.p = NULL;
}

static int l_gc(lua_State *L) {
  floor_free((Floor *)luaL_checkudata(L, 1, FLOOR_MT));
  return 0;
}

static int l_new(lua_State *L) {
  Floor *f;
  lua_Integer i, n;
  luaL_checktype(L, 1, LUA_TTABLE);
  n = (lua_Integer)lua_rawlen(L, 1);
  f = (Floor *)lua_newuserdata(L, sizeof *f);
  memset(f, 0, sizeof *f);
  luaL_setmetatable(L, FLOOR_MT);   /* from here __gc frees what f holds */
  for (i = 1; i <= n; i++) {
    struct curl_slist *next;
    lua_rawgeti(L, 1, i);
    if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "header %d: string expected", (int)i);
    next = curl_slist_append(f->headers, lua_tostring(L, -1));
    lua_pop(L, 1);
    if (next == NULL) return luaL_error(L, "out of memory");
    f->headers = next;
  }
  f->e = curl_easy_init();
  if (f->e == NULL) return luaL_error(L, "curl_easy_init failed");
  curl_easy_setopt(f->e, CURLOPT_HTTPHEADER, f->headers);
  curl_easy_setopt(f->e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(f->e, CURLOPT_WRITEDATA, (void *)&f->body);
  curl_easy_setopt(f->e, CURLOPT_NOSIGNAL, 1L);
  return 1;
}

static int l_get(lua_State *L) {
  Floor *f = (Floor *)luaL_checkudata(L, 1, FLOOR_MT);
  const char *url = luaL_checkstring(L, 2);
  long status = 0;
  CURLcode rc;
  if (f->e == NULL) return luaL_error(L, "handle is closed");
  f->body.len = 0;
  curl_easy_setopt(f->e, CURLOPT_URL, url);
  rc = curl_easy_perform(f->e);
  if (rc != CURLE_OK) return luaL_error(L, "%s", rc == CURLE_WRITE_ERROR ? "out of memory" : curl_easy_strerror(rc));
  curl_easy_getinfo(f->e, CURLINFO_RESPONSE_CODE, &status);
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)status);
  lua_setfield(L, -2, "status");
  lua_pushlstring(L, f->body.p != NULL ? f->body.p : "", f->body.len);   /* copies f->p before any other allocation */
  lua_setfield(L, -2, "body");
  return 1;
}

int luaopen_lua_floor(lua_State *L);
int luaopen_lua_floor(lua_State *L) {
  static const luaL_Reg methods[] = { { "get", l_get }, { NULL, NULL } };
  if (luaL_newmetatable(L, FLOOR_MT)) {
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushcfunction(L, l_new);
  lua_setfield(L, -2, "new");
  return 1;
}
