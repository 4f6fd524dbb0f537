-- Library files must parse under Lua 5.1 and 5.4; the rest may use 5.4.
std = "lua54"
max_line_length = 140
files["lua/provision/apis"] = { std = "max", max_line_length = false }
files["lua/provision"] = { std = "max" }
files["tests/spec"] = { std = "lua54+busted" }
files["bench"] = { std = "lua54" }
