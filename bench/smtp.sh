#!/usr/bin/env bash
# SMTP throughput of the sender the delivery worker uses: MESSAGES messages
# of about 2 KB over SENDERS connections (one SmtpSender each) to Postfix's
# smtp-sink, which accepts and discards. Needs smtp-sink (Debian package
# `postfix`; installed here when missing — installing does not start
# Postfix itself).
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES="${MESSAGES:-20000}"
SENDERS="${SENDERS:-20}"
PORT="${PORT:-12525}"
. bench/postfix-tools.sh
cargo build --release --quiet --example smtp_bench
# smtp-sink refuses to run as root without -u; 1000 is its listen backlog.
smtp-sink -u nobody "127.0.0.1:$PORT" 1000 & sink=$!
trap 'kill $sink 2>/dev/null || true' EXIT
until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do sleep 0.1; done
./target/release/examples/smtp_bench "smtp://127.0.0.1:$PORT" "$MESSAGES" "$SENDERS"
