/* libFuzzer target: core.build_query (csrc/codec.c) through the Lua API.
 *
 * The input is split at NUL bytes into parts; parts pair up as {key,
 * value}. A part starting with 'n' becomes a number (the integer or float
 * its other bytes spell, if any), one starting with 't' or 'f' a boolean,
 * anything else stays a string. Properties: build_query returns a string
 * (it raises only for a bad shape, which these entries never have) with one
 * "k=v" per entry joined by '&', where k and v percent-decode to the
 * entry's string forms (tostring for numbers). */
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
  fprintf(stderr, "fuzz_query: %s: %s\n", what, detail ? detail : "");
  abort();
}

static void push_part(const char *p, size_t n) {
  if (n > 0 && p[0] == 'n') {
    lua_pushlstring(L, p + 1, n - 1);
    /* parts hold no NUL (they were split there), so the C string is all of it */
    if (lua_stringtonumber(L, lua_tostring(L, -1)) == 0) {
      lua_pop(L, 1);
      lua_pushinteger(L, (lua_Integer)n * 7919 - 40000);
    } else {
      lua_remove(L, -2);
    }
  } else if (n > 0 && (p[0] == 't' || p[0] == 'f')) {
    lua_pushboolean(L, p[0] == 't');
  } else {
    lua_pushlstring(L, p, n);
  }
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* percent-decode q[0..n) into out; -1 if malformed */
static long pct_decode(const char *q, size_t n, char *out) {
  size_t i, o = 0;
  for (i = 0; i < n; i++) {
    if (q[i] == '%') {
      int hi, lo;
      if (i + 2 >= n) return -1;
      hi = hexval(q[i + 1]);
      lo = hexval(q[i + 2]);
      if (hi < 0 || lo < 0) return -1;
      out[o++] = (char)(hi * 16 + lo);
      i += 2;
    } else {
      out[o++] = q[i];
    }
  }
  return (long)o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data, *end = s + size, *p = s;
  int top, list, n = 0, i;
  size_t qlen, pos = 0;
  const char *q;
  if (!L) {
    L = luaL_newstate();
    luaL_openlibs(L);
    lua_newtable(L);
    prv_open_json(L);
    prv_open_codec(L);
  }
  top = lua_gettop(L);
  lua_newtable(L);
  list = lua_gettop(L);
  while (size > 0 && p <= end) {
    const char *k = p, *ke = memchr(p, '\0', (size_t)(end - p)), *v, *ve;
    if (!ke) ke = end;
    v = ke < end ? ke + 1 : end;
    ve = v < end ? memchr(v, '\0', (size_t)(end - v)) : NULL;
    if (!ve) ve = end;
    lua_createtable(L, 2, 0);
    push_part(k, (size_t)(ke - k));
    lua_rawseti(L, -2, 1);
    push_part(v, (size_t)(ve - v));
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, list, ++n);
    if (ve >= end) break;
    p = ve + 1;
  }
  lua_getfield(L, 1, "build_query");
  lua_pushvalue(L, list);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) die("build_query raised", lua_tostring(L, -1));
  q = lua_tolstring(L, -1, &qlen);
  if (!q) die("build_query returned no string", "");
  for (i = 1; i <= n; i++) {
    int side;
    size_t stop = pos;
    while (stop < qlen && q[stop] != '&') stop++;
    for (side = 1; side <= 2; side++) {
      size_t part_end = pos, wlen;
      const char *want;
      char *dec;
      long dn;
      if (side == 1) while (part_end < stop && q[part_end] != '=') part_end++;
      else part_end = stop;
      if (side == 1 && part_end == stop) die("entry without '='", q);
      lua_rawgeti(L, list, i);
      lua_rawgeti(L, -1, side);
      if (lua_type(L, -1) == LUA_TBOOLEAN) {
        want = lua_toboolean(L, -1) ? "true" : "false";
        wlen = strlen(want);
      } else {
        lua_getglobal(L, "tostring");
        lua_insert(L, -2);
        lua_call(L, 1, 1);
        want = lua_tolstring(L, -1, &wlen);
      }
      dec = (char *)malloc(part_end - pos + 1);
      if (!dec) die("out of memory", "");
      dn = pct_decode(q + pos, part_end - pos, dec);
      if (dn < 0 || (size_t)dn != wlen || memcmp(dec, want, wlen) != 0) die("part does not decode to the entry", q);
      free(dec);
      lua_pop(L, 2);
      pos = part_end + 1;
    }
    pos = stop + 1;
  }
  if (n == 0 ? qlen != 0 : pos != qlen + 1) die("output longer than its entries", q);
  lua_settop(L, top);
  /* all of this input's garbage goes now: libFuzzer's leak check (a full
   * scan) runs after every input whose mallocs and frees do not balance */
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
