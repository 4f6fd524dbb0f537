/* Response header block parsing (prv_headers_parse, csrc/pure/prv_pure.h):
 * lines to (name, value) fields, obsolete line folding joined, repeated
 * names merged; a bare CR or a NUL anywhere refuses the block. Linear in
 * the size of the block but for one sort of the fields by name. */
#include <stdlib.h>
#include <string.h>

#include "prv_pure.h"

typedef struct {
  const char *lname; /* lower-cased name, in h->text */
  size_t llen;
  size_t pos; /* index into h->fields */
} byname_t;

static int byname_cmp(const void *a, const void *b) {
  const byname_t *x = (const byname_t *)a, *y = (const byname_t *)b;
  size_t n = x->llen < y->llen ? x->llen : y->llen;
  int c = memcmp(x->lname, y->lname, n);
  if (c) return c;
  if (x->llen != y->llen) return x->llen < y->llen ? -1 : 1;
  return x->pos < y->pos ? -1 : x->pos > y->pos; /* arrival order within a name */
}

static int is_ows(char c) { return c == ' ' || c == '\t'; }

void prv_headers_free(prv_headers *h) {
  free(h->text);
  free(h->fields); /* merged (and the sort's scratch) share this block */
  memset(h, 0, sizeof *h);
}

/* The few fields of a usual response sort faster by insertion than through
 * qsort's calls; both give the same order (byname_cmp is a total order). */
static void sort_byname(byname_t *a, size_t n) {
  size_t i, j;
  if (n > 16) {
    qsort(a, n, sizeof *a, byname_cmp);
    return;
  }
  for (i = 1; i < n; i++) {
    byname_t x = a[i];
    for (j = i; j > 0 && byname_cmp(&a[j - 1], &x) > 0; j--) a[j] = a[j - 1];
    a[j] = x;
  }
}

static int fail(prv_headers *h, size_t at, const char *reason, size_t *errpos, const char **why) {
  prv_headers_free(h);
  *errpos = at;
  *why = reason;
  return -1;
}

int prv_headers_parse(const char *in, size_t n, prv_headers *h, size_t *errpos, const char **why) {
  size_t lines = 1, i, o = 0, nf = 0, nm = 0, cap;
  byname_t *order = NULL;
  memset(h, 0, sizeof *h);
  *errpos = 0;
  *why = NULL;
  if (n == 0) return 0; /* in may be NULL */
  for (i = 0; i < n; i++) {
    if (in[i] == '\n') lines++;
    else if (in[i] == '\0') return fail(h, i, "NUL in a header line", errpos, why);
    else if (in[i] == '\r' && (i + 1 >= n || in[i + 1] != '\n'))
      return fail(h, i, "bare CR in a header line", errpos, why);
  }
  /* text: names and values (<= n), lower-cased names (<= n), merged values
   * (<= n + 2 bytes of separator per field) */
  if (n > ((size_t)-1 - 16) / 4 || lines > ((size_t)-1) / (2 * sizeof(prv_field) + sizeof(byname_t))) return -2;
  cap = 3 * n + 2 * lines + 16;
  h->text = (char *)malloc(cap);
  /* one block: fields, merged, then the sort's scratch */
  h->fields = (prv_field *)malloc(lines * (2 * sizeof(prv_field) + sizeof(byname_t)));
  if (!h->text || !h->fields) {
    prv_headers_free(h);
    return -2;
  }
  h->merged = h->fields + lines;
  order = (byname_t *)(void *)(h->merged + lines);

  /* 1. lines to fields */
  i = 0;
  while (i < n) {
    const char *p = in + i, *eol = (const char *)memchr(p, '\n', n - i);
    size_t len = eol ? (size_t)(eol - p) : n - i, next = i + len + (eol ? 1 : 0);
    size_t s, e;
    if (len > 0 && p[len - 1] == '\r') len--;
    if (len == 0) { i = next; continue; } /* blank line */
    if (is_ows(p[0])) {                   /* obsolete folding: continues the last value */
      prv_field *last;
      if (nf == 0) { return fail(h, i, "folded line before any header", errpos, why); }
      last = &h->fields[nf - 1];
      s = 0; e = len;
      while (s < e && is_ows(p[s])) s++;
      while (e > s && is_ows(p[e - 1])) e--;
      if (e > s) {
        /* the last value is the last thing written: extend it in place */
        if (last->value.len > 0) { h->text[o++] = ' '; last->value.len++; }
        memcpy(h->text + o, p + s, e - s);
        o += e - s;
        last->value.len += e - s;
      }
      i = next;
      continue;
    }
    {
      const char *colon = (const char *)memchr(p, ':', len);
      prv_field *f = &h->fields[nf];
      if (colon == NULL) { return fail(h, i, "header line without a colon", errpos, why); }
      s = 0; e = (size_t)(colon - p);
      while (s < e && is_ows(p[s])) s++;
      while (e > s && is_ows(p[e - 1])) e--;
      if (e == s) { return fail(h, i, "header line with an empty name", errpos, why); }
      f->name.off = o;
      f->name.len = e - s;
      memcpy(h->text + o, p + s, e - s);
      o += e - s;
      s = (size_t)(colon - p) + 1; e = len;
      while (s < e && is_ows(p[s])) s++;
      while (e > s && is_ows(p[e - 1])) e--;
      f->value.off = o;
      f->value.len = e - s;
      memcpy(h->text + o, p + s, e - s);
      o += e - s;
      nf++;
    }
    i = next;
  }
  h->nfields = nf;

  /* 2. lower-cased names, sorted (stable within a name) */
  for (i = 0; i < nf; i++) {
    const prv_field *f = &h->fields[i];
    size_t k;
    order[i].lname = h->text + o;
    order[i].llen = f->name.len;
    order[i].pos = i;
    for (k = 0; k < f->name.len; k++) {
      char c = h->text[f->name.off + k];
      h->text[o++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
  }
  sort_byname(order, nf);

  /* 3. one merged field per name: values joined in arrival order */
  i = 0;
  while (i < nf) {
    size_t j = i, k;
    prv_field *m = &h->merged[nm++];
    int cookie = order[i].llen == 10 && memcmp(order[i].lname, "set-cookie", 10) == 0;
    m->name.off = (size_t)(order[i].lname - h->text);
    m->name.len = order[i].llen;
    while (j < nf && order[j].llen == order[i].llen && memcmp(order[j].lname, order[i].lname, order[i].llen) == 0) j++;
    if (j == i + 1) {
      m->value = h->fields[order[i].pos].value; /* alone: share the text */
    } else {
      m->value.off = o;
      for (k = i; k < j; k++) {
        const prv_field *f = &h->fields[order[k].pos];
        if (k > i) {
          if (cookie) h->text[o++] = '\n';
          else { h->text[o++] = ','; h->text[o++] = ' '; }
        }
        memcpy(h->text + o, h->text + f->value.off, f->value.len);
        o += f->value.len;
      }
      m->value.len = o - m->value.off;
    }
    i = j;
  }
  h->nmerged = nm;
  h->text_len = o;
  return 0;
}

int prv_same_name(const char *a, const char *b, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = (char)(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = (char)(y - 'A' + 'a');
    if (x != y) return 0;
  }
  return 1;
}

int prv_headers_split(const char *in, size_t n, prv_field *out, size_t max) {
  size_t i = 0, k = 0, j;
  while (i < n) {
    const char *p = in + i, *eol = (const char *)memchr(p, '\n', n - i), *colon;
    size_t len = eol ? (size_t)(eol - p) : n - i, next = i + len + (eol ? 1 : 0);
    size_t s, e;
    if (eol && len > 0 && p[len - 1] == '\r') len--;  /* a CR ends a line only before its LF */
    if (len == 0) { i = next; continue; }
    if (is_ows(p[0]) || k == max) return -1;
    if (memchr(p, '\r', len) || memchr(p, '\0', len)) return -1;
    colon = (const char *)memchr(p, ':', len);
    if (colon == NULL) return -1;
    s = 0; e = (size_t)(colon - p);
    while (e > s && is_ows(p[e - 1])) e--;
    if (e == s) return -1;
    out[k].name.off = i;
    out[k].name.len = e;
    for (j = 0; j < k; j++)
      if (out[j].name.len == e && prv_same_name(in + out[j].name.off, p, e)) return -1;
    s = (size_t)(colon - p) + 1; e = len;
    while (s < e && is_ows(p[s])) s++;
    while (e > s && is_ows(p[e - 1])) e--;
    out[k].value.off = i + s;
    out[k].value.len = e - s;
    k++;
    i = next;
  }
  return (int)k;
}
