#!/bin/sh
# The README's pictures of the public pages on a phone, taken from a running
# demo (`cargo run --release -- demo`, after the README's "A lookup, step by
# step", which registers the Redmi 2) with Debian's headless Chromium at the
# browser tests' 360 CSS pixels wide and twice as many device pixels.
# Usage: docs/screenshots.sh [BASE_URL]   (default http://127.0.0.1:8080)
set -eu
base=${1:-http://127.0.0.1:8080}
docs=$(dirname "$0")

shot() { # FILE HEIGHT PATH
    chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars \
        --force-device-scale-factor=2 --window-size="360,$2" \
        --screenshot="$docs/$1" "$base$3" 2>/dev/null
}

shot lookup-firmware.png 960 '/lookup?q=iphone+5s&firmware='
shot lookup-maker-wide.png 870 '/lookup?q=867164021234568&firmware='
shot subscribe.png 1400 '/subscribe'
shot advisory.png 1250 '/advisories/CLR-2026-0001'
