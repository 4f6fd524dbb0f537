#!/bin/sh
# Install the Debian packages provision needs, only those that are missing.
# Usage: scripts/deps.sh build|test|fuzz|demo|bench
set -eu
want="lua5.4 liblua5.4-dev lua-cjson libcurl4-openssl-dev libssl-dev cmake pkg-config make gcc lua-socket openssl lua-sql-sqlite3"
fuzz="clang-14 libclang-rt-14-dev"   # libFuzzer (scripts/fuzz.sh)
case "${1:-build}" in
  test) want="$want lua-busted lua-check lua5.1 luarocks nginx-light libnginx-mod-http-lua libluajit2-5.1-dev valgrind tmux zsh fish lua-yaml nodejs npm $fuzz" ;;
  fuzz) want="$want $fuzz" ;;
  bench) want="$want nginx-light valgrind libcjson-dev" ;;
esac
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
# Node may come from outside Debian (a preinstalled toolchain); accept any node+npm on PATH.
case "$missing" in *nodejs*|*npm*)
  if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    missing=$(echo "$missing" | sed 's/ nodejs//; s/ npm//')
  fi ;;
esac
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" != 0 ]; then echo "need root to install:$missing" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
