# ftp-alg: one entry point for people and CI.
#   make demo         - the main job live: a gateway namespace lab with vsftpd, the ftp-alg
#                       firewall and daemon, real transfers through it (root; ~5 s)
#   make replay-demo  - the engine on built-in samples (replays the project's captures)
#   make test         - install what is needed, build, lint, run every test, then the
#                       gateway integration tests and the hostile suite (root only; they
#                       skip themselves otherwise)
#   make bench        - every benchmark against its baseline; writes docs/benchmarks.md
#                       (replay, scale; the live gateway parts need root; ~10 minutes)
#   make fuzz         - fuzz every target for FUZZ_SECONDS each (nightly, cargo-fuzz;
#                       docs/security.md); make test replays the committed corpora on stable
#   make man          - man pages and bash/zsh/fish completions into target/man, target/completions
#   make install      - the release binary, man pages, completions, rulesets, systemd units and
#                       the example config under $(DESTDIR)$(PREFIX) (PREFIX=/usr/local);
#                       make uninstall removes them again (an /etc config is left alone)
SHELL := /bin/bash
CARGO ?= cargo
SAMPLES := $(sort $(wildcard pcaps/*.pcap pcaps/*.pcapng))

.PHONY: all build release bench bench-quick demo replay-demo gateway-tests hostile-tests ops-tests test deps lint lint-core fmt check-fmt clippy unit samples lab-captures clean fuzz fuzz-cmin fuzz-seeds

all: build

build:
	$(CARGO) build --locked --all-targets

release:
	$(CARGO) build --locked --release

# The live demo: network namespaces, vsftpd, the `alg` firewall and `ftp-alg run`, real
# curl/lftp transfers through the gateway (tests/lab/demo.sh). Root only.
demo: release
	@if [ "$$(id -u)" -ne 0 ]; then \
		echo "make demo needs root (network namespaces, nftables); without root: make replay-demo" >&2; \
		exit 2; \
	fi
	timeout --kill-after=10 180 bash tests/lab/demo.sh

# The replay demo: the project's own sample captures (real vsftpd/proftpd/pure-ftpd/pyftpdlib
# sessions recorded in network namespaces, and the synthetic edge cases). It prints every
# expectation, refusal and admitted data connection.
replay-demo: release
	@echo "== ftp-alg replay over $(words $(SAMPLES)) sample captures in pcaps/ (strict policy)"
	./target/release/ftp-alg replay $(SAMPLES)

test: deps lint
	$(CARGO) test --locked --all-targets
	@echo "== captures: project samples and the shared conformance set (skipped when absent)"
	@$(CARGO) test -q --locked --test samples --test conformance -- --nocapture 2>&1 \
		| grep -E 'SKIPPED|captures matched|\(truth [0-9]+\)' || true
	@echo "== memory per idle session (20,000 sessions; docs/policy.md has the 1,000,000 figure)"
	$(CARGO) run -q --locked --release --example flow_memory -- 20000
	@$(MAKE) --no-print-directory bench-quick
	@$(MAKE) --no-print-directory install-check
	@$(MAKE) --no-print-directory gateway-tests
	@$(MAKE) --no-print-directory hostile-tests
	@$(MAKE) --no-print-directory ops-tests
	@echo "== all tests passed"

# The gateway integration suite (tests/lab/gateway-tests.sh): real servers and clients through
# the ftp-alg firewall, the kernel helper and a bare default-drop gateway. Needs root; as
# another user it prints that it is skipped. About 2.5 minutes; bounded by the timeout below.
gateway-tests:
	@if [ "$$(id -u)" -eq 0 ]; then $(CARGO) build --locked --release; fi
	timeout --kill-after=30 900 bash tests/lab/gateway-tests.sh

# The benchmarks (tests/lab/bench.sh): replay vs tcpdump's read floor and tshark, the flow
# table's scale, and (root) the live gateway: ftp-alg vs the kernel helper vs an open gateway.
bench:
	$(CARGO) build --locked --release --bin ftp-alg --examples
	timeout --kill-after=30 3600 bash tests/lab/bench.sh

# Every benchmark at tiny sizes (a few seconds each), tables printed, nothing written: run by
# `make test` so the harness cannot rot. No figure is checked.
bench-quick:
	$(CARGO) build --locked --release --bin ftp-alg --examples
	BENCH_QUICK=1 timeout --kill-after=30 300 bash tests/lab/bench.sh

# The live adversarial suite (tests/lab/hostile-tests.sh, docs/security.md): hostile clients
# and servers, malformed datagrams, faults, 1,000 sessions (the ftp_load example). Needs root;
# as another user it prints that it is skipped. About 2 minutes.
hostile-tests:
	@if [ "$$(id -u)" -eq 0 ]; then $(CARGO) build --locked --release --bins --example ftp_load; fi
	timeout --kill-after=30 600 bash tests/lab/hostile-tests.sh

# The live operations suite (tests/lab/ops-tests.sh, docs/operations.md): one script per
# part in tests/lab/ops/. Needs root; as another user it prints that it is skipped.
ops-tests:
	@if [ "$$(id -u)" -eq 0 ]; then $(CARGO) build --locked --release --bins; fi
	timeout --kill-after=30 900 bash tests/lab/ops-tests.sh

deps:
	./.ci/install-deps.sh

.PHONY: man install uninstall install-check

# Man pages (ftp-alg.1, ftp-alg-<subcommand>.1) and shell completions, generated from the
# clap definitions by an example, so the generators stay out of the shipped binary.
man:
	rm -rf target/man target/completions
	$(CARGO) run -q --locked --example gen_man -- target/man target/completions >/dev/null

# Installation (GNU conventions: PREFIX, DESTDIR; each directory overridable). Units in dist/
# get ExecStart's binary path rewritten to $(BINDIR). The example config goes to $(DOCDIR),
# and to $(SYSCONFDIR)/ftp-alg/ only if no config is there yet: an existing one is never
# overwritten (the example is all comments: it changes no default).
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man/man1
DATADIR ?= $(PREFIX)/share/ftp-alg
DOCDIR ?= $(PREFIX)/share/doc/ftp-alg
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
INSTALL ?= install
UNITS := $(wildcard dist/*.service)

install: release man
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR) $(DESTDIR)$(DATADIR)/rules \
		$(DESTDIR)$(DOCDIR) $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) \
		$(DESTDIR)$(FISHCOMPDIR) $(DESTDIR)$(SYSCONFDIR)/ftp-alg
	$(INSTALL) -m 0755 target/release/ftp-alg $(DESTDIR)$(BINDIR)/ftp-alg
	$(INSTALL) -m 0644 target/man/*.1 $(DESTDIR)$(MANDIR)/
	$(INSTALL) -m 0644 target/completions/ftp-alg.bash $(DESTDIR)$(BASHCOMPDIR)/ftp-alg
	$(INSTALL) -m 0644 target/completions/_ftp-alg $(DESTDIR)$(ZSHCOMPDIR)/_ftp-alg
	$(INSTALL) -m 0644 target/completions/ftp-alg.fish $(DESTDIR)$(FISHCOMPDIR)/ftp-alg.fish
	$(INSTALL) -m 0644 $(filter-out %.sh,$(wildcard rules/*)) $(DESTDIR)$(DATADIR)/rules/
	$(INSTALL) -m 0755 $(wildcard rules/*.sh) $(DESTDIR)$(DATADIR)/rules/
	$(INSTALL) -m 0644 dist/ftp-alg.toml $(DESTDIR)$(DOCDIR)/ftp-alg.toml
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/ftp-alg/ftp-alg.toml ]; then \
		echo "kept the existing $(DESTDIR)$(SYSCONFDIR)/ftp-alg/ftp-alg.toml (example: $(DOCDIR)/ftp-alg.toml)"; \
	else \
		$(INSTALL) -m 0644 dist/ftp-alg.toml $(DESTDIR)$(SYSCONFDIR)/ftp-alg/ftp-alg.toml; \
	fi
	@for unit in $(UNITS); do \
		$(INSTALL) -d $(DESTDIR)$(SYSTEMDUNITDIR) || exit 1; \
		sed -E 's#/usr(/local)?/s?bin/ftp-alg#$(BINDIR)/ftp-alg#g' $$unit \
			> $(DESTDIR)$(SYSTEMDUNITDIR)/$${unit##*/} || exit 1; \
		chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/$${unit##*/}; \
		echo "installed $(DESTDIR)$(SYSTEMDUNITDIR)/$${unit##*/}"; \
	done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/ftp-alg $(DESTDIR)$(MANDIR)/ftp-alg.1 $(DESTDIR)$(MANDIR)/ftp-alg-*.1 \
		$(DESTDIR)$(BASHCOMPDIR)/ftp-alg $(DESTDIR)$(ZSHCOMPDIR)/_ftp-alg \
		$(DESTDIR)$(FISHCOMPDIR)/ftp-alg.fish $(addprefix $(DESTDIR)$(SYSTEMDUNITDIR)/,$(notdir $(UNITS)))
	rm -rf $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR)
	@echo "left $(DESTDIR)$(SYSCONFDIR)/ftp-alg/ alone (your configuration)"

# make install into a scratch DESTDIR, then check the tree (tests/install-check.sh).
install-check:
	bash tests/install-check.sh

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

# Fuzzing (docs/security.md): libFuzzer campaigns need nightly and cargo-fuzz
# (`cargo install cargo-fuzz`). New inputs go to fuzz/corpus-new/ (ignored by git);
# `make fuzz-cmin` merges them into the committed, minimized fuzz/corpus/ (engine's by edges
# alone, -use_counters=0, which keeps it to a few hundred KB). One job at a time,
# at the lowest priority. Crashes land in fuzz/artifacts/<target>/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= capture engine ftp_parsers nat_rewrite reassembly wire_decode
FUZZ_FLAGS ?= -rss_limit_mb=2048 -malloc_limit_mb=256 -timeout=10
FUZZ_CARGO ?= nice -n 19 cargo +nightly fuzz

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
		mkdir -p fuzz/corpus-new/$$t; \
		$(FUZZ_CARGO) run -O -a $$t $(CURDIR)/fuzz/corpus-new/$$t $(CURDIR)/fuzz/corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) $(FUZZ_FLAGS) || exit 1; \
	done

fuzz-cmin:
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/corpus-new/$$t; \
		cp -n fuzz/corpus-new/$$t/* fuzz/corpus/$$t/ 2>/dev/null || true; \
		extra=; if [ $$t = engine ]; then extra=-use_counters=0; fi; \
		$(FUZZ_CARGO) cmin -O -a $$t $(CURDIR)/fuzz/corpus/$$t -- $(FUZZ_FLAGS) $$extra || exit 1; \
	done

# Seeds from the project's own captures (pcaps/), merged into the corpora.
fuzz-seeds:
	$(CARGO) run --locked --example fuzz_seeds -- fuzz/corpus-new
	$(MAKE) --no-print-directory fuzz-cmin

clean:
	$(CARGO) clean
