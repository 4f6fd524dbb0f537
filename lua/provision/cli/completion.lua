-- `provision completion bash|zsh|fish`: a completion script generated from
-- the tables (the commands, the four APIs, their operations over every
-- server generation, each operation's parameters and their enum values,
-- the global flags and their values), so that it can never drift from
-- what bin/provision accepts.
--
--   bash:  source <(provision completion bash)      (or save it under
--          /etc/bash_completion.d/ or ~/.local/share/bash-completion/completions/provision)
--   zsh:   source <(provision completion zsh)       (the bash function through zsh's bashcompinit)
--   fish:  provision completion fish > ~/.config/fish/completions/provision.fish
--
-- The scripts only look words up; they never run provision.
-- Lua 5.1/5.4 common syntax.
local core = require("provision.core")
local args = require("provision.cli.args")
local catalog = require("provision.cli.catalog")
local bodyfields = require("provision.cli.bodyfields")
local output = require("provision.cli.output")
local util = require("provision.cli.util")

local completion = {}

completion.shells = { "bash", "zsh", "fish" }

-- Only plain words go into a script (no quoting problems, no injection).
local function plain(w)
  return type(w) == "string" and w:find("^[%w%-][%w%._:/@+%-]*$") ~= nil
end

local function words_of(list)
  local out = {}
  for _, w in ipairs(list) do if plain(w) then out[#out + 1] = w end end
  return table.concat(out, " ")
end

local function values_of(p)
  if p.enum then return p.enum end
  if p.items_enum then return p.items_enum end
  return nil
end

-- Everything a script needs, as ordered lists:
--   commands, apis, valued (flags that take the next word), flags,
--   ops = {{api, "op1 op2"}}, opts = {{"api op", "--a --b"}},
--   bools = {{"api op", "--flag --no-flag"}} (options that take no value),
--   vals = {{"api op --param" | "* --flag" | "api op #k", "v1 v2"}}
function completion.data(commands)
  local d = { ops = {}, opts = {}, vals = {}, bools = {} }
  local cmds = { "apis", "help", "version" }
  for _, c in ipairs(commands) do cmds[#cmds + 1] = c.name end
  for _, k in ipairs(catalog.API_KEYS) do cmds[#cmds + 1] = k end
  d.commands = words_of(cmds)
  d.apis = words_of(catalog.API_KEYS)
  local flags, valued = {}, {}
  for _, f in ipairs(args.flags) do
    flags[#flags + 1] = "--" .. f.name
    if f.value and not f.optional then
      valued[#valued + 1] = "--" .. f.name
      if f.short then valued[#valued + 1] = "-" .. f.short end
    end
  end
  d.flags = words_of(flags)
  d.valued = words_of(valued)
  local function val(key, list) if list and #list > 0 then d.vals[#d.vals + 1] = { key, words_of(list) } end end
  val("* --output", output.formats)
  val("* -o", output.formats)
  val("* --generation", { "latest", "v0" })
  val("* --input-format", { "jsonl", "csv" })
  val("completion #1", completion.shells)
  local topics = { "exit-codes" }
  for _, c in ipairs(commands) do topics[#topics + 1] = c.name end
  for _, k in ipairs(catalog.API_KEYS) do topics[#topics + 1] = k end
  val("help #1", topics)
  for _, key in ipairs(catalog.API_KEYS) do
    local names = { "ops", "help" }
    for _, op in ipairs(catalog.all_operations(key)) do
      names[#names + 1] = op.name
      local opts, bools = {}, {}
      for _, p in ipairs(op.params) do
        opts[#opts + 1] = "--" .. p.name
        val(key .. " " .. op.name .. " --" .. p.name, values_of(p))
        if p.type == "boolean" then
          opts[#opts + 1] = "--no-" .. p.name
          bools[#bools + 1] = "--" .. p.name
          bools[#bools + 1] = "--no-" .. p.name
        end
      end
      -- the body's fields as flags (cli/bodyfields.lua), with their enum values
      for _, flag in ipairs(bodyfields.flags(op)) do
        opts[#opts + 1] = flag
        local f = bodyfields.lookup(op, flag:sub(3))
        if f and f.type == "boolean" then
          bools[#bools + 1] = flag
        elseif f and f.enum then
          local vals = {}
          for i, v in ipairs(f.enum) do vals[i] = tostring(v) end
          val(key .. " " .. op.name .. " " .. flag, vals)
        end
      end
      d.opts[#d.opts + 1] = { key .. " " .. op.name, words_of(opts) }
      if #bools > 0 then d.bools[#d.bools + 1] = { key .. " " .. op.name, words_of(bools) } end
      local req, extra = catalog.positional_params(op)
      local k = 0
      for _, list in ipairs({ req, extra }) do
        for _, p in ipairs(list) do
          k = k + 1
          if p["in"] ~= "body" then val(key .. " " .. op.name .. " #" .. k, values_of(p)) end
        end
      end
    end
    d.ops[#d.ops + 1] = { key, words_of(names) }
    val("help #2 " .. key, names)
  end
  return d
end

-- One line per {name, words} pair of `list`, for a bash case or a fish switch.
local function case_lines(list, indent, fmt)
  local out = {}
  for _, e in ipairs(list) do out[#out + 1] = indent .. fmt:format(e[1], e[2]) end
  return table.concat(out, "\n")
end

-- The bash function: the words so far come from COMP_LINE up to the
-- cursor (split on blanks), so `--status=act` is one word whatever
-- COMP_WORDBREAKS holds; when `=` breaks words, the candidates are the
-- values alone.
function completion.bash(d, version)
  return table.concat({
    "# bash completion for provision " .. version .. ", generated by `provision completion bash`.",
    "# Load it with:  source <(provision completion bash)",
    "_provision_ops() {",
    "  case \"$1\" in",
    case_lines(d.ops, "    ", "%s) echo \"%s\" ;;"),
    "  esac",
    "}",
    "_provision_opts() {",
    "  case \"$1\" in",
    case_lines(d.opts, "    ", "\"%s\") echo \"%s\" ;;"),
    "  esac",
    "}",
    "_provision_bools() {",
    "  case \"$1\" in",
    case_lines(d.bools, "    ", "\"%s\") echo \"%s\" ;;"),
    "  esac",
    "}",
    "_provision_vals() {",
    "  case \"$1\" in",
    case_lines(d.vals, "    ", "\"%s\") echo \"%s\" ;;"),
    "  esac",
    "}",
    "_provision_match() {",
    "  local p=\"$1\" add=\"$2\" x; shift 2",
    "  for x in \"$@\"; do [[ \"$x\" == \"$p\"* ]] && COMPREPLY+=(\"$add$x\"); done",
    "  return 0",
    "}",
    "_provision() {",
    "  local line=\"${COMP_LINE:0:${COMP_POINT:-${#COMP_LINE}}}\"",
    "  local -a w",
    "  read -ra w <<< \"$line\"",
    "  [[ \"$line\" =~ [[:space:]]$ ]] && w+=(\"\")",
    "  local cur=\"${w[${#w[@]}-1]}\" prev=\"\" cmd=\"\" op=\"\" n=0 i=1 list=\"\" opt=\"\" prefix=\"\"",
    "  local valued=\" " .. d.valued .. " \" flags=\" " .. d.flags .. " \"",
    "  local last=$(( ${#w[@]} - 1 ))",
    "  (( last >= 1 )) && prev=\"${w[last-1]}\"",
    "  while (( i < last )); do",
    "    case \"${w[i]}\" in",
    "      --*=*) ;;",
    "      -*) if [[ \"$valued\" == *\" ${w[i]} \"* ]]; then (( i++ ))",
    "          elif (( n >= 2 )) && [[ \"${w[i]}\" == --* && \"$flags\" != *\" ${w[i]} \"* ]] \\",
    "               && [[ \" $(_provision_bools \"$cmd $op\") \" != *\" ${w[i]} \"* ]]; then (( i++ )); fi ;;",
    "      *) (( n++ )); (( n == 1 )) && cmd=\"${w[i]}\"; (( n == 2 )) && op=\"${w[i]}\" ;;",
    "    esac",
    "    (( i++ ))",
    "  done",
    "  if [[ \"$cur\" == --*=* ]]; then",
    "    opt=\"${cur%%=*}\"; prefix=\"${cur#*=}\"",
    "  elif [[ \"$cur\" != -* && \"$prev\" == -* && $last -ge 2 ]] && [[ \"$valued\" == *\" $prev \"* \\",
    "         || ( $n -ge 2 && \"$prev\" == --* && \"$flags\" != *\" $prev \"* \\",
    "              && \" $(_provision_bools \"$cmd $op\") \" != *\" $prev \"* ) ]]; then",
    "    opt=\"$prev\"; prefix=\"$cur\"",
    "  fi",
    "  if [[ -n \"$opt\" ]]; then",
    "    list=\"$(_provision_vals \"$cmd $op $opt\")\"",
    "    [[ -z \"$list\" ]] && list=\"$(_provision_vals \"* $opt\")\"",
    "    COMPREPLY=()",
    "    if [[ \"$cur\" == --*=* && \"${COMP_WORDBREAKS:-}\" != *=* ]]; then",
    "      _provision_match \"$prefix\" \"$opt=\" $list",
    "    else",
    "      _provision_match \"$prefix\" \"\" $list",
    "    fi",
    "    return 0",
    "  fi",
    "  if [[ \"$cur\" == -* ]]; then",
    "    list=\"" .. d.flags .. "\"",
    "    (( n >= 2 )) && list=\"$(_provision_opts \"$cmd $op\") $list\"",
    "  elif (( n == 0 )); then",
    "    list=\"" .. d.commands .. "\"",
    "  elif [[ \"$cmd\" == help ]]; then",
    "    if (( n == 1 )); then list=\"$(_provision_vals \"help #1\")\"; else list=\"$(_provision_vals \"help #2 $op\")\"; fi",
    "  elif [[ \"$cmd\" == completion ]]; then",
    "    list=\"$(_provision_vals \"completion #1\")\"",
    "  elif (( n == 1 )); then",
    "    list=\"$(_provision_ops \"$cmd\")\"",
    "  else",
    "    list=\"$(_provision_vals \"$cmd $op #$(( n - 1 ))\")\"",
    "  fi",
    "  COMPREPLY=()",
    "  _provision_match \"$cur\" \"\" $list",
    "}",
    "complete -o default -F _provision provision",
    "",
  }, "\n")
end

-- zsh runs the bash function through bashcompinit, in ksh emulation (0-based
-- arrays, word splitting) with globbing off; zsh's `read` has no -a.
function completion.zsh(d, version)
  local body = completion.bash(d, version):gsub("^[^\n]*\n[^\n]*\n", "")
  body = body:gsub("_provision%(%) {\n", "_provision() {\n  emulate -L ksh; setopt noglob\n", 1)
  body = body:gsub("  read %-ra w <<< \"%$line\"\n", "  w=( $line )\n", 1)
  return table.concat({
    "#compdef provision",
    "# zsh completion for provision " .. version .. ", generated by `provision completion zsh`:",
    "# the bash completion function, run by zsh's bashcompinit.",
    "# Load it with:  source <(provision completion zsh)",
    "autoload -U +X compinit && { (( ${+_comps} )) || compinit -u; }",
    "autoload -U +X bashcompinit && bashcompinit",
    body,
  }, "\n")
end

function completion.fish(d, version)
  return table.concat({
    "# fish completion for provision " .. version .. ", generated by `provision completion fish`.",
    "# Save it:  provision completion fish > ~/.config/fish/completions/provision.fish",
    "function __provision_ops",
    "    switch $argv[1]",
    case_lines(d.ops, "        ", "case %s\n            echo %s"),
    "    end",
    "end",
    "function __provision_opts",
    "    switch \"$argv[1]\"",
    case_lines(d.opts, "        ", "case '%s'\n            echo %s"),
    "    end",
    "end",
    "function __provision_bools",
    "    switch \"$argv[1]\"",
    case_lines(d.bools, "        ", "case '%s'\n            echo %s"),
    "    end",
    "end",
    "function __provision_vals",
    "    switch \"$argv[1]\"",
    case_lines(d.vals, "        ", "case '%s'\n            echo %s"),
    "    end",
    "end",
    "function __provision_complete",
    "    set -l w (commandline -opc)",
    "    set -l cur (commandline -ct)",
    "    set -l valued " .. d.valued,
    "    set -l flags " .. d.flags,
    "    set -l cmd ''",
    "    set -l op ''",
    "    set -l n 0",
    "    set -l skip 0",
    "    for t in $w[2..-1]",
    "        if test $skip -eq 1",
    "            set skip 0",
    "            continue",
    "        end",
    "        switch $t",
    "            case '--*=*'",
    "            case '-*'",
    "                if contains -- $t $valued",
    "                    set skip 1",
    "                else if test $n -ge 2; and string match -q -- '--*' $t; and not contains -- $t $flags",
    "                    and not contains -- $t (string split ' ' -- (__provision_bools \"$cmd $op\"))",
    "                    set skip 1",
    "                end",
    "            case '*'",
    "                set n (math $n + 1)",
    "                test $n -eq 1; and set cmd $t",
    "                test $n -eq 2; and set op $t",
    "        end",
    "    end",
    "    set -l prev ''",
    "    test (count $w) -ge 2; and set prev $w[-1]",
    "    set -l list",
    "    if string match -q -- '--*=*' $cur",
    "        set -l opt (string split -m 1 = -- $cur)[1]",
    "        set list (string split ' ' -- (__provision_vals \"$cmd $op $opt\"))",
    "        test -z \"$list\"; and set list (string split ' ' -- (__provision_vals \"* $opt\"))",
    "        for v in $list",
    "            test -n \"$v\"; and echo \"$opt=$v\"",
    "        end",
    "        return",
    "    end",
    "    if test $skip -eq 1; and not string match -q -- '-*' $cur",
    "        set list (string split ' ' -- (__provision_vals \"$cmd $op $prev\"))",
    "        test -z \"$list\"; and set list (string split ' ' -- (__provision_vals \"* $prev\"))",
    "    else if string match -q -- '-*' $cur",
    "        set list " .. d.flags,
    "        test $n -ge 2; and set list (string split ' ' -- (__provision_opts \"$cmd $op\")) $list",
    "    else if test $n -eq 0",
    "        set list " .. d.commands,
    "    else if test \"$cmd\" = help",
    "        if test $n -eq 1",
    "            set list (string split ' ' -- (__provision_vals 'help #1'))",
    "        else",
    "            set list (string split ' ' -- (__provision_vals \"help #2 $op\"))",
    "        end",
    "    else if test \"$cmd\" = completion",
    "        set list (string split ' ' -- (__provision_vals 'completion #1'))",
    "    else if test $n -eq 1",
    "        set list (string split ' ' -- (__provision_ops $cmd))",
    "    else",
    "        set list (string split ' ' -- (__provision_vals \"$cmd $op #\"(math $n - 1)))",
    "    end",
    "    for v in $list",
    "        test -n \"$v\"; and echo $v",
    "    end",
    "end",
    "complete -c provision -f -a '(__provision_complete)'",
    "",
  }, "\n")
end

function completion.run(out, _, words)
  local shell = words[2]
  if not shell or #words > 2 then
    util.usage("usage: provision completion bash|zsh|fish")
  end
  if not completion[shell] or shell == "data" or shell == "run" or shell == "shells" then
    util.usage("no completion for '%s' (one of: bash, zsh, fish)%s", shell, util.did_you_mean(shell, completion.shells))
  end
  local d = completion.data(require("provision.cli").commands)
  out:print((completion[shell](d, tostring(core.version)):gsub("\n$", "")))
  return 0
end

return completion
