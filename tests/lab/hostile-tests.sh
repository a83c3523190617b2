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
# Sessions start over HS_LOAD_RAMP_MS (vsftpd's listen backlog is 32: a faster start
# overflows it, and a client whose handshake the server dropped waits for a greeting that
# never comes), then wait until 5 s after the ramp, so all are logged in at once when the
# transfers begin.
HS_LOAD_RAMP_MS=${HS_LOAD_RAMP_MS:-20000}
PY=$LAB_SYS_PYTHON
PROBE="$HERE/hostile_probe.py"
U=$LAB_FTP_USER P=$LAB_FTP_PASS
FTP_LOAD=${FTP_LOAD:-$REPO/target/release/examples/ftp_load}
HS_PAM_SERVICE=/etc/pam.d/ftp-alg-lab-load-$LAB_PREFIX

# ------------------------------------------------------------ bookkeeping
# shellcheck source=tests/lab/suite.sh
SUITE_PARTS=$HS_PARTS
SUITE_CASE_BUDGET=$HS_CASE_BUDGET
source "$HERE/suite.sh"
LOAD_RESULT=
suite_cleanup_hook() { rm -f "$HS_PAM_SERVICE"; }

# ------------------------------------------------------------ what the kernel holds
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

# ------------------------------------------------------------ faults
# Each fault: one clear log line, a counter, and recovery when the cause goes away.
FLOOD_DST=203.0.113.99
FLOOD_MAC=02:00:cb:00:71:99
BIG=big64.bin

# kill -9 in the middle of a 64 MiB download (curl PASV, --limit-rate 24M): the transfer
# completes (its data connection is in conntrack) and so does its control connection (the
# queue rules' bypass passes control packets while no daemon is bound); a transfer
# announced while the daemon is down fails (nothing opened its pinhole); the restarted
# daemon finds no state (a crash writes none) and the next transfer works.
case_kill9_mid_transfer() {
    local job rc size down after want got mark
    want=$(sha256sum <"$LAB_FTP_ROOT/pub/$BIG" | cut -d' ' -f1)
    rm -f "$WORK/big.bin"
    CURL_LIMIT=60 CURL_MAX=50 curl_get PASV "$BIG" "$WORK/big.bin" --limit-rate 24M &
    job=$!
    _lab_wait_for 15 _bigger_than "$WORK/big.bin" $((8 << 20)) || { DETAIL="the download did not start"; wait "$job"; return 1; }
    size=$(stat -c %s "$WORK/big.bin")
    lab_alg_kill || { DETAIL="could not kill the daemon"; wait "$job"; return 1; }
    CURL_MAX=6 curl_get PASV file20k.bin "$WORK/down.bin" && down="sha256 $(got_sha "$WORK/down.bin" | cut -c1-12) (NOT refused)" || down="failed (refused, as it must)"
    lab_alg_start 2>"$WORK/alg-start.err" || { DETAIL="the daemon did not start again"; wait "$job"; return 1; }
    mark=$LAB_ALG_MARK
    wait "$job"
    rc=$?
    got=$(got_sha "$WORK/big.bin")
    still_works && after="sha256 ok" || after=FAILED
    DETAIL="killed at $((size >> 20)) MiB of 64; curl exit $rc, sha256 $( [[ $got == "$want" ]] && echo ok || echo "WRONG ${got:0:12}"); a transfer while down: $down;"
    DETAIL="$DETAIL restart: $(log_since "$mark" | grep -ao 'no state in [^;]*' | head -n 1); a transfer after: $after"
    [[ $rc -eq 0 && $got == "$want" && $down == failed* && $after == "sha256 ok" ]] || return 1
    log_since "$mark" | grep -aq 'no state in'
}
_bigger_than() { [[ -f $1 ]] && (($(stat -c %s "$1") > $2)); }

flood_unpaced() { # flood_unpaced FIRST_SPORT COUNT: prints tcp_flood.py's line
    LAB_CMD_TIMEOUT=30 lab_cli "$PY" "$HERE/tcp_flood.py" "$LAB_CLI_V4" "$FLOOD_DST" \
        --dport "$LAB_FTP_PORT" --count "$2" --first-sport "$1" 2>&1
}

# flood_paused FIRST_SPORT COUNT: the same burst while the daemon is stopped (SIGSTOP), so
# the kernel's queue or the socket fills on any machine, however fast the daemon reads (a
# daemon starved of CPU); SIGCONT after the burst, whatever happened.
flood_paused() {
    local pid out
    pid=$(lab_alg_pid) || { echo "no daemon pid"; return 1; }
    kill -STOP "$pid" || { echo "SIGSTOP failed"; return 1; }
    out=$(flood_unpaced "$1" "$2")
    kill -CONT "$pid"
    echo "$out (daemon stopped during the burst)"
}

# case_queue_overflow MODE: a burst of 20,000 one-segment connections, unpaced, into a queue
# of 64 (--queue-maxlen 64) while the daemon is stopped. drop (the default): the kernel drops what does not fit
# (/proc/net/netfilter/nfnetlink_queue queue_dropped), the daemon logs it and counts it
# (queue_full_drops). fail-open: the kernel passes what does not fit unread (nothing
# counts it: the kernel has no counter for it), so more packets cross than the daemon saw.
case_queue_overflow() {
    local mode=$1 sport=$2 q0 q1 s0 s1 tx0 sent crossed qd saw lines mark
    mark=$(log_mark)
    q0=$(nfq_counters) s0=$(lab_alg_stats) tx0=$(srv_tx) || { DETAIL="no stats line"; return 1; }
    sent=$(flood_paused "$sport" 20000)
    _lab_wait_for 5 _srv_tx_reached "$((tx0 + 20000))"
    sleep 1.5
    q1=$(nfq_counters) s1=$(lab_alg_stats) || { DETAIL="no stats line after"; return 1; }
    crossed=$(($(srv_tx) - tx0))
    qd=$(($(nfq_field "$q1" 2) - $(nfq_field "$q0" 2)))
    saw=$(delta "$s0" "$s1" packets)
    lines=$(log_since "$mark" | grep -ac 'queue was full')
    local after
    still_works && after="sha256 ok" || after=FAILED
    DETAIL="$sent; kernel queue_dropped +$qd; crossed $crossed; the daemon read $saw; queue_full_drops +$(delta "$s0" "$s1" queue_full_drops); log lines: $lines ($(log_since "$mark" | grep -a 'queue was full' | head -n 1 | sed -e 's/^.*queue 0: //')); a transfer after: $after"
    [[ $sent == "sent 20000 "* && $after == "sha256 ok" ]] || return 1
    case "$mode" in
    drop) ((qd > 0 && crossed < 20000 && $(delta "$s0" "$s1" queue_full_drops) == qd && lines >= 1 && lines <= 5)) ;;
    fail-open) ((qd == 0 && crossed >= 20000 && saw < 20000)) ;;
    esac
}

# The nft table deleted under the running daemon (its forward chain goes too: the gateway
# forwards everything until the ruleset is back; that is the operator's ruleset, not the
# daemon's). A PASV transfer's install fails: one error line, install_errors; SIGHUP reports
# the missing set. The ruleset is loaded again: SIGHUP says ok, the next install works.
case_table_deleted() {
    local mark s0 s1 during after errs hup_bad hup_ok inst
    mark=$(log_mark)
    s0=$(lab_alg_stats) || { DETAIL="no stats line"; return 1; }
    LAB_CMD_TIMEOUT=5 lab_gw nft delete table inet ftpalg || { DETAIL="nft delete table failed"; return 1; }
    curl_get PASV file20k.bin "$WORK/t1.bin" && during=ok || during=failed
    curl_get EPSV file20k.bin "$WORK/t2.bin" || during="$during/failed"
    kill -HUP "$(lab_alg_pid)"
    _lab_wait_for 5 _log_has "$mark" 'backend check failed'
    hup_bad=$(log_since "$mark" | grep -a 'backend check failed' | head -n 1 | sed -e 's/^.*queue 0: //')
    s1=$(lab_alg_stats) || { DETAIL="no stats line after"; return 1; }
    errs=$(log_since "$mark" | grep -a 'expectation(s) failed' | head -n 1 | sed -e 's/^.*queue 0: //')
    local nerr
    nerr=$(log_since "$mark" | grep -ac 'expectation(s) failed')
    lab_fw_load alg >/dev/null 2>&1 || { DETAIL="the ruleset did not load again"; return 1; }
    local mark2
    mark2=$(log_mark)
    kill -HUP "$(lab_alg_pid)"
    _lab_wait_for 5 _log_has "$mark2" 'backend ok'
    hup_ok=$(log_since "$mark2" | grep -ac 'backend ok')
    still_works && after="sha256 ok" || after=FAILED
    inst=$(log_since "$mark2" | grep -ac 'install tcp')
    DETAIL="two transfers without the table: $during (nothing filters); install_errors +$(delta "$s0" "$s1" install_errors), error lines: $nerr ($errs); SIGHUP: $hup_bad;"
    local back
    back=$(log_since "$mark" | grep -a 'set updates work again' | sed -e 's/^.*queue 0: //')
    DETAIL="$DETAIL ruleset back: SIGHUP backend ok lines $hup_ok; a transfer after: $after, install lines $inst; ${back:-no recovery line}"
    (($(delta "$s0" "$s1" install_errors) == 2 && nerr == 1 && hup_ok == 1 && inst >= 1)) || return 1
    [[ $back == "set updates work again after 2 failed install(s) and 2 failed removal(s)" ]] || return 1
    [[ -n $hup_bad && $after == "sha256 ok" ]]
}
_log_has() { log_since "$1" | grep -aq "$2"; }

# A set of 2 elements (rules --set-size 2): a session asks PASV three times; the third
# install fails (the kernel's "set full"), one error line and install_errors; the set holds
# the first two. After QUIT the set is empty and a transfer works again.
case_set_full() {
    local mark s0 s1 out elems after nerr
    mark=$(log_mark)
    s0=$(lab_alg_stats) || { DETAIL="no stats line"; return 1; }
    rm -f "$WORK/quit"
    LAB_CMD_TIMEOUT=30 lab_cli "$PY" -c 'import ftplib, os, sys, time
f = ftplib.FTP(sys.argv[1], timeout=10); f.login(sys.argv[2], sys.argv[3])
r = [f.sendcmd("PASV")[:3] for _ in range(3)]
print("pasv", " ".join(r), flush=True)
end = time.time() + 15
while not os.path.exists(sys.argv[4]) and time.time() < end:
    time.sleep(0.05)
f.quit(); print("quit", flush=True)' "$LAB_SRV_V4" "$U" "$P" "$WORK/quit" >"$WORK/setfull.out" 2>&1 &
    local job=$!
    _lab_wait_for 10 grep -q '^pasv' "$WORK/setfull.out"
    elems=$(n_elems expect4)
    touch "$WORK/quit"
    wait "$job"
    out=$(paste -sd' ' "$WORK/setfull.out")
    s1=$(lab_alg_stats) || { DETAIL="no stats line after"; return 1; }
    nerr=$(log_since "$mark" | grep -ac 'expectation(s) failed')
    still_works && after="sha256 ok" || after=FAILED
    local back
    back=$(log_since "$mark" | grep -a 'set updates work again' | sed -e 's/^.*queue 0: //')
    DETAIL="$out; expect4 held $elems; install_errors +$(delta "$s0" "$s1" install_errors); error lines $nerr ($(log_since "$mark" | grep -a 'expectation(s) failed' | head -n 1 | sed -e 's/^.*queue 0: //')); after QUIT expect4 holds $(n_elems expect4); a transfer after: $after; ${back:-no recovery line}"
    [[ $out == "pasv 227 227 227 quit" && $elems -eq 2 && $after == "sha256 ok" ]] || return 1
    [[ $back == "set updates work again after 1 failed install(s) and 0 failed removal(s)" ]] || return 1
    (($(delta "$s0" "$s1" install_errors) == 1 && nerr == 1))
}

# The netlink socket overrun: --rcvbuf 65536 and an unpaced burst of 20,000 while the
# daemon is stopped (the queue of 4,096 holds more than the socket does); the kernel
# reports ENOBUFS (overruns), /proc's user_dropped counts the packets; few log lines; the
# next transfer works.
case_enobufs() {
    local mark s0 s1 q0 q1 sent lines after
    mark=$(log_mark)
    q0=$(nfq_counters) s0=$(lab_alg_stats) || { DETAIL="no stats line"; return 1; }
    sent=$(flood_paused 20000 20000)
    sleep 2
    q1=$(nfq_counters) s1=$(lab_alg_stats) || { DETAIL="no stats line after"; return 1; }
    lines=$(log_since "$mark" | grep -ac 'socket buffer full')
    still_works && after="sha256 ok" || after=FAILED
    DETAIL="$sent; overruns +$(delta "$s0" "$s1" overruns) socket_full_drops +$(delta "$s0" "$s1" socket_full_drops); kernel user_dropped +$(($(nfq_field "$q1" 3) - $(nfq_field "$q0" 3))), queue_dropped +$(($(nfq_field "$q1" 2) - $(nfq_field "$q0" 2))); the daemon read $(delta "$s0" "$s1" packets); log lines: $lines ($(log_since "$mark" | grep -a 'socket buffer full' | head -n 1 | sed -e 's/^.*queue 0: //')); a transfer after: $after"
    [[ $sent == "sent 20000 "* && $after == "sha256 ok" ]] || return 1
    (($(delta "$s0" "$s1" overruns) > 0 && lines >= 1 && lines <= 5)) || return 1
    (($(delta "$s0" "$s1" socket_full_drops) == $(nfq_field "$q1" 3) - $(nfq_field "$q0" 3)))
}

part_faults() {
    lab_fw_load alg || { result FAIL faults/firewall "lab_fw_load alg failed"; return; }
    lab_make_big "$BIG" 64 || { result FAIL faults/big-file "lab_make_big failed"; return; }
    LAB_CMD_TIMEOUT=5 lab_gw ip neigh replace "$FLOOD_DST" lladdr "$FLOOD_MAC" dev "$LAB_GW_IF_SRV" nud permanent ||
        { result FAIL faults/neighbour "ip neigh replace failed"; return; }
    lab_start_server vsftpd 2>/dev/null || { result FAIL faults/vsftpd "server did not start"; return; }
    if daemon_or_fail faults/daemon-start; then
        run_case faults/kill-9-mid-transfer case_kill9_mid_transfer
        run_case faults/nft-table-deleted case_table_deleted
        lab_alg_stop
    fi
    if daemon_or_fail faults/daemon-start-queue-maxlen-64 --queue-maxlen 64; then
        run_case faults/queue-overflow-drop case_queue_overflow drop 20000
        lab_alg_stop
    fi
    LAB_CMD_TIMEOUT=30 lab_gw conntrack -D -d "$FLOOD_DST" >/dev/null 2>&1
    if daemon_or_fail faults/daemon-start-queue-maxlen-64-fail-open --queue-maxlen 64 --fail-open; then
        run_case faults/queue-overflow-fail-open case_queue_overflow fail-open 40000
        lab_alg_stop
    fi
    LAB_CMD_TIMEOUT=30 lab_gw conntrack -D -d "$FLOOD_DST" >/dev/null 2>&1
    if daemon_or_fail faults/daemon-start-rcvbuf-64k --rcvbuf 65536; then
        run_case faults/netlink-overrun-enobufs case_enobufs
        lab_alg_stop
    fi
    LAB_CMD_TIMEOUT=30 lab_gw conntrack -D -d "$FLOOD_DST" >/dev/null 2>&1
    # The set of two.
    local file="$LAB_STATE_DIR/fw-alg-set-size-2"
    if "$FTPALG_BIN" rules --backend nft --queue-via iptables --queue "$LAB_ALG_QUEUE" --set-size 2 >"$file" &&
        lab_fw_flush && LAB_CMD_TIMEOUT=20 lab_gw sh "$file" >/dev/null; then
        if daemon_or_fail faults/daemon-start-set-size-2; then
            run_case faults/set-full case_set_full
            lab_alg_stop
        fi
    else
        result FAIL faults/set-size-2 "the ruleset with --set-size 2 did not load"
    fi
    LAB_CMD_TIMEOUT=5 lab_gw ip neigh del "$FLOOD_DST" dev "$LAB_GW_IF_SRV" 2>/dev/null
    lab_stop_server
    lab_fw_flush
}

# ------------------------------------------------------------ load
# HS_LOAD_SESSIONS concurrent sessions of ftp_load (tests/tools/ftp_load.rs), each
# HS_LOAD_TRANSFERS transfers of file20k.bin cycling through PASV, EPSV, PORT and EPRT.
# Every data connection the kernel admitted is an event `conntrack -E -e NEW` printed (the
# kernel confirms a connection only once its first packet passed every chain); each must
# match an element the daemon added to the set (`nft monitor new elements`: same source,
# destination and port), and there must be exactly one per transfer. A counter in a chain of its own (priority filter - 20, before the
# ruleset) counts the data SYNs that tried, retransmissions included.
# vsftpd gets max_clients=0, max_per_ip=0 and a passive range of 10,000 ports; all sessions
# come from the one client address, so the daemon runs with --max-expectations-per-client
# 4096 (the default 256 is a per-address bound: a NAT of 1,000 users needs it raised).
case_load() {
    local out rc s0 s1 events admitted unmatched tried
    s0=$(lab_alg_stats) || { DETAIL="no stats line"; return 1; }
    local mark
    mark=$(log_mark)
    timeout --kill-after=5 300 ip netns exec "$LAB_NS_GW" conntrack -E -e NEW -p tcp -b 8388608 \
        >"$WORK/ct-events.txt" 2>"$WORK/ct-events.err" &
    local ctjob=$!
    # What the daemon added to the sets, as the kernel reports it (the log's install lines
    # are rate-limited).
    timeout --kill-after=5 300 ip netns exec "$LAB_NS_GW" nft monitor new elements \
        >"$WORK/nft-monitor.txt" 2>"$WORK/nft-monitor.err" &
    local nftjob=$!
    sleep 0.5
    out=$(LAB_CMD_TIMEOUT=240 lab_cli "$FTP_LOAD" --server "$LAB_SRV_V4:21" --user "$U" --pass "$P" \
        --sessions "$HS_LOAD_SESSIONS" --concurrency "$HS_LOAD_SESSIONS" --transfers "$HS_LOAD_TRANSFERS" \
        --modes pasv,epsv,port,eprt --file /pub/file20k.bin --timeout-ms 60000 --ramp-ms "$HS_LOAD_RAMP_MS" \
        --hold-ms "$((HS_LOAD_RAMP_MS + 5000))" 2>"$WORK/load.err")
    rc=$?
    local peak
    peak=$(grep -oE 'peak_open=[0-9]+' <<<"$out" | cut -d= -f2)
    sleep 1
    kill "$ctjob" "$nftjob" 2>/dev/null
    wait "$ctjob" "$nftjob" 2>/dev/null
    s1=$(lab_alg_stats) || { DETAIL="no stats line after"; return 1; }
    # "SRC DST PORT" of every admitted data connection, and of every install.
    events=$(grep -a 'NEW' "$WORK/ct-events.txt" | awk '{
        for (i = 1; i <= NF; i++) { split($i, kv, "="); if (!(kv[1] in f)) f[kv[1]] = kv[2] }
        if (f["dport"] != 21) print f["src"], f["dst"], f["dport"]; delete f }')
    admitted=$(grep -c . <<<"$events")
    grep -aoE '[0-9a-f.:]+ \. [0-9a-f.:]+ \. [0-9]+' "$WORK/nft-monitor.txt" | sed -e 's/ \. / /g' |
        sort -u >"$WORK/installs.txt"
    unmatched=$(grep -vxF -f "$WORK/installs.txt" <<<"$events" | grep -c .)
    tried=$(LAB_CMD_TIMEOUT=5 lab_gw nft list chain inet hs_watch tried 2>/dev/null |
        awk '/counter/ { for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1) }')
    local passed
    passed=$(LAB_CMD_TIMEOUT=5 lab_gw nft list chain inet hs_watch admitted 2>/dev/null |
        awk '/counter/ { for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1) }')
    local ok failed
    ok=$(grep -oE 'transfers_ok=[0-9]+' <<<"$out" | cut -d= -f2)
    failed=$(grep -oE 'transfers_failed=[0-9]+' <<<"$out" | cut -d= -f2)
    local errors
    errors=$(grep -aoE ': (connect/login: .*|[a-z]+ transfer [0-9]+: .*|QUIT: .*)$' "$WORK/load.err" | cut -c3- |
        sed -E 's/[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+:[0-9]+/ADDR/g; s/transfer [0-9]+/transfer/' | sort | uniq -c | sort -rn | head -n 3 | paste -sd';')
    DETAIL="ftp_load exit $rc: $out${errors:+ (first errors: $errors)}; sessions logged in at once: ${peak:-?}; data SYNs that passed the ruleset (a counter after it): ${passed:-?}; conntrack reported $admitted of them (its event socket may lose some: $(grep -ac ENOBUFS "$WORK/ct-events.err") ENOBUFS), $unmatched not matching an element the daemon added (nft monitor: $(grep -ac 'add element' "$WORK/nft-monitor.txt") adds, $(grep -c . "$WORK/installs.txt") distinct keys); data SYNs that tried: ${tried:-?};"
    DETAIL="$DETAIL daemon: installed +$(delta "$s0" "$s1" installed) install_errors +$(delta "$s0" "$s1" install_errors) engine.refused +$(delta "$s0" "$s1" engine.refused) refused_client_limit +$(delta "$s0" "$s1" engine.refused_client_limit) flows_source_capped +$(delta "$s0" "$s1" engine.flows_source_capped) log_suppressed +$(delta "$s0" "$s1" log_suppressed) queue_full_drops +$(delta "$s0" "$s1" queue_full_drops) overruns +$(delta "$s0" "$s1" overruns)"
    LOAD_RESULT="$HS_LOAD_SESSIONS sessions (${peak:-?} logged in at once) x $HS_LOAD_TRANSFERS transfers: transfers_ok=${ok:-?} transfers_failed=${failed:-?}, $(grep -oE 'elapsed_s=[0-9.]+|transfers_per_s=[0-9.]+|announce_p50_us=[0-9]+|announce_p99_us=[0-9]+' <<<"$out" | paste -sd' '); data SYNs tried ${tried:-?}, admitted ${passed:-?} (conntrack events $admitted, none without an element the daemon added: unmatched $unmatched); queue_full_drops +$(delta "$s0" "$s1" queue_full_drops)"
    [[ $rc -eq 0 && $failed -eq 0 && $ok -eq $((HS_LOAD_SESSIONS * HS_LOAD_TRANSFERS)) ]] || return 1
    ((passed == ok && tried == ok && unmatched == 0 && admitted > 0 && peak == HS_LOAD_SESSIONS))
}

part_load() {
    [[ -x $FTP_LOAD ]] || { result FAIL load/ftp-load "$FTP_LOAD missing (cargo build --release --example ftp_load)"; return; }
    lab_fw_load alg || { result FAIL load/firewall "lab_fw_load alg failed"; return; }
    LAB_CMD_TIMEOUT=10 lab_gw nft -f - <<'EOF_NFT' || { result FAIL load/watch "the counting chain did not load"; return; }
table inet hs_watch {
	chain tried {
		type filter hook forward priority filter - 20; policy accept;
		ct state new tcp dport != 21 tcp flags & (fin|syn|rst|ack) == syn counter
	}
	chain admitted {
		type filter hook forward priority filter + 20; policy accept;
		ct state new tcp dport != 21 tcp flags & (fin|syn|rst|ack) == syn counter
	}
}
EOF_NFT
    # Logins through PAM's pam_unix check a yescrypt hash (tens of milliseconds of CPU
    # each): 1,000 logins at once would measure that. This part's vsftpd uses a PAM service
    # of its own that checks no password (removed again below).
    printf '%s\n' "# ftp-alg hostile-tests.sh load part (removed at its end): no password check" \
        "auth     required pam_permit.so" "account  required pam_permit.so" \
        "session  required pam_permit.so" >"$HS_PAM_SERVICE"
    local old_max=$LAB_PASV_MAX
    LAB_PASV_MAX=59999
    if LAB_VSFTPD_EXTRA=$'max_clients=0\nmax_per_ip=0\npam_service_name='"${HS_PAM_SERVICE##*/}" \
        lab_start_server vsftpd 2>/dev/null; then
        if daemon_or_fail load/daemon-start --max-expectations-per-client 4096; then
            SUITE_CASE_BUDGET=250 run_case "load/$HS_LOAD_SESSIONS-sessions-$HS_LOAD_TRANSFERS-transfers" case_load
            lab_alg_stop
        fi
    else
        result FAIL load/vsftpd "server did not start"
    fi
    LAB_PASV_MAX=$old_max
    lab_stop_server
    rm -f "$HS_PAM_SERVICE"
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
    part faults part_faults
    part load part_load

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
