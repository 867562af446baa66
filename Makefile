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
# Logs and state live outside the source tree: cargo lambda watch rebuilds on any change in it.
STATE_DIR   ?= $(or $(TMPDIR),/tmp)/serverless-rust-kit-$(shell id -u)
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: help
help:
	@echo "make test       fmt + clippy + unit and integration tests (local emulator) + cfn-lint + sam validate"
	@echo "make dev        run the whole system locally (gateway on 127.0.0.1:3000; Ctrl-C stops it)"
	@echo "make emulator   start only the emulator in the foreground (prints AWS_ENDPOINT_URL)"
	@echo "make build      sam build (arm64 release binaries)"
	@echo "make lint       cfn-lint + sam validate --lint"
	@echo "make bench-thumbnails  thumbnail core vs sharp and Pillow on ../shared/bench-corpus"
	@echo "make bench-fanout      chat fan-out to 1,000 connections at 5 ms per post"
	@echo "make clean      remove build output and virtualenvs"

# --- virtualenvs: pinned, project-local, emulator and SAM CLI kept apart -------------------------
$(EMU_VENV)/.installed: local/requirements-emulator.txt
	$(PYTHON) -m venv $(EMU_VENV)
	$(EMU_VENV)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

$(SAM_VENV)/.installed: local/requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

.PHONY: venvs
venvs: $(EMU_VENV)/.installed $(SAM_VENV)/.installed

# --- checks ------------------------------------------------------------------------------------
.PHONY: fmt-check clippy unit-and-integration lint test
fmt-check:
	cargo fmt --all --check

clippy:
	cargo clippy --workspace --all-targets --locked -- -D warnings

unit-and-integration: $(EMU_VENV)/.installed
	local/with-emulator.sh $(MOTO) $(STATE_DIR)/emulator-test.log -- \
	  cargo test --workspace --locked -- --test-threads 8

lint: $(SAM_VENV)/.installed
	$(CFN_LINT) template.yaml
	$(SAM) validate --lint --template template.yaml

test: fmt-check clippy unit-and-integration lint
	@echo "make test: all checks passed"

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

.PHONY: bench-thumbnails
bench-thumbnails: $(BENCH_VENV)/.installed bench/node_modules/.installed
	cargo build --release --locked -p thumbnailer --example thumbnail_file
	cargo bench --locked -p thumbnailer --bench thumbnails

.PHONY: bench-fanout
bench-fanout:
	cargo bench --locked -p integration-tests --bench fanout

.PHONY: arm64-target build emulator dev clean
arm64-target:
	@rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu

# One shared target dir: without an absolute CARGO_TARGET_DIR the SAM Rust builder compiles the
# whole dependency tree (the AWS SDK) once per function (aws-lambda-builders#900).
build: $(SAM_VENV)/.installed arm64-target
	PATH="$(SAM_VENV)/bin:$$PATH" CARGO_TARGET_DIR="$(ROOT)/target" $(SAM) build --template template.yaml

emulator: $(EMU_VENV)/.installed
	local/with-emulator.sh $(MOTO) $(STATE_DIR)/emulator.log -- \
	  bash -c 'echo "export AWS_ENDPOINT_URL=$$AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1"; echo "Ctrl-C stops it"; sleep infinity'

# DEV_PORT: the gateway's port; DEV_ARGS: more local-stack options, e.g. --release or
# --parameter ApprovalPattern=activity.
DEV_PORT ?= 3000
dev: $(EMU_VENV)/.installed
	STATE_DIR=$(STATE_DIR) MOTO=$(MOTO) DEV_PORT=$(DEV_PORT) DEV_ARGS="$(DEV_ARGS)" local/dev.sh

clean:
	rm -rf target .aws-sam $(EMU_VENV) $(SAM_VENV) $(BENCH_VENV) bench/node_modules
