/* A malloc'd byte buffer owned by a Lua userdata (its __gc frees it), for C
 * code that measures and writes in one step: growing it is a realloc, never a
 * Lua allocation, so no finalizer can run between measuring what to write and
 * writing it, and a Lua error raised meanwhile (bad argument, out of memory)
 * leaks nothing. */
#ifndef PROVISION_OBUF_H
#define PROVISION_OBUF_H

#include <stddef.h>

#include "compat.h"

typedef struct {
  char *p;
  size_t len, cap;
} prv_obuf;

/* Push a new, empty buffer userdata and return it. May raise (memory). */
prv_obuf *prv_obuf_push(lua_State *L);
/* Room for `extra` more bytes after len. 1 on success, 0 when out of memory
 * (or the size would overflow). Never calls Lua. */
int prv_obuf_reserve(prv_obuf *b, size_t extra);
/* Free the memory now (the userdata stays, empty). Never calls Lua. */
void prv_obuf_free(prv_obuf *b);

#endif
