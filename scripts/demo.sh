#!/bin/sh
# make demo: start the sandbox on a free port, onboard a new employee twice
# (the second run changes nothing), show the audit; then reconcile
# examples/roster.csv: plan (changes pending), apply, plan again (no
# changes), and the journal; stop the sandbox.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
out=$(mktemp)
lua5.4 bin/provision-sandbox --port 0 --quiet > "$out" &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$out"' EXIT INT TERM
i=0
until grep -q "listening on" "$out" 2>/dev/null; do
  i=$((i + 1)); [ $i -lt 200 ] || { echo "sandbox did not start" >&2; exit 1; }
  sleep 0.05
done
PROVISION_SANDBOX_URL=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$out")
export PROVISION_SANDBOX_URL
echo "sandbox at $PROVISION_SANDBOX_URL"
echo
echo "== examples/onboard.lua"
lua5.4 examples/onboard.lua
echo
echo "== examples/onboard.lua again (finds what exists, changes nothing)"
lua5.4 examples/onboard.lua
echo
echo "== examples/audit.lua"
lua5.4 examples/audit.lua
echo
echo "== provision plan examples/roster.csv (the roster against the systems: exit 2, changes pending)"
journal=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$out"; rm -rf "$journal"' EXIT INT TERM
code=0
bin/provision --sandbox plan examples/roster.csv --journal "$journal/journal.sqlite" || code=$?
[ "$code" = 2 ] || { echo "plan exited $code, expected 2" >&2; exit 1; }
echo
echo "== provision apply examples/roster.csv"
bin/provision --sandbox apply examples/roster.csv --journal "$journal/journal.sqlite"
echo
echo "== provision plan examples/roster.csv again (exit 0: no changes)"
bin/provision --sandbox plan examples/roster.csv --journal "$journal/journal.sqlite"
echo
echo "== provision journal"
bin/provision journal --journal "$journal/journal.sqlite"
