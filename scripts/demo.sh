#!/bin/sh
# make demo: start the sandbox on a free port, onboard a new employee twice
# (the second run changes nothing), show the audit, stop the sandbox.
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
