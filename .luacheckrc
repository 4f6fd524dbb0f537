-- Library files must parse under Lua 5.1/LuaJIT and 5.4; the rest may use 5.4.
std = "lua54"
max_line_length = 140
files["lua/provision"] = { std = "max" }
files["lua/provision/apis"] = { std = "max", max_line_length = false }
-- generated data (scripts/gen-schemas.lua): a long description or model name stays on its line
files["lua/provision/schemas"] = { std = "max", max_line_length = false }
files["tests"] = { max_line_length = 160, unused_args = false }
files["tests/spec"] = { std = "lua54+busted", max_line_length = 160, unused_args = false }
files["bench"] = { max_line_length = 160 }
