/* libFuzzer target: base64 and base64url (csrc/pure/encoding.c).
 *
 * Properties, both alphabets: encoding writes exactly prv_b64_encoded_len
 * bytes, all from the alphabet (plus '=' padding for the standard one) and
 * decodes back to the input; decoding the input as text either fails with
 * an offset within it (or its length) or yields at most
 * prv_b64_decoded_maxlen bytes, which encode to text that decodes to the
 * same bytes. Buffers are exact-size mallocs, so ASan sees any overrun. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prv_pure.h"

static void die(const char *what) {
  fprintf(stderr, "fuzz_base64: %s\n", what);
  abort();
}

static int in_alphabet(char c, int url) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return 1;
  return url ? (c == '-' || c == '_') : (c == '+' || c == '/' || c == '=');
}

static void one(const uint8_t *data, size_t size, int url) {
  size_t elen = prv_b64_encoded_len(size, url), n, i, outlen = 0, pos = 0, max;
  const char *why = NULL;
  char *enc = (char *)malloc(elen ? elen : 1);
  unsigned char *dec;
  if (!enc) return;
  n = prv_b64_encode(data, size, enc, url);
  if (n != elen) die("encoded length differs from prv_b64_encoded_len");
  for (i = 0; i < n; i++)
    if (!in_alphabet(enc[i], url)) die("encoded byte outside the alphabet");
  max = prv_b64_decoded_maxlen(n);
  dec = (unsigned char *)malloc(max ? max : 1);
  if (!dec) { free(enc); return; }
  if (prv_b64_decode(enc, n, dec, &outlen, url, &pos, &why) != 0) die("own encoding does not decode");
  if (outlen != size || (size && memcmp(dec, data, size) != 0)) die("round trip differs");
  free(dec);
  free(enc);

  /* the input as base64 text */
  {
    char *txt = (char *)malloc(size ? size : 1);
    if (!txt) return;
    if (size) memcpy(txt, data, size);
    max = prv_b64_decoded_maxlen(size);
    dec = (unsigned char *)malloc(max ? max : 1);
    if (!dec) { free(txt); return; }
    outlen = 0;
    if (prv_b64_decode(txt, size, dec, &outlen, url, &pos, &why) != 0) {
      if (pos > size || why == NULL) die("bad error position or reason");
    } else {
      size_t e2len = prv_b64_encoded_len(outlen, url), o2 = 0;
      char *e2;
      unsigned char *d2;
      if (outlen > max) die("decoded more than prv_b64_decoded_maxlen");
      e2 = (char *)malloc(e2len ? e2len : 1);
      d2 = (unsigned char *)malloc(prv_b64_decoded_maxlen(e2len) ? prv_b64_decoded_maxlen(e2len) : 1);
      if (e2 && d2) {
        prv_b64_encode(dec, outlen, e2, url);
        if (prv_b64_decode(e2, e2len, d2, &o2, url, &pos, &why) != 0 || o2 != outlen ||
            (outlen && memcmp(d2, dec, outlen) != 0))
          die("decoded bytes do not round-trip");
      }
      free(e2);
      free(d2);
    }
    free(dec);
    free(txt);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  one(data, size, 0);
  one(data, size, 1);
  return 0;
}
