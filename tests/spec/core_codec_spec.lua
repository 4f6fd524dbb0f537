-- provision.core encoding and auth primitives (csrc/codec.c, csrc/pure/):
-- docs/core-api.md "Encoding and auth primitives".
local build = os.getenv("PROVISION_BUILD")
if build then package.cpath = build .. "/?.so;" .. package.cpath end
local core = require "provision.core"

local function tohex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end

-- the jwt.io example token (HS256, secret "your-256-bit-secret")
local JWT_IO = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
  .. "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
  .. "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
local JWT_IO_PAYLOAD = '{"sub":"1234567890","name":"John Doe","iat":1516239022}'

describe("core base64", function()
  local vectors = { -- RFC 4648 §10
    { "", "", "" }, { "f", "Zg==", "Zg" }, { "fo", "Zm8=", "Zm8" }, { "foo", "Zm9v", "Zm9v" },
    { "foob", "Zm9vYg==", "Zm9vYg" }, { "fooba", "Zm9vYmE=", "Zm9vYmE" }, { "foobar", "Zm9vYmFy", "Zm9vYmFy" },
  }
  it("encodes and decodes the RFC 4648 vectors", function()
    for _, v in ipairs(vectors) do
      assert.equal(v[2], core.b64encode(v[1]))
      assert.equal(v[1], core.b64decode(v[2]))
      assert.equal(v[3], core.b64url_encode(v[1]))
      assert.equal(v[1], core.b64url_decode(v[3]))
      assert.equal(v[1], core.b64url_decode(v[2])) -- padding optional
    end
  end)

  it("round-trips binary data in both alphabets", function()
    local all = {}
    for i = 0, 255 do all[#all + 1] = string.char(i) end
    local bin = table.concat(all)
    assert.equal(bin, core.b64decode(core.b64encode(bin)))
    assert.equal(bin, core.b64url_decode(core.b64url_encode(bin)))
    assert.equal("-_-_", core.b64url_encode("\251\255\191"))
    assert.equal("+/+/", core.b64encode("\251\255\191"))
  end)

  it("returns nil, err for bad input", function()
    for _, s in ipairs { "Zg", "Zg=", "Z===", "Zm9v Zm9v", "Zm-v", "Zm9v====", "ü" } do
      local v, err = core.b64decode(s)
      assert.is_nil(v, s)
      assert.matches("^invalid base64 at byte %d+: ", err)
    end
    for _, s in ipairs { "Zg=", "Z", "Zm+v", "Zm/v", "a b" } do
      local v, err = core.b64url_decode(s)
      assert.is_nil(v, s)
      assert.matches("^invalid base64url at byte %d+: ", err)
    end
    assert.has_error(function() core.b64decode() end)
  end)
end)

describe("core digests", function()
  it("sha256 matches FIPS 180-2", function()
    assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", core.hex(core.sha256("abc")))
    assert.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", core.hex(core.sha256("")))
    assert.equal("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
      core.hex(core.sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")))
    assert.equal(32, #core.sha256("x"))
  end)

  it("hmac_sha256 matches RFC 4231", function()
    assert.equal("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
      core.hex(core.hmac_sha256(string.rep("\11", 20), "Hi There")))
    assert.equal("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
      core.hex(core.hmac_sha256("Jefe", "what do ya want for nothing?")))
    assert.equal("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
      core.hex(core.hmac_sha256(string.rep("\170", 131), "Test Using Larger Than Block-Size Key - Hash Key First")))
  end)

  it("hex is lower-case", function()
    assert.equal("00ff10ab", core.hex("\0\255\16\171"))
    assert.equal("", core.hex(""))
    assert.equal(tohex("héllo"), core.hex("héllo"))
  end)
end)

describe("core randomness", function()
  it("random_bytes returns n bytes", function()
    assert.equal(0, #core.random_bytes(0))
    assert.equal(32, #core.random_bytes(32))
    assert.equal(100000, #core.random_bytes(100000))
    assert.not_equal(core.random_bytes(16), core.random_bytes(16))
    assert.has_error(function() core.random_bytes(-1) end)
    assert.has_error(function() core.random_bytes("x") end)
  end)

  it("uuid4 is an RFC 4122 version 4 UUID", function()
    local seen = {}
    for _ = 1, 100 do
      local u = core.uuid4()
      assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$", u)
      assert.equal(u:lower(), u)
      assert.is_nil(seen[u])
      seen[u] = true
    end
  end)
end)

describe("core JWT", function()
  it("decodes a known token without checking the signature", function()
    local payload, header = core.jwt_decode(JWT_IO)
    assert.same({ sub = "1234567890", name = "John Doe", iat = 1516239022 }, payload)
    assert.equal("integer", math.type(payload.iat))
    assert.same({ alg = "HS256", typ = "JWT" }, header)
    -- an unsecured token (empty signature) decodes too
    local p2 = core.jwt_decode(JWT_IO:match("^(.-%..-%.)"))
    assert.equal("John Doe", p2.name)
  end)

  it("signs the jwt.io example exactly", function()
    assert.equal(JWT_IO, core.jwt_sign_hs256(JWT_IO_PAYLOAD, "your-256-bit-secret"))
  end)

  it("sign / verify round trip", function()
    local claims = core.json_encode({ sub = "u-1", exp = 4102444800, id = 1234567890123456789, roles = setmetatable({}, core.array_mt) })
    local tok = assert(core.jwt_sign_hs256(claims, "s3cret"))
    local payload, header = assert(core.jwt_verify_hs256(tok, "s3cret"))
    assert.equal(1234567890123456789, payload.id)
    assert.equal(core.array_mt, getmetatable(payload.roles))
    assert.equal("HS256", header.alg)
    local v, err = core.jwt_verify_hs256(tok, "wrong")
    assert.is_nil(v)
    assert.equal("JWT: signature mismatch", err)
    -- a tampered payload fails
    local h, _, s = tok:match("^([^.]+)%.([^.]+)%.([^.]+)$")
    local forged = h .. "." .. core.b64url_encode('{"sub":"admin"}') .. "." .. s
    v, err = core.jwt_verify_hs256(forged, "s3cret")
    assert.is_nil(v)
    assert.equal("JWT: signature mismatch", err)
    -- alg none is refused
    local none = core.b64url_encode('{"alg":"none"}') .. "." .. core.b64url_encode("{}") .. "."
    v, err = core.jwt_verify_hs256(none, "s3cret")
    assert.is_nil(v)
    assert.matches("alg is not HS256", err)
    v, err = core.jwt_verify_hs256(JWT_IO:sub(1, -2), "your-256-bit-secret")
    assert.is_nil(v)
    assert.matches("signature", err)
    assert(core.jwt_verify_hs256(JWT_IO, "your-256-bit-secret"))
  end)

  it("refuses a payload that is not a JSON object", function()
    for _, p in ipairs { "not json", "[1,2]", "42", "" } do
      local v, err = core.jwt_sign_hs256(p, "k")
      assert.is_nil(v)
      assert.matches("jwt_sign_hs256: payload", err)
    end
  end)

  it("returns nil, err for malformed tokens and never echoes the token", function()
    local secretish = "eyJhbGciOiJIUzI1NiJ9"
    local cases = {
      { "", "3 dot%-separated parts" },
      { "abc", "3 dot%-separated parts" },
      { "a.b", "3 dot%-separated parts" },
      { "a.b.c.d.e", "more than 3 parts" },
      { ".e30.", "empty header" },
      { secretish .. "..", "empty payload" },
      { "!!!.e30.", "header is not base64url" },
      { secretish .. ".bm90IGpzb24.", "payload is not JSON" },
      { secretish .. ".WzFd.", "payload is not a JSON object" },
      { "MQ.e30.", "header is not a JSON object" },
    }
    for _, c in ipairs(cases) do
      local v, err = core.jwt_decode(c[1])
      assert.is_nil(v, c[1])
      assert.matches(c[2], err)
      assert.is_nil(err:find(secretish, 1, true))
    end
  end)
end)

describe("core percent-encoding", function()
  it("encode_path_segment escapes everything but unreserved", function()
    assert.equal("..%2Fx", core.encode_path_segment("../x"))
    assert.equal("a%2Fb", core.encode_path_segment("a/b"))
    assert.equal("%3F%23%25", core.encode_path_segment("?#%"))
    assert.equal("AZaz09-._~", core.encode_path_segment("AZaz09-._~"))
    assert.equal("%C3%80%20%E3%82%A2", core.encode_path_segment("À ア")) -- RFC 3986 §2.5
    assert.equal("a%00b", core.encode_path_segment("a\0b"))
    assert.equal("42", core.encode_path_segment(42))
    -- ".." alone stays "..": the caller must not use it as a whole segment
    assert.equal("..", core.encode_path_segment(".."))
  end)

  it("encode_query_component writes space as %20", function()
    assert.equal("a%20b%2Bc%3Dd%26e", core.encode_query_component("a b+c=d&e"))
  end)

  it("build_query keeps order and repeated keys", function()
    assert.equal("tag=a&tag=b%20c&x%26y=1%3D2", core.build_query({ { "tag", "a" }, { "tag", "b c" }, { "x&y", "1=2" } }))
    assert.equal("", core.build_query({}))
    assert.equal("n=5&f=1.5&t=true&no=false&e=", core.build_query({ { "n", 5 }, { "f", 1.5 }, { "t", true }, { "no", false }, { "e", "" } }))
    assert.has_error(function() core.build_query({ { "k" } }) end)
    assert.has_error(function() core.build_query({ "k=v" }) end)
    assert.has_error(function() core.build_query({ { "k", {} } }) end)
    assert.has_error(function() core.build_query("k=v") end)
  end)

  it("header_value_ok refuses CR, LF and NUL", function()
    assert.is_true(core.header_value_ok("Bearer abc.def"))
    assert.is_true(core.header_value_ok(""))
    assert.is_false(core.header_value_ok("a\r\nX-Injected: 1"))
    assert.is_false(core.header_value_ok("a\nb"))
    assert.is_false(core.header_value_ok("a\rb"))
    assert.is_false(core.header_value_ok("a\0b"))
  end)

  it("refuses a JWT whose payload is not an object, even a bare number", function()
    for _, payload in ipairs({ "12", "1.5", "[1]", "\"x\"", "null" }) do
      local tok = core.b64url_encode('{"alg":"HS256"}') .. "." .. core.b64url_encode(payload) .. ".sig"
      local p, err = core.jwt_decode(tok)
      assert.is_nil(p)
      assert.is_truthy(err:find("not a JSON object", 1, true), err)
    end
  end)
end)
