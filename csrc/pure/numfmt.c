/* Shortest round-trip formatting of doubles for the JSON encoder.
 *
 * The result is always what the reference method prints: the first of
 * %.15g, %.16g, %.17g that reads back as x (with '.' whatever the locale).
 * snprintf+strtod costs ~0.3 us a try, so a fast path handles the common
 * case of a value in [1e-4, 1e15) with at most 15 significant digits: find
 * the smallest k with m = round(x * 10^k) and m / 10^k == x. Both m (< 2^53)
 * and 10^k (k <= 19 < 23) are exact doubles and IEEE division rounds
 * correctly, so the decimal m * 10^-k reads back as x; at most one decimal
 * of <= 15 significant digits lies within half an ulp of x, so it is the one
 * %.15g prints, and %.15g uses fixed notation in that range. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prv_pure.h"

static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,
                               1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19};

static size_t put_u64(char *out, unsigned long long u) {
  char tmp[24];
  size_t n = 0, i = 0;
  do { tmp[n++] = (char)('0' + (u % 10)); u /= 10; } while (u);
  while (n) out[i++] = tmp[--n];
  return i;
}

size_t prv_fmt_double_ref(char *out, double x, char dp, int from) {
  int prec, n = 0;
  size_t i;
  for (prec = from; prec <= 17; prec++) {
    n = snprintf(out, PRV_FMT_DOUBLE_MAX, "%.*g", prec, x);
    if (prec == 17 || strtod(out, NULL) == x) break;
  }
  if (n < 0) n = 0;
  if (dp != '.')
    for (i = 0; i < (size_t)n; i++)
      if (out[i] == dp) out[i] = '.';
  return (size_t)n;
}

size_t prv_fmt_double(char *out, double x, char dp) {
  double ax = x < 0 ? -x : x;
  if (ax >= 1e-4 && ax < 1e15) {
    int k;
    for (k = 0; k < (int)(sizeof POW10 / sizeof *POW10); k++) {
      double scaled = ax * POW10[k], m;
      if (scaled >= 1e15) break; /* more than 15 significant digits */
      m = (double)(unsigned long long)(scaled + 0.5);
      if (m / POW10[k] == ax) {
        char digits[24];
        unsigned long long u = (unsigned long long)m;
        size_t len = put_u64(digits, u), o = 0;
        if (x < 0) out[o++] = '-';
        if (k == 0) {
          memcpy(out + o, digits, len);
          return o + len;
        }
        if (len > (size_t)k) {
          memcpy(out + o, digits, len - (size_t)k);
          o += len - (size_t)k;
          out[o++] = '.';
          memcpy(out + o, digits + len - (size_t)k, (size_t)k);
          return o + (size_t)k;
        }
        out[o++] = '0';
        out[o++] = '.';
        memset(out + o, '0', (size_t)k - len);
        o += (size_t)k - len;
        memcpy(out + o, digits, len);
        return o + len;
      }
    }
    /* no decimal of <= 15 significant digits reads back as x */
    return prv_fmt_double_ref(out, x, dp, 16);
  }
  return prv_fmt_double_ref(out, x, dp, 15);
}
