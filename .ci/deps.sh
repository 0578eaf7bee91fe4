#!/bin/bash
# Installs the Debian packages kiln's demo and tests use, if missing.
set -euo pipefail
need=()
command -v busybox >/dev/null || [ -x /bin/busybox ] || need+=(busybox-static)
for p in skopeo umoci podman runc buildah; do command -v "$p" >/dev/null || need+=("$p"); done
command -v jq >/dev/null || need+=(jq)
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing: ${need[*]}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
