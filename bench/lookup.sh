#!/usr/bin/env bash
# Lookup throughput against /healthz on the same binary, with 100,000 models
# in SQLite. Needs wrk (Debian package `wrk`; installed here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS="${MODELS:-100000}"
PORT="${PORT:-18181}"
DURATION="${DURATION:-10s}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
export DATABASE_URL="sqlite://$work/bench.db" CLEARANCE_BIND="127.0.0.1:$PORT" RUST_LOG=warn
./target/release/clearance migrate
python3 bench/seed.py "$work/bench.db" "$MODELS"
./target/release/clearance serve & server=$!
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.2; done
# An IMEI of model 4242: its TAC, a serial, the Luhn check digit.
imei=$(python3 -c '
d = str(10000000 + 4242) + "123456"
s = sum((2 * int(c) - 9 if 2 * int(c) > 9 else 2 * int(c)) if i % 2 == 0 else int(c) for i, c in enumerate(reversed(d)))
print(d + str((10 - s % 10) % 10))')
for path in /healthz "/api/v1/lookup?imei=$imei" "/api/v1/lookup?q=phone%20042424" "/api/v1/lookup?q=px-04242"; do
    echo "== $path"
    wrk -t2 -c64 -d"$DURATION" --latency "http://127.0.0.1:$PORT$path" | grep -E "Requests/sec|99%|50%|Non-2xx"
done
