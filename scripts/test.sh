#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test against SQLite and
# against the PostgreSQL server on 127.0.0.1:5432. Installs or starts what
# the tests need, so it works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

export TEST_POSTGRES_URL="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"

# PostgreSQL: start the local cluster if it is installed but not running.
if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
    if command -v pg_ctlcluster >/dev/null; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    fi
fi

# The mail tests talk to a real SMTP server, Python's aiosmtpd, installed
# for Debian's /usr/bin/python3 (not for another python3 on the PATH); the
# cluster test's SMTP sink (scripts/smtp-sink.py) uses it too.
if ! /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    install="$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-aiosmtpd"
    echo "== installing python3-aiosmtpd"
    $install >/dev/null || { $sudo apt-get update -qq && $install >/dev/null; }
fi

# The lookup page's tests drive a real headless browser: Debian's Chromium
# through its chromedriver.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    install="$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver"
    echo "== installing chromium and chromium-driver"
    $install >/dev/null || { $sudo apt-get update -qq && $install >/dev/null; }
fi

rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings
echo "== deploy/ (image, compose, Kubernetes, systemd)"
./scripts/validate-deploy.sh
echo "== tests (SQLite and PostgreSQL)"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked --no-fail-fast
else
    cargo test --locked --no-fail-fast
fi
echo "== the OpenAPI document held against the server (Schemathesis)"
cargo build --locked --quiet
./scripts/schemathesis.sh target/debug/clearance
echo "== delivery smoke test: 500 mails on each backend, each exactly once (counts, not times)"
N=500 RUNS="sqlite:1 postgres:3" BIN=target/debug/clearance ./bench/deliver.sh
