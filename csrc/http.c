/* http.c: the HTTP engine of provision.core on libcurl (docs/core-api.md,
 * "HTTP engine").
 *
 * A session userdata owns one multi handle (connection cache: keep-alive)
 * and one share handle (DNS cache and TLS sessions). Every request, alone or
 * in a list, runs on that multi handle.
 *
 * Rules this file keeps:
 *  - No Lua call ever happens while a transfer is inside the multi handle:
 *    all Lua input is read before curl_multi_add_handle, all Lua tables are
 *    built after curl_multi_remove_handle. The write/header callbacks only
 *    append to malloc'd buffers and enforce the size caps there.
 *  - Every C resource is owned by a userdata created (with its metatable)
 *    before the resource: the session owns the multi/share handles and the
 *    copied settings, a "perform state" userdata owns the easy handles,
 *    header lists and buffers of one call. A Lua error anywhere (bad argument,
 *    out of memory) therefore leaks nothing: __gc frees it.
 *  - The only global is the pthread_once guard around curl_global_init.
 */
#include "core.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SESSION_MT "provision.session"
#define PERFORM_MT "provision.perform"
#define HEADERS_MT "provision.headers"
#define ERROR_MT "provision.http_error"

#define DEFAULT_CONNECT_TIMEOUT 10.0
#define DEFAULT_TIMEOUT 60.0
#define DEFAULT_MAX_BODY ((curl_off_t)64 * 1024 * 1024)
#define DEFAULT_MAX_CONNECTIONS 8
#define MAX_HEADER_BYTES ((size_t)1024 * 1024)  /* all header lines of one response */
#define MAX_METHOD_LEN 32

/* ---- one-time global init ------------------------------------------------ */

static pthread_once_t g_init_once = PTHREAD_ONCE_INIT;
static CURLcode g_init_rc = CURLE_FAILED_INIT;

static void global_init(void) { g_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- settings ------------------------------------------------------------- */

/* String settings: copied into the session, overridable per request. */
enum { S_CA_FILE, S_CA_PATH, S_CERT, S_KEY, S_KEY_PASSWORD, S_PROXY, S_USER_AGENT, S_COUNT };
static const struct { const char *name; CURLoption opt; } STR_OPTS[S_COUNT] = {
  { "ca_file", CURLOPT_CAINFO },  { "ca_path", CURLOPT_CAPATH },
  { "cert", CURLOPT_SSLCERT },    { "key", CURLOPT_SSLKEY },
  { "key_password", CURLOPT_KEYPASSWD }, { "proxy", CURLOPT_PROXY },
  { "user_agent", CURLOPT_USERAGENT },
};

typedef struct {
  CURLM *multi;
  CURLSH *share;
  int closed;
  double connect_timeout, timeout;
  int verify;
  curl_off_t max_body;
  long max_connections;
  char *str[S_COUNT];
  lua_Integer requests, connections;   /* stats */
} Session;

/* ---- growable byte buffer ------------------------------------------------- */

typedef struct { char *p; size_t len, cap; } Buf;

/* Make room for `need` bytes, growing geometrically but never past `limit`
 * (need <= limit is the caller's promise). 0 on allocation failure. */
static int buf_reserve(Buf *b, size_t need, size_t limit) {
  size_t ncap;
  char *np;
  if (need <= b->cap) return 1;
  ncap = b->cap ? b->cap : 16384;
  while (ncap < need) ncap = ncap > ((size_t)-1) / 2 ? need : ncap * 2;
  if (ncap > limit) ncap = limit;
  np = realloc(b->p, ncap);
  if (np == NULL) return 0;
  b->p = np;
  b->cap = ncap;
  return 1;
}

static void buf_free(Buf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

/* ---- one transfer --------------------------------------------------------- */

enum { T_NONE, T_INVALID, T_INTERNAL, T_READY };

typedef struct {
  CURL *easy;
  struct curl_slist *headers;
  int state;              /* T_* after prepare */
  int in_multi, done;
  int added;              /* handed to libcurl: it may have sent bytes */
  CURLcode result;
  curl_off_t max_body;
  int body_too_large, headers_too_large, oom;
  int headers_complete;   /* the blank line ending the last header block was seen */
  Buf body, hdr;
  /* info, read once the transfer is done */
  long status, http_version, num_connects, local_port;
  curl_off_t total_us, pretransfer_us;
  char msg[160];          /* invalid_argument / internal message */
  char errbuf[CURL_ERROR_SIZE];
} Transfer;

/* Per call state: owns the easy handles of one request()/perform(). */
typedef struct {
  size_t n;
  Transfer t[1];
} Perform;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  Transfer *t = (Transfer *)ud;
  size_t n = size * nmemb;
  size_t limit = (size_t)t->max_body;
  if (n == 0) return 0;
  if (n > limit - t->body.len) { t->body_too_large = 1; return 0; }
  if (t->body.cap == 0) {
    /* Reserve the announced length at once when it fits the cap. */
    curl_off_t cl = -1;
    if (curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK &&
        cl > 0 && cl <= t->max_body && (size_t)cl >= n)
      if (!buf_reserve(&t->body, (size_t)cl, limit)) { t->oom = 1; return 0; }
  }
  if (!buf_reserve(&t->body, t->body.len + n, limit)) { t->oom = 1; return 0; }
  memcpy(t->body.p + t->body.len, ptr, n);
  t->body.len += n;
  return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud) {
  Transfer *t = (Transfer *)ud;
  size_t n = size * nmemb;
  /* A status line starts a new response (1xx interim ones come first): keep
   * only the headers of the last one. */
  if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) { t->hdr.len = 0; t->headers_complete = 0; return n; }
  if ((n == 2 && ptr[0] == '\r' && ptr[1] == '\n') || (n == 1 && ptr[0] == '\n')) {
    t->headers_complete = 1;
    return n;
  }
  if (n > MAX_HEADER_BYTES - t->hdr.len) { t->headers_too_large = 1; return 0; }
  if (!buf_reserve(&t->hdr, t->hdr.len + n, MAX_HEADER_BYTES)) { t->oom = 1; return 0; }
  memcpy(t->hdr.p + t->hdr.len, ptr, n);
  t->hdr.len += n;
  return n;
}

static void transfer_release(Transfer *t) {
  if (t->easy) { curl_easy_cleanup(t->easy); t->easy = NULL; }
  if (t->headers) { curl_slist_free_all(t->headers); t->headers = NULL; }
  buf_free(&t->body);
  buf_free(&t->hdr);
}

static void perform_release(Perform *P) {
  size_t i;
  for (i = 0; i < P->n; i++) transfer_release(&P->t[i]);
}

static int perform_gc(lua_State *L) {
  Perform *P = (Perform *)luaL_checkudata(L, 1, PERFORM_MT);
  perform_release(P);
  return 0;
}

/* ---- error objects -------------------------------------------------------- */

/* Push {kind=, message=, request_sent=[, code=]} with the error metatable. */
static void push_err(lua_State *L, const char *kind, const char *message, int code, int sent) {
  lua_createtable(L, 0, 6);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, message);
  lua_setfield(L, -2, "message");
  if (code >= 0) {
    lua_pushinteger(L, code);
    lua_setfield(L, -2, "code");
  }
  lua_pushboolean(L, sent);
  lua_setfield(L, -2, "request_sent");
  prv_setmetatable(L, ERROR_MT);
}

static int err_tostring(lua_State *L) {
  const char *kind, *message;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "kind");
  lua_getfield(L, 1, "message");
  kind = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "error";
  message = lua_type(L, 3) == LUA_TSTRING ? lua_tostring(L, 3) : "";
  lua_pushfstring(L, "%s: %s", kind, message);
  return 1;
}

static int push_closed(lua_State *L) {
  lua_pushnil(L);
  push_err(L, "closed", "session is closed", -1, 0);
  return 2;
}

/* ---- reading Lua options ------------------------------------------------- */

/* Field `name` of the table at `idx` (absolute) as a number >= 0; returns 1
 * when present. Wrong type or negative: a Lua error (programming error). */
static int opt_number(lua_State *L, int idx, const char *name, double *out) {
  int present = 0;
  lua_getfield(L, idx, name);
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "%s: number expected, got %s", name, luaL_typename(L, -1));
    *out = (double)lua_tonumber(L, -1);
    if (!(*out >= 0.0) || *out > 1e12) luaL_error(L, "%s: must be a number >= 0", name);
    present = 1;
  }
  lua_pop(L, 1);
  return present;
}

static int opt_bool(lua_State *L, int idx, const char *name, int *out) {
  int present = 0;
  lua_getfield(L, idx, name);
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TBOOLEAN) luaL_error(L, "%s: boolean expected, got %s", name, luaL_typename(L, -1));
    *out = lua_toboolean(L, -1);
    present = 1;
  }
  lua_pop(L, 1);
  return present;
}

/* Pushes the string field (or nothing) and returns it; NULL when absent.
 * The caller pops it. A string with an embedded NUL is a Lua error. */
static const char *opt_string_push(lua_State *L, int idx, const char *name) {
  size_t len;
  const char *s;
  lua_getfield(L, idx, name);
  if (lua_isnil(L, -1)) { lua_pop(L, 1); return NULL; }
  if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "%s: string expected, got %s", name, luaL_typename(L, -1));
  s = lua_tolstring(L, -1, &len);
  if (strlen(s) != len) luaL_error(L, "%s: contains NUL", name);
  return s;
}

static long seconds_to_ms(double s) {
  double ms = s * 1000.0;
  if (s > 0 && ms < 1.0) return 1;
  if (ms > 2147483647.0) return 2147483647L;
  return (long)(ms + 0.5);
}

/* ---- session ------------------------------------------------------------- */

static void session_release(Session *S) {
  int i;
  if (S->multi) { curl_multi_cleanup(S->multi); S->multi = NULL; }
  if (S->share) { curl_share_cleanup(S->share); S->share = NULL; }
  for (i = 0; i < S_COUNT; i++) {
    if (S->str[i]) {
      if (i == S_KEY_PASSWORD) OPENSSL_cleanse(S->str[i], strlen(S->str[i]));
      free(S->str[i]);
      S->str[i] = NULL;
    }
  }
  S->closed = 1;
}

static int session_gc(lua_State *L) {
  Session *S = (Session *)luaL_checkudata(L, 1, SESSION_MT);
  session_release(S);
  return 0;
}

static int session_close(lua_State *L) {
  Session *S = (Session *)luaL_checkudata(L, 1, SESSION_MT);
  session_release(S);
  lua_pushboolean(L, 1);
  return 1;
}

static int session_tostring(lua_State *L) {
  Session *S = (Session *)luaL_checkudata(L, 1, SESSION_MT);
  if (S->closed) lua_pushliteral(L, "provision.session (closed)");
  else lua_pushfstring(L, "provision.session (%p)", (void *)S);
  return 1;
}

static int session_stats(lua_State *L) {
  Session *S = (Session *)luaL_checkudata(L, 1, SESSION_MT);
  if (S->closed) return push_closed(L);
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, S->requests);
  lua_setfield(L, -2, "requests");
  lua_pushinteger(L, S->connections);
  lua_setfield(L, -2, "connections");
  return 1;
}

/* core.session(opts); upvalue 1: the default User-Agent. */
static int l_session(lua_State *L) {
  Session *S;
  int i;
  double d;
  pthread_once(&g_init_once, global_init);
  if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TTABLE);
  else { lua_settop(L, 0); lua_newtable(L); }
  lua_settop(L, 1);
  if (g_init_rc != CURLE_OK) {
    lua_pushnil(L);
    push_err(L, "internal", curl_easy_strerror(g_init_rc), (int)g_init_rc, 0);
    return 2;
  }
  S = (Session *)prv_newuserdata(L, sizeof *S);   /* index 2 */
  memset(S, 0, sizeof *S);
  S->closed = 1;                                   /* until the handles exist */
  prv_setmetatable(L, SESSION_MT);
  S->connect_timeout = DEFAULT_CONNECT_TIMEOUT;
  S->timeout = DEFAULT_TIMEOUT;
  S->verify = 1;
  S->max_body = DEFAULT_MAX_BODY;
  S->max_connections = DEFAULT_MAX_CONNECTIONS;

  opt_number(L, 1, "connect_timeout", &S->connect_timeout);
  opt_number(L, 1, "timeout", &S->timeout);
  opt_bool(L, 1, "verify", &S->verify);
  if (opt_number(L, 1, "max_body", &d)) {
    if (d != (double)(curl_off_t)d) luaL_error(L, "max_body: integer expected");
    S->max_body = (curl_off_t)d;
  }
  if (opt_number(L, 1, "max_connections", &d)) {
    if (d < 1 || d > 10000 || d != (double)(long)d) luaL_error(L, "max_connections: integer 1..10000 expected");
    S->max_connections = (long)d;
  }
  for (i = 0; i < S_COUNT; i++) {
    const char *s = opt_string_push(L, 1, STR_OPTS[i].name);
    if (s == NULL && i == S_USER_AGENT) { lua_pushvalue(L, lua_upvalueindex(1)); s = lua_tostring(L, -1); }
    if (s != NULL) {
      S->str[i] = strdup(s);
      lua_pop(L, 1);
      if (S->str[i] == NULL) return luaL_error(L, "out of memory");
    }
  }

  S->multi = curl_multi_init();
  S->share = curl_share_init();
  if (S->multi == NULL || S->share == NULL ||
      curl_share_setopt(S->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
      curl_share_setopt(S->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK ||
      curl_multi_setopt(S->multi, CURLMOPT_MAX_HOST_CONNECTIONS, S->max_connections) != CURLM_OK ||
      curl_multi_setopt(S->multi, CURLMOPT_MAXCONNECTS, S->max_connections * 4) != CURLM_OK) {
    session_release(S);
    lua_pushnil(L);
    push_err(L, "internal", "cannot create libcurl handles", -1, 0);
    return 2;
  }
  S->closed = 0;
  return 1;
}

/* ---- preparing one request ------------------------------------------------ */

static int is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_token(const char *s, size_t len) {
  size_t i;
  if (len == 0) return 0;
  for (i = 0; i < len; i++)
    if (!is_tchar((unsigned char)s[i])) return 0;
  return 1;
}

static int has_ctl(const char *s, size_t len) {
  size_t i;
  for (i = 0; i < len; i++)
    if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0') return 1;
  return 0;
}

static int ieq(const char *a, size_t alen, const char *b) {
  size_t i;
  if (alen != strlen(b)) return 0;
  for (i = 0; i < alen; i++) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = (char)(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = (char)(y - 'A' + 'a');
    if (x != y) return 0;
  }
  return 1;
}

static int set_invalid(Transfer *t, const char *msg) {
  snprintf(t->msg, sizeof t->msg, "%s", msg);
  t->state = T_INVALID;
  return T_INVALID;
}

static int set_internal(Transfer *t, const char *msg) {
  snprintf(t->msg, sizeof t->msg, "%s", msg);
  t->state = T_INTERNAL;
  return T_INTERNAL;
}

/* Append "name: value" to t->headers. 0 on allocation failure. No Lua call
 * happens between the malloc and the free. */
static int add_header_line(Transfer *t, const char *name, size_t nlen, const char *value, size_t vlen) {
  struct curl_slist *nl;
  size_t total = nlen + vlen + 3;
  char *line = (char *)malloc(total);
  if (line == NULL) return 0;
  memcpy(line, name, nlen);
  if (vlen == 0) {
    line[nlen] = ';';                 /* curl's way to send an empty header */
    line[nlen + 1] = '\0';
  } else {
    line[nlen] = ':';
    line[nlen + 1] = ' ';
    memcpy(line + nlen + 2, value, vlen);
    line[nlen + 2 + vlen] = '\0';
  }
  nl = curl_slist_append(t->headers, line);
  free(line);
  if (nl == NULL) return 0;
  t->headers = nl;
  return 1;
}

/* Append a literal line ("Name:" removes a header libcurl would add). */
static int add_raw_header(Transfer *t, const char *line) {
  struct curl_slist *nl = curl_slist_append(t->headers, line);
  if (nl == NULL) return 0;
  t->headers = nl;
  return 1;
}

/* Validate and add the header at stack -2 (name) / -1 (value). */
static int take_header(lua_State *L, Transfer *t, int k, int *has_ctype, int *has_expect) {
  size_t nlen, vlen;
  const char *name, *value;
  char msg[96];
  if (lua_type(L, -2) != LUA_TSTRING) return luaL_error(L, "header %d: name must be a string", k);
  if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
    return luaL_error(L, "header %d: value must be a string", k);
  name = lua_tolstring(L, -2, &nlen);
  value = lua_tolstring(L, -1, &vlen);
  if (has_ctl(name, nlen)) {
    snprintf(msg, sizeof msg, "header %d: name contains CR, LF or NUL", k);
    return set_invalid(t, msg);
  }
  if (!is_token(name, nlen)) {
    snprintf(msg, sizeof msg, "header %d: name is not a token (empty, or holds ':', space or other separator)", k);
    return set_invalid(t, msg);
  }
  if (has_ctl(value, vlen)) {
    snprintf(msg, sizeof msg, "header %d: value contains CR, LF or NUL", k);
    return set_invalid(t, msg);
  }
  if (ieq(name, nlen, "content-type")) *has_ctype = 1;
  if (ieq(name, nlen, "expect")) *has_expect = 1;
  if (!add_header_line(t, name, nlen, value, vlen)) return set_internal(t, "out of memory");
  return T_NONE;
}

/* Read the headers table at stack top (absolute index hi). */
static int take_headers(lua_State *L, Transfer *t, int hi, int *has_ctype, int *has_expect) {
  int rc, k = 0;
  lua_rawgeti(L, hi, 1);
  if (!lua_isnil(L, -1)) {                /* list form: {{"Name","value"}, ...} */
    int i, n = (int)prv_rawlen(L, hi);
    lua_pop(L, 1);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, hi, i);
      if (lua_type(L, -1) != LUA_TTABLE) return luaL_error(L, "header %d: {name, value} pair expected", i);
      lua_rawgeti(L, -1, 1);
      lua_rawgeti(L, -2, 2);
      rc = take_header(L, t, i, has_ctype, has_expect);
      lua_pop(L, 3);
      if (rc != T_NONE) return rc;
    }
    return T_NONE;
  }
  lua_pop(L, 1);
  lua_pushnil(L);                          /* map form: {Name = "value"} */
  while (lua_next(L, hi) != 0) {
    ++k;
    if (lua_type(L, -2) != LUA_TSTRING) return luaL_error(L, "headers: keys must be strings");
    lua_pushvalue(L, -2);                  /* name copy: never convert a next() key in place */
    lua_pushvalue(L, -2);
    rc = take_header(L, t, k, has_ctype, has_expect);
    lua_pop(L, 3);
    if (rc != T_NONE) { lua_pop(L, 1); return rc; }
  }
  return T_NONE;
}

/* Check that url is http(s) and well formed. 0 = fine; else message. */
static const char *check_url(const char *url, size_t len) {
  CURLU *u;
  char *scheme = NULL;
  const char *bad = NULL;
  if (strlen(url) != len || has_ctl(url, len)) return "url contains CR, LF or NUL";
  u = curl_url();
  if (u == NULL) return "out of memory";
  if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) bad = "malformed url";
  else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK || scheme == NULL) bad = "malformed url";
  else if (!ieq(scheme, strlen(scheme), "http") && !ieq(scheme, strlen(scheme), "https"))
    bad = "only http:// and https:// urls are accepted";
  curl_free(scheme);
  curl_url_cleanup(u);
  return bad;
}

#define EASY_OK(call) do { if ((call) != CURLE_OK) return set_internal(t, "curl_easy_setopt failed"); } while (0)

/* Fill transfer t from the request table at index ri (absolute). Body strings
 * are anchored in the table at index anchor under key k. Returns T_READY,
 * T_INVALID or T_INTERNAL; raises a Lua error on wrong argument types. */
static int prepare(lua_State *L, Session *S, Transfer *t, int ri, int anchor, int k) {
  const char *method, *url, *body = NULL;
  size_t mlen, ulen, blen = 0;
  const char *bad;
  double connect_timeout = S->connect_timeout, timeout = S->timeout, d;
  int verify = S->verify, has_ctype = 0, has_expect = 0, rc, i;
  int is_get, is_head, is_post, wants_body;
  CURL *e;

  if (lua_type(L, ri) != LUA_TTABLE) return luaL_error(L, "request %d: table expected, got %s", k, luaL_typename(L, ri));
  t->max_body = S->max_body;

  /* Everything below until the first setopt may raise: nothing to free yet
   * but the easy handle, which the perform state owns. */
  t->easy = e = curl_easy_init();
  if (e == NULL) return set_internal(t, "curl_easy_init failed");

  lua_getfield(L, ri, "method");
  if (lua_isnil(L, -1)) { lua_pop(L, 1); lua_pushliteral(L, "GET"); }
  if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "request %d: method must be a string", k);
  method = lua_tolstring(L, -1, &mlen);
  lua_rawseti(L, anchor, 3 * k - 2);        /* keep it alive for the setopt below */
  if (mlen > MAX_METHOD_LEN || !is_token(method, mlen)) return set_invalid(t, "method is not an HTTP token");

  lua_getfield(L, ri, "url");
  if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "request %d: url must be a string", k);
  url = lua_tolstring(L, -1, &ulen);
  lua_rawseti(L, anchor, 3 * k - 1);
  if ((bad = check_url(url, ulen)) != NULL) return set_invalid(t, bad);

  lua_getfield(L, ri, "body");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "request %d: body must be a string", k);
    body = lua_tolstring(L, -1, &blen);
    lua_rawseti(L, anchor, 3 * k);          /* libcurl does not copy POSTFIELDS */
  } else {
    lua_pop(L, 1);
  }

  lua_getfield(L, ri, "headers");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TTABLE) return luaL_error(L, "request %d: headers must be a table", k);
    rc = take_headers(L, t, lua_gettop(L), &has_ctype, &has_expect);
    if (rc != T_NONE) return rc;
  }
  lua_pop(L, 1);

  /* per-request overrides */
  opt_number(L, ri, "connect_timeout", &connect_timeout);
  opt_number(L, ri, "timeout", &timeout);
  opt_bool(L, ri, "verify", &verify);
  if (opt_number(L, ri, "max_body", &d)) {
    if (d != (double)(curl_off_t)d) return luaL_error(L, "max_body: integer expected");
    t->max_body = (curl_off_t)d;
  }
  for (i = 0; i < S_COUNT; i++) {
    const char *s = opt_string_push(L, ri, STR_OPTS[i].name);
    int pushed = s != NULL;
    if (s == NULL) s = S->str[i];
    if (s != NULL) EASY_OK(curl_easy_setopt(e, STR_OPTS[i].opt, s));  /* libcurl copies */
    else if (i == S_CA_PATH) {
      /* Debian's libcurl has a built-in CA folder, and while one is set it
       * skips its cached CA store: every new TLS connection then re-reads
       * the whole bundle (~20 ms of CPU). The bundle holds the same roots. */
      EASY_OK(curl_easy_setopt(e, CURLOPT_CAPATH, NULL));
    }
    if (pushed) lua_pop(L, 1);
  }

  /* method and body */
  is_get = mlen == 3 && memcmp(method, "GET", 3) == 0;
  is_head = mlen == 4 && memcmp(method, "HEAD", 4) == 0;
  is_post = mlen == 4 && memcmp(method, "POST", 4) == 0;
  wants_body = body != NULL || is_post || (mlen == 3 && memcmp(method, "PUT", 3) == 0) ||
               (mlen == 5 && memcmp(method, "PATCH", 5) == 0);
  if (is_head) {
    if (body != NULL) return set_invalid(t, "a HEAD request cannot carry a body");
    EASY_OK(curl_easy_setopt(e, CURLOPT_NOBODY, 1L));
  } else if (wants_body) {
    EASY_OK(curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen));
    EASY_OK(curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : ""));
    if (!is_post) EASY_OK(curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method));
    if (!has_ctype && !add_raw_header(t, "Content-Type:")) return set_internal(t, "out of memory");
  } else if (is_get) {
    EASY_OK(curl_easy_setopt(e, CURLOPT_HTTPGET, 1L));
  } else {
    EASY_OK(curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method));
  }
  if (!has_expect && !add_raw_header(t, "Expect:")) return set_internal(t, "out of memory");
  {
    /* libcurl silently re-sends a request whose reused connection died
     * before any response byte, POST included. A request that is not
     * idempotent (unless the caller says it is) gets a fresh connection, so
     * only the caller decides whether to send it again. */
    int idempotent = is_get || is_head || (mlen == 3 && memcmp(method, "PUT", 3) == 0) ||
                     (mlen == 6 && memcmp(method, "DELETE", 6) == 0) ||
                     (mlen == 7 && memcmp(method, "OPTIONS", 7) == 0);
    if (!idempotent) opt_bool(L, ri, "idempotent", &idempotent);
    if (!idempotent) EASY_OK(curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L));
  }

  EASY_OK(curl_easy_setopt(e, CURLOPT_URL, url));
  EASY_OK(curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)t));
  EASY_OK(curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf));
  EASY_OK(curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L));
  EASY_OK(curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https"));
  EASY_OK(curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"));
  EASY_OK(curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L));
  EASY_OK(curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers));
  EASY_OK(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body));
  EASY_OK(curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)t));
  EASY_OK(curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header));
  EASY_OK(curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)t));
  EASY_OK(curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L));
  EASY_OK(curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L));
  EASY_OK(curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, seconds_to_ms(connect_timeout)));
  EASY_OK(curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, seconds_to_ms(timeout)));
  EASY_OK(curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L));
  EASY_OK(curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L));
  if (t->max_body > 0) EASY_OK(curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, t->max_body));
  t->errbuf[0] = '\0';
  t->state = T_READY;
  return T_READY;
}

/* ---- running transfers ---------------------------------------------------- */

/* No Lua call in here: transfers are inside the multi handle. */
static void run_transfers(Session *S, Perform *P) {
  size_t i;
  int running = 0, msgs;
  CURLMcode mc = CURLM_OK;
  CURLMsg *m;

  for (i = 0; i < P->n; i++) {
    Transfer *t = &P->t[i];
    if (t->state != T_READY) continue;
    if (curl_easy_setopt(t->easy, CURLOPT_SHARE, S->share) != CURLE_OK ||
        curl_multi_add_handle(S->multi, t->easy) != CURLM_OK) {
      curl_easy_setopt(t->easy, CURLOPT_SHARE, NULL);
      set_internal(t, "cannot add the transfer to the multi handle");
      continue;
    }
    t->in_multi = 1;
    t->added = 1;
    S->requests++;
  }

  for (;;) {
    mc = curl_multi_perform(S->multi, &running);
    if (mc != CURLM_OK) break;
    while ((m = curl_multi_info_read(S->multi, &msgs)) != NULL) {
      if (m->msg == CURLMSG_DONE) {
        char *priv = NULL;
        Transfer *t;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        t = (Transfer *)(void *)priv;
        if (t) { t->result = m->data.result; t->done = 1; }
      }
    }
    if (running == 0) break;
    {
      /* Wait no longer than libcurl asks: a transfer queued for a free
       * connection is only woken by its own timer (seen stalling 1 s). */
      long wait_ms = -1;
      if (curl_multi_timeout(S->multi, &wait_ms) != CURLM_OK || wait_ms < 0 || wait_ms > 1000) wait_ms = 1000;
      if (wait_ms == 0) continue;
      mc = curl_multi_poll(S->multi, NULL, 0, (int)wait_ms, NULL);
      if (mc != CURLM_OK) break;
    }
  }

  for (i = 0; i < P->n; i++) {
    Transfer *t = &P->t[i];
    CURL *e = t->easy;
    if (!t->in_multi) continue;
    curl_multi_remove_handle(S->multi, e);
    curl_easy_setopt(e, CURLOPT_SHARE, NULL);
    t->in_multi = 0;
    if (!t->done) {
      set_internal(t, mc != CURLM_OK ? curl_multi_strerror(mc) : "transfer did not finish");
      continue;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &t->status);
    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &t->http_version);
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &t->num_connects);
    curl_easy_getinfo(e, CURLINFO_LOCAL_PORT, &t->local_port);
    curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &t->total_us);
    curl_easy_getinfo(e, CURLINFO_PRETRANSFER_TIME_T, &t->pretransfer_us);
    S->connections += t->num_connects;
  }
}

/* ---- building results ----------------------------------------------------- */

static void push_lower(lua_State *L, const char *s, size_t len) {
  luaL_Buffer b;
  size_t i;
  luaL_buffinit(L, &b);
  for (i = 0; i < len; i++) {
    char c = s[i];
    luaL_addchar(&b, (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c);
  }
  luaL_pushresult(&b);
}

static int headers_index(lua_State *L) {
  size_t len;
  const char *k;
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  k = lua_tolstring(L, 2, &len);
  push_lower(L, k, len);
  lua_rawget(L, 1);
  return 1;
}

static void trim(const char **s, const char **e) {
  while (*s < *e && (**s == ' ' || **s == '\t')) (*s)++;
  while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t')) (*e)--;
}

/* Push header_list and headers from the raw header block. */
static void push_headers(lua_State *L, const Buf *hdr) {
  const char *p = hdr->p, *end = hdr->p + hdr->len;
  int k = 0, i, list, map;
  lua_newtable(L);
  list = lua_gettop(L);
  while (p != NULL && p < end) {
    const char *eol = (const char *)memchr(p, '\n', (size_t)(end - p));
    const char *le = eol ? eol : end, *next = eol ? eol + 1 : end;
    const char *colon, *ns, *ne, *vs, *ve;
    if (le > p && le[-1] == '\r') le--;
    if (le == p) { p = next; continue; }
    if (*p == ' ' || *p == '\t') {           /* obsolete line folding */
      if (k > 0) {
        vs = p; ve = le; trim(&vs, &ve);
        lua_rawgeti(L, list, k);
        lua_rawgeti(L, -1, 2);
        lua_pushliteral(L, " ");
        lua_pushlstring(L, vs, (size_t)(ve - vs));
        lua_concat(L, 3);
        lua_rawseti(L, -2, 2);
        lua_pop(L, 1);
      }
      p = next;
      continue;
    }
    colon = (const char *)memchr(p, ':', (size_t)(le - p));
    if (colon == NULL) { p = next; continue; }
    ns = p; ne = colon; trim(&ns, &ne);
    vs = colon + 1; ve = le; trim(&vs, &ve);
    lua_createtable(L, 2, 0);
    lua_pushlstring(L, ns, (size_t)(ne - ns));
    lua_rawseti(L, -2, 1);
    lua_pushlstring(L, vs, (size_t)(ve - vs));
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, list, ++k);
    p = next;
  }
  lua_createtable(L, 0, k);
  map = lua_gettop(L);
  for (i = 1; i <= k; i++) {
    size_t nlen;
    const char *name;
    lua_rawgeti(L, list, i);                 /* pair */
    lua_rawgeti(L, -1, 1);
    name = lua_tolstring(L, -1, &nlen);
    push_lower(L, name, nlen);               /* pair name lname */
    lua_pushvalue(L, -1);
    lua_rawget(L, map);                      /* pair name lname old */
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_rawgeti(L, -3, 2);
    } else {
      const char *lname = lua_tostring(L, -2);
      if (strcmp(lname, "set-cookie") == 0) lua_pushliteral(L, "\n");
      else lua_pushliteral(L, ", ");
      lua_rawgeti(L, -5, 2);
      lua_concat(L, 3);
    }
    lua_rawset(L, map);                      /* map[lname] = value */
    lua_pop(L, 2);
  }
  prv_setmetatable(L, HEADERS_MT);
  /* stack: list map */
}

static const char *version_name(long v) {
  switch (v) {
    case CURL_HTTP_VERSION_1_0: return "1.0";
    case CURL_HTTP_VERSION_1_1: return "1.1";
    case CURL_HTTP_VERSION_2_0: return "2";
    case CURL_HTTP_VERSION_3: return "3";
    default: return "";
  }
}

static const char *classify(CURLcode rc, int *early) {
  *early = 0;
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      *early = 1;
      return "dns";
    case CURLE_COULDNT_CONNECT:
      *early = 1;
      return "connect";
    case CURLE_OPERATION_TIMEDOUT:
      return "timeout";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED:
      *early = 1;   /* handshake: request_sent only if the transfer had begun */
      return "tls";
    case CURLE_SSL_SHUTDOWN_FAILED:
      return "tls";
    case CURLE_FILESIZE_EXCEEDED:
      return "too_large";
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_QUIC_CONNECT_ERROR:
      return "network";
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_HTTP_RETURNED_ERROR:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_RANGE_ERROR:
    case CURLE_URL_MALFORMAT:
      return "protocol";
    case CURLE_ABORTED_BY_CALLBACK:
      return "aborted";
    default:
      return "internal";
  }
}

/* Pushes the response or the error of one transfer; returns 1 for an error. */
static int push_entry(lua_State *L, Transfer *t) {
  char msg[CURL_ERROR_SIZE + 64];
  const char *kind;
  int early, sent;
  if (t->state == T_INVALID) { push_err(L, "invalid_argument", t->msg, -1, 0); return 1; }
  if (t->state == T_INTERNAL) { push_err(L, "internal", t->msg, -1, t->added); return 1; }
  if (t->state != T_READY) { push_err(L, "internal", "request not prepared", -1, 0); return 1; }

  /* libcurl reports success when the peer closes in the middle of the
   * header block; that answer is incomplete, not an empty 200. */
  if (t->result == CURLE_OK && !t->headers_complete) {
    push_err(L, "network", "connection closed before the response headers were complete", -1, 1);
    if (t->status > 0) {
      lua_pushinteger(L, t->status);
      lua_setfield(L, -2, "status");
    }
    return 1;
  }

  if (t->result != CURLE_OK) {
    kind = classify(t->result, &early);
    if (t->body_too_large || t->result == CURLE_FILESIZE_EXCEEDED) {
      kind = "too_large";
      snprintf(msg, sizeof msg, "response body exceeds max_body (%lld bytes)", (long long)t->max_body);
    } else if (t->headers_too_large) {
      kind = "too_large";
      snprintf(msg, sizeof msg, "response headers exceed %lu bytes", (unsigned long)MAX_HEADER_BYTES);
    } else if (t->oom) {
      kind = "internal";
      snprintf(msg, sizeof msg, "out of memory");
    } else {
      snprintf(msg, sizeof msg, "%s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(t->result));
    }
    /* Not sent: DNS and connect failures always; TLS handshake failures and
     * timeouts only when the transfer never reached its pre-transfer point. */
    if (strcmp(kind, "dns") == 0 || strcmp(kind, "connect") == 0) sent = 0;
    else if ((early || strcmp(kind, "timeout") == 0) && t->pretransfer_us == 0) sent = 0;
    else sent = 1;
    push_err(L, kind, msg, (int)t->result, sent);
    if (t->status > 0) {
      lua_pushinteger(L, t->status);
      lua_setfield(L, -2, "status");
    }
    lua_pushinteger(L, t->num_connects);
    lua_setfield(L, -2, "new_connections");
    lua_pushnumber(L, (lua_Number)t->total_us / 1e6);
    lua_setfield(L, -2, "time");
    return 1;
  }

  lua_createtable(L, 0, 10);
  lua_pushinteger(L, t->status);
  lua_setfield(L, -2, "status");
  lua_pushstring(L, version_name(t->http_version));
  lua_setfield(L, -2, "http_version");
  lua_pushnumber(L, (lua_Number)t->total_us / 1e6);
  lua_setfield(L, -2, "time");
  lua_pushinteger(L, t->num_connects);
  lua_setfield(L, -2, "new_connections");
  lua_pushinteger(L, t->local_port);
  lua_setfield(L, -2, "local_port");
  {
    char *url = NULL;
    curl_easy_getinfo(t->easy, CURLINFO_EFFECTIVE_URL, &url);
    lua_pushstring(L, url ? url : "");
    lua_setfield(L, -2, "url");
  }
  lua_pushlstring(L, t->body.p ? t->body.p : "", t->body.len);
  lua_setfield(L, -2, "body");
  buf_free(&t->body);
  push_headers(L, &t->hdr);
  lua_setfield(L, -3, "headers");
  lua_setfield(L, -2, "header_list");
  buf_free(&t->hdr);
  return 0;
}

/* Run n requests. single: the request table is at index 2; else the list. */
static int execute(lua_State *L, int single) {
  Session *S = (Session *)luaL_checkudata(L, 1, SESSION_MT);
  size_t n, i;
  Perform *P;
  int state_idx, anchor, out;

  if (S->closed) return push_closed(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  n = single ? 1 : (size_t)prv_rawlen(L, 2);
  if (n > 100000) return luaL_error(L, "too many requests in one perform (%d)", (int)n);

  P = (Perform *)prv_newuserdata(L, offsetof(Perform, t) + (n ? n : 1) * sizeof(Transfer));
  memset(P, 0, offsetof(Perform, t) + (n ? n : 1) * sizeof(Transfer));
  prv_setmetatable(L, PERFORM_MT);
  P->n = n;
  state_idx = lua_gettop(L);
  lua_createtable(L, (int)(3 * n), 0);
  anchor = lua_gettop(L);

  for (i = 0; i < n; i++) {
    if (single) lua_pushvalue(L, 2);
    else lua_rawgeti(L, 2, (int)i + 1);
    prepare(L, S, &P->t[i], lua_gettop(L), anchor, (int)i + 1);
    lua_settop(L, anchor);
  }
  /* Reading the requests may have run Lua code (metamethods) that closed
   * the session. */
  if (S->closed) { perform_release(P); return push_closed(L); }

  run_transfers(S, P);

  if (single) {
    int failed = push_entry(L, &P->t[0]);
    perform_release(P);
    if (failed) {
      lua_pushnil(L);
      lua_insert(L, -2);
      return 2;
    }
    return 1;
  }
  lua_createtable(L, (int)n, 0);
  out = lua_gettop(L);
  for (i = 0; i < n; i++) {
    push_entry(L, &P->t[i]);
    lua_rawseti(L, out, (int)i + 1);
    transfer_release(&P->t[i]);
  }
  (void)state_idx;
  return 1;
}

static int session_request(lua_State *L) { return execute(L, 1); }
static int session_perform(lua_State *L) { return execute(L, 0); }

/* ---- registration --------------------------------------------------------- */

void prv_open_http(lua_State *L) {
  static const luaL_Reg methods[] = {
    { "request", session_request }, { "perform", session_perform },
    { "close", session_close },     { "stats", session_stats },
    { NULL, NULL },
  };
  curl_version_info_data *vi;

  pthread_once(&g_init_once, global_init);

  if (luaL_newmetatable(L, SESSION_MT)) {
    lua_newtable(L);
    prv_setfuncs(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, session_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, session_gc);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, session_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, PERFORM_MT)) {
    lua_pushcfunction(L, perform_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, HEADERS_MT)) {
    lua_pushcfunction(L, headers_index);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, ERROR_MT)) {
    lua_pushcfunction(L, err_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);

  /* default User-Agent: provision/<version> libcurl/<v>, an upvalue of session() */
  vi = curl_version_info(CURLVERSION_NOW);
  lua_getfield(L, -1, "version");
  lua_pushfstring(L, "provision/%s libcurl/%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "0",
                  vi && vi->version ? vi->version : "?");
  lua_remove(L, -2);
  lua_pushcclosure(L, l_session, 1);
  lua_setfield(L, -2, "session");
}
