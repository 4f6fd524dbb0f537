/* JSON codec of provision.core: json_decode, json_encode, core.null, core.array_mt.
 *
 * Why not lua-cjson: Debian's 2.1.0 prints numbers with 14 significant digits
 * and decodes every number as a float, so 64-bit IDs do not survive a round
 * trip, and it cannot emit [] for an empty array.
 *
 * Both directions report bad data as nil, err (never a Lua error). The
 * decoder builds Lua values directly; the encoder writes into a malloc'd
 * buffer owned by a userdata with __gc, so a memory error raised by Lua in
 * the middle of an encode cannot leak it. Tables are read with raw access
 * only (no metamethod runs). */
#include <float.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "json.h"
#include "obuf.h"
#include "prv_pure.h"

#define ARRAY_MT_KEY "provision.core.array_mt"
#define MAX_DEPTH PRV_JSON_MAX_DEPTH

/* Locale decimal point (one byte), so that strtod/snprintf can be used in a
 * host that called setlocale(LC_NUMERIC, ...). */
static char locale_dp(void) {
  const struct lconv *lc = localeconv();
  return (lc && lc->decimal_point && lc->decimal_point[0]) ? lc->decimal_point[0] : '.';
}

/* ------------------------------------------------------------------ decode */

typedef struct {
  lua_State *L;
  const char *s, *p, *end;
  int depth;
  int mt;          /* stack index of array_mt */
  char dp;         /* locale decimal point */
  const char *err; /* reason */
  const char *errp;
  char errbuf[96];
} dec_t;

static int dec_value(dec_t *d);

static int dec_fail(dec_t *d, const char *at, const char *why) {
  d->err = why;
  d->errp = at;
  return -1;
}

static int dec_unexpected(dec_t *d, const char *at, const char *expected) {
  unsigned char c = (unsigned char)*at;
  if (c >= 0x20 && c < 0x7f)
    snprintf(d->errbuf, sizeof d->errbuf, "%s, got '%c'", expected, c);
  else
    snprintf(d->errbuf, sizeof d->errbuf, "%s, got byte 0x%02X", expected, c);
  return dec_fail(d, at, d->errbuf);
}

static const char *skip_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
  return p;
}

#define IS_DIGIT(c) ((unsigned char)((c) - '0') < 10)

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Four hex digits at p (p points after "\u"). */
static int hex4(const char *p, const char *end, unsigned *out) {
  unsigned v = 0;
  int i;
  if (end - p < 4) return -1;
  for (i = 0; i < 4; i++) {
    int h = hexval((unsigned char)p[i]);
    if (h < 0) return -1;
    v = (v << 4) | (unsigned)h;
  }
  *out = v;
  return 0;
}

static size_t utf8_put(char *o, unsigned cp) {
  if (cp < 0x80) { o[0] = (char)cp; return 1; }
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | (cp >> 18));
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* What a string byte is to scan_plain: 1 plain ASCII (0x20-0x7f), 0 the end
 * of a plain run ('"', '\\', a control character), 2 the first byte of what
 * must be a multi-byte UTF-8 sequence. */
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
static const unsigned char STR_CLASS[256] = {
  R16(0), R16(0),                                     /* 0x00-0x1f */
  1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,     /* 0x20-0x2f: '"' */
  R16(1), R16(1),                                     /* 0x30-0x4f */
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,     /* 0x50-0x5f: '\\' */
  R16(1), R16(1),                                     /* 0x60-0x7f */
  R16(2), R16(2), R16(2), R16(2), R16(2), R16(2), R16(2), R16(2)   /* 0x80-0xff */
};
#undef R16

/* First byte at or after p that is not plain string content: '"', '\\', a
 * control character, the end, or a byte >= 0x80 that does not start a
 * well-formed UTF-8 sequence (a valid sequence is skipped whole). A table
 * lookup per byte, four at a time while they are plain ASCII. */
static const char *scan_plain(const char *p, const char *end) {
  const unsigned char *u = (const unsigned char *)p, *e = (const unsigned char *)end;
  while (u < e) {
    while (e - u >= 4 && (STR_CLASS[u[0]] & STR_CLASS[u[1]] & STR_CLASS[u[2]] & STR_CLASS[u[3]]) == 1) u += 4;
    if (STR_CLASS[*u] == 1) {
      u++;
    } else if (STR_CLASS[*u] == 0) {
      break;
    } else {
      size_t k = prv_utf8_seq((const char *)u, (size_t)(e - u));
      if (k == 0) break;
      u += k;
    }
  }
  return (const char *)u;
}

/* Lua 5.4.4's lua_settop over a to-be-closed slot can leave L->top pointing
 * into a freed stack when the __close call grows the stack ("lua_settop may
 * use an invalid pointer to stack", fixed in 5.4.5), and a luaL_Buffer that
 * outgrew its inline space is such a slot. So a failing decode always closes
 * its buffer with luaL_pushresult before decode_at drops the stack. */
static int str_fail(dec_t *d, luaL_Buffer *b, const char *at, const char *why) {
  luaL_pushresult(b);
  return dec_fail(d, at, why);
}

/* d->p at the opening quote; pushes the string. */
static int dec_string(dec_t *d) {
  lua_State *L = d->L;
  const char *open = d->p, *p = open + 1, *end = d->end, *start = p;
  luaL_Buffer b;

  p = scan_plain(p, end);
  if (p >= end) return dec_fail(d, open, "unterminated string");
  if ((unsigned char)*p >= 0x80) return dec_fail(d, p, "invalid UTF-8 in string");
  if (*p == '"') {
    lua_pushlstring(L, start, (size_t)(p - start));
    d->p = p + 1;
    return 0;
  }
  /* slow path: escapes */
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, start, (size_t)(p - start));
  while (p < end) {
    unsigned char c = (unsigned char)*p;
    if (c == '"') {
      luaL_pushresult(&b);
      d->p = p + 1;
      return 0;
    }
    if (c < 0x20) return str_fail(d, &b, p, "control character in string");
    if (c != '\\') {
      const char *q = scan_plain(p, end);
      if (q == p) return str_fail(d, &b, p, "invalid UTF-8 in string");
      luaL_addlstring(&b, p, (size_t)(q - p));
      p = q;
      continue;
    }
    if (p + 1 >= end) break;
    switch (p[1]) {
      case '"': luaL_addchar(&b, '"'); p += 2; break;
      case '\\': luaL_addchar(&b, '\\'); p += 2; break;
      case '/': luaL_addchar(&b, '/'); p += 2; break;
      case 'b': luaL_addchar(&b, '\b'); p += 2; break;
      case 'f': luaL_addchar(&b, '\f'); p += 2; break;
      case 'n': luaL_addchar(&b, '\n'); p += 2; break;
      case 'r': luaL_addchar(&b, '\r'); p += 2; break;
      case 't': luaL_addchar(&b, '\t'); p += 2; break;
      case 'u': {
        unsigned cp, lo;
        char u8[4];
        if (hex4(p + 2, end, &cp)) return str_fail(d, &b, p, "invalid \\u escape (need 4 hex digits)");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (end - p >= 12 && p[6] == '\\' && p[7] == 'u' && hex4(p + 8, end, &lo) == 0 &&
              lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
          } else {
            return str_fail(d, &b, p, "unpaired high surrogate in \\u escape");
          }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return str_fail(d, &b, p, "unpaired low surrogate in \\u escape");
        }
        luaL_addlstring(&b, u8, utf8_put(u8, cp));
        p += 6;
        break;
      }
      default:
        return str_fail(d, &b, p, "invalid escape in string");
    }
  }
  return str_fail(d, &b, open, "unterminated string");
}

static double dec_strtod(dec_t *d, const char *start, const char *stop) {
  size_t len = (size_t)(stop - start), i;
  char tmp[64];
  double v;
  if (d->dp == '.' && stop < d->end) {
    /* The token is validated and a byte of the buffer follows it, so strtod
     * stops exactly at stop without reading past the input (which need not
     * be NUL-terminated: JWT segments are decoded into scratch memory). */
    char *e;
    v = strtod(start, &e);
    if (e == stop) return v;
  }
  if (len < sizeof tmp) {
    for (i = 0; i < len; i++) tmp[i] = start[i] == '.' ? d->dp : start[i];
    tmp[len] = '\0';
    return strtod(tmp, NULL);
  } else {
    /* absurdly long number: copy through a Lua string */
    luaL_Buffer b;
    const char *s;
    luaL_buffinit(d->L, &b);
    for (i = 0; i < len; i++) luaL_addchar(&b, start[i] == '.' ? d->dp : start[i]);
    luaL_pushresult(&b);
    s = lua_tostring(d->L, -1);
    v = strtod(s, NULL);
    lua_pop(d->L, 1);
    return v;
  }
}

static int dec_number(dec_t *d) {
  const char *start = d->p, *p = start, *end = d->end;
  int neg = 0, isfloat = 0;
  if (*p == '-') { neg = 1; p++; }
  if (p >= end || !IS_DIGIT(*p)) return dec_fail(d, p, "invalid number: expected digit");
  if (*p == '0') {
    p++;
    if (p < end && IS_DIGIT(*p)) return dec_fail(d, start, "invalid number: leading zero");
  } else {
    while (p < end && IS_DIGIT(*p)) p++;
  }
  if (p < end && *p == '.') {
    p++;
    if (p >= end || !IS_DIGIT(*p)) return dec_fail(d, p, "invalid number: expected digit after '.'");
    while (p < end && IS_DIGIT(*p)) p++;
    isfloat = 1;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < end && (*p == '+' || *p == '-')) p++;
    if (p >= end || !IS_DIGIT(*p)) return dec_fail(d, p, "invalid number: expected digit in exponent");
    while (p < end && IS_DIGIT(*p)) p++;
    isfloat = 1;
  }
  if (!isfloat) {
    unsigned long long u = 0, limit = neg ? 9223372036854775808ULL : 9223372036854775807ULL;
    const char *q = start + neg;
    int fits = 1;
    for (; q < p; q++) {
      unsigned dg = (unsigned)(*q - '0');
      if (u > (limit - dg) / 10) { fits = 0; break; }
      u = u * 10 + dg;
    }
    if (fits) {
      long long v;
      if (!neg) v = (long long)u;
      else if (u == 9223372036854775808ULL) v = LLONG_MIN;
      else v = -(long long)u;
      prv_pushint64(d->L, v);
      d->p = p;
      return 0;
    }
  }
  {
    double v = dec_strtod(d, start, p);
    if (v > DBL_MAX || v < -DBL_MAX) return dec_fail(d, start, "number out of range");
    lua_pushnumber(d->L, (lua_Number)v);
  }
  d->p = p;
  return 0;
}

static int dec_literal(dec_t *d, const char *word, size_t n) {
  if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0) {
    /* point at the first byte that differs */
    const char *p = d->p;
    size_t i = 0;
    while (p + i < d->end && i < n && p[i] == word[i]) i++;
    if (p + i >= d->end) return dec_fail(d, d->end, "unexpected end of input");
    return dec_unexpected(d, p + i, "invalid literal");
  }
  d->p += n;
  return 0;
}

static int dec_enter(dec_t *d) {
  if (++d->depth > MAX_DEPTH) return dec_fail(d, d->p, "nesting deeper than 512 levels");
  if (!lua_checkstack(d->L, 8)) return dec_fail(d, d->p, "Lua stack overflow");
  return 0;
}

/* Arrays and objects keep their first PENDING elements (or key/value pairs)
 * on the Lua stack and create the table only then, sized for them: a table
 * grown one key at a time is rebuilt at every power of two. */
#define PENDING 32

/* Create the table for the n values (stride 1) or pairs (stride 2) above
 * base, move them in, and leave only the table above base. */
static void flush_pending(dec_t *d, int base, int n, int pairs, int more) {
  lua_State *L = d->L;
  int i, t;
  if (pairs) lua_createtable(L, 0, n + more);
  else lua_createtable(L, n + more, 0);
  t = lua_gettop(L);
  for (i = 0; i < n; i++) {
    if (pairs) {
      lua_pushvalue(L, base + 2 * i + 1);
      lua_pushvalue(L, base + 2 * i + 2);
      lua_rawset(L, t);
    } else {
      lua_pushvalue(L, base + i + 1);
      lua_rawseti(L, t, i + 1);
    }
  }
  lua_replace(L, base + 1);
  lua_settop(L, base + 1);
}

static int dec_array(dec_t *d) {
  lua_State *L = d->L;
  const char *p;
  int n = 0, base, flushed = 0;
  if (dec_enter(d)) return -1;
  if (!lua_checkstack(L, PENDING + 4)) return dec_fail(d, d->p, "Lua stack overflow");
  base = lua_gettop(L);
  p = skip_ws(d->p + 1, d->end);
  if (p < d->end && *p == ']') {
    lua_newtable(L);
    lua_pushvalue(L, d->mt);
    lua_setmetatable(L, -2);
    d->p = p + 1;
    d->depth--;
    return 0;
  }
  d->p = p;
  for (;;) {
    if (dec_value(d)) return -1;
    ++n;
    if (flushed) lua_rawseti(L, base + 1, n);
    else if (n == PENDING) {
      flush_pending(d, base, n, 0, n);
      flushed = 1;
    }
    p = skip_ws(d->p, d->end);
    if (p >= d->end) return dec_fail(d, p, "unexpected end of input in array");
    if (*p == ',') { d->p = p + 1; continue; }
    if (*p == ']') { d->p = p + 1; break; }
    return dec_unexpected(d, p, "expected ',' or ']'");
  }
  if (!flushed) flush_pending(d, base, n, 0, 0);
  lua_pushvalue(L, d->mt);
  lua_setmetatable(L, -2);
  d->depth--;
  return 0;
}

static int dec_object(dec_t *d) {
  lua_State *L = d->L;
  const char *p;
  int n = 0, base, flushed = 0;
  if (dec_enter(d)) return -1;
  if (!lua_checkstack(L, 2 * PENDING + 4)) return dec_fail(d, d->p, "Lua stack overflow");
  base = lua_gettop(L);
  p = skip_ws(d->p + 1, d->end);
  if (p < d->end && *p == '}') {
    lua_newtable(L);
    d->p = p + 1;
    d->depth--;
    return 0;
  }
  for (;;) {
    if (p >= d->end) return dec_fail(d, p, "unexpected end of input in object");
    if (*p != '"') return dec_unexpected(d, p, "expected string key");
    d->p = p;
    if (dec_string(d)) return -1;
    p = skip_ws(d->p, d->end);
    if (p >= d->end) return dec_fail(d, p, "unexpected end of input in object");
    if (*p != ':') return dec_unexpected(d, p, "expected ':'");
    d->p = p + 1;
    if (dec_value(d)) return -1;
    ++n;
    if (flushed) lua_rawset(L, base + 1);
    else if (n == PENDING) {
      flush_pending(d, base, n, 1, n);
      flushed = 1;
    }
    p = skip_ws(d->p, d->end);
    if (p >= d->end) return dec_fail(d, p, "unexpected end of input in object");
    if (*p == ',') { p = skip_ws(p + 1, d->end); continue; }
    if (*p == '}') { d->p = p + 1; break; }
    return dec_unexpected(d, p, "expected ',' or '}'");
  }
  if (!flushed) flush_pending(d, base, n, 1, 0);
  d->depth--;
  return 0;
}

static int dec_value(dec_t *d) {
  const char *p = d->p = skip_ws(d->p, d->end);
  if (p >= d->end) return dec_fail(d, p, "unexpected end of input");
  switch (*p) {
    case '{': return dec_object(d);
    case '[': return dec_array(d);
    case '"': return dec_string(d);
    case 't':
      if (dec_literal(d, "true", 4)) return -1;
      lua_pushboolean(d->L, 1);
      return 0;
    case 'f':
      if (dec_literal(d, "false", 5)) return -1;
      lua_pushboolean(d->L, 0);
      return 0;
    case 'n':
      if (dec_literal(d, "null", 4)) return -1;
      lua_pushlightuserdata(d->L, NULL);
      return 0;
    default:
      if (*p == '-' || IS_DIGIT(*p)) return dec_number(d);
      return dec_unexpected(d, p, "expected a JSON value");
  }
}

/* mt: stack index of the array metatable. Pushes value (1) or message (0). */
static int decode_at(lua_State *L, const char *s, size_t len, int mt) {
  dec_t d;
  int base = lua_gettop(L);
  char msg[160];
  memset(&d, 0, sizeof d);
  d.L = L;
  d.s = d.p = s;
  d.end = s + len;
  d.mt = mt;
  d.dp = locale_dp();
  if (!lua_checkstack(L, 24)) {
    dec_fail(&d, s, "Lua stack overflow");
  } else if (dec_value(&d) == 0) {
    const char *p = skip_ws(d.p, d.end);
    if (p == d.end) return 1;
    dec_unexpected(&d, p, "trailing characters after the JSON value");
  }
  lua_settop(L, base);
  snprintf(msg, sizeof msg, "invalid JSON at byte %lu: %s", (unsigned long)(d.errp - s) + 1, d.err);
  lua_pushstring(L, msg);
  return 0;
}

int prv_json_decode(lua_State *L, const char *s, size_t len) {
  int ok, mt;
  lua_getfield(L, LUA_REGISTRYINDEX, ARRAY_MT_KEY);
  mt = lua_gettop(L);
  ok = decode_at(L, s, len, mt);
  lua_remove(L, mt);
  return ok;
}

/* json_decode(s) -> value | nil, err */
static int l_json_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  if (decode_at(L, s, len, 2)) return 1;
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
}

/* ------------------------------------------------------------------ encode */

/* One object key while its object is written: the text it is written as (a
 * string key's bytes, anchored by the table; a number key formatted into
 * num) and, for the sorted form, its place in the snapshot of the keys. */
typedef struct {
  const char *s; /* NULL: the text is in num */
  size_t len;
  int i;
  char num[PRV_FMT_DOUBLE_MAX + 8];
} skey_t;

typedef struct {
  lua_State *L;
  prv_obuf *b;    /* the output */
  prv_obuf *keys; /* a stack of skey_t: the keys of the objects being written */
  size_t nkeys;   /* entries in use on that stack */
  int mt;         /* stack index of array_mt */
  int sort_keys;
  int depth;
  char dp;
  const char *err;
  char errbuf[128];
  const void *path[MAX_DEPTH + 1];
} enc_t;

static int enc_value(enc_t *e, int idx);

static int enc_fail(enc_t *e, const char *why) {
  e->err = why;
  return -1;
}

static int jb_reserve(enc_t *e, size_t need) {
  if (!prv_obuf_reserve(e->b, need)) return enc_fail(e, "out of memory");
  return 0;
}

static int jb_put(enc_t *e, const char *s, size_t n) {
  if (jb_reserve(e, n)) return -1;
  memcpy(e->b->p + e->b->len, s, n);
  e->b->len += n;
  return 0;
}

#define JB_LIT(e, lit) jb_put((e), (lit), sizeof(lit) - 1)

static int jb_char(enc_t *e, char c) {
  if (e->b->len == e->b->cap && jb_reserve(e, 1)) return -1;
  e->b->p[e->b->len++] = c;
  return 0;
}

static int enc_string(enc_t *e, const char *s, size_t len) {
  static const char hexd[] = "0123456789abcdef";
  const char *start = s, *end = s + len, *run;
  /* worst case 6 bytes per input byte; reserve for the common case only */
  if (jb_reserve(e, len + 2)) return -1;
  e->b->p[e->b->len++] = '"';
  while (s < end) {
    char esc[6];
    size_t elen = 2;
    unsigned char c;
    run = s;
    s = scan_plain(s, end);
    if (s > run && jb_put(e, run, (size_t)(s - run))) return -1;
    if (s >= end) break;
    c = (unsigned char)*s++;
    if (c >= 0x80) {
      snprintf(e->errbuf, sizeof e->errbuf, "cannot encode a string that is not valid UTF-8 (byte %lu)",
               (unsigned long)(s - start));
      return enc_fail(e, e->errbuf);
    }
    esc[0] = '\\';
    switch (c) {
      case '"': esc[1] = '"'; break;
      case '\\': esc[1] = '\\'; break;
      case '\b': esc[1] = 'b'; break;
      case '\f': esc[1] = 'f'; break;
      case '\n': esc[1] = 'n'; break;
      case '\r': esc[1] = 'r'; break;
      case '\t': esc[1] = 't'; break;
      default:
        esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
        esc[4] = hexd[c >> 4]; esc[5] = hexd[c & 15];
        elen = 6;
    }
    if (jb_put(e, esc, elen)) return -1;
  }
  return jb_char(e, '"');
}

static size_t fmt_int(char *out, long long v) {
  char tmp[24];
  size_t n = 0, i = 0;
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  do { tmp[n++] = (char)('0' + (u % 10)); u /= 10; } while (u);
  if (v < 0) out[i++] = '-';
  while (n) out[i++] = tmp[--n];
  return i;
}

/* Number at idx formatted into out (at least PRV_FMT_DOUBLE_MAX bytes); -1
 * for NaN/Inf. */
static int fmt_number(enc_t *e, int idx, char *out, size_t *len) {
  long long iv;
  double x;
  if (prv_isinteger(e->L, idx, &iv)) {
    *len = fmt_int(out, iv);
    return 0;
  }
  x = (double)lua_tonumber(e->L, idx);
  if (x != x || x > DBL_MAX || x < -DBL_MAX) return enc_fail(e, "cannot encode NaN or infinity");
  if (x == 0 && signbit(x)) { /* "-0" would read back as the integer 0 */
    memcpy(out, "-0.0", 4);
    *len = 4;
    return 0;
  }
  *len = prv_fmt_double(out, x, e->dp); /* shortest round trip, csrc/pure/numfmt.c */
  return 0;
}

static int bad_key(enc_t *e, int kidx) {
  snprintf(e->errbuf, sizeof e->errbuf, "cannot encode an object key of type %s",
           lua_typename(e->L, lua_type(e->L, kidx)));
  return enc_fail(e, e->errbuf);
}

static int enc_key(enc_t *e, int kidx) {
  size_t len;
  const char *s;
  char num[PRV_FMT_DOUBLE_MAX + 8];
  switch (lua_type(e->L, kidx)) {
    case LUA_TSTRING:
      s = lua_tolstring(e->L, kidx, &len);
      return enc_string(e, s, len);
    case LUA_TNUMBER:
      if (fmt_number(e, kidx, num, &len)) return -1;
      return enc_string(e, num, len);
    default:
      return bad_key(e, kidx);
  }
}

#define SKEY_TEXT(k) ((k)->s ? (k)->s : (k)->num)

static int skey_cmp(const void *a, const void *b) {
  const skey_t *x = (const skey_t *)a, *y = (const skey_t *)b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(SKEY_TEXT(x), SKEY_TEXT(y), n);
  if (c) return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

/* Push the keys of the table at idx (n of them) onto the key stack, as the
 * text each is written as, in next() order; then sort them and refuse two
 * keys written alike (the number 1 and the string "1"). No Lua allocation
 * happens while the table is traversed. If snap is non-zero it is a table
 * with room for n keys: key i goes to snap[i]. Returns the stack index of
 * the first key, or (size_t)-1 on failure. */
static size_t collect_keys(enc_t *e, int idx, int n, int snap) {
  lua_State *L = e->L;
  size_t base = e->nkeys, i = 0, j;
  skey_t *k;
  if ((size_t)n > (SIZE_MAX - e->keys->len) / sizeof(skey_t) ||
      !prv_obuf_reserve(e->keys, (size_t)n * sizeof(skey_t))) {
    enc_fail(e, "out of memory");
    return (size_t)-1;
  }
  k = (skey_t *)(void *)e->keys->p + base;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (i >= (size_t)n) { /* cannot happen: no Lua code runs during the traversal */
      lua_pop(L, 1);
      enc_fail(e, "table changed while being encoded");
      return (size_t)-1;
    }
    if (lua_type(L, -1) == LUA_TSTRING) {
      k[i].s = lua_tolstring(L, -1, &k[i].len);
    } else if (lua_type(L, -1) == LUA_TNUMBER) {
      k[i].s = NULL;
      if (fmt_number(e, lua_gettop(L), k[i].num, &k[i].len)) { lua_pop(L, 1); return (size_t)-1; }
    } else {
      bad_key(e, lua_gettop(L));
      lua_pop(L, 1);
      return (size_t)-1;
    }
    k[i].i = (int)i + 1;
    if (snap) {
      lua_pushvalue(L, -1);
      lua_rawseti(L, snap, (int)i + 1); /* pre-sized: no allocation */
    }
    i++;
  }
  qsort(k, i, sizeof *k, skey_cmp);
  for (j = 1; j < i; j++) {
    if (skey_cmp(&k[j - 1], &k[j]) == 0) {
      /* only a number's text can be shared by two keys: safe to show */
      snprintf(e->errbuf, sizeof e->errbuf, "cannot encode an object with two keys written as \"%.*s\" (a number and a string)",
               (int)(k[j].len < 40 ? k[j].len : 40), SKEY_TEXT(&k[j]));
      enc_fail(e, e->errbuf);
      return (size_t)-1;
    }
  }
  e->keys->len += i * sizeof *k;
  e->nkeys += i;
  return base;
}

static void pop_keys(enc_t *e, size_t base) {
  e->keys->len = base * sizeof(skey_t);
  e->nkeys = base;
}

/* sort_keys: the keys are copied into a snapshot table first (allocated
 * before the traversal), so writing the values, which may allocate and run
 * finalizers, never continues a next() traversal. */
static int count_keys(lua_State *L, int idx) {
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    n++;
  }
  return n;
}

static int enc_object_sorted(enc_t *e, int idx, int nkeys) {
  lua_State *L = e->L;
  size_t base, j, n;
  int snap, tries = 0, now;
  /* Allocating the snapshot may run a finalizer that adds keys: count again
   * after it (counting allocates nothing) and make a bigger one if needed. */
  for (;;) {
    lua_createtable(L, nkeys, 0);
    now = count_keys(L, idx);
    if (now <= nkeys) break;
    lua_pop(L, 1);
    if (++tries == 8) return enc_fail(e, "table changed while being encoded");
    nkeys = now;
  }
  snap = lua_gettop(L);
  base = collect_keys(e, idx, now, snap);
  if (base == (size_t)-1) return -1;
  n = e->nkeys - base;
  for (j = 0; j < n; j++) {
    skey_t *k = (skey_t *)(void *)e->keys->p + base + j; /* the stack may move: re-read */
    if (j && jb_char(e, ',')) return -1;
    if (enc_string(e, SKEY_TEXT(k), k->len) || jb_char(e, ':')) return -1;
    lua_rawgeti(L, snap, k->i);
    lua_rawget(L, idx);
    if (enc_value(e, lua_gettop(L))) return -1;
    lua_pop(L, 1);
  }
  pop_keys(e, base);
  lua_pop(L, 1);
  return 0;
}

static int enc_table(enc_t *e, int idx) {
  lua_State *L = e->L;
  const void *ptr = lua_topointer(L, idx);
  int i, isarr = 0, n = 0, nnum = 0;
  for (i = 0; i < e->depth; i++)
    if (e->path[i] == ptr) return enc_fail(e, "cannot encode a table with a cycle");
  if (e->depth >= MAX_DEPTH) return enc_fail(e, "nesting deeper than 512 levels");
  if (!lua_checkstack(L, 8)) return enc_fail(e, "Lua stack overflow");
  e->path[e->depth++] = ptr;

  if (lua_getmetatable(L, idx)) {
    isarr = lua_rawequal(L, -1, e->mt);
    lua_pop(L, 1);
  }
  if (isarr) {
    n = (int)prv_rawlen(L, idx);
  } else {
    /* keys exactly 1..n with n >= 1 -> array */
    long long k, max = 0;
    int ok = 1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      lua_pop(L, 1);
      if (lua_type(L, -1) == LUA_TNUMBER) {
        nnum++;
        if (ok && prv_isinteger(L, -1, &k) && k >= 1) {
          if (k > max) max = k;
        } else {
          ok = 0;
        }
      } else {
        ok = 0;
      }
      n++;
    }
    isarr = ok && n > 0 && max == n;
  }

  if (isarr) {
    if (jb_char(e, '[')) return -1;
    for (i = 1; i <= n; i++) {
      if (i > 1 && jb_char(e, ',')) return -1;
      lua_rawgeti(L, idx, i);
      if (enc_value(e, lua_gettop(L))) return -1;
      lua_pop(L, 1);
    }
    if (jb_char(e, ']')) return -1;
  } else {
    if (jb_char(e, '{')) return -1;
    if (e->sort_keys && n > 1) {
      if (enc_object_sorted(e, idx, n)) return -1;
    } else {
      int first = 1;
      if (nnum > 0 && nnum < n) {
        /* number and other keys: refuse two written alike ({[1]=, ["1"]=}) */
        size_t base = collect_keys(e, idx, n, 0);
        if (base == (size_t)-1) return -1;
        pop_keys(e, base);
      }
      /* nothing below allocates from Lua (unsorted), so next() is safe */
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        int top = lua_gettop(L);
        if (!first && jb_char(e, ',')) return -1;
        first = 0;
        if (enc_key(e, top - 1) || jb_char(e, ':') || enc_value(e, top)) return -1;
        lua_pop(L, 1);
      }
    }
    if (jb_char(e, '}')) return -1;
  }
  e->depth--;
  return 0;
}

static int enc_value(enc_t *e, int idx) {
  lua_State *L = e->L;
  size_t len;
  const char *s;
  char num[PRV_FMT_DOUBLE_MAX + 8];
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      return JB_LIT(e, "null");
    case LUA_TBOOLEAN:
      return lua_toboolean(L, idx) ? JB_LIT(e, "true") : JB_LIT(e, "false");
    case LUA_TNUMBER:
      if (fmt_number(e, idx, num, &len)) return -1;
      return jb_put(e, num, len);
    case LUA_TSTRING:
      s = lua_tolstring(L, idx, &len);
      return enc_string(e, s, len);
    case LUA_TTABLE:
      return enc_table(e, idx);
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL) return JB_LIT(e, "null");
      return enc_fail(e, "cannot encode a light userdata other than core.null");
    default:
      snprintf(e->errbuf, sizeof e->errbuf, "cannot encode a value of type %s",
               lua_typename(L, lua_type(L, idx)));
      return enc_fail(e, e->errbuf);
  }
}

/* json_encode(v [, {sort_keys = true}]) -> string | nil, err */
static int l_json_encode(lua_State *L) {
  enc_t *e;
  prv_obuf *b, *keys;
  int sort = 0;
  luaL_checkany(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "sort_keys");
    sort = lua_toboolean(L, -1);
  }
  lua_settop(L, 1);
  b = prv_obuf_push(L);                  /* 2: the output buffer */
  keys = prv_obuf_push(L);               /* 3: the key stack */
  lua_pushvalue(L, lua_upvalueindex(1)); /* 4: array_mt */
  e = (enc_t *)prv_newuserdata(L, sizeof *e); /* 5: encoder state (4 KiB path) */
  e->L = L;
  e->b = b;
  e->keys = keys;
  e->nkeys = 0;
  e->mt = 4;
  e->sort_keys = sort;
  e->depth = 0;
  e->dp = locale_dp();
  e->err = NULL;
  if (enc_value(e, 1) == 0) {
    prv_obuf_free(keys);
    lua_pushlstring(L, b->p ? b->p : "", b->len);
    prv_obuf_free(b);
    return 1;
  }
  lua_settop(L, 5);
  prv_obuf_free(b);
  prv_obuf_free(keys);
  lua_pushnil(L);
  lua_pushstring(L, e->err ? e->err : "cannot encode");
  return 2;
}

/* ---------------------------------------------------------------- register */

void prv_open_json(lua_State *L) {
  int mod = lua_gettop(L), amt;
  lua_getfield(L, LUA_REGISTRYINDEX, ARRAY_MT_KEY);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushliteral(L, "provision.array");
    lua_setfield(L, -2, "__name");
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, ARRAY_MT_KEY);
  }
  amt = lua_gettop(L);

  lua_pushvalue(L, amt);
  lua_pushcclosure(L, l_json_decode, 1);
  lua_setfield(L, mod, "json_decode");

  lua_pushvalue(L, amt);
  lua_pushcclosure(L, l_json_encode, 1);
  lua_setfield(L, mod, "json_encode");

  lua_pushvalue(L, amt);
  lua_setfield(L, mod, "array_mt");
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, mod, "null");
  lua_settop(L, mod);
}
