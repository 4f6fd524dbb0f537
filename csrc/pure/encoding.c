/* base64 / base64url, hex, RFC 3986 percent-encoding, header value check. */
#include "prv_pure.h"

static const char B64_STD[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64_URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t prv_b64_encoded_len(size_t n, int url) {
  if (!url) return (n + 2) / 3 * 4;
  return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

size_t prv_b64_encode(const void *in, size_t n, char *out, int url) {
  const unsigned char *s = (const unsigned char *)in;
  const char *a = url ? B64_URL : B64_STD;
  size_t i = 0, o = 0;
  for (; i + 3 <= n; i += 3) {
    unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
    out[o++] = a[v >> 18];
    out[o++] = a[(v >> 12) & 63];
    out[o++] = a[(v >> 6) & 63];
    out[o++] = a[v & 63];
  }
  if (n - i == 1) {
    unsigned v = (unsigned)s[i] << 16;
    out[o++] = a[v >> 18];
    out[o++] = a[(v >> 12) & 63];
    if (!url) { out[o++] = '='; out[o++] = '='; }
  } else if (n - i == 2) {
    unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8;
    out[o++] = a[v >> 18];
    out[o++] = a[(v >> 12) & 63];
    out[o++] = a[(v >> 6) & 63];
    if (!url) out[o++] = '=';
  }
  return o;
}

size_t prv_b64_decoded_maxlen(size_t n) { return n / 4 * 3 + 3; }

static int b64_val(unsigned char c, int url) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == (url ? '-' : '+')) return 62;
  if (c == (url ? '_' : '/')) return 63;
  return -1;
}

int prv_b64_decode(const char *in, size_t n, unsigned char *out, size_t *outlen, int url,
                   size_t *errpos, const char **why) {
  size_t data = n, i, o = 0, rem;
  unsigned acc = 0;
  int bits = 0;
  /* split off the padding (at most two '=') */
  while (data > 0 && in[data - 1] == '=' && n - data < 2) data--;
  for (i = 0; i < data; i++) {
    int v = b64_val((unsigned char)in[i], url);
    if (v < 0) {
      *errpos = i;
      *why = in[i] == '=' ? "padding in the middle" : "character outside the alphabet";
      return -1;
    }
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  rem = data % 4;
  if (rem == 1) { *errpos = data - 1; *why = "truncated input"; return -1; }
  if (data != n) {
    if (n % 4 != 0) { *errpos = data; *why = "wrong padding"; return -1; }
  } else if (!url && n % 4 != 0) {
    *errpos = n; *why = "missing padding"; return -1;
  }
  /* leftover bits (2 or 4) are dropped; non-zero ones are accepted as most
   * decoders do (RFC 4648 §3.5 lets decoders choose). */
  *outlen = o;
  return 0;
}

size_t prv_hex_encode(const void *in, size_t n, char *out) {
  static const char hx[] = "0123456789abcdef";
  const unsigned char *s = (const unsigned char *)in;
  size_t i;
  for (i = 0; i < n; i++) {
    out[2 * i] = hx[s[i] >> 4];
    out[2 * i + 1] = hx[s[i] & 15];
  }
  return 2 * n;
}

static int unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~';
}

size_t prv_pct_encoded_len(const char *in, size_t n) {
  size_t i, len = 0;
  for (i = 0; i < n; i++) len += unreserved((unsigned char)in[i]) ? 1 : 3;
  return len;
}

size_t prv_pct_encode(const char *in, size_t n, char *out) {
  static const char hx[] = "0123456789ABCDEF";
  size_t i, o = 0;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)in[i];
    if (unreserved(c)) {
      out[o++] = (char)c;
    } else {
      out[o++] = '%';
      out[o++] = hx[c >> 4];
      out[o++] = hx[c & 15];
    }
  }
  return o;
}

int prv_header_value_ok(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0') return 0;
  return 1;
}
