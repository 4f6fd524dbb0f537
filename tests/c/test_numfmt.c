/* prv_fmt_double (fast path + fallback) must print exactly what the
 * reference method prints (first of %.15g/%.16g/%.17g that reads back), and
 * what it prints must read back as the same double. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prv_pure.h"

static int passed, failed;
static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint64_t next(void) { /* xorshift64*: deterministic */
  rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
  return rng * 2685821657736338717ULL;
}

static double p10(int k) { /* no libm: the test links only provision_pure */
  double p = 1.0;
  while (k-- > 0) p *= 10.0;
  return p;
}

static void check(double x) {
  char a[PRV_FMT_DOUBLE_MAX + 1], b[PRV_FMT_DOUBLE_MAX + 1];
  size_t na, nb;
  if (!isfinite(x)) return;
  na = prv_fmt_double(a, x, '.');
  nb = prv_fmt_double_ref(b, x, '.', 15);
  a[na] = b[nb] = '\0';
  if (na == nb && memcmp(a, b, na) == 0 && strtod(a, NULL) == x) {
    passed++;
  } else {
    if (failed < 20) printf("FAIL %.17g: fast '%s' ref '%s'\n", x, a, b);
    failed++;
  }
}

int main(void) {
  long i;
  int k;
  static const double special[] = {0.0, -0.0, 1.0, -1.0, 0.1, 0.2, 0.3, 1.0 / 3, 2.0 / 3, 1e-4, 9.9999999999999995e-5,
    1e15, 999999999999999.0, 999999999999999.9, 1e15 - 0.5, 123456789012345.6, 0.30000000000000004,
    1e-5, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 9007199254740993.0, 4503599627370496.5,
    1234.5678, 0.000123, 100.0, 1e14, 12345678901234.5, 0.1 + 0.2, 1e21, 1e22, 1e23};
  for (i = 0; i < (long)(sizeof special / sizeof *special); i++) { check(special[i]); check(-special[i]); }
  /* random bit patterns (all magnitudes) */
  for (i = 0; i < 300000; i++) {
    uint64_t u = next();
    double x;
    memcpy(&x, &u, sizeof x);
    check(x);
  }
  /* short decimals m * 10^-k: the fast path's domain */
  for (i = 0; i < 300000; i++) {
    uint64_t m = next() % 1000000000000000ULL;
    k = (int)(next() % 20);
    m /= (uint64_t)p10((int)(next() % 15));
    check((double)m / p10(k));
    check(-(double)m / p10(k));
  }
  /* ratios and products typical of API data */
  for (i = 1; i < 100000; i++) {
    check(i / 7.0);
    check(i * 0.01);
    check(i * 1234.5678);
    check(i / 1000.0);
  }
  printf("test_numfmt: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
