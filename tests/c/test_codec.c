/* Unit tests of the pure C codec helpers (csrc/pure/) against published
 * vectors: RFC 4648 §10 (base64, base16), FIPS 180-2 (SHA-256), RFC 4231
 * (HMAC-SHA256 cases 1-4, 6, 7), RFC 3986 §2 (percent-encoding). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prv_pure.h"

static int passed, failed;

#define CHECK(cond, ...)                                              \
  do {                                                                \
    if (cond) passed++;                                               \
    else {                                                            \
      failed++;                                                       \
      printf("FAIL %s:%d: ", __FILE__, __LINE__);                     \
      printf(__VA_ARGS__);                                            \
      printf("\n");                                                   \
    }                                                                 \
  } while (0)

static void check_str(const char *what, const char *got, size_t gotlen, const char *want) {
  CHECK(gotlen == strlen(want) && memcmp(got, want, gotlen) == 0, "%s: got '%.*s', want '%s'", what,
        (int)gotlen, got, want);
}

static void hexstr(const unsigned char *b, size_t n, char *out) {
  out[prv_hex_encode(b, n, out)] = '\0';
}

static void test_base64(void) {
  /* RFC 4648 §10 */
  static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  static const char *b64[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  static const char *b64url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
  static const char *b16[] = {"", "66", "666f", "666f6f", "666f6f62", "666f6f6261", "666f6f626172"};
  size_t i;
  for (i = 0; i < sizeof plain / sizeof *plain; i++) {
    char out[64];
    unsigned char dec[64];
    size_t n = strlen(plain[i]), len, declen = 0, pos = 0;
    const char *why = NULL;

    len = prv_b64_encode(plain[i], n, out, 0);
    CHECK(len == prv_b64_encoded_len(n, 0), "b64 length %zu", len);
    check_str("b64encode", out, len, b64[i]);
    CHECK(prv_b64_decode(b64[i], strlen(b64[i]), dec, &declen, 0, &pos, &why) == 0, "b64decode %s", b64[i]);
    check_str("b64decode", (char *)dec, declen, plain[i]);

    len = prv_b64_encode(plain[i], n, out, 1);
    CHECK(len == prv_b64_encoded_len(n, 1), "b64url length %zu", len);
    check_str("b64url_encode", out, len, b64url[i]);
    /* URL alphabet: padding optional on input */
    CHECK(prv_b64_decode(b64url[i], strlen(b64url[i]), dec, &declen, 1, &pos, &why) == 0, "b64url %s", b64url[i]);
    check_str("b64url_decode", (char *)dec, declen, plain[i]);
    CHECK(prv_b64_decode(b64[i], strlen(b64[i]), dec, &declen, 1, &pos, &why) == 0, "b64url padded %s", b64[i]);
    check_str("b64url_decode padded", (char *)dec, declen, plain[i]);

    len = prv_hex_encode(plain[i], n, out);
    check_str("base16", out, len, b16[i]);
  }
  {
    /* the two alphabets differ in 62 and 63 */
    const unsigned char b[] = {0xfb, 0xff, 0xbf};
    char out[8];
    check_str("b64 +/", out, prv_b64_encode(b, 3, out, 0), "+/+/");
    check_str("b64url -_", out, prv_b64_encode(b, 3, out, 1), "-_-_");
  }
  {
    struct { const char *in; int url; size_t pos; } bad[] = {
      {"Zg", 0, 2},        /* missing padding (standard) */
      {"Zg=", 0, 2},       /* wrong padding */
      {"Zg=", 1, 2},       /* padding present must be complete */
      {"Z===", 0, 1},      /* padding in the middle */
      {"Z", 1, 0},         /* truncated */
      {"Zm9v Zm9v", 0, 4}, /* whitespace */
      {"Zm9v\nZm9", 1, 4},
      {"Zm-v", 0, 2},      /* URL char in standard */
      {"Zm+v", 1, 2},      /* standard char in URL */
      {"Zm9v====", 0, 4},
      {"=", 1, 0},
      {"Zm9vY", 1, 4},
    };
    size_t k;
    for (k = 0; k < sizeof bad / sizeof *bad; k++) {
      unsigned char dec[32];
      size_t declen = 0, pos = 99;
      const char *why = NULL;
      int rc = prv_b64_decode(bad[k].in, strlen(bad[k].in), dec, &declen, bad[k].url, &pos, &why);
      CHECK(rc == -1 && why != NULL, "b64 decode should fail: '%s' (url=%d)", bad[k].in, bad[k].url);
      CHECK(pos == bad[k].pos, "b64 error position for '%s': got %zu want %zu", bad[k].in, pos, bad[k].pos);
    }
  }
}

static void test_sha256(void) {
  /* FIPS 180-2 appendix B and the empty message */
  struct { const char *msg; const char *md; } v[] = {
    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
  };
  size_t i;
  unsigned char md[PRV_SHA256_LEN];
  char hx[2 * PRV_SHA256_LEN + 1], err[256];
  char *million;
  for (i = 0; i < sizeof v / sizeof *v; i++) {
    CHECK(prv_sha256(v[i].msg, strlen(v[i].msg), md, err, sizeof err) == 0, "sha256: %s", err);
    hexstr(md, sizeof md, hx);
    CHECK(strcmp(hx, v[i].md) == 0, "sha256('%s') = %s", v[i].msg, hx);
  }
  million = malloc(1000000);
  if (million) {
    memset(million, 'a', 1000000);
    CHECK(prv_sha256(million, 1000000, md, err, sizeof err) == 0, "sha256: %s", err);
    hexstr(md, sizeof md, hx);
    CHECK(strcmp(hx, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0,
          "sha256(a x 10^6) = %s", hx);
    free(million);
  }
}

static void test_hmac(void) {
  /* RFC 4231 §4.2-4.5, 4.7, 4.8 (case 5 truncates the output: not used) */
  unsigned char k1[20], k3[20], d3[50], k4[25], d4[50], k6[131];
  unsigned char md[PRV_SHA256_LEN];
  char hx[2 * PRV_SHA256_LEN + 1], err[256];
  size_t i;
  struct { const unsigned char *key; size_t klen; const unsigned char *data; size_t dlen; const char *mac; } v[6];
  static const char d6[] = "Test Using Larger Than Block-Size Key - Hash Key First";
  static const char d7[] =
    "This is a test using a larger than block-size key and a larger than block-size data. "
    "The key needs to be hashed before being used by the HMAC algorithm.";
  memset(k1, 0x0b, sizeof k1);
  memset(k3, 0xaa, sizeof k3);
  memset(d3, 0xdd, sizeof d3);
  for (i = 0; i < sizeof k4; i++) k4[i] = (unsigned char)(i + 1);
  memset(d4, 0xcd, sizeof d4);
  memset(k6, 0xaa, sizeof k6);
  v[0].key = k1; v[0].klen = 20; v[0].data = (const unsigned char *)"Hi There"; v[0].dlen = 8;
  v[0].mac = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
  v[1].key = (const unsigned char *)"Jefe"; v[1].klen = 4;
  v[1].data = (const unsigned char *)"what do ya want for nothing?"; v[1].dlen = 28;
  v[1].mac = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
  v[2].key = k3; v[2].klen = 20; v[2].data = d3; v[2].dlen = 50;
  v[2].mac = "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe";
  v[3].key = k4; v[3].klen = 25; v[3].data = d4; v[3].dlen = 50;
  v[3].mac = "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b";
  v[4].key = k6; v[4].klen = 131; v[4].data = (const unsigned char *)d6; v[4].dlen = sizeof d6 - 1;
  v[4].mac = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";
  v[5].key = k6; v[5].klen = 131; v[5].data = (const unsigned char *)d7; v[5].dlen = sizeof d7 - 1;
  v[5].mac = "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2";
  for (i = 0; i < 6; i++) {
    CHECK(prv_hmac_sha256(v[i].key, v[i].klen, v[i].data, v[i].dlen, md, err, sizeof err) == 0, "hmac: %s", err);
    hexstr(md, sizeof md, hx);
    CHECK(strcmp(hx, v[i].mac) == 0, "RFC 4231 case %zu: %s", i < 4 ? i + 1 : i + 2, hx);
  }
  /* empty key and message are valid */
  CHECK(prv_hmac_sha256("", 0, "", 0, md, err, sizeof err) == 0, "hmac empty: %s", err);
  hexstr(md, sizeof md, hx);
  CHECK(strcmp(hx, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad") == 0, "hmac empty %s", hx);
}

static void test_pct(void) {
  struct { const char *in; const char *out; } v[] = {
    {"AZaz09-._~", "AZaz09-._~"},             /* §2.3 unreserved stay */
    {" ", "%20"},                              /* §2.1 */
    {"%", "%25"},
    {":/?#[]@", "%3A%2F%3F%23%5B%5D%40"},      /* §2.2 gen-delims */
    {"!$&'()*+,;=", "%21%24%26%27%28%29%2A%2B%2C%3B%3D"}, /* sub-delims */
    {"\xC3\x80", "%C3%80"},                    /* §2.5: LATIN CAPITAL A WITH GRAVE */
    {"\xE3\x82\xA2", "%E3%82%A2"},             /* §2.5: KATAKANA LETTER A */
    {"../x", "..%2Fx"},
    {"a/b", "a%2Fb"},
    {"?#%", "%3F%23%25"},
    {"", ""},
  };
  size_t i;
  char out[128];
  for (i = 0; i < sizeof v / sizeof *v; i++) {
    size_t n = strlen(v[i].in), len = prv_pct_encode(v[i].in, n, out);
    CHECK(len == prv_pct_encoded_len(v[i].in, n), "pct len");
    check_str("pct_encode", out, len, v[i].out);
  }
  {
    const char nul[3] = {'a', '\0', 'b'};
    check_str("pct NUL", out, prv_pct_encode(nul, 3, out), "a%00b");
  }
}

static void test_header_and_uuid(void) {
  char u[PRV_UUID_LEN + 1], u2[PRV_UUID_LEN + 1], err[256];
  unsigned char r[64], z[64];
  int i, ok = 1;
  CHECK(prv_header_value_ok("Bearer abc", 10) == 1, "plain header ok");
  CHECK(prv_header_value_ok("", 0) == 1, "empty header ok");
  CHECK(prv_header_value_ok("a\r\nX: y", 7) == 0, "CRLF rejected");
  CHECK(prv_header_value_ok("a\nb", 3) == 0, "LF rejected");
  CHECK(prv_header_value_ok("a\0b", 3) == 0, "NUL rejected");
  CHECK(prv_header_value_ok("tab\tok", 6) == 1, "tab allowed");

  CHECK(prv_uuid4(u, err, sizeof err) == 0, "uuid4: %s", err);
  CHECK(prv_uuid4(u2, err, sizeof err) == 0, "uuid4: %s", err);
  CHECK(strlen(u) == 36, "uuid length");
  for (i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) ok &= u[i] == '-';
    else ok &= (u[i] >= '0' && u[i] <= '9') || (u[i] >= 'a' && u[i] <= 'f');
  }
  CHECK(ok, "uuid shape %s", u);
  CHECK(u[14] == '4', "uuid version %s", u);
  CHECK(u[19] == '8' || u[19] == '9' || u[19] == 'a' || u[19] == 'b', "uuid variant %s", u);
  CHECK(strcmp(u, u2) != 0, "two uuids differ");

  memset(r, 0, sizeof r);
  memset(z, 0, sizeof z);
  CHECK(prv_random_bytes(r, sizeof r, err, sizeof err) == 0, "random: %s", err);
  CHECK(memcmp(r, z, sizeof r) != 0, "random bytes not all zero");
  CHECK(prv_random_bytes(r, 0, err, sizeof err) == 0, "random 0 bytes");
  CHECK(prv_ct_equal("abc", "abc", 3) == 1 && prv_ct_equal("abc", "abd", 3) == 0, "ct_equal");
}

static void test_openssl_error(void) {
  char buf[64];
  prv_openssl_error(buf, sizeof buf, "thing"); /* empty queue */
  CHECK(strcmp(buf, "thing: unknown error") == 0, "empty error queue: %s", buf);
  prv_openssl_error(buf, 4, "a-long-prefix");
  CHECK(strlen(buf) == 3, "truncated message stays terminated");
}

int main(void) {
  test_base64();
  test_sha256();
  test_hmac();
  test_pct();
  test_header_and_uuid();
  test_openssl_error();
  printf("test_codec: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
