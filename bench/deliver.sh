#!/usr/bin/env bash
# End-to-end delivery against the relay's own speed. For each run: publish
# one advisory to N personnel (bench/fanout.py, which also times the
# import), start WORKERS `clearance worker` processes with LANES lanes each
# against Postfix's smtp-sink, and time them until no outbox row is left
# queued, retrying or sending. In the same run and against the same sink,
# just before and just after the worker, Postfix's smtp-source sends N
# messages of the same size over LANES reused connections (`-d -s LANES`).
# Prints the rates and the worker's over smtp-source's mean, and
# fails unless the sink got each of the N mails exactly once (counted by
# Message-ID in its dump) and every row is `sent`.
#
#   ./bench/deliver.sh                                  # N=20000 LANES=20
#   N=500 RUNS="sqlite:1 postgres:1" BIN=target/debug/clearance ./bench/deliver.sh
#   REPEAT=3 ./bench/deliver.sh          # each run three times, then the median share
#
# RUNS lists backend:workers pairs (default "sqlite:1 postgres:1 postgres:3");
# PostgreSQL is the server on 127.0.0.1:5432 (database clearance_deliver).
# On a shared machine one run does not settle a share: the relay's own speed
# moves from minute to minute, so REPEAT runs each pair again and prints the
# median of its shares.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-20000}"
LANES="${LANES:-20}"
PORT="${PORT:-18183}"
SINK_PORT="${SINK_PORT:-12526}"
RUNS="${RUNS:-sqlite:1 postgres:1 postgres:3}"
REPEAT="${REPEAT:-1}"
BIN="${BIN:-}"
PG="postgres://postgres@127.0.0.1:5432"
. bench/postfix-tools.sh
if [ -z "$BIN" ]; then
    cargo build --release --quiet
    BIN=./target/release/clearance
fi
work=$(mktemp -d)
pids=()
cleanup() {
    [ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true
    psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS clearance_deliver WITH (FORCE)" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
# smtp-sink drops root for `nobody`, which must be able to write its dump.
chmod 0711 "$work"
mkdir -m 0777 "$work/sink"
export CLEARANCE_BIND="127.0.0.1:$PORT" CLEARANCE_DATA_DIR="$work" RUST_LOG=warn \
       CLEARANCE_MAX_JSON_BYTES=$((64 * 1024 * 1024)) CLEARANCE_RATE_EXEMPT=127.0.0.0/8 \
       CLEARANCE_SMTP_URL="smtp://127.0.0.1:$SINK_PORT" CLEARANCE_WORKER_CONCURRENCY="$LANES"

# One client, kept for the run, answers the SQL queries `ask` writes: a
# client started per look (python3 or psql, and a PostgreSQL backend with
# its TLS handshake) took 40-110 ms of CPU each, up to half a core of the
# machine's two while the worker was being timed.
open_ask() {
    case "$DATABASE_URL" in
        sqlite://*) coproc ASK { exec python3 -u -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
for query in sys.stdin:
    print(db.execute(query).fetchone()[0])' "${DATABASE_URL#sqlite://}"; } ;;
        *) coproc ASK { exec psql -Atq "$DATABASE_URL"; } ;;
    esac
}
close_ask() { eval "exec ${ASK[1]}>&-"; wait "$ASK_PID" 2>/dev/null || true; }
# What the SQL query $1 answers, on the run's database.
ask() {
    echo "$1;" >&"${ASK[1]}"
    local answer
    read -r answer <&"${ASK[0]}"
    echo "$answer"
}
# Rows of the outbox in state(s) $1 (an SQL list).
rows_in() { ask "SELECT count(*) FROM outbox WHERE state IN ($1)"; }
# Whether any mail is still to send: one look into the due index, not a
# count of the queue, so that watching costs the run little. The condition
# is `outbox_due`'s own, word for word (a mail being sent keeps its state
# and only holds a token): with another, both databases read the whole
# outbox each time, 4 ms of PostgreSQL's CPU a look.
pending() {
    [ "$(ask "SELECT CASE WHEN EXISTS (SELECT 1 FROM outbox WHERE state IN ('queued', 'retrying')) THEN 1 ELSE 0 END")" = 1 ]
}
seconds_since() { awk -v b="$1" -v e="$(date +%s%N)" 'BEGIN { printf "%.3f", (e - b) / 1e9 }'; }
start_sink() {
    rm -f "$work/sink/dump"
    smtp-sink -u nobody -D "$work/sink/dump" "127.0.0.1:$SINK_PORT" 1000 & sink=$!
    pids+=("$sink")
    until (exec 3<>"/dev/tcp/127.0.0.1/$SINK_PORT") 2>/dev/null; do sleep 0.05; done
}
stop() { kill "$@" 2>/dev/null || true; wait "$@" 2>/dev/null || true; }
# CPU seconds (user + system) the processes $@ have used so far.
cpu_seconds() {
    local ticks=0 pid
    for pid in "$@"; do ticks=$((ticks + $(awk '{ print $14 + $15 }' "/proc/$pid/stat"))); done
    awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t / hz }'
}
# "pid ticks" of each PostgreSQL process now.
postgres_ticks() {
    local pid
    for pid in $(pgrep -u postgres); do
        awk -v p="$pid" '{ print p, $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || true
    done
}

# smtp-source's rate, in msg/s, sending N messages of $1 bytes over LANES
# reused connections to a fresh sink; it also prints the sink's CPU.
source_rate() {
    start_sink
    local began took
    began=$(date +%s%N)
    smtp-source -d -s "$LANES" -m "$N" -l "$1" -f bench@example.org -t p@example.org \
        "127.0.0.1:$SINK_PORT" >&2
    took=$(seconds_since "$began")
    echo "smtp-source: $N messages of $1 bytes in $took s (CPU: sink $(cpu_seconds "$sink") s)" >&2
    stop "$sink"
    awk -v n="$N" -v s="$took" 'BEGIN { printf "%.0f", n / s }'
}

failed=0
size=2225
declare -A shares=()
for run in $(for run in $RUNS; do for _ in $(seq "$REPEAT"); do echo "$run"; done; done); do
    backend=${run%:*} workers=${run#*:}
    if [ "$backend" = sqlite ]; then
        rm -f "$work"/deliver.db*
        export DATABASE_URL="sqlite://$work/deliver.db"
    else
        psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS clearance_deliver WITH (FORCE)"
        psql -q "$PG/postgres" -c "CREATE DATABASE clearance_deliver"
        export DATABASE_URL="$PG/clearance_deliver"
    fi
    echo "== $backend, $workers worker(s) × $LANES lanes, $N recipients"
    CLEARANCE_WORKER=false "$BIN" serve & server=$!
    pids+=("$server")
    until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.1; done
    admin=$("$BIN" token --role admin --sub bench-admin --email admin@example.org)
    approver=$("$BIN" token --role approver --sub bench-approver --email approver@example.org)
    python3 bench/fanout.py "http://127.0.0.1:$PORT" "$admin" "$approver" "$N"
    stop "$server"
    open_ask

    # The relay's speed drifts while the worker is timed: smtp-source runs
    # before and after it, and the worker is compared with their mean. The
    # run before uses the size of the last run's mails (the bench's
    # advisory mails are 2,225 bytes, within a few bytes of any run's).
    before=$(source_rate "$size")
    start_sink
    postgres_ticks > "$work/pg-before"
    began=$(date +%s%N)
    running=()
    for _ in $(seq "$workers"); do
        "$BIN" worker & running+=($!)
        pids+=("${running[-1]}")
    done
    while pending; do sleep 0.05; done
    took=$(seconds_since "$began")
    cpu=$(cpu_seconds "${running[@]}")
    sink_cpu=$(cpu_seconds "$sink")
    # PostgreSQL's processes since the start, the workers' backends among
    # them (still open).
    pg_cpu=$(postgres_ticks | awk -v hz="$(getconf CLK_TCK)" 'NR == FNR { before[$1] = $2; next }
        { used += $2 - before[$1] } END { printf "%.1f", used / hz }' "$work/pg-before" -)
    stop "${running[@]}"
    stop "$sink"
    total=$(grep -ci '^Message-ID:' "$work/sink/dump" || true)
    unique=$(grep -i '^Message-ID:' "$work/sink/dump" | sort -u | wc -l)
    sent=$(rows_in "'sent'")
    close_ask
    size=$(( $(stat -c %s "$work/sink/dump") / (total > 0 ? total : 1) ))
    worker_rate=$(awk -v n="$N" -v s="$took" 'BEGIN { printf "%.0f", n / s }')
    echo "worker: $N mails in $took s = $worker_rate msg/s (CPU: workers $cpu s, sink $sink_cpu s, PostgreSQL $pg_cpu s); sink got $total ($unique distinct), $sent rows sent"

    after=$(source_rate "$size")
    source_rate=$(awk -v a="$before" -v b="$after" 'BEGIN { printf "%.0f", (a + b) / 2 }')
    echo "smtp-source: $before msg/s before the worker, $after after; mean $source_rate msg/s"
    share=$(awk -v w="$worker_rate" -v s="$source_rate" 'BEGIN { printf "%.0f", 100 * w / s }')
    echo "worker / smtp-source: $share %"
    shares[$run]+="$share "
    if [ "$total" != "$N" ] || [ "$unique" != "$N" ] || [ "$sent" != "$N" ]; then
        echo "FAILED: expected each of $N mails exactly once" >&2
        failed=1
    fi
done
if [ "$REPEAT" -gt 1 ]; then
    echo "== median share of $REPEAT runs each"
    for run in $RUNS; do
        median=$(tr ' ' '\n' <<<"${shares[$run]}" | grep . | sort -n | awk '{ s[NR] = $1 } END { print s[int((NR + 1) / 2)] }')
        echo "$run: $median % (${shares[$run]% })"
    done
fi
exit "$failed"
