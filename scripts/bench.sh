#!/usr/bin/env bash
# scripts/bench.sh -- `make bench`: every benchmark in one go, then one table of their
# headline figures (figure, value, goal) with the machine's core count. Each benchmark
# also prints its own lines as it measures. Nothing asserts on time.
#
# Order: the repository layer (no cluster); the simulation's start-up (sim/bench.sh: its
# own state directory, but the data services' fixed ports, so the default simulation is
# brought down first); then, on the default simulation started again: the whole suite
# (with and without the read cache, a frozen API server), harness vs chainsaw (when
# `sim/build.sh chainsaw` has built it) and the scale benchmark (BENCH_SCALE, default
# "100:1000 1000:10000" nodes:pods; set BENCH_SCALE=none to leave it out: about 20 min).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PA_CACHE:=/var/cache/platform-acceptance}"
export PA_CACHE CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PA_CACHE/target}"
BENCH_TABLE="$(mktemp -t pa-bench-table.XXXXXX)"
export BENCH_TABLE
trap 'rm -f "$BENCH_TABLE"' EXIT
scale="${BENCH_SCALE:-100:1000 1000:10000}"

cargo build -q --release --bin platform-acceptance --examples
bin="$CARGO_TARGET_DIR/release/platform-acceptance"
examples="$CARGO_TARGET_DIR/release/examples"

"$examples/bench_repo_layer"
if [ -d "${PA_SIM_STATE:-$PA_CACHE/sim}" ]; then
  echo "bench: stopping the running simulation (sim/bench.sh needs the data services' ports)"
  "$bin" sim down
fi
sim/bench.sh
"$bin" sim up
"$examples/bench_suite"
"$examples/bench_chainsaw" cni-down node-notready ceph-degraded cert-not-ready pg-replica-lost kustomization-failed
if [ "$scale" != none ]; then
  # shellcheck disable=SC2086 # one argument per size
  "$examples/bench_scale" $scale
fi

echo
echo "make bench: headline figures ($(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), release build)"
awk -F'\t' '
  { fig[NR] = $1; val[NR] = $2; goal[NR] = $3; if (length($1) > w1) w1 = length($1); if (length($2) > w2) w2 = length($2) }
  END {
    printf "%-*s | %-*s | %s\n", w1, "figure", w2, "value", "goal"
    line = sprintf("%*s", w1 + w2 + 12, ""); gsub(/ /, "-", line); print line
    for (i = 1; i <= NR; i++) printf "%-*s | %-*s | %s\n", w1, fig[i], w2, val[i], goal[i]
  }' "$BENCH_TABLE"
