/* Pure C helpers of provision.core: no Lua, testable on their own.
 * Linked into the Lua module and into the C unit tests (tests/c/). None of
 * them aborts, exits or keeps state; OpenSSL failures are reported as a
 * message (the error queue drained into it) and a -1 return. */
#ifndef PROVISION_PURE_H
#define PROVISION_PURE_H
#include <stddef.h>

const char *prv_pure_version(void);

/* ---- base64 (RFC 4648 §4 standard, §5 URL alphabet) -------------------- */

/* Length of the encoding of n bytes: padded for the standard alphabet,
 * unpadded for the URL alphabet. */
size_t prv_b64_encoded_len(size_t n, int url);
/* Writes prv_b64_encoded_len(n, url) chars to out (no NUL); returns that. */
size_t prv_b64_encode(const void *in, size_t n, char *out, int url);
/* Upper bound of the decoded size of n chars. */
size_t prv_b64_decoded_maxlen(size_t n);
/* Decode n chars. Standard alphabet: length a multiple of 4, '=' padding
 * required. URL alphabet: padding optional (if present it must be right).
 * No whitespace. Returns 0 and sets *outlen, or -1 and sets *errpos (0-based
 * offset of the offending char, n when the input is too short) and *why. */
int prv_b64_decode(const char *in, size_t n, unsigned char *out, size_t *outlen, int url,
                   size_t *errpos, const char **why);

/* ---- hex, percent-encoding, header check ------------------------------ */

/* 2n lower-case hex digits to out (no NUL); returns 2n. */
size_t prv_hex_encode(const void *in, size_t n, char *out);
/* RFC 3986: every byte but unreserved ALPHA DIGIT "-" "." "_" "~" becomes
 * %XX (upper-case hex). out needs 3n bytes; returns the length written. */
size_t prv_pct_encode(const char *in, size_t n, char *out);
/* Length prv_pct_encode would write. */
size_t prv_pct_encoded_len(const char *in, size_t n);
/* 1 if s[0..n) holds no CR, LF or NUL, else 0. */
int prv_header_value_ok(const char *s, size_t n);

/* ---- UTF-8 (RFC 3629) -------------------------------------------------- */

/* Length (1..4) of the well-formed UTF-8 sequence at s (avail bytes left),
 * or 0 when it is not one: a stray continuation byte, an overlong form, a
 * surrogate (U+D800..U+DFFF), a code point above U+10FFFF, or a truncated
 * sequence. */
size_t prv_utf8_seq(const char *s, size_t avail);
/* Offset of the first byte of s[0..n) that does not start a well-formed
 * sequence; n when all of it is valid UTF-8. */
size_t prv_utf8_check(const char *s, size_t n);

/* ---- response headers ------------------------------------------------- */

typedef struct { size_t off, len; } prv_span; /* into prv_headers.text */
typedef struct { prv_span name, value; } prv_field;

typedef struct {
  char *text;          /* every name and value of the fields points into it */
  size_t text_len;
  prv_field *fields;   /* arrival order; names as received, values trimmed */
  size_t nfields;
  prv_field *merged;   /* one per distinct name: lower-cased, values joined */
  size_t nmerged;
} prv_headers;

/* Parse a block of header lines (no status line): each line ends with LF or
 * CRLF (the last may end without), blank lines are skipped. Names and
 * values lose surrounding spaces and tabs; a line starting with a space or
 * tab continues the previous value (obsolete folding), joined with one
 * space. In `merged`, repeated names (compared case-insensitively) have
 * their values joined in arrival order with ", " ("\n" for set-cookie),
 * ordered by name. Returns 0; -1 for a malformed block (a CR not followed by
 * LF, a NUL, a line without a colon or with an empty name, a folded first
 * line), with *errpos the 0-based offset of the line or byte and *why the
 * reason; -2 when out of memory. h owns malloc'd memory only on success
 * (free it with prv_headers_free); in may be NULL when n is 0. */
int prv_headers_parse(const char *in, size_t n, prv_headers *h, size_t *errpos, const char **why);
void prv_headers_free(prv_headers *h);

/* prv_headers_parse's fast path for the usual block: at most `max` fields,
 * no folded line, no name given twice (compared case-insensitively). Fills
 * out[] with spans into `in` (names as received, values trimmed, in
 * arrival order) and returns their number: then prv_headers_parse would
 * give the same fields, each its own merged field. Returns -1 for any other
 * block, well-formed or not (prv_headers_parse then says which). No
 * allocation. */
int prv_headers_split(const char *in, size_t n, prv_field *out, size_t max);
/* ASCII case-insensitive equality of a[0..n) and b[0..n) (only A-Z fold,
 * as header names and the headers map's keys do): 1 or 0. */
int prv_same_name(const char *a, const char *b, size_t n);

/* ---- numbers ------------------------------------------------------------ */

#define PRV_FMT_DOUBLE_MAX 32
/* Finite x as the shortest of %.15g/%.16g/%.17g that reads back as x, with
 * '.' as decimal point (dp: the locale's, which snprintf/strtod use). out
 * needs PRV_FMT_DOUBLE_MAX bytes; no NUL is guaranteed; returns the length. */
size_t prv_fmt_double(char *out, double x, char dp);
/* The reference method (snprintf/strtod from precision `from`), for tests. */
size_t prv_fmt_double_ref(char *out, double x, char dp, int from);

/* ---- OpenSSL ------------------------------------------------------------ */

#define PRV_SHA256_LEN 32
#define PRV_UUID_LEN 36

/* All return 0, or -1 with a message in err (what failed: OpenSSL's reasons). */
int prv_sha256(const void *data, size_t n, unsigned char out[PRV_SHA256_LEN], char *err, size_t errlen);
int prv_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
                    unsigned char out[PRV_SHA256_LEN], char *err, size_t errlen);
int prv_random_bytes(void *buf, size_t n, char *err, size_t errlen);
/* RFC 4122 version 4: 36 chars plus NUL. */
int prv_uuid4(char out[PRV_UUID_LEN + 1], char *err, size_t errlen);
/* Constant-time comparison: 1 when equal. */
int prv_ct_equal(const void *a, const void *b, size_t n);
/* Drain OpenSSL's error queue into buf as "what: reason; reason" (always
 * NUL-terminated; "what: unknown error" when the queue is empty). */
void prv_openssl_error(char *buf, size_t len, const char *what);

#endif
