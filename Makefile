# platform-acceptance — common entry points. `make help` lists them.
# Build caches live outside the clone so a fresh clone on a warm machine reuses them.
PA_CACHE ?= /var/cache/platform-acceptance
export PA_CACHE
export CARGO_TARGET_DIR ?= $(PA_CACHE)/target
BIN := $(CARGO_TARGET_DIR)/debug/platform-acceptance
OUT ?= out
say = @echo "make: $(1)"

.PHONY: help deps build test run catalog sim-build ci-tools sim-up sim-down sim-status bench bench-interrupts lint fuzz

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

deps: ## install missing Debian packages (as root), check Go and cargo
	@scripts/deps.sh

build: ## build the harness
	$(call say,building the harness (cargo; cold: several minutes))
	cargo build --all-targets

test: deps sim-build ci-tools ## pass the tests (unit, repository layer, CLI, runner, simulation)
	$(call say,building and running the tests (the simulation tests take most of the time))
	cargo test

run: deps sim-build build ## main job: whole suite against the local simulation, reports in out/
	$(call say,starting the simulation (cold: about a minute))
	$(BIN) sim up
	$(call say,running the suite against the simulation; reports in $(OUT)/)
	$(BIN) run --repo fixtures/gitops --sim \
	  --junit $(OUT)/junit.xml --json $(OUT)/report.json --markdown $(OUT)/summary.md

catalog: build ## every criterion with its layer, check and clusters
	$(BIN) catalog --repo fixtures/gitops

sim-build: deps ## build pinned upstream binaries and collect CRDs (cached in $(PA_CACHE))
	$(call say,building pinned upstream binaries (cached in $(PA_CACHE); cold: ~20-30 min))
	sim/build.sh
	$(call say,collecting upstream CRDs)
	sim/crds.sh

ci-tools: deps ## shellcheck and check-jsonschema for the ci/ tests (actionlint comes from sim-build)
	@scripts/ci-tools.sh

sim-up: sim-build build ## start the two-cluster simulation
	$(call say,starting the simulation)
	$(BIN) sim up

sim-down: build ## stop the simulation and remove its state
	$(BIN) sim down

sim-status: build ## processes, ports and memory of the running simulation
	$(BIN) sim status

bench: sim-build ## every benchmark, then one table of figures and goals: catalog, repository layer, sim start, RSS, requests, suite time, frozen API server, chainsaw (after `sim/build.sh chainsaw`), 1000 nodes (BENCH_SCALE=none leaves that out); ~30 min
	scripts/bench.sh

INTERRUPT_RUNS ?= 50
bench-interrupts: ## stop INTERRUPT_RUNS (default 50) whole-suite runs by SIGINT/SIGTERM at random points, then 3 by SIGKILL and sweep; prints exits, reports and leftovers (needs a running simulation, ~20 min)
	cargo run --release --example bench_interrupts -- $(INTERRUPT_RUNS)

FUZZ_SECONDS ?= 60
fuzz: ## fuzz each parser of untrusted text for FUZZ_SECONDS (default 60) seconds; failures land in fuzz/regressions/
	$(call say,fuzzing 8 targets for $(FUZZ_SECONDS) s each (tests/fuzz.rs))
	FUZZ_SECONDS=$(FUZZ_SECONDS) nice -n 5 cargo test --test fuzz -- --test-threads=1 --nocapture

lint: ## clippy with warnings as errors
	cargo clippy --all-targets -- -D warnings
