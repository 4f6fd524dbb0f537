/* libFuzzer target: JWT decoding, HS256 signing and verification
 * (csrc/codec.c over csrc/pure/ and csrc/json.c), through the Lua API.
 *
 * Properties: none of jwt_decode, jwt_verify_hs256, jwt_sign_hs256 raises
 * for any input; each returns (table, table) or (nil, string); an error
 * message never contains the token (checked for tokens of 24 bytes and
 * more holding two dots: no fixed part of a message has two dots, so only
 * an echo could match); a token that verifies also
 * decodes; a token signed from the input (as payload JSON) verifies with
 * the same secret, not with another, and its payload decodes to the same
 * JSON value. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "core.h"

static lua_State *L;

static void die(const char *what, const char *detail) {
  fprintf(stderr, "fuzz_jwt: %s: %s\n", what, detail ? detail : "");
  abort();
}

static size_t dots(const uint8_t *s, size_t n) {
  size_t i, k = 0;
  for (i = 0; i < n; i++) k += s[i] == '.';
  return k;
}

/* fn(args...) at stack top with nargs args below it; leaves 2 results;
 * returns 1 for (table, table), 0 for (nil, string). */
static int call2(const char *fn, int nargs, const uint8_t *tok, size_t toklen) {
  if (lua_pcall(L, nargs, 2, 0) != LUA_OK) die(fn, lua_tostring(L, -1));
  if (lua_istable(L, -2) && lua_istable(L, -1)) return 1;
  if (!lua_isnil(L, -2) || lua_type(L, -1) != LUA_TSTRING) die(fn, "neither (table, table) nor (nil, string)");
  if (tok && toklen >= 24 && dots(tok, toklen) >= 2) {
    size_t mlen;
    const char *m = lua_tolstring(L, -1, &mlen);
    size_t i;
    for (i = 0; i + toklen <= mlen; i++)
      if (memcmp(m + i, tok, toklen) == 0) die(fn, "the error message holds the token");
  }
  return 0;
}

static void push_fn(const char *name) { lua_getfield(L, 1, name); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int top, ok;
  if (!L) {
    L = luaL_newstate();
    luaL_openlibs(L);
    lua_newtable(L); /* 1: the module table */
    prv_open_json(L);
    prv_open_codec(L);
  }
  top = lua_gettop(L);

  push_fn("jwt_decode");
  lua_pushlstring(L, (const char *)data, size);
  ok = call2("jwt_decode", 1, data, size);
  lua_settop(L, top);

  push_fn("jwt_verify_hs256");
  lua_pushlstring(L, (const char *)data, size);
  lua_pushliteral(L, "fuzz-secret");
  if (call2("jwt_verify_hs256", 2, data, size) && !ok) die("jwt_verify_hs256", "verified a token jwt_decode refuses");
  lua_settop(L, top);

  /* the input as a payload */
  push_fn("jwt_sign_hs256");
  lua_pushlstring(L, (const char *)data, size);
  lua_pushliteral(L, "fuzz-secret");
  if (lua_pcall(L, 2, 2, 0) != LUA_OK) die("jwt_sign_hs256 raised", lua_tostring(L, -1));
  if (lua_type(L, -2) == LUA_TSTRING) {
    int tok = lua_gettop(L) - 1;
    size_t e1n, e2n;
    const char *e1, *e2;
    push_fn("jwt_verify_hs256");
    lua_pushvalue(L, tok);
    lua_pushliteral(L, "fuzz-secret");
    if (!call2("jwt_verify_hs256", 2, NULL, 0)) die("own token does not verify", lua_tostring(L, -1));
    lua_pop(L, 1); /* payload table left */
    push_fn("jwt_verify_hs256");
    lua_pushvalue(L, tok);
    lua_pushliteral(L, "another-secret");
    if (call2("jwt_verify_hs256", 2, NULL, 0)) die("own token verifies with another secret", "");
    lua_pop(L, 2);
    /* payload (decoded from the token) and the input encode alike */
    push_fn("json_encode");
    lua_pushvalue(L, -2);
    lua_newtable(L);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "sort_keys");
    if (lua_pcall(L, 2, 2, 0) != LUA_OK || !lua_isstring(L, -2)) die("payload does not encode", lua_tostring(L, -1));
    lua_pop(L, 1);
    push_fn("json_decode");
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 2, 0) != LUA_OK || !lua_istable(L, -2)) die("signed payload does not decode", "");
    lua_pop(L, 1);
    push_fn("json_encode");
    lua_insert(L, -2);
    lua_newtable(L);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "sort_keys");
    if (lua_pcall(L, 2, 2, 0) != LUA_OK || !lua_isstring(L, -2)) die("input payload does not encode", "");
    lua_pop(L, 1);
    e1 = lua_tolstring(L, -2, &e1n);
    e2 = lua_tolstring(L, -1, &e2n);
    if (e1n != e2n || memcmp(e1, e2, e1n) != 0) die("token payload differs from the input", e1);
  } else if (!lua_isnil(L, -2) || lua_type(L, -1) != LUA_TSTRING) {
    die("jwt_sign_hs256", "neither a token nor (nil, string)");
  }
  lua_settop(L, top);
  /* all of this input's garbage goes now: libFuzzer's leak check (a full
   * scan) runs after every input whose mallocs and frees do not balance */
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
