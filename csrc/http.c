/* http.c: the HTTP engine of provision.core on libcurl (docs/core-api.md,
 * "HTTP engine").
 *
 * A session userdata owns one multi handle (connection cache: keep-alive),
 * one share handle (DNS cache and TLS sessions) and a pool of idle transfer
 * units. A unit (Transfer) is one easy handle with the options that never
 * change already set, plus the buffers of one response; a request takes a
 * unit from the pool, sets only what differs from the unit's last use, and
 * gives it back once its result has been built. A unit whose request set
 * its own string options (ca_file, proxy, ...) is freed instead of pooled.
 *
 * Units run in a "group", the owner of some transfers in the multi handle:
 *  - a batch userdata: the units of one request()/perform()/start();
 *    perform() is start + step until done + results; start() hands the batch
 *    to the caller, who drives it with step()/wait_info();
 *  - a stream userdata (session:stream()): a long-lived group that requests
 *    are added to one at a time and that hands back, from one poll(), the
 *    ones that ended (the bulk engine's interface).
 * Several groups may be live on one session: whichever one drives the multi
 * handle, a finished transfer is routed to its own group through
 * CURLINFO_PRIVATE (its unit, which points back at its group).
 *
 * Rules this file keeps:
 *  - No Lua call ever happens inside a libcurl call: all Lua input of a
 *    request is read before curl_multi_add_handle, the write/header
 *    callbacks only append to malloc'd buffers (and enforce the size caps
 *    there), and Lua tables are built only for transfers already removed
 *    from the multi handle. Between calls transfers stay in the multi
 *    handle; the Lua strings libcurl does not copy (POSTFIELDS) are anchored
 *    in a table the group holds through a registry reference (or on the C
 *    stack for the length of a blocking call), which also keeps the session
 *    alive while the group is.
 *  - Every C resource is owned by a userdata created (with its metatable)
 *    before the resource: a unit belongs to the session's pool, or to the
 *    batch or stream using it. A Lua error anywhere (bad argument, out of
 *    memory) therefore leaks nothing: __gc frees it.
 *  - A session knows its live groups (those with transfers in its multi
 *    handle); closing the session first takes their transfers out (they end
 *    as "closed" errors) and detaches them, so no group keeps a dangling
 *    pointer. A group's __gc/__close (one idempotent closer) takes its own
 *    transfers out of the multi handle if the session is still open.
 *  - Finalizers may run at any Lua allocation: no list of transfers or
 *    groups is walked across a Lua allocation, except under a guard (a
 *    batch's `building`, a stream's `busy`) that defers a close to the end.
 *  - The only global is the pthread_once guard around curl_global_init.
 */
#include "core.h"
#include "prv_pure.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SESSION_MT "provision.session"
#define BATCH_MT "provision.batch"
#define STREAM_MT "provision.stream"
#define HEADERS_MT "provision.headers"
#define RESPONSE_MT "provision.response"
#define ERROR_MT "provision.http_error"
/* registry: response -> what its lazy fields are built from (weak keys): one
 * string, the raw header block, the effective URL, then a LazyInfo */
#define LAZY_KEY "provision.response_fields"

#define DEFAULT_CONNECT_TIMEOUT 10.0
#define DEFAULT_TIMEOUT 60.0
#define DEFAULT_MAX_BODY ((curl_off_t)64 * 1024 * 1024)
#define DEFAULT_MAX_CONNECTIONS 8
/* All header and trailer lines of the final response. libcurl 7.88 has the
 * same cap of its own over every header line of a transfer (interim
 * responses included), and one of 100 KiB per line. */
#define MAX_HEADER_BYTES ((size_t)300 * 1024)
#define MAX_METHOD_LEN 32
#define BODY_START ((size_t)16384)   /* first body buffer */
#define HEADER_START ((size_t)1024)  /* first header / trailer buffer */
#define KEEP_BODY ((size_t)16384)    /* a pooled unit keeps buffers up to these sizes */
#define KEEP_HEADER ((size_t)4096)
#define MAX_ORIGIN 200               /* longest URL prefix remembered by check_url */

/* ---- one-time global init ------------------------------------------------ */

static pthread_once_t g_init_once = PTHREAD_ONCE_INIT;
static CURLcode g_init_rc = CURLE_FAILED_INIT;

static void global_init(void) { g_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- settings ------------------------------------------------------------- */

/* The request line plus headers libcurl can build (1 MiB), less room for
 * the headers it adds itself (Host, Content-Length ...). */
#define REQUEST_HEAD_MAX 1000000

/* String settings: copied into the session, overridable per request. */
enum { S_CA_FILE, S_CA_PATH, S_CERT, S_KEY, S_KEY_PASSWORD, S_PROXY, S_USER_AGENT, S_COUNT };
static const struct { const char *name; CURLoption opt; } STR_OPTS[S_COUNT] = {
  { "ca_file", CURLOPT_CAINFO },  { "ca_path", CURLOPT_CAPATH },
  { "cert", CURLOPT_SSLCERT },    { "key", CURLOPT_SSLKEY },
  { "key_password", CURLOPT_KEYPASSWD }, { "proxy", CURLOPT_PROXY },
  { "user_agent", CURLOPT_USERAGENT },
};

typedef struct Session Session;
typedef struct Group Group;
typedef struct Transfer Transfer;

/* What owns some transfers in a session's multi handle: a batch or a stream. */
struct Group {
  Session *S;             /* set while attached: some transfer is in S->multi */
  Group *prev, *next;     /* S->groups */
  size_t pending;         /* transfers in the multi handle, unfinished */
  int is_stream;
};

struct Session {
  CURLM *multi;
  CURLSH *share;
  int closed;
  Group *groups;          /* live groups: their unfinished transfers are in multi */
  long wide_fds;          /* open libcurl sockets numbered >= FD_SETSIZE (fdset cannot list them) */
  double connect_timeout, timeout;
  int verify;
  curl_off_t max_body;
  long max_connections;
  char *str[S_COUNT];
  lua_Integer requests, connections;   /* stats */
  Transfer *pool;         /* idle units (linked through next) */
  int npool, pool_cap;
  int ua_option;          /* a proxy may be used: CURLOPT_USERAGENT too, for its CONNECT */
  int env_proxy;          /* a proxy variable was set in the environment when the session began */
  char origin[MAX_ORIGIN];   /* "scheme://authority" of the last URL check_url accepted */
  size_t origin_len;
  int lazy_ref, rmt_ref;  /* registry refs: the LAZY_KEY table, RESPONSE_MT (array slots: cheap to read) */
};

/* ---- growable byte buffer ------------------------------------------------- */

typedef struct { char *p; size_t len, cap; } Buf;

/* Make room for `need` bytes, growing geometrically from `start` but never
 * past `limit` (need <= limit is the caller's promise). 0 on allocation
 * failure. */
static int buf_reserve(Buf *b, size_t need, size_t limit, size_t start) {
  size_t ncap;
  char *np;
  if (need <= b->cap) return 1;
  ncap = b->cap ? b->cap : start;
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

/* ---- one transfer unit ---------------------------------------------------- */

enum { T_NONE, T_INVALID, T_INTERNAL, T_CLOSED, T_READY };
enum { H_STATUS, H_FIELDS, H_TRAILERS };  /* on_header: expecting a status line, header lines, trailers */
enum { STOP_NONE, STOP_ABORTED, STOP_CLOSED };  /* why a transfer was taken out unfinished */
enum { M_GET, M_OTHER };  /* the method options last set on a unit's easy handle */

struct Transfer {
  /* Kept from one use to the next (the pooled part). */
  Session *home;          /* whose pool it returns to (NULL: freed after use) */
  CURL *easy;
  Transfer *next;         /* the pool, or a stream's queue of finished units */
  int custom;             /* the request set its own string options: not pooled again */
  /* options as last set on easy, so that a reuse sets only what differs */
  long o_connect_ms, o_timeout_ms;
  int o_verify, o_fresh, o_method;
  curl_off_t o_maxfile;
  Buf body, hdr, trl;     /* body, header lines, trailer lines (chunked, HTTP/2): capacity kept */
  /* The request header lines of the last use: the lines a request shares
   * with it (the same operation again) keep their nodes. */
  struct curl_slist *headers;
  struct curl_slist *o_headers;   /* the list CURLOPT_HTTPHEADER points at */
  char errbuf[CURL_ERROR_SIZE];
  /* Reset for every use from here on (unit_take). */
  Group *group;
  size_t slot;            /* a stream's anchor slot (1-based) */
  struct curl_slist *hlast;   /* prepare: the last line of this request so far */
  struct curl_slist *hnext;   /* prepare: the next line of the last use's list to compare */
  size_t hbytes;          /* prepare: bytes of this request's header lines so far (+2 each) */
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
  prv_headers ph, pt;     /* hdr and trl parsed, while results are built */
  /* info, read once the transfer is done */
  long status, http_version, num_connects, local_port;
  curl_off_t total_us, pretransfer_us;
  char msg[160];          /* invalid_argument / internal message */
};

/* The numbers of a response's lazy fields, at the end of its LAZY_KEY
 * string (after the header block and the URL; read with memcpy). */
typedef struct {
  double time;
  long http_version, num_connects, local_port;
  size_t hdr_len, url_len;
  int nfields;            /* spans stored (the quick path's fields), or -1 */
} LazyInfo;

/* A response's lazy source string, unpacked (pointers into it):
 * [header block][effective URL][nfields x 4 uint16_t spans][LazyInfo]. The
 * spans (name offset, name length, value offset, value length) are the
 * prv_headers_split fields of a block under 64 KiB, so that neither a
 * first read of `headers` nor core.header splits the block again. */
typedef struct {
  const char *hdr, *url, *spans;
  LazyInfo info;
} LazySrc;

#define SPAN_BYTES (4 * sizeof(uint16_t))

#define USE_PART offsetof(Transfer, group)

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
    if (!buf_reserve(&t->body, t->body.len + n, grow_limit, BODY_START)) { t->oom = 1; return 0; }
  }
  memcpy(t->body.p + t->body.len, ptr, n);
  t->body.len += n;
  return n;
}

/* 1 when the line (with its line end) holds a CR that does not end it, or
 * a NUL. libcurl refuses a CR before the colon itself, not after it. */
static int bad_line(const char *p, size_t n) {
  const char *cr;
  if (n == 0) return 0;
  if (memchr(p, '\0', n) != NULL) return 1;
  /* the first CR is the only one allowed, when the line ends with it + LF
   * (nothing can follow that pair): memchr rather than a byte loop */
  cr = (const char *)memchr(p, '\r', n);
  return cr != NULL && !((size_t)(cr - p) + 2 == n && cr[1] == '\n');
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
  if (!buf_reserve(dst, dst->len + n, MAX_HEADER_BYTES, HEADER_START)) { t->oom = 1; return 0; }
  memcpy(dst->p + dst->len, ptr, n);
  dst->len += n;
  return n;
}

static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a);
static int on_close_socket(void *ud, curl_socket_t fd);

static long seconds_to_ms(double s) {
  double ms = s * 1000.0;
  if (s > 0 && ms < 1.0) return 1;
  if (ms > 2147483647.0) return 2147483647L;
  return (long)(ms + 0.5);
}

#define SET_OK(call) do { if ((call) != CURLE_OK) return 0; } while (0)

/* The options every use shares, and the session's defaults for the others,
 * on a new easy handle. 0 when libcurl refuses one. */
static int unit_setup(Session *S, Transfer *t) {
  CURL *e = t->easy;
  int i;
  SET_OK(curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)t));
  SET_OK(curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf));
  SET_OK(curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L));
  SET_OK(curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https"));
  SET_OK(curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"));
  SET_OK(curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L));
  SET_OK(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body));
  SET_OK(curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)t));
  SET_OK(curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header));
  SET_OK(curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)t));
  SET_OK(curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L));
  SET_OK(curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L));
  SET_OK(curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket));
  SET_OK(curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, (void *)S));
  SET_OK(curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket));
  SET_OK(curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, (void *)S));
  for (i = 0; i < S_COUNT; i++) {
    if (i == S_USER_AGENT && !S->ua_option) continue;   /* sent as a header (prepare) */
    if (S->str[i] != NULL) SET_OK(curl_easy_setopt(e, STR_OPTS[i].opt, S->str[i]));   /* libcurl copies */
    else if (i == S_PROXY && !S->env_proxy) {
      /* No proxy given and none in the environment when the session began:
       * "" saves libcurl looking the variables up again for every transfer,
       * and an empty no-proxy list its reading no_proxy and NO_PROXY (which
       * only matter with a proxy: a request's own proxy puts them back). */
      SET_OK(curl_easy_setopt(e, CURLOPT_PROXY, ""));
      SET_OK(curl_easy_setopt(e, CURLOPT_NOPROXY, ""));
    } else if (i == S_CA_PATH) {
      /* Debian's libcurl has a built-in CA folder, and while one is set it
       * skips its cached CA store: every new TLS connection then re-reads
       * the whole bundle (~20 ms of CPU). The bundle holds the same roots. */
      SET_OK(curl_easy_setopt(e, CURLOPT_CAPATH, NULL));
    }
  }
  t->o_connect_ms = seconds_to_ms(S->connect_timeout);
  t->o_timeout_ms = seconds_to_ms(S->timeout);
  t->o_verify = S->verify;
  t->o_maxfile = S->max_body > 0 ? S->max_body : 0;
  t->o_fresh = 0;
  t->o_method = M_GET;
  SET_OK(curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, t->o_connect_ms));
  SET_OK(curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, t->o_timeout_ms));
  SET_OK(curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, t->o_verify ? 1L : 0L));
  SET_OK(curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, t->o_verify ? 2L : 0L));
  SET_OK(curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, t->o_maxfile));
  return 1;
}

static void unit_destroy(Transfer *t) {
  if (t->easy) curl_easy_cleanup(t->easy);
  if (t->headers) curl_slist_free_all(t->headers);
  buf_free(&t->body);
  buf_free(&t->hdr);
  buf_free(&t->trl);
  prv_headers_free(&t->ph);
  prv_headers_free(&t->pt);
  free(t);
}

/* A unit with no easy handle, for an answer decided without libcurl
 * (closed session, no memory for a handle). NULL when out of memory. */
static Transfer *unit_bare(void) {
  Transfer *t = (Transfer *)calloc(1, sizeof *t);
  return t;
}

static int pool_cap(const Session *S) {
  long cap = 2 * S->max_connections + 16;
  return cap > 4096 ? 4096 : (int)cap;
}

/* A unit ready for one use: from the pool, else a new one. NULL when libcurl
 * or malloc fails. No Lua call. */
static Transfer *unit_take(Session *S) {
  Transfer *t = S->pool;
  if (t != NULL) {
    S->pool = t->next;
    S->npool--;
  } else {
    t = (Transfer *)calloc(1, sizeof *t);
    if (t == NULL) return NULL;
    t->home = S;
    t->easy = curl_easy_init();
    if (t->easy == NULL || !unit_setup(S, t)) { unit_destroy(t); return NULL; }
  }
  memset((char *)t + USE_PART, 0, sizeof *t - USE_PART);
  t->next = NULL;
  t->body.len = t->hdr.len = t->trl.len = 0;
  t->errbuf[0] = '\0';
  return t;
}

static void buf_trim(Buf *b, size_t keep) {
  if (b->cap > keep) buf_free(b);
  b->len = 0;
}

/* The end of one use (the unit is out of the multi handle): back to its
 * session's pool, or freed. No Lua call. */
static void unit_release(Transfer *t) {
  Session *S = t->home;
  prv_headers_free(&t->ph);
  prv_headers_free(&t->pt);
  if (S != NULL && !S->closed && !t->custom && t->easy != NULL && S->npool < S->pool_cap) {
    buf_trim(&t->body, KEEP_BODY);
    buf_trim(&t->hdr, KEEP_HEADER);
    buf_trim(&t->trl, KEEP_HEADER);
    t->next = S->pool;
    S->pool = t;
    S->npool++;
    return;
  }
  unit_destroy(t);
}

static void pool_free(Session *S) {
  while (S->pool) {
    Transfer *t = S->pool;
    S->pool = t->next;
    unit_destroy(t);
  }
  S->npool = 0;
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

/* The userdata at index 1 when it has the class metatable, which every
 * method of the class holds as upvalue 1 (new_class): cheaper than
 * luaL_checkudata's registry lookup; anything else gets its error. */
static void *check_self(lua_State *L, const char *tname) {
  void *p = lua_touserdata(L, 1);
  if (p != NULL && lua_getmetatable(L, 1)) {
    int same = lua_rawequal(L, -1, lua_upvalueindex(1));
    lua_pop(L, 1);
    if (same) return p;
  }
  return luaL_checkudata(L, 1, tname);
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

/* user_agent and proxy go into the request's lines: a CR or LF there would
 * add a header. */
static int bad_line_setting(int i, const char *s) {
  return (i == S_USER_AGENT || i == S_PROXY) && (strchr(s, '\r') != NULL || strchr(s, '\n') != NULL);
}

static int set_internal(Transfer *t, const char *msg);

/* ---- groups: batches and streams ------------------------------------------ */

/* One request()/perform()/start(): owns the units of its transfers. */
typedef struct {
  Group g;
  Session *home;          /* its session (alive until the results are built: the anchor holds it) */
  int ref;                /* registry: {session=, anchored strings} then {results=}; LUA_NOREF for request() */
  int released;           /* closed: C resources freed, methods answer "closed" */
  int have_results;
  int building;           /* results() is reading t[] while allocating */
  int close_requested;    /* close() called meanwhile (by a finalizer): done after */
  size_t n;
  Transfer *t[1];         /* n units (an entry is NULL when no unit could be made) */
} Batch;

/* session:stream(): requests added one at a time, collected as each ends. */
typedef struct {
  Group g;
  Session *S;             /* its session (kept alive by the anchor table) */
  int ref;                /* registry: anchor {session=, [2s-1] = tag, [2s] = body} for slot s */
  int released;
  int busy;               /* inside add()/poll() while Lua allocates: close waits, re-entry refused */
  int close_requested;
  Transfer *done_head, *done_tail;   /* ended, not yet handed back (in order of ending) */
  Transfer **slots;       /* slots[s-1]: the unit using slot s, or NULL */
  size_t nslots, cap;     /* slots handed out so far (high-water mark), allocated */
  size_t *free_slots;
  size_t nfree;
  size_t held;            /* units held: in the multi handle or ended, not yet handed back */
} Stream;

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

static void group_link(Session *S, Group *g) {
  g->S = S;
  g->prev = NULL;
  g->next = S->groups;
  if (S->groups) S->groups->prev = g;
  S->groups = g;
}

static void group_unlink(Group *g) {
  Session *S = g->S;
  if (S == NULL) return;
  if (g->prev) g->prev->next = g->next;
  else S->groups = g->next;
  if (g->next) g->next->prev = g->prev;
  g->prev = g->next = NULL;
  g->S = NULL;
}

static void stream_queue(Stream *St, Transfer *t) {
  t->next = NULL;
  if (St->done_tail) St->done_tail->next = t;
  else St->done_head = t;
  St->done_tail = t;
}

/* Hand a prepared unit to the session's multi handle. No Lua call. */
static void unit_attach(Session *S, Group *g, Transfer *t) {
  if (curl_easy_setopt(t->easy, CURLOPT_SHARE, S->share) != CURLE_OK ||
      curl_multi_add_handle(S->multi, t->easy) != CURLM_OK) {
    curl_easy_setopt(t->easy, CURLOPT_SHARE, NULL);
    set_internal(t, "cannot add the transfer to the multi handle");
    return;
  }
  t->in_multi = 1;
  t->added = 1;
  S->requests++;
  if (g->pending++ == 0) group_link(S, g);
}

/* Take t out of the multi handle (it finished, failed or is being stopped);
 * a stream queues it as ended; the group leaves the session's list with its
 * last transfer. */
static void transfer_out(Session *S, Transfer *t) {
  Group *g = t->group;
  curl_multi_remove_handle(S->multi, t->easy);
  curl_easy_setopt(t->easy, CURLOPT_SHARE, NULL);
  t->in_multi = 0;
  if (g->pending > 0) g->pending--;
  if (g->is_stream) stream_queue((Stream *)(void *)g, t);
  if (g->pending == 0) group_unlink(g);
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
  if (t == NULL || !t->in_multi) return;
  transfer_info(S, t);
  t->stopped = why;
  t->done = 1;
  transfer_out(S, t);
}

/* The transfer failed inside libcurl's multi machinery (not its own error). */
static void transfer_fail(Session *S, Transfer *t, const char *msg) {
  if (t == NULL || !t->in_multi) return;
  set_internal(t, msg);
  transfer_out(S, t);
}

/* Route every finished transfer of the multi handle to its own group. */
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

/* Unit i of group g (batch entries, stream slots), or NULL. */
static size_t group_size(Group *g) {
  return g->is_stream ? ((Stream *)(void *)g)->nslots : ((Batch *)(void *)g)->n;
}

static Transfer *group_unit(Group *g, size_t i) {
  return g->is_stream ? ((Stream *)(void *)g)->slots[i] : ((Batch *)(void *)g)->t[i];
}

/* Take every unfinished transfer of g out of its session's multi handle. */
static void group_detach(Group *g, int why) {
  Session *S = g->S;
  size_t i, n;
  if (S == NULL) return;
  n = group_size(g);
  for (i = 0; i < n && g->S != NULL; i++) transfer_stop(S, group_unit(g, i), why);
  group_unlink(g);   /* no-op unless a transfer was not in the multi after all */
}

static void group_fail(Group *g, const char *msg) {
  Session *S = g->S;
  size_t i, n;
  if (S == NULL) return;
  n = group_size(g);
  for (i = 0; i < n && g->S != NULL; i++) transfer_fail(S, group_unit(g, i), msg);
  group_unlink(g);
}

/* Whether g has something for its owner: a batch when all of it is done, a
 * stream when some transfer ended (or none is running). */
static int group_ready(Group *g) {
  if (g->S == NULL || g->pending == 0) return 1;
  return g->is_stream && ((Stream *)(void *)g)->done_head != NULL;
}

/* Drive the session's multi handle on behalf of g: perform, then (while g is
 * not ready) at most one wait of up to wait_ms, bounded by libcurl's own
 * timer, then perform again. Other groups' transfers progress too. Returns
 * group_ready(g). */
static int group_drive(Group *g, long wait_ms) {
  Session *S = g->S;
  int running = 0;
  CURLMcode mc;
  if (S == NULL || g->pending == 0) return 1;
  mc = curl_multi_perform(S->multi, &running);
  if (mc == CURLM_OK) {
    drain(S);
    if (group_ready(g)) return 1;
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
  if (mc != CURLM_OK) group_fail(g, curl_multi_strerror(mc));
  else if (g->pending > 0 && running == 0) group_fail(g, "transfer did not finish");
  return group_ready(g);
}

/* ---- session ------------------------------------------------------------- */

static void session_release(Session *S) {
  int i;
  while (S->groups) group_detach(S->groups, STOP_CLOSED);
  pool_free(S);
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
  Session *S = (Session *)check_self(L, SESSION_MT);
  session_release(S);
  /* only now: a batch or stream building results after close() reads them */
  if (S->lazy_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, S->lazy_ref);
  if (S->rmt_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, S->rmt_ref);
  S->lazy_ref = S->rmt_ref = LUA_NOREF;
  return 0;
}

/* Push the LAZY_KEY table and RESPONSE_MT (what push_entry needs); returns
 * the index of the first. The session's refs are gone once its __gc or
 * __close ran (a batch or stream may still hand out results then, and
 * finalizers run in any order at lua_close): the registry's names then. */
static int push_result_ctx(lua_State *L, Session *S) {
  if (S->lazy_ref != LUA_NOREF && S->rmt_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->lazy_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->rmt_ref);
  } else {
    lua_getfield(L, LUA_REGISTRYINDEX, LAZY_KEY);
    luaL_getmetatable(L, RESPONSE_MT);
  }
  return lua_gettop(L) - 1;
}

static int session_close(lua_State *L) {
  Session *S = (Session *)check_self(L, SESSION_MT);
  session_release(S);
  lua_pushboolean(L, 1);
  return 1;
}

static int session_tostring(lua_State *L) {
  Session *S = (Session *)check_self(L, SESSION_MT);
  if (S->closed) lua_pushliteral(L, "provision.session (closed)");
  else lua_pushfstring(L, "provision.session (%p)", (void *)S);
  return 1;
}

static int session_stats(lua_State *L) {
  Session *S = (Session *)check_self(L, SESSION_MT);
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
  S->lazy_ref = S->rmt_ref = LUA_NOREF;
  prv_setmetatable(L, SESSION_MT);
  lua_getfield(L, LUA_REGISTRYINDEX, LAZY_KEY);
  S->lazy_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  luaL_getmetatable(L, RESPONSE_MT);
  S->rmt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
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
  S->pool_cap = pool_cap(S);
  for (i = 0; i < S_COUNT; i++) {
    const char *s = opt_string_push(L, 1, STR_OPTS[i].name);
    if (s != NULL && bad_line_setting(i, s)) luaL_error(L, "%s: contains CR or LF", STR_OPTS[i].name);
    if (s == NULL && i == S_USER_AGENT) { lua_pushvalue(L, lua_upvalueindex(1)); s = lua_tostring(L, -1); }
    if (s != NULL) {
      S->str[i] = strdup(s);
      lua_pop(L, 1);
      if (S->str[i] == NULL) return luaL_error(L, "out of memory");
    }
  }

  /* libcurl's own User-Agent option costs as much again as the header line
   * prepare adds; it is only needed for a proxy's CONNECT (custom headers
   * do not go there): a proxy given, or one libcurl may take from the
   * environment. */
  if (S->str[S_PROXY] != NULL) S->ua_option = S->str[S_PROXY][0] != '\0';
  else {
    static const char *const env[] = { "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                                       "ALL_PROXY", NULL };
    for (i = 0; env[i] != NULL; i++) {
      const char *v = getenv(env[i]);
      if (v != NULL && v[0] != '\0') S->ua_option = S->env_proxy = 1;
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

/* The next line of the request's header list: the last use's node when it
 * holds the same line, else a new one (the rest of the old list goes). 0 on
 * allocation failure. len: strlen(line). */
static int put_line(Transfer *t, const char *line, size_t len) {
  struct curl_slist *cur = t->hnext, *nl;
  t->hbytes += len + 2;
  if (cur != NULL) {
    if (strcmp(cur->data, line) == 0) {
      t->hlast = cur;
      t->hnext = cur->next;
      return 1;
    }
    if (t->hlast) t->hlast->next = NULL;
    else t->headers = NULL;
    curl_slist_free_all(cur);
    t->hnext = NULL;
  }
  nl = curl_slist_append(t->hlast, line);   /* after hlast, or a new list */
  if (nl == NULL) return 0;
  if (t->hlast == NULL) t->headers = nl;
  t->hlast = t->hlast ? t->hlast->next : nl;
  return 1;
}

/* The header list ends here: what is left of the last use's goes. */
static void end_lines(Transfer *t) {
  if (t->hnext == NULL) return;
  if (t->hlast) t->hlast->next = NULL;
  else t->headers = NULL;
  curl_slist_free_all(t->hnext);
  t->hnext = NULL;
}

/* When the last use's next line is "name: value" (what add_header_line
 * would make of them), take it as this request's next line and return 1:
 * a request that repeats its predecessor's headers (the same operation
 * again) neither checks nor builds them again. Compares bytes, never string
 * pointers (a collected string's address is reused). The same bytes are
 * the same checked pair only when the name holds no ':' (name "A: b" with
 * value "c" makes the line of name "A" with value "b: c"): every line was
 * made from a token name, which holds none, and ends its name at the first
 * ':' (or, empty-valued, is the name and a ';'). */
static int same_next_line(Transfer *t, const char *name, size_t nlen, const char *value, size_t vlen) {
  const char *d;
  size_t len = vlen == 0 ? nlen + 1 : nlen + 2 + vlen;
  if (t->hnext == NULL) return 0;
  d = t->hnext->data;
  if (strlen(d) != len || memcmp(d, name, nlen) != 0 || memchr(d, ':', nlen) != NULL) return 0;
  if (vlen == 0) {
    if (d[nlen] != ';') return 0;
  } else if (d[nlen] != ':' || d[nlen + 1] != ' ' || memcmp(d + nlen + 2, value, vlen) != 0) {
    return 0;
  }
  t->hlast = t->hnext;
  t->hnext = t->hnext->next;
  t->hbytes += len + 2;
  return 1;
}

/* Append "name: value" to the request's header lines. 0 on allocation
 * failure. No Lua call happens between the malloc and the free. */
static int add_header_line(Transfer *t, const char *name, size_t nlen, const char *value, size_t vlen) {
  char small[256];
  size_t total = nlen + vlen + 3;
  char *line;
  int ok;
  if (same_next_line(t, name, nlen, value, vlen)) return 1;
  line = total <= sizeof small ? small : (char *)malloc(total);
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
  ok = put_line(t, line, vlen == 0 ? nlen + 1 : nlen + 2 + vlen);
  if (line != small) free(line);
  return ok;
}

/* Append a literal line ("Name:" removes a header libcurl would add). */
static int add_raw_header(Transfer *t, const char *line) {
  return put_line(t, line, strlen(line));
}

/* Headers of the caller's that change what the core adds (take_header). */
enum { SEEN_CTYPE = 1, SEEN_EXPECT = 2, SEEN_UA = 4 };

static int seen_bit(const char *name, size_t nlen) {
  switch (nlen) {
    case 12: return ieq(name, nlen, "content-type") ? SEEN_CTYPE : 0;
    case 6: return ieq(name, nlen, "expect") ? SEEN_EXPECT : 0;
    case 10: return ieq(name, nlen, "user-agent") ? SEEN_UA : 0;
    default: return 0;
  }
}

/* Validate and add the header at stack -2 (name) / -1 (value). */
static int take_header(lua_State *L, Transfer *t, int k, int *seen) {
  size_t nlen, vlen;
  const char *name, *value;
  char msg[96];
  if (lua_type(L, -2) != LUA_TSTRING) return luaL_error(L, "header %d: name must be a string", k);
  if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
    return luaL_error(L, "header %d: value must be a string", k);
  name = lua_tolstring(L, -2, &nlen);
  value = lua_tolstring(L, -1, &vlen);
  if (same_next_line(t, name, nlen, value, vlen)) {   /* the last use's line: checked then */
    *seen |= seen_bit(name, nlen);
    return T_NONE;
  }
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
  if ((nlen == 14 && ieq(name, nlen, "content-length")) || (nlen == 17 && ieq(name, nlen, "transfer-encoding"))) {
    snprintf(msg, sizeof msg, "header %d: %s is set by the core from the body", k,
             nlen == 14 ? "Content-Length" : "Transfer-Encoding");
    return set_invalid(t, msg);
  }
  *seen |= seen_bit(name, nlen);
  if (!add_header_line(t, name, nlen, value, vlen)) return set_internal(t, "out of memory");
  return T_NONE;
}

/* Read the headers table at stack top (absolute index hi). */
static int take_headers(lua_State *L, Transfer *t, int hi, int *seen) {
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
      rc = take_header(L, t, i, seen);
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
    rc = take_header(L, t, k, seen);
    lua_pop(L, 3);
    if (rc != T_NONE) { lua_pop(L, 1); return rc; }
  }
  return T_NONE;
}

/* The "scheme://authority" prefix of a URL that starts with lower-case
 * http:// or https://, as libcurl splits it (the authority ends at the first
 * '/', '?' or '#'); 0 for any other URL or an empty authority. */
static size_t origin_prefix(const char *url, size_t len) {
  size_t i, start;
  if (len >= 7 && memcmp(url, "http://", 7) == 0) start = 7;
  else if (len >= 8 && memcmp(url, "https://", 8) == 0) start = 8;
  else return 0;
  for (i = start; i < len && url[i] != '/' && url[i] != '?' && url[i] != '#'; i++) {}
  return i > start ? i : 0;
}

/* libcurl 7.88's URL parser checks path, query and fragment only for bytes
 * below 0x20, DEL and space (urlapi.c junkscan). */
static int tail_ok(const char *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c <= 0x20 || c == 0x7f) return 0;
  }
  return 1;
}

/* Check that url is http(s) and well formed. NULL = fine; else message.
 * The whole parse (curl_url) runs for a URL whose scheme and authority
 * differ from the last one accepted on this session; for the same prefix
 * only the rest is checked, as libcurl's parser would. */
static const char *check_url(Session *S, const char *url, size_t len) {
  CURLU *u;
  char *scheme = NULL;
  const char *bad = NULL;
  size_t pre;
  if (strlen(url) != len || has_ctl(url, len)) return "url contains CR, LF or NUL";
  pre = origin_prefix(url, len);
  if (pre > 0 && pre == S->origin_len && len < 8000000 && memcmp(url, S->origin, pre) == 0 &&
      tail_ok(url + pre, len - pre))
    return NULL;
  u = curl_url();
  if (u == NULL) return "out of memory";
  if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) bad = "malformed url";
  else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK || scheme == NULL) bad = "malformed url";
  else if (!ieq(scheme, strlen(scheme), "http") && !ieq(scheme, strlen(scheme), "https"))
    bad = "only http:// and https:// urls are accepted";
  curl_free(scheme);
  curl_url_cleanup(u);
  if (bad == NULL && pre > 0 && pre <= sizeof S->origin) {
    memcpy(S->origin, url, pre);
    S->origin_len = pre;
  }
  return bad;
}

/* A refused setopt leaves the handle in a state nobody knows: never pooled again. */
#define EASY_OK(call) \
  do { if ((call) != CURLE_OK) { t->custom = 1; return set_internal(t, "curl_easy_setopt failed"); } } while (0)

/* Which request fields a prepare reads are present: one bit each. */
enum {
  K_METHOD = 1 << 0, K_URL = 1 << 1, K_BODY = 1 << 2, K_HEADERS = 1 << 3, K_CONNECT_TIMEOUT = 1 << 4,
  K_TIMEOUT = 1 << 5, K_VERIFY = 1 << 6, K_MAX_BODY = 1 << 7, K_IDEMPOTENT = 1 << 8, K_STR = 1 << 9,
  K_ALL = (1 << (9 + S_COUNT)) - 1
};

/* The fields present in the request table at ri. A table with a metatable
 * may have any (its __index decides): all bits. A plain one is walked once
 * with lua_next (no allocation, no Lua code), so that prepare reads only
 * the few fields a request has instead of asking for each of sixteen; the
 * values of method, url, body and headers are copied on the way into the
 * four stack slots from `slots` (absolute), which hold nil before. */
static int present_keys(lua_State *L, int ri, int slots) {
  int bits = 0;
  if (lua_getmetatable(L, ri)) { lua_pop(L, 1); return K_ALL; }
  lua_pushnil(L);
  while (lua_next(L, ri) != 0) {
    size_t n;
    const char *k;
    int slot = 0;
    if (lua_type(L, -2) != LUA_TSTRING) { lua_pop(L, 1); continue; }
    k = lua_tolstring(L, -2, &n);
    switch (n) {
      case 3: if (memcmp(k, "url", 3) == 0) slot = 2; else if (memcmp(k, "key", 3) == 0) bits |= K_STR << S_KEY; break;
      case 4: if (memcmp(k, "body", 4) == 0) slot = 3; else if (memcmp(k, "cert", 4) == 0) bits |= K_STR << S_CERT; break;
      case 5: if (memcmp(k, "proxy", 5) == 0) bits |= K_STR << S_PROXY; break;
      case 6: if (memcmp(k, "method", 6) == 0) slot = 1; else if (memcmp(k, "verify", 6) == 0) bits |= K_VERIFY; break;
      case 7:
        if (memcmp(k, "headers", 7) == 0) slot = 4;
        else if (memcmp(k, "timeout", 7) == 0) bits |= K_TIMEOUT;
        else if (memcmp(k, "ca_file", 7) == 0) bits |= K_STR << S_CA_FILE;
        else if (memcmp(k, "ca_path", 7) == 0) bits |= K_STR << S_CA_PATH;
        break;
      case 8: if (memcmp(k, "max_body", 8) == 0) bits |= K_MAX_BODY; break;
      case 10:
        if (memcmp(k, "idempotent", 10) == 0) bits |= K_IDEMPOTENT;
        else if (memcmp(k, "user_agent", 10) == 0) bits |= K_STR << S_USER_AGENT;
        break;
      case 12: if (memcmp(k, "key_password", 12) == 0) bits |= K_STR << S_KEY_PASSWORD; break;
      case 15: if (memcmp(k, "connect_timeout", 15) == 0) bits |= K_CONNECT_TIMEOUT; break;
      default: break;
    }
    if (slot > 0) lua_replace(L, slots + slot - 1);   /* pops the value */
    else lua_pop(L, 1);
  }
  return bits;
}

/* Fill unit t (fresh from unit_take) from the request table at index ri
 * (absolute), setting on its easy handle only what differs from its last
 * use. Returns T_READY, T_INVALID or T_INTERNAL; raises a Lua error on
 * wrong argument types. On T_READY the three values above the stack top it
 * found are the method, the URL and the body (or nil): the body must stay
 * alive until the transfer is done (libcurl does not copy POSTFIELDS). */
static int prepare(lua_State *L, Session *S, Transfer *t, int ri, int k) {
  const char *method, *url, *body = NULL, *ua;
  size_t mlen, ulen, blen = 0;
  const char *bad;
  double connect_timeout = S->connect_timeout, timeout = S->timeout, d;
  int verify = S->verify, seen = 0, rc, i, idempotent, keys, slots;
  int is_get, is_head, is_post, is_put, wants_body;
  long ms;
  curl_off_t maxfile;
  CURL *e = t->easy;

  if (lua_type(L, ri) != LUA_TTABLE) return luaL_error(L, "request %d: table expected, got %s", k, luaL_typename(L, ri));
  /* method, url, body, the string overrides and the headers' walk stay on the stack */
  if (!lua_checkstack(L, 4 + S_COUNT + 8)) return luaL_error(L, "request %d: Lua stack overflow", k);
  t->max_body = S->max_body;
  t->hlast = NULL;
  t->hnext = t->headers;
  t->hbytes = 0;
  /* slots: method, url, body, headers (filled by the walk, or one by one) */
  slots = lua_gettop(L) + 1;
  for (i = 0; i < 4; i++) lua_pushnil(L);
  keys = present_keys(L, ri, slots);
  if (keys == K_ALL) {
    static const char *const fields[] = { "method", "url", "body", "headers" };
    for (i = 0; i < 4; i++) {
      lua_getfield(L, ri, fields[i]);
      lua_replace(L, slots + i);
    }
  }

  if (lua_isnil(L, slots)) {
    lua_pushliteral(L, "GET");
    lua_replace(L, slots);
  }
  if (lua_type(L, slots) != LUA_TSTRING) return luaL_error(L, "request %d: method must be a string", k);
  method = lua_tolstring(L, slots, &mlen);   /* stays on the stack: alive for the setopt below */
  if (mlen > MAX_METHOD_LEN || !is_token(method, mlen)) return set_invalid(t, "method is not an HTTP token");

  if (lua_type(L, slots + 1) != LUA_TSTRING) return luaL_error(L, "request %d: url must be a string", k);
  url = lua_tolstring(L, slots + 1, &ulen);
  if ((bad = check_url(S, url, ulen)) != NULL) return set_invalid(t, bad);

  if (!lua_isnil(L, slots + 2)) {
    if (lua_type(L, slots + 2) != LUA_TSTRING) return luaL_error(L, "request %d: body must be a string", k);
    body = lua_tolstring(L, slots + 2, &blen);
  }

  if (!lua_isnil(L, slots + 3)) {
    if (lua_type(L, slots + 3) != LUA_TTABLE) return luaL_error(L, "request %d: headers must be a table", k);
    rc = take_headers(L, t, slots + 3, &seen);
    if (rc != T_NONE) return rc;
  }

  /* per-request overrides */
  if (keys & K_CONNECT_TIMEOUT) opt_number(L, ri, "connect_timeout", &connect_timeout);
  if (keys & K_TIMEOUT) opt_number(L, ri, "timeout", &timeout);
  if (keys & K_VERIFY) opt_bool(L, ri, "verify", &verify);
  if ((keys & K_MAX_BODY) && opt_number(L, ri, "max_body", &d)) {
    if (d != (double)(curl_off_t)d) return luaL_error(L, "max_body: integer expected");
    t->max_body = (curl_off_t)d;
  }
  ua = S->str[S_USER_AGENT];
  for (i = 0; i < S_COUNT; i++) {
    const char *s = (keys & (K_STR << i)) ? opt_string_push(L, ri, STR_OPTS[i].name) : NULL;
    if (s != NULL && bad_line_setting(i, s))
      return set_invalid(t, i == S_USER_AGENT ? "user_agent contains CR or LF" : "proxy contains CR or LF");
    if (s != NULL) {
      /* (a string stays alive on the stack until prepare returns) */
      if (i == S_USER_AGENT) ua = s;
      else {
        t->custom = 1;   /* this handle no longer has the session's strings */
        EASY_OK(curl_easy_setopt(e, STR_OPTS[i].opt, s));   /* libcurl copies */
        if (i == S_PROXY) {
          EASY_OK(curl_easy_setopt(e, CURLOPT_USERAGENT, ua));
          EASY_OK(curl_easy_setopt(e, CURLOPT_NOPROXY, NULL));   /* the environment's no_proxy applies */
        }
      }
    }
  }
  /* The User-Agent goes in the header list: libcurl's own option costs
   * twice as much (it is formatted byte by byte, curl_maprintf, even when a
   * header overrides it). A caller's User-Agent header wins. */
  if (!(seen & SEEN_UA) && ua != NULL && ua[0] != '\0' && !add_header_line(t, "User-Agent", 10, ua, strlen(ua)))
    return set_internal(t, "out of memory");

  /* method and body; a unit last used for anything but a plain GET first
   * goes back to libcurl's defaults */
  is_get = mlen == 3 && memcmp(method, "GET", 3) == 0;
  is_head = mlen == 4 && memcmp(method, "HEAD", 4) == 0;
  is_post = mlen == 4 && memcmp(method, "POST", 4) == 0;
  is_put = mlen == 3 && memcmp(method, "PUT", 3) == 0;
  wants_body = body != NULL || is_post || is_put || (mlen == 5 && memcmp(method, "PATCH", 5) == 0);
  if (is_head && body != NULL) return set_invalid(t, "a HEAD request cannot carry a body");
  if (t->o_method != M_GET) {
    EASY_OK(curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL));
    EASY_OK(curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL));
    EASY_OK(curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1));
    EASY_OK(curl_easy_setopt(e, CURLOPT_HTTPGET, 1L));
    t->o_method = M_GET;
  }
  if (!is_get || wants_body) {
    t->o_method = M_OTHER;
    if (is_head) {
      EASY_OK(curl_easy_setopt(e, CURLOPT_NOBODY, 1L));
    } else if (wants_body) {
      EASY_OK(curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen));
      EASY_OK(curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : ""));
      if (!is_post) EASY_OK(curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method));
      if (!(seen & SEEN_CTYPE) && !add_raw_header(t, "Content-Type:")) return set_internal(t, "out of memory");
      /* libcurl asks for 100-continue only before a body */
      if (!(seen & SEEN_EXPECT) && !add_raw_header(t, "Expect:")) return set_internal(t, "out of memory");
    } else {
      EASY_OK(curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method));
    }
  }
  /* libcurl silently re-sends a request whose reused connection died
   * before any response byte, POST included. A request that is not
   * idempotent (unless the caller says it is) gets a fresh connection, so
   * only the caller decides whether to send it again. */
  idempotent = is_get || is_head || is_put || (mlen == 6 && memcmp(method, "DELETE", 6) == 0) ||
               (mlen == 7 && memcmp(method, "OPTIONS", 7) == 0);
  if (!idempotent && (keys & K_IDEMPOTENT)) opt_bool(L, ri, "idempotent", &idempotent);
  if (t->o_fresh != !idempotent) {
    t->o_fresh = !idempotent;
    EASY_OK(curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, (long)t->o_fresh));
  }

  end_lines(t);
  {
    /* libcurl builds the request line and headers in a buffer of at most
     * 1 MiB and fails past it with "out of memory", which would read as a
     * response fault after sending: refuse it here, nothing sent */
    if (ulen + mlen + t->hbytes > REQUEST_HEAD_MAX) return set_invalid(t, "the URL and headers exceed 1,000,000 bytes");
  }
  EASY_OK(curl_easy_setopt(e, CURLOPT_URL, url));
  if (t->headers != t->o_headers) {
    EASY_OK(curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers));
    t->o_headers = t->headers;
  }
  if ((ms = seconds_to_ms(connect_timeout)) != t->o_connect_ms) {
    t->o_connect_ms = ms;
    EASY_OK(curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ms));
  }
  if ((ms = seconds_to_ms(timeout)) != t->o_timeout_ms) {
    t->o_timeout_ms = ms;
    EASY_OK(curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms));
  }
  if ((verify != 0) != (t->o_verify != 0)) {
    t->o_verify = verify != 0;
    EASY_OK(curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L));
    EASY_OK(curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L));
  }
  maxfile = t->max_body > 0 ? t->max_body : 0;
  if (maxfile != t->o_maxfile) {
    t->o_maxfile = maxfile;
    EASY_OK(curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, maxfile));
  }
  t->state = T_READY;
  return T_READY;
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

/* H[k] for a k that is not a key: the lower-case spelling of k, if that
 * differs (a lower-case k that missed is absent, with no string built). */
static int headers_index(lua_State *L) {
  size_t len, i;
  const char *k;
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  k = lua_tolstring(L, 2, &len);
  for (i = 0; i < len && !(k[i] >= 'A' && k[i] <= 'Z'); i++) {}
  if (i == len) return 0;
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

#define QUICK_FIELDS 24   /* fields a usual response block has at most (prv_headers_split) */
/* hash slots of a new response: status and body, room for the lazy fields
 * a caller usually reads (headers, time, new_connections) */
#define RESP_SLOTS 4
#define QUICK_NAME 128    /* longest name the quick path lower-cases on the C stack */

/* The quick path's fields (prv_headers_split) usable here: names short
 * enough to lower-case on the stack. */
static int quick_ok(const prv_field *f, int n) {
  int i;
  for (i = 0; i < n; i++)
    if (f[i].name.len > QUICK_NAME) return 0;
  return 1;
}

/* headers from the quick path's fields (spans into text, names distinct). */
static void push_quick_map(lua_State *L, const char *text, const prv_field *f, int n) {
  char lname[QUICK_NAME];
  int i;
  lua_createtable(L, 0, n);
  for (i = 0; i < n; i++) {
    size_t j, len = f[i].name.len;
    const char *nm = text + f[i].name.off;
    for (j = 0; j < len; j++) {
      char c = nm[j];
      lname[j] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    lua_pushlstring(L, lname, len);
    lua_pushlstring(L, text + f[i].value.off, f[i].value.len);
    lua_rawset(L, -3);
  }
  prv_setmetatable(L, HEADERS_MT);
}

/* A parsed header block owned by a userdata, for the rare header_list whose
 * block the quick path does not take (repeats, folded lines, many fields). */
#define PARSED_MT "provision.parsed_headers"

static int parsed_gc(lua_State *L) {
  prv_headers *h = (prv_headers *)lua_touserdata(L, 1);
  if (h) prv_headers_free(h);
  return 0;
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

/* The lazy source of the response at idx (absolute): pushes its LAZY_KEY
 * string (or nil) and returns 1 with *src filled; 0 when the table has none
 * (not made by the core). src's pointers stay valid while the string is on
 * the stack. */
static int lazy_source(lua_State *L, int idx, LazySrc *src) {
  size_t len = 0, spans;
  const char *s;
  lua_getfield(L, LUA_REGISTRYINDEX, LAZY_KEY);
  lua_pushvalue(L, idx);
  lua_rawget(L, -2);
  lua_remove(L, -2);
  if (lua_type(L, -1) != LUA_TSTRING) return 0;
  s = lua_tolstring(L, -1, &len);
  if (len < sizeof src->info) return 0;
  memcpy(&src->info, s + len - sizeof src->info, sizeof src->info);
  spans = src->info.nfields > 0 ? (size_t)src->info.nfields * SPAN_BYTES : 0;
  if (src->info.hdr_len + src->info.url_len + spans != len - sizeof src->info) return 0;
  src->hdr = s;
  src->url = s + src->info.hdr_len;
  src->spans = src->url + src->info.url_len;
  return 1;
}

/* The quick path's fields of a lazy source into out[QUICK_FIELDS]: their
 * number, or -1 when the block did not take the quick path. */
static int lazy_fields(const LazySrc *src, prv_field *out) {
  int i, n = src->info.nfields;
  uint16_t v[4];
  if (n < 0 || n > QUICK_FIELDS) return -1;
  for (i = 0; i < n; i++) {
    memcpy(v, src->spans + (size_t)i * SPAN_BYTES, sizeof v);
    out[i].name.off = v[0];
    out[i].name.len = v[1];
    out[i].value.off = v[2];
    out[i].value.len = v[3];
  }
  return n;
}

/* Push a userdata owning the parse of block p[0..n) (freed by its __gc if
 * an error strikes before the caller frees it); NULL when it does not parse
 * (it did when the response was accepted) or out of memory. */
static prv_headers *push_parsed(lua_State *L, const char *p, size_t n) {
  size_t pos = 0;
  const char *why = NULL;
  prv_headers *h = (prv_headers *)prv_newuserdata(L, sizeof *h);
  memset(h, 0, sizeof *h);
  if (luaL_newmetatable(L, PARSED_MT)) {
    lua_pushcfunction(L, parsed_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return prv_headers_parse(p, n, h, &pos, &why) == 0 ? h : NULL;
}

/* The response fields built on first read (and then stored in resp, so the
 * next read is a plain field): headers, header_list, trailers,
 * trailer_list (empty unless the response had trailers, which are plain
 * fields from the start), url, http_version, time, new_connections,
 * local_port. Everything comes from the response's LAZY_KEY string. */
enum { F_HEADERS, F_HEADER_LIST, F_TRAILERS, F_TRAILER_LIST, F_TIME, F_NEW_CONNECTIONS, F_URL, F_HTTP_VERSION,
       F_LOCAL_PORT, F_NONE };

/* Which lazy field the key k names (F_NONE for any other key, such as the
 * `kind` every caller asks a response for, which must cost little). */
static int lazy_field(const char *k, size_t n) {
  switch (n) {
    case 3: return memcmp(k, "url", 3) == 0 ? F_URL : F_NONE;
    case 4: return memcmp(k, "time", 4) == 0 ? F_TIME : F_NONE;
    case 7: return memcmp(k, "headers", 7) == 0 ? F_HEADERS : F_NONE;
    case 8: return memcmp(k, "trailers", 8) == 0 ? F_TRAILERS : F_NONE;
    case 10: return memcmp(k, "local_port", 10) == 0 ? F_LOCAL_PORT : F_NONE;
    case 11: return memcmp(k, "header_list", 11) == 0 ? F_HEADER_LIST : F_NONE;
    case 12:
      if (memcmp(k, "trailer_list", 12) == 0) return F_TRAILER_LIST;
      return memcmp(k, "http_version", 12) == 0 ? F_HTTP_VERSION : F_NONE;
    case 15: return memcmp(k, "new_connections", 15) == 0 ? F_NEW_CONNECTIONS : F_NONE;
    default: return F_NONE;
  }
}

static int response_index(lua_State *L) {
  size_t klen, n = 0;
  const char *k, *p = NULL;
  LazySrc src;
  int have, f;
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  k = lua_tolstring(L, 2, &klen);
  if ((f = lazy_field(k, klen)) == F_NONE) return 0;
  lua_settop(L, 2);
  have = lazy_source(L, 1, &src);   /* 3: on the stack, so src's pointers stay valid */
  if (have) {
    p = src.hdr;
    n = src.info.hdr_len;
  }
  switch (f) {
    case F_HEADERS: {
      prv_field quick[QUICK_FIELDS];
      int nq = have ? lazy_fields(&src, quick) : 0;
      if (nq >= 0 && quick_ok(quick, nq)) push_quick_map(L, p, quick, nq);
      else {
        prv_headers *h = push_parsed(L, p, n);
        if (h != NULL) {
          push_field_map(L, h);
          prv_headers_free(h);
        } else {
          lua_newtable(L);
          prv_setmetatable(L, HEADERS_MT);
        }
      }
      break;
    }
    case F_HEADER_LIST: {
      prv_field quick[64];
      int nq = !have ? 0 : src.info.nfields >= 0 ? lazy_fields(&src, quick) : prv_headers_split(p, n, quick, 64), i;
      if (nq >= 0) {
        lua_createtable(L, nq, 0);
        for (i = 0; i < nq; i++) {
          lua_createtable(L, 2, 0);
          lua_pushlstring(L, p + quick[i].name.off, quick[i].name.len);
          lua_rawseti(L, -2, 1);
          lua_pushlstring(L, p + quick[i].value.off, quick[i].value.len);
          lua_rawseti(L, -2, 2);
          lua_rawseti(L, -2, i + 1);
        }
      } else {
        prv_headers *h = push_parsed(L, p, n);
        if (h != NULL) {
          push_field_list(L, h);
          prv_headers_free(h);
        } else {
          lua_newtable(L);
        }
      }
      break;
    }
    case F_TRAILER_LIST: lua_newtable(L); break;
    case F_TRAILERS:
      lua_newtable(L);
      prv_setmetatable(L, HEADERS_MT);
      break;
    default:
      if (!have) return 0;
      switch (f) {
        case F_TIME: lua_pushnumber(L, (lua_Number)src.info.time); break;
        case F_NEW_CONNECTIONS: lua_pushinteger(L, (lua_Integer)src.info.num_connects); break;
        case F_URL: lua_pushlstring(L, src.url, src.info.url_len); break;
        case F_HTTP_VERSION: lua_pushstring(L, version_name(src.info.http_version)); break;
        default: lua_pushinteger(L, (lua_Integer)src.info.local_port); break;
      }
  }
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -2);
  lua_rawset(L, 1);
  return 1;
}

/* core.header(resp, name, ...) -> for each name, the value
 * resp.headers[name] has (nil when absent), read from the response's
 * header block without building the headers map: one call for the few
 * names an executor looks for on every answer. The
 * quick path's spans are scanned (names are distinct there); any other
 * block (repeats, folded lines, many fields) is parsed as the map would
 * be. A map already built (or set) is read instead, and a table the core
 * did not make gets resp.headers[name]. */
static int l_header(lua_State *L) {
  int nnames = lua_gettop(L) - 1, top, k, i;
  LazySrc src;
  luaL_checktype(L, 1, LUA_TTABLE);
  if (nnames < 1) return luaL_argerror(L, 2, "header name (string) expected");
  for (k = 2; k <= nnames + 1; k++) {
    if (lua_type(L, k) != LUA_TSTRING) return luaL_argerror(L, k, "header name (string) expected");
  }
  luaL_checkstack(L, nnames + 4, "too many header names");
  top = nnames + 1;
  lua_pushliteral(L, "headers");
  lua_rawget(L, 1);                                   /* top + 1 */
  if (lua_isnil(L, top + 1)) {
    lua_pop(L, 1);
    if (lazy_source(L, 1, &src)) {                    /* top + 1: keeps src valid */
      prv_field f[QUICK_FIELDS];
      int n = lazy_fields(&src, f);
      prv_headers *h = NULL;
      const char *text = src.hdr;
      const prv_field *fields = f;
      if (n < 0) {
        h = push_parsed(L, src.hdr, src.info.hdr_len);   /* top + 2 */
        n = h != NULL ? (int)h->nmerged : 0;
        if (h != NULL) { text = h->text; fields = h->merged; }
      }
      for (k = 2; k <= top; k++) {
        size_t nlen;
        const char *name = lua_tolstring(L, k, &nlen);
        for (i = 0; i < n; i++) {
          if (fields[i].name.len == nlen && prv_same_name(text + fields[i].name.off, name, nlen)) break;
        }
        if (i < n) lua_pushlstring(L, text + fields[i].value.off, fields[i].value.len);
        else lua_pushnil(L);
      }
      if (h != NULL) prv_headers_free(h);
      return nnames;
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "headers");                    /* a table not made by the core */
  }
  if (!lua_istable(L, top + 1)) {                     /* none, or false (a hook's answer) */
    for (k = 0; k < nnames; k++) lua_pushnil(L);
    return nnames;
  }
  for (k = 2; k <= top; k++) {
    lua_pushvalue(L, k);
    lua_gettable(L, top + 1);
  }
  return nnames;
}

/* core.response_fields(resp) -> resp, with every lazily built field read
 * once (so that pairs/next and encoders see them all). */
static int l_response_fields(lua_State *L) {
  static const char *const names[] = { "headers", "header_list", "trailers", "trailer_list", "url",
                                        "http_version", "time", "new_connections", "local_port", NULL };
  int i;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  for (i = 0; names[i] != NULL; i++) {
    lua_getfield(L, 1, names[i]);
    lua_pop(L, 1);
  }
  return 1;
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

/* Pushes the response or the error of one transfer; returns 1 for an error.
 * lazy: absolute index of the LAZY_KEY table, RESPONSE_MT above it
 * (push_result_ctx). t may be NULL (no
 * unit could be made for the request). */
static int push_entry(lua_State *L, Transfer *t, int lazy) {
  char msg[CURL_ERROR_SIZE + 64];
  const char *kind, *why = NULL, *part;
  int early, sent, rc, nq = -1;
  size_t pos = 0, lazy_len;
  prv_field quick[QUICK_FIELDS];
  if (t == NULL) { push_err(L, "internal", "cannot create a transfer (out of memory)", -1, 0); return 1; }
  if (t->state == T_CLOSED) { push_err(L, "closed", "session is closed", -1, 0); return 1; }
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

  /* The header and trailer blocks are checked in C before any Lua
   * allocation (a malformed one is an error now, not at first read). The
   * usual block (few fields, each name once, no trailers) takes the quick
   * path: no copy, no sort. The header fields themselves are built only
   * when read (response_index). */
  if (t->trl.len == 0) nq = prv_headers_split(t->hdr.p, t->hdr.len, quick, QUICK_FIELDS);
  if (nq < 0) {
    part = "headers";
    rc = prv_headers_parse(t->hdr.p, t->hdr.len, &t->ph, &pos, &why);
    prv_headers_free(&t->ph);
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
  }

  /* The lazy fields' source, in C memory after the header block: the
   * effective URL, then the numbers. Written whole before the one Lua
   * string is made from it. */
  {
    char *url = NULL;
    LazyInfo info;
    if (t->easy == NULL || curl_easy_getinfo(t->easy, CURLINFO_EFFECTIVE_URL, &url) != CURLE_OK || url == NULL) url = "";
    memset(&info, 0, sizeof info);   /* padding too: the bytes go into a Lua string */
    info.time = (double)t->total_us / 1e6;
    info.http_version = t->http_version;
    info.num_connects = t->num_connects;
    info.local_port = t->local_port;
    info.hdr_len = t->hdr.len;
    info.url_len = strlen(url);
    info.nfields = nq >= 0 && t->hdr.len <= 0xffff ? nq : -1;
    lazy_len = info.hdr_len + info.url_len + (info.nfields > 0 ? (size_t)info.nfields * SPAN_BYTES : 0) + sizeof info;
    if (!buf_reserve(&t->hdr, lazy_len, lazy_len, HEADER_START)) {
      prv_headers_free(&t->pt);
      push_transfer_err(L, t, "internal", "out of memory", -1, 1);
      return 1;
    }
    {
      char *w = t->hdr.p + info.hdr_len;
      int i;
      memcpy(w, url, info.url_len);
      w += info.url_len;
      for (i = 0; i < info.nfields; i++) {
        uint16_t v[4];
        v[0] = (uint16_t)quick[i].name.off;
        v[1] = (uint16_t)quick[i].name.len;
        v[2] = (uint16_t)quick[i].value.off;
        v[3] = (uint16_t)quick[i].value.len;
        memcpy(w, v, sizeof v);
        w += sizeof v;
      }
      memcpy(w, &info, sizeof info);
    }
  }

  lua_createtable(L, 0, RESP_SLOTS);
  lua_pushinteger(L, t->status);
  lua_setfield(L, -2, "status");
  lua_pushlstring(L, t->body.p ? t->body.p : "", t->body.len);
  lua_setfield(L, -2, "body");
  if (nq < 0 && t->pt.nfields > 0) {   /* trailers are rare: built at once when present */
    push_field_list(L, &t->pt);
    lua_setfield(L, -2, "trailer_list");
    push_field_map(L, &t->pt);
    lua_setfield(L, -2, "trailers");
  }
  prv_headers_free(&t->pt);
  lua_pushvalue(L, -1);
  lua_pushlstring(L, t->hdr.p, lazy_len);
  lua_rawset(L, lazy);
  lua_pushvalue(L, lazy + 1);
  lua_setmetatable(L, -2);
  return 0;
}

/* ---- batches ------------------------------------------------------------- */

/* The one idempotent closer of a batch (__gc, __close, close(), and the end
 * of perform()): takes its unfinished transfers out of the multi
 * handle if the session is still open, gives its units back, drops the
 * registry reference. */
static void batch_close(lua_State *L, Batch *B) {
  size_t i;
  group_detach(&B->g, STOP_ABORTED);
  for (i = 0; i < B->n; i++) {
    if (B->t[i]) unit_release(B->t[i]);
    B->t[i] = NULL;
  }
  if (B->ref != LUA_NOREF && B->ref != LUA_REFNIL) luaL_unref(L, LUA_REGISTRYINDEX, B->ref);
  B->ref = LUA_NOREF;
  B->released = 1;
}

static int batch_gc(lua_State *L) {
  Batch *B = (Batch *)check_self(L, BATCH_MT);
  batch_close(L, B);
  return 0;
}

/* Session at index 1, the list at index 2. Pushes the batch userdata (3) and
 * its anchor table (4); returns the batch, or NULL when reading the requests
 * (metamethods) closed the session. Invalid entries are kept in place; the
 * valid ones are in the multi handle, not yet performed. */
static Batch *batch_new(lua_State *L, Session *S) {
  size_t n, i, size;
  Batch *B;
  int anchor;
  n = (size_t)prv_rawlen(L, 2);
  if (n > 100000) luaL_error(L, "too many requests in one perform (%d)", (int)n);
  size = offsetof(Batch, t) + (n ? n : 1) * sizeof(Transfer *);
  B = (Batch *)prv_newuserdata(L, size);
  memset(B, 0, size);
  B->ref = LUA_NOREF;
  B->n = n;
  B->home = S;
  prv_setmetatable(L, BATCH_MT);
  lua_createtable(L, (int)n, 1);
  anchor = lua_gettop(L);
  lua_pushvalue(L, 1);
  lua_setfield(L, anchor, "session");         /* the batch keeps its session alive */
  lua_pushvalue(L, anchor);
  B->ref = luaL_ref(L, LUA_REGISTRYINDEX);

  for (i = 0; i < n; i++) {
    int base, ri;
    Transfer *t = unit_take(S);
    B->t[i] = t;                            /* the batch owns it from here */
    if (t) t->group = &B->g;
    lua_rawgeti(L, 2, (int)i + 1);
    ri = base = lua_gettop(L);
    if (t == NULL) {
      /* reported in place (internal); a request of the wrong type still raises */
      if (lua_type(L, ri) != LUA_TTABLE)
        luaL_error(L, "request %d: table expected, got %s", (int)i + 1, luaL_typename(L, ri));
    } else if (prepare(L, S, t, ri, (int)i + 1) == T_READY) {
      lua_pushvalue(L, base + 3);             /* the body (or nil) */
      lua_rawseti(L, anchor, (int)i + 1);     /* libcurl does not copy POSTFIELDS */
    }
    lua_settop(L, anchor);
  }
  /* Reading the requests may have run Lua code (metamethods) that closed
   * the session. */
  if (S->closed) return NULL;
  for (i = 0; i < n; i++)
    if (B->t[i] && B->t[i]->state == T_READY) unit_attach(S, &B->g, B->t[i]);
  return B;
}

/* Push the list of entries (B done); gives each unit back as it goes. */
static void push_results(lua_State *L, Batch *B) {
  size_t i;
  int out, lazy;
  lua_createtable(L, (int)B->n, 0);
  out = lua_gettop(L);
  lazy = push_result_ctx(L, B->home);
  for (i = 0; i < B->n; i++) {
    Transfer *t = B->t[i];
    push_entry(L, t, lazy);
    lua_rawseti(L, out, (int)i + 1);
    B->t[i] = NULL;
    if (t) unit_release(t);
  }
  lua_settop(L, out);
}

/* perform(): start, step until done, results. */
static int session_perform(lua_State *L) {
  Session *S = (Session *)check_self(L, SESSION_MT);
  Batch *B;

  if (S->closed) return push_closed(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  B = batch_new(L, S);                      /* 3: batch, 4: anchor */
  if (B == NULL) { batch_close(L, (Batch *)lua_touserdata(L, 3)); return push_closed(L); }
  while (!group_drive(&B->g, 1000)) {}
  push_results(L, B);
  batch_close(L, B);
  return 1;
}

/* request(): one unit, taken for the length of the call (no batch). Its Lua
 * work (reading the request, building the result) runs under lua_pcall in
 * request_p, so that an error raised there gives the unit back; between
 * the two, the transfer runs with no Lua call, its group on the C stack. */
typedef struct {
  Session *S;
  Transfer *t;
  Group g;
  int failed;
} OneCall;

static int request_p(lua_State *L) {   /* 1: session, 2: request, 3: the OneCall */
  OneCall *c = (OneCall *)lua_touserdata(L, 3);
  Session *S = c->S;
  Transfer *t = c->t;
  int rc = prepare(L, S, t, 2, 1);     /* its strings stay on this stack until the end */
  if (S->closed) {                     /* reading the request ran Lua code that closed it */
    c->failed = 1;
    push_err(L, "closed", "session is closed", -1, 0);
    return 1;
  }
  if (rc == T_READY) {
    t->group = &c->g;
    unit_attach(S, &c->g, t);
    while (!group_drive(&c->g, 1000)) {}
  }
  c->failed = push_entry(L, t, push_result_ctx(L, S));
  return 1;
}

static int session_request(lua_State *L) {
  Session *S = (Session *)check_self(L, SESSION_MT);
  OneCall c;
  int rc;
  if (S->closed) return push_closed(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  memset(&c, 0, sizeof c);
  c.S = S;
  c.t = unit_take(S);
  if (c.t == NULL) {
    lua_pushnil(L);
    push_err(L, "internal", "cannot create a transfer (out of memory)", -1, 0);
    return 2;
  }
  lua_pushcfunction(L, request_p);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushlightuserdata(L, &c);
  rc = lua_pcall(L, 3, 1, 0);
  unit_release(c.t);                   /* out of the multi handle by now, whatever happened */
  if (rc != LUA_OK) return lua_error(L);
  if (c.failed) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  return 1;
}

/* session:start(list) -> batch: the transfers are in the multi handle and
 * have had one curl_multi_perform; nothing waits. */
static int session_start(lua_State *L) {
  Session *S = (Session *)check_self(L, SESSION_MT);
  Batch *B;
  if (S->closed) return push_closed(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  B = batch_new(L, S);                      /* 3: batch, 4: anchor */
  if (B == NULL) { batch_close(L, (Batch *)lua_touserdata(L, 3)); return push_closed(L); }
  group_drive(&B->g, 0);
  lua_settop(L, 3);
  return 1;
}

static Batch *check_batch(lua_State *L) {
  return (Batch *)check_self(L, BATCH_MT);
}

static int batch_closed(lua_State *L) {
  lua_pushnil(L);
  push_err(L, "closed", "batch is closed", -1, 0);
  return 2;
}

static int batch_done(const Batch *B) { return B->g.S == NULL || B->g.pending == 0; }

static double opt_timeout(lua_State *L, int idx) {
  double timeout = 0.0;
  if (!lua_isnoneornil(L, idx)) {
    timeout = (double)luaL_checknumber(L, idx);
    if (!(timeout >= 0.0)) luaL_argerror(L, idx, "timeout must be a number >= 0");
  }
  return timeout;
}

/* batch:step([timeout_s]) -> true when all of this batch's transfers are done */
static int batch_step(lua_State *L) {
  Batch *B = check_batch(L);
  double timeout = opt_timeout(L, 2);
  if (B->released) return batch_closed(L);
  lua_pushboolean(L, group_drive(&B->g, timeout > 0.0 ? seconds_to_ms(timeout) : 0));
  return 1;
}

/* {fds = {{fd=, read=, write=}, ...}, timeout = s, complete = b} for the
 * session S (NULL: nothing to wait for). */
static int push_wait_info(lua_State *L, Session *S) {
  fd_set rd, wr, ex;
  int maxfd = -1, fd, k = 0, complete = 1;
  long ms = -1;
  double timeout;
  FD_ZERO(&rd);
  FD_ZERO(&wr);
  FD_ZERO(&ex);
  if (S != NULL) {
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

/* batch:wait_info() -> {fds = {{fd=, read=, write=}, ...}, timeout = s, complete = b} */
static int batch_wait_info(lua_State *L) {
  Batch *B = check_batch(L);
  if (B->released) return batch_closed(L);
  return push_wait_info(L, batch_done(B) ? NULL : B->g.S);
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
  group_detach(&B->g, STOP_ABORTED);
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
  else lua_pushfstring(L, "provision.batch (%p, %d pending)", (void *)B, (int)B->g.pending);
  return 1;
}

/* ---- streams ------------------------------------------------------------- */

static Stream *check_stream(lua_State *L) {
  return (Stream *)check_self(L, STREAM_MT);
}

static int stream_closed(lua_State *L) {
  lua_pushnil(L);
  push_err(L, "closed", "stream is closed", -1, 0);
  return 2;
}

static int stream_busy(lua_State *L) {
  return luaL_error(L, "stream is busy: called from a finalizer during another call on it");
}

/* Room for one more slot (C memory only). 0 when out of memory. */
static int slot_room(Stream *St) {
  size_t cap;
  Transfer **ns;
  size_t *nf;
  if (St->nfree > 0 || St->nslots < St->cap) return 1;
  cap = St->cap ? St->cap * 2 : 16;
  ns = (Transfer **)realloc(St->slots, cap * sizeof *ns);
  if (ns == NULL) return 0;
  St->slots = ns;
  nf = (size_t *)realloc(St->free_slots, cap * sizeof *nf);
  if (nf == NULL) return 0;   /* the larger slots array is kept: harmless */
  St->free_slots = nf;
  St->cap = cap;
  return 1;
}

static size_t slot_take(Stream *St) {
  if (St->nfree > 0) return St->free_slots[--St->nfree];
  St->slots[St->nslots] = NULL;
  return ++St->nslots;
}

/* A unit leaves the stream (answered, or dropped): its anchors go (setting
 * nil allocates nothing), its slot is free, the unit goes back. */
static void stream_drop(lua_State *L, Stream *St, Transfer *t, int anchor) {
  size_t s = t->slot;
  lua_pushnil(L);
  lua_rawseti(L, anchor, (int)(2 * s - 1));
  lua_pushnil(L);
  lua_rawseti(L, anchor, (int)(2 * s));
  St->slots[s - 1] = NULL;
  St->free_slots[St->nfree++] = s;
  St->held--;
  unit_release(t);
}

/* The one idempotent closer (__gc, __close, close()): unfinished transfers
 * are taken out, every unit goes back, the anchors go. */
static void stream_close(lua_State *L, Stream *St) {
  size_t i;
  if (St->released) return;
  if (St->busy) { St->close_requested = 1; return; }
  group_detach(&St->g, STOP_ABORTED);
  for (i = 0; i < St->nslots; i++) {
    if (St->slots[i]) unit_release(St->slots[i]);
    St->slots[i] = NULL;
  }
  free(St->slots);
  free(St->free_slots);
  St->slots = NULL;
  St->free_slots = NULL;
  St->nslots = St->cap = St->nfree = St->held = 0;
  St->done_head = St->done_tail = NULL;
  if (St->ref != LUA_NOREF && St->ref != LUA_REFNIL) luaL_unref(L, LUA_REGISTRYINDEX, St->ref);
  St->ref = LUA_NOREF;
  St->released = 1;
}

static int stream_gc(lua_State *L) {
  Stream *St = check_stream(L);
  St->busy = 0;   /* nothing runs on an unreachable stream */
  stream_close(L, St);
  return 0;
}

static int stream_close_m(lua_State *L) {
  stream_close(L, check_stream(L));
  lua_pushboolean(L, 1);
  return 1;
}

/* session:stream() -> stream */
static int session_stream(lua_State *L) {
  Session *S = (Session *)check_self(L, SESSION_MT);
  Stream *St;
  if (S->closed) return push_closed(L);
  lua_settop(L, 1);
  St = (Stream *)prv_newuserdata(L, sizeof *St);
  memset(St, 0, sizeof *St);
  St->g.is_stream = 1;
  St->S = S;
  St->ref = LUA_NOREF;
  prv_setmetatable(L, STREAM_MT);
  lua_createtable(L, 16, 1);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "session");   /* the stream keeps its session alive */
  St->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 1;
}

/* Protected part of add(): 1 = the request, 2 = the stream, 3 = the unit
 * (light userdata). Returns the body to anchor (or nil) when the request is
 * ready. */
static int stream_prepare_p(lua_State *L) {
  Stream *St = (Stream *)lua_touserdata(L, 2);
  Transfer *t = (Transfer *)lua_touserdata(L, 3);
  int base = lua_gettop(L);
  if (prepare(L, St->S, t, 1, 1) == T_READY) {
    lua_pushvalue(L, base + 3);
    return 1;
  }
  return 0;
}

/* stream:add(req, tag) -> true. The request starts (it is in the multi
 * handle; the next poll drives it); one that cannot start (invalid, closed
 * session) is answered by the next poll. A wrong type raises. */
static int stream_add(lua_State *L) {
  Stream *St = check_stream(L);
  Session *S;
  Transfer *t;
  size_t slot;
  int rc;
  luaL_checktype(L, 2, LUA_TTABLE);
  if (lua_isnoneornil(L, 3)) return luaL_argerror(L, 3, "tag expected (any value but nil)");
  lua_settop(L, 3);
  if (St->released) return stream_closed(L);
  if (St->busy) return stream_busy(L);
  if (!slot_room(St)) return luaL_error(L, "out of memory");
  S = St->S;
  t = S->closed ? NULL : unit_take(S);
  if (t == NULL) {
    t = unit_bare();
    if (t == NULL) return luaL_error(L, "out of memory");
    if (S->closed) t->state = T_CLOSED;
    else set_internal(t, "cannot create a transfer (out of memory)");
  }
  slot = slot_take(St);
  St->slots[slot - 1] = t;   /* the stream owns it from here */
  t->slot = slot;
  t->group = &St->g;
  St->held++;
  St->busy = 1;
  lua_rawgeti(L, LUA_REGISTRYINDEX, St->ref);   /* 4: anchor */
  lua_pushvalue(L, 3);
  lua_rawseti(L, 4, (int)(2 * slot - 1));
  if (t->state == T_NONE) {
    lua_pushcfunction(L, stream_prepare_p);
    lua_pushvalue(L, 2);
    lua_pushlightuserdata(L, St);
    lua_pushlightuserdata(L, t);
    rc = lua_pcall(L, 3, 1, 0);                  /* 5: the body, nil, or the error */
    if (rc != LUA_OK) {
      St->busy = 0;
      stream_drop(L, St, t, 4);
      if (St->close_requested) stream_close(L, St);
      lua_settop(L, 5);
      return lua_error(L);
    }
    if (t->state == T_READY) {
      if (!lua_isnil(L, 5)) {
        lua_pushvalue(L, 5);
        lua_rawseti(L, 4, (int)(2 * slot));      /* libcurl does not copy POSTFIELDS */
      }
      /* reading the request may have run Lua code that closed the session */
      if (S->closed) t->state = T_CLOSED;
      else unit_attach(S, &St->g, t);
    }
  }
  if (!t->in_multi) stream_queue(St, t);   /* invalid, internal or closed: the next poll answers */
  St->busy = 0;
  if (St->close_requested) stream_close(L, St);
  lua_pushboolean(L, 1);
  return 1;
}

/* Protected part of poll(): 1 = the stream (light userdata). Pushes
 * {tag1, resp1, tag2, resp2, ...} for every unit that ended, in order. */
static int stream_collect_p(lua_State *L) {
  Stream *St = (Stream *)lua_touserdata(L, 1);
  Transfer *t;
  int n = 0;
  lua_createtable(L, 8, 0);                     /* 2 */
  lua_rawgeti(L, LUA_REGISTRYINDEX, St->ref);   /* 3: anchor */
  push_result_ctx(L, St->S);                    /* 4, 5 */
  /* One unit at a time leaves the queue before anything is built for it:
   * units that end meanwhile (a finalizer closing the session) join it. */
  while ((t = St->done_head) != NULL) {
    St->done_head = t->next;
    if (St->done_head == NULL) St->done_tail = NULL;
    t->next = NULL;
    lua_rawgeti(L, 3, (int)(2 * t->slot - 1));   /* the tag */
    lua_rawseti(L, 2, ++n);
    push_entry(L, t, 4);
    lua_rawseti(L, 2, ++n);
    stream_drop(L, St, t, 3);
  }
  lua_settop(L, 2);
  return 1;
}

/* stream:poll([timeout_s]) -> {tag1, resp1, tag2, resp2, ...}: the requests
 * that ended, each with its tag. When none has, it drives the session's
 * multi handle and waits at most timeout seconds (cut short by libcurl's
 * own timer) for the first; it may return empty. */
static int stream_poll(lua_State *L) {
  Stream *St = check_stream(L);
  double timeout = opt_timeout(L, 2);
  int rc;
  if (St->released) return stream_closed(L);
  if (St->busy) return stream_busy(L);
  if (St->done_head == NULL) group_drive(&St->g, timeout > 0.0 ? seconds_to_ms(timeout) : 0);
  if (St->done_head == NULL) {
    lua_createtable(L, 0, 0);
    return 1;
  }
  lua_settop(L, 1);
  St->busy = 1;
  lua_pushcfunction(L, stream_collect_p);
  lua_pushlightuserdata(L, St);
  rc = lua_pcall(L, 1, 1, 0);
  St->busy = 0;
  if (St->close_requested) stream_close(L, St);
  if (rc != LUA_OK) return lua_error(L);
  return 1;
}

static double mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What stream:request's protected part tells the caller. */
typedef struct {
  Stream *St;
  Transfer *t;
  double wait;
  int answered, failed;
} StreamCall;

/* Protected part of request(): 1 = the request, 2 = the StreamCall (light
 * userdata). Pushes the answer, or false when it is still running. */
static int stream_request_p(lua_State *L) {
  StreamCall *c = (StreamCall *)lua_touserdata(L, 2);
  Stream *St = c->St;
  Session *S = St->S;
  Transfer *t = c->t;
  int anchor;
  lua_rawgeti(L, LUA_REGISTRYINDEX, St->ref);
  anchor = lua_gettop(L);
  if (prepare(L, S, t, 1, 1) == T_READY) {   /* its method, URL and body above the anchor */
    if (!lua_isnil(L, anchor + 3)) {
      lua_pushvalue(L, anchor + 3);
      lua_rawseti(L, anchor, (int)(2 * t->slot));   /* libcurl does not copy POSTFIELDS */
    }
    /* reading the request may have run Lua code that closed the session */
    if (S->closed) t->state = T_CLOSED;
    else unit_attach(S, &St->g, t);
  }
  if (t->in_multi) {
    double deadline = mono_now() + c->wait;
    for (;;) {
      double left = deadline - mono_now();
      if (t->done || left <= 0 || St->g.S == NULL) break;
      group_drive(&St->g, seconds_to_ms(left));
    }
  }
  if (t->in_multi) {
    lua_pushboolean(L, 1);
    lua_rawseti(L, anchor, (int)(2 * t->slot - 1));   /* its tag for poll */
    lua_pushboolean(L, 0);
    return 1;
  }
  if (t->done) {   /* ended in the multi handle: out of the queue of ended units */
    Transfer **pp = &St->done_head, *prev = NULL;
    while (*pp != NULL && *pp != t) { prev = *pp; pp = &(*pp)->next; }
    if (*pp == t) {
      *pp = t->next;
      if (St->done_tail == t) St->done_tail = prev;
      t->next = NULL;
    }
  }
  c->answered = 1;
  c->failed = push_entry(L, t, push_result_ctx(L, S));
  return 1;
}

/* stream:request(req, wait) -> resp | nil, err | false. The request runs in
 * the stream; when it ends within `wait` seconds its answer comes back as
 * session:request's would, else false: it goes on, and a later poll hands
 * it back with the tag true. A wrong type raises. */
static int stream_request(lua_State *L) {
  Stream *St = check_stream(L);
  Session *S;
  StreamCall c;
  size_t slot;
  int rc;
  luaL_checktype(L, 2, LUA_TTABLE);
  memset(&c, 0, sizeof c);
  c.wait = opt_timeout(L, 3);
  lua_settop(L, 2);
  if (St->released) return stream_closed(L);
  if (St->busy) return stream_busy(L);
  if (!slot_room(St)) return luaL_error(L, "out of memory");
  S = St->S;
  if (S->closed) return push_closed(L);
  c.St = St;
  c.t = unit_take(S);
  if (c.t == NULL) {
    lua_pushnil(L);
    push_err(L, "internal", "cannot create a transfer (out of memory)", -1, 0);
    return 2;
  }
  slot = slot_take(St);
  St->slots[slot - 1] = c.t;   /* the stream owns it from here */
  c.t->slot = slot;
  c.t->group = &St->g;
  St->held++;
  St->busy = 1;
  lua_pushcfunction(L, stream_request_p);
  lua_pushvalue(L, 2);
  lua_pushlightuserdata(L, &c);
  rc = lua_pcall(L, 2, 1, 0);                    /* 3: the answer, false, or the error */
  St->busy = 0;
  if (rc != LUA_OK || c.answered) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, St->ref);
    if (c.t->in_multi) transfer_stop(S, c.t, STOP_ABORTED);   /* an error struck while it ran */
    if (St->slots[slot - 1] == c.t) {
      /* not yet handed back: drop it (a finalizer's session close may have queued it) */
      Transfer **pp = &St->done_head, *prev = NULL;
      while (*pp != NULL && *pp != c.t) { prev = *pp; pp = &(*pp)->next; }
      if (*pp == c.t) {
        *pp = c.t->next;
        if (St->done_tail == c.t) St->done_tail = prev;
      }
      stream_drop(L, St, c.t, lua_gettop(L));
    }
    lua_settop(L, 3);
  }
  if (St->close_requested) stream_close(L, St);
  if (rc != LUA_OK) return lua_error(L);
  if (c.answered && c.failed) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  return 1;
}

/* stream:inflight() -> requests added and not yet handed back by poll */
static int stream_inflight(lua_State *L) {
  Stream *St = check_stream(L);
  lua_pushinteger(L, (lua_Integer)St->held);
  return 1;
}

/* stream:wait_info(): as batch:wait_info(), for this stream's session */
static int stream_wait_info(lua_State *L) {
  Stream *St = check_stream(L);
  if (St->released) return stream_closed(L);
  return push_wait_info(L, (St->g.S == NULL || St->done_head != NULL) ? NULL : St->g.S);
}

static int stream_tostring(lua_State *L) {
  Stream *St = check_stream(L);
  if (St->released) lua_pushliteral(L, "provision.stream (closed)");
  else lua_pushfstring(L, "provision.stream (%p, %d in flight)", (void *)St, (int)St->held);
  return 1;
}

/* ---- registration --------------------------------------------------------- */

/* A class metatable: methods in __index, __gc, __close, __tostring, each
 * with the metatable as upvalue 1 (check_self). */
static void new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc,
                      lua_CFunction tostring) {
  if (luaL_newmetatable(L, name)) {
    int mt = lua_gettop(L);
    lua_newtable(L);
    for (; methods->name != NULL; methods++) {
      lua_pushvalue(L, mt);
      lua_pushcclosure(L, methods->func, 1);
      lua_setfield(L, -2, methods->name);
    }
    lua_setfield(L, mt, "__index");
    lua_pushvalue(L, mt);
    lua_pushcclosure(L, gc, 1);
    lua_setfield(L, mt, "__gc");
    lua_pushvalue(L, mt);
    lua_pushcclosure(L, gc, 1);
    lua_setfield(L, mt, "__close");
    lua_pushvalue(L, mt);
    lua_pushcclosure(L, tostring, 1);
    lua_setfield(L, mt, "__tostring");
  }
  lua_pop(L, 1);
}

void prv_open_http(lua_State *L) {
  static const luaL_Reg methods[] = {
    { "request", session_request }, { "perform", session_perform },
    { "start", session_start },     { "stream", session_stream },
    { "close", session_close },     { "stats", session_stats },
    { NULL, NULL },
  };
  static const luaL_Reg batch_methods[] = {
    { "step", batch_step },       { "wait_info", batch_wait_info },
    { "results", batch_results }, { "cancel", batch_cancel },
    { "close", batch_close_m },   { NULL, NULL },
  };
  static const luaL_Reg stream_methods[] = {
    { "add", stream_add },             { "poll", stream_poll },
    { "request", stream_request },
    { "inflight", stream_inflight },   { "wait_info", stream_wait_info },
    { "close", stream_close_m },       { NULL, NULL },
  };
  curl_version_info_data *vi;

  pthread_once(&g_init_once, global_init);

  new_class(L, SESSION_MT, methods, session_gc, session_tostring);
  new_class(L, BATCH_MT, batch_methods, batch_gc, batch_tostring);
  new_class(L, STREAM_MT, stream_methods, stream_gc, stream_tostring);
  if (luaL_newmetatable(L, HEADERS_MT)) {
    lua_pushcfunction(L, headers_index);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, RESPONSE_MT)) {
    lua_pushcfunction(L, response_index);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, ERROR_MT)) {
    lua_pushcfunction(L, err_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, LAZY_KEY);
  if (lua_isnil(L, -1)) {
    lua_newtable(L);                       /* response -> packed header fields, weak keys */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, LAZY_KEY);
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
  lua_pushcfunction(L, l_header);
  lua_setfield(L, -2, "header");
  lua_pushcfunction(L, l_response_fields);
  lua_setfield(L, -2, "response_fields");
}
