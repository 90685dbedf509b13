#!/usr/bin/env bash
# sim/bench.sh -- prints the simulation's figures: build time of the pinned upstream
# binaries (warm: what a cached machine pays; cold figures are recorded in sim/README.md,
# measure them with PA_CACHE=/tmp/empty sim/build.sh), then cold/warm `sim up`, RSS and
# `sim down` from examples/bench_sim.rs (own state dir and ports). Asserts nothing.
{
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s%3N)
sim/build.sh >/dev/null
sim/crds.sh >/dev/null
t1=$(date +%s%3N)
awk -v ms=$((t1 - t0)) 'BEGIN { printf "build binaries + CRDs, warm (cached)      : %7.1f s\n", ms / 1000 }'
# The simulation's own processes (network, provisioner) run the harness binary next to the example.
cargo build -q --release --bin platform-acceptance
# Its data-service forwards use the fixed data ports: only while the default simulation is down.
if [ -d "${PA_SIM_STATE:-${PA_CACHE:-/var/cache/platform-acceptance}/sim}" ]; then
  echo "sim up figures                            : skipped (a simulation runs and holds the data ports; run \`platform-acceptance sim down\` first)"
else
  cargo run -q --release --example bench_sim
fi
}
