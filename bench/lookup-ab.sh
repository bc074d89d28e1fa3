#!/usr/bin/env bash
# Lookup throughput of two or more builds on one seeded register, taken in
# turns so that they share the machine's moods: for each build in each
# round, a fresh `serve`, then CYCLES times /healthz, the name lookup
# (`q=phone 042424`) and the IMEI lookup, D each; prints each lookup's
# median share of /healthz (and every cycle's name share). On a shared
# machine /healthz alone moves by a third from minute to minute, so a share
# is only worth comparing within a cycle.
#
#   ./bench/lookup-ab.sh /tmp/old-clearance target/release/clearance
#   MODELS=100000 ROUNDS=3 CYCLES=6 D=2s ./bench/lookup-ab.sh A B
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS="${MODELS:-1000000}" ROUNDS="${ROUNDS:-2}" CYCLES="${CYCLES:-6}" D="${D:-2s}"
PORT="${PORT:-18182}"
[ $# -ge 1 ] || { echo "usage: $0 BIN [BIN...]" >&2; exit 2; }
work=$(mktemp -d)
server=""
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
. bench/lookup-register.sh "$1"
export CLEARANCE_BIND="127.0.0.1:$PORT"
rps() { wrk -t2 -c64 -d"$D" "http://127.0.0.1:$PORT$1" | awk '/Requests\/sec/ { print $2 }'; }
for _ in $(seq "$ROUNDS"); do
    for bin in "$@"; do
        "$bin" serve & server=$!
        until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.1; done
        figures=""
        for _ in $(seq "$CYCLES"); do
            figures="$figures $(rps /healthz) $(rps '/api/v1/lookup?q=phone%20042424') $(rps "/api/v1/lookup?imei=$imei")"
        done
        kill "$server"; wait "$server" 2>/dev/null || true; server=""
        python3 - "$bin" $figures <<'PY'
import statistics, sys
bin, v = sys.argv[1], [float(x) for x in sys.argv[2:]]
health, name, imei = v[0::3], v[1::3], v[2::3]
share = lambda xs: [x / h for x, h in zip(xs, health)]
print(f"{bin}: /healthz median {statistics.median(health):,.0f} req/s; "
      f"name {statistics.median(name):,.0f} req/s = {100 * statistics.median(share(name)):.0f} % "
      f"({' '.join(f'{100 * s:.0f}' for s in share(name))}); "
      f"IMEI {100 * statistics.median(share(imei)):.0f} %")
PY
    done
done
