# uslugi — one command to run the stack, one to test it.
#
#   make dev     local stack: moto (DynamoDB, SQS, SES, SNS), every function under
#                `cargo lambda watch`, and the local API gateway on 127.0.0.1:3000
#                (`make dev FAULTS=plan` injects faults: docs/operations/faults.md)
#   make test    formatting, lints, unit tests, template lint, end-to-end tests (with
#                schemathesis against docs/openapi.yaml)
#   make fuzz    schemathesis alone, on a stack of its own; SCHEMATHESIS_MAX_EXAMPLES=200
#                for a longer session
#   make seed    a demo family with children, a car and bills, in the running stack
#   make bench   release builds measured: size, cold start, memory, latency, AWS calls
#   make deploy-check
#                what a deploy must pass, without deploying: sam validate per environment,
#                cfn-lint, checkov, the resource count and the arm64 release build

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
CHECKOV_VENV := .venv-checkov
PYTHON      ?= python3
TOOLS       := infra/local/Cargo.toml
GATEWAY_PORT ?= 3000
MOTO_PORT   ?= 4566
LAMBDA_PORT ?= 9000
# Instances per function; more than one lets concurrent requests race as in AWS.
LAMBDA_CONCURRENCY ?= 1

# One target directory for every workspace in the repository.
export CARGO_TARGET_DIR := $(CURDIR)/target
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help venv checkov-venv build dev seed test fmt-check clippy unit lint-template e2e fuzz bench fmt deploy-check

help:
	@echo "make dev    - run the local stack (gateway on http://127.0.0.1:$(GATEWAY_PORT))"
	@echo "make seed   - load a demo family with bills into the running stack"
	@echo "make test   - everything CI runs"
	@echo "make fuzz   - schemathesis against docs/openapi.yaml on a local stack of its own"
	@echo "make bench  - write bench/results.md"
	@echo "make deploy-check - validate, lint and scan the template, release-build every function"

# The local tools, installed only when missing or when the pinned list changes.
$(VENV)/.installed: requirements-dev.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed

# checkov pins a boto3 that aws-sam-cli cannot work with: a virtual environment of its own.
$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

checkov-venv: $(CHECKOV_VENV)/.installed

# The Lambda binaries in debug, so that `cargo lambda watch` finds them built.
build:
	cargo build --workspace --bins

# Every stack leaves what local tools need in .local/stacks/<gateway port>.env; `make dev`'s
# also in .local/stack.env, the file the documented admin commands read.
dev: venv build
	cargo run --quiet --manifest-path $(TOOLS) --bin uslugi-local -- up \
		--gateway-port $(GATEWAY_PORT) --moto-port $(MOTO_PORT) --lambda-port $(LAMBDA_PORT) \
		--concurrency $(LAMBDA_CONCURRENCY) --tools-env .local/stack.env \
		$(if $(FAULTS),--faults '$(FAULTS)')

# A demo family with bills, loaded into the stack `make dev` is running on GATEWAY_PORT
# (it reads that stack's .local/stacks/$(GATEWAY_PORT).env).
seed: build
	cargo run --quiet --manifest-path $(TOOLS) --bin uslugi-local -- seed \
		--gateway http://127.0.0.1:$(GATEWAY_PORT)

fmt:
	cargo fmt --all
	cargo fmt --all --manifest-path $(TOOLS)

fmt-check:
	cargo fmt --all -- --check
	cargo fmt --all --manifest-path $(TOOLS) -- --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --workspace --all-targets --manifest-path $(TOOLS) -- -D warnings

unit: venv
	cargo test --workspace
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider infra/local/src/moto_server_test.py

lint-template: venv
	$(VENV)/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- infra/template.yaml
	$(VENV)/bin/openapi-spec-validator docs/openapi.yaml

# Starts its own stacks on free ports and tears them down, pass or fail.
e2e: venv build
	cargo test --workspace --manifest-path $(TOOLS)

# The API as a client generated from docs/openapi.yaml sees it (also part of `make e2e`).
# SCHEMATHESIS_MAX_EXAMPLES, SCHEMATHESIS_SEED and SCHEMATHESIS_DATA tune a longer session.
fuzz: venv build
	cargo test --manifest-path $(TOOLS) -p e2e --test schemathesis

test: venv fmt-check clippy unit lint-template e2e

bench: venv
	bash bench/run.sh

# Not part of `make test`: the release build of every function takes long. Needs no AWS
# credentials.
deploy-check: venv checkov-venv
	@for env in dev prod; do \
		echo "sam validate --lint --config-env $$env"; \
		SAM_CLI_TELEMETRY=0 sam validate --lint --config-env $$env || exit 1; \
	done
	$(VENV)/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- infra/template.yaml
	$(CHECKOV_VENV)/bin/checkov -f infra/template.yaml --framework cloudformation \
		--quiet --compact --skip-download
	$(VENV)/bin/python infra/transform.py --count
	rustup target add aarch64-unknown-linux-gnu
	bash infra/release-build.sh
