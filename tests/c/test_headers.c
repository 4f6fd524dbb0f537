/* Unit tests of the response header parser (csrc/pure/headers.c): fields in
 * order, trimming, folding, merging of repeated names (set-cookie apart),
 * and the refusals: bare CR, NUL, no colon, empty name, folded first line. */
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

static int span_is(const prv_headers *h, prv_span sp, const char *want) {
  return sp.len == strlen(want) && memcmp(h->text + sp.off, want, sp.len) == 0;
}

/* "name=value|name=value" of fields or merged, into out */
static void dump(const prv_headers *h, const prv_field *f, size_t n, char *out, size_t cap) {
  size_t i, o = 0;
  out[0] = '\0';
  for (i = 0; i < n && o + 4 < cap; i++) {
    int w = snprintf(out + o, cap - o, "%s%.*s=%.*s", i ? "|" : "", (int)f[i].name.len, h->text + f[i].name.off,
                     (int)f[i].value.len, h->text + f[i].value.off);
    if (w < 0) break;
    o += (size_t)w;
  }
}

static void ok(const char *in, const char *want_fields, const char *want_merged) {
  prv_headers h;
  size_t pos;
  const char *why;
  char got[1024];
  int rc = prv_headers_parse(in, strlen(in), &h, &pos, &why);
  CHECK(rc == 0, "parse '%s': rc %d (%s at %zu)", in, rc, why ? why : "", pos);
  if (rc != 0) return;
  dump(&h, h.fields, h.nfields, got, sizeof got);
  CHECK(strcmp(got, want_fields) == 0, "fields of '%s': got '%s', want '%s'", in, got, want_fields);
  dump(&h, h.merged, h.nmerged, got, sizeof got);
  CHECK(strcmp(got, want_merged) == 0, "merged of '%s': got '%s', want '%s'", in, got, want_merged);
  prv_headers_free(&h);
}

static void bad(const char *in, size_t n, size_t want_pos, const char *want_why) {
  prv_headers h;
  size_t pos = 99;
  const char *why = NULL;
  int rc = prv_headers_parse(in, n, &h, &pos, &why);
  CHECK(rc == -1, "'%s' should be refused, rc %d", in, rc);
  CHECK(pos == want_pos, "'%s': error at %zu, want %zu", in, pos, want_pos);
  CHECK(why && strstr(why, want_why), "'%s': reason '%s', want '%s'", in, why ? why : "(null)", want_why);
  CHECK(h.text == NULL && h.fields == NULL && h.nfields == 0, "'%s': nothing kept on failure", in);
}

int main(void) {
  prv_headers h;
  size_t pos;
  const char *why;

  CHECK(prv_headers_parse(NULL, 0, &h, &pos, &why) == 0 && h.nfields == 0 && h.nmerged == 0, "empty block");
  prv_headers_free(&h);
  ok("Content-Type: text/plain\r\n", "Content-Type=text/plain", "content-type=text/plain");
  ok("A: 1\nB:2", "A=1|B=2", "a=1|b=2");                      /* LF only; last line without EOL */
  ok("X-Pad:  \t spaced \t \r\n", "X-Pad=spaced", "x-pad=spaced");
  ok("X-Empty:\r\n", "X-Empty=", "x-empty=");
  ok("A : 1\r\n", "A=1", "a=1");                               /* space before the colon */
  ok("T: a:b: c\r\n", "T=a:b: c", "t=a:b: c");                 /* first colon splits */
  ok("\r\nA: 1\r\n\r\n", "A=1", "a=1");                        /* blank lines skipped */
  ok("X-Multi: one\r\nX-Single: yes\r\nx-multi: two\r\nX-MULTI: three\r\n",
     "X-Multi=one|X-Single=yes|x-multi=two|X-MULTI=three", "x-multi=one, two, three|x-single=yes");
  ok("Set-Cookie: a=1\r\nset-cookie: b=2\r\n", "Set-Cookie=a=1|set-cookie=b=2", "set-cookie=a=1\nb=2");
  ok("X-Folded: one\r\n  two\r\n\tthree \r\nNext: n\r\n", "X-Folded=one two three|Next=n",
     "next=n|x-folded=one two three");
  ok("X-F:\r\n  two\r\n   \r\n", "X-F=two", "x-f=two");         /* nothing to join with */
  ok("B: 2\r\nA: 1\r\nB: 3\r\n", "B=2|A=1|B=3", "a=1|b=2, 3");
  ok("X: v\xc3\xa9\xff\r\n", "X=v\xc3\xa9\xff", "x=v\xc3\xa9\xff"); /* bytes kept as they are */

  bad("A: a\rb\r\n", 8, 4, "bare CR");
  bad("X\rY: z\r\n", 8, 1, "bare CR");
  bad("A: 1\r\r\n", 7, 4, "bare CR");
  bad("A: 1\r", 5, 4, "bare CR");                              /* CR at the very end */
  bad("A: 1\r\nB: \0x\r\n", 13, 9, "NUL");
  bad("A: 1\r\nnocolon\r\n", 15, 6, "without a colon");
  bad(": v\r\n", 5, 0, "empty name");
  bad("  folded\r\nA: 1\r\n", 16, 0, "folded line before any header");

  {
    /* 50000 repeats of one name: merged once, in arrival order */
    static char block[50000 * 8];
    size_t i, o = 0;
    for (i = 0; i < 50000; i++) o += (size_t)sprintf(block + o, "A: %c\r\n", 'a' + (int)(i % 26));
    CHECK(prv_headers_parse(block, o, &h, &pos, &why) == 0, "50000 lines");
    CHECK(h.nfields == 50000 && h.nmerged == 1, "50000 lines: %zu fields, %zu merged", h.nfields, h.nmerged);
    CHECK(h.nmerged == 1 && h.merged[0].value.len == 50000 + 2 * 49999, "merged length");
    CHECK(h.nmerged == 1 && memcmp(h.text + h.merged[0].value.off, "a, b, c", 7) == 0, "merged order");
    CHECK(span_is(&h, h.fields[49999].value, "b"), "last field");  /* 49999 % 26 == 1 */
    prv_headers_free(&h);
  }
  {
    /* the fast path: the parser's fields for the usual block, -1 otherwise */
    static const char *const usual[] = { "Content-Type: text/plain\r\n", "A: 1\nB:2", "X-Pad:  \t spaced \t \r\n",
                                         "X-Empty:\r\n", "A : 1\r\n", "T: a:b: c\r\n", "\r\nA: 1\r\n\r\n",
                                         "B: 2\r\nA: 1\r\n", "", NULL };
    static const char *const other[] = { "X-Multi: one\r\nx-multi: two\r\n", "X-F: one\r\n  two\r\n",
                                         "A: a\rb\r\n", "A: 1\r", "A: 1\r\nnocolon\r\n", ": v\r\n",
                                         "  folded\r\nA: 1\r\n", "A: 1\r\nB: 2\r\nC: 3\r\n", NULL };
    prv_field f[2];
    int i, k;
    size_t j;
    for (i = 0; usual[i]; i++) {
      size_t n = strlen(usual[i]);
      k = prv_headers_split(usual[i], n, f, 2);
      CHECK(prv_headers_parse(usual[i], n, &h, &pos, &why) == 0, "'%s' parses", usual[i]);
      CHECK(k >= 0 && (size_t)k == h.nfields, "'%s': fast path found %d fields, the parser %zu", usual[i], k, h.nfields);
      for (j = 0; k >= 0 && j < (size_t)k && j < h.nfields; j++) {
        CHECK(f[j].name.len == h.fields[j].name.len &&
              memcmp(usual[i] + f[j].name.off, h.text + h.fields[j].name.off, f[j].name.len) == 0 &&
              f[j].value.len == h.fields[j].value.len &&
              memcmp(usual[i] + f[j].value.off, h.text + h.fields[j].value.off, f[j].value.len) == 0,
              "'%s': field %zu as the parser's", usual[i], j);
      }
      prv_headers_free(&h);
    }
    for (i = 0; other[i]; i++)
      CHECK(prv_headers_split(other[i], strlen(other[i]), f, 2) == -1, "'%s': not for the fast path", other[i]);
    CHECK(prv_headers_split("A: \0x\r\n", 7, f, 2) == -1, "NUL: not for the fast path");
  }
  printf("test_headers: %d passed, %d failed\n", passed, failed);
  return failed != 0;
}
