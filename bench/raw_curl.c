/* raw_curl.c: the ceiling for bench/http_bench.lua. Plain libcurl in C
 * against the same nginx, in the same run: what a client costs when it does
 * nothing but move the bytes.
 *
 *   raw_curl seq   URL N [HEADER...]     one reused easy handle, curl_easy_perform
 *                                        N times (keep-alive)
 *   raw_curl multi URL N K [HEADER...]   one multi handle, K easy handles kept in
 *                                        flight (each re-added as it ends) until
 *                                        N transfers are done
 *   raw_curl json  URL N [HEADER...]     as seq, and cJSON_Parse of every body
 *                                        (needs -DHAVE_CJSON and -lcjson)
 *
 * Every body is collected into a buffer (as any real client must); response
 * headers are left to libcurl (not copied). 200 warm-up transfers run first
 * (connections opened), then the timed part; the program prints one line
 *   n=N wall=SECONDS cpu=SECONDS
 * with cpu from getrusage (user + system) over the timed part only. A
 * status other than 200 or a transfer error exits 1 with a message.
 *
 * Built by the bench itself: cc -O2 bench/raw_curl.c -lcurl [-DHAVE_CJSON -lcjson].
 */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#ifdef HAVE_CJSON
#include <cjson/cJSON.h>
#endif

#include "body_buf.h"

#define WARM 200
#define MAX_K 1024

static double wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_now(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         (double)ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what, const char *detail) {
  fprintf(stderr, "raw_curl: %s: %s\n", what, detail);
  exit(1);
}

static CURL *new_easy(const char *url, struct curl_slist *headers, Buf *body) {
  CURL *e = curl_easy_init();
  if (e == NULL) die("curl_easy_init", "failed");
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)body);
  curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)body);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  return e;
}

static void check_status(CURL *e, CURLcode rc) {
  long status = 0;
  if (rc != CURLE_OK) die("transfer", curl_easy_strerror(rc));
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    char s[32];
    snprintf(s, sizeof s, "%ld", status);
    die("unexpected status", s);
  }
}

static long g_parsed;

static void use_body(const Buf *b, int decode) {
#ifdef HAVE_CJSON
  if (decode) {
    cJSON *doc = cJSON_ParseWithLength(b->p, b->len);
    if (doc == NULL) die("cJSON_Parse", "invalid JSON");
    g_parsed++;
    cJSON_Delete(doc);
  }
#else
  (void)b;
  if (decode) die("json", "built without cJSON");
#endif
}

static void run_seq(const char *url, long n, struct curl_slist *headers, int decode) {
  Buf body = { NULL, 0, 0 };
  CURL *e = new_easy(url, headers, &body);
  long i;
  double w0 = 0, c0 = 0;
  for (i = 0; i < WARM + n; i++) {
    if (i == WARM) { w0 = wall_now(); c0 = cpu_now(); }
    body.len = 0;
    check_status(e, curl_easy_perform(e));
    use_body(&body, decode);
  }
  printf("n=%ld wall=%.6f cpu=%.6f\n", n, wall_now() - w0, cpu_now() - c0);
  curl_easy_cleanup(e);
  free(body.p);
}

/* K transfers in flight; each finished handle is checked and re-added until
 * `total` transfers have been started. Returns when all have ended. */
static void multi_loop(CURLM *m, CURL **easy, Buf *bufs, long k, long total) {
  long started = 0, ended = 0, i;
  int running = 0;
  for (i = 0; i < k && started < total; i++, started++) {
    bufs[i].len = 0;
    curl_multi_add_handle(m, easy[i]);
  }
  while (ended < total) {
    CURLMsg *msg;
    int left;
    long t = -1;
    if (curl_multi_perform(m, &running) != CURLM_OK) die("curl_multi_perform", "failed");
    while ((msg = curl_multi_info_read(m, &left)) != NULL) {
      CURL *e;
      Buf *b = NULL;
      if (msg->msg != CURLMSG_DONE) continue;
      e = msg->easy_handle;
      check_status(e, msg->data.result);
      curl_multi_remove_handle(m, e);
      ended++;
      curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&b);
      if (started < total) {
        b->len = 0;
        curl_multi_add_handle(m, e);
        started++;
      }
    }
    if (ended >= total) break;
    if (curl_multi_timeout(m, &t) != CURLM_OK) t = 1000;
    if (t < 0 || t > 1000) t = 1000;
    if (t > 0) curl_multi_poll(m, NULL, 0, (int)t, NULL);
  }
}

static void run_multi(const char *url, long n, long k, struct curl_slist *headers) {
  CURLM *m = curl_multi_init();
  CURL *easy[MAX_K];
  Buf bufs[MAX_K];
  long i;
  double w0 = 0, c0 = 0;
  if (m == NULL) die("curl_multi_init", "failed");
  curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, k);
  curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, k * 4);
  for (i = 0; i < k; i++) {
    bufs[i].p = NULL;
    bufs[i].len = bufs[i].cap = 0;
    easy[i] = new_easy(url, headers, &bufs[i]);
  }
  multi_loop(m, easy, bufs, k, WARM > k ? WARM : k);
  w0 = wall_now();
  c0 = cpu_now();
  multi_loop(m, easy, bufs, k, n);
  printf("n=%ld wall=%.6f cpu=%.6f\n", n, wall_now() - w0, cpu_now() - c0);
  for (i = 0; i < k; i++) {
    curl_easy_cleanup(easy[i]);
    free(bufs[i].p);
  }
  curl_multi_cleanup(m);
}

int main(int argc, char **argv) {
  const char *mode, *url;
  long n, k = 1;
  int first_header = 4, i;
  struct curl_slist *headers = NULL;
  if (argc < 4) {
    fprintf(stderr, "usage: raw_curl seq|multi|json URL N [K] [HEADER...]\n");
    return 2;
  }
  mode = argv[1];
  url = argv[2];
  n = atol(argv[3]);
  if (strcmp(mode, "multi") == 0) {
    if (argc < 5) die("multi", "needs K");
    k = atol(argv[4]);
    if (k < 1 || k > MAX_K) die("multi", "K must be 1..1024");
    first_header = 5;
  }
  if (n < 1) die("N", "must be >= 1");
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) die("curl_global_init", "failed");
  for (i = first_header; i < argc; i++) headers = curl_slist_append(headers, argv[i]);
  if (strcmp(mode, "seq") == 0) run_seq(url, n, headers, 0);
  else if (strcmp(mode, "json") == 0) run_seq(url, n, headers, 1);
  else if (strcmp(mode, "multi") == 0) run_multi(url, n, k, headers);
  else die("mode", mode);
  curl_slist_free_all(headers);
  curl_global_cleanup();
  return 0;
}
