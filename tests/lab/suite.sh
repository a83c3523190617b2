# shellcheck shell=bash
# The bookkeeping every live suite shares (gateway-tests.sh, hostile-tests.sh, the scripts in
# ops/): one `ok|FAIL|n/a NAME (details)` line per case, a watchdog per case, parts and their
# times, the lab torn down on exit, and the readers of what the daemon and the kernel say
# (stats lines, log lines since a mark, the elements of an nft set).
#
# Source it after tests/lab/lab.sh. The sourcing script sets:
#   SUITE_PARTS        the parts to run ("a b c"; `part` skips the others)
#   SUITE_CASE_BUDGET  seconds a case may take before its watchdog fails it (default 40;
#                      `SUITE_CASE_BUDGET=180 run_case ...` for one long case)
#   WORK               a scratch directory (results.txt goes there), made by the script
# and may define suite_cleanup_hook, run first when the suite exits.

WORK=${WORK:-}
WD_PID=
N_OK=0 N_FAIL=0 N_NA=0
PART_TIMES=() # "part seconds"
SUITE_PARTS=${SUITE_PARTS:-}
SUITE_CASE_BUDGET=${SUITE_CASE_BUDGET:-40}
PY=${PY:-$LAB_SYS_PYTHON}
SUITE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

MAIN_PID=$BASHPID
suite_cleanup() {
    local rc=$?
    # Subshells (watchdog, coprocess) may see this trap: only the main shell tears the lab
    # down.
    [[ $BASHPID == "$MAIN_PID" ]] || exit "$rc"
    set +eu
    trap - EXIT INT TERM
    watchdog_stop
    declare -F suite_cleanup_hook >/dev/null && suite_cleanup_hook
    lab_down
    [[ -n $WORK ]] && rm -rf "$WORK"
    exit "$rc"
}
trap suite_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { echo "${EPOCHREALTIME/,/.}"; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# result STATUS NAME DETAILS: the one line per case.
result() {
    local st=$1 name=$2 det=$3
    case "$st" in
    ok) N_OK=$((N_OK + 1)) ;;
    n/a) N_NA=$((N_NA + 1)) ;;
    *) st=FAIL N_FAIL=$((N_FAIL + 1)) ;;
    esac
    printf '%s %s (%s)\n' "$st" "$name" "$det" | tee -a "$WORK/results.txt"
}

# The watchdog: if a case overruns its budget, end every process in the client-side
# namespaces (the clients started by the suite), so the case's current command returns at
# once and the case fails.
watchdog_start() {
    local secs=$1
    rm -f "$WORK/watchdog.fired"
    (
        trap - EXIT
        trap 'kill "${sp:-}" 2>/dev/null; exit 0' TERM
        sleep "$secs" &
        sp=$!
        wait "$sp"
        touch "$WORK/watchdog.fired"
        for ns in "$LAB_NS_CLI" "$LAB_NS_OTH"; do
            # shellcheck disable=SC2046
            kill $(ip netns pids "$ns" 2>/dev/null) 2>/dev/null
        done
    ) &
    WD_PID=$!
}
watchdog_stop() {
    [[ -n $WD_PID ]] || return 0
    kill "$WD_PID" 2>/dev/null
    wait "$WD_PID" 2>/dev/null
    WD_PID=
}

# run_case NAME FUNC ARGS...: FUNC returns 0 (ok), 1 (fail) or 2 (n/a) and sets DETAIL.
# The case's time is appended to the details.
DETAIL=
run_case() {
    local name=$1 fn=$2 t0 rc
    shift 2
    DETAIL=
    t0=$(now)
    watchdog_start "$SUITE_CASE_BUDGET"
    "$fn" "$@"
    rc=$?
    watchdog_stop
    if [[ -e $WORK/watchdog.fired ]]; then
        rc=1 DETAIL="timed out after $SUITE_CASE_BUDGET s; $DETAIL"
    fi
    case "$rc" in
    0) result ok "$name" "$DETAIL, $(elapsed "$t0") s" ;;
    2) result n/a "$name" "$DETAIL" ;;
    *) result FAIL "$name" "$DETAIL, $(elapsed "$t0") s" ;;
    esac
    return "$rc"
}

part_selected() { [[ " $SUITE_PARTS " == *" $1 "* ]]; }

# part NAME FUNC: runs a part (if selected) and records its duration.
part() {
    local name=$1 fn=$2 t0
    part_selected "$name" || return 0
    echo "== $name"
    t0=$(now)
    "$fn"
    PART_TIMES+=("$name $(elapsed "$t0")")
}

# suite_summary TITLE T0: the parts' times and the totals line since T0 (`now`).
suite_summary() {
    echo "== time per part (s): $(printf '%s; ' "${PART_TIMES[@]}")"
    echo "== $1: $N_OK ok, $N_FAIL FAIL, $N_NA n/a in $(elapsed "$2") s"
}

sha_of() { sha256sum <"$1" | cut -d' ' -f1; }
want_sha() { lab_content_sha256 "$1"; }

# daemon_or_fail NAME ARGS...: start the daemon, or report NAME as failed.
daemon_or_fail() {
    local name=$1
    shift
    if lab_alg_start "$@" 2>"$WORK/alg-start.err"; then return 0; fi
    result FAIL "$name" "ftp-alg did not start: $(tail -n 3 "$WORK/alg-start.err" | tr '\n' ' ')"
    return 1
}

# set_elems SET: the elements of the gateway's nft set, one "SRC DST PORT" line each, sorted
# by port; nothing for an empty set. What the KERNEL holds, not what the daemon says.
set_elems() {
    local json
    json=$(LAB_CMD_TIMEOUT=10 lab_gw nft -j list set inet ftpalg "$1" 2>/dev/null) || return 1
    "$PY" "$SUITE_DIR/lab_inspect.py" set-elems <<<"$json"
}
n_elems() { set_elems "$1" | grep -c .; }

# stat_of LINE NAME: a counter of a stats line (0 if absent).
stat_of() {
    local v
    v=$(grep -oE "(^| )$2=[0-9]+" <<<"$1" | head -n 1 | cut -d= -f2)
    echo "${v:-0}"
}
# delta S0 S1 NAME: how much a counter grew between two stats lines.
delta() { echo $(($(stat_of "$2" "$3") - $(stat_of "$1" "$3"))); }

# log_mark: the daemon log's line count now; log_since MARK: the lines after it.
log_mark() { wc -l <"$LAB_ALG_LOG"; }
log_since() { tail -n "+$(($1 + 1))" "$LAB_ALG_LOG"; }
