# Sourced by the lookup benchmarks: installs wrk when missing, then, in
# $work, migrates a SQLite database with the binary $1 and fills it with
# $MODELS models (bench/seed.py), exports the settings `serve` runs with,
# and sets $imei to a valid IMEI of model 4242 (its TAC, a serial, the
# Luhn check digit).
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
export DATABASE_URL="sqlite://$work/bench.db" CLEARANCE_DATA_DIR="$work" CLEARANCE_WORKER=false \
       CLEARANCE_JWT_SECRET="bench-secret-of-at-least-thirty-two-characters" RUST_LOG=warn \
       CLEARANCE_RATE_EXEMPT="${CLEARANCE_RATE_EXEMPT-127.0.0.0/8}"   # wrk is one client: measure the lookup, not the rate limit
"$1" migrate >/dev/null
python3 bench/seed.py "$work/bench.db" "$MODELS"
imei=$(python3 -c '
d = str(10000000 + 4242) + "123456"
s = sum((2 * int(c) - 9 if 2 * int(c) > 9 else 2 * int(c)) if i % 2 == 0 else int(c) for i, c in enumerate(reversed(d)))
print(d + str((10 - s % 10) % 10))')
