#!/usr/bin/env bash
# scripts/deps.sh -- make this machine ready for `make run`, `make test` and CI.
#
#   - installs the Debian packages the harness and its simulation use, when missing:
#       libxml2-utils  xmllint, validates the JUnit report in the tests
#       postgresql     the simulation's PostgreSQL (stand-in for CloudNativePG)
#       redis-server   the simulation's Redis (stand-in for Dragonfly)
#       restic         writes the VolSync repository the healthy scenario starts with
#       util-linux     flock (sim/build.sh and sim/crds.sh serialise concurrent runs)
#       python3        sim/crds.sh splits multi-document CRD files
#       git            the Definition-of-Done checks read the repository's history; the simulation
#                      writes the repository it serves to Flux and serves it (git upload-pack)
#       iproute2       `ip`: the simulation configures its own network namespace
#       strace         records the harness's connections in tests/sim_secrets.rs
#       nftables       drops traffic inside the simulation's network in tests/sim_faults.rs
#   - stops the cluster the Debian postgresql package may have started (the simulation
#     runs its own PostgreSQL instances);
#   - checks that Go (>= 1.26, builds the pinned upstream binaries) and cargo are on PATH.
#
# Idempotent and quick when everything is there (no apt-get call at all). Installing
# needs root; without root it names the missing packages in one line and exits 1.
# Called by `make deps` (a prerequisite of `make run`, `make test`, `make sim-build`)
# and by .ci/run.
set -euo pipefail

say() { echo "deps: $*"; }
die() { echo "deps: error: $*" >&2; exit 1; }

# ---- Debian packages: "<package> <test that succeeds when it is installed>" --------
have() { command -v "$1" >/dev/null 2>&1; }
have_initdb() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; }

missing=()
have xmllint                      || missing+=(libxml2-utils)
have_initdb                       || missing+=(postgresql)
have redis-server                 || missing+=(redis-server)
have restic                       || missing+=(restic)
have flock                        || missing+=(util-linux)
have python3                      || missing+=(python3)
have git                          || missing+=(git)
have ip                           || missing+=(iproute2)
have strace                       || missing+=(strace)
have nft                          || missing+=(nftables)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    die "missing Debian packages: ${missing[*]}; run scripts/deps.sh as root (or: sudo apt-get install -y ${missing[*]})"
  fi
  have apt-get || die "missing packages: ${missing[*]}; this script installs them with apt-get (Debian/Ubuntu), which is not here"
  say "installing Debian packages: ${missing[*]}"
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "apt-get could not install: ${missing[*]} (output above)"
  fi
  say "installed: ${missing[*]}"
fi

# ---- the Debian PostgreSQL cluster ---------------------------------------------------
# Installing postgresql may start a cluster of its own on port 5432; the simulation
# starts its own instances, so that one is stopped (only when it runs).
if compgen -G '/var/lib/postgresql/*/*/postmaster.pid' >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then
    say "stopping the Debian postgresql service (the simulation runs its own PostgreSQL)"
    service postgresql stop >/dev/null 2>&1 || say "warning: 'service postgresql stop' failed; continuing"
  else
    say "warning: the Debian postgresql service is running; stop it as root (service postgresql stop)"
  fi
fi

# ---- toolchains (not installed here: Debian's are too old) ---------------------------
have go || die "go is not on PATH: install Go >= 1.26 (it builds the pinned upstream binaries of sim/)"
gover=$(go env GOVERSION 2>/dev/null) || die "'go env GOVERSION' failed; is Go installed correctly?"
case "$gover" in
  go1.2[6-9]*|go1.[3-9][0-9]*) ;;
  *) die "$gover is too old: the pinned upstream sources need Go >= 1.26" ;;
esac
have cargo || die "cargo is not on PATH: install Rust >= 1.89 (rustup), or add ~/.cargo/bin to PATH"
