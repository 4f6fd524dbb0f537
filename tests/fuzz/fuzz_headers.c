/* libFuzzer target: the response header parser (csrc/pure/headers.c), which
 * provision.core runs over every header and trailer block libcurl hands it.
 *
 * Properties: prv_headers_parse never reads or writes out of bounds (ASan;
 * the input is an exact-size copy); it refuses exactly the blocks a plain
 * line-by-line reference refuses (bare CR, NUL, no colon, empty name, a
 * folded first line); on success every span lies in the text, names are
 * trimmed, non-empty and hold no ':' CR LF, values hold no CR LF NUL, and
 * each merged value is the arrival-order join of the values of its
 * (case-insensitive) name. prv_headers_split (the fast path) answers only
 * for blocks the parser accepts, and then with the parser's fields, each
 * name once. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prv_pure.h"

static void die(const char *what) {
  fprintf(stderr, "fuzz_headers: %s\n", what);
  abort();
}

static int ows(char c) { return c == ' ' || c == '\t'; }

/* The reference: 1 when the block must be accepted. */
static int acceptable(const char *s, size_t n) {
  size_t i = 0;
  int have_field = 0;
  for (i = 0; i < n; i++) {
    if (s[i] == '\0') return 0;
    if (s[i] == '\r' && (i + 1 >= n || s[i + 1] != '\n')) return 0;
  }
  i = 0;
  while (i < n) {
    size_t e = i, len, k, name_end;
    while (e < n && s[e] != '\n') e++;
    len = e - i;
    if (len > 0 && s[i + len - 1] == '\r') len--;
    if (len > 0) {
      if (ows(s[i])) {
        if (!have_field) return 0;
      } else {
        for (k = i; k < i + len && s[k] != ':'; k++) {}
        if (k == i + len) return 0;
        name_end = k;
        while (name_end > i && ows(s[name_end - 1])) name_end--;
        if (name_end == i) return 0;
        have_field = 1;
      }
    }
    i = e + 1;
  }
  return 1;
}

static int lower_eq(const char *a, const char *b, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = (char)(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = (char)(y - 'A' + 'a');
    if (x != y) return 0;
  }
  return 1;
}

static void check_span(const prv_headers *h, prv_span sp) {
  if (sp.off > h->text_len || sp.len > h->text_len - sp.off) die("span outside the text");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  prv_headers h;
  prv_field fast[8];
  size_t pos = 0, i, j;
  const char *why = NULL;
  char *in = size ? (char *)malloc(size) : NULL;
  int rc, want, k;
  if (size && !in) return 0;
  if (size) memcpy(in, data, size);
  rc = prv_headers_parse(in, size, &h, &pos, &why);
  want = acceptable(in, size);
  k = prv_headers_split(in, size, fast, 8);
  if (k >= 0) {
    if (rc != 0) die("the fast path accepted a block the parser refuses");
    if ((size_t)k != h.nfields || h.nmerged != h.nfields) die("the fast path found other fields");
    for (i = 0; i < (size_t)k; i++) {
      const prv_field *f = &h.fields[i];
      if (fast[i].name.off > size || fast[i].name.len > size - fast[i].name.off ||
          fast[i].value.off > size || fast[i].value.len > size - fast[i].value.off)
        die("fast path span outside the input");
      if (fast[i].name.len != f->name.len || memcmp(in + fast[i].name.off, h.text + f->name.off, f->name.len) ||
          fast[i].value.len != f->value.len || memcmp(in + fast[i].value.off, h.text + f->value.off, f->value.len))
        die("the fast path's field differs from the parser's");
    }
  }
  if (rc == -2) { free(in); return 0; }
  if (rc == -1) {
    if (want) die("refused a well-formed block");
    if (!why || pos >= size) die("bad error position or reason");
    if (h.text || h.fields || h.merged || h.nfields) die("failure kept memory");
    free(in);
    return 0;
  }
  if (!want) die("accepted a malformed block");
  for (i = 0; i < h.nfields; i++) {
    const prv_field *f = &h.fields[i];
    const char *nm = h.text + f->name.off, *v = h.text + f->value.off;
    check_span(&h, f->name);
    check_span(&h, f->value);
    if (f->name.len == 0) die("empty name");
    if (ows(nm[0]) || ows(nm[f->name.len - 1])) die("name not trimmed");
    if (f->value.len && (ows(v[0]) || ows(v[f->value.len - 1]))) die("value not trimmed");
    if (memchr(nm, ':', f->name.len) || memchr(nm, '\r', f->name.len) || memchr(nm, '\n', f->name.len))
      die("separator in a name");
    if (memchr(v, '\r', f->value.len) || memchr(v, '\n', f->value.len) || memchr(v, '\0', f->value.len))
      die("CR, LF or NUL in a value");
  }
  if (h.nmerged > h.nfields) die("more merged fields than fields");
  for (i = 0; i < h.nmerged; i++) {
    const prv_field *m = &h.merged[i];
    const char *mn = h.text + m->name.off, *mv = h.text + m->value.off;
    size_t o = 0, seen = 0;
    int cookie;
    check_span(&h, m->name);
    check_span(&h, m->value);
    for (j = 0; j < m->name.len; j++)
      if (mn[j] >= 'A' && mn[j] <= 'Z') die("merged name not lower-cased");
    cookie = m->name.len == 10 && memcmp(mn, "set-cookie", 10) == 0;
    for (j = 0; j < h.nfields; j++) {
      const prv_field *f = &h.fields[j];
      if (f->name.len != m->name.len || !lower_eq(h.text + f->name.off, mn, m->name.len)) continue;
      if (seen++) {
        const char *sep = cookie ? "\n" : ", ";
        size_t sl = strlen(sep);
        if (o + sl > m->value.len || memcmp(mv + o, sep, sl) != 0) die("merged separator");
        o += sl;
      }
      if (o + f->value.len > m->value.len || memcmp(mv + o, h.text + f->value.off, f->value.len) != 0)
        die("merged value is not the join of the values");
      o += f->value.len;
    }
    if (seen == 0 || o != m->value.len) die("merged value has more than the values");
    for (j = 0; j < i; j++)
      if (h.merged[j].name.len == m->name.len && memcmp(h.text + h.merged[j].name.off, mn, m->name.len) == 0)
        die("a name merged twice");
  }
  prv_headers_free(&h);
  free(in);
  return 0;
}
