#!/usr/bin/env bash
# Installs what `make test` needs on a fresh Debian machine, idempotently: only what is missing.
# The Rust toolchain (cargo, rustc, clippy, rustfmt) is expected to be present already.
set -euo pipefail

need=()
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v make >/dev/null 2>&1 || need+=(make)
# The root tests of the kernel interfaces (tests/netlink.rs) drive these in private netns.
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v ipset >/dev/null 2>&1 || need+=(ipset)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# tests/cli.rs checks a NAT-rewritten capture with tshark's TCP analysis.
command -v tshark >/dev/null 2>&1 || need+=(tshark)
# tests/cli.rs shows replay's progress line on a pty made by script(1).
command -v script >/dev/null 2>&1 || need+=(util-linux)
# The benchmarks' quick run (make bench-quick): the read floor, time and RSS, instructions.
command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
[[ -x /usr/bin/time ]] || need+=(time)
command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
# tests/systemd_units.rs verifies dist/*.service with systemd-analyze.
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
# tests/man.rs renders the generated man pages with groff, failing on any warning.
command -v groff >/dev/null 2>&1 || need+=(groff-base)

if ((${#need[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "install-deps: missing ${need[*]}; run as root or install them" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

for tool in cargo rustc; do
    command -v "$tool" >/dev/null 2>&1 || { echo "install-deps: $tool not found (install Rust with rustup)" >&2; exit 1; }
done
for component in clippy rustfmt; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
        rustup component add "$component"
    fi
done
echo "install-deps: ok ($(cargo --version))"
