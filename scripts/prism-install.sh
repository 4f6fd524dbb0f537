#!/bin/sh
# Install the pinned Prism (@stoplight/prism-cli, see package.json and
# package-lock.json) into node_modules/ with `npm ci`, only when
# node_modules/.bin/prism is missing or package-lock.json changed since the
# last install (stamp: node_modules/.prism-lock.sha256).
# Quiet on success; on failure prints npm's output and exits non-zero.
# Needs node >= 18.20.1 and npm on PATH (scripts/deps.sh test installs them).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
stamp=node_modules/.prism-lock.sha256

die() { echo "prism-install: $*" >&2; exit 1; }
command -v node >/dev/null 2>&1 || die "node not found on PATH (run scripts/deps.sh test)"
command -v npm >/dev/null 2>&1 || die "npm not found on PATH (run scripts/deps.sh test)"
[ -f package-lock.json ] || die "package-lock.json missing in $top"

want=$(sha256sum package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [ -x node_modules/.bin/prism ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! npm ci --no-audit --no-fund >"$log" 2>&1; then
  cat "$log" >&2
  die "npm ci --no-audit --no-fund failed in $top (node $(node --version 2>/dev/null))"
fi
if ! node_modules/.bin/prism --version >"$log" 2>&1; then
  cat "$log" >&2
  die "node_modules/.bin/prism does not run after npm ci"
fi
echo "$want" >"$stamp"
