/* body_buf.h: the response body buffer of bench/raw_curl.c and
 * bench/lua_floor.c. on_body is their libcurl write callback: it appends
 * to a Buf that grows by doubling, and returns 0 when it cannot (libcurl
 * then fails the transfer with CURLE_WRITE_ERROR). */
#ifndef PROVISION_BENCH_BODY_BUF_H
#define PROVISION_BENCH_BODY_BUF_H

#include <stdlib.h>
#include <string.h>

typedef struct { char *p; size_t len, cap; } Buf;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  Buf *b = (Buf *)ud;
  size_t n = size * nmemb;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 16384;
    char *np;
    while (cap < b->len + n) cap *= 2;
    np = realloc(b->p, cap);
    if (np == NULL) return 0;
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, ptr, n);
  b->len += n;
  return n;
}

#endif
