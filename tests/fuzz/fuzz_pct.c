/* libFuzzer target: RFC 3986 percent-encoding and the header value check
 * (csrc/pure/encoding.c).
 *
 * Properties: prv_pct_encode writes exactly prv_pct_encoded_len bytes (into
 * an exact-size malloc), every one an unreserved character or part of a
 * "%XX" with upper-case hex, and decoding them gives the input back;
 * prv_header_value_ok is true exactly when the input holds no CR, LF, NUL. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prv_pure.h"

static void die(const char *what) {
  fprintf(stderr, "fuzz_pct: %s\n", what);
  abort();
}

static int unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1; /* lower case is not what the encoder writes */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *in = (const char *)data;
  size_t len = prv_pct_encoded_len(in, size), n, i, o = 0;
  char *out = (char *)malloc(len ? len : 1);
  int has_ctl = 0;
  if (!out) return 0;
  n = prv_pct_encode(in, size, out);
  if (n != len) die("encoded length differs from prv_pct_encoded_len");
  for (i = 0; i < n;) {
    unsigned char c = (unsigned char)out[i];
    int hi, lo;
    if (unreserved(c)) {
      if (o >= size || (unsigned char)in[o] != c) die("unreserved byte changed");
      i++;
      o++;
      continue;
    }
    if (c != '%' || i + 2 >= n) die("reserved byte not written as %XX");
    hi = hexval(out[i + 1]);
    lo = hexval(out[i + 2]);
    if (hi < 0 || lo < 0) die("bad hex digit after %");
    if (o >= size || (unsigned char)in[o] != (unsigned)(hi * 16 + lo)) die("%XX does not decode to the input");
    if (unreserved((unsigned char)in[o])) die("an unreserved byte was escaped");
    i += 3;
    o++;
  }
  if (o != size) die("decoded length differs");
  free(out);
  for (i = 0; i < size; i++)
    if (in[i] == '\r' || in[i] == '\n' || in[i] == '\0') has_ctl = 1;
  if (prv_header_value_ok(in, size) == has_ctl) die("prv_header_value_ok disagrees");
  return 0;
}
