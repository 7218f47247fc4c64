# upsoak: `make demo` runs the main job, `make test` runs every test. Both install what they need.
SHELL := /bin/bash
CARGO ?= cargo
APT_GET := $(shell command -v sudo >/dev/null 2>&1 && [ "$$(id -u)" != 0 ] && echo sudo) apt-get
DEMO_DURATION ?= 180

.PHONY: test e2e bench-detection bench-conventions bench-history demo deps fmt clippy unit build release clean rules-check deploy-check

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
	@if ! command -v kubectl >/dev/null; then \
	  echo "installing: kubectl"; \
	  $(APT_GET) update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq kubectl \
	    || DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq kubernetes-client \
	    || { echo "error: kubectl is not installed and no package provides it"; exit 1; }; \
	fi
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

## deploy-check: each overlay renders with kubectl kustomize and validates against the Kubernetes
## schemas; its rules and scrape configs pass promtool; the Alertmanager example passes amtool.
deploy-check: $(DEPLOY_VENV)/.installed
	PYTHON=$(DEPLOY_VENV)/bin/python ./deploy/check.sh

## test: formatting, lints, promtool on the rules, then every test (unit, kube-rs, kubectl,
## real Prometheus and Alertmanager) with --locked; then the end-to-end soaks (tests/), one at
## a time and alone, so that no soak judges another's load as a regression.
test: deps fmt clippy rules-check deploy-check
	$(CARGO) build --workspace --locked --bins
	$(CARGO) nextest run --workspace --locked --no-fail-fast --exclude upsoak-tests
	$(CARGO) nextest run -p upsoak-tests --locked --no-fail-fast --test-threads 1

## e2e: only the end-to-end soaks (about 15 minutes).
e2e: deps
	$(CARGO) build --workspace --locked --bins
	$(CARGO) nextest run -p upsoak-tests --locked --no-fail-fast --test-threads 1

## bench-detection: detection quality for BENCHMARKS.md (about 25 minutes): false fails over
## 50 clean transitions, detection latency per fault kind.
bench-detection: deps
	$(CARGO) build --workspace --locked --bins
	$(CARGO) nextest run -p upsoak-tests --locked --test detection --run-ignored only --test-threads 1 --no-capture

## bench-conventions: the default SLOs under kube-prometheus-stack's conventions, for BENCHMARKS.md
## (about 25 minutes): detection of 1, 2 and 5 % allocation failures, the warn rate of a clean soak.
bench-conventions: deps
	$(CARGO) build --workspace --locked --bins
	$(CARGO) nextest run -p upsoak-tests --locked --test conventions --run-ignored only --test-threads 1 --no-capture

## bench-history: the agent's history and the sidecar's journal over a synthetic week, for
## BENCHMARKS.md (a few minutes): file sizes, time per slot, RSS.
bench-history: deps
	$(CARGO) run --locked -p upsoak-agent --example bench_history -- fast
	$(CARGO) run --locked -p upsoak-agent --example bench_history -- daily
	$(CARGO) nextest run -p upsoak-chaos --locked --lib --run-ignored only --no-capture journal_over_weeks

release:
	$(CARGO) build --workspace --locked --release --bins

## demo: the whole loop (simulator, Prometheus, Alertmanager, sidecar, agent) for DEMO_DURATION seconds, ending in the report.
demo: deps release
	DEMO_DURATION=$(DEMO_DURATION) ./deploy/local/demo.sh

clean:
	$(CARGO) clean
