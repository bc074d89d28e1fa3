#!/usr/bin/env bash
# Fan-out benchmark: how long publishing to N personnel takes, the outbox
# rows included, on SQLite and on the PostgreSQL server at 127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-100000}"
PORT="${PORT:-18182}"
cargo build --release --quiet
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS clearance_fanout WITH (FORCE)" 2>/dev/null || true; rm -rf "$work"' EXIT
export CLEARANCE_BIND="127.0.0.1:$PORT" CLEARANCE_WORKER=false CLEARANCE_DATA_DIR="$work" \
       CLEARANCE_MAX_JSON_BYTES=$((64 * 1024 * 1024)) RUST_LOG=warn
for backend in sqlite postgres; do
    if [ "$backend" = sqlite ]; then
        export DATABASE_URL="sqlite://$work/fanout.db"
    else
        psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS clearance_fanout WITH (FORCE)"
        psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE clearance_fanout"
        export DATABASE_URL="postgres://postgres@127.0.0.1:5432/clearance_fanout"
    fi
    ./target/release/clearance serve & server=$!
    until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.2; done
    admin=$(./target/release/clearance token --role admin --sub bench-admin --email admin@example.org)
    approver=$(./target/release/clearance token --role approver --sub bench-approver --email approver@example.org)
    echo "== $backend, $N recipients"
    python3 bench/fanout.py "http://127.0.0.1:$PORT" "$admin" "$approver" "$N"
    kill $server; wait $server 2>/dev/null || true
done
