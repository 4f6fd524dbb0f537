/* SHA-256, HMAC-SHA256, CSPRNG bytes and UUIDv4 on OpenSSL's libcrypto. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "prv_pure.h"

void prv_openssl_error(char *buf, size_t len, const char *what) {
  unsigned long e;
  size_t used;
  int first = 1;
  if (!buf || len == 0) {
    ERR_clear_error();
    return;
  }
  snprintf(buf, len, "%s: ", what);
  used = strlen(buf);
  while ((e = ERR_get_error()) != 0) {
    char one[256];
    ERR_error_string_n(e, one, sizeof one);
    if (used + 3 < len) {
      snprintf(buf + used, len - used, "%s%s", first ? "" : "; ", one);
      used = strlen(buf);
    }
    first = 0;
  }
  if (first) snprintf(buf + used, len - used, "unknown error");
}

int prv_sha256(const void *data, size_t n, unsigned char out[PRV_SHA256_LEN], char *err, size_t errlen) {
  unsigned int len = 0;
  ERR_clear_error();
  if (EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) != 1 || len != PRV_SHA256_LEN) {
    prv_openssl_error(err, errlen, "sha256");
    return -1;
  }
  return 0;
}

int prv_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
                    unsigned char out[PRV_SHA256_LEN], char *err, size_t errlen) {
  static const unsigned char empty[1] = {0};
  unsigned int len = 0;
  ERR_clear_error();
  if (klen > INT_MAX) {
    if (err && errlen) snprintf(err, errlen, "hmac_sha256: key too long");
    return -1;
  }
  if (!key) key = empty;
  if (!msg) msg = empty;
  if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, mlen, out, &len) ||
      len != PRV_SHA256_LEN) {
    prv_openssl_error(err, errlen, "hmac_sha256");
    return -1;
  }
  return 0;
}

int prv_random_bytes(void *buf, size_t n, char *err, size_t errlen) {
  unsigned char *p = (unsigned char *)buf;
  ERR_clear_error();
  while (n > 0) {
    int chunk = n > (size_t)INT_MAX ? INT_MAX : (int)n;
    if (RAND_bytes(p, chunk) != 1) {
      prv_openssl_error(err, errlen, "random_bytes");
      return -1;
    }
    p += chunk;
    n -= (size_t)chunk;
  }
  return 0;
}

int prv_uuid4(char out[PRV_UUID_LEN + 1], char *err, size_t errlen) {
  unsigned char b[16];
  char hx[32];
  size_t i, o = 0;
  if (prv_random_bytes(b, sizeof b, err, errlen)) return -1;
  b[6] = (unsigned char)((b[6] & 0x0F) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3F) | 0x80); /* variant 10xx */
  prv_hex_encode(b, sizeof b, hx);
  for (i = 0; i < 32; i++) {
    if (i == 8 || i == 12 || i == 16 || i == 20) out[o++] = '-';
    out[o++] = hx[i];
  }
  out[o] = '\0';
  return 0;
}

int prv_ct_equal(const void *a, const void *b, size_t n) {
  return CRYPTO_memcmp(a, b, n) == 0;
}
