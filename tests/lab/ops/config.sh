#!/usr/bin/env bash
# The configuration file live (docs/operations.md, "Configuration file"): `ftp-alg run
# --config FILE` in the lab's gateway namespace. The file's settings reach the daemon (its
# `ready` line shows the file's policy and lifetime), flags replace them (the lab's --queue
# and --backend over the file's, then --timeout), the shipped example (all comments) changes
# nothing, and a bad file stops the start with status 2 and its line, before any queue is
# bound.
#
#   OPS_ONLY=config bash tests/lab/ops-tests.sh   # or: LAB_PREFIX=fops-config bash tests/lab/ops/config.sh
#
# Output: `ok|FAIL NAME (details)` per case; exit 1 if any case failed. About 10 s. The lab
# (namespaces ${LAB_PREFIX}-*) is torn down on exit.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ $(id -u) -ne 0 ]]; then
    echo "config tests skipped: they need root (network namespaces, NFQUEUE)"
    exit 0
fi
export LAB_PREFIX=${LAB_PREFIX:-fops-config}
# shellcheck source=tests/lab/lab.sh
source "$HERE/lab.sh"

WORK=$(mktemp -d)
N_OK=0 N_FAIL=0
MAIN_PID=$BASHPID
cleanup() {
    local rc=$?
    [[ $BASHPID == "$MAIN_PID" ]] || exit "$rc"
    set +eu
    trap - EXIT INT TERM
    lab_alg_stop
    lab_down
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

result() {
    local st=$1 name=$2 det=$3
    case "$st" in
    ok) N_OK=$((N_OK + 1)) ;;
    *) st=FAIL N_FAIL=$((N_FAIL + 1)) ;;
    esac
    printf '%s %s (%s)\n' "$st" "$name" "$det"
}

# ready_line ARGS...: start the daemon with ARGS (lab_alg_start adds --queue and, unless
# given, --backend nft and --state-dir), print its `ready` line, stop it.
ready_line() {
    lab_alg_start "$@" >/dev/null 2>&1 || return 1
    lab_alg_log | grep -m1 'ready:'
    lab_alg_stop >/dev/null 2>&1
}

# expect_ready NAME PATTERN ARGS...: the daemon started with ARGS says `ready` matching the
# glob PATTERN.
expect_ready() {
    local name=$1 pattern=$2 line
    shift 2
    line=$(ready_line "$@")
    if [[ $line == *$pattern* ]]; then
        result ok "$name" "$line"
    else
        result FAIL "$name" "wanted '$pattern'; ready line: '${line:-none}'"
    fi
}

lab_up >/dev/null 2>&1 || { echo "FAIL lab (lab_up failed)"; exit 1; }

cat >"$WORK/ftp-alg.toml" <<'TOML'
# the lab's flags (--queue, --backend) replace the first two
queue = "9"
backend = "ipset"
policy = "loose"
timeout = 45
control-port = [21, 2121]
TOML

expect_ready file-settings-reach-the-daemon \
    "queue(s) \[$LAB_ALG_QUEUE\] bound, backend no backend*, policy loose, lifetime 45s" \
    --backend none --config "$WORK/ftp-alg.toml"
expect_ready a-flag-replaces-a-setting "policy loose, lifetime 50s" \
    --backend none --config "$WORK/ftp-alg.toml" --timeout 50
expect_ready the-example-changes-nothing "policy strict, lifetime 30s" \
    --backend none --config "$LAB_REPO/dist/ftp-alg.toml"

printf 'policy = "loose"\n\nqueu = "1"\n' >"$WORK/bad.toml"
out=$(lab_gw "$FTPALG_BIN" run --backend none --config "$WORK/bad.toml" 2>&1)
rc=$?
if ((rc == 2)) && [[ $out == *'bad.toml:3: unknown key "queu" (did you mean "queue"?)'* ]]; then
    result ok a-bad-file-stops-the-start "exit $rc: $out"
else
    result FAIL a-bad-file-stops-the-start "exit $rc: $out"
fi

echo "config: $N_OK ok, $N_FAIL failed"
((N_FAIL == 0))
