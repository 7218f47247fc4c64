# upsoak: `make demo` runs the main job, `make test` runs every test. Both install what they need.
SHELL := /bin/bash
CARGO ?= cargo
APT_GET := $(shell command -v sudo >/dev/null 2>&1 && [ "$$(id -u)" != 0 ] && echo sudo) apt-get
DEMO_DURATION ?= 180

FUZZ_SECONDS ?= 30
FUZZ_ENGINE ?= random

.PHONY: rehearse fuzz test e2e bench-detection bench-conventions bench-history demo deps fmt clippy unit build release clean rules-check deploy-check conformance-venv

## deps: install the external programs the tests and the demo run (Prometheus, Alertmanager, kubectl).
deps:
	@missing=""; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v prometheus-alertmanager >/dev/null || missing="$$missing prometheus-alertmanager"; \
	python3 -c 'import ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq --no-install-recommends $$missing; \
	fi
	@# kubectl >= 1.27 renders the overlays (Debian's kubernetes-client, 1.20, cannot): installed
	@# with apt where apt offers one that recent, otherwise the script says how to get it and fails.
	@APT_GET="$(APT_GET)" ./deploy/kubectl-check.sh --install
	@command -v cargo-nextest >/dev/null || $(CARGO) install --locked cargo-nextest

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

build:
	$(CARGO) build --workspace --locked

## rules-check: the generated Prometheus rules pass promtool's checks and unit tests.
rules-check:
	promtool check rules rules/upsoak-rules.yaml
	promtool test rules rules/upsoak-rules.test.yaml

## deploy-venv: the pinned Python tools of deploy-check (kubernetes-validate with its bundled schemas).
DEPLOY_VENV := target/deploy-venv
$(DEPLOY_VENV)/.installed: deploy/requirements.txt
	python3 -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install --quiet --disable-pip-version-check -r deploy/requirements.txt
	touch $@

## deploy-check: each overlay (prometheus-operator, plain-prometheus, example) renders with kubectl
## kustomize (>= 1.27) and validates against the Kubernetes schemas and upsoak's cross-object
## rules (deploy/check.py); its rules and scrape configs pass promtool; the Alertmanager example
## passes amtool. A missing webhook token (git-ignored) is made with a random value.
deploy-check: $(DEPLOY_VENV)/.installed
	PYTHON=$(DEPLOY_VENV)/bin/python ./deploy/check.sh

## conformance-venv: Python's official `kubernetes` client, pinned, for the API conformance test
## (tests/tests/conformance.rs drives the simulator with it beside kube-rs and kubectl).
CONFORMANCE_VENV := target/conformance-venv
$(CONFORMANCE_VENV)/.installed: tests/conformance/requirements.txt
	python3 -m venv $(CONFORMANCE_VENV)
	$(CONFORMANCE_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/conformance/requirements.txt
	touch $@
conformance-venv: $(CONFORMANCE_VENV)/.installed

## test: formatting, lints, promtool on the rules, then every test (unit, kube-rs, kubectl,
## real Prometheus and Alertmanager) with --locked; then the end-to-end soaks (tests/), one at
## a time and alone, so that no soak judges another's load as a regression.
test: deps fmt clippy rules-check deploy-check conformance-venv
	$(CARGO) build --workspace --locked --bins
	$(CARGO) nextest run --workspace --locked --no-fail-fast --exclude upsoak-tests
	$(CARGO) nextest run -p upsoak-tests --locked --no-fail-fast --test-threads 1

## e2e: only the end-to-end soaks (about 15 minutes).
e2e: deps conformance-venv
	$(CARGO) build --workspace --locked --bins
	$(CARGO) nextest run -p upsoak-tests --locked --no-fail-fast --test-threads 1

## bench-detection: detection quality for BENCHMARKS.md (about 35 minutes): false fails over
## 30 clean transitions judged in both windows, detection latency per fault kind (the five
## steady-state faults and the three upgrade-time ones).
bench-detection: deps
	$(CARGO) build --workspace --locked --bins
	$(CARGO) nextest run -p upsoak-tests --locked --test detection --run-ignored only --test-threads 1 --no-capture

## bench-conventions: the default SLOs under kube-prometheus-stack's conventions, for BENCHMARKS.md
## (about 25 minutes): detection of 1, 2 and 5 % allocation failures, the warn rate of a clean soak.
bench-conventions: deps
	$(CARGO) build --workspace --locked --bins
	$(CARGO) nextest run -p upsoak-tests --locked --test conventions --run-ignored only --test-threads 1 --no-capture

## fuzz: every fuzz target of fuzz/fuzz_targets/ (the parsers of untrusted input) for
## FUZZ_SECONDS each under fuzz/src/random.rs's seeded mutation fuzzer in the normal test build
## (the default, FUZZ_ENGINE=random). FUZZ_ENGINE=libfuzzer runs them under cargo-fuzz, installed
## if missing; RUSTC_BOOTSTRAP=1 lets stable Rust build libFuzzer's instrumentation (the first
## build takes long: every dependency is instrumented). Prints the table of BENCHMARKS.md; a crash
## fails with its input in fuzz/artifacts/<target>/: fix it and save the input in
## fuzz/regressions/<target>/, which `make test` replays (each crate's tests/fuzz_regressions.rs).
fuzz:
ifeq ($(FUZZ_ENGINE),random)
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(CARGO) nextest run -p upsoak-sim -p upsoak-chaos -p upsoak-agent \
	  --locked --test fuzz_regressions --run-ignored only --no-capture
else
	@command -v cargo-fuzz >/dev/null || $(CARGO) install --locked cargo-fuzz
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz build -O --debug-assertions
	./fuzz/run.sh $(FUZZ_SECONDS)
endif

## bench-history: the agent's history and the sidecar's journal over a synthetic week, for
## BENCHMARKS.md (a few minutes): file sizes, time per slot, RSS.
bench-history: deps
	$(CARGO) run --locked -p upsoak-agent --example bench_history -- fast
	$(CARGO) run --locked -p upsoak-agent --example bench_history -- daily
	$(CARGO) nextest run -p upsoak-chaos --locked --lib --run-ignored only --no-capture journal_over_weeks

## rehearse: the shipped overlays rendered and run as they render against the simulator at its
## realistic speed, both clean and one with 2 % allocation failures in one version (about an
## hour; deploy/rehearse.sh, tests/src/rehearse/). Tables in target/rehearse/ and BENCHMARKS.md.
rehearse: deps
	$(CARGO) build --workspace --locked --bins
	./deploy/rehearse.sh

release:
	$(CARGO) build --workspace --locked --release --bins

## demo: the whole loop (simulator, Prometheus, Alertmanager, sidecar, agent) for DEMO_DURATION seconds, ending in the report.
demo: deps release
	DEMO_DURATION=$(DEMO_DURATION) ./deploy/local/demo.sh

clean:
	$(CARGO) clean
