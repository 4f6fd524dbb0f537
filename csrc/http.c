/* http.c: the HTTP engine of provision.core on libcurl (docs/core-api.md,
 * "HTTP engine").
 *
 * A session userdata owns one multi handle (connection cache: keep-alive)
 * and one share handle (DNS cache and TLS sessions). Every request, alone or
 * in a list, runs on that multi handle, as part of a "batch".
 *
 * A batch userdata owns the easy handles, header lists and buffers of one
 * request()/perform()/start(). perform() is start + step until done +
 * results; start() hands the batch to the caller, who drives it with
 * step()/wait_info() from its own event loop. Several batches may be live on
 * one session: whichever batch drives the multi handle, a finished transfer
 * is routed to its own batch through CURLINFO_PRIVATE (its Transfer, which
 * points back at its Batch).
 *
 * Rules this file keeps:
 *  - No Lua call ever happens inside a libcurl call: all Lua input of a batch
 *    is read before curl_multi_add_handle, the write/header callbacks only
 *    append to malloc'd buffers (and enforce the size caps there), and Lua
 *    tables are built only for transfers already removed from the multi
 *    handle. Between calls transfers stay in the multi handle; the Lua
 *    strings libcurl does not copy (POSTFIELDS) are anchored in a table the
 *    batch holds through a registry reference, which also keeps the session
 *    alive while the batch is.
 *  - Every C resource is owned by a userdata created (with its metatable)
 *    before the resource. A Lua error anywhere (bad argument, out of memory)
 *    therefore leaks nothing: __gc frees it.
 *  - A session knows its live batches (those with transfers in its multi
 *    handle); closing the session first takes their transfers out (they end
 *    as "closed" errors) and detaches them, so no batch keeps a dangling
 *    pointer. A batch's __gc/__close (one idempotent closer) takes its own
 *    transfers out of the multi handle if the session is still open.
 *  - Finalizers may run at any Lua allocation: no list of transfers or
 *    batches is walked across a Lua allocation.
 *  - The only global is the pthread_once guard around curl_global_init.
 */
#include "core.h"
#include "prv_pure.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#define SESSION_MT "provision.session"
#define BATCH_MT "provision.batch"
#define HEADERS_MT "provision.headers"
#define ERROR_MT "provision.http_error"

#define DEFAULT_CONNECT_TIMEOUT 10.0
#define DEFAULT_TIMEOUT 60.0
#define DEFAULT_MAX_BODY ((curl_off_t)64 * 1024 * 1024)
#define DEFAULT_MAX_CONNECTIONS 8
/* All header and trailer lines of the final response. libcurl 7.88 has the
 * same cap of its own over every header line of a transfer (interim
 * responses included), and one of 100 KiB per line. */
#define MAX_HEADER_BYTES ((size_t)300 * 1024)
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

typedef struct Batch Batch;

typedef struct {
  CURLM *multi;
  CURLSH *share;
  int closed;
  Batch *batches;         /* live batches: their unfinished transfers are in multi */
  long wide_fds;          /* open libcurl sockets numbered >= FD_SETSIZE (fdset cannot list them) */
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
enum { H_STATUS, H_FIELDS, H_TRAILERS };  /* on_header: expecting a status line, header lines, trailers */
enum { STOP_NONE, STOP_ABORTED, STOP_CLOSED };  /* why a transfer was taken out unfinished */

typedef struct {
  Batch *batch;
  CURL *easy;
  struct curl_slist *headers;
  int state;              /* T_* after prepare */
  int in_multi, done;
  int added;              /* handed to libcurl: it may have sent bytes */
  int stopped;            /* STOP_*: cancelled or its session closed before it finished */
  CURLcode result;
  curl_off_t max_body;
  int body_too_large, headers_too_large, oom;
  int bad_header;         /* a header line held a bare CR or a NUL */
  int hstate;             /* H_*: where on_header is in the response */
  int interim;            /* the current status is 1xx (not 101): another response follows */
  int headers_complete;   /* the blank line ending the last header block was seen */
  Buf body, hdr, trl;     /* body, header lines, trailer lines (chunked, HTTP/2) */
  prv_headers ph, pt;     /* hdr and trl parsed, while results are built */
  /* info, read once the transfer is done */
  long status, http_version, num_connects, local_port;
  curl_off_t total_us, pretransfer_us;
  char msg[160];          /* invalid_argument / internal message */
  char errbuf[CURL_ERROR_SIZE];
} Transfer;

/* One request()/perform()/start(): owns the easy handles of its transfers. */
struct Batch {
  Session *S;             /* set while attached: some transfer is in S->multi */
  Batch *prev, *next;     /* S->batches */
  int ref;                /* registry: {session=, anchored strings} then {results=} */
  int released;           /* closed: C resources freed, methods answer "closed" */
  int have_results;
  int building;           /* results() is reading t[] while allocating */
  int close_requested;    /* close() called meanwhile (by a finalizer): done after */
  size_t n, pending;      /* pending: transfers in the multi handle, unfinished */
  Transfer t[1];
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  Transfer *t = (Transfer *)ud;
  size_t n = size * nmemb;
  size_t limit = (size_t)t->max_body;
  if (n == 0) return 0;
  if (n > limit - t->body.len) { t->body_too_large = 1; return 0; }
  if (n > t->body.cap - t->body.len) {
    /* Grow as bytes arrive (doubling), and never past an announced length,
     * so that the last step is exact; an announced length alone reserves
     * nothing (a peer could announce max_body and send one byte). */
    size_t grow_limit = limit;
    curl_off_t cl = -1;
    if (curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK && cl > 0 &&
        (curl_off_t)(t->body.len + n) <= cl && (size_t)cl < grow_limit)
      grow_limit = (size_t)cl;
    if (!buf_reserve(&t->body, t->body.len + n, grow_limit)) { t->oom = 1; return 0; }
  }
  memcpy(t->body.p + t->body.len, ptr, n);
  t->body.len += n;
  return n;
}

/* 1 when the line (with its line end) holds a CR that does not end it, or
 * a NUL. libcurl refuses a CR before the colon itself, not after it. */
static int bad_line(const char *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (p[i] == '\0' || (p[i] == '\r' && !(i + 2 == n && p[i + 1] == '\n'))) return 1;
  return 0;
}

/* The status code of a status line ("HTTP/1.1 200 OK", "HTTP/2 204"); 0 if
 * there is none. */
static int status_code(const char *p, size_t n) {
  size_t i = 5;
  while (i < n && p[i] != ' ') i++;
  if (i + 3 >= n) return 0;
  if (p[i + 1] < '0' || p[i + 1] > '9' || p[i + 2] < '0' || p[i + 2] > '9' || p[i + 3] < '0' || p[i + 3] > '9') return 0;
  return (p[i + 1] - '0') * 100 + (p[i + 2] - '0') * 10 + (p[i + 3] - '0');
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud) {
  Transfer *t = (Transfer *)ud;
  size_t n = size * nmemb;
  Buf *dst;
  if (bad_line(ptr, n)) { t->bad_header = 1; return 0; }
  /* A status line starts a new response (1xx interim ones come first): keep
   * only the headers of the last one. After the final header block, every
   * line is a trailer, whatever it looks like. */
  if (t->hstate != H_TRAILERS && n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
    int code = status_code(ptr, n);
    t->hdr.len = 0;
    t->headers_complete = 0;
    t->interim = code >= 100 && code < 200 && code != 101;
    t->hstate = H_FIELDS;
    return n;
  }
  if ((n == 2 && ptr[0] == '\r' && ptr[1] == '\n') || (n == 1 && ptr[0] == '\n')) {
    if (t->hstate == H_FIELDS) {
      t->headers_complete = 1;
      t->hstate = t->interim ? H_STATUS : H_TRAILERS;
    }
    return n;
  }
  dst = t->hstate == H_TRAILERS ? &t->trl : &t->hdr;
  if (n > MAX_HEADER_BYTES - t->hdr.len - t->trl.len) { t->headers_too_large = 1; return 0; }
  if (!buf_reserve(dst, dst->len + n, MAX_HEADER_BYTES)) { t->oom = 1; return 0; }
  memcpy(dst->p + dst->len, ptr, n);
  dst->len += n;
  return n;
}

static void transfer_release(Transfer *t) {
  if (t->easy) { curl_easy_cleanup(t->easy); t->easy = NULL; }
  if (t->headers) { curl_slist_free_all(t->headers); t->headers = NULL; }
  buf_free(&t->body);
  buf_free(&t->hdr);
  buf_free(&t->trl);
  prv_headers_free(&t->ph);
  prv_headers_free(&t->pt);
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

static int set_internal(Transfer *t, const char *msg);

/* ---- the transfer engine (no Lua in here) --------------------------------- */

/* Sockets libcurl opens for connections: counted when curl_multi_fdset
 * cannot report them (numbered >= FD_SETSIZE), so wait_info can say so. */
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a) {
  Session *S = (Session *)ud;
  curl_socket_t fd = socket(a->family, a->socktype, a->protocol);
  (void)purpose;
  if (fd != CURL_SOCKET_BAD && fd >= FD_SETSIZE) S->wide_fds++;
  return fd;
}

static int on_close_socket(void *ud, curl_socket_t fd) {
  Session *S = (Session *)ud;
  if (fd >= FD_SETSIZE && S->wide_fds > 0) S->wide_fds--;
  return close(fd);
}

static void batch_unlink(Batch *B) {
  Session *S = B->S;
  if (S == NULL) return;
  if (B->prev) B->prev->next = B->next;
  else S->batches = B->next;
  if (B->next) B->next->prev = B->prev;
  B->prev = B->next = NULL;
  B->S = NULL;
}

/* Take t out of the multi handle (it finished, failed or is being stopped);
 * the batch leaves the session's list with its last transfer. */
static void transfer_out(Session *S, Transfer *t) {
  Batch *B = t->batch;
  curl_multi_remove_handle(S->multi, t->easy);
  curl_easy_setopt(t->easy, CURLOPT_SHARE, NULL);
  t->in_multi = 0;
  if (B->pending > 0) B->pending--;
  if (B->pending == 0) batch_unlink(B);
}

static void transfer_info(Session *S, Transfer *t) {
  CURL *e = t->easy;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &t->status);
  curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &t->http_version);
  curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &t->num_connects);
  curl_easy_getinfo(e, CURLINFO_LOCAL_PORT, &t->local_port);
  curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &t->total_us);
  curl_easy_getinfo(e, CURLINFO_PRETRANSFER_TIME_T, &t->pretransfer_us);
  S->connections += t->num_connects;
}

/* Stop an unfinished transfer (cancel, session close): read what it did so
 * far (pre-transfer time decides request_sent), then take it out. */
static void transfer_stop(Session *S, Transfer *t, int why) {
  if (!t->in_multi) return;
  transfer_info(S, t);
  t->stopped = why;
  t->done = 1;
  transfer_out(S, t);
}

/* The transfer failed inside libcurl's multi machinery (not its own error). */
static void transfer_fail(Session *S, Transfer *t, const char *msg) {
  if (!t->in_multi) return;
  set_internal(t, msg);
  transfer_out(S, t);
}

/* Route every finished transfer of the multi handle to its own batch. */
static void drain(Session *S) {
  CURLMsg *m;
  int msgs;
  while ((m = curl_multi_info_read(S->multi, &msgs)) != NULL) {
    char *priv = NULL;
    Transfer *t;
    if (m->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
    t = (Transfer *)(void *)priv;
    if (t == NULL || !t->in_multi || t->done) continue;
    t->result = m->data.result;
    t->done = 1;
    transfer_info(S, t);
    transfer_out(S, t);
  }
}

/* Take every unfinished transfer of B out of its session's multi handle. */
static void batch_detach(Batch *B, int why) {
  Session *S = B->S;
  size_t i;
  if (S == NULL) return;
  for (i = 0; i < B->n && B->S != NULL; i++) transfer_stop(S, &B->t[i], why);
  batch_unlink(B);   /* no-op unless a transfer was not in the multi after all */
}

static void batch_fail(Batch *B, const char *msg) {
  Session *S = B->S;
  size_t i;
  if (S == NULL) return;
  for (i = 0; i < B->n && B->S != NULL; i++) transfer_fail(S, &B->t[i], msg);
  batch_unlink(B);
}

/* Drive the session's multi handle on behalf of B: perform, then (while B is
 * unfinished) at most one wait of up to wait_ms, bounded by libcurl's own
 * timer, then perform again. Other batches' transfers progress too. Returns
 * 1 when every transfer of B is done. */
static int batch_drive(Batch *B, long wait_ms) {
  Session *S = B->S;
  int running = 0;
  CURLMcode mc;
  if (S == NULL || B->pending == 0) return 1;
  mc = curl_multi_perform(S->multi, &running);
  if (mc == CURLM_OK) {
    drain(S);
    if (B->pending == 0) return 1;
    if (running > 0 && wait_ms > 0) {
      /* Wait no longer than libcurl asks: a transfer queued for a free
       * connection is only woken by its own timer (seen stalling 1 s). */
      long t = -1;
      if (curl_multi_timeout(S->multi, &t) == CURLM_OK && t >= 0 && t < wait_ms) wait_ms = t;
      if (wait_ms > 0) mc = curl_multi_poll(S->multi, NULL, 0, (int)wait_ms, NULL);
      if (mc == CURLM_OK) mc = curl_multi_perform(S->multi, &running);
      if (mc == CURLM_OK) drain(S);
    }
  }
  if (mc != CURLM_OK) batch_fail(B, curl_multi_strerror(mc));
  else if (B->pending > 0 && running == 0) batch_fail(B, "transfer did not finish");
  return B->pending == 0;
}

/* ---- session ------------------------------------------------------------- */

static void session_release(Session *S) {
  int i;
  while (S->batches) batch_detach(S->batches, STOP_CLOSED);
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
  /* The body's framing is the core's: a caller's Content-Length or
   * Transfer-Encoding would desynchronise a kept-alive connection. */
  if (ieq(name, nlen, "content-length") || ieq(name, nlen, "transfer-encoding")) {
    snprintf(msg, sizeof msg, "header %d: %s is set by the core from the body", k,
             ieq(name, nlen, "content-length") ? "Content-Length" : "Transfer-Encoding");
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
  EASY_OK(curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket));
  EASY_OK(curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, (void *)S));
  EASY_OK(curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket));
  EASY_OK(curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, (void *)S));
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

/* Hand B's prepared transfers to the session's multi handle. No Lua call. */
static void batch_attach(Session *S, Batch *B) {
  size_t i;
  for (i = 0; i < B->n; i++) {
    Transfer *t = &B->t[i];
    if (t->state != T_READY) continue;
    if (curl_easy_setopt(t->easy, CURLOPT_SHARE, S->share) != CURLE_OK ||
        curl_multi_add_handle(S->multi, t->easy) != CURLM_OK) {
      curl_easy_setopt(t->easy, CURLOPT_SHARE, NULL);
      set_internal(t, "cannot add the transfer to the multi handle");
      continue;
    }
    t->in_multi = 1;
    t->added = 1;
    B->pending++;
    S->requests++;
  }
  if (B->pending > 0) {
    B->S = S;
    B->prev = NULL;
    B->next = S->batches;
    if (S->batches) S->batches->prev = B;
    S->batches = B;
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

/* header_list / trailer_list: {{"Name", "value"}, ...} in arrival order.
 * Everything is read from h (C memory the transfer owns, which no
 * finalizer can touch), so the Lua allocations here are harmless. */
static void push_field_list(lua_State *L, const prv_headers *h) {
  size_t i;
  lua_createtable(L, (int)h->nfields, 0);
  for (i = 0; i < h->nfields; i++) {
    const prv_field *f = &h->fields[i];
    lua_createtable(L, 2, 0);
    lua_pushlstring(L, h->text + f->name.off, f->name.len);
    lua_rawseti(L, -2, 1);
    lua_pushlstring(L, h->text + f->value.off, f->value.len);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, (int)i + 1);
  }
}

/* headers / trailers: lower-case name -> values joined (by the parser, in
 * one pass: no string is built per repeat). */
static void push_field_map(lua_State *L, const prv_headers *h) {
  size_t i;
  lua_createtable(L, 0, (int)h->nmerged);
  for (i = 0; i < h->nmerged; i++) {
    const prv_field *f = &h->merged[i];
    lua_pushlstring(L, h->text + f->name.off, f->name.len);
    lua_pushlstring(L, h->text + f->value.off, f->value.len);
    lua_rawset(L, -3);
  }
  prv_setmetatable(L, HEADERS_MT);
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

/* Faults of the peer's response that libcurl reports under codes meaning
 * something else elsewhere (libcurl 7.88's messages): sets kind and msg and
 * returns 1, or returns 0. */
static int peer_fault(const Transfer *t, const char **kind, char *msg, size_t len) {
  const char *eb = t->errbuf;
  if (t->result == CURLE_RECV_ERROR && strncmp(eb, "Too large response headers", 26) == 0) {
    *kind = "too_large";   /* its cap over all header lines of the transfer */
    snprintf(msg, len, "response headers exceed %lu bytes", (unsigned long)MAX_HEADER_BYTES);
  } else if (t->result == CURLE_OUT_OF_MEMORY) {
    *kind = "too_large";   /* how it reports a header line over its 100 KiB cap */
    snprintf(msg, len, "a response header line exceeds 100 KiB");
  } else if (t->result == CURLE_BAD_FUNCTION_ARGUMENT) {
    *kind = "protocol";    /* its header store refused a line (a bare CR in a name, ...) */
    snprintf(msg, len, "malformed response header line (%s)", eb[0] ? eb : curl_easy_strerror(t->result));
  } else if (t->result == CURLE_RECV_ERROR && strstr(eb, " in chunked-encoding") != NULL &&
             strstr(eb, "Out of memory") == NULL) {
    *kind = "protocol";    /* a malformed chunk or trailer */
    snprintf(msg, len, "%s", eb);
  } else {
    return 0;
  }
  return 1;
}

/* Push an error entry for a transfer that ran: what it did so far. */
static void push_transfer_err(lua_State *L, const Transfer *t, const char *kind, const char *msg, int code, int sent) {
  push_err(L, kind, msg, code, sent);
  if (t->status > 0) {
    lua_pushinteger(L, t->status);
    lua_setfield(L, -2, "status");
  }
  lua_pushinteger(L, t->num_connects);
  lua_setfield(L, -2, "new_connections");
  lua_pushnumber(L, (lua_Number)t->total_us / 1e6);
  lua_setfield(L, -2, "time");
}

/* Pushes the response or the error of one transfer; returns 1 for an error. */
static int push_entry(lua_State *L, Transfer *t) {
  char msg[CURL_ERROR_SIZE + 64];
  const char *kind, *why = NULL, *part;
  int early, sent, rc;
  size_t pos = 0;
  if (t->state == T_INVALID) { push_err(L, "invalid_argument", t->msg, -1, 0); return 1; }
  if (t->state == T_INTERNAL) { push_err(L, "internal", t->msg, -1, t->added); return 1; }
  if (t->state != T_READY) { push_err(L, "internal", "request not prepared", -1, 0); return 1; }

  /* Taken out unfinished (cancel, session close): sent once it had passed
   * libcurl's pre-transfer point (conservatively: maybe only partly). */
  if (t->stopped != STOP_NONE) {
    if (t->stopped == STOP_CLOSED) push_err(L, "closed", "session closed before the transfer finished", -1, t->added && t->pretransfer_us > 0);
    else push_err(L, "aborted", "transfer cancelled", -1, t->added && t->pretransfer_us > 0);
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
    } else if (t->bad_header) {
      kind = "protocol";
      snprintf(msg, sizeof msg, "a response header line holds a bare CR or a NUL");
    } else if (t->oom) {
      kind = "internal";
      snprintf(msg, sizeof msg, "out of memory");
    } else if (!peer_fault(t, &kind, msg, sizeof msg)) {
      snprintf(msg, sizeof msg, "%s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(t->result));
    }
    /* Not sent: DNS and connect failures always; TLS handshake failures and
     * timeouts only when the transfer never reached its pre-transfer point. */
    if (strcmp(kind, "dns") == 0 || strcmp(kind, "connect") == 0) sent = 0;
    else if ((early || strcmp(kind, "timeout") == 0) && t->pretransfer_us == 0) sent = 0;
    else sent = 1;
    push_transfer_err(L, t, kind, msg, (int)t->result, sent);
    return 1;
  }

  /* The header and trailer blocks, parsed in C before any Lua allocation */
  part = "headers";
  rc = prv_headers_parse(t->hdr.p, t->hdr.len, &t->ph, &pos, &why);
  if (rc == 0) {
    part = "trailers";
    rc = prv_headers_parse(t->trl.p, t->trl.len, &t->pt, &pos, &why);
  }
  if (rc != 0) {
    if (rc == -2) snprintf(msg, sizeof msg, "out of memory");
    else snprintf(msg, sizeof msg, "malformed response %s: %s", part, why);
    push_transfer_err(L, t, rc == -2 ? "internal" : "protocol", msg, -1, 1);
    return 1;
  }
  buf_free(&t->hdr);
  buf_free(&t->trl);

  lua_createtable(L, 0, 12);
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
  push_field_list(L, &t->ph);
  lua_setfield(L, -2, "header_list");
  push_field_map(L, &t->ph);
  lua_setfield(L, -2, "headers");
  push_field_list(L, &t->pt);
  lua_setfield(L, -2, "trailer_list");
  push_field_map(L, &t->pt);
  lua_setfield(L, -2, "trailers");
  prv_headers_free(&t->ph);
  prv_headers_free(&t->pt);
  return 0;
}

/* ---- batches ------------------------------------------------------------- */

/* The one idempotent closer of a batch (__gc, __close, close(), and the end
 * of request()/perform()): takes its unfinished transfers out of the multi
 * handle if the session is still open, frees every C resource, drops the
 * registry reference. */
static void batch_close(lua_State *L, Batch *B) {
  size_t i;
  batch_detach(B, STOP_ABORTED);
  for (i = 0; i < B->n; i++) transfer_release(&B->t[i]);
  if (B->ref != LUA_NOREF && B->ref != LUA_REFNIL) luaL_unref(L, LUA_REGISTRYINDEX, B->ref);
  B->ref = LUA_NOREF;
  B->released = 1;
}

static int batch_gc(lua_State *L) {
  Batch *B = (Batch *)luaL_checkudata(L, 1, BATCH_MT);
  batch_close(L, B);
  return 0;
}

/* Session at index 1, the request (single) or the list at index 2. Pushes the
 * batch userdata and its anchor table; returns the batch, or NULL when
 * reading the requests (metamethods) closed the session. Invalid entries are
 * kept in place; the valid ones are in the multi handle, not yet performed. */
static Batch *batch_new(lua_State *L, Session *S, int single) {
  size_t n, i, size;
  Batch *B;
  int anchor;
  n = single ? 1 : (size_t)prv_rawlen(L, 2);
  if (n > 100000) luaL_error(L, "too many requests in one perform (%d)", (int)n);
  size = offsetof(Batch, t) + (n ? n : 1) * sizeof(Transfer);
  B = (Batch *)prv_newuserdata(L, size);
  memset(B, 0, size);
  B->ref = LUA_NOREF;
  B->n = n;
  for (i = 0; i < n; i++) B->t[i].batch = B;
  prv_setmetatable(L, BATCH_MT);
  lua_createtable(L, (int)(3 * n), 1);
  anchor = lua_gettop(L);
  lua_pushvalue(L, 1);
  lua_setfield(L, anchor, "session");       /* the batch keeps its session alive */
  lua_pushvalue(L, anchor);
  B->ref = luaL_ref(L, LUA_REGISTRYINDEX);

  for (i = 0; i < n; i++) {
    if (single) lua_pushvalue(L, 2);
    else lua_rawgeti(L, 2, (int)i + 1);
    prepare(L, S, &B->t[i], lua_gettop(L), anchor, (int)i + 1);
    lua_settop(L, anchor);
  }
  /* Reading the requests may have run Lua code (metamethods) that closed
   * the session. */
  if (S->closed) return NULL;
  batch_attach(S, B);
  return B;
}

/* Push the list of entries (B done); frees each transfer as it goes. */
static void push_results(lua_State *L, Batch *B) {
  size_t i;
  int out;
  lua_createtable(L, (int)B->n, 0);
  out = lua_gettop(L);
  for (i = 0; i < B->n; i++) {
    push_entry(L, &B->t[i]);
    lua_rawseti(L, out, (int)i + 1);
    transfer_release(&B->t[i]);
  }
}

/* request()/perform(): start, step until done, results. single: the request
 * table is at index 2; else the list. */
static int execute(lua_State *L, int single) {
  Session *S = (Session *)luaL_checkudata(L, 1, SESSION_MT);
  Batch *B;

  if (S->closed) return push_closed(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  B = batch_new(L, S, single);              /* 3: batch, 4: anchor */
  if (B == NULL) { batch_close(L, (Batch *)lua_touserdata(L, 3)); return push_closed(L); }
  while (!batch_drive(B, 1000)) {}

  if (single) {
    int failed = push_entry(L, &B->t[0]);
    batch_close(L, B);
    if (failed) {
      lua_pushnil(L);
      lua_insert(L, -2);
      return 2;
    }
    return 1;
  }
  push_results(L, B);
  batch_close(L, B);
  return 1;
}

static int session_request(lua_State *L) { return execute(L, 1); }
static int session_perform(lua_State *L) { return execute(L, 0); }

/* session:start(list) -> batch: the transfers are in the multi handle and
 * have had one curl_multi_perform; nothing waits. */
static int session_start(lua_State *L) {
  Session *S = (Session *)luaL_checkudata(L, 1, SESSION_MT);
  Batch *B;
  if (S->closed) return push_closed(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  B = batch_new(L, S, 0);                   /* 3: batch, 4: anchor */
  if (B == NULL) { batch_close(L, (Batch *)lua_touserdata(L, 3)); return push_closed(L); }
  batch_drive(B, 0);
  lua_settop(L, 3);
  return 1;
}

static Batch *check_batch(lua_State *L) {
  return (Batch *)luaL_checkudata(L, 1, BATCH_MT);
}

static int batch_closed(lua_State *L) {
  lua_pushnil(L);
  push_err(L, "closed", "batch is closed", -1, 0);
  return 2;
}

static int batch_done(const Batch *B) { return B->S == NULL || B->pending == 0; }

/* batch:step([timeout_s]) -> true when all of this batch's transfers are done */
static int batch_step(lua_State *L) {
  Batch *B = check_batch(L);
  double timeout = 0.0;
  if (!lua_isnoneornil(L, 2)) {
    timeout = (double)luaL_checknumber(L, 2);
    if (!(timeout >= 0.0)) return luaL_argerror(L, 2, "timeout must be a number >= 0");
  }
  if (B->released) return batch_closed(L);
  lua_pushboolean(L, batch_drive(B, timeout > 0.0 ? seconds_to_ms(timeout) : 0));
  return 1;
}

/* batch:wait_info() -> {fds = {{fd=, read=, write=}, ...}, timeout = s, complete = b} */
static int batch_wait_info(lua_State *L) {
  Batch *B = check_batch(L);
  Session *S;
  fd_set rd, wr, ex;
  int maxfd = -1, fd, k = 0, complete = 1;
  long ms = -1;
  double timeout;
  if (B->released) return batch_closed(L);
  FD_ZERO(&rd);
  FD_ZERO(&wr);
  FD_ZERO(&ex);
  S = B->S;
  if (!batch_done(B)) {
    if (curl_multi_fdset(S->multi, &rd, &wr, &ex, &maxfd) != CURLM_OK) maxfd = -1;
    if (curl_multi_timeout(S->multi, &ms) != CURLM_OK) ms = -1;
    complete = S->wide_fds == 0;
  } else {
    ms = 0;
  }
  /* No timer (-1) or a long one: come back within 1 s anyway, as perform
   * does; when some socket could not be listed, within 10 ms. */
  if (ms < 0 || ms > 1000) ms = 1000;
  if (!complete && ms > 10) ms = 10;
  timeout = (double)ms / 1000.0;
  /* Everything libcurl said is copied: Lua allocations may run finalizers. */
  lua_createtable(L, 0, 3);
  lua_newtable(L);
  for (fd = 0; fd <= maxfd && fd < FD_SETSIZE; fd++) {
    int r = FD_ISSET(fd, &rd) != 0, w = FD_ISSET(fd, &wr) != 0;
    if (!r && !w && !FD_ISSET(fd, &ex)) continue;
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, fd);
    lua_setfield(L, -2, "fd");
    lua_pushboolean(L, r);
    lua_setfield(L, -2, "read");
    lua_pushboolean(L, w);
    lua_setfield(L, -2, "write");
    lua_rawseti(L, -2, ++k);
  }
  lua_setfield(L, -2, "fds");
  lua_pushnumber(L, (lua_Number)timeout);
  lua_setfield(L, -2, "timeout");
  lua_pushboolean(L, complete);
  lua_setfield(L, -2, "complete");
  return 1;
}

/* batch:results() -> the list perform returns; nil, err until done */
static int batch_results(lua_State *L) {
  Batch *B = check_batch(L);
  if (B->released) return batch_closed(L);
  if (!batch_done(B)) {
    lua_pushnil(L);
    push_err(L, "not_finished", "not finished: step() until it returns true", -1, 0);
    return 2;
  }
  if (!B->have_results) {
    int old;
    /* Building the tables allocates, and a finalizer may call close() on
     * this batch meanwhile: that close waits until t[] is no longer read. */
    B->building = 1;
    push_results(L, B);
    B->building = 0;
    /* keep only the results: request strings and the session may go */
    old = B->ref;
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "results");
    B->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    B->have_results = 1;
    if (old != LUA_NOREF && old != LUA_REFNIL) luaL_unref(L, LUA_REGISTRYINDEX, old);
    if (B->close_requested) batch_close(L, B);
    return 1;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, B->ref);
  lua_getfield(L, -1, "results");
  return 1;
}

/* batch:cancel() -> true: unfinished transfers end as "aborted" errors */
static int batch_cancel(lua_State *L) {
  Batch *B = check_batch(L);
  batch_detach(B, STOP_ABORTED);
  lua_pushboolean(L, 1);
  return 1;
}

static int batch_close_m(lua_State *L) {
  Batch *B = check_batch(L);
  if (B->building) B->close_requested = 1;
  else batch_close(L, B);
  lua_pushboolean(L, 1);
  return 1;
}

static int batch_tostring(lua_State *L) {
  Batch *B = check_batch(L);
  if (B->released) lua_pushliteral(L, "provision.batch (closed)");
  else if (batch_done(B)) lua_pushfstring(L, "provision.batch (%p, done)", (void *)B);
  else lua_pushfstring(L, "provision.batch (%p, %d pending)", (void *)B, (int)B->pending);
  return 1;
}

/* ---- registration --------------------------------------------------------- */

void prv_open_http(lua_State *L) {
  static const luaL_Reg methods[] = {
    { "request", session_request }, { "perform", session_perform },
    { "start", session_start },     { "close", session_close },
    { "stats", session_stats },     { NULL, NULL },
  };
  static const luaL_Reg batch_methods[] = {
    { "step", batch_step },       { "wait_info", batch_wait_info },
    { "results", batch_results }, { "cancel", batch_cancel },
    { "close", batch_close_m },   { NULL, NULL },
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
  if (luaL_newmetatable(L, BATCH_MT)) {
    lua_newtable(L);
    prv_setfuncs(L, batch_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, batch_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, batch_gc);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, batch_tostring);
    lua_setfield(L, -2, "__tostring");
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
