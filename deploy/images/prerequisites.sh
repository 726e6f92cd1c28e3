#!/usr/bin/env bash
# What `make images` and `make compose-check` need on a Debian host (docs/deploy.md): podman 4.3
# with runc (crun fails here: "cgroups in hybrid mode not supported"), debootstrap for the base
# image, and no default ulimits (../shared/ENVIRONMENT.md). Installed only when missing.
set -euo pipefail
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
missing=()
for tool in podman:podman debootstrap:debootstrap runc:runc; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    $SUDO apt-get install -y -q "${missing[@]}"
fi
conf=/etc/containers/containers.conf
if ! grep -q '^runtime = "runc"' "$conf" 2>/dev/null; then
    printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' | $SUDO tee "$conf" >/dev/null
fi
