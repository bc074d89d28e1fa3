# Sourced by the benchmarks that need Postfix's smtp-sink and smtp-source:
# installs Debian's `postfix` package when they are missing (installing it
# does not start Postfix itself).
if ! command -v smtp-sink >/dev/null || ! command -v smtp-source >/dev/null; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    install="$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix"
    $install >/dev/null || { $sudo apt-get update -qq && $install >/dev/null; }
fi
