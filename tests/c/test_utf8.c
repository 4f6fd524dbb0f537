/* Unit tests of the UTF-8 validator (csrc/pure/utf8.c) against RFC 3629:
 * the boundaries of each sequence length, overlong forms, surrogates, the
 * end of Unicode, truncation and stray continuation bytes. */
#include <stdio.h>
#include <string.h>

#include "prv_pure.h"

static int passed, failed;

#define CHECK(cond, ...)                          \
  do {                                            \
    if (cond) passed++;                           \
    else {                                        \
      failed++;                                   \
      printf("FAIL %s:%d: ", __FILE__, __LINE__); \
      printf(__VA_ARGS__);                        \
      printf("\n");                               \
    }                                             \
  } while (0)

/* s (n bytes) must be one sequence of length want (0: invalid) */
static void seq(const char *s, size_t n, size_t want) {
  size_t got = prv_utf8_seq(s, n);
  CHECK(got == want, "seq %02x %02x..: got %zu, want %zu", (unsigned char)s[0], n > 1 ? (unsigned char)s[1] : 0, got, want);
}

int main(void) {
  /* boundaries of every length: first and last code point */
  seq("\x00", 1, 1);
  seq("\x7f", 1, 1);
  seq("\xc2\x80", 2, 2);             /* U+0080 */
  seq("\xdf\xbf", 2, 2);             /* U+07FF */
  seq("\xe0\xa0\x80", 3, 3);         /* U+0800 */
  seq("\xed\x9f\xbf", 3, 3);         /* U+D7FF, last before the surrogates */
  seq("\xee\x80\x80", 3, 3);         /* U+E000, first after them */
  seq("\xef\xbf\xbf", 3, 3);         /* U+FFFF */
  seq("\xf0\x90\x80\x80", 4, 4);     /* U+10000 */
  seq("\xf4\x8f\xbf\xbf", 4, 4);     /* U+10FFFF */
  /* overlong forms */
  seq("\xc0\x80", 2, 0);
  seq("\xc1\xbf", 2, 0);
  seq("\xe0\x80\x80", 3, 0);
  seq("\xe0\x9f\xbf", 3, 0);
  seq("\xf0\x80\x80\x80", 4, 0);
  seq("\xf0\x8f\xbf\xbf", 4, 0);
  /* surrogates */
  seq("\xed\xa0\x80", 3, 0);
  seq("\xed\xbf\xbf", 3, 0);
  /* beyond U+10FFFF, and bytes that never appear */
  seq("\xf4\x90\x80\x80", 4, 0);
  seq("\xf5\x80\x80\x80", 4, 0);
  seq("\xff", 1, 0);
  seq("\xfe", 1, 0);
  /* stray continuation, bad continuation, truncation */
  seq("\x80", 1, 0);
  seq("\xbf", 1, 0);
  seq("\xc3\x28", 2, 0);
  seq("\xe2\x82\x28", 3, 0);
  seq("\xf0\x9f\x98\x28", 4, 0);
  seq("\xc3", 1, 0);
  seq("\xe2\x82", 2, 0);
  seq("\xf0\x9f\x98", 3, 0);
  seq("", 0, 0);

  CHECK(prv_utf8_check("", 0) == 0, "empty");
  CHECK(prv_utf8_check("plain ascii", 11) == 11, "ascii");
  CHECK(prv_utf8_check("a\xc3\xa9\xf0\x9f\x98\x80z", 8) == 8, "mixed valid");
  CHECK(prv_utf8_check("ab\xc3", 3) == 2, "truncated at the end");
  CHECK(prv_utf8_check("ab\x80" "cd", 5) == 2, "stray continuation");
  CHECK(prv_utf8_check("\xc3\xa9\xed\xa0\x80", 5) == 2, "surrogate after a valid char");
  {
    /* every single byte: valid alone exactly when ASCII */
    int b, ok = 1;
    for (b = 0; b < 256; b++) {
      char c = (char)b;
      if ((prv_utf8_check(&c, 1) == 1) != (b < 0x80)) ok = 0;
    }
    CHECK(ok, "single bytes");
  }
  printf("test_utf8: %d passed, %d failed\n", passed, failed);
  return failed != 0;
}
