#!/usr/bin/env bash
# A local cluster: on one PostgreSQL database, two API replicas
# (`clearance serve`, CLEARANCE_WORKER=false) and three delivery workers
# (`clearance worker`), sending to an SMTP sink that counts what it gets
# (scripts/smtp-sink.py). What `deploy/compose.yaml` and `deploy/k8s/` run,
# on one machine without containers.
#
#   scripts/cluster.sh [DIR]      # DIR: logs, pids, the shared data dir (default: a temp dir)
#
# Prints `ready` once both replicas answer /readyz (each started again on
# another port if its port was taken meanwhile), and writes DIR/cluster.env
# (API_A, API_B, SINK_LOG, the pids of every process, DATABASE_URL and the
# secrets, to mint tokens with `clearance token`). Runs until SIGINT/SIGTERM,
# or until the process that started it is gone, then stops everything (and
# drops the database it created).
#
# Environment (all optional):
#   DATABASE_URL        a PostgreSQL database to use; default: a new one on
#                       POSTGRES_URL (postgres://postgres@127.0.0.1:5432), dropped at the end
#   CLEARANCE_BIN       the binary; default: target/release/clearance, built when missing
#   CLUSTER_READ_URL_B  DATABASE_READ_URL for replica B (a read replica, or a
#                       read-only role on the same database)
#   CLEARANCE_JWT_SECRET, CLEARANCE_LINK_SECRET   default: generated for this run
#   CLEARANCE_WORKER_LEASE_SECS (10), CLEARANCE_WORKER_POLL_MS (200),
#   CLEARANCE_LOOKUP_REFRESH_MS (1000), RUST_LOG (warn)
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${1:-$(mktemp -d -t clearance-cluster.XXXXXX)}"
mkdir -p "$dir/data"
dir="$(cd "$dir" && pwd)"
parent=$PPID

bin="${CLEARANCE_BIN:-target/release/clearance}"
if [ ! -x "$bin" ]; then
    echo "cluster: building $bin" >&2
    cargo build --release --locked --quiet
fi

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
secret() {
    python3 -c 'import secrets; print(secrets.token_hex(32))'
}

created_db=""
pids=()
cleanup() {
    trap - EXIT INT TERM
    # Replicas finish their in-flight requests, workers the batch in hand.
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 150); do
        alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "$created_db" ]; then
        psql -q "$POSTGRES_URL/postgres" -c "DROP DATABASE IF EXISTS \"$created_db\" WITH (FORCE)" || true
    fi
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

if [ -z "${DATABASE_URL:-}" ]; then
    POSTGRES_URL="${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
    created_db="clearance_cluster_$$"
    psql -q "$POSTGRES_URL/postgres" -c "CREATE DATABASE \"$created_db\""
    DATABASE_URL="$POSTGRES_URL/$created_db"
fi
case "$DATABASE_URL" in
    postgres://* | postgresql://*) ;;
    *) echo "cluster: DATABASE_URL must be PostgreSQL: replicas and workers share one database" >&2; exit 2 ;;
esac

export DATABASE_URL
export CLEARANCE_CONFIG="$dir/no-config-file.toml"
export CLEARANCE_JWT_SECRET="${CLEARANCE_JWT_SECRET:-$(secret)}"
export CLEARANCE_LINK_SECRET="${CLEARANCE_LINK_SECRET:-$(secret)}"
export CLEARANCE_DATA_DIR="$dir/data"
export CLEARANCE_WORKER_LEASE_SECS="${CLEARANCE_WORKER_LEASE_SECS:-10}"
export CLEARANCE_WORKER_POLL_MS="${CLEARANCE_WORKER_POLL_MS:-200}"
export CLEARANCE_LOOKUP_REFRESH_MS="${CLEARANCE_LOOKUP_REFRESH_MS:-1000}"
# A roster of thousands is one CSV body.
export CLEARANCE_MAX_JSON_BYTES="${CLEARANCE_MAX_JSON_BYTES:-16777216}"
export RUST_LOG="${RUST_LOG:-warn}"

# The sink prints its port once it listens.
: >"$dir/received.tsv"
coproc SINK { exec /usr/bin/python3 scripts/smtp-sink.py 0 "$dir/received.tsv" 2>"$dir/sink.log"; }
pids+=("$SINK_PID")
read -r -t 30 sink_port <&"${SINK[0]}" || { echo "cluster: the SMTP sink did not start (is python3-aiosmtpd installed?)" >&2; exit 1; }
export CLEARANCE_SMTP_URL="smtp://127.0.0.1:$sink_port"

"$bin" migrate 2>"$dir/migrate.log"

# Starts replica NAME with the settings given, on a free port, and waits
# until it answers /readyz; sets replica_port and replica_pid. A port that
# something else on the machine takes between choosing it and binding it is
# chosen again.
start_replica() {
    local name=$1
    shift
    for _ in 1 2 3 4 5; do
        replica_port=$(free_port)
        env CLEARANCE_BIND="127.0.0.1:$replica_port" CLEARANCE_WORKER=false \
            CLEARANCE_PUBLIC_URL="${CLEARANCE_PUBLIC_URL:-http://127.0.0.1:$replica_port}" \
            "$@" "$bin" serve >"$dir/api-$name.log" 2>&1 &
        replica_pid=$!
        pids+=("$replica_pid")
        for _ in $(seq 600); do
            curl -sf --max-time 2 "http://127.0.0.1:$replica_port/readyz" >/dev/null && return 0
            if ! kill -0 "$replica_pid" 2>/dev/null; then
                grep -q "cannot listen on" "$dir/api-$name.log" && continue 2
                echo "cluster: replica $name stopped: $(tail -n 3 "$dir/api-$name.log")" >&2
                exit 1
            fi
            sleep 0.1
        done
        echo "cluster: replica $name is not ready after 60 s; see $dir/api-$name.log" >&2
        exit 1
    done
    echo "cluster: replica $name found no port to listen on; see $dir/api-$name.log" >&2
    exit 1
}

# A first: the links in mail, from every process, point at it.
unset CLEARANCE_PUBLIC_URL
start_replica a
port_a=$replica_port
pid_a=$replica_pid
export CLEARANCE_PUBLIC_URL="http://127.0.0.1:$port_a"
start_replica b DATABASE_READ_URL="${CLUSTER_READ_URL_B:-}"
port_b=$replica_port
pid_b=$replica_pid
worker_pids=()
for n in 1 2 3; do
    "$bin" worker >"$dir/worker-$n.log" 2>&1 &
    worker_pids+=("$!")
    pids+=("$!")
done

cat >"$dir/cluster.env" <<EOF
API_A=http://127.0.0.1:$port_a
API_B=http://127.0.0.1:$port_b
PID_A=$pid_a
PID_B=$pid_b
WORKER_PIDS="${worker_pids[*]}"
SINK_PID=$SINK_PID
SINK_LOG=$dir/received.tsv
DATABASE_URL=$DATABASE_URL
CLEARANCE_JWT_SECRET=$CLEARANCE_JWT_SECRET
CLEARANCE_LINK_SECRET=$CLEARANCE_LINK_SECRET
CLEARANCE_LOOKUP_REFRESH_MS=$CLEARANCE_LOOKUP_REFRESH_MS
EOF
echo "ready: API A http://127.0.0.1:$port_a, API B http://127.0.0.1:$port_b, 3 workers, SMTP sink on $sink_port; state in $dir"

while kill -0 "$parent" 2>/dev/null; do
    sleep 0.5
done
