#!/usr/bin/env bash
# The live adversarial suite: hostile clients, hostile servers, malformed datagrams, faults
# and load, through the lab's default-drop gateway running ftp-alg (docs/security.md).
# Owns the cases where the kernel's behaviour is the point: what the sets hold, which SYNs
# are admitted, which bytes arrive, what the queue drops. The engine-level cases are in
# tests/hostile.rs. Run by `make test` (after gateway-tests.sh); needs root (skips itself
# otherwise).
#
#   bash tests/lab/hostile-tests.sh                       # everything (about 3 minutes)
#   HS_PARTS="faults" bash tests/lab/hostile-tests.sh     # some parts
#
# Parts (HS_PARTS, default all, in this order):
#   adversarial  NAT slipstreaming against vsftpd (PORT at a segment start of an HTTP
#                POST); a hostile server (hostile_ftpd.py): a 227 naming another host,
#                10,000 unsolicited 227s, a 64 KiB line; TCP evasion against vsftpd: a PORT
#                line in one-byte segments, with an urgent byte, with a Telnet IAC in the
#                verb; 2,000 SYNs never completed
#   malformed    crafted datagrams to port 21 through the gateway (bad checksum,
#                truncated TCP header, IP options, IPv6 extension headers, IPv4 and IPv6
#                fragments): what the kernel drops, what the queue sees, what the daemon
#                counts, and that it keeps working
#   faults       kill -9 in the middle of a 64 MiB download; a queue overflow with and
#                without --fail-open; the nft table deleted under the daemon; a full set;
#                a netlink socket overrun (ENOBUFS, small --rcvbuf)
#   load         HS_LOAD_SESSIONS (1,000) concurrent sessions (tests/tools/ftp_load.rs),
#                HS_LOAD_TRANSFERS (4) transfers each over PASV, EPSV, PORT and EPRT; every
#                data connection conntrack admitted must match an install
#
# Output: one line per case, `ok|FAIL|n/a NAME (details)`, then the time of each part and a
# summary; exit status 1 if any case failed. Each case runs under a watchdog (HS_CASE_BUDGET
# seconds). The lab (namespaces ${LAB_PREFIX}-*, default prefix ftpalg-hs) is torn down on
# exit.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

if [[ $(id -u) -ne 0 ]]; then
    echo "hostile tests skipped: they need root (network namespaces, nftables)"
    exit 0
fi

export LAB_PREFIX=${LAB_PREFIX:-ftpalg-hs}
# shellcheck source=tests/lab/lab.sh
source "$HERE/lab.sh"

HS_PARTS=${HS_PARTS:-adversarial malformed faults load}
HS_CASE_BUDGET=${HS_CASE_BUDGET:-40}
HS_LOAD_SESSIONS=${HS_LOAD_SESSIONS:-1000}
HS_LOAD_TRANSFERS=${HS_LOAD_TRANSFERS:-4}
PY=$LAB_SYS_PYTHON
PROBE="$HERE/hostile_probe.py"
U=$LAB_FTP_USER P=$LAB_FTP_PASS
FTP_LOAD=${FTP_LOAD:-$REPO/target/release/examples/ftp_load}

# ------------------------------------------------------------ bookkeeping
# The style and helpers of gateway-tests.sh (result, watchdog, run_case, part).
WORK=
WD_PID=
N_OK=0 N_FAIL=0 N_NA=0
PART_TIMES=()
LOAD_RESULT=

MAIN_PID=$BASHPID
cleanup() {
    local rc=$?
    [[ $BASHPID == "$MAIN_PID" ]] || exit "$rc"
    set +eu
    trap - EXIT INT TERM
    watchdog_stop
    lab_down
    [[ -n $WORK ]] && rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { echo "${EPOCHREALTIME/,/.}"; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

result() {
    local st=$1 name=$2 det=$3
    case "$st" in
    ok) N_OK=$((N_OK + 1)) ;;
    n/a) N_NA=$((N_NA + 1)) ;;
    *) st=FAIL N_FAIL=$((N_FAIL + 1)) ;;
    esac
    printf '%s %s (%s)\n' "$st" "$name" "$det" | tee -a "$WORK/results.txt"
}

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

DETAIL=
run_case() {
    local name=$1 fn=$2 t0 rc
    shift 2
    DETAIL=
    t0=$(now)
    watchdog_start "$HS_CASE_BUDGET"
    "$fn" "$@"
    rc=$?
    watchdog_stop
    if [[ -e $WORK/watchdog.fired ]]; then
        rc=1 DETAIL="timed out after $HS_CASE_BUDGET s; $DETAIL"
    fi
    case "$rc" in
    0) result ok "$name" "$DETAIL, $(elapsed "$t0") s" ;;
    2) result n/a "$name" "$DETAIL" ;;
    *) result FAIL "$name" "$DETAIL, $(elapsed "$t0") s" ;;
    esac
    return "$rc"
}

part_selected() { [[ " $HS_PARTS " == *" $1 "* ]]; }

part() {
    local name=$1 fn=$2 t0
    part_selected "$name" || return 0
    echo "== $name"
    t0=$(now)
    "$fn"
    PART_TIMES+=("$name $(elapsed "$t0")")
}

# ------------------------------------------------------------ what the kernel holds
want_sha() { lab_content_sha256 "$1"; }

daemon_or_fail() {
    local name=$1
    shift
    if lab_alg_start "$@" 2>"$WORK/alg-start.err"; then return 0; fi
    result FAIL "$name" "ftp-alg did not start: $(tail -n 3 "$WORK/alg-start.err" | tr '\n' ' ')"
    return 1
}

# set_elems SET: "SRC DST PORT" per element of the gateway's nft set (nothing if empty).
set_elems() {
    local json
    json=$(LAB_CMD_TIMEOUT=10 lab_gw nft -j list set inet ftpalg "$1" 2>/dev/null) || return 1
    "$PY" "$HERE/lab_inspect.py" set-elems <<<"$json"
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
log_since() { tail -n "+$(($1 + 1))" "$LAB_ALG_LOG"; }
log_mark() { wc -l <"$LAB_ALG_LOG"; }

# nfq_counters: "queue_total queue_dropped user_dropped id_sequence" of the lab's queue.
nfq_counters() {
    LAB_CMD_TIMEOUT=5 lab_gw cat /proc/net/netfilter/nfnetlink_queue |
        awk -v q="$LAB_ALG_QUEUE" '$1 == q { print $3, $6, $7, $8 }'
}
nfq_field() { awk -v i="$2" '{ print $i }' <<<"$1"; }
srv_tx() { LAB_CMD_TIMEOUT=5 lab_gw cat "/sys/class/net/$LAB_GW_IF_SRV/statistics/tx_packets"; }
_srv_tx_reached() { (($(srv_tx) >= $1)); }

# curl_get MODE FILE OUT [CURL ARGS]: one download through the gateway (IPv4).
curl_get() {
    local mode=$1 file=$2 out=$3 opts=()
    shift 3
    case "$mode" in
    PASV) opts=(--disable-epsv) ;;
    PORT) opts=(-P - --disable-eprt) ;;
    esac
    rm -f "$out"
    LAB_CMD_TIMEOUT=${CURL_LIMIT:-20} lab_cli curl -sS --connect-timeout 3 -m "${CURL_MAX:-10}" -u "$U:$P" \
        "${opts[@]}" "$@" -o "$out" "ftp://$LAB_SRV_V4/pub/$file" 2>>"$WORK/curl.err"
}
got_sha() { [[ -f $1 ]] && sha256sum <"$1" | cut -d' ' -f1; }

# A transfer after the case: the gateway still works.
still_works() {
    curl_get PASV file20k.bin "$WORK/after.bin"
    [[ $(got_sha "$WORK/after.bin") == "$(want_sha file20k.bin)" ]]
}

# ------------------------------------------------------------ adversarial
# NAT slipstreaming: an HTTP POST to vsftpd's port 21 whose body puts "PORT <client>,DP"
# at the start of a segment. The gateway must poison the connection (client-not-ftp),
# hold no element, and a connection from the server to the client's listening DATAPORT
# must time out (while the client listens there).
case_slipstream() {
    local mark s0 s1 out probe elems dp=45678
    mark=$(log_mark)
    s0=$(lab_alg_stats) || { DETAIL="no stats line"; return 1; }
    LAB_CMD_TIMEOUT=20 lab_cli "$PY" "$PROBE" slipstream "$LAB_SRV_V4" "$dp" --hold 5 >"$WORK/slip.out" 2>&1 &
    local job=$!
    sleep 1.5
    elems=$(set_elems expect4)
    probe=$(LAB_CMD_TIMEOUT=10 lab_srv "$PY" "$HERE/ftp_probe.py" connect "$LAB_CLI_V4" "$dp" --timeout 2)
    wait "$job"
    out=$(cat "$WORK/slip.out")
    s1=$(lab_alg_stats) || { DETAIL="no stats line after"; return 1; }
    local poisoned
    poisoned=$(log_since "$mark" | grep -ac 'client-not-ftp')
    DETAIL="$out; expect4: ${elems:-empty}; server -> client:$dp: $probe; engine.poisoned +$(delta "$s0" "$s1" engine.poisoned), announcements +$(delta "$s0" "$s1" engine.announcements); client-not-ftp log lines: $poisoned"
    [[ $out == *"accepted 0" && -z $elems && $probe == timeout ]] || return 1
    (($(delta "$s0" "$s1" engine.poisoned) == 1 && $(delta "$s0" "$s1" engine.announcements) == 0 && poisoned == 1))
}

# hostile_server_start: hostile_ftpd.py on port 21 of the server namespace (lab_stop_server
# stops it).
hostile_server_start() {
    lab_stop_server
    mkdir -p "$LAB_STATE_DIR/hostile" || return 1
    # shellcheck disable=SC2046
    timeout --kill-after=5 "$LAB_SERVER_TIMEOUT" ip netns exec "$LAB_NS_SRV" $(_lab_pin) \
        "$PY" "$HERE/hostile_ftpd.py" --third "$LAB_OTH_V4" --flood 10000 --long 65536 \
        >"$LAB_STATE_DIR/hostile/stdout.log" 2>&1 </dev/null &
    LAB_SERVER_PID=$!
    echo "$LAB_SERVER_PID" >"$LAB_SERVER_PIDFILE"
    _lab_wait_for 10 _lab_server_listening
}

# case_hostile_server USER: the session's first PASV is answered with the lie USER picks
# (third, flood, longline); the second honestly. The lie must open nothing (the third
# host listens on the port it names), the honest 227 must work.
case_hostile_server() {
    local user=$1 mark s0 s1 out listener oth_probe
    mark=$(log_mark)
    s0=$(lab_alg_stats) || { DETAIL="no stats line"; return 1; }
    if [[ $user == third ]]; then
        # The third host listens on every port the lie may name, for 6 s.
        LAB_CMD_TIMEOUT=30 lab_oth "$PY" -c 'import select, signal, socket, sys, time
n = 0
def done(*_):
    print("accepted", n, flush=True)
    sys.exit(0)
ls = []
for p in range(50000, 50100):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", p)); s.listen(4); ls.append(s)
print("listening", flush=True)
end = time.time() + 6
while time.time() < end:
    r, _, _ = select.select(ls, [], [], 0.2)
    for s in r:
        s.accept()[0].close(); n += 1
done()' >"$WORK/oth.out" 2>&1 &
        listener=$!
        _lab_wait_for 5 grep -q listening "$WORK/oth.out"
    fi
    out=$(LAB_CMD_TIMEOUT=30 lab_cli "$PY" "$PROBE" pasv "$LAB_SRV_V4" "$user" --timeout 3)
    if [[ -n ${listener:-} ]]; then
        wait "$listener" 2>/dev/null
        oth_probe=$(grep accepted "$WORK/oth.out")
    fi
    s1=$(lab_alg_stats) || { DETAIL="no stats line after"; return 1; }
    local refused inst supp
    refused=$(delta "$s0" "$s1" engine.refused)
    inst=$(delta "$s0" "$s1" installed)
    supp=$(delta "$s0" "$s1" log_suppressed)
    DETAIL="$out; engine.refused +$refused, installed +$inst, log lines suppressed +$supp, stats: flows=$(stat_of "$s1" flows) live=$(stat_of "$s1" live)${oth_probe:+; third host: $oth_probe}"
    [[ $out == *"second $LAB_SRV_V4:"*" connect 18" ]] || return 1
    case "$user" in
    third)
        DETAIL="$DETAIL; refusal: $(log_since "$mark" | grep -a ' refuse endpoint' | head -n 1 | sed -e 's/^.*refuse /refuse /')"
        [[ $out == "first $LAB_OTH_V4:"*" timeout 0;"* && $oth_probe == "accepted 0" && $refused -eq 1 && $inst -eq 1 ]]
        ;;
    flood)
        # 10,000 unsolicited 227s after the honest one: all refused, one pinhole per PASV.
        [[ $out == "first $LAB_SRV_V4:"*" connect 18;"* && $refused -eq 10000 && $inst -eq 2 ]]
        ;;
    longline)
        [[ $out == "first $LAB_SRV_V4:"*" connect 18;"* && $inst -eq 2 ]] &&
            (($(delta "$s0" "$s1" engine.overlong_lines) == 1))
        ;;
    esac
}

# case_active HOW: a PORT line sent in one-byte segments, with an urgent byte, or with an
# IAC inside its verb. bytewise and urgent: the transfer works (vsftpd reads the urgent byte
# in band: it sets SO_OOBINLINE) and the gateway logged one install; iac: vsftpd refuses the
# line (500), and the pinhole the gateway opened for it is revoked as cancelled: the set is
# empty after the reply.
case_active() {
    local how=$1 mark out elems inst rev
    mark=$(log_mark)
    out=$(LAB_CMD_TIMEOUT=30 lab_cli "$PY" "$PROBE" active "$LAB_SRV_V4" "$U" "$P" "$how")
    elems=$(set_elems expect4)
    inst=$(log_since "$mark" | grep -ac 'install .*trigger=PORT')
    rev=$(log_since "$mark" | grep -a 'revoke .*trigger=PORT' | grep -oE 'reason=[a-z-]+' | paste -sd, -)
    DETAIL="$out; install lines: $inst; revocations: ${rev:-none}; expect4 after: ${elems:-empty}"
    case "$how" in
    bytewise | urgent) [[ $out == "ok 20480 $(want_sha file20k.bin) reply=200 "* && $inst -eq 1 && -z $elems ]] ;;
    iac) [[ $out == "fail reply=500 "* && $inst -eq 1 && $rev == reason=cancelled && -z $elems ]] ;;
    esac
}

# 2,000 SYNs to the server's port 21 from an address nobody answers for (198.51.100.77, in
# the client's subnet: the SYN-ACKs die at the gateway's neighbour lookup). The flows stay
# unproven, are capped per source, and a real session still transfers.
case_half_open() {
    local s0 s1 out tx0 before after
    s0=$(lab_alg_stats) || { DETAIL="no stats line"; return 1; }
    tx0=$(srv_tx)
    out=$(LAB_CMD_TIMEOUT=30 lab_cli "$PY" "$PROBE" raw syn 198.51.100.77 "$LAB_SRV_V4" --count 2000 --first-sport 20000)
    _lab_wait_for 10 _srv_tx_reached "$((tx0 + 2000))"
    s1=$(lab_alg_stats) || { DETAIL="no stats line after"; return 1; }
    still_works && after="transfer after: sha256 ok" || after="transfer after: FAILED"
    DETAIL="$out; crossed: $(($(srv_tx) - tx0)) packets; flows=$(stat_of "$s1" flows) control_connections +$(delta "$s0" "$s1" engine.control_connections) flows_source_capped +$(delta "$s0" "$s1" engine.flows_source_capped) flows_evicted_proven=$(stat_of "$s1" engine.flows_evicted_proven); $after"
    [[ $out == "sent 2000 "* && $after == *ok ]] || return 1
    (($(stat_of "$s1" flows) <= 64 + 10 && $(delta "$s0" "$s1" engine.flows_source_capped) >= 1900))
}

part_adversarial() {
    lab_fw_load alg || { result FAIL adversarial/firewall "lab_fw_load alg failed"; return; }
    daemon_or_fail adversarial/daemon-start || return
    if lab_start_server vsftpd 2>/dev/null; then
        run_case adversarial/slipstream-http-port-at-segment-start case_slipstream
        run_case adversarial/port-in-one-byte-segments case_active bytewise
        run_case adversarial/port-with-urgent-byte case_active urgent
        run_case adversarial/port-with-iac-in-verb case_active iac
        run_case adversarial/2000-syns-never-completed case_half_open
    else
        result FAIL adversarial/vsftpd "server did not start"
    fi
    if hostile_server_start; then
        run_case adversarial/hostile-server-227-third-host case_hostile_server third
        run_case adversarial/hostile-server-10000-unsolicited-227 case_hostile_server flood
        run_case adversarial/hostile-server-64k-line case_hostile_server longline
    else
        result FAIL adversarial/hostile-server "hostile_ftpd.py did not start"
    fi
    lab_stop_server
    lab_alg_stop
    lab_fw_flush
}

# ------------------------------------------------------------ malformed
# Crafted datagrams from the client to the server's port 21 (hostile_probe.py raw), each
# kind from its own source ports, no handshake. What the kernel does is the point: a bad
# checksum and a truncated TCP header are INVALID to conntrack and dropped by the ruleset's
# `ct state invalid drop` before the queue; fragments are reassembled by conntrack
# (nf_defrag) before the queue and leave whole; IP options and IPv6 extension headers are
# queued, read through, and forwarded. The daemon must count what it saw and keep working.
MAL_CAP=

# case_malformed KIND SRC DST FIRST_SPORT QUEUED CROSSED FRAGMENTS: three datagrams (or
# three fragmented segments) of KIND; the queue must see QUEUED packets (the server answers
# each segment that reaches it with a RST, which is queued too), the gateway must send
# CROSSED datagrams from SRC on the server link, FRAGMENTS of them fragments.
case_malformed() {
    local kind=$1 src=$2 dst=$3 sport=$4 want_q=$5 want_x=$6 want_f=$7 q0 q1 s0 s1 out crossed frags queued cap
    q0=$(nfq_counters) s0=$(lab_alg_stats) || { DETAIL="no stats line"; return 1; }
    cap="$WORK/malformed-$kind.pcap"
    lab_capture_start "$cap" "$LAB_GW_IF_SRV" || { DETAIL="capture did not start"; return 1; }
    out=$(LAB_CMD_TIMEOUT=10 lab_cli "$PY" "$PROBE" raw "$kind" "$src" "$dst" --count 3 --first-sport "$sport")
    sleep 0.5
    lab_capture_stop 2>/dev/null
    q1=$(nfq_counters) s1=$(lab_alg_stats) || { DETAIL="no stats line after"; return 1; }
    queued=$(($(nfq_field "$q1" 4) - $(nfq_field "$q0" 4)))
    crossed=$(tcpdump -r "$cap" -n "src host $src" 2>/dev/null | grep -c .)
    frags=$(tcpdump -r "$cap" -n "src host $src and ((ip and ip[6:2] & 0x3fff != 0) or (ip6 and ip6[6] = 44))" 2>/dev/null | grep -c .)
    DETAIL="$out; queued $queued, sent on the server link $crossed (fragments: $frags);"
    DETAIL="$DETAIL daemon: packets +$(delta "$s0" "$s1" packets) malformed_packets +$(delta "$s0" "$s1" engine.malformed_packets) fragments +$(delta "$s0" "$s1" engine.fragments) control_connections +$(delta "$s0" "$s1" engine.control_connections) announcements +$(delta "$s0" "$s1" engine.announcements) installed +$(delta "$s0" "$s1" installed)"
    ((queued == want_q && crossed == want_x && frags == want_f)) || return 1
    (($(delta "$s0" "$s1" installed) == 0 && $(delta "$s0" "$s1" engine.announcements) == 0))
}

case_malformed_after() {
    local out
    lab_alg_running || { DETAIL="the daemon is gone"; return 1; }
    still_works || { DETAIL="transfer after the malformed datagrams failed"; return 1; }
    DETAIL="daemon running; PASV transfer sha256 ok"
}

part_malformed() {
    lab_fw_load alg || { result FAIL malformed/firewall "lab_fw_load alg failed"; return; }
    daemon_or_fail malformed/daemon-start || return
    if lab_start_server vsftpd 2>/dev/null; then
        local c4=$LAB_CLI_V4 s4=$LAB_SRV_V4 c6=$LAB_CLI_V6 s6=$LAB_SRV_V6
        run_case malformed/bad-tcp-checksum-dropped-as-invalid case_malformed badsum "$c4" "$s4" 31000 0 0 0
        run_case malformed/truncated-tcp-header-dropped-as-invalid case_malformed trunc "$c4" "$s4" 31010 0 0 0
        run_case malformed/ipv4-options-read-through case_malformed ipopt "$c4" "$s4" 31020 6 3 0
        run_case malformed/ipv4-fragments-reassembled-before-the-queue case_malformed frag4 "$c4" "$s4" 31030 6 6 6
        run_case malformed/ipv6-extension-headers-read-through case_malformed v6ext "$c6" "$s6" 31040 6 3 0
        run_case malformed/ipv6-fragments-reassembled-before-the-queue case_malformed frag6 "$c6" "$s6" 31050 6 6 6
        run_case malformed/daemon-keeps-working case_malformed_after
    else
        result FAIL malformed/vsftpd "server did not start"
    fi
    lab_stop_server
    lab_alg_stop
    lab_fw_flush
}

# ------------------------------------------------------------------ main
main() {
    local t0
    t0=$(now)
    [[ -x $FTPALG_BIN ]] || { echo "hostile tests: $FTPALG_BIN missing (cargo build --release)" >&2; exit 1; }
    echo "== hostile tests: $FTPALG_BIN, parts: $HS_PARTS (lab prefix $LAB_PREFIX)"
    lab_install_deps || { echo "hostile tests: lab_install_deps failed" >&2; exit 1; }
    WORK=$(mktemp -d /tmp/ftp-alg-hostile.XXXXXX) || exit 1
    chmod 755 "$WORK"
    lab_up 2>"$WORK/lab-up.err" || { cat "$WORK/lab-up.err" >&2; echo "hostile tests: lab_up failed" >&2; exit 1; }
    exec 3>&2 2>>"$WORK/lab.log"

    part adversarial part_adversarial
    part malformed part_malformed

    exec 2>&3 3>&-
    echo "== time per part (s): $(printf '%s; ' "${PART_TIMES[@]}")"
    [[ -n $LOAD_RESULT ]] && echo "== load: $LOAD_RESULT"
    echo "== hostile tests: $N_OK ok, $N_FAIL FAIL, $N_NA n/a in $(elapsed "$t0") s"
    if ((N_FAIL > 0)); then
        echo "== lab messages (last 30 lines):"
        tail -n 30 "$WORK/lab.log"
        echo "== ftp-alg log (last 30 lines):"
        tail -n 30 "$LAB_ALG_LOG" 2>/dev/null
        return 1
    fi
}

main "$@"
