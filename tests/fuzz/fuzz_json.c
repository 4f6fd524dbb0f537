/* libFuzzer target for the JSON codec (csrc/json.c). Built by
 * `make fuzz` (scripts/fuzz.sh, CMake option PROVISION_FUZZ); corpus in
 * tests/fuzz/corpus_json.
 *
 * Properties: json_decode never raises and returns a value or (nil, string
 * starting "invalid JSON at byte N"); N is within the input (+1); a decoded
 * value encodes, and encoding is a fixed point after one more round trip:
 * encode(decode(encode(v))) == encode(v) (sort_keys for a stable order).
 * The input as a Lua string encodes exactly when it is valid UTF-8
 * (prv_utf8_check), and then decodes back to itself. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "core.h"
#include "prv_pure.h"

static lua_State *L;

static void die(const char *what, const char *detail) {
  fprintf(stderr, "fuzz_json: %s: %s\n", what, detail ? detail : "");
  abort(); /* a finding: libFuzzer records the input */
}

/* stack: decode, encode, opts */
static const char *encode_top(size_t *len) {
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -2);
  lua_pushvalue(L, 3);
  if (lua_pcall(L, 2, 2, 0) != LUA_OK) die("json_encode raised", lua_tostring(L, -1));
  if (lua_isnil(L, -2)) {
    /* the only legitimate refusal of a decoded value: a number out of the
     * encodable range cannot occur (decoder refuses it), so none */
    die("json_encode refused a decoded value", lua_tostring(L, -1));
  }
  lua_pop(L, 1);
  return lua_tolstring(L, -1, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int top;
  if (!L) {
    L = luaL_newstate();
    luaL_openlibs(L);
    lua_newtable(L);
    prv_open_json(L);
    lua_getfield(L, 1, "json_decode");
    lua_getfield(L, 1, "json_encode");
    lua_remove(L, 1);
    lua_newtable(L);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "sort_keys");
  }
  top = lua_gettop(L);
  if (top != 3 || lua_type(L, 1) != LUA_TFUNCTION || lua_type(L, 2) != LUA_TFUNCTION) {
    char msg[96];
    snprintf(msg, sizeof msg, "top %d, types %s %s", top, luaL_typename(L, 1), luaL_typename(L, 2));
    die("harness stack damaged", msg);
  }
  lua_pushvalue(L, 1);
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 2, 0) != LUA_OK) die("json_decode raised", lua_tostring(L, -1));
  if (lua_isnil(L, -2)) {
    const char *msg = lua_tostring(L, -1);
    unsigned long at = 0;
    if (!msg || sscanf(msg, "invalid JSON at byte %lu:", &at) != 1) die("bad error message", msg);
    if (at < 1 || at > size + 1) die("error offset out of range", msg);
  } else {
    size_t n1, n2;
    const char *e1, *e2;
    lua_pop(L, 1);
    e1 = encode_top(&n1); /* stack: ..., v, e1 */
    lua_pushvalue(L, 1);
    lua_pushvalue(L, -2);
    if (lua_pcall(L, 1, 2, 0) != LUA_OK) die("json_decode raised on own output", lua_tostring(L, -1));
    if (lua_isnil(L, -2)) die("own output does not decode", lua_tostring(L, -1));
    lua_pop(L, 1);
    e2 = encode_top(&n2);
    if (n1 != n2 || memcmp(e1, e2, n1) != 0) die("round trip is not a fixed point", e1);
  }
  lua_settop(L, top);

  /* the input as a string value */
  lua_pushvalue(L, 2);
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 2, 0) != LUA_OK) die("json_encode raised", lua_tostring(L, -1));
  if (lua_isnil(L, -2) == (prv_utf8_check((const char *)data, size) == size))
    die("json_encode's UTF-8 verdict differs from prv_utf8_check", lua_tostring(L, -1));
  if (!lua_isnil(L, -2)) {
    size_t n;
    const char *back;
    lua_pop(L, 1);
    lua_pushvalue(L, 1);
    lua_insert(L, -2);
    if (lua_pcall(L, 1, 2, 0) != LUA_OK) die("json_decode raised on own output", lua_tostring(L, -1));
    back = lua_tolstring(L, -2, &n);
    if (!back || n != size || memcmp(back, data, size) != 0) die("string round trip differs", lua_tostring(L, -1));
  }
  lua_settop(L, top);
  /* all of this input's garbage goes now: libFuzzer's leak check (a full
   * scan) runs after every input whose mallocs and frees do not balance */
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
