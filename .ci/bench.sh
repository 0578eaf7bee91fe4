#!/bin/bash
# make bench: times kiln on the benchmark workloads with hyperfine and writes
# the medians into BENCHMARKS.md (between the bench markers).
#   WORKLOADS="typical multistage bigcontext debian"  RUNS=5  BENCH_DIR=/var/tmp/kiln-bench
# Workloads come from ../shared/peers/workloads when present (bigcontext's
# 30,000 files and 3×100 MB are generated as gen-contexts.sh does), else
# equivalent typical and multistage contexts are generated here. The busybox
# base is served by bin/kiln-registry on the loopback interface; debian runs
# only when the peers' registry (../shared/peers/setup.sh) serves its base.
# The BuildKit column comes from the newest side-by-side run of
# ../shared/peers/bench.sh on this machine ($PEERS_STATE/results), else from
# the issue's figures.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
KILN=$REPO/bin/kiln
RUNS=${RUNS:-5}
BENCH_DIR=${BENCH_DIR:-/var/tmp/kiln-bench}
PEERS=${PEERS_DIR:-$REPO/../shared/peers}
REG_ADDR=${BENCH_REG:-127.0.0.1:5055}
command -v hyperfine >/dev/null || { echo "bench: needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }
command -v jq >/dev/null || { echo "bench: needs jq" >&2; exit 2; }
[ -x "$KILN" ] || { echo "bench: run make build first" >&2; exit 2; }
go build -o "$REPO/bin/kiln-registry" ./cmd/kiln-registry

PEERS_REG=${PEERS_REG:-127.0.0.1:5000}
PEERS_STATE=${PEERS_STATE:-/var/lib/peers}
have_debian() {
  curl -fsS -o /dev/null --max-time 3 -H 'Accept: application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json,application/vnd.oci.image.index.v1+json' \
    "http://$PEERS_REG/v2/debian/manifests/bookworm" 2>/dev/null
}
if [ -d "$PEERS/workloads" ]; then
  default="typical multistage bigcontext"
  [ -d "$PEERS/workloads/debian" ] && have_debian && default="$default debian"
  WORKLOADS=${WORKLOADS:-$default}
else
  WORKLOADS=${WORKLOADS:-"typical multistage"}
fi
CTX=$BENCH_DIR/ctx; STORE=$BENCH_DIR/store; OUT=$BENCH_DIR/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$CTX" "$OUT"

# --- registry -----------------------------------------------------------
"$REPO/bin/kiln-registry" -addr "$REG_ADDR" >"$OUT/registry.log" 2>&1 &
REG_PID=$!
trap 'kill $REG_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q serving "$OUT/registry.log" 2>/dev/null && break; sleep 0.1; done
grep -q serving "$OUT/registry.log" || { cat "$OUT/registry.log" >&2; exit 1; }

# --- contexts -----------------------------------------------------------
gen_typical() { # an equivalent of peers/workloads/typical
  local d=$1; mkdir -p "$d/src/cmd" "$d/src/lib" "$d/static"
  for i in $(seq 1 20); do echo "dep$i"; done > "$d/deps.txt"
  for i in $(seq 1 20); do printf 'package main\n\nfunc c%d() int { return %d }\n' "$i" "$i" > "$d/src/cmd/c$i.go"; done
  for i in $(seq 1 120); do printf 'package lib\n\n// F%d is generated.\nfunc F%d() int { return %d }\n' "$i" "$i" "$i" > "$d/src/lib/f$i.go"; done
  for i in $(seq 1 30); do head -c 2048 /dev/zero | tr '\0' "a" > "$d/static/asset$i.txt"; done
  cat > "$d/Dockerfile" <<'DF'
ARG BASE=127.0.0.1:5000/busybox:latest
FROM ${BASE} AS build
ARG VERSION=1.0.0
ENV APP_VERSION=${VERSION}
WORKDIR /build
COPY deps.txt ./
RUN mkdir -p vendor && while read -r d; do mkdir -p "vendor/$d" && seq 1 200 > "vendor/$d/data"; done < deps.txt
COPY src/ ./src/
RUN mkdir -p /dist && find src -type f | sort | xargs cat | sha256sum > /dist/app.sum && cp -r src /dist/src && echo "$APP_VERSION" > /dist/VERSION
FROM ${BASE}
LABEL org.opencontainers.image.title="typical"
ENV PORT=8080
WORKDIR /app
COPY --from=build /dist/ /app/
COPY static/ /app/static/
USER app
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/VERSION /app/app.sum"]
DF
}
gen_multistage() { # an equivalent of peers/workloads/multistage
  local d=$1; mkdir -p "$d"; echo 0 > "$d/stamp.txt"
  { echo "FROM 127.0.0.1:5000/busybox:latest AS base"; echo "RUN mkdir -p /out"
    for s in a b; do echo "FROM base AS $s"
      echo "RUN i=0; while [ \$i -lt 600000 ]; do i=\$((i+1)); done; for n in \$(seq 1 3000); do echo \"$s \$n\" > /out/$s\$n; done"
      echo "RUN tar -cf /$s.tar /out && sha256sum /$s.tar > /$s.sum"; done
    echo "FROM base AS c"
    echo "RUN i=0; while [ \$i -lt 600000 ]; do i=\$((i+1)); done; dd if=/dev/urandom of=/out/c.bin bs=1M count=64 2>/dev/null"
    echo "RUN sha256sum /out/c.bin > /c.sum"
    echo "FROM base AS d"
    echo "RUN i=0; while [ \$i -lt 600000 ]; do i=\$((i+1)); done; dd if=/dev/zero of=/out/d.bin bs=1M count=64 2>/dev/null"
    echo "RUN sha256sum /out/d.bin > /d.sum"
    echo "FROM 127.0.0.1:5000/busybox:latest"
    echo "COPY --from=a /a.tar /a.sum /res/"; echo "COPY --from=b /b.tar /b.sum /res/"
    echo "COPY --from=c /out/c.bin /c.sum /res/"; echo "COPY --from=d /out/d.bin /d.sum /res/"
    echo "COPY stamp.txt /res/stamp.txt"; echo "RUN ls -la /res > /res/listing"; echo 'CMD ["cat", "/res/listing"]'
  } > "$d/Dockerfile"
}
for w in $WORKLOADS; do
  d=$CTX/$w
  [ -f "$d/.generated" ] && continue
  rm -rf "$d"
  if [ -d "$PEERS/workloads/$w" ]; then
    cp -a "$PEERS/workloads/$w" "$d"
    if [ "$w" = bigcontext ]; then # as gen-contexts.sh does
      for i in $(seq 1 100); do mkdir -p "$d/tree/d$i"; for f in $(seq 1 300); do echo "file $i/$f" > "$d/tree/d$i/f$f.txt"; done; done
      for b in 1 2 3; do head -c 100M /dev/urandom > "$d/big$b.bin"; done
    fi
  else
    case $w in
      typical) gen_typical "$d" ;;
      multistage) gen_multistage "$d" ;;
      *) echo "bench: workload $w needs $PEERS/workloads" >&2; exit 2 ;;
    esac
  fi
  # busybox comes from our registry; debian's base only the peers' has.
  [ "$w" = debian ] || sed -i "s#127.0.0.1:5000/#$REG_ADDR/#g" "$d/Dockerfile"
  touch "$d/.generated"
done

# Flush the generated files first: otherwise the first timings wait for
# their writeback behind the store's fsyncs.
sync

# --- measurements -------------------------------------------------------
build() { echo "env KILN_ROOT=$STORE $KILN build --progress=plain -t bench/$1:latest ${2:-} $CTX/$1"; }
touch_cmd() {
  case $1 in
    typical)    echo "bash -c 'echo // \$RANDOM >> $CTX/typical/src/lib/f1.go'" ;;
    bigcontext) echo "bash -c 'echo \$RANDOM >> $CTX/bigcontext/tree/d1/f1.txt'" ;;
    *)          echo "bash -c 'echo \$RANDOM > $CTX/$1/stamp.txt'" ;;
  esac
}
median() { jq -r '.results[0].median' "$1"; }
cold_runs=$(( RUNS < 3 ? RUNS : 3 ))
declare -A R
for w in $WORKLOADS; do
  for m in cold cached incremental export; do
    f=$OUT/$w-$m.json
    case $m in
      cold)        hyperfine -N -r "$cold_runs" --prepare "rm -rf $STORE" --export-json "$f" "$(build "$w")" ;;
      cached)      hyperfine -N -r "$RUNS" -w 1 --export-json "$f" "$(build "$w")" ;;
      incremental) hyperfine -N -r "$RUNS" -w 1 --prepare "$(touch_cmd "$w")" --export-json "$f" "$(build "$w")" ;;
      export)      hyperfine -N -r "$cold_runs" -w 1 --prepare "rm -f $OUT/x.tar" --export-json "$f" "$(build "$w" "--output type=oci,dest=$OUT/x.tar")" ;;
    esac >"$OUT/$w-$m.log" 2>&1 || { echo "bench: $w $m failed, see $OUT/$w-$m.log" >&2; continue; }
    R[$w/$m]=$(median "$f")
    printf '%-11s %-12s %8.3fs\n' "$w" "$m" "${R[$w/$m]}"
  done
done

# BuildKit medians: from the newest side-by-side run (peers' bench.sh) that
# has them, else BuildKit 0.28's (warm daemon, this machine class) from issue 4.
declare -A BK=([typical/cold]=1.21 [typical/cached]=0.135 [typical/incremental]=0.426
  [multistage/cold]=6.60 [multistage/cached]=0.142 [multistage/incremental]=0.334
  [bigcontext/cold]=27.8 [bigcontext/cached]=1.37 [bigcontext/incremental]=15.8)
BK_FROM="issue 4"
side=$(ls -d "$PEERS_STATE"/results/*/ 2>/dev/null | sort -r | while read -r d; do
  [ -s "$d/typical-cached-buildkit.json" ] && { echo "$d"; break; }; done || true)
if [ -n "$side" ]; then
  BK=()
  for f in "$side"/*-buildkit.json; do
    b=$(basename "$f" -buildkit.json); v=$(median "$f" 2>/dev/null || true)
    [ -n "$v" ] && [ "$v" != null ] && BK[${b%-*}/${b##*-}]=$v
  done
  BK_FROM="side-by-side run $(basename "$side")"
fi
TABLE=$OUT/table.md
{
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/{print $2}') GB RAM, $(uname -r), $(df -T "$BENCH_DIR" | awk 'NR==2{print $2}') store; hyperfine medians, $RUNS runs ($cold_runs for cold and export). BuildKit: $BK_FROM."
  echo
  echo "| workload | measure | kiln | BuildKit | kiln/BuildKit |"
  echo "|---|---|---:|---:|---:|"
  for w in $WORKLOADS; do for m in cold cached incremental export; do
    k=${R[$w/$m]:-}; b=${BK[$w/$m]:-}
    [ -n "$k" ] || continue
    if [ -n "$b" ]; then r=$(echo "$k / $b" | bc -l); printf '| %s | %s | %.3f s | %.3f s | %.2f |\n' "$w" "$m" "$k" "$b" "$r"
    else printf '| %s | %s | %.3f s | – | – |\n' "$w" "$m" "$k"; fi
  done; done
} > "$TABLE"
cat "$TABLE"
if grep -q '<!-- bench:start -->' BENCHMARKS.md 2>/dev/null; then
  awk -v table="$TABLE" '
    /<!-- bench:start -->/ { print; while ((getline l < table) > 0) print l; skip=1; next }
    /<!-- bench:end -->/ { skip=0 }
    !skip { print }' BENCHMARKS.md > BENCHMARKS.md.new && mv BENCHMARKS.md.new BENCHMARKS.md
  echo "BENCHMARKS.md updated; raw results in $OUT"
else
  echo "raw results in $OUT (BENCHMARKS.md has no bench markers)"
fi
