/* UTF-8 validation (RFC 3629): no overlong forms, no surrogates (U+D800 to
 * U+DFFF), nothing above U+10FFFF. */
#include "prv_pure.h"

size_t prv_utf8_seq(const char *s, size_t avail) {
  const unsigned char *p = (const unsigned char *)s;
  unsigned char c;
  if (avail == 0) return 0;
  c = p[0];
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0; /* continuation byte, or overlong 2-byte lead */
  if (c < 0xE0) return avail >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
  if (c < 0xF0) {
    /* E0: second byte A0..BF (no overlong); ED: 80..9F (no surrogates) */
    unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    if (avail < 3 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80) return 0;
    return 3;
  }
  if (c < 0xF5) {
    /* F0: second byte 90..BF (no overlong); F4: 80..8F (<= U+10FFFF) */
    unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    if (avail < 4 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
    return 4;
  }
  return 0;
}

size_t prv_utf8_check(const char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    size_t k;
    if ((unsigned char)s[i] < 0x80) { i++; continue; }
    k = prv_utf8_seq(s + i, n - i);
    if (k == 0) return i;
    i += k;
  }
  return n;
}
