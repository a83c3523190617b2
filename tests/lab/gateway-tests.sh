#!/usr/bin/env bash
# Gateway integration tests: real FTP servers and clients through a gateway
# namespace whose firewall is ftp-alg (or the kernel helper, or nothing).
# Run by `make test`; needs root (skips itself otherwise).
#
#   bash tests/lab/gateway-tests.sh                  # everything (a few minutes)
#   GT_PARTS="alg pinhole" bash tests/lab/gateway-tests.sh
#   LAB_WRITE_DOCS=1 bash tests/lab/gateway-tests.sh # also rewrite docs/lab-results.md
#
# Parts (GT_PARTS, default all, in this order):
#   alg      matrix {vsftpd,proftpd} x {curl,lftp} x {PASV,EPSV,PORT,EPRT} x
#            {IPv4,IPv6} downloads + uploads through the `alg` firewall with
#            the daemon; each cell checks the sha256, the command the client
#            sent and the daemon's `install ... trigger=` line
#   kernel   the same matrix through the kernel's FTP helper (baseline)
#   drop     the same matrix through the alg ruleset without a daemon: every
#            data connection must fail while the control connection works
#   ipset    the alg-ipset firewall: PASV and PORT over IPv4, EPSV over IPv6
#   pinhole  a used pinhole is closed; another host cannot use an announced
#            port; an unused expectation expires (daemon with --timeout 3)
#   burst    200 passive transfers back to back on one control connection
#   restart  SIGTERM and start in the middle of a session: its first command
#            PASV works (state file), a pending pinhole is adopted; kill -9:
#            the documented mid-stream pickup
#   exact    what the kernel set holds: 8 PORT lines in one segment leave
#            exactly the last 4 elements, none after QUIT; a 227+221 in one
#            segment (scripted server) leaves none
#   flood    20,000 one-segment connections from the client to a silent
#            address cannot evict a logged-in session or its pinhole
#            (--max-flows 1000, the default limits, and no per-source cap)
#   nat      the NAT lab (lab_nat_up): T1 a published server behind DNAT, T2
#            a masqueraded client; {vsftpd,proftpd} x {curl,lftp} x {PASV,
#            EPSV,PORT,EPRT}, two downloads on one control connection each,
#            a 32 MiB download and upload (vsftpd), and (T2) a PORT line split
#            across two segments; (T2, vsftpd) a shrinking rewrite: the client
#            at a second, longer private address (198.51.100.222), two
#            downloads and 32 MiB; variants kernel (nf_nat_ftp) and alg (the
#            NAT ruleset + `ftp-alg run --backend nft $NAT_ALG_FLAGS`,
#            default --nat), and (T2 only) the control alg-forward: the inside
#            queued in forward, which D23 rejects; a growing rewrite must
#            break, a shrinking one pass (NAT_VARIANTS="kernel alg alg-forward")
#
# Output: one line per case, `ok|FAIL|n/a NAME (details)`, then the time of
# each part and a summary.  Exit status 1 if any case failed.  Every client
# command has its own timeout, and a watchdog ends the client processes of
# a case that overruns GT_CASE_BUDGET seconds.  The lab (namespaces
# ${LAB_PREFIX}-*, default prefix ftpalg-gt) is torn down on exit.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

if [[ $(id -u) -ne 0 ]]; then
    echo "gateway tests skipped: they need root (network namespaces, nftables)"
    exit 0
fi

export LAB_PREFIX=${LAB_PREFIX:-ftpalg-gt}
# shellcheck source=tests/lab/lab.sh
source "$HERE/lab.sh"

GT_PARTS=${GT_PARTS:-alg kernel drop ipset pinhole burst restart exact flood nat}
GT_CASE_BUDGET=${GT_CASE_BUDGET:-40}
GT_BURST=${GT_BURST:-200}
PY=$LAB_SYS_PYTHON
U=$LAB_FTP_USER P=$LAB_FTP_PASS
SERVERS=(vsftpd proftpd)
CLIENTS=(curl lftp)

# ------------------------------------------------------------ bookkeeping
# shellcheck source=tests/lab/suite.sh
SUITE_PARTS=$GT_PARTS
SUITE_CASE_BUDGET=$GT_CASE_BUDGET
source "$HERE/suite.sh"
declare -A CELL=()      # "variant server client mode family dir" -> label for the docs table
CELL_LABEL=             # set by a successful cell: "ok (227)", "ok", "blocked"
BURST_RESULT=
KS_ROWS=()              # parts exact and flood: one docs table row per case
suite_cleanup_hook() { sess_kill; }

# --------------------------------------------------------------- clients

# Expected daemon trigger and the client's command for each mode.
trigger_of() {
    case "$1" in PASV) echo 227 ;; EPSV) echo 229 ;; *) echo "$1" ;; esac
}

# The lftp settings for a mode; empty (and status 1) if lftp cannot be
# forced into it.  lftp chooses EPRT by the address family (EPRT only
# over IPv6, PORT over IPv4) and has no setting to change that.
lftp_mode() {
    case "$1/$2" in
    PASV/v4) echo "set ftp:passive-mode on; set ftp:prefer-epsv no" ;;
    EPSV/*) echo "set ftp:passive-mode on; set ftp:prefer-epsv yes" ;;
    PORT/v4 | EPRT/v6) echo "set ftp:passive-mode off" ;;
    *) return 1 ;;
    esac
}

# Client time limits: short, as a blocked data connection must fail fast.
CURL_BASE=(curl -sS -v --connect-timeout 3 -m 6 -u "$U:$P")
LFTP_BASE="set ftp:ssl-allow no; set net:max-retries 1; set net:persist-retries 0; set net:timeout 3;
    set net:reconnect-interval-base 1; set xfer:clobber on; set cmd:fail-exit yes"

# client_run CLIENT MODE FAMILY DIR TRACE OUT: one transfer, client
# protocol trace into TRACE.  Download: pub/file200k.bin into OUT.  Upload:
# file20k.bin to upload/OUT (a name).  Returns the client's status.
client_run() {
    local client=$1 mode=$2 fam=$3 dir=$4 trace=$5 out=$6 host opts=()
    if [[ $fam == v4 ]]; then host=$LAB_SRV_V4; else host="[$LAB_SRV_V6]"; fi
    case "$client" in
    curl)
        case "$mode" in
        PASV) opts=(--disable-epsv) ;;
        EPSV) opts=() ;;
        PORT) opts=(-P - --disable-eprt) ;;
        EPRT) opts=(-P -) ;;
        esac
        if [[ $dir == down ]]; then
            LAB_CMD_TIMEOUT=15 lab_cli "${CURL_BASE[@]}" "${opts[@]}" -o "$out" \
                "ftp://$host/pub/file200k.bin" 2>"$trace"
        else
            LAB_CMD_TIMEOUT=15 lab_cli "${CURL_BASE[@]}" "${opts[@]}" -T "$WORK/file20k.bin" \
                "ftp://$host/upload/$out" 2>"$trace"
        fi
        ;;
    lftp)
        local xfer
        if [[ $dir == down ]]; then
            xfer="get pub/file200k.bin -o $out"
        else
            xfer="put $WORK/file20k.bin -o upload/$out"
        fi
        rm -f "$trace"
        LAB_CMD_TIMEOUT=15 lab_cli env HOME="$WORK/home" lftp -c "$LFTP_BASE; $(lftp_mode "$mode" "$fam");
            debug -o $trace 9; open -u $U,$P ftp://$host; $xfer; bye" 2>>"$trace.err"
        ;;
    esac
}

# trace_cmds CLIENT TRACE: the data-connection commands the client sent, in
# order, one per line (PASV EPSV PORT EPRT).
trace_cmds() {
    local re='(PASV|EPSV|PORT|EPRT)'
    case "$1" in
    curl) grep -aoE "^> $re" "$2" | cut -c3- ;;
    lftp) grep -aoE -- "^---> $re" "$2" | cut -c6- ;;
    esac
}
# trace_logged_in CLIENT TRACE: the server answered 230 (control works).
trace_logged_in() {
    case "$1" in
    curl) grep -aqE '^< 230' "$2" ;;
    lftp) grep -aqE -- '^<--- 230' "$2" ;;
    esac
}

# ---------------------------------------------------------- matrix cells
CELL_SEQ=0

# cell VARIANT SERVER CLIENT MODE FAMILY DIR: one transfer through the
# loaded firewall.  alg/alg-ipset/kernel: must succeed with the right
# checksum and mode (and, with the daemon, the matching install line).
# drop: the client must log in and ask for the mode, and the transfer must
# fail.
cell() {
    local variant=$1 server=$2 client=$3 mode=$4 fam=$5 dir=$6
    local trace out got want cmds mark rc=0
    if [[ $client == lftp ]] && ! lftp_mode "$mode" "$fam" >/dev/null; then
        DETAIL="lftp sends EPRT only over IPv6 (PORT over IPv4); no ftp:* setting forces EPRT on IPv4"
        return 2
    fi
    CELL_SEQ=$((CELL_SEQ + 1))
    trace="$WORK/trace.$CELL_SEQ"
    mark=$(wc -l <"$LAB_ALG_LOG" 2>/dev/null || echo 0)
    rm -f "$WORK/dl.bin" "$LAB_FTP_ROOT/upload/"*
    if [[ $dir == down ]]; then
        out="$WORK/dl.bin"
        want=$(want_sha file200k.bin)
    else
        out="up-$CELL_SEQ.bin"
        want=$(want_sha file20k.bin)
    fi
    client_run "$client" "$mode" "$fam" "$dir" "$trace" "$out" || rc=$?
    if [[ $dir == down ]]; then
        got=$( [[ -f $out ]] && sha_of "$out")
    else
        got=$( [[ -f $LAB_FTP_ROOT/upload/$out ]] && sha_of "$LAB_FTP_ROOT/upload/$out")
    fi
    cmds=$(trace_cmds "$client" "$trace" | tr '\n' ' ')
    cmds=${cmds% }

    if [[ $variant == drop ]]; then
        trace_logged_in "$client" "$trace" || { DETAIL="control connection failed (no 230), client rc=$rc"; return 1; }
        [[ " $cmds " == *" $mode "* ]] || { DETAIL="client never sent $mode (sent: ${cmds:-nothing})"; return 1; }
        if [[ $rc -eq 0 || $got == "$want" ]]; then
            DETAIL="data connection NOT blocked: transfer succeeded (sent $cmds)"
            return 1
        fi
        DETAIL="blocked: logged in, sent $cmds, client rc=$rc"
        CELL_LABEL=blocked
        return 0
    fi

    if [[ $rc -ne 0 || $got != "$want" ]]; then
        DETAIL="client rc=$rc, sha256 ${got:0:12} want ${want:0:12}, sent ${cmds:-nothing}; trace $(tail -n 2 "$trace" | tr '\n' ' ' | cut -c1-160)"
        return 1
    fi
    # The intended mode, and only it (curl falls back from EPSV to PASV
    # and from EPRT to PORT when the first data connection fails).
    if [[ $cmds != "$mode" ]]; then
        DETAIL="sha256 ok but the client sent '$cmds', not just $mode"
        return 1
    fi
    DETAIL="sha256 ok, sent $mode"
    CELL_LABEL=ok
    if [[ $variant == alg* ]]; then
        local trig lines
        trig=$(trigger_of "$mode")
        lines=$(tail -n "+$((mark + 1))" "$LAB_ALG_LOG" | grep -a 'install' || true)
        if ! grep -q "trigger=$trig\b" <<<"$lines"; then
            DETAIL="$DETAIL, but no 'install ... trigger=$trig' in the daemon log (got: $(head -c 200 <<<"$lines"))"
            return 1
        fi
        DETAIL="$DETAIL, install trigger=$trig"
        CELL_LABEL="ok ($trig)"
    fi
    return 0
}

# matrix VARIANT: every server x client x mode x family, plus uploads.
matrix() {
    local variant=$1 server client mode fam
    for server in "${SERVERS[@]}"; do
        lab_start_server "$server" 2>/dev/null || { result FAIL "$variant/$server/start" "server did not start"; continue; }
        for client in "${CLIENTS[@]}"; do
            for mode in PASV EPSV PORT EPRT; do
                for fam in v4 v6; do
                    # PASV and PORT carry an IPv4 address: IPv4 only.
                    [[ $fam == v6 && ($mode == PASV || $mode == PORT) ]] && continue
                    matrix_cell "$variant" "$server" "$client" "$mode" "$fam" down
                done
            done
        done
        # Uploads: one passive over IPv4 (curl), one active over IPv6 (lftp).
        matrix_cell "$variant" "$server" curl EPSV v4 up
        matrix_cell "$variant" "$server" lftp EPRT v6 up
        lab_stop_server
    done
}

matrix_cell() {
    local variant=$1 rc=0
    shift
    CELL_LABEL=
    run_case "$variant/$1/$2/$3/$4/$5" cell "$variant" "$@" || rc=$?
    case "$rc" in 0) CELL["$variant $*"]=$CELL_LABEL ;; 2) CELL["$variant $*"]="n/a ¹" ;; *) CELL["$variant $*"]=FAIL ;; esac
}

# daemon_stop_check NAME: SIGTERM, exit 0 within the limit, a stats line.
daemon_stop_check() {
    local name=$1 stats
    lab_alg_stop
    # The stats line without its log prefix ("[time LEVEL module] queue 0: ").
    stats=$(lab_alg_log | grep -a 'stats' | tail -n 1 | sed -e 's/^\[[^]]*\] *//')
    if [[ $LAB_ALG_STATUS -eq 0 && -n $stats ]]; then
        result ok "$name" "exit 0 on SIGTERM; ${stats:0:200}"
    else
        result FAIL "$name" "exit status $LAB_ALG_STATUS, stats line '${stats:0:200}'"
    fi
}

part_alg() {
    lab_fw_load alg || { result FAIL alg/firewall "lab_fw_load alg failed"; return; }
    daemon_or_fail alg/daemon-start || { lab_fw_flush; return; }
    matrix alg
    daemon_stop_check alg/daemon-stop
    lab_fw_flush
}
part_kernel() {
    lab_fw_load kernel || { result FAIL kernel/firewall "lab_fw_load kernel failed"; return; }
    matrix kernel
    lab_fw_flush
}
part_drop() {
    lab_fw_load drop || { result FAIL drop/firewall "lab_fw_load drop failed"; return; }
    matrix drop
    lab_fw_flush
}
part_ipset() {
    lab_fw_load alg-ipset || { result FAIL alg-ipset/firewall "lab_fw_load alg-ipset failed"; return; }
    daemon_or_fail alg-ipset/daemon-start --backend ipset || { lab_fw_flush; return; }
    lab_start_server vsftpd 2>/dev/null || { result FAIL alg-ipset/vsftpd/start "server did not start"; return; }
    matrix_cell alg-ipset vsftpd curl PASV v4 down
    matrix_cell alg-ipset vsftpd curl PORT v4 down
    matrix_cell alg-ipset vsftpd curl EPSV v6 down
    lab_stop_server
    daemon_stop_check alg-ipset/daemon-stop
    lab_fw_flush
}

# ------------------------------------------------- scripted FTP sessions
# One ftp_probe.py session in the client namespace, driven line by line
# through a coprocess.  Bash unsets SESS and SESS_PID as soon as the
# coprocess ends, so the pid is kept in SESS_JOB, and SESS is only read
# with a default.
SESS_JOB=
sess_open() { # sess_open HOST
    sess_kill
    coproc SESS { LAB_CMD_TIMEOUT=${SESS_LIMIT:-60} lab_cli "$PY" "$HERE/ftp_probe.py" session "$1" "$U" "$P" \
        --timeout "${SESS_TIMEOUT:-10}" 2>"$WORK/session.err"; }
    SESS_JOB=${SESS_PID:-}
    local line=
    [[ -n ${SESS[0]:-} ]] && read -r -t 15 line <&"${SESS[0]}"
    [[ $line == ready ]] || { DETAIL="session did not log in: $line $(tail -n 2 "$WORK/session.err")"; return 1; }
}
REPLY_LINE=
sess_cmd() { # sess_cmd TIMEOUT COMMAND...; the answer in REPLY_LINE
    local t=$1
    shift
    REPLY_LINE=
    [[ -n ${SESS[1]:-} && -n ${SESS[0]:-} ]] || { REPLY_LINE="fail session gone"; return 1; }
    # A session that died (e.g. ended by the watchdog) must not take this
    # shell down with SIGPIPE: ignore it just for the write (EPIPE instead).
    local wrote=0
    trap '' PIPE
    { echo "$*" >&"${SESS[1]}"; } 2>/dev/null && wrote=1
    trap - PIPE
    ((wrote)) || { REPLY_LINE="fail session gone"; return 1; }
    read -r -t "$t" REPLY_LINE <&"${SESS[0]:-}" || { REPLY_LINE="fail no answer to '$*' within $t s"; return 1; }
    [[ $REPLY_LINE != fail* ]]
}
sess_close() {
    [[ -n $SESS_JOB ]] || return 0
    sess_cmd 10 quit || true
    sess_kill
}
sess_kill() {
    [[ -n $SESS_JOB ]] || return 0
    kill "$SESS_JOB" 2>/dev/null
    wait "$SESS_JOB" 2>/dev/null
    SESS_JOB=
}

srv_host() { if [[ $1 == v4 ]]; then echo "$LAB_SRV_V4"; else echo "$LAB_SRV_V6"; fi; }

# A used pinhole is gone: after a completed passive transfer, a new
# connection to the same port must time out at the gateway (a RST would
# mean the SYN reached the server, i.e. crossed the firewall).
case_reuse() {
    local fam=$1 port
    sess_open "$(srv_host "$fam")" || return 1
    sess_cmd 10 pasv || { DETAIL="pasv: $REPLY_LINE"; return 1; }
    port=${REPLY_LINE#port }
    sess_cmd 20 retr pub/file20k.bin || { DETAIL="transfer on port $port: $REPLY_LINE"; return 1; }
    [[ $REPLY_LINE == *" $(want_sha file20k.bin)" ]] || { DETAIL="checksum: $REPLY_LINE"; return 1; }
    sess_cmd 10 probe "$port" 3
    local probe=$REPLY_LINE
    sess_close
    DETAIL="transfer ok on port $port; reconnect: $probe"
    [[ $probe == timeout ]]
}

# Port theft: another host connects to an announced passive port while the
# server listens on it; the SYN must be dropped (timeout), and then the real
# client's data connection must still succeed.
case_third_host() {
    local fam=$1 port host probe
    host=$(srv_host "$fam")
    sess_open "$host" || return 1
    sess_cmd 10 pasv || { DETAIL="pasv: $REPLY_LINE"; return 1; }
    port=${REPLY_LINE#port }
    probe=$(LAB_CMD_TIMEOUT=10 lab_oth "$PY" "$HERE/ftp_probe.py" connect "$host" "$port" --timeout 3)
    sess_cmd 20 retr pub/file20k.bin
    local xfer=$REPLY_LINE
    sess_close
    DETAIL="port $port: other host: ${probe:-nothing}; client: ${xfer:0:40}"
    [[ $probe == timeout && $xfer == "ok 20480 $(want_sha file20k.bin)" ]]
}

# expect_elems SET: number of elements in the gateway's nft set.
expect_elems() {
    LAB_CMD_TIMEOUT=10 lab_gw nft -j list set inet ftpalg "$1" |
        "$PY" -c 'import json,sys
d = json.load(sys.stdin)
print(sum(len(o["set"].get("elem", [])) for o in d["nftables"] if "set" in o))'
}

# Expiry: with --timeout 3 an unused PASV expectation leaves the set, and a
# late connection times out (the server still listens on the port).
case_expiry() {
    local port before after
    sess_open "$LAB_SRV_V4" || return 1
    sess_cmd 10 pasv || { DETAIL="pasv: $REPLY_LINE"; return 1; }
    port=${REPLY_LINE#port }
    before=$(expect_elems expect4)
    sleep 4.5
    after=$(expect_elems expect4)
    sess_cmd 10 probe "$port" 3
    local probe=$REPLY_LINE
    sess_close
    DETAIL="port $port: expect4 had $before element(s), after 4.5 s $after; late connect: $probe"
    [[ $before -ge 1 && $after -eq 0 && $probe == timeout ]]
}

part_pinhole() {
    lab_fw_load alg || { result FAIL pinhole/firewall "lab_fw_load alg failed"; return; }
    lab_start_server vsftpd 2>/dev/null || { result FAIL pinhole/vsftpd "server did not start"; return; }
    if daemon_or_fail pinhole/daemon-start; then
        run_case pinhole/reuse-after-transfer/v4 case_reuse v4
        run_case pinhole/reuse-after-transfer/v6 case_reuse v6
        run_case pinhole/third-host/v4 case_third_host v4
        run_case pinhole/third-host/v6 case_third_host v6
        lab_alg_stop
    fi
    if daemon_or_fail pinhole/daemon-start-timeout-3 --timeout 3; then
        run_case pinhole/expiry-3s/v4 case_expiry
        lab_alg_stop
    fi
    lab_stop_server
    lab_fw_flush
}

# GT_BURST passive transfers on one control connection, zero failures.
# case_burst alg: with the daemon (one install line per transfer);
# case_burst kernel: the same through the kernel helper, for comparison.
case_burst() {
    local variant=$1 mark=0 installs=
    [[ $variant == alg ]] && mark=$(wc -l <"$LAB_ALG_LOG")
    SESS_LIMIT=170 sess_open "$LAB_SRV_V4" || return 1
    sess_cmd 150 burst "$GT_BURST" pub/README.txt
    local r=$REPLY_LINE
    sess_close
    DETAIL=$r
    [[ $r == "ok $GT_BURST "* ]] || return 1
    DETAIL="$GT_BURST transfers in ${r##* } s"
    if [[ $variant == alg ]]; then
        BURST_RESULT="$DETAIL"
        installs=$(tail -n "+$((mark + 1))" "$LAB_ALG_LOG" | grep -ac 'install.*trigger=227')
        DETAIL="$DETAIL, $installs install lines"
        ((installs >= GT_BURST)) || return 1
    else
        BURST_RESULT="$BURST_RESULT; through the kernel helper: ${r##* } s"
    fi
}

part_burst() {
    lab_fw_load alg || { result FAIL burst/firewall "lab_fw_load alg failed"; return; }
    lab_start_server vsftpd 2>/dev/null || { result FAIL burst/vsftpd "server did not start"; return; }
    if daemon_or_fail burst/daemon-start; then
        SUITE_CASE_BUDGET=180 run_case "burst/$GT_BURST-pasv-one-session" case_burst alg
        lab_alg_stop
    fi
    if lab_fw_load kernel; then
        SUITE_CASE_BUDGET=180 run_case "burst/$GT_BURST-pasv-one-session-kernel-helper" case_burst kernel
    else
        result FAIL burst/kernel-firewall "lab_fw_load kernel failed"
    fi
    lab_stop_server
    lab_fw_flush
}

# Restarts.  A clean stop (SIGTERM) leaves the engine in the state file and
# the next start carries on: an idle session's FIRST command after the
# restart is PASV, and its 227 opens the pinhole (before the state file,
# mid-stream pickup did not read that first line and the transfer failed).
# The pinholes the old instance opened are adopted: the new one revokes them
# when their transfer completes.  After a crash (kill -9) there is no state:
# the documented pickup behaviour applies (docs/deploy.md): the first command
# is not read, so that first PASV gets no pinhole; the next one does.

# restart_clean: SIGTERM the daemon (status 0, "state saved") and start it
# again ("restored"); sets RESTORED to the restored line.  MARK is the log
# line count before the new instance.
RESTORED= MARK=
restart_clean() {
    local mark
    mark=$(wc -l <"$LAB_ALG_LOG")
    lab_alg_stop
    [[ $LAB_ALG_STATUS -eq 0 ]] || { DETAIL="daemon exit status $LAB_ALG_STATUS on SIGTERM"; return 1; }
    log_since "$mark" | grep -aq 'state saved to' || { DETAIL="no 'state saved' line"; return 1; }
    lab_alg_start 2>"$WORK/alg-start.err" || { DETAIL="daemon did not start again"; return 1; }
    MARK=$LAB_ALG_MARK
    RESTORED=$(log_since "$MARK" | grep -a 'restored' | head -n 1 | sed -e 's/^.*queue 0: //')
    [[ -n $RESTORED ]] || { DETAIL="the new instance did not restore: $(log_since "$MARK" | grep -a 'queue 0:' | head -n 2)"; return 1; }
}

case_restart_first_command_pasv() {
    local before after port inset
    sess_open "$LAB_SRV_V4" || return 1
    if ! sess_cmd 10 pasv || ! sess_cmd 20 retr pub/file20k.bin; then
        DETAIL="first transfer: $REPLY_LINE"
        return 1
    fi
    before=$REPLY_LINE
    restart_clean || return 1
    sess_cmd 10 pasv || { DETAIL="PASV after restart: $REPLY_LINE"; return 1; }
    port=${REPLY_LINE#port }
    inset=$(set_elems expect4 | grep -c " $port\$")
    sess_cmd 20 retr pub/file20k.bin
    after=$REPLY_LINE
    sess_close
    local inst
    inst=$(log_since "$MARK" | grep -ac "install .*:$port .*trigger=227")
    DETAIL="before: ${before:0:8}; $RESTORED; first command PASV: port $port in expect4: $inset, install lines: $inst; transfer: ${after:0:40}"
    [[ $after == "ok 20480 $(want_sha file20k.bin)" && $inset -eq 1 && $inst -eq 1 ]]
}

case_restart_pending_pinhole() {
    local port xfer revoked left
    sess_open "$LAB_SRV_V4" || return 1
    sess_cmd 10 pasv || { DETAIL="pasv: $REPLY_LINE"; return 1; }
    port=${REPLY_LINE#port }
    restart_clean || return 1
    [[ $RESTORED == *"1 expectation(s)"* ]] || { DETAIL="not adopted: $RESTORED"; return 1; }
    sess_cmd 20 retr pub/file20k.bin
    xfer=$REPLY_LINE
    sess_cmd 10 noop
    revoked=$(log_since "$MARK" | grep -ac "revoke .*:$port reason=transfer-done")
    sess_close
    left=$(wait_set_empty expect4 2) || true
    DETAIL="pinhole :$port opened before the restart; $RESTORED; transfer: ${xfer:0:40}; revoked by the new instance: $revoked; set empty $left"
    [[ $xfer == "ok 20480 $(want_sha file20k.bin)" && $revoked -eq 1 && $left != never* ]]
}

case_restart_after_kill() {
    local first second inst state
    SESS_TIMEOUT=3 sess_open "$LAB_SRV_V4" || return 1
    sess_cmd 10 pasv && sess_cmd 20 retr pub/file20k.bin || { DETAIL="first transfer: $REPLY_LINE"; return 1; }
    lab_alg_kill || { DETAIL="could not kill the daemon"; return 1; }
    state=$(ls "$LAB_ALG_STATE" 2>/dev/null | wc -l)
    lab_alg_start 2>"$WORK/alg-start.err" || { DETAIL="daemon did not start again"; return 1; }
    local mark=$LAB_ALG_MARK
    log_since "$mark" | grep -aq 'no state in' || { DETAIL="expected no state after kill -9"; return 1; }
    sess_cmd 10 pasv || { DETAIL="pasv: $REPLY_LINE"; return 1; }
    sess_cmd 20 retr pub/file20k.bin
    first=$REPLY_LINE
    sess_cmd 10 pasv || { DETAIL="second pasv: $REPLY_LINE"; return 1; }
    sess_cmd 20 retr pub/file20k.bin
    second=$REPLY_LINE
    sess_close
    inst=$(log_since "$mark" | grep -ac 'install .*trigger=227')
    DETAIL="state files after kill -9: $state; first PASV (not read, pickup): ${first:0:30}; second: ${second:0:30}; installs: $inst"
    [[ $state -eq 0 && $first == fail* && $second == "ok 20480 $(want_sha file20k.bin)" && $inst -eq 1 ]]
}

part_restart() {
    lab_fw_load alg || { result FAIL restart/firewall "lab_fw_load alg failed"; return; }
    lab_start_server vsftpd 2>/dev/null || { result FAIL restart/vsftpd "server did not start"; return; }
    if daemon_or_fail restart/daemon-start; then
        run_case restart/sigterm-first-command-pasv case_restart_first_command_pasv
        run_case restart/sigterm-pending-pinhole-adopted case_restart_pending_pinhole
        run_case restart/kill-9-pickup case_restart_after_kill
        lab_alg_stop
    fi
    lab_stop_server
    lab_fw_flush
}

# ------------------------------------------ exact: the kernel set, exactly
# These cases read what the KERNEL holds (nft -j list set), not what the
# daemon says it did.

# wait_set_empty SET SECS: poll the set until it is empty, at most SECS
# seconds; prints "at the first look (S s)" or "after N looks (S s)", S the
# seconds until the look that found it empty ended (one look, a `nft -j
# list set`, takes a few hundredths of a second), or "never ..." and
# status 1.
wait_set_empty() {
    local set=$1 secs=$2 t0 e looks=0 t
    t0=$(now)
    while :; do
        e=$(set_elems "$set") || { echo "unreadable"; return 1; }
        looks=$((looks + 1))
        if [[ -z $e ]]; then
            t=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
            if ((looks == 1)); then echo "at the first look ($t s)"; else echo "after $looks looks ($t s)"; fi
            return 0
        fi
        if awk -v a="$t0" -v b="$(now)" -v s="$secs" 'BEGIN { exit !(b - a >= s) }'; then
            echo "never (still $(wc -l <<<"$e") element(s) after $secs s)"
            return 1
        fi
        sleep 0.02
    done
}

# capture_segments FILE: the control segments of a capture on veth-cli
# (lab_inspect.py segments: "c2s|s2c LEN NLINES LINE|LINE...").
capture_segments() { "$PY" "$HERE/lab_inspect.py" segments "$1" "$LAB_FTP_PORT"; }

# Eight PORT lines in one segment (vsftpd): the set must hold exactly the
# last 4 (--max-expectations 4), and after QUIT nothing, at once.  The net
# effect of the one segment is 4 installs (the first 4 are superseded in
# the same packet), so the kernel never held 8.
case_eight_ports() {
    local cap="$WORK/exact-ports.pcap" ports=() p elems n want got t_empty s0 s1 mark segs line
    for p in $(seq 40001 40008); do ports+=("$p"); done
    mark=$(wc -l <"$LAB_ALG_LOG")
    s0=$(lab_alg_stats) || { DETAIL="no stats line before"; return 1; }
    lab_capture_start "$cap" || { DETAIL="capture did not start"; return 1; }
    if ! sess_open "$LAB_SRV_V4"; then lab_capture_stop; return 1; fi
    if ! sess_cmd 10 ports "${ports[@]}"; then
        DETAIL="8 pipelined PORT: $REPLY_LINE"
        sess_kill; lab_capture_stop
        return 1
    fi
    local replies=$REPLY_LINE
    elems=$(set_elems expect4)
    local sm
    sm=$(lab_alg_stats) || { DETAIL="no stats line after the PORT lines"; sess_kill; lab_capture_stop; return 1; }
    sess_cmd 10 quit
    local quit=$REPLY_LINE
    t_empty=$(wait_set_empty expect4 0.5)
    local empty_rc=$?
    sess_kill
    lab_capture_stop 2>/dev/null
    s1=$(lab_alg_stats) || { DETAIL="no stats line after"; return 1; }
    segs=$(capture_segments "$cap")
    line=$(grep -a '^c2s .*PORT ' <<<"$segs")
    n=$(grep -c . <<<"$elems")
    got=$(awk '{ print $3 }' <<<"$elems" | tr '\n' ' ')
    got=${got% }
    want="${ports[*]:4:4}"
    local inst rem inst_m rem_m exps revs installs revokes
    inst_m=$(($(stat_of "$sm" installed) - $(stat_of "$s0" installed)))
    rem_m=$(($(stat_of "$sm" removed) - $(stat_of "$s0" removed)))
    inst=$(($(stat_of "$s1" installed) - $(stat_of "$s0" installed)))
    rem=$(($(stat_of "$s1" removed) - $(stat_of "$s0" removed)))
    exps=$(($(stat_of "$s1" engine.expectations) - $(stat_of "$s0" engine.expectations)))
    revs=$(($(stat_of "$s1" engine.revoked) - $(stat_of "$s0" engine.revoked)))
    installs=$(log_since "$mark" | grep -ac ' install tcp .*trigger=PORT')
    revokes=$(log_since "$mark" | grep -ac ' revoke tcp .*trigger=PORT')
    DETAIL="PORT lines in one client segment: $(grep -c . <<<"$line") segment(s), $(awk '{ print $3 }' <<<"$line" | head -n 1) line(s), $(awk '{ print $2 }' <<<"$line" | head -n 1) bytes; replies $replies;"
    DETAIL="$DETAIL expect4 while open: $n element(s), ports ${got:-none} (want $want);"
    DETAIL="$DETAIL after QUIT ($quit): empty ${t_empty};"
    DETAIL="$DETAIL daemon's kernel writes (installed/removed): $inst_m/$rem_m for the PORT segment, $inst/$rem in all;"
    DETAIL="$DETAIL engine expectations=$exps revoked=$revs; log: $installs install, $revokes revoke lines"
    KS_ROWS+=("| exact/eight-port-one-segment (vsftpd) | 8 PORT lines, ports 40001–40008, in one $(awk '{ print $2 }' <<<"$line" | head -n 1)-byte client segment | while open: $n elements, ports ${got// /, }; after the 221: empty ${t_empty} | installed=$inst_m removed=$rem_m for the PORT segment, $inst/$rem in all; engine.expectations=$exps engine.revoked=$revs |")
    [[ $(grep -c . <<<"$line") -eq 1 && $(awk '{ print $3 }' <<<"$line") -eq 8 ]] || return 1
    [[ $replies == "ok 200 200 200 200 200 200 200 200" ]] || return 1
    [[ $n -eq 4 && $got == "$want" ]] || return 1
    # Every element is the active-mode key server -> client:port.
    [[ $(grep -c "^$LAB_SRV_V4 $LAB_CLI_V4 " <<<"$elems") -eq 4 ]] || { DETAIL="$DETAIL; wrong key in $elems"; return 1; }
    [[ $quit == ok && $empty_rc -eq 0 ]] || return 1
    # The kernel was written the net effect only: 4 installs, not 8.
    [[ $inst_m -eq 4 && $inst -eq 4 ]]
}

# A pipelined PASV+QUIT answered by 227+221 in ONE segment (the scripted
# server): the 227's element must not stay.  A lone PASV first shows that
# this server's 227 does get a pinhole.
case_pasv_quit() {
    local cap="$WORK/exact-pasv-quit.pcap" p1 p2 elems1 t_empty mark segs s2c c2s logged s0 s1
    mark=$(wc -l <"$LAB_ALG_LOG")
    s0=$(lab_alg_stats) || { DETAIL="no stats line before"; return 1; }
    lab_capture_start "$cap" || { DETAIL="capture did not start"; return 1; }
    if ! sess_open "$LAB_SRV_V4"; then lab_capture_stop; return 1; fi
    if ! sess_cmd 10 pasv; then
        DETAIL="lone PASV: $REPLY_LINE"
        sess_kill; lab_capture_stop
        return 1
    fi
    p1=${REPLY_LINE#port }
    elems1=$(set_elems expect4)
    sess_cmd 10 pipe PASV QUIT
    local piped=$REPLY_LINE
    t_empty=$(wait_set_empty expect4 0.5)
    local empty_rc=$?
    sess_kill
    lab_capture_stop 2>/dev/null
    p2=${piped##* port }
    s1=$(lab_alg_stats) || { DETAIL="no stats line after"; return 1; }
    segs=$(capture_segments "$cap")
    s2c=$(grep -aE '^s2c .*[ |]221 ' <<<"$segs" | head -n 1)
    c2s=$(grep -a '^c2s .*QUIT' <<<"$segs" | head -n 1)
    local ins rev
    ins=$(log_since "$mark" | grep -ac " install tcp $LAB_CLI_V4 -> $LAB_SRV_V4:$p2 ")
    rev=$(log_since "$mark" | grep -ac " revoke tcp $LAB_CLI_V4 -> $LAB_SRV_V4:$p2 .*reason=reset")
    if ((ins == 1 && rev == 1)); then
        logged="install and revoke (reset) of :$p2 both logged"
    elif ((ins == 0 && rev == 0)); then
        logged="neither install nor revoke of :$p2 logged"
    else
        logged="$ins install, $rev revoke line(s) for :$p2 (inconsistent)"
    fi
    DETAIL="lone PASV: port $p1, expect4 then: $(paste -sd';' <<<"$elems1");"
    DETAIL="$DETAIL pipelined PASV+QUIT: $piped; client segment: ${c2s:-none}; server segment: ${s2c:-none};"
    local inst rem
    inst=$(($(stat_of "$s1" installed) - $(stat_of "$s0" installed)))
    rem=$(($(stat_of "$s1" removed) - $(stat_of "$s0" removed)))
    DETAIL="$DETAIL expect4 empty $t_empty; $logged; daemon's kernel writes: installed=$inst removed=$rem"
    KS_ROWS+=("| exact/pasv-quit-one-segment (scripted server) | a lone PASV (227 :$p1), then PASV+QUIT in one client segment, answered by 227 (:$p2) + 221 in one $(awk '{ print $2 }' <<<"$s2c")-byte server segment | after the lone 227: 1 element (:$p1); after the 227+221 segment: empty ${t_empty} | installed=$inst removed=$rem (the 227 of the coalesced segment was never written); log: $logged |")
    [[ $elems1 == "$LAB_CLI_V4 $LAB_SRV_V4 $p1" ]] || return 1
    [[ $piped == "ok 227 221 port "* ]] || return 1
    [[ $c2s == "c2s "*" 2 PASV|QUIT" ]] || return 1
    [[ $s2c == "s2c "*" 2 227 "*"|221 "* ]] || return 1
    [[ $empty_rc -eq 0 ]] || return 1
    # Only the lone PASV's element was ever written: the coalesced 227's
    # install and revocation cancel out within its packet.
    ((ins == rev && ins <= 1 && inst == 1))
}

part_exact() {
    lab_fw_load alg || { result FAIL exact/firewall "lab_fw_load alg failed"; return; }
    if daemon_or_fail exact/daemon-start; then
        if lab_start_server vsftpd 2>/dev/null; then
            run_case exact/eight-port-one-segment/vsftpd case_eight_ports
        else
            result FAIL exact/vsftpd "server did not start"
        fi
        if lab_start_server scripted 2>/dev/null; then
            run_case exact/pasv-quit-one-segment/scripted case_pasv_quit
        else
            result FAIL exact/scripted "server did not start"
        fi
        daemon_stop_check exact/daemon-stop
    fi
    lab_stop_server
    lab_fw_flush
}

# ------------------------------------------------ flood: unproven flows
# 20,000 one-segment "connections" (ACK|PSH, "NOOP\r\n", no handshake) from
# the client's own address to FLOOD_DST:21, where nothing answers: the gateway
# has a permanent neighbour entry for it on the server link, so the segments
# leave veth-srv and the server's kernel drops them (another MAC).
FLOOD_DST=203.0.113.99
FLOOD_MAC=02:00:cb:00:71:99
GT_FLOOD=${GT_FLOOD:-20000}
# Segments per second.  Unpaced, the sender (~250,000/s) outruns the daemon
# and the queue (--queue-maxlen 4096) overflows: the kernel then drops
# segments the daemon never sees.  At this rate none is lost.
GT_FLOOD_RATE=${GT_FLOOD_RATE:-20000}
FLOOD_NAME=             # the current case and its daemon options, for the docs

# nfq_counters: "queue_total queue_dropped user_dropped id_sequence" of queue
# LAB_ALG_QUEUE in the gateway (/proc/net/netfilter/nfnetlink_queue).
nfq_counters() {
    LAB_CMD_TIMEOUT=5 lab_gw cat /proc/net/netfilter/nfnetlink_queue |
        awk -v q="$LAB_ALG_QUEUE" '$1 == q { print $3, $6, $7, $8 }'
}
# srv_tx: packets sent by the gateway on its server-side link.
srv_tx() { LAB_CMD_TIMEOUT=5 lab_gw cat "/sys/class/net/$LAB_GW_IF_SRV/statistics/tx_packets"; }
ct_count() { LAB_CMD_TIMEOUT=5 lab_gw cat /proc/sys/net/netfilter/nf_conntrack_count; }
_srv_tx_reached() { (($(srv_tx) >= $1)); }

# case_flood MODE FIRST_SPORT: a logged-in vsftpd session holds a PASV
# pinhole; GT_FLOOD segments (source ports FIRST_SPORT...) cross the
# gateway; the pinhole must still be in expect4, the transfer over it must
# succeed, and so must a new session.  MODE=cap: the per-source cap must
# have absorbed the flood (flows_source_capped); MODE=evict (no cap, a small
# table): the table must have evicted only unproven flows.
case_flood() {
    local mode=$1 sport=$2 port key elems0 elems1 nfq0 nfq1 tx0 tx1 ct0 ct1 sent t0 t_fwd st
    sess_open "$LAB_SRV_V4" || return 1
    sess_cmd 10 pasv || { DETAIL="pasv: $REPLY_LINE"; sess_kill; return 1; }
    port=${REPLY_LINE#port }
    key="$LAB_CLI_V4 $LAB_SRV_V4 $port"
    elems0=$(set_elems expect4)
    if [[ $elems0 != "$key" ]]; then
        DETAIL="before the flood expect4 held '$(paste -sd';' <<<"$elems0")', want '$key'"
        sess_kill
        return 1
    fi
    nfq0=$(nfq_counters) tx0=$(srv_tx) ct0=$(ct_count)
    t0=$(now)
    sent=$(LAB_CMD_TIMEOUT=30 lab_cli "$PY" "$HERE/tcp_flood.py" "$LAB_CLI_V4" "$FLOOD_DST" \
        --dport "$LAB_FTP_PORT" --count "$GT_FLOOD" --first-sport "$sport" --rate "$GT_FLOOD_RATE" 2>&1)
    # Every segment must come out on the server link (the daemon accepted
    # it); wait for the last verdict, at most 5 s.
    _lab_wait_for 5 _srv_tx_reached "$((tx0 + GT_FLOOD))"
    t_fwd=$(elapsed "$t0")
    nfq1=$(nfq_counters) tx1=$(srv_tx) ct1=$(ct_count)
    elems1=$(set_elems expect4)
    sess_cmd 20 retr pub/file20k.bin
    local xfer=$REPLY_LINE
    local elems2 fresh
    elems2=$(set_elems expect4)
    sess_close
    # Nothing else broke: a new session from the same client transfers.
    rm -f "$WORK/flood-dl.bin"
    LAB_CMD_TIMEOUT=15 lab_cli "${CURL_BASE[@]}" --disable-epsv -o "$WORK/flood-dl.bin" \
        "ftp://$LAB_SRV_V4/pub/file20k.bin" 2>/dev/null
    fresh=$( [[ -f $WORK/flood-dl.bin ]] && sha_of "$WORK/flood-dl.bin")
    if [[ $fresh == "$(want_sha file20k.bin)" ]]; then fresh="sha256 ok"; else fresh="FAILED (${fresh:0:12})"; fi
    st=$(lab_alg_stats)
    local qd ud ids fwd capped evicted evp picked proven
    read -r _ qd ud ids <<<"$nfq1"
    ids=$((ids - $(awk '{ print $4 }' <<<"$nfq0")))
    qd=$((qd - $(awk '{ print $2 }' <<<"$nfq0"))) ud=$((ud - $(awk '{ print $3 }' <<<"$nfq0")))
    fwd=$((tx1 - tx0))
    capped=$(stat_of "$st" engine.flows_source_capped)
    evicted=$(stat_of "$st" engine.flows_evicted)
    evp=$(stat_of "$st" engine.flows_evicted_proven)
    picked=$(stat_of "$st" engine.picked_up)
    proven=$(stat_of "$st" engine.flows_proven)
    DETAIL="pinhole :$port in expect4 before; flood: ${sent:-no output}; queued $ids, queue drops $qd+$ud,"
    DETAIL="$DETAIL veth-srv sent $fwd packets within $t_fwd s, conntrack +$((ct1 - ct0));"
    DETAIL="$DETAIL expect4 after: $(paste -sd';' <<<"$elems1"); retr: ${xfer:0:40}; expect4 after retr: $(grep -c . <<<"$elems2") element(s); new curl session: $fresh;"
    DETAIL="$DETAIL engine.picked_up=$picked flows_source_capped=$capped flows_evicted=$evicted flows_evicted_proven=$evp flows_proven=$proven flows=$(stat_of "$st" flows)"
    local sendt=${sent#sent "$GT_FLOOD" in }
    sendt=${sendt%%,*}
    KS_ROWS+=("| $FLOOD_NAME | $GT_FLOOD one-segment connections sent in $sendt; the gateway's server link sent $fwd packets within $t_fwd s of the start; kernel queue drops $((qd + ud)); conntrack +$((ct1 - ct0)) | the session's pinhole :$port before and after the flood: $( [[ $elems1 == "$key" ]] && echo present || echo GONE); RETR over it: $( [[ $xfer == "ok 20480 "* ]] && echo sha256 ok || echo "${xfer:0:30}") | engine.picked_up=$picked flows_source_capped=$capped flows_evicted=$evicted flows_evicted_proven=$evp flows_proven=$proven flows=$(stat_of "$st" flows) |")
    [[ $sent == "sent $GT_FLOOD "* ]] || return 1
    ((fwd >= GT_FLOOD && qd + ud == 0 && picked >= GT_FLOOD)) || return 1
    [[ $elems1 == "$key" ]] || return 1
    [[ $xfer == "ok 20480 $(want_sha file20k.bin)" && -z $elems2 && $fresh == "sha256 ok" ]] || return 1
    ((evp == 0 && proven >= 1)) || return 1
    # At least 95% of the flood (19,000 of 20,000) was absorbed by the cap
    # (expected: all but the source's 64), or by evicting unproven flows
    # (expected: all but the 999 that fit beside the session).
    case "$mode" in
    cap) ((capped >= GT_FLOOD * 95 / 100 && evicted == 0)) ;;
    evict) ((evicted >= GT_FLOOD * 95 / 100 && capped == 0)) ;;
    esac
}

# flood_case NAME MODE FIRST_SPORT DAEMON_ARGS...: one daemon per case; the
# flood's conntrack entries are deleted afterwards.
flood_case() {
    local name=$1 mode=$2 sport=$3
    shift 3
    daemon_or_fail "$name/daemon-start" "$@" || return
    FLOOD_NAME="$name (${*:-default limits})"
    run_case "$name" case_flood "$mode" "$sport"
    lab_alg_stop
    [[ $LAB_ALG_STATUS -eq 0 ]] || result FAIL "$name/daemon-stop" "exit status $LAB_ALG_STATUS"
    LAB_CMD_TIMEOUT=30 lab_gw conntrack -D -d "$FLOOD_DST" >/dev/null 2>&1 || true
}

part_flood() {
    lab_fw_load alg || { result FAIL flood/firewall "lab_fw_load alg failed"; return; }
    LAB_CMD_TIMEOUT=5 lab_gw ip neigh replace "$FLOOD_DST" lladdr "$FLOOD_MAC" dev "$LAB_GW_IF_SRV" nud permanent ||
        { result FAIL flood/neighbour "ip neigh replace $FLOOD_DST failed"; return; }
    if lab_start_server vsftpd 2>/dev/null; then
        flood_case flood/max-flows-1000 cap 20000 --max-flows 1000
        flood_case flood/default-limits cap 40000
        flood_case flood/no-source-cap-max-flows-1000 evict 20000 --max-flows 1000 --max-unproven-per-source 0
        lab_stop_server
    else
        result FAIL flood/vsftpd "server did not start"
    fi
    LAB_CMD_TIMEOUT=5 lab_gw ip neigh del "$FLOOD_DST" dev "$LAB_GW_IF_SRV" 2>/dev/null || true
    lab_fw_flush
}

# ------------------------------------------------------------------- nat
# The NAT lab (lab.sh, lab_nat_up): T1 a published server (vsftpd/proftpd at
# a private address behind the operator's DNAT, the client outside dials the
# gateway's public address), T2 a masqueraded client (private client, the
# server outside).  IPv4 only.  Variants (NAT_VARIANTS, default "kernel alg"):
#   kernel  the kernel helper ruleset + the operator's NAT table: nf_nat_ftp
#           rewrites (the baseline)
#   alg     the alg ruleset's NAT form (rules --nat --outside IFACE) + the
#           operator's NAT table + `ftp-alg run --backend nft $NAT_ALG_FLAGS`
#           (default --nat; a daemon that refuses the flags fails every cell)
#   alg-forward  (T2 only) a control, not a deployment: the alg-forward-nat
#           ruleset (alg-nat with the inside's control packets queued in
#           FORWARD, after conntrack, as docs/decisions.md D23 rejects) and the
#           same daemon; two cells, each with its prediction written in it
# Every cell runs with nf_conntrack_tcp_be_liberal=0 and the ruleset's
# `ct state invalid drop` (checked by the ruleset case), and records how many
# packets reached that rule (lab_watch's counter) and conntrack's own invalid
# counter; a packet dropped as invalid fails the cell.
NAT_VARIANTS=${NAT_VARIANTS:-kernel alg alg-forward}
NAT_ALG_FLAGS=${NAT_ALG_FLAGS---nat}  # set but empty: no flags
GT_NAT_BIG_MB=${GT_NAT_BIG_MB:-32}
NAT_BIG=big.bin
NAT_BIG_SHA=
NAT_DAEMON_ERR=         # why the alg daemon of the current topology did not start
declare -A NAT_CELL=()  # "topology variant server client mode what" -> docs label
declare -A NAT_INVALID=()  # variant -> "fwd_invalid ct_invalid" summed over its cells
NAT_SRC=                # set: the client binds to this address (curl --interface, lftp net:socket-bind-ipv4)
NAT_CURL_MAX=10         # curl -m of nat_client
NAT_CTRL_ROWS=()        # the control cells: one docs table row each

# nat_counter COUNTERS NAME: one value of a lab_nat_counters line.
nat_counter() { stat_of "$1" "$2"; }

# nat_count_invalid VARIANT BEFORE AFTER: the forward and conntrack invalid
# counts between two lab_nat_counters lines into NAT_INV ("FWD CT"), added to
# the variant's sums (not in a subshell: it keeps them).
NAT_INV=
nat_count_invalid() {
    local fwd ct sum
    fwd=$(($(nat_counter "$3" fwd_invalid) - $(nat_counter "$2" fwd_invalid)))
    ct=$(($(nat_counter "$3" ct_invalid) - $(nat_counter "$2" ct_invalid)))
    sum=${NAT_INVALID[$1]:-0 0}
    NAT_INVALID[$1]="$((${sum% *} + fwd)) $((${sum#* } + ct))"
    NAT_INV="$fwd $ct"
}

# nat_client CLIENT MODE TRACE OUT1 OUT2: pub/file200k.bin into OUT1, then
# pub/file20k.bin into OUT2, on ONE control connection to LAB_NAT_DIAL_V4.
# Both clients use the address a 227 names (curl --no-ftp-skip-pasv-ip, lftp
# ftp:fix-pasv-address off), so an unrewritten private address fails.
# With NAT_SRC set, the client binds its sockets to that address (curl
# --interface: `-P -` then names it too; lftp net:socket-bind-ipv4).
nat_client() {
    local client=$1 mode=$2 trace=$3 out1=$4 out2=$5 host=$LAB_NAT_DIAL_V4 opts=() bind=
    case "$client" in
    curl)
        case "$mode" in
        PASV) opts=(--disable-epsv) ;;
        PORT) opts=(-P - --disable-eprt) ;;
        EPRT) opts=(-P -) ;;
        esac
        [[ -n $NAT_SRC ]] && opts+=(--interface "$NAT_SRC")
        LAB_CMD_TIMEOUT=$((NAT_CURL_MAX + 10)) lab_cli "${CURL_BASE[@]}" -m "$NAT_CURL_MAX" --no-ftp-skip-pasv-ip "${opts[@]}" \
            -o "$out1" "ftp://$host/pub/file200k.bin" -o "$out2" "ftp://$host/pub/file20k.bin" 2>"$trace"
        ;;
    lftp)
        rm -f "$trace"
        [[ -n $NAT_SRC ]] && bind="set net:socket-bind-ipv4 $NAT_SRC;"
        LAB_CMD_TIMEOUT=20 lab_cli env HOME="$WORK/home" lftp -c "$LFTP_BASE; $(lftp_mode "$mode" v4); $bind
            set ftp:fix-pasv-address no; set ftp:ignore-pasv-address no; debug -o $trace 9;
            open -u $U,$P ftp://$host; get pub/file200k.bin -o $out1; get pub/file20k.bin -o $out2; bye" \
            2>>"$trace.err"
        ;;
    esac
}

# trace_count CLIENT TRACE CODE: how many replies CODE the client read.
trace_count() {
    case "$1" in
    curl) grep -acE "^< $3[ -]" "$2" ;;
    lftp) grep -acE -- "^<--- $3[ -]" "$2" ;;
    esac
}

# trace_227_addrs CLIENT TRACE: the addresses the 227 replies named.
trace_227_addrs() {
    local pre='^< 227'
    [[ $1 == lftp ]] && pre='^<--- 227'
    grep -aE -- "$pre" "$2" | grep -aoE '\(([0-9]+,){5}[0-9]+\)' |
        awk -F'[(,)]' '{ printf "%s%s.%s.%s.%s", sep, $2, $3, $4, $5; sep = " " }'
}

# nat_daemon_installs MARK TRIGGER: the daemon's install lines for TRIGGER
# since log line MARK.
nat_daemon_installs() { log_since "$1" | grep -acE "install .*trigger=$2\b"; }

# nat_cell VARIANT TOPO SERVER CLIENT MODE: two downloads on one control
# connection, both sha256 values checked; the client must have logged in
# once, sent exactly MODE twice, and (PASV) been told the address it dialled.
nat_cell() {
    local variant=$1 topo=$2 server=$3 client=$4 mode=$5
    local trace out1 out2 c0 c1 inv rc=0 got1 got2 cmds logins addrs mark=0 want_addrs
    if nat_not_applicable "$client" "$mode"; then
        DETAIL="lftp sends EPRT only over IPv6 (PORT over IPv4); no ftp:* setting forces EPRT on IPv4"
        return 2
    fi
    CELL_SEQ=$((CELL_SEQ + 1))
    trace="$WORK/trace.$CELL_SEQ" out1="$WORK/nat-1.bin" out2="$WORK/nat-2.bin"
    rm -f "$out1" "$out2"
    [[ $variant == alg ]] && mark=$(wc -l <"$LAB_ALG_LOG")
    c0=$(lab_nat_counters)
    nat_client "$client" "$mode" "$trace" "$out1" "$out2" || rc=$?
    c1=$(lab_nat_counters)
    nat_count_invalid "$variant" "$c0" "$c1"
    inv=$NAT_INV
    got1=$( [[ -f $out1 ]] && sha_of "$out1") got2=$( [[ -f $out2 ]] && sha_of "$out2")
    cmds=$(trace_cmds "$client" "$trace" | tr '\n' ' ')
    cmds=${cmds% }
    logins=$(trace_count "$client" "$trace" 230)
    addrs=$(trace_227_addrs "$client" "$trace")
    DETAIL="sha256 ${got1:0:8}/${got2:0:8}, sent '${cmds:-nothing}', logins $logins"
    [[ -n $addrs ]] && DETAIL="$DETAIL, 227 named $addrs"
    DETAIL="$DETAIL, invalid: forward +${inv% *} conntrack +${inv#* }"
    if [[ $inv != "0 0" || $rc -ne 0 || $got1 != "$(want_sha file200k.bin)" || $got2 != "$(want_sha file20k.bin)" ]]; then
        DETAIL="client rc=$rc, $DETAIL; trace $(tail -n 2 "$trace" | tr '\n' ' ' | cut -c1-160)"
        return 1
    fi
    want_addrs=""
    [[ $mode == PASV ]] && want_addrs="$LAB_NAT_DIAL_V4 $LAB_NAT_DIAL_V4"
    [[ $cmds == "$mode $mode" && $logins -eq 1 && $addrs == "$want_addrs" && ${inv% *} -eq 0 ]] || return 1
    if [[ $variant == alg ]]; then
        local n
        n=$(nat_daemon_installs "$mark" "$(trigger_of "$mode")")
        DETAIL="$DETAIL, $n install lines"
        ((n >= 2)) || return 1
    fi
}

# nat_big VARIANT DIR MODE: one GT_NAT_BIG_MB MiB transfer (curl, vsftpd),
# down (pub/big.bin) or up (into upload/), sha256 checked.
nat_big() {
    local variant=$1 dir=$2 mode=$3 opts=() c0 c1 inv rc=0 got t0 file
    case "$mode" in PASV) opts=(--disable-epsv) ;; PORT) opts=(-P - --disable-eprt) ;; esac
    [[ -n $NAT_SRC ]] && opts+=(--interface "$NAT_SRC")
    c0=$(lab_nat_counters)
    t0=$(now)
    if [[ $dir == down ]]; then
        file="$WORK/nat-big.bin"
        rm -f "$file"
        LAB_CMD_TIMEOUT=60 lab_cli "${CURL_BASE[@]}" -m 50 --no-ftp-skip-pasv-ip "${opts[@]}" -o "$file" \
            "ftp://$LAB_NAT_DIAL_V4/pub/$NAT_BIG" 2>"$WORK/nat-big.trace" || rc=$?
    else
        file="$LAB_FTP_ROOT/upload/nat-big-$CELL_SEQ.bin"
        LAB_CMD_TIMEOUT=60 lab_cli "${CURL_BASE[@]}" -m 50 --no-ftp-skip-pasv-ip "${opts[@]}" \
            -T "$LAB_FTP_ROOT/pub/$NAT_BIG" "ftp://$LAB_NAT_DIAL_V4/upload/${file##*/}" \
            2>"$WORK/nat-big.trace" || rc=$?
    fi
    local secs
    secs=$(elapsed "$t0")
    c1=$(lab_nat_counters)
    nat_count_invalid "$variant" "$c0" "$c1"
    inv=$NAT_INV
    got=$( [[ -f $file ]] && sha_of "$file")
    rm -f "$file"
    DETAIL="$GT_NAT_BIG_MB MiB $( [[ $dir == down ]] && echo down || echo up) in $secs s, sent $(trace_cmds curl "$WORK/nat-big.trace" | tr '\n' ' ')"
    DETAIL="${DETAIL% }, sha256 ${got:0:12} (want ${NAT_BIG_SHA:0:12}), invalid: forward +${inv% *} conntrack +${inv#* }"
    [[ $rc -eq 0 && $got == "$NAT_BIG_SHA" && $inv == "0 0" ]]
}

# The captures of the split-PORT case: the gateway's inside and outside links.
# --immediate-mode hands each packet over at once: without it, a capture
# stopped within a second of the last packet loses the ring's last block.
# nat_caps_start [HOST]: with HOST, the inside link's capture keeps only that
# host's packets (an earlier case's orphaned socket may still retransmit).
NAT_CAP_PIDS=()
nat_caps_start() {
    local ifc f filter
    NAT_CAP_PIDS=()
    for ifc in "$LAB_NAT_INSIDE_IF" "$LAB_NAT_OUTSIDE_IF"; do
        f="$WORK/split-$ifc"
        filter="tcp port $LAB_FTP_PORT"
        [[ -n ${1:-} && $ifc == "$LAB_NAT_INSIDE_IF" ]] && filter="$filter and host $1"
        : >"$f.err"
        timeout --kill-after=5 60 ip netns exec "$LAB_NS_GW" tcpdump -i "$ifc" --immediate-mode -s 0 -U -n -Z root \
            -w "$f.pcap" "$filter" 2>"$f.err" </dev/null &
        NAT_CAP_PIDS+=($!)
        _lab_wait_for 10 grep -q "listening on" "$f.err" || return 1
    done
}
nat_caps_stop() {
    local pid
    sleep 0.5
    for pid in "${NAT_CAP_PIDS[@]}"; do kill -INT "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    NAT_CAP_PIDS=()
}
# nat_port_segments IFACE: the client's segments of the capture on IFACE that
# carry the PORT line (not USER/PASS/TYPE/RETR/QUIT), joined with " + ".
nat_port_segments() {
    capture_segments "$WORK/split-$1.pcap" | awk '$1 == "c2s"' | cut -d' ' -f4- |
        grep -avE '^(USER|PASS|TYPE|RETR|QUIT)' | paste -sd'+' | sed -e 's/+/ + /g'
}

# nat_split VARIANT: T2, vsftpd: the client writes "PORT 192,0,2," and 50 ms
# later the rest (TCP_NODELAY), then RETR over the announced connection.
# The kernel helper does not read a line split across segments; when it
# fails, the case is n/a (a known limitation of the baseline) with what
# happened on both links.
nat_split() {
    local variant=$1 c0 c1 inv r sent got
    c0=$(lab_nat_counters)
    nat_caps_start || { nat_caps_stop; DETAIL="captures did not start"; return 1; }
    if SESS_TIMEOUT=5 sess_open "$LAB_NAT_DIAL_V4"; then
        sess_cmd 20 portsplit pub/file20k.bin 50
        r=$REPLY_LINE
        sess_kill
    else
        r="fail no session: $DETAIL"
    fi
    nat_caps_stop
    c1=$(lab_nat_counters)
    nat_count_invalid "$variant" "$c0" "$c1"
    inv=$NAT_INV
    sent=$(nat_port_segments "$LAB_NAT_INSIDE_IF") got=$(nat_port_segments "$LAB_NAT_OUTSIDE_IF")
    DETAIL="${r:0:120}; the client's PORT segments: ${sent:-none}; on the server's side: ${got:-none}; invalid: forward +${inv% *} conntrack +${inv#* }"
    if [[ $r == "ok 20480 $(want_sha file20k.bin) "* && $inv == "0 0" ]]; then return 0; fi
    if [[ $variant == kernel ]]; then
        DETAIL="the kernel helper cannot: $DETAIL"
        return 2
    fi
    return 1
}

# ------------------------------------------- nat: shrinking rewrite, control
# nat_port_lines IFACE: the distinct complete PORT lines the client sent in
# the capture on IFACE (nat_caps_start), in order, one per line.
nat_port_lines() {
    capture_segments "$WORK/split-$1.pcap" | awk '$1 == "c2s"' | grep -aoE 'PORT [0-9]+(,[0-9]+){5}' | awk '!seen[$0]++'
}

# nat_port_rewrites: the PORT lines inside and outside side by side into
# NAT_PORTS_IN, NAT_PORTS_OUT (counts), NAT_PORT_DELTAS (outside minus inside
# length of each pair, bytes, e.g. "-3 -3"), NAT_PORT_DELTA (the same, signed,
# once if all pairs agree: "-3", "+2") and NAT_PORT_SHOWN (the first pair).
NAT_PORTS_IN=0 NAT_PORTS_OUT=0 NAT_PORT_DELTAS= NAT_PORT_DELTA= NAT_PORT_SHOWN=
nat_port_rewrites() {
    local ins=() outs=() i
    mapfile -t ins < <(nat_port_lines "$LAB_NAT_INSIDE_IF")
    mapfile -t outs < <(nat_port_lines "$LAB_NAT_OUTSIDE_IF")
    NAT_PORTS_IN=${#ins[@]} NAT_PORTS_OUT=${#outs[@]} NAT_PORT_DELTAS= NAT_PORT_SHOWN=
    for ((i = 0; i < NAT_PORTS_IN && i < NAT_PORTS_OUT; i++)); do
        NAT_PORT_DELTAS+="$(( ${#outs[i]} - ${#ins[i]} )) "
    done
    NAT_PORT_DELTAS=${NAT_PORT_DELTAS% }
    NAT_PORT_DELTA=$(tr ' ' '\n' <<<"$NAT_PORT_DELTAS" | awk 'NF && !seen[$0]++ { printf "%s%s%s", sep, ($0 > 0 ? "+" : ""), $0; sep = "/" }')
    ((NAT_PORTS_IN)) && NAT_PORT_SHOWN="'${ins[0]}' -> '${outs[0]:-nothing}'"
}

# nat_masq_check: the gateway's conntrack entries of the control
# connections from LAB_NAT_LONG_V4 (flushed before the case) and of the data
# connections to it, into NAT_MASQ ("control N, masqueraded to PUBLIC M;
# data connections DNATed to it K") and NAT_MASQ_OK (1 if N > 0, M = N, K > 0).
NAT_MASQ= NAT_MASQ_OK=0
nat_masq_check() {
    local ctl n m k
    ctl=$(LAB_CMD_TIMEOUT=5 lab_gw conntrack -L -p tcp --orig-src "$LAB_NAT_LONG_V4" --orig-port-dst "$LAB_FTP_PORT" 2>/dev/null)
    n=$(grep -c 'src=' <<<"$ctl")
    m=$(grep -c " src=$LAB_NAT_SRV_V4 dst=$LAB_NAT_PUBLIC_V4 sport=$LAB_FTP_PORT " <<<"$ctl")
    k=$(LAB_CMD_TIMEOUT=5 lab_gw conntrack -L -p tcp --orig-dst "$LAB_NAT_PUBLIC_V4" --reply-src "$LAB_NAT_LONG_V4" 2>/dev/null | grep -c 'src=')
    NAT_MASQ="conntrack: $n control connection(s) from $LAB_NAT_LONG_V4, $m masqueraded to $LAB_NAT_PUBLIC_V4; $k data connection(s) to $LAB_NAT_PUBLIC_V4 DNATed to it"
    NAT_MASQ_OK=0
    ((n > 0 && m == n && k > 0)) && NAT_MASQ_OK=1
    return 0
}

# nat_forget_long: the gateway's conntrack entries of earlier cases from and
# to LAB_NAT_LONG_V4 are deleted, so nat_masq_check counts this case's.
nat_forget_long() {
    LAB_CMD_TIMEOUT=5 lab_gw conntrack -D -s "$LAB_NAT_LONG_V4" >/dev/null 2>&1
    LAB_CMD_TIMEOUT=5 lab_gw conntrack -D -r "$LAB_NAT_LONG_V4" >/dev/null 2>&1
    return 0
}

# nat_in_invalid BEFORE AFTER [out_invalid]: the invalid packets addressed to
# the gateway itself (or sent by it).
nat_in_invalid() { local k=${3:-in_invalid}; echo $(($(nat_counter "$2" "$k") - $(nat_counter "$1" "$k"))); }

# nat_shrink_cell VARIANT CLIENT: T2, vsftpd, PORT, nat_cell's two downloads,
# from the client's second address LAB_NAT_LONG_V4 (lab_nat_long_up), which
# the rewrite shortens ("198,51,100,222" -> "203,0,113,1"): every later byte
# of the client's stream moves backwards.  Both gateway links are captured:
# each PORT line must name the long private address inside and come out
# shorter outside; conntrack must show the control connection masqueraded
# (the operator's `oifname OUTSIDE masquerade` applies to this source too)
# and the data connections DNATed to it; and no invalid packet, neither in
# forward nor addressed to the gateway.
nat_shrink_cell() {
    local variant=$1 client=$2 rc=0 c0 c1 in d ok=1
    nat_forget_long
    c0=$(lab_nat_counters)
    nat_caps_start "$LAB_NAT_LONG_V4" || { nat_caps_stop; DETAIL="captures did not start"; return 1; }
    NAT_SRC=$LAB_NAT_LONG_V4 nat_cell "$variant" T2 vsftpd "$client" PORT || rc=$?
    nat_caps_stop
    c1=$(lab_nat_counters)
    in=$(nat_in_invalid "$c0" "$c1")
    nat_port_rewrites
    nat_masq_check
    DETAIL="from $LAB_NAT_LONG_V4: $DETAIL, to the gateway +$in; PORT lines inside $NAT_PORTS_IN, outside $NAT_PORTS_OUT, first $NAT_PORT_SHOWN, length change ${NAT_PORT_DELTAS:-none} bytes; $NAT_MASQ"
    ((NAT_PORTS_IN == 2 && NAT_PORTS_OUT == 2)) || ok=0
    for d in $NAT_PORT_DELTAS; do ((d < 0)) || ok=0; done
    nat_port_lines "$LAB_NAT_INSIDE_IF" | grep -qv "^PORT ${LAB_NAT_LONG_V4//./,}," && ok=0
    nat_port_lines "$LAB_NAT_OUTSIDE_IF" | grep -qv "^PORT ${LAB_NAT_PUBLIC_V4//./,}," && ok=0
    [[ $rc -eq 0 && $ok -eq 1 && $in -eq 0 && $NAT_MASQ_OK -eq 1 ]]
}

# nat_shrink_big VARIANT: nat_big's GT_NAT_BIG_MB MiB download (curl PORT)
# from LAB_NAT_LONG_V4, with the same conntrack and invalid checks.
nat_shrink_big() {
    local variant=$1 rc=0 c0 c1 in
    nat_forget_long
    c0=$(lab_nat_counters)
    NAT_SRC=$LAB_NAT_LONG_V4 nat_big "$variant" down PORT || rc=$?
    c1=$(lab_nat_counters)
    in=$(nat_in_invalid "$c0" "$c1")
    nat_masq_check
    DETAIL="from $LAB_NAT_LONG_V4: $DETAIL, to the gateway +$in; $NAT_MASQ"
    [[ $rc -eq 0 && $in -eq 0 && $NAT_MASQ_OK -eq 1 ]]
}

# nat_shrink_cases VARIANT: T2, vsftpd: the shrinking rewrite (curl and lftp
# two downloads, curl 32 MiB), with the second inside prefix up only for them.
nat_shrink_cases() {
    local variant=$1
    if ! lab_nat_long_up; then
        result FAIL "nat/T2/$variant/long-address" "lab_nat_long_up failed"
        return 0
    fi
    nat_case "$variant" T2 vsftpd curl PORT shrink-two-downloads nat_shrink_cell "$variant" curl
    nat_case "$variant" T2 vsftpd lftp PORT shrink-two-downloads nat_shrink_cell "$variant" lftp
    nat_case "$variant" T2 vsftpd curl PORT "shrink-download-${GT_NAT_BIG_MB}M" nat_shrink_big "$variant"
    lab_nat_long_down
}

# nat_control_cell growing|shrinking: the control of D23 (firewall
# alg-forward-nat: the inside's control packets queued in FORWARD, after
# conntrack tracked them unrewritten).  curl PORT, two downloads, -m 5, both
# gateway links captured.  growing: from 192.0.2.2 ("192,0,2,2" ->
# "203,0,113,1", 2 bytes longer); predicted: the server's ACKs cover bytes
# conntrack never saw, so conntrack finds packets invalid (its counter
# rises) and the transfer fails.  shrinking: from LAB_NAT_LONG_V4 (3 bytes
# shorter); predicted: the server's ACKs stay below what conntrack saw,
# inside its window, so both files arrive and no packet is invalid.  The
# case is ok when the prediction holds, and FAIL when it does not.
nat_control_cell() {
    local kind=$1 src=$LAB_NAT_PRIVATE_V4 trace out1 out2 c0 c1 rc=0 got1 got2 files=0 fwd ct in out mark n logins
    local r200_in r200_out rst_in rst_out pred obs verdict=0
    [[ $kind == shrinking ]] && src=$LAB_NAT_LONG_V4
    CELL_SEQ=$((CELL_SEQ + 1))
    trace="$WORK/trace.$CELL_SEQ" out1="$WORK/nat-1.bin" out2="$WORK/nat-2.bin"
    rm -f "$out1" "$out2"
    mark=$(wc -l <"$LAB_ALG_LOG")
    c0=$(lab_nat_counters)
    nat_caps_start "$src" || { nat_caps_stop; DETAIL="captures did not start"; return 1; }
    NAT_SRC=$src NAT_CURL_MAX=5 nat_client curl PORT "$trace" "$out1" "$out2" || rc=$?
    nat_caps_stop
    c1=$(lab_nat_counters)
    nat_count_invalid alg-forward "$c0" "$c1"
    fwd=${NAT_INV% *} ct=${NAT_INV#* }
    in=$(nat_in_invalid "$c0" "$c1") out=$(nat_in_invalid "$c0" "$c1" out_invalid)
    logins=$(trace_count curl "$trace" 230)
    got1=$( [[ -f $out1 ]] && sha_of "$out1") got2=$( [[ -f $out2 ]] && sha_of "$out2")
    [[ $got1 == "$(want_sha file200k.bin)" ]] && files=$((files + 1))
    [[ $got2 == "$(want_sha file20k.bin)" ]] && files=$((files + 1))
    n=$(nat_daemon_installs "$mark" PORT)
    nat_port_rewrites
    # vsftpd's "200 PORT command successful" on each link, and the RSTs towards the server.
    r200_out=$(capture_segments "$WORK/split-$LAB_NAT_OUTSIDE_IF.pcap" | grep -acE '^s2c [0-9]+ [0-9]+ (.*[|])?200 PORT')
    r200_in=$(capture_segments "$WORK/split-$LAB_NAT_INSIDE_IF.pcap" | grep -acE '^s2c [0-9]+ [0-9]+ (.*[|])?200 PORT')
    rst_out=$(tcpdump -r "$WORK/split-$LAB_NAT_OUTSIDE_IF.pcap" -n "tcp[tcpflags] & tcp-rst != 0 and dst port $LAB_FTP_PORT" 2>/dev/null | grep -c .)
    rst_in=$(tcpdump -r "$WORK/split-$LAB_NAT_INSIDE_IF.pcap" -n "tcp[tcpflags] & tcp-rst != 0 and dst port $LAB_FTP_PORT" 2>/dev/null | grep -c .)
    obs="invalid: conntrack +$ct (forward +$fwd, to the gateway +$in, from the gateway +$out); curl rc=$rc, $files of 2 files (sha256), $logins login(s); $n PORT rewrite(s) logged, length change ${NAT_PORT_DELTAS:-none} bytes ($NAT_PORT_SHOWN); the server's '200 PORT' replies: $r200_out on the outside link, $r200_in on the inside link; RSTs to the server: $rst_out outside, $rst_in inside"
    if [[ $kind == growing ]]; then
        pred="the server's ACKs are over conntrack's upper bound: invalid packets (conntrack's counter > 0) and the transfer fails"
        [[ $ct -gt 0 && $files -lt 2 && $n -ge 1 && ${NAT_PORT_DELTAS%% *} -gt 0 ]] && verdict=1
    else
        pred="the server's ACKs stay below what conntrack saw, inside its window: both files, no invalid packet"
        [[ $ct -eq 0 && $fwd -eq 0 && $in -eq 0 && $out -eq 0 && $files -eq 2 && $rc -eq 0 && $n -ge 2 && ${NAT_PORT_DELTAS%% *} -lt 0 ]] && verdict=1
    fi
    if ((verdict)); then
        DETAIL="control: $kind rewrite with the inside queued after conntrack -> as D23 predicts ($pred): $obs"
    else
        DETAIL="control: $kind rewrite with the inside queued after conntrack -> NOT as predicted ($pred): $obs"
    fi
    NAT_CTRL_ROWS+=("| $kind (${NAT_PORT_DELTA:-?} bytes per PORT line) | $src | $pred | $obs | $( ((verdict)) && echo ok || echo FAIL) |")
    ((verdict))
}

# nat_control T2: the alg-forward variant (T1 has no length-changing rewrite
# from the inside: a 227 keeps its length, a PORT from outside is not rewritten).
nat_control() {
    local topo=$1
    [[ $topo == T2 ]] || return 0
    NAT_DAEMON_ERR=
    lab_fw_load alg-forward-nat || { result FAIL "nat/$topo/alg-forward/firewall" "lab_fw_load alg-forward-nat failed"; return; }
    run_case "nat/$topo/alg-forward/ruleset" nat_ruleset alg-forward
    nat_daemon_start "$topo" alg-forward
    if [[ -z $NAT_DAEMON_ERR ]] && ! lab_start_server vsftpd 2>/dev/null; then
        result FAIL "nat/$topo/alg-forward/vsftpd/start" "server did not start"
    elif ! lab_nat_long_up; then
        result FAIL "nat/$topo/alg-forward/long-address" "lab_nat_long_up failed"
    else
        nat_case alg-forward "$topo" vsftpd curl PORT control-growing nat_control_cell growing
        nat_case alg-forward "$topo" vsftpd curl PORT control-shrinking nat_control_cell shrinking
        lab_nat_long_down
    fi
    lab_stop_server
    [[ -z $NAT_DAEMON_ERR ]] && daemon_stop_check "nat/$topo/alg-forward/daemon-stop"
    lab_fw_flush
}

# nat_ruleset VARIANT: what every cell relies on is in place.
nat_ruleset() {
    local variant=$1 table=ftpalg liberal fwd op raw=
    [[ $variant == kernel ]] && table=ftpalg_kernel
    liberal=$(LAB_CMD_TIMEOUT=5 lab_gw sysctl -n net.netfilter.nf_conntrack_tcp_be_liberal)
    fwd=$(LAB_CMD_TIMEOUT=5 lab_gw nft list chain inet "$table" forward)
    op=$(LAB_CMD_TIMEOUT=5 lab_gw nft list table ip operator_nat | grep -oE 'dnat to [0-9.]+|masquerade' | paste -sd,)
    DETAIL="be_liberal=$liberal; forward chain of inet $table: $(grep -c 'ct state invalid drop' <<<"$fwd") 'ct state invalid drop'; operator_nat: $op"
    if [[ $variant == alg ]]; then
        raw=$(LAB_CMD_TIMEOUT=5 lab_gw iptables -t raw -S FTPALG_INSIDE | grep -c -- "! -i $LAB_NAT_OUTSIDE_IF .*NFQUEUE")
        DETAIL="$DETAIL; raw PREROUTING queue rules for ! -i $LAB_NAT_OUTSIDE_IF: $raw"
        [[ $raw -eq 2 ]] || return 1
    fi
    if [[ $variant == alg-forward ]]; then
        local q qn qi maps
        raw=$(LAB_CMD_TIMEOUT=5 lab_gw iptables -t raw -S PREROUTING | grep -c FTPALG_INSIDE)
        q=$(LAB_CMD_TIMEOUT=5 lab_gw iptables -S FTPALG_QUEUE | grep NFQUEUE)
        qn=$(grep -c . <<<"$q") qi=$(grep -c -- ' -i ' <<<"$q")
        maps=$(grep -cE 'map dnat4 |chain nat_prerouting ' <<<"$(LAB_CMD_TIMEOUT=5 lab_gw nft list table inet ftpalg)")
        DETAIL="$DETAIL; the control: raw PREROUTING jumps to FTPALG_INSIDE: $raw, FORWARD queue rules: $qn ($qi by interface), dnat4 map and nat_prerouting: $maps of 2"
        [[ $raw -eq 0 && $qn -eq 2 && $qi -eq 0 && $maps -eq 2 ]] || return 1
    fi
    [[ $liberal == 0 && $fwd == *"ct state invalid drop"* && -n $op ]]
}

nat_not_applicable() { [[ $1 == lftp ]] && ! lftp_mode "$2" v4 >/dev/null; }

# nat_case VARIANT TOPO SERVER CLIENT MODE WHAT FUNC ARGS...: run_case, and
# the docs label of the row.
nat_case() {
    local variant=$1 topo=$2 server=$3 client=$4 mode=$5 what=$6 fn=$7 rc=0 name
    shift 7
    name="nat/$topo/$variant/$server/$client/$mode"
    [[ $what == two-downloads ]] || name="$name/$what"
    if [[ -n $NAT_DAEMON_ERR ]] && ! nat_not_applicable "$client" "$mode"; then
        result FAIL "$name" "not run: $NAT_DAEMON_ERR"
        NAT_CELL["$topo $variant $server $client $mode $what"]=FAIL
        return 0
    fi
    run_case "$name" "$fn" "$@" || rc=$?
    case "$rc" in
    0) NAT_CELL["$topo $variant $server $client $mode $what"]=ok ;;
    2) NAT_CELL["$topo $variant $server $client $mode $what"]="n/a ¹" ;;
    *) NAT_CELL["$topo $variant $server $client $mode $what"]=FAIL ;;
    esac
    [[ $rc -eq 2 && $what == split-PORT ]] && NAT_CELL["$topo $variant $server $client $mode $what"]="fails ²"
    return 0
}

nat_server_cases() {
    local variant=$1 topo=$2 server=$3 client mode big=PORT
    for client in "${CLIENTS[@]}"; do
        for mode in PASV EPSV PORT EPRT; do
            nat_case "$variant" "$topo" "$server" "$client" "$mode" two-downloads \
                nat_cell "$variant" "$topo" "$server" "$client" "$mode"
        done
    done
    [[ $server == vsftpd ]] || return 0
    [[ $topo == T1 ]] && big=PASV
    nat_case "$variant" "$topo" vsftpd curl "$big" "download-${GT_NAT_BIG_MB}M" nat_big "$variant" down "$big"
    nat_case "$variant" "$topo" vsftpd curl "$big" "upload-${GT_NAT_BIG_MB}M" nat_big "$variant" up "$big"
    [[ $topo == T2 ]] && nat_case "$variant" "$topo" vsftpd probe PORT split-PORT nat_split "$variant"
    [[ $topo == T2 ]] && nat_shrink_cases "$variant"
    return 0
}

nat_daemon_start() {
    local topo=$1 variant=${2:-alg} flags
    read -ra flags <<<"$NAT_ALG_FLAGS"
    if lab_alg_start "${flags[@]}" 2>"$WORK/alg-start.err"; then return 0; fi
    NAT_DAEMON_ERR="ftp-alg run $NAT_ALG_FLAGS did not start ($(lab_alg_log | grep -av '^\s*$' | head -n 2 | tr '\n' ' ' | cut -c1-160))"
    result FAIL "nat/$topo/$variant/daemon-start" "$NAT_DAEMON_ERR"
    return 1
}

nat_variant() {
    local variant=$1 topo=$2 server
    [[ $variant == alg-forward ]] && { nat_control "$topo"; return; }
    NAT_DAEMON_ERR=
    lab_fw_load "$variant-nat" || { result FAIL "nat/$topo/$variant/firewall" "lab_fw_load $variant-nat failed"; return; }
    run_case "nat/$topo/$variant/ruleset" nat_ruleset "$variant"
    [[ $variant == alg ]] && nat_daemon_start "$topo"
    for server in "${SERVERS[@]}"; do
        if [[ -z $NAT_DAEMON_ERR ]] && ! lab_start_server "$server" 2>/dev/null; then
            result FAIL "nat/$topo/$variant/$server/start" "server did not start"
            continue
        fi
        nat_server_cases "$variant" "$topo" "$server"
        lab_stop_server
    done
    [[ $variant == alg && -z $NAT_DAEMON_ERR ]] && daemon_stop_check "nat/$topo/alg/daemon-stop"
    lab_fw_flush
}

part_nat() {
    local topo variant
    lab_make_big "$NAT_BIG" "$GT_NAT_BIG_MB" || { result FAIL nat/big-file "lab_make_big failed"; return; }
    NAT_BIG_SHA=$(sha_of "$LAB_FTP_ROOT/pub/$NAT_BIG")
    for topo in T1 T2; do
        if ! lab_nat_up "$topo"; then
            result FAIL "nat/$topo/up" "lab_nat_up $topo failed"
            continue
        fi
        for variant in $NAT_VARIANTS; do nat_variant "$variant" "$topo"; done
    done
    lab_nat_down || result FAIL nat/down "lab_nat_down failed"
    rm -f "$LAB_FTP_ROOT/pub/$NAT_BIG"
}

# ------------------------------------------------------------------ docs
# docs/lab-results.md: the matrix for alg / kernel / drop, the other cases,
# the kernel-state table of the exact and flood parts, the part times.
# A hand-written section of the existing file, from the line
# "<!-- hand-written: kept by write_docs -->" to the end, is carried over.
write_docs() {
    local f="$REPO/docs/lab-results.md" server client mode fam dir key v a kept=
    [[ -r $f ]] && kept=$(sed -n '/^<!-- hand-written: kept by write_docs -->$/,$p' "$f")
    {
        echo "# Gateway lab results"
        echo
        echo "Generated by \`LAB_WRITE_DOCS=1 bash tests/lab/gateway-tests.sh\` ($(date -u +%Y-%m-%d), Linux $(uname -r),"
        echo "ftp-alg $(git -C "$REPO" describe --always 2>/dev/null || echo unknown))."
        echo "Each cell is one transfer through the gateway namespace of \`tests/lab/lab.sh\`:"
        echo
        echo "- **alg**: \`ftp-alg rules --backend nft --queue-via iptables\` + \`ftp-alg run --backend nft\`."
        echo "  ok (T) = the sha256 matches, the client sent exactly the intended command, and the daemon"
        echo "  logged \`install ... trigger=T\` for it."
        echo "- **kernel**: \`ftp-alg rules --backend kernel\` (the kernel's \`ct helper\` \"ftp\"), the baseline."
        echo "- **drop**: the alg ruleset without the daemon. blocked (the expected result) = the client logged"
        echo "  in and sent the command, and the data connection failed (curl \`--connect-timeout 3 -m 6\`, lftp \`net:timeout 3\`)."
        echo
        echo "Downloads are \`pub/file200k.bin\` (200 KiB), uploads \`file20k.bin\`. PASV and PORT carry an IPv4"
        echo "address, so they exist only over IPv4."
        echo
        echo "| server | client | mode | IP | transfer | alg | kernel | drop |"
        echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
        for server in "${SERVERS[@]}"; do
            for key in "${MATRIX_ROWS[@]}"; do
                read -r client mode fam dir <<<"$key"
                printf '| %s | %s | %s | %s | %s |' "$server" "$client" "$mode" "${fam/v/IPv}" \
                    "$([[ $dir == down ]] && echo download || echo upload)"
                for v in alg kernel drop; do
                    a=${CELL["$v $server $client $mode $fam $dir"]:-not run}
                    printf ' %s |' "$a"
                done
                echo
            done
        done
        echo
        echo "¹ lftp sends EPRT only over IPv6 (PORT over IPv4); none of its \`ftp:*\` settings forces EPRT on IPv4."
        echo
        echo "Other cases of the same run:"
        echo
        echo '```'
        grep -vE '^(ok|FAIL|n/a) (alg|kernel|drop)/(vsftpd|proftpd)/' "$WORK/results.txt" |
            grep -vE '^(ok|FAIL|n/a) nat/T[12]/(kernel|alg)/[a-z]+/[a-z]+/[A-Z]+ \(' | grep -E '^(ok|FAIL|n/a) '
        echo '```'
        echo
        if ((${#KS_ROWS[@]})); then
            echo "## What the kernel held (parts exact and flood)"
            echo
            echo "These cases read the gateway's set (\`nft -j list set inet ftpalg expect4\`), the segments on"
            echo "the wire (a capture on the gateway's client link), the counters of the kernel's queue, link and"
            echo "conntrack table, and the bytes of a transfer, not only the daemon's log. \`installed\`/\`removed\`"
            echo "count the elements the daemon wrote to and deleted from the kernel (the net effect of each"
            echo "packet; a key installed and revoked within one packet is sent as a delete of an element the"
            echo "kernel never held, and counted in \`removed\`). The flood is paced (GT_FLOOD_RATE, default"
            echo "20,000/s): unpaced (about 250,000/s) it overflows the kernel's queue (\`--queue-maxlen 4096\`),"
            echo "and the kernel drops segments the daemon never sees."
            echo
            echo "| case | sent | the kernel held | daemon counters |"
            echo "| --- | --- | --- | --- |"
            printf '%s\n' "${KS_ROWS[@]}"
            echo
        fi
        ((${#NAT_CELL[@]})) && write_docs_nat
        echo "Time of each part (seconds, 2 cores):"
        echo
        echo "| part | seconds |"
        echo "| --- | --- |"
        local pt
        for pt in "${PART_TIMES[@]}"; do
            printf '| %s | %s |\n' "${pt% *}" "${pt##* }"
        done
        if [[ -n $kept ]]; then
            echo
            printf '%s\n' "$kept"
        fi
    } >"$f.new" && mv "$f.new" "$f"
    echo "wrote $f"
}

# The NAT section of docs/lab-results.md: one row per NAT case, kernel and
# alg side by side.
write_docs_nat() {
    local topo server client mode what key v sums
    echo "## NAT"
    echo
    echo "The NAT lab (\`lab_nat_up\` in \`tests/lab/lab.sh\`), IPv4: **T1**, a published server: vsftpd or proftpd"
    echo "at the private $LAB_NAT_PRIVATE_V4 behind the operator's DNAT of port 21, the client outside at"
    echo "$LAB_NAT_PEER_V4 dials the gateway's public $LAB_NAT_PUBLIC_V4, and the operator masquerades what leaves"
    echo "the outside interface. **T2**, a masqueraded client: the client at the private $LAB_NAT_PRIVATE_V4, the"
    echo "server outside at $LAB_NAT_PEER_V4. The servers are not told the public address, and the outside peer"
    echo "has no route to the private prefix: an announcement that still names the private address fails."
    echo
    echo "- **kernel**: \`ftp-alg rules --backend kernel\` (\`ct helper\` \"ftp\"; \`nf_nat_ftp\` rewrites) and the operator's"
    echo "  NAT table."
    echo "- **alg**: \`ftp-alg rules --backend nft --queue-via iptables --nat --outside IFACE\`, the operator's NAT"
    echo "  table and \`ftp-alg run --backend nft $NAT_ALG_FLAGS\`."
    echo
    echo "Every case runs with \`nf_conntrack_tcp_be_liberal=0\` and the ruleset's \`ct state invalid drop\`. Two"
    echo "downloads = \`pub/file200k.bin\` then \`pub/file20k.bin\` on one control connection (the second command"
    echo "travels after a rewrite), both sha256 checked; the client logged in once and sent exactly the mode"
    echo "twice; after PASV both 227 replies named the address the client dialled (curl"
    echo "\`--no-ftp-skip-pasv-ip\`, lftp \`ftp:fix-pasv-address no\`: the clients use what the 227 says); and no packet"
    echo "reached \`ct state invalid drop\` (a counter in front of it). The ${GT_NAT_BIG_MB} MiB transfers are curl with vsftpd."
    echo
    echo "| topology | server | client | mode | transfer | kernel | alg |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    for topo in T1 T2; do
        for server in "${SERVERS[@]}"; do
            for key in $(nat_rows "$topo" "$server"); do
                IFS=: read -r client mode what <<<"$key"
                printf '| %s | %s | %s | %s | %s |' "$topo" "$server" "$client" "$mode" "$(nat_what_label "$what")"
                for v in kernel alg; do printf ' %s |' "${NAT_CELL["$topo $v $server $client $mode $what"]:-not run}"; done
                echo
            done
        done
    done
    echo
    echo "¹ lftp sends EPRT only over IPv6 (PORT over IPv4)."
    echo "² The client writes \`PORT 192,0,2,\` and 50 ms later the rest (TCP_NODELAY), then RETR. \`nf_conntrack_ftp\`"
    echo "drops a segment that holds only the start of a PORT line (\"partial matching\") and does not read a"
    echo "line that starts inside a segment, so the first segment is dropped at every retransmission and the"
    echo "session stalls (the case's line below shows the segments on both of the gateway's links)."
    echo "³ A rewrite that shrinks the stream: the client also has $LAB_NAT_LONG_V4 on a second inside prefix and binds"
    echo "to it (curl \`--interface\`, lftp \`net:socket-bind-ipv4\`), so \`PORT ${LAB_NAT_LONG_V4//./,},…\` becomes"
    echo "\`PORT ${LAB_NAT_PUBLIC_V4//./,},…\`, 3 bytes shorter, and every later byte of the client's stream moves backwards."
    echo "Both links are captured for the two downloads (each PORT line names $LAB_NAT_LONG_V4 inside and comes out"
    echo "shorter outside); conntrack shows the control connection masqueraded to $LAB_NAT_PUBLIC_V4 by the operator's"
    echo "\`oifname OUTSIDE masquerade\` and the data connections DNATed back; no packet was invalid, neither in forward"
    echo "nor addressed to the gateway."
    echo
    for v in kernel alg; do
        sums=${NAT_INVALID[$v]:-}
        [[ -n $sums ]] && echo "Packets that reached \`ct state invalid drop\` over all $v NAT cases: ${sums% *} (conntrack's own invalid counter: +${sums#* })."
    done
    echo
    if ((${#NAT_CTRL_ROWS[@]})); then
        echo "### Control: the inside queued after conntrack"
        echo
        echo "What docs/decisions.md (D23) rejects, measured: \`lab_fw_load alg-forward-nat\` is the alg NAT ruleset with the"
        echo "inside's control packets queued in FORWARD like the outside's (the raw \`PREROUTING\` queue removed), so"
        echo "conntrack tracks the client's segments before ftp-alg rewrites them; the same daemon. T2, vsftpd, curl PORT,"
        echo "two downloads on one control connection (\`-m 5\`), both links captured. A case is ok when what happened is"
        echo "what it predicted. Invalid packets are counted by conntrack (\`conntrack -S\`) and by \`lab_watch\`'s forward,"
        echo "input and output chains: a reply that conntrack finds invalid is not de-masqueraded, so it is addressed to the"
        echo "gateway itself, which answers it with a RST (itself invalid: a RST cannot open a connection)."
        echo
        echo "| rewrite | client | prediction | observed | case |"
        echo "| --- | --- | --- | --- | --- |"
        printf '%s\n' "${NAT_CTRL_ROWS[@]}"
        echo
    fi
}

# nat_rows TOPO SERVER: the docs rows of one server, "client:mode:what".
nat_rows() {
    local client mode big=PORT
    for client in "${CLIENTS[@]}"; do
        for mode in PASV EPSV PORT EPRT; do echo "$client:$mode:two-downloads"; done
    done
    [[ $2 == vsftpd ]] || return 0
    [[ $1 == T1 ]] && big=PASV
    echo "curl:$big:download-${GT_NAT_BIG_MB}M" "curl:$big:upload-${GT_NAT_BIG_MB}M"
    [[ $1 == T2 ]] && echo "probe:PORT:split-PORT" "curl:PORT:shrink-two-downloads" "lftp:PORT:shrink-two-downloads" \
        "curl:PORT:shrink-download-${GT_NAT_BIG_MB}M"
    return 0
}

# nat_what_label WHAT: the docs' transfer column ("two downloads", "download
# 32M", "two downloads, shrinking ³").
nat_what_label() {
    case "$1" in
    shrink-*) echo "${1#shrink-}, shrinking ³" | sed -e 's/-/ /g' ;;
    *) echo "${1//-/ }" ;;
    esac
}

MATRIX_ROWS=()
for client in "${CLIENTS[@]}"; do
    for mode in PASV EPSV PORT EPRT; do
        for fam in v4 v6; do
            [[ $fam == v6 && ($mode == PASV || $mode == PORT) ]] && continue
            MATRIX_ROWS+=("$client $mode $fam down")
        done
    done
done
MATRIX_ROWS+=("curl EPSV v4 up" "lftp EPRT v6 up")

# ------------------------------------------------------------------ main
main() {
    local t0
    t0=$(now)
    [[ -x $FTPALG_BIN ]] || { echo "gateway tests: $FTPALG_BIN missing (cargo build --release)" >&2; exit 1; }
    echo "== gateway tests: $FTPALG_BIN, parts: $GT_PARTS (lab prefix $LAB_PREFIX)"
    lab_install_deps || { echo "gateway tests: lab_install_deps failed" >&2; exit 1; }
    WORK=$(mktemp -d /tmp/ftp-alg-gateway.XXXXXX) || exit 1
    mkdir -p "$WORK/home"
    chmod 755 "$WORK"
    lab_up 2>"$WORK/lab-up.err" || { cat "$WORK/lab-up.err" >&2; echo "gateway tests: lab_up failed" >&2; exit 1; }
    cp "$LAB_FTP_ROOT/pub/file20k.bin" "$WORK/"
    # The lab's own progress messages go to a file; the cases print the results.
    exec 3>&2 2>>"$WORK/lab.log"

    part alg part_alg
    part kernel part_kernel
    part drop part_drop
    part ipset part_ipset
    part pinhole part_pinhole
    part burst part_burst
    part restart part_restart
    part exact part_exact
    part flood part_flood
    part nat part_nat

    exec 2>&3 3>&-
    echo "== time per part (s): $(printf '%s; ' "${PART_TIMES[@]}")"
    [[ -n $BURST_RESULT ]] && echo "== burst: $BURST_RESULT"
    if [[ ${LAB_WRITE_DOCS:-0} == 1 ]]; then write_docs; fi
    echo "== gateway tests: $N_OK ok, $N_FAIL FAIL, $N_NA n/a in $(elapsed "$t0") s"
    if ((N_FAIL > 0)); then
        echo "== lab messages (last 30 lines):"
        tail -n 30 "$WORK/lab.log"
        echo "== ftp-alg log (last 30 lines):"
        tail -n 30 "$LAB_ALG_LOG" 2>/dev/null
        return 1
    fi
}

main "$@"
