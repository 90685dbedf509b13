# platform-acceptance — common entry points. `make help` lists them.
# Build caches live outside the clone so a fresh clone on a warm machine reuses them.
PA_CACHE ?= /var/cache/platform-acceptance
export PA_CACHE
export CARGO_TARGET_DIR ?= $(PA_CACHE)/target
BIN := $(CARGO_TARGET_DIR)/debug/platform-acceptance
OUT ?= out

.PHONY: help build test run catalog sim-build sim-up sim-down sim-status bench lint

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

build: ## build the harness
	cargo build --all-targets

test: sim-build ## pass the tests (unit, repository layer, CLI, runner, simulation)
	cargo test

run: sim-build build ## main job: whole suite against the local simulation, reports in out/
	$(BIN) sim up
	$(BIN) run --repo fixtures/gitops --sim \
	  --junit $(OUT)/junit.xml --json $(OUT)/report.json --markdown $(OUT)/summary.md

catalog: build ## every criterion with its layer, check and clusters
	$(BIN) catalog --repo fixtures/gitops

sim-build: ## build pinned upstream binaries and collect CRDs (cached in $(PA_CACHE))
	sim/build.sh
	sim/crds.sh

sim-up: sim-build build ## start the two-cluster simulation
	$(BIN) sim up

sim-down: build ## stop the simulation and remove its state
	$(BIN) sim down

sim-status: build
	$(BIN) sim status

bench: ## print timings: catalog parse, repository layer, sim build/up, RSS
	cargo run --release --example bench_repo_layer
	sim/bench.sh

lint:
	cargo clippy --all-targets -- -D warnings
