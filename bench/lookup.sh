#!/usr/bin/env bash
# The lookup at scale, on SQLite: how fast `serve` is ready and how much
# memory it holds with MODELS models, lookup throughput against /healthz on
# the same binary, then WRITES model registrations one after the other
# (latency, found at once by the same server, found by a second `serve` on
# the same database within the refresh period, RSS before and after).
# Needs wrk (Debian package `wrk`; installed here when missing).
#
#   MODELS=1000000 ./bench/lookup.sh
#   BIN=/path/to/older/clearance WRITES=5 ./bench/lookup.sh    # another build, same steps
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS="${MODELS:-100000}"
PORT="${PORT:-18181}"
DURATION="${DURATION:-10s}"
WRITES="${WRITES:-1000}"
BIN="${BIN:-}"
if [ -z "$BIN" ]; then
    cargo build --release --quiet
    BIN=./target/release/clearance
fi
work=$(mktemp -d)
server="" peer=""
trap 'kill $server $peer 2>/dev/null || true; rm -rf "$work"' EXIT
. bench/lookup-register.sh "$BIN"
rss() { awk '/VmRSS/ { printf "%.0f MB", $2 / 1024 }' "/proc/$1/status"; }
# The CPU time (user + system) a process has spent: on a loaded machine the
# wall time also counts waiting for a core.
cpu() { awk -v tick="$(getconf CLK_TCK)" '{ printf "%.2f s", ($14 + $15) / tick }' "/proc/$1/stat"; }
# Starts `serve` on port $1 in the background; sets $started (its pid) and
# $ready (the seconds it took to answer /readyz).
start_serve() {
    local began
    began=$(date +%s%N)
    CLEARANCE_BIND="127.0.0.1:$1" "$BIN" serve & started=$!
    until curl -sf "http://127.0.0.1:$1/readyz" >/dev/null; do sleep 0.05; done
    ready=$(awk -v b="$began" -v e="$(date +%s%N)" 'BEGIN { printf "%.2f", (e - b) / 1e9 }')
}
echo "== $MODELS models"
start_serve "$PORT"; server=$started
echo "serve ready after ${ready} s (CPU $(cpu "$server"), load average $(cut -d' ' -f1 /proc/loadavg)), RSS $(rss "$server")"
for path in /healthz "/api/v1/lookup?imei=$imei" "/api/v1/lookup?q=phone%20042424" "/api/v1/lookup?q=px-04242"; do
    echo "== $path"
    wrk -t2 -c64 -d"$DURATION" --latency "http://127.0.0.1:$PORT$path" | grep -E "Requests/sec|99%|50%|Non-2xx"
done
echo "RSS after the lookups: $(rss "$server")"
start_serve $((PORT + 1)); peer=$started
echo "== a second serve on the same database: ready after ${ready} s (CPU $(cpu "$peer")), RSS $(rss "$peer")"
token=$("$BIN" token --role analyst --sub bench --email bench@example.org)
python3 bench/writes.py "http://127.0.0.1:$PORT" "http://127.0.0.1:$((PORT + 1))" "$token" "$WRITES" "$server"
