#!/usr/bin/env bash
# make ci-demo: plays the pipeline of docs/ci.md end to end on this machine.
#
# A loopback docker-registry (Debian's docker-registry, the CNCF
# distribution server) with htpasswd auth stands in for the CI registry and
# holds a private base image. Two "CI jobs" then run, each in an empty store
# with its own docker config, as two fresh CI machines would:
#   kiln login --password-stdin, kiln build with --cache-from/--cache-to,
#   kiln run --rm IMG ./test.sh, kiln push on success.
# The second job must reuse the first one's cache and run no step at all;
# the script exits non-zero otherwise. Everything lives in a temp dir and
# the registry is stopped on exit.
#
# Env: KILN (default bin/kiln), KILN_BUSYBOX (default bin/kiln-busybox),
# BUSYBOX_TAR (an OCI archive of the base, instead of running kiln-busybox),
# REGISTRY_BIN (default /usr/bin/docker-registry), KEEP=1 keeps the temp dir.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
KILN=${KILN:-$here/bin/kiln}
KILN_BUSYBOX=${KILN_BUSYBOX:-$here/bin/kiln-busybox}
REGISTRY_BIN=${REGISTRY_BIN:-/usr/bin/docker-registry}
tools=("$KILN" "$REGISTRY_BIN" htpasswd curl)
[ -n "${BUSYBOX_TAR:-}" ] || tools+=("$KILN_BUSYBOX")
for tool in "${tools[@]}"; do
	if ! command -v "$tool" >/dev/null; then
		echo "ci-demo: $tool is missing (make build; apt-get install docker-registry apache2-utils curl)" >&2
		exit 2
	fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-ci-demo.XXXXXX")
reg_pid=
cleanup() {
	if [ -n "$reg_pid" ]; then
		kill "$reg_pid" 2>/dev/null || true
		wait "$reg_pid" 2>/dev/null || true
	fi
	if [ "${KEEP:-}" = 1 ]; then
		echo "ci-demo: kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }

# --- the CI registry: htpasswd auth on a free loopback port -------------
user=ci
password="demo-$RANDOM-$RANDOM"
htpasswd -Bbn "$user" "$password" >"$work/htpasswd"
for try in 1 2 3 4 5; do
	port=$(shuf -i 20000-60000 -n 1)
	host=127.0.0.1:$port
	cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: $host
auth:
  htpasswd:
    realm: kiln-ci-demo
    path: $work/htpasswd
YML
	"$REGISTRY_BIN" serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
	reg_pid=$!
	for _ in $(seq 50); do
		code=$(curl -s -o /dev/null -w '%{http_code}' "http://$host/v2/" || true)
		[ "$code" = 401 ] && break
		kill -0 "$reg_pid" 2>/dev/null || break
		sleep 0.1
	done
	[ "${code:-}" = 401 ] && break
	kill "$reg_pid" 2>/dev/null || true
	wait "$reg_pid" 2>/dev/null || true
	reg_pid=
done
if [ -z "$reg_pid" ]; then
	echo "ci-demo: docker-registry did not start:" >&2
	cat "$work/registry.log" >&2
	exit 1
fi
say "registry $host (htpasswd auth, user $user)"

# --- the private base image the project builds FROM ---------------------
base=$host/ci/busybox:latest
setup=$work/setup
mkdir -p "$setup/docker"
if [ -z "${BUSYBOX_TAR:-}" ]; then
	BUSYBOX_TAR=$work/busybox.tar
	"$KILN_BUSYBOX" -o "$BUSYBOX_TAR"
fi
"$KILN" --root "$setup/store" load -i "$BUSYBOX_TAR" >/dev/null
printf '%s' "$password" | DOCKER_CONFIG=$setup/docker "$KILN" --root "$setup/store" login -u "$user" --password-stdin "$host"
"$KILN" --root "$setup/store" tag busybox:latest "$base"
DOCKER_CONFIG=$setup/docker "$KILN" --root "$setup/store" push "$base"
say "pushed the private base $base"

# --- the project: a checkout of the repository the pipeline builds -----
project() {
	mkdir -p "$1"
	cat >"$1/Dockerfile" <<DF
FROM $base
WORKDIR /app
COPY go.mod.txt ./
# A dependency download, with a cache mount that travels (cache-mounts=true).
RUN --mount=type=cache,target=/root/.cache/deps sh -c 'test -f /root/.cache/deps/lib || echo "downloaded lib" > /root/.cache/deps/lib; cp /root/.cache/deps/lib /app/lib'
COPY . .
RUN sh build.sh
DF
	echo "module demo" >"$1/go.mod.txt"
	printf 'echo built > /app/out\n' >"$1/build.sh"
	printf '#!/bin/sh\nset -e\ntest "$(cat /app/out)" = built\ntest -s /app/lib\necho "tests passed"\n' >"$1/test.sh"
	chmod +x "$1/test.sh"
}

image=$host/ci/app:demo
cache=$host/ci/app:buildcache

# --- one CI job, as docs/ci.md writes it -------------------------------
job() {
	local name=$1 dir=$work/$1
	mkdir -p "$dir/docker"
	project "$dir/checkout"
	export DOCKER_CONFIG=$dir/docker KILN_ROOT=$dir/store
	say "$name: kiln login"
	printf '%s' "$password" | "$KILN" login -u "$user" --password-stdin "$host"
	say "$name: kiln build"
	"$KILN" build --progress=plain \
		--cache-from "type=registry,ref=$cache" \
		--cache-to "type=registry,ref=$cache,mode=max,cache-mounts=true" \
		-t "$image" "$dir/checkout" 2>&1 | tee "$dir/build.log"
	say "$name: kiln run --rm $image ./test.sh"
	"$KILN" run --rm "$image" ./test.sh
	say "$name: kiln push $image"
	"$KILN" push "$image"
	unset DOCKER_CONFIG KILN_ROOT
}

job job1
job job2

steps() { sed -n 's/.*build finished in [0-9.]*s: \([0-9]*\) steps run.*/\1/p' "$work/$1/build.log"; }
say "summary"
echo "job1 (cold cache): $(steps job1) steps run"
echo "job2 (new machine, cache from job1): $(steps job2) steps run"
if [ "$(steps job1)" = 0 ] || [ -z "$(steps job1)" ]; then
	echo "ci-demo: FAIL: the first job ran no step (was the registry not empty?)" >&2
	exit 1
fi
if [ "$(steps job2)" != 0 ]; then
	echo "ci-demo: FAIL: the second job ran $(steps job2) steps; with the first job's cache it must run none" >&2
	exit 1
fi
# A step that ran ends with "#N DONE"; a cached one with "#N CACHED".
if ! awk '/^#[0-9]+ \[.*\] RUN /{run[$1]=1} /^#[0-9]+ DONE/{if (run[$1]) bad=1} END{exit bad}' "$work/job2/build.log"; then
	echo "ci-demo: FAIL: the second job ran a RUN step" >&2
	exit 1
fi
echo "ci-demo: OK: the second job reused the first one's cache and ran no RUN step"
