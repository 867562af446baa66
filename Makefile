# serverless-rust-kit: one entry point for building, testing and running locally.
#   make test   everything CI checks (fmt, clippy, unit + integration tests on the emulator, lint)
#   make dev    the whole system on a local AWS emulator: APIs on 127.0.0.1:3000, functions as
#               Lambda processes, event sources, pipes
#   make build  sam build (arm64, provided.al2023)
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

ROOT        := $(CURDIR)
PYTHON      ?= python3
EMU_VENV    := $(ROOT)/.venv-emulator
SAM_VENV    := $(ROOT)/.venv-sam
MOTO        := $(EMU_VENV)/bin/moto_server
SAM         := $(SAM_VENV)/bin/sam
CFN_LINT    := $(SAM_VENV)/bin/cfn-lint
CHECKOV_VENV := $(ROOT)/.venv-checkov
FUZZ_VENV   := $(ROOT)/.venv-fuzz
CHECKOV     := $(CHECKOV_VENV)/bin/checkov
WORKFLOWS_VENV := $(ROOT)/.venv-workflows
# Logs and state live outside the source tree: cargo lambda watch rebuilds on any change in it.
STATE_DIR   ?= $(or $(TMPDIR),/tmp)/serverless-rust-kit-$(shell id -u)
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: help
help:
	@echo "make test       fmt + clippy + unit, integration and end-to-end tests (local emulator) + lint"
	@echo "make dev        run the whole system locally (gateway on 127.0.0.1:3000; Ctrl-C stops it)"
	@echo "make emulator   start only the emulator in the foreground (prints AWS_ENDPOINT_URL)"
	@echo "make build      sam build (arm64 release binaries)"
	@echo "make deploy ENV=dev|prod  sam build + sam deploy --config-env ENV"
	@echo "make lint       cfn-lint + sam validate --lint + checkov + unused dependencies + 80-line functions in local/"
	@echo "make transformed  write what CloudFormation receives (SAM transform) to target/"
	@echo "make iam-report   per role: actions used / refused / granted but unused (after make test)"
	@echo "make fuzz       schemathesis over docs/openapi.yaml against the local stack"
	@echo "make chaos      every system under 20% injected AWS faults for 2 min; nothing may be lost"
	@echo "make redrive QUEUE=<DLQ> [STACK=name]  a DLQ's messages back to their source queue"
	@echo "make e2e-aws STACK=name|ENV=dev  the end-to-end tests against a deployed stack"
	@echo "make token      an ID token for curl against the running make dev (Authorization header)"
	@echo "make web-publish STACK=name|ENV=dev  the web app (web/ + config.json) to a deployed stack's CloudFront"
	@echo "make browser-deps  Chromium (Debian) + playwright-core for the browser tests (part of make test)"
	@echo "make fuzz-smoke the same, 20 examples per operation (part of make test)"
	@echo "make bench-thumbnails  thumbnail core vs sharp and Pillow, interleaved, on every accepted kind of image"
	@echo "make fuzz-thumbnails   the thumbnailer's JPEG decoder and render path under cargo-fuzz (15 min a target)"
	@echo "make fuzz-thumbnails-smoke  the same, 30 s a target"
	@echo "make bench-cold        per-function size, zip, init vs hello-world, peak RSS"
	@echo "make bench-fanout      chat fan-out to 1,000 connections at 5 ms per post"
	@echo "make clean      remove build output and virtualenvs"

# A deployed stack's name: STACK=, or the stack_name of samconfig.toml's ENV= environment.
stack_of_env = $(if $(filter command line,$(origin ENV)),$(shell $(PYTHON) -c "import tomllib; print(tomllib.load(open('samconfig.toml', 'rb'))['$(ENV)']['global']['parameters']['stack_name'])"))

# --- virtualenvs: pinned, project-local, emulator and SAM CLI kept apart -------------------------
# One venv per tool: .venv-<name> from local/requirements-<name>.txt (emulator, sam, checkov, fuzz).
$(ROOT)/.venv-%/.installed: local/requirements-%.txt
	$(PYTHON) -m venv $(@D)
	$(@D)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

.PHONY: venvs
venvs: $(EMU_VENV)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed $(FUZZ_VENV)/.installed $(WORKFLOWS_VENV)/.installed

# --- checks ------------------------------------------------------------------------------------
.PHONY: fmt-check clippy unit-and-integration lint test
fmt-check:
	cargo fmt --all --check

clippy:
	cargo clippy --workspace --all-targets --locked -- -D warnings

# The IAM gate in front of the emulator is the local-stack binary (local/with-emulator.sh).
.PHONY: gate-bin
gate-bin:
	cargo build --quiet --locked -p local-stack --bin local-stack

# The browser tests' tools (local/tests/browser.rs): Debian's Chromium and npm's playwright-core
# (no browser download: it drives /usr/bin/chromium), and fonts for Korean and emoji so the
# screenshots show the names the tests type.
BROWSER_DIR := $(ROOT)/local/browser
BROWSER_PACKAGES := chromium fonts-noto-cjk fonts-noto-color-emoji
.PHONY: browser-deps
browser-deps: $(BROWSER_DIR)/node_modules/.installed
	@if ! command -v chromium >/dev/null || ! fc-list :lang=ko | grep -q . || ! fc-list | grep -qi 'color emoji'; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES); \
	  else echo "missing: sudo apt-get install $(BROWSER_PACKAGES)" >&2; exit 1; fi; fi
$(BROWSER_DIR)/node_modules/.installed: $(BROWSER_DIR)/package-lock.json
	npm ci --prefix $(BROWSER_DIR) --no-audit --no-fund --loglevel=error
	touch $@

# Tests read the template through the SAM transform (.venv-sam) and run behind the IAM gate;
# every decision goes to $(STATE_DIR)/iam-audit.jsonl (make iam-report).
unit-and-integration: $(EMU_VENV)/.installed $(SAM_VENV)/.installed gate-bin browser-deps
	IAM_AUDIT=$(STATE_DIR)/iam-audit.jsonl local/with-emulator.sh $(MOTO) $(STATE_DIR)/emulator-test.log -- \
	  cargo test --workspace --locked -- --test-threads 8

# What CloudFormation receives: template.yaml through the pinned SAM transform
# (PARAMS='ApprovalPattern=activity ...' to override parameters).
.PHONY: transformed
transformed: $(SAM_VENV)/.installed
	cargo run --quiet --locked -p local-stack --bin local-stack -- transform \
	  $(foreach p,$(PARAMS),--parameter $(p)) > target/transformed-template.json
	@echo "wrote target/transformed-template.json"

# Least privilege: per role, what the last `make test` used, what was refused, what no test
# exercised (from the IAM gate's audit).
.PHONY: iam-report
iam-report: gate-bin
	target/debug/local-stack iam-report --audit $(STATE_DIR)/iam-audit.jsonl

# Unused dependency lines fail the lint (cargo-machete, installed under target/tools like the
# venvs: pinned, project-local).
MACHETE := $(ROOT)/target/tools/bin/cargo-machete
$(MACHETE):
	cargo install --quiet --locked cargo-machete --version 0.9.1 --root $(ROOT)/target/tools

# checkov: 0 failed checks; every skip is inline in template.yaml (Metadata.checkov.skip) with
# its reason. No function in local/ over 80 lines (local/clippy.toml); no unused dependency.
lint: $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed $(WORKFLOWS_VENV)/.installed $(MACHETE)
	$(MACHETE)
	cargo clippy --quiet -p local-stack --all-targets --locked -- -D clippy::too_many_lines
	$(CFN_LINT) template.yaml
	$(SAM) validate --lint --template template.yaml
	$(CHECKOV) --file template.yaml --framework cloudformation --compact --quiet
	$(WORKFLOWS_VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(WORKFLOWS_VENV)/bin/zizmor --offline --min-severity low .github/workflows

# The thumbnailer's fuzz properties run in unit-and-integration as seeded mutations
# (functions/thumbnailer/tests/seeded_mutations.rs); cargo-fuzz itself is make fuzz-thumbnails.
test: fmt-check clippy unit-and-integration e2e-aws-rehearsal lint fuzz-smoke
	@echo "make test: all checks passed"

# HTTP contract: every route of docs/openapi.yaml fuzzed against the local stack (FUZZ_EXAMPLES
# cases per operation and phase, default 300): no 5xx, nothing outside the document, no crash.
.PHONY: fuzz
fuzz: $(EMU_VENV)/.installed $(SAM_VENV)/.installed $(FUZZ_VENV)/.installed gate-bin
	SCHEMATHESIS=$(FUZZ_VENV)/bin/schemathesis STATE_DIR=$(STATE_DIR) \
	  local/with-emulator.sh $(MOTO) $(STATE_DIR)/emulator-fuzz.log -- local/fuzz.sh

# Chaos: every system driven while 20% of every principal's AWS calls fail (throttling, 5xx,
# cut connections before and after the call applied, latency), then drained and checked: nothing
# lost. `make test` runs the same test for 12 s; CHAOS_SECONDS / CHAOS_FAULTS to change it.
CHAOS_SECONDS ?= 120
CHAOS_FAULTS ?= 0.2,seed=20261201
.PHONY: chaos
chaos: $(EMU_VENV)/.installed $(SAM_VENV)/.installed gate-bin
	CHAOS_SECONDS=$(CHAOS_SECONDS) CHAOS_FAULTS='$(CHAOS_FAULTS)' \
	  local/with-emulator.sh $(MOTO) $(STATE_DIR)/emulator-chaos.log -- \
	  cargo test --locked -p local-stack --test chaos -- --nocapture

# The same run, seeded and small enough for every `make test` (FUZZ_SMOKE_EXAMPLES per operation
# and phase).
FUZZ_SMOKE_EXAMPLES ?= 20
.PHONY: fuzz-smoke
fuzz-smoke:
	$(MAKE) --no-print-directory fuzz FUZZ_EXAMPLES=$(FUZZ_SMOKE_EXAMPLES)

# A DLQ's messages back to their source queue, none lost: QUEUE=<DLQ logical id>, in the running
# `make dev` stack, or STACK=<deployed stack name> (your AWS credentials and region).
.PHONY: redrive
redrive: $(SAM_VENV)/.installed gate-bin
	@test -n "$(QUEUE)" || { echo "usage: make redrive QUEUE=PhotoUploadDLQ [STACK=my-stack]" >&2; exit 2; }
	target/debug/local-stack redrive --queue $(QUEUE) \
	  $(if $(STACK),--stack $(STACK),--state-file $(STATE_DIR)/dev.json)

# An ID token for curl against the running `make dev` (a new person of its user pool, signed in):
#   curl -H "Authorization: $(make -s token)" -H 'x-api-key: local-dev-api-key' .../items
.PHONY: token
token: gate-bin
	@target/debug/local-stack token --state-file $(STATE_DIR)/dev.json

# --- build and run -----------------------------------------------------------------------------
# --- benchmarks (numbers go to docs/benchmarks.md; never timed tests) --------------------------
BENCH_VENV := $(ROOT)/.venv-bench
$(BENCH_VENV)/.installed: bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

bench/node_modules/.installed: bench/package.json
	cd bench && npm install --no-audit --no-fund --silent
	touch $@

# cjpeg (libjpeg-turbo-progs) writes the corpus's 4:4:0, 4:1:1 and restart-interval JPEGs.
.PHONY: cjpeg
cjpeg:
	@command -v cjpeg >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libjpeg-turbo-progs; \
	  else echo "cjpeg is missing: sudo apt-get install libjpeg-turbo-progs" >&2; exit 1; fi; }

# Every kind of input the thumbnailer accepts, generated from one photo of ../shared/bench-corpus
# (bench/make_corpus.py; BENCH_CORPUS=<folder> benchmarks any folder of images instead).
BENCH_CORPUS ?= $(ROOT)/target/bench-corpus
$(ROOT)/target/bench-corpus/.made: bench/make_corpus.py | $(BENCH_VENV)/.installed cjpeg
	$(BENCH_VENV)/bin/python bench/make_corpus.py $(@D)
	touch $@

.PHONY: bench-thumbnails
bench-thumbnails: $(BENCH_VENV)/.installed bench/node_modules/.installed $(if $(filter $(ROOT)/target/bench-corpus,$(BENCH_CORPUS)),$(ROOT)/target/bench-corpus/.made)
	cargo build --release --locked -p thumbnailer --example thumbnail_file
	BENCH_CORPUS=$(BENCH_CORPUS) cargo bench --locked -p thumbnailer --bench thumbnails

# The thumbnailer's fuzz targets (functions/thumbnailer/fuzz): FUZZ_THUMBNAILS_SECONDS per
# target, seeded with the test fixtures and the corpus's kinds at small size. `make test` replays
# the same properties over seeded mutations instead (no cargo-fuzz build: minutes on a fresh
# machine); fuzz-thumbnails-smoke is cargo-fuzz for 30 s a target.
FUZZ_THUMBNAILS_SECONDS ?= 900
$(ROOT)/target/fuzz-seeds/.made: bench/make_corpus.py | $(BENCH_VENV)/.installed cjpeg
	$(BENCH_VENV)/bin/python bench/make_corpus.py $(@D) --small
	touch $@
.PHONY: fuzz-thumbnails fuzz-thumbnails-smoke
fuzz-thumbnails: $(ROOT)/target/fuzz-seeds/.made
	functions/thumbnailer/fuzz/run.sh $(FUZZ_THUMBNAILS_SECONDS) $(ROOT)/target/fuzz-seeds
fuzz-thumbnails-smoke:
	$(MAKE) --no-print-directory fuzz-thumbnails FUZZ_THUMBNAILS_SECONDS=30

# Per function: size, zip, init vs a hello-world lambda_runtime binary (same profile), peak RSS
# serving its first events/ fixture against the emulator. arm64 sizes too after `make build`.
FUNCTIONS := $(notdir $(wildcard functions/*))
.PHONY: bench-cold
bench-cold: $(EMU_VENV)/.installed $(SAM_VENV)/.installed gate-bin
	cargo build --release --locked -p hello-lambda $(addprefix -p ,$(FUNCTIONS))
	local/with-emulator.sh $(MOTO) $(STATE_DIR)/emulator-bench.log -- bash -c '\
	  cargo run --quiet --locked -p local-stack --bin local-stack -- provision --prefix bench --env-file $(STATE_DIR)/bench.env >/dev/null && \
	  $(PYTHON) bench/cold_start.py --events events --env-file $(STATE_DIR)/bench.env --arm64-dir .aws-sam/build \
	    --hello target/release/hello-lambda $(addprefix target/release/,$(FUNCTIONS))'

.PHONY: bench-fanout
bench-fanout:
	cargo bench --locked -p integration-tests --bench fanout

.PHONY: arm64-target build emulator dev clean
arm64-target:
	@rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu

# One shared target dir: without an absolute CARGO_TARGET_DIR the SAM Rust builder compiles the
# whole dependency tree (the AWS SDK) once per function (aws-lambda-builders#900).
# sam build and sam deploy of one samconfig.toml environment (dev, prod).
ENV ?= dev
.PHONY: deploy
deploy: build
	$(SAM) deploy --config-env $(ENV)
	$(MAKE) --no-print-directory web-publish ENV=$(ENV)

# The web app to a deployed stack: web/ and a config.json from its outputs into WebAppBucket,
# then a CloudFront invalidation (after `make deploy`; it prints the app's URL).
.PHONY: web-publish
web-publish: STACK ?= $(stack_of_env)
web-publish: $(SAM_VENV)/.installed
	@test -n "$(STACK)" || { echo "usage: make web-publish STACK=<deployed stack name> (or ENV=dev|prod)" >&2; exit 2; }
	$(SAM_VENV)/bin/python local/tools/web_publish.py $(STACK)

# The end-to-end suite against a deployed stack: its URLs, API key and resources come from
# CloudFormation (local/tools/stack_state.py, default credentials and region as the AWS CLI);
# checks of local-only views (mailbox, logs, metrics view) are skipped with their reason.
.PHONY: e2e-aws
# STACK= names the stack; without it, ENV= (a samconfig.toml environment) names it.
e2e-aws: STACK ?= $(stack_of_env)
e2e-aws: $(SAM_VENV)/.installed
	@test -n "$(STACK)" || { echo "usage: make e2e-aws STACK=<deployed stack name> (or ENV=dev|prod)" >&2; exit 2; }
	mkdir -p $(STATE_DIR)
	umask 077; $(SAM_VENV)/bin/python local/tools/stack_state.py $(STACK) > $(STATE_DIR)/$(STACK).state.json
	E2E_STACK_STATE=$(STATE_DIR)/$(STACK).state.json \
	  cargo test --locked -p local-stack --test e2e -- --test-threads 4

# The same suite in its deployed-stack mode against a local stack (part of make test), and the
# state-file tool against moto's CloudFormation.
.PHONY: e2e-aws-rehearsal
e2e-aws-rehearsal: $(EMU_VENV)/.installed $(SAM_VENV)/.installed gate-bin
	$(EMU_VENV)/bin/python local/tools/test_stack_state.py
	$(EMU_VENV)/bin/python local/tools/test_web_publish.py
	local/with-emulator.sh $(MOTO) $(STATE_DIR)/emulator-rehearsal.log -- local/e2e-aws-rehearsal.sh

build: $(SAM_VENV)/.installed arm64-target
	PATH="$(SAM_VENV)/bin:$$PATH" CARGO_TARGET_DIR="$(ROOT)/target" $(SAM) build --template template.yaml

emulator: $(EMU_VENV)/.installed $(SAM_VENV)/.installed gate-bin
	local/with-emulator.sh $(MOTO) $(STATE_DIR)/emulator.log -- \
	  bash -c 'echo "export AWS_ENDPOINT_URL=$$AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1"; echo "Ctrl-C stops it"; sleep infinity'

# DEV_PORT: the gateway's port; DEV_ARGS: more local-stack options, e.g. --release or
# --parameter ApprovalPattern=activity.
DEV_PORT ?= 3000
# DEV_WEB_PORT: the web app's (its own origin, as the CloudFront distribution is).
DEV_WEB_PORT ?= 3001
dev: $(EMU_VENV)/.installed $(SAM_VENV)/.installed gate-bin
	STATE_DIR=$(STATE_DIR) MOTO=$(MOTO) DEV_PORT=$(DEV_PORT) DEV_WEB_PORT=$(DEV_WEB_PORT) DEV_ARGS="$(DEV_ARGS)" local/dev.sh

clean:
	rm -rf target .aws-sam $(EMU_VENV) $(SAM_VENV) $(CHECKOV_VENV) $(FUZZ_VENV) $(WORKFLOWS_VENV) $(BENCH_VENV) bench/node_modules local/browser/node_modules
