/* prv_obuf: malloc'd buffers owned by a userdata (csrc/obuf.h). */
#include <stdint.h>
#include <stdlib.h>

#include "obuf.h"

#define OBUF_MT "provision.core.obuf"

static int obuf_gc(lua_State *L) {
  prv_obuf *b = (prv_obuf *)lua_touserdata(L, 1);
  if (b) prv_obuf_free(b);
  return 0;
}

prv_obuf *prv_obuf_push(lua_State *L) {
  prv_obuf *b = (prv_obuf *)prv_newuserdata(L, sizeof *b);
  b->p = NULL;
  b->len = b->cap = 0;
  if (luaL_newmetatable(L, OBUF_MT)) {
    lua_pushcfunction(L, obuf_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return b;
}

int prv_obuf_reserve(prv_obuf *b, size_t extra) {
  size_t need, cap;
  char *np;
  if (extra > SIZE_MAX - b->len) return 0;
  need = b->len + extra;
  if (need <= b->cap) return 1;
  cap = b->cap ? b->cap : 256;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  np = (char *)realloc(b->p, cap);
  if (np == NULL) return 0;
  b->p = np;
  b->cap = cap;
  return 1;
}

void prv_obuf_free(prv_obuf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}
