#!/usr/bin/env bash
# Property-based tests of the HTTP API against openapi/openapi.json: starts
# the service with the demo data on a throw-away SQLite database, then runs
# Schemathesis over every operation, once as an admin and once without a
# token, with a fixed seed. Every check is on (Schemathesis's default; not
# `--checks all`, which would override the few exceptions that
# openapi/schemathesis.toml lists with their reasons). Exit status:
# Schemathesis's.
#
#   scripts/schemathesis.sh [path to the clearance binary]
set -euo pipefail
cd "$(dirname "$0")/.."
binary="${1:-target/debug/clearance}"
venv="${SCHEMATHESIS_VENV:-target/schemathesis-venv}"
version="4.32.5"

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$version"; then
    echo "== installing schemathesis $version into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "schemathesis==$version"
fi

data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"' EXIT
(
    cd "$data"
    # The probe is a script hammering every endpoint: lift the rate limits.
    CLEARANCE_BIND="127.0.0.1:$port" CLEARANCE_PUBLIC_URL="$base" \
        CLEARANCE_RATE_EXEMPT="127.0.0.0/8" RUST_LOG=warn \
        exec "$OLDPWD/$binary" demo
) >"$data/demo.log" 2>&1 &
server=$!
for _ in $(seq 100); do
    curl -sf "$base/readyz" >/dev/null && break
    sleep 0.2
done
admin=$(grep -A1 '^ADMIN token' "$data/demo.log" | tail -n1 | tr -d ' ')
[ -n "$admin" ] || { cat "$data/demo.log"; echo "the demo printed no admin token"; exit 1; }

run() {
    "$venv/bin/schemathesis" --config-file openapi/schemathesis.toml run openapi/openapi.json \
        --url "$base" --seed 20261128 --workers 1 --no-color "$@"
}
status=0
echo "== schemathesis as an admin"
run -H "Authorization: Bearer $admin" || status=$?
echo "== schemathesis without a token"
run || status=$?
exit "$status"
