#!/usr/bin/env bash
# ops/config: the configuration file live (docs/operations.md, "Configuration file"). Run by
# tests/lab/ops-tests.sh (LAB_PREFIX set there); alone:
#
#   OPS_ONLY=config bash tests/lab/ops-tests.sh
#
# Cases (one `ok|FAIL NAME (details)` line each; exit 1 if any failed), each `ftp-alg run
# --config FILE` in the lab's gateway namespace, read through the daemon's `ready` line:
#   file-settings-reach-the-daemon  the file's policy and lifetime are the daemon's, while the
#                                   lab's --queue and --backend flags replace the file's
#   a-flag-replaces-a-setting       --timeout 50 over the file's timeout = 45
#   the-example-changes-nothing     dist/ftp-alg.toml (all comments): the defaults
#   a-bad-file-stops-the-start      exit 2 and `FILE:3: unknown key "queu" (did you mean
#                                   "queue"?)`, before any queue is bound
# About 5 s.
set -u

# shellcheck source=tests/lab/ops-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../ops-common.sh" config
suite_cleanup_hook() { lab_alg_stop >/dev/null 2>&1; }

# expect_ready PATTERN ARGS...: the daemon started with ARGS (lab_alg_start adds --queue and,
# unless given, --backend nft and --state-dir) says `ready` matching the glob PATTERN.
expect_ready() {
    local pattern=$1 line
    shift
    lab_alg_start "$@" >/dev/null 2>&1
    line=$(lab_alg_log | grep -m1 'ready:')
    lab_alg_stop >/dev/null 2>&1
    DETAIL=${line#*ready: }
    # shellcheck disable=SC2053 # PATTERN is a glob
    [[ $line == *$pattern* ]] || { DETAIL="wanted '$pattern'; ready line: '${line:-none}'"; return 1; }
}

case_file_settings() {
    expect_ready "queue(s) \[$LAB_ALG_QUEUE\] bound, backend no backend*, policy loose, lifetime 45s" \
        --backend none --config "$WORK/ftp-alg.toml"
}
case_flag_replaces() {
    expect_ready "policy loose, lifetime 50s" --backend none --config "$WORK/ftp-alg.toml" --timeout 50
}
case_example() {
    expect_ready "policy strict, lifetime 30s" --backend none --config "$LAB_REPO/dist/ftp-alg.toml"
}
case_bad_file() {
    local out rc
    printf 'policy = "loose"\n\nqueu = "1"\n' >"$WORK/bad.toml"
    out=$(lab_gw "$FTPALG_BIN" run --backend none --config "$WORK/bad.toml" 2>&1)
    rc=$?
    DETAIL="exit $rc: $out"
    ((rc == 2)) && [[ $out == *'bad.toml:3: unknown key "queu" (did you mean "queue"?)'* ]]
}

# ----------------------------------------------------------------- main
t0=$(now)
lab_up >/dev/null 2>&1 || { result FAIL lab "lab_up failed"; exit 1; }
cat >"$WORK/ftp-alg.toml" <<'TOML'
# the lab's flags (--queue, --backend) replace the first two
queue = "9"
backend = "ipset"
policy = "loose"
timeout = 45
control-port = [21, 2121]
TOML
part_config() {
    run_case file-settings-reach-the-daemon case_file_settings
    run_case a-flag-replaces-a-setting case_flag_replaces
    run_case the-example-changes-nothing case_example
    run_case a-bad-file-stops-the-start case_bad_file
}
SUITE_PARTS="config"
part config part_config
suite_summary ops/config "$t0"
((N_FAIL == 0))
