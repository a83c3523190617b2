#!/usr/bin/env bash
# The sans-IO rule (docs/architecture.md): the core takes bytes and `now` and returns
# decisions. Only src/io/, src/main.rs and src/cli.rs may touch the OS: files, sockets,
# processes, clocks, environment, libc, netlink or nfqueue.
set -euo pipefail
cd "$(dirname "$0")/.."

pattern='std::fs|std::process|std::env|std::thread|SystemTime|std::time::Instant|Instant::now|TcpStream|TcpListener|UdpSocket|File::|libc::|nfq::|pnet::|OpenOptions'
if hits=$(grep -rnE "$pattern" src --include='*.rs' | grep -vE '^src/(io/|main\.rs|cli\.rs)'); then
    echo "lint-core: the core must not touch the OS; move this into src/io/:" >&2
    echo "$hits" >&2
    exit 1
fi
echo "lint-core: ok (no OS access outside src/io, src/main.rs, src/cli.rs)"
