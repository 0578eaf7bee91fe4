#!/bin/bash
# Installs what kiln's demo, tests and linters use, if missing:
#   .ci/deps.sh          Debian packages and the Go tools
#   .ci/deps.sh tools    only the Go tools (make vet)
set -euo pipefail
export PATH=$PATH:/usr/local/go/bin

# Linters, pinned; installed from the Go module proxy into $(go env GOPATH)/bin.
STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2
DEADCODE=golang.org/x/tools/cmd/deadcode@v0.52.0

tool() { # tool PKG@VERSION: go install it unless that version is there
	local bin gobin
	gobin=$(go env GOPATH)/bin
	bin=$gobin/$(basename "${1%@*}")
	if [ -x "$bin" ] && go version -m "$bin" 2>/dev/null | grep -q "mod.*${1#*@}"; then
		return
	fi
	echo "installing ${1}"
	go install "$1"
}
tool "$STATICCHECK"
tool "$DEADCODE"
[ "${1:-all}" = tools ] && exit 0

need=()
command -v busybox >/dev/null || [ -x /bin/busybox ] || need+=(busybox-static)
for p in skopeo umoci podman runc buildah; do command -v "$p" >/dev/null || need+=("$p"); done
command -v jq >/dev/null || need+=(jq)
command -v losetup >/dev/null || need+=(util-linux)
# The registry tests and `make ci-demo`: the CNCF distribution server, htpasswd, curl.
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v curl >/dev/null || need+=(curl)
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing: ${need[*]}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
