#!/usr/bin/env bash
# `ftp-alg check` live (docs/operations.md, "Checking a gateway"): in the lab's gateway
# namespace, a good set-up loaded with `ftp-alg rules ... | sh` must exit 0 with every line
# ok or an explained warn, and each broken set-up must exit with its status and name its
# finding: no table; a set missing; a set without `flags timeout`; no queue rule; a queue
# rule without bypass (a warning: exit 0); the kernel's FTP helper attached (conflict); the
# ipset backend without its sets; a daemon already bound to the queue (ftp-alg: warn, another
# program: conflict); the daemon and the check with only CAP_NET_ADMIN; the ruleset the
# systemd unit loads; the NAT form with and without its pre-conntrack queue rule.
#
#   OPS_ONLY=check bash tests/lab/ops-tests.sh     # or: LAB_PREFIX=fops-check bash tests/lab/ops/check.sh
#
# Output: `ok|FAIL|n/a NAME (details)` per case; exit 1 if any case failed. About 15 s. The
# lab (namespaces ${LAB_PREFIX}-*) is torn down on exit.
set -u

# shellcheck source=tests/lab/ops-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../ops-common.sh" check
suite_cleanup_hook() { lab_alg_stop; }

# check ARGS...: `ftp-alg check ARGS` in the gateway; its report in $WORK/report, its exit
# status in RC.
RC=
check() {
    LAB_CMD_TIMEOUT=30 lab_gw "$FTPALG_BIN" check "$@" >"$WORK/report" 2>"$WORK/stderr"
    RC=$?
}

# expect NAME RC PATTERN [ARGS...]: check ARGS must exit RC and print a line matching
# PATTERN (grep -E, from the line's start: `STATUS   TOPIC: ...`).
expect() {
    local name=$1 want_rc=$2 pattern=$3
    shift 3
    check "$@"
    local line
    line=$(grep -E -m1 "^$pattern" "$WORK/report")
    if [[ $RC == "$want_rc" && -n $line ]] && ! grep -q panicked "$WORK/stderr"; then
        result ok "$name" "exit $RC: ${line:0:150}"
    else
        result FAIL "$name" "exit $RC (want $want_rc), no line /^$pattern/: $(tr '\n' '|' <"$WORK/report" | cut -c1-600) $(head -c 300 "$WORK/stderr")"
    fi
}

# load SCRIPT-OR-NFT: replace the gateway's firewall with TEXT from stdin, run by sh.
load() {
    lab_fw_flush && LAB_CMD_TIMEOUT=20 lab_gw sh -e
}
rules() { "$FTPALG_BIN" rules "$@"; }

# ------------------------------------------------------------------ cases
case_good() {
    lab_fw_load alg >/dev/null 2>&1 || { result FAIL good "lab_fw_load alg failed"; return; }
    check
    local bad warns
    bad=$(grep -cE '^(missing|conflict) ' "$WORK/report")
    warns=$(grep -E '^warn ' "$WORK/report" | cut -c1-80 | tr '\n' '|')
    if [[ $RC == 0 && $bad == 0 ]] && tail -n 1 "$WORK/report" | grep -q 'the set-up can work'; then
        result ok "good set-up" "exit 0, $(tail -n 1 "$WORK/report")${warns:+; warnings: $warns}"
    else
        result FAIL "good set-up" "exit $RC: $(tr '\n' '|' <"$WORK/report")"
    fi
    # Every line is ok or warn, and each warn says why (text after the topic).
    if grep -vE '^(ok|warn) +[^:]+: .{10,}|^ +fix: |^the set-up ' "$WORK/report" | grep -q .; then
        result FAIL "good set-up: every line ok or an explained warn" "$(grep -vE '^(ok|warn) ' "$WORK/report" | head -3)"
    else
        result ok "good set-up: every line ok or an explained warn" "$(grep -c . "$WORK/report") lines"
    fi
}

case_no_table() {
    lab_fw_load alg >/dev/null 2>&1 && LAB_CMD_TIMEOUT=10 lab_gw nft delete table inet ftpalg
    expect "no table" 1 'missing +table: table inet ftpalg does not exist'
}

case_set_missing() {
    rules --backend nft --queue-via iptables --set6 other6 | load
    expect "a set missing" 1 'missing +sets: nftables set inet ftpalg expect6 does not exist'
}

case_set_without_timeout() {
    # expect4 without `flags timeout` (and its default timeout): elements could never expire.
    rules --backend nft --queue-via iptables |
        awk '/set expect4/ { in4 = 1 } in4 && /flags timeout|timeout 30s/ { next } /}/ { in4 = 0 } { print }' |
        load
    expect "a set without flags timeout" 1 'missing +sets: .*expect4 lacks `flags timeout`'
}

case_no_queue_rule() {
    lab_fw_load alg >/dev/null 2>&1 &&
        LAB_CMD_TIMEOUT=10 lab_gw iptables -F FTPALG_QUEUE &&
        LAB_CMD_TIMEOUT=10 lab_gw ip6tables -F FTPALG_QUEUE
    expect "no queue rule" 1 'missing +queue rule: no rule queues tcp dport 21 over IPv4'
}

case_no_bypass() {
    rules --backend nft --queue-via iptables --no-bypass | load
    expect "queue rule without bypass (a warning)" 0 'warn +queue bypass: off'
}

case_kernel_helper() {
    lab_fw_load alg >/dev/null 2>&1 && rules --backend kernel | LAB_CMD_TIMEOUT=10 lab_gw nft -f -
    expect "kernel helper attached" 1 'conflict +kernel FTP helper: .*ct helper set "ftp-standard"'
}

case_ipset_without_sets() {
    lab_fw_load alg >/dev/null 2>&1
    expect "ipset backend without its sets" 1 'missing +sets: ipset ftpalg-expect4 does not exist' --backend ipset
    lab_fw_load alg-ipset >/dev/null 2>&1
    expect "ipset backend with its sets" 0 'ok +admission rule: a rule admits a SYN matching ftpalg-expect4' --backend ipset
}

case_queue_bound() {
    lab_fw_load alg >/dev/null 2>&1
    if ! lab_alg_start >/dev/null 2>&1; then
        result FAIL "queue bound by ftp-alg" "the daemon did not start"
        return
    fi
    expect "queue bound by ftp-alg (a warning)" 0 'warn +queue 0: already served by ftp-alg'
    lab_alg_stop
    # Another program on the queue: the same binary under another name.
    cp "$FTPALG_BIN" "$WORK/qholder"
    if ! FTPALG_BIN=$WORK/qholder lab_alg_start --no-state >/dev/null 2>&1; then
        result FAIL "queue bound by another program" "qholder did not start"
        return
    fi
    expect "queue bound by another program" 1 'conflict +queue 0: bound by another program, qholder'
    lab_alg_stop
}

case_capped() {
    # The systemd unit keeps only CAP_NET_ADMIN (CapabilityBoundingSet=): the daemon and the
    # check must work with that alone.
    command -v setpriv >/dev/null || { result n/a "only CAP_NET_ADMIN" "setpriv not installed"; return; }
    printf '#!/bin/sh\nexec setpriv --bounding-set=-all,+net_admin --inh-caps=-all "%s" "$@"\n' \
        "$FTPALG_BIN" >"$WORK/capped" && chmod 755 "$WORK/capped"
    lab_fw_load alg >/dev/null 2>&1
    if ! FTPALG_BIN=$WORK/capped lab_alg_start >/dev/null 2>&1; then
        result FAIL "daemon with only CAP_NET_ADMIN" "it did not become ready: $(lab_alg_log | tail -n 2 | tr '\n' ' ')"
        return
    fi
    result ok "daemon with only CAP_NET_ADMIN" "ready"
    FTPALG_BIN=$WORK/capped expect "check with only CAP_NET_ADMIN" 0 'warn +queue 0: already served by ftp-alg'
    lab_alg_stop
}

case_units() {
    # What dist/ftp-alg-rules.service runs (its ExecStart with its default Environment=, the
    # binary's path replaced) loads a ruleset that `check` with dist/ftp-alg.service's default
    # options accepts.
    local dist="$LAB_REPO/dist" opts loader run_opts line
    opts=$(sed -n 's/^Environment="FTP_ALG_RULES_OPTIONS=\(.*\)"$/\1/p' "$dist/ftp-alg-rules.service")
    loader=$(sed -n 's/^Environment="FTP_ALG_RULES_LOADER=\(.*\)"$/\1/p' "$dist/ftp-alg-rules.service")
    # FTP_ALG_OPTIONS is empty by default (the settings are in the configuration file).
    grep -q '^Environment="FTP_ALG_OPTIONS=' "$dist/ftp-alg.service" || run_opts=missing
    run_opts=${run_opts:-$(sed -n 's/^Environment="FTP_ALG_OPTIONS=\(.*\)"$/\1/p' "$dist/ftp-alg.service")}
    line=$(sed -n 's/^ExecStart=//p' "$dist/ftp-alg-rules.service")
    line=${line//\/usr\/local\/bin\/ftp-alg/$FTPALG_BIN}
    if [[ -z $opts || -z $loader || $run_opts == missing || -z $line ]]; then
        result FAIL "the units' ruleset and options" "cannot read the units' Environment=/ExecStart="
        return
    fi
    lab_fw_flush
    if ! LAB_CMD_TIMEOUT=20 lab_gw env FTP_ALG_RULES_OPTIONS="$opts" FTP_ALG_RULES_LOADER="$loader" \
        sh -c "$line" >"$WORK/unit.out" 2>&1; then
        result FAIL "the units' ruleset and options" "ExecStart failed: $(tail -n 3 "$WORK/unit.out" | tr '\n' ' ')"
        return
    fi
    # shellcheck disable=SC2086  # the options are words, as systemd splits $FTP_ALG_OPTIONS
    expect "the units' ruleset and options" 0 'ok +queue rule' $run_opts
}

case_nat() {
    rules --backend nft --queue-via iptables --nat --outside "$LAB_GW_IF_SRV" | load
    expect "NAT form with --nat" 0 'ok +NAT queue placement' --nat
    lab_fw_load alg >/dev/null 2>&1
    expect "plain form with --nat" 1 'missing +NAT queue placement' --nat
}

# ------------------------------------------------------------------ main
part_check() {
    local c
    for c in good no_table set_missing set_without_timeout no_queue_rule no_bypass kernel_helper \
        ipset_without_sets queue_bound capped units nat; do
        "case_$c"
    done
}

t0=$(now)
[[ -x $FTPALG_BIN ]] || { result FAIL build "$FTPALG_BIN missing: cargo build --release"; exit 1; }
lab_up >/dev/null 2>&1 || { result FAIL lab "lab_up failed"; exit 1; }
SUITE_PARTS=check
part check part_check
suite_summary ops/check "$t0"
((N_FAIL == 0))
