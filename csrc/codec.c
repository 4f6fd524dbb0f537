/* Encoding and auth primitives of provision.core (docs/core-api.md): base64,
 * base64url, SHA-256, HMAC-SHA256, hex, random bytes, UUIDv4, JWT decode /
 * HS256 sign and verify, RFC 3986 percent-encoding, header value check.
 * The work is done by the pure C helpers in csrc/pure/; this file only
 * converts arguments and results. Bad data -> nil, err; wrong argument
 * types -> Lua error. No OpenSSL frame is ever unwound by a Lua error: every
 * OpenSSL call returns first. */
#include <string.h>

#include "core.h"
#include "json.h"
#include "obuf.h"
#include "prv_pure.h"

#define ERRLEN 512

/* Scratch memory owned by Lua (freed by the GC even if a later call raises). */
static char *scratch(lua_State *L, size_t n) {
  return (char *)prv_newuserdata(L, n ? n : 1);
}

static int push_fail(lua_State *L, const char *msg) {
  lua_pushnil(L);
  lua_pushstring(L, msg);
  return 2;
}

/* ---- base64 ------------------------------------------------------------ */

static int b64enc(lua_State *L, int url) {
  size_t n, outn;
  const char *s = luaL_checklstring(L, 1, &n);
  char *out = scratch(L, prv_b64_encoded_len(n, url));
  outn = prv_b64_encode(s, n, out, url);
  lua_pushlstring(L, out, outn);
  return 1;
}

static int b64dec(lua_State *L, int url) {
  size_t n, outn = 0, pos = 0;
  const char *why = "invalid";
  const char *s = luaL_checklstring(L, 1, &n);
  unsigned char *out = (unsigned char *)scratch(L, prv_b64_decoded_maxlen(n));
  if (prv_b64_decode(s, n, out, &outn, url, &pos, &why)) {
    lua_pushnil(L);
    lua_pushfstring(L, "invalid %s at byte %d: %s", url ? "base64url" : "base64", (int)pos + 1, why);
    return 2;
  }
  lua_pushlstring(L, (const char *)out, outn);
  return 1;
}

static int l_b64encode(lua_State *L) { return b64enc(L, 0); }
static int l_b64decode(lua_State *L) { return b64dec(L, 0); }
static int l_b64url_encode(lua_State *L) { return b64enc(L, 1); }
static int l_b64url_decode(lua_State *L) { return b64dec(L, 1); }

/* ---- digests ------------------------------------------------------------ */

static int l_sha256(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  unsigned char md[PRV_SHA256_LEN];
  char err[ERRLEN];
  if (prv_sha256(s, n, md, err, sizeof err)) return push_fail(L, err);
  lua_pushlstring(L, (const char *)md, sizeof md);
  return 1;
}

static int l_hmac_sha256(lua_State *L) {
  size_t kn, mn;
  const char *k = luaL_checklstring(L, 1, &kn);
  const char *m = luaL_checklstring(L, 2, &mn);
  unsigned char md[PRV_SHA256_LEN];
  char err[ERRLEN];
  if (prv_hmac_sha256(k, kn, m, mn, md, err, sizeof err)) return push_fail(L, err);
  lua_pushlstring(L, (const char *)md, sizeof md);
  return 1;
}

static int l_hex(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char *out;
  if (n > ((size_t)-1) / 2) return luaL_argerror(L, 1, "string too long");
  out = scratch(L, 2 * n);
  lua_pushlstring(L, out, prv_hex_encode(s, n, out));
  return 1;
}

/* ---- randomness ---------------------------------------------------------- */

static int l_random_bytes(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  char err[ERRLEN];
  char *out;
  luaL_argcheck(L, n >= 0 && n <= (lua_Integer)1 << 30, 1, "must be between 0 and 2^30");
  out = scratch(L, (size_t)n);
  if (prv_random_bytes(out, (size_t)n, err, sizeof err)) return push_fail(L, err);
  lua_pushlstring(L, out, (size_t)n);
  return 1;
}

static int l_uuid4(lua_State *L) {
  char out[PRV_UUID_LEN + 1];
  char err[ERRLEN];
  if (prv_uuid4(out, err, sizeof err)) return push_fail(L, err);
  lua_pushlstring(L, out, PRV_UUID_LEN);
  return 1;
}

/* ---- percent-encoding, query, headers ------------------------------------ */

static int l_pct_encode(lua_State *L) {
  size_t n, len;
  char small[256];
  char *out;
  const char *s = luaL_checklstring(L, 1, &n);
  len = prv_pct_encoded_len(s, n);
  if (len == n) {          /* nothing to encode: the string itself (a number was converted in place) */
    lua_settop(L, 1);
    return 1;
  }
  out = len <= sizeof small ? small : scratch(L, len);   /* the usual short segment: no userdata */
  lua_pushlstring(L, out, prv_pct_encode(s, n, out));
  return 1;
}

/* The string form of a query key or value at idx; NULL for a bad type.
 * Strings come straight from the entry table's slot, which the caller keeps
 * on the stack; numbers and booleans are formatted into num. */
static const char *query_part(lua_State *L, int idx, size_t *len, char *num, size_t numlen) {
  switch (lua_type(L, idx)) {
    case LUA_TSTRING:
      return lua_tolstring(L, idx, len);
    case LUA_TNUMBER: {
      const char *s;
      lua_pushvalue(L, idx);
      s = lua_tolstring(L, -1, len);
      if (*len >= numlen) *len = numlen - 1;
      memcpy(num, s, *len);
      num[*len] = '\0';
      lua_pop(L, 1);
      return num;
    }
    case LUA_TBOOLEAN:
      *len = lua_toboolean(L, idx) ? 4 : 5;
      return lua_toboolean(L, idx) ? "true" : "false";
    default:
      return NULL;
  }
}

/* build_query({{k, v}, ...}) -> "k=v&k=v" (both sides percent-encoded).
 * One pass: each key and value is read once, held on the stack, then
 * measured and written into a buffer that grows by realloc, so no Lua
 * allocation (and no finalizer that could change the table) falls between
 * measuring a part and writing it. */
static int l_build_query(lua_State *L) {
  int i, n;
  prv_obuf *out;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  out = prv_obuf_push(L); /* 2 */
  n = (int)prv_rawlen(L, 1);
  for (i = 1; i <= n; i++) {
    int side;
    lua_rawgeti(L, 1, i); /* 3: the entry */
    if (!lua_istable(L, 3))
      return luaL_error(L, "bad argument #1 to 'build_query' (entry %d is not a {key, value} pair)", i);
    for (side = 1; side <= 2; side++) {
      char num[64];
      size_t len, need;
      const char *s;
      lua_rawgeti(L, 3, side); /* 4: key or value, anchored while s is used */
      s = query_part(L, 4, &len, num, sizeof num);
      if (!s)
        return luaL_error(L, "bad argument #1 to 'build_query' (entry %d: %s must be a string, number or boolean, got %s)",
                          i, side == 1 ? "key" : "value", luaL_typename(L, 4));
      need = prv_pct_encoded_len(s, len) + 1; /* the '&' before a key, the '=' before a value */
      if (!prv_obuf_reserve(out, need)) return luaL_error(L, "build_query: out of memory");
      if (side == 2) out->p[out->len++] = '=';
      else if (i > 1) out->p[out->len++] = '&';
      out->len += prv_pct_encode(s, len, out->p + out->len);
      lua_settop(L, 3);
    }
    lua_settop(L, 2);
  }
  lua_pushlstring(L, out->p ? out->p : "", out->len);
  prv_obuf_free(out);
  return 1;
}

static int l_header_value_ok(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_pushboolean(L, prv_header_value_ok(s, n));
  return 1;
}

/* ---- JWT ------------------------------------------------------------------ */

/* Decode one base64url JWT segment as a JSON object; pushes it (returns 1)
 * or pushes an error message (returns 0). */
static int jwt_segment(lua_State *L, const char *seg, size_t n, const char *what) {
  size_t outn = 0, pos = 0;
  const char *why = "invalid";
  unsigned char *raw = (unsigned char *)scratch(L, prv_b64_decoded_maxlen(n) + 1);
  if (n == 0) {
    lua_pop(L, 1);
    lua_pushfstring(L, "malformed JWT: empty %s", what);
    return 0;
  }
  if (prv_b64_decode(seg, n, raw, &outn, 1, &pos, &why)) {
    lua_pop(L, 1);
    lua_pushfstring(L, "malformed JWT: %s is not base64url (%s)", what, why);
    return 0;
  }
  raw[outn] = 0;
  if (!prv_json_decode(L, (const char *)raw, outn)) {
    lua_pushfstring(L, "malformed JWT: %s is not JSON (%s)", what, lua_tostring(L, -1));
    lua_remove(L, -2);
    lua_remove(L, -2);
    return 0;
  }
  lua_remove(L, -2); /* scratch */
  /* an object: a table without metatable (decoded arrays carry core.array_mt) */
  if (lua_istable(L, -1) && !lua_getmetatable(L, -1)) return 1;
  lua_settop(L, lua_istable(L, -1) ? lua_gettop(L) - 2 : lua_gettop(L) - 1);
  lua_pushfstring(L, "malformed JWT: %s is not a JSON object", what);
  return 0;
}

typedef struct {
  const char *h, *p, *s; /* header, payload, signature segments */
  size_t hn, pn, sn;
} jwt_parts;

static int jwt_split(const char *tok, size_t n, jwt_parts *j, const char **why) {
  const char *d1 = memchr(tok, '.', n), *d2;
  if (!d1) { *why = "malformed JWT: expected 3 dot-separated parts"; return -1; }
  d2 = memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - tok));
  if (!d2) { *why = "malformed JWT: expected 3 dot-separated parts"; return -1; }
  if (memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - tok))) {
    *why = "malformed JWT: more than 3 parts (an encrypted JWE is not supported)";
    return -1;
  }
  j->h = tok; j->hn = (size_t)(d1 - tok);
  j->p = d1 + 1; j->pn = (size_t)(d2 - d1 - 1);
  j->s = d2 + 1; j->sn = n - (size_t)(d2 + 1 - tok);
  return 0;
}

/* jwt_decode(token) -> payload, header | nil, err. No signature check. The
 * token never appears in the message (it is a credential). */
static int l_jwt_decode(lua_State *L) {
  size_t n;
  const char *tok = luaL_checklstring(L, 1, &n);
  const char *why;
  jwt_parts j;
  lua_settop(L, 1);
  if (jwt_split(tok, n, &j, &why)) return push_fail(L, why);
  if (!jwt_segment(L, j.h, j.hn, "header")) return push_fail(L, lua_tostring(L, -1));
  if (!jwt_segment(L, j.p, j.pn, "payload")) return push_fail(L, lua_tostring(L, -1));
  lua_insert(L, 2); /* payload, header */
  return 2;
}

/* jwt_sign_hs256(payload_json, secret) -> token | nil, err */
static int l_jwt_sign_hs256(lua_State *L) {
  static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
  size_t pn, kn, hlen, plen, o = 0;
  const char *payload = luaL_checklstring(L, 1, &pn);
  const char *key = luaL_checklstring(L, 2, &kn);
  unsigned char mac[PRV_SHA256_LEN];
  char err[ERRLEN];
  char *out;
  lua_settop(L, 2);
  if (!prv_json_decode(L, payload, pn)) {
    lua_pushfstring(L, "jwt_sign_hs256: payload is not JSON (%s)", lua_tostring(L, -1));
    return push_fail(L, lua_tostring(L, -1));
  }
  if (!lua_istable(L, -1) || lua_getmetatable(L, -1))
    return push_fail(L, "jwt_sign_hs256: payload must be a JSON object");
  lua_settop(L, 2);
  hlen = prv_b64_encoded_len(sizeof header - 1, 1);
  plen = prv_b64_encoded_len(pn, 1);
  out = scratch(L, hlen + 1 + plen + 1 + prv_b64_encoded_len(PRV_SHA256_LEN, 1));
  o += prv_b64_encode(header, sizeof header - 1, out, 1);
  out[o++] = '.';
  o += prv_b64_encode(payload, pn, out + o, 1);
  if (prv_hmac_sha256(key, kn, out, o, mac, err, sizeof err)) return push_fail(L, err);
  out[o++] = '.';
  o += prv_b64_encode(mac, sizeof mac, out + o, 1);
  lua_pushlstring(L, out, o);
  return 1;
}

/* jwt_verify_hs256(token, secret) -> payload, header | nil, err.
 * Checks alg == "HS256" and the signature (constant time); claims such as
 * exp/nbf are left to the caller. */
static int l_jwt_verify_hs256(lua_State *L) {
  size_t n, kn, sigraw = 0, pos = 0;
  const char *tok = luaL_checklstring(L, 1, &n);
  const char *key = luaL_checklstring(L, 2, &kn);
  const char *why = "invalid";
  unsigned char mac[PRV_SHA256_LEN], sig[PRV_SHA256_LEN + 3];
  char err[ERRLEN];
  jwt_parts j;
  int alg_ok;
  lua_settop(L, 2);
  if (jwt_split(tok, n, &j, &why)) return push_fail(L, why);
  if (!jwt_segment(L, j.h, j.hn, "header")) return push_fail(L, lua_tostring(L, -1));
  lua_getfield(L, 3, "alg");
  alg_ok = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "HS256") == 0;
  lua_pop(L, 1);
  if (!alg_ok) return push_fail(L, "JWT: header alg is not HS256");
  if (j.sn != prv_b64_encoded_len(PRV_SHA256_LEN, 1) ||
      prv_b64_decode(j.s, j.sn, sig, &sigraw, 1, &pos, &why) || sigraw != PRV_SHA256_LEN)
    return push_fail(L, "JWT: malformed signature");
  if (prv_hmac_sha256(key, kn, tok, (size_t)(j.s - 1 - tok), mac, err, sizeof err)) return push_fail(L, err);
  if (!prv_ct_equal(mac, sig, PRV_SHA256_LEN)) return push_fail(L, "JWT: signature mismatch");
  if (!jwt_segment(L, j.p, j.pn, "payload")) return push_fail(L, lua_tostring(L, -1));
  lua_insert(L, 3); /* payload, header */
  return 2;
}

void prv_open_codec(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"b64encode", l_b64encode},
    {"b64decode", l_b64decode},
    {"b64url_encode", l_b64url_encode},
    {"b64url_decode", l_b64url_decode},
    {"sha256", l_sha256},
    {"hmac_sha256", l_hmac_sha256},
    {"hex", l_hex},
    {"random_bytes", l_random_bytes},
    {"uuid4", l_uuid4},
    {"jwt_decode", l_jwt_decode},
    {"jwt_sign_hs256", l_jwt_sign_hs256},
    {"jwt_verify_hs256", l_jwt_verify_hs256},
    {"encode_path_segment", l_pct_encode},
    {"encode_query_component", l_pct_encode},
    {"build_query", l_build_query},
    {"header_value_ok", l_header_value_ok},
    {NULL, NULL},
  };
  prv_setfuncs(L, fns);
}
