# ftp-alg: one entry point for people and CI.
#   make demo   - the main job on built-in samples (replays the project's captures)
#   make test   - install what is needed, build, lint, run every test
SHELL := /bin/bash
CARGO ?= cargo
SAMPLES := $(sort $(wildcard pcaps/*.pcap pcaps/*.pcapng))

.PHONY: all build release demo test deps lint lint-core fmt check-fmt clippy unit samples lab-captures clean

all: build

build:
	$(CARGO) build --locked --all-targets

release:
	$(CARGO) build --locked --release

# Until the live lab lands (issue #3), the demo replays the project's own sample captures:
# real vsftpd/proftpd/pure-ftpd/pyftpdlib sessions recorded in network namespaces, and the
# synthetic edge cases. It prints every expectation, refusal and admitted data connection.
demo: release
	@echo "== ftp-alg replay over $(words $(SAMPLES)) sample captures in pcaps/ (strict policy)"
	./target/release/ftp-alg replay $(SAMPLES)

test: deps lint
	$(CARGO) test --locked --all-targets
	@echo "== captures: project samples and the shared conformance set (skipped when absent)"
	@$(CARGO) test -q --locked --test samples --test conformance -- --nocapture 2>&1 \
		| grep -E 'SKIPPED|captures matched|\(truth [0-9]+\)' || true
	@echo "== all tests passed"

deps:
	./.ci/install-deps.sh

lint: check-fmt clippy lint-core

check-fmt:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --locked --all-targets -- -D warnings

# The sans-IO rule: only src/io/, src/main.rs and src/cli.rs may touch the OS.
lint-core:
	./.ci/lint-core.sh

fmt:
	$(CARGO) fmt --all

# Rewrite the synthetic captures in pcaps/ (tests check the committed files match).
samples:
	$(CARGO) run --locked --example gen_samples -- pcaps

# Re-record the lab captures in pcaps/ (needs root; builds network namespaces).
lab-captures:
	bash tests/lab/capture-samples.sh

clean:
	$(CARGO) clean
