-- provision.core JSON codec (csrc/json.c): docs/core-api.md "JSON".
local build = os.getenv("PROVISION_BUILD")
if build then package.cpath = build .. "/?.so;" .. package.cpath end
local core = require "provision.core"

local decode, encode = core.json_decode, core.json_encode
local function enc(v) return encode(v, { sort_keys = true }) end

-- assert that s fails to decode and that the message names byte `at`
local function bad(s, at, reason)
  local v, err = decode(s)
  assert.is_nil(v, "decoded: " .. s)
  assert.is_string(err)
  assert.matches("^invalid JSON at byte " .. at .. ": ", err)
  if reason then assert.matches(reason, err, 1, true) end
end

describe("core.json_decode", function()
  it("keeps 64-bit integers exact and as Lua integers", function()
    for _, s in ipairs { "1234567890123456789", "-9223372036854775808", "9223372036854775807", "0", "-1" } do
      local v = decode(s)
      assert.equal("integer", math.type(v))
      assert.equal(s, encode(v))
    end
    assert.equal(math.mininteger, decode("-9223372036854775808"))
    local t = decode('{"id":1234567890123456789,"ids":[9007199254740993]}')
    assert.equal(1234567890123456789, t.id)
    assert.equal(9007199254740993, t.ids[1])
    assert.equal('{"id":1234567890123456789,"ids":[9007199254740993]}', enc(t))
  end)

  it("decodes integers beyond int64 and numbers with fraction or exponent as floats", function()
    assert.equal("float", math.type(decode("9223372036854775808")))
    assert.equal("float", math.type(decode("-9223372036854775809")))
    assert.equal("float", math.type(decode("1.0")))
    assert.equal("float", math.type(decode("1e2")))
    assert.equal(100.0, decode("1E+2"))
    assert.equal(0.015, decode("1.5e-2"))
    assert.equal(-0.5, decode("-0.5"))
  end)

  it("round-trips floats with the shortest exact form", function()
    for _, x in ipairs { 0.1, 1 / 3, -2.5e-300, 1.7976931348623157e308, 5e-324, 123456.789, 2 ^ 63, 0.30000000000000004 } do
      local s = encode(x)
      assert.equal(x, decode(s))
      assert.is_true(#s <= 24)
    end
    assert.equal("0.1", encode(0.1))
    assert.equal("0.3333333333333333", encode(1 / 3))
    assert.equal("1e+300", encode(1e300))
  end)

  it("keeps null and absent distinct", function()
    local t = decode('{"a":null,"b":[null,1]}')
    assert.equal(core.null, t.a)
    assert.is_nil(t.c)
    assert.equal(core.null, t.b[1])
    assert.equal(2, #t.b)
    assert.equal('{"a":null,"b":[null,1]}', enc(t))
    assert.equal("null", encode(core.null))
  end)

  it("core.null is a light userdata equal to cjson.null", function()
    assert.equal("userdata", type(core.null))
    local ok, cjson = pcall(require, "cjson")
    if ok then assert.equal(cjson.null, core.null) end
  end)

  it("marks arrays with core.array_mt so [] survives a round trip", function()
    local t = decode('{"list":[],"obj":{},"nested":[[],[{}]]}')
    assert.equal(core.array_mt, getmetatable(t.list))
    assert.is_nil(getmetatable(t.obj))
    assert.equal('{"list":[],"nested":[[],[{}]],"obj":{}}', enc(t))
    assert.equal("[]", encode(decode("[]")))
    assert.equal("{}", encode(decode("{}")))
    assert.equal("[]", encode(setmetatable({}, core.array_mt)))
  end)

  it("decodes nested documents", function()
    local t = decode(' { "a" : [ 1 , { "b" : [ true , false , "x" ] } ] , "c" : { } } ')
    assert.equal(1, t.a[1])
    assert.same({ true, false, "x" }, t.a[2].b)
    assert.same({}, t.c)
  end)

  it("decodes string escapes and \\u escapes with surrogate pairs", function()
    assert.equal('"\\/\b\f\n\r\t', decode([["\"\\\/\b\f\n\r\t"]]))
    assert.equal("é", decode([["\u00e9"]]))
    assert.equal("€", decode([["\u20AC"]]))
    assert.equal("😀", decode([["\ud83d\ude00"]]))
    assert.equal("\0", decode([["\u0000"]]))
    assert.equal("a😀b", decode([["a\uD83D\uDE00b"]]))
    assert.equal("ünïcødé", decode('"ünïcødé"')) -- raw UTF-8 kept as is
  end)

  it("has object keys as strings, last duplicate wins", function()
    local t = decode('{"1":"a","1":"b"}')
    assert.equal("b", t["1"])
    assert.is_nil(t[1])
  end)

  it("returns nil and a message naming the byte for every kind of error", function()
    bad("", 1, "unexpected end of input")
    bad("   ", 4, "unexpected end of input")
    bad("[1,]", 4, "expected a JSON value")
    bad("[1 2]", 4, "expected ',' or ']'")
    bad("{\"a\" 1}", 6, "expected ':'")
    bad("{\"a\":1,}", 8, "expected string key")
    bad("{a:1}", 2, "expected string key")
    bad("{\"a\":1", 7, "unexpected end of input")
    bad("[", 2, "unexpected end of input")
    bad('"abc', 1, "unterminated string")
    bad('"a\tb"', 3, "control character in string")
    bad('"a\nb"', 3, "control character in string")
    bad('"\\x"', 2, "invalid escape")
    bad('"\\u12"', 2, "invalid \\u escape")
    bad('"\\u12G4"', 2, "invalid \\u escape")
    bad('"\\ud800"', 2, "unpaired high surrogate")
    bad('"\\ud800\\u0041"', 2, "unpaired high surrogate")
    bad('"\\udc00"', 2, "unpaired low surrogate")
    bad("01", 1, "leading zero")
    bad("-", 2, "expected digit")
    bad("1.", 3, "expected digit after '.'")
    bad(".5", 1, "expected a JSON value")
    bad("+1", 1, "expected a JSON value")
    bad("1e", 3, "expected digit in exponent")
    bad("1e400", 1, "number out of range")
    bad("tru", 4, "unexpected end of input")
    bad("nul", 4, "unexpected end of input")
    bad("nulx", 4, "invalid literal")
    bad("NaN", 1, "expected a JSON value")
    bad("[1] x", 5, "trailing characters")
    bad("{} {}", 4, "trailing characters")
    bad("\239\187\191{}", 1, "0xEF") -- BOM
    bad("[\"\\u0000\", 1, ]", 15, "got ']'")
  end)

  it("fails cleanly inside long escaped strings at any depth, also in a coroutine", function()
    -- regression: Lua 5.4.4's lua_settop over a grown luaL_Buffer (a
    -- to-be-closed slot) could leave a dangling stack top (seen by the fuzzer
    -- and valgrind); run this spec under valgrind/ASan to check it.
    for d = 1, 512, 7 do
      local s = string.rep("[", d) .. '"' .. string.rep("a", 3000) .. "\\n" .. string.rep("b", 3000) .. '\\x"'
      local v, err = decode(s)
      assert.is_nil(v)
      assert.matches("invalid escape", err)
      v, err = coroutine.wrap(function() return decode(s) end)()
      assert.is_nil(v)
      assert.matches("invalid escape", err)
    end
  end)

  it("enforces a nesting depth limit of 512", function()
    local ok512 = string.rep("[", 512) .. string.rep("]", 512)
    assert.is_table(decode(ok512))
    assert.equal(ok512, encode(decode(ok512)))
    bad(string.rep("[", 513) .. string.rep("]", 513), 513, "nesting deeper than 512")
    bad(string.rep('{"a":', 513) .. "1" .. string.rep("}", 513), 2561, "nesting deeper than 512")
    bad(string.rep("[", 100000), 513, "nesting deeper than 512")
  end)

  it("decodes a 10 MB document", function()
    local parts = {}
    for i = 1, 60000 do
      parts[i] = string.format(
        '{"id":%d,"name":"user %d \\u00e9","email":"u%d@example.com","active":%s,"score":%.3f,"tags":["a","b"],"manager":null}',
        1000000000000000000 + i, i, i, i % 2 == 0 and "true" or "false", i / 7)
    end
    local doc = "[" .. table.concat(parts, ",\n") .. "]"
    assert.is_true(#doc > 7 * 1024 * 1024)
    local pad = string.rep(" ", 10 * 1024 * 1024 - #doc)
    doc = doc .. pad
    assert.equal(10 * 1024 * 1024, #doc)
    local t = assert(decode(doc))
    assert.equal(60000, #t)
    assert.equal(1000000000000060000, t[60000].id)
    assert.equal("user 7 é", t[7].name)
    local again = assert(encode(t))
    assert.same(t, decode(again))
  end)

  it("raises only for a wrong argument type", function()
    assert.has_error(function() decode() end)
    assert.has_error(function() decode({}) end)
  end)
end)

describe("core.json_encode", function()
  it("encodes scalars", function()
    assert.equal("true", encode(true))
    assert.equal("false", encode(false))
    assert.equal("null", encode(nil))
    assert.equal("42", encode(42))
    assert.equal("-9223372036854775808", encode(math.mininteger))
    assert.equal("3", encode(3.0))
    assert.equal('"x"', encode("x"))
  end)

  it("escapes strings fully and keeps UTF-8", function()
    assert.equal([["\"\\\b\f\n\r\t"]], encode('"\\\b\f\n\r\t'))
    assert.equal('"\127"', encode("\127")) -- DEL is legal in JSON strings
    assert.equal('"\\u0000\\u001f"', encode("\0\31"))
    assert.equal('"a/b é 😀"', encode("a/b é 😀"))
    for _, s in ipairs { "", "plain", "\0\1\2\3 mixed \"q\" \\ \n end", "é😀" } do
      assert.equal(s, decode(encode(s)))
    end
  end)

  it("treats keys exactly 1..n as an array and an empty table as an object", function()
    assert.equal("[1,2,3]", encode({ 1, 2, 3 }))
    assert.equal("{}", encode({}))
    assert.equal('{"1":"a","3":"c"}', enc({ [1] = "a", [3] = "c" }))
    assert.equal('{"1":1,"x":2}', enc({ 1, x = 2 }))
    assert.equal('{"0":"z","1":"a"}', enc({ [0] = "z", [1] = "a" }))
    assert.equal("[[],{}]", encode({ setmetatable({}, core.array_mt), {} }))
    -- array_mt: holes up to the length become null
    assert.equal("[1,null,3]", encode(setmetatable({ 1, core.null, 3 }, core.array_mt)))
  end)

  it("writes number keys as strings and refuses other key types", function()
    assert.equal('{"1.5":true,"2":false}', enc({ [1.5] = true, [2] = false, }))
    local v, err = encode({ [true] = 1 })
    assert.is_nil(v)
    assert.matches("object key of type boolean", err)
    v, err = encode({ [{}] = 1 })
    assert.is_nil(v)
    assert.matches("object key of type table", err)
    v, err = encode({ a = 1, [{}] = 1 }, { sort_keys = true })
    assert.is_nil(v)
    assert.matches("object key of type table", err)
  end)

  it("sorts object keys on request", function()
    local t = { b = 1, a = { z = 1, y = 2, [10] = 3, [9] = 4 }, ["aa"] = 0 }
    assert.equal('{"a":{"10":3,"9":4,"y":2,"z":1},"aa":0,"b":1}', encode(t, { sort_keys = true }))
  end)

  it("refuses NaN and infinity", function()
    for _, x in ipairs { 0 / 0, math.huge, -math.huge } do
      local v, err = encode({ x = x })
      assert.is_nil(v)
      assert.matches("NaN or infinity", err)
    end
    local v, err = encode({ [math.huge] = 1 })
    assert.is_nil(v)
    assert.matches("NaN or infinity", err)
  end)

  it("refuses functions, coroutines, userdata other than null", function()
    for _, x in ipairs { print, coroutine.create(print), io.stdout } do
      local v, err = encode({ x })
      assert.is_nil(v)
      assert.matches("cannot encode a value of type", err)
    end
  end)

  it("detects cycles but allows shared subtables", function()
    local t = { a = {} }
    t.a.back = t
    local v, err = encode(t)
    assert.is_nil(v)
    assert.matches("cycle", err)
    local arr = { 1 }
    arr[2] = arr
    v, err = encode(arr)
    assert.is_nil(v)
    assert.matches("cycle", err)
    local shared = { 1 }
    assert.equal('{"a":[1],"b":[1]}', enc({ a = shared, b = shared }))
  end)

  it("enforces the depth limit of 512", function()
    local t = {}
    local cur = t
    for _ = 1, 511 do cur[1] = {}; cur = cur[1] end
    assert.is_string(encode(t)) -- 512 levels
    cur[1] = {}
    local v, err = encode(t) -- 513 levels
    assert.is_nil(v)
    assert.matches("nesting deeper than 512", err)
  end)

  it("does not call metamethods", function()
    local t = setmetatable({}, { __index = function() error("called") end, __pairs = function() error("called") end })
    assert.equal("{}", encode(t))
  end)

  it("raises only for a wrong argument type", function()
    assert.has_error(function() encode() end)
    assert.has_error(function() encode({}, "sort") end)
  end)

  it("does not depend on the C locale's decimal point", function()
    local old = os.setlocale(nil, "numeric")
    local loc
    for _, name in ipairs { "de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "C.UTF-8" } do
      loc = os.setlocale(name, "numeric")
      if loc then break end
    end
    local ok, res = pcall(function()
      return { encode(0.5), decode("0.25"), decode("1.5e300") }
    end)
    os.setlocale(old, "numeric")
    assert.is_true(ok, res)
    assert.equal("0.5", res[1])
    assert.equal(0.25, res[2])
    assert.equal(1.5e300, res[3])
  end)
end)
