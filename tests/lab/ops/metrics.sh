#!/usr/bin/env bash
# The metrics endpoint and the JSON event log, live (docs/operations.md, "Monitoring" and
# "The event log"). The lab's default-drop gateway runs `ftp-alg run --metrics
# 127.0.0.1:9721 --log-format json`; curl makes PASV and PORT downloads and a Python client
# pauses between its PASV and its data connection; the endpoint is scraped with curl inside
# the gateway namespace. Every figure is checked against the kernel: the elements the kernel
# announced adding to the set (`nft monitor`) and the one seen in `nft list set` during the
# pause, the queue's own counters (/proc/net/netfilter/nfnetlink_queue), the bytes that
# arrived (SHA-256), and the install events of the log.
#
#   OPS_ONLY=metrics bash tests/lab/ops-tests.sh        # or: bash tests/lab/ops/metrics.sh
#
# Output: `ok|FAIL|n/a NAME (details)` per case; exit status 1 if any case failed. The lab
# (namespaces ${LAB_PREFIX}-*) is torn down on exit. About 30 s.
set -u

# shellcheck source=tests/lab/ops-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../ops-common.sh" metrics
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

PY=$LAB_SYS_PYTHON
CHECK="$HERE/metrics_check.py"
U=$LAB_FTP_USER P=$LAB_FTP_PASS
ADDR=127.0.0.1:9721
MON_PID=
chmod 755 "$WORK"
suite_cleanup_hook() {
    [[ -n $MON_PID ]] && kill "$MON_PID" 2>/dev/null
    lab_alg_stop
}

# check NAME DETAIL CONDITION...: ok when the condition (a command) succeeds.
check() {
    local name=$1 detail=$2
    shift 2
    if "$@"; then result ok "$name" "$detail"; else result FAIL "$name" "$detail"; fi
}

scrape() { LAB_CMD_TIMEOUT=10 lab_gw curl -sS -m 5 "http://$ADDR/metrics"; }
# metric TEXT NAME [LABEL=VALUE...]: one sample's value ("absent" if none).
metric() {
    local text=$1
    shift
    "$PY" "$CHECK" get "$@" <<<"$text"
}
m0() { metric "$1" "$2" queue=0 "${@:3}"; }
# After traffic: a worker publishes about once a second.
settle() { sleep 1.5; }

nfq() { LAB_CMD_TIMEOUT=5 lab_gw cat /proc/net/netfilter/nfnetlink_queue | awk -v q="$LAB_ALG_QUEUE" '$1 == q'; }
got_sha() { [[ -f $1 ]] && sha_of "$1"; }
curl_get() {
    local mode=$1 out=$2 opts=()
    case "$mode" in
    PASV) opts=(--disable-epsv) ;;
    PORT) opts=(-P - --disable-eprt) ;;
    esac
    rm -f "$out"
    LAB_CMD_TIMEOUT=20 lab_cli curl -sS --connect-timeout 3 -m 10 -u "$U:$P" "${opts[@]}" \
        -o "$out" "ftp://$LAB_SRV_V4/pub/file20k.bin" 2>>"$WORK/curl.err"
}

# ------------------------------------------------------------------ cases
case_format() {
    local text head verdict other
    text=$(scrape) || { result FAIL metrics/format "scrape failed"; return; }
    verdict=$("$PY" "$CHECK" expo <<<"$text")
    head=$(LAB_CMD_TIMEOUT=10 lab_gw curl -sS -m 5 -o /dev/null -D - "http://$ADDR/metrics" | tr -d '\r' | grep -i '^content-type:')
    other=$(LAB_CMD_TIMEOUT=10 lab_gw curl -s -m 5 -o /dev/null -w '%{http_code}' "http://$ADDR/other")
    check metrics/format "$verdict; $head; /other: $other" \
        test "${verdict%% *}" = ok -a "$other" = 404 -a "${head#*: }" = "text/plain; version=0.0.4; charset=utf-8"
}

case_transfers() {
    local s0 s1 mark pasv port elems want out i adds installed events pause_ok=0
    s0=$(scrape) || { result FAIL metrics/transfers "scrape failed"; return; }
    mark=$(log_mark)
    # What the kernel adds to the set, as it adds it.
    ip netns exec "$LAB_NS_GW" timeout 60 nft monitor new elements >"$WORK/monitor.out" 2>&1 &
    MON_PID=$!
    sleep 0.5
    curl_get PASV "$WORK/pasv.bin"
    curl_get PORT "$WORK/port.bin"
    # A PASV whose data connection waits 3 s: its element must be in the set meanwhile.
    LAB_CMD_TIMEOUT=30 lab_cli "$PY" "$CHECK" ftp-pause "$LAB_SRV_V4" "$U" "$P" pub/file20k.bin 3 >"$WORK/pause.out" 2>&1 &
    local job=$!
    for i in $(seq 1 30); do
        grep -q '^port ' "$WORK/pause.out" && break
        sleep 0.1
    done
    port=$(awk '/^port / { print $2 }' "$WORK/pause.out")
    sleep 0.3
    elems=$(set_elems expect4)
    # A publish later, the endpoint's gauge shows the live pinhole too.
    sleep 1.2
    local during
    during=$(m0 "$(scrape)" ftpalg_expectations)
    wait "$job"
    settle
    kill "$MON_PID" 2>/dev/null
    wait "$MON_PID" 2>/dev/null
    MON_PID=
    s1=$(scrape) || { result FAIL metrics/transfers "scrape after failed"; return; }
    want=$(want_sha file20k.bin)
    out="pasv sha $( [[ $(got_sha "$WORK/pasv.bin") == "$want" ]] && echo ok || echo BAD), port sha $( [[ $(got_sha "$WORK/port.bin") == "$want" ]] && echo ok || echo BAD), paused: $(tail -n 1 "$WORK/pause.out" | cut -c1-20)"
    [[ $(got_sha "$WORK/pasv.bin") == "$want" && $(got_sha "$WORK/port.bin") == "$want" ]] &&
        grep -q "^got 20480 $want" "$WORK/pause.out" && [[ -n $port && $elems == *"$LAB_CLI_V4 $LAB_SRV_V4 $port"* && $during == 1 ]] && pause_ok=1
    adds=$(grep -c 'add element inet ftpalg expect4' "$WORK/monitor.out")
    log_since "$mark" >"$WORK/case.log"
    events=$("$PY" "$CHECK" events "$WORK/case.log" expect | grep -c .)
    installed=$(($(m0 "$s1" ftpalg_expectations_installed_total) - $(m0 "$s0" ftpalg_expectations_installed_total)))
    check metrics/transfers "$out; set during the pause: ${elems:-empty} (port ${port:-?}), ftpalg_expectations then: $during; installed +$installed, install events $events, kernel adds $adds" \
        test "$pause_ok" = 1 -a "$installed" = 3 -a "$events" = 3 -a "$adds" = 3
    # Per mode: two passive (curl, Python), one active.
    local passive active
    passive=$("$PY" "$CHECK" events "$WORK/case.log" expect | grep -c "^$LAB_CLI_V4 $LAB_SRV_V4 ")
    active=$("$PY" "$CHECK" events "$WORK/case.log" expect | grep -c "^$LAB_SRV_V4 $LAB_CLI_V4 ")
    check metrics/transfers-modes "passive $passive, active $active" test "$passive" = 2 -a "$active" = 1
}

case_agree_with_queue() {
    local text line packets accepted dropped timed seq qdrop udrop qfull
    text=$(scrape) || { result FAIL metrics/queue "scrape failed"; return; }
    line=$(nfq)
    seq=$(awk '{ print $8 }' <<<"$line") qdrop=$(awk '{ print $6 }' <<<"$line") udrop=$(awk '{ print $7 }' <<<"$line")
    packets=$(m0 "$text" ftpalg_packets_total)
    accepted=$(m0 "$text" ftpalg_verdicts_total verdict=accept)
    dropped=$(m0 "$text" ftpalg_verdicts_total verdict=drop)
    timed=$(m0 "$text" ftpalg_verdict_latency_seconds_count)
    qfull=$(m0 "$text" ftpalg_queue_full_drops_total)
    check metrics/queue "kernel: queued $seq, queue_dropped $qdrop, user_dropped $udrop; metrics: packets $packets, accept $accepted, drop $dropped, verdicts timed $timed, queue_full_drops $qfull" \
        test "$packets" = "$seq" -a "$((accepted + dropped))" = "$packets" -a "$timed" = "$packets" -a "$qfull" = "$qdrop" -a "$packets" -gt 20
    local gauge elems
    gauge=$(m0 "$text" ftpalg_expectations)
    elems=$(set_elems expect4 | grep -c .)
    check metrics/live-gauge "ftpalg_expectations $gauge, expect4 holds $elems" test "$gauge" = "$elems"
}

case_json_log() {
    local verdict
    lab_alg_log >"$WORK/all.log"
    verdict=$("$PY" "$CHECK" jsonl "$WORK/all.log")
    check metrics/json-log "$verdict" test "${verdict%% *}" = ok
    # The fields replay writes for an expect record, and the queue.
    local fields
    fields=$("$PY" -c 'import json, sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    if o["type"] == "expect":
        print(",".join(sorted(o))); break' "$WORK/all.log")
    check metrics/json-fields "$fields" test "$fields" = "control,data,lifetime,mode,queue,time,trigger,type"
}

case_stray_client() {
    local t0 ok=0 i text holders
    # Four clients connect to the endpoint and send nothing; one trickles a byte a second.
    LAB_CMD_TIMEOUT=20 lab_gw "$PY" -c 'import socket, sys, time
ss = [socket.create_connection(("127.0.0.1", 9721)) for _ in range(4)]
t = socket.create_connection(("127.0.0.1", 9721))
print("holding", flush=True)
start = time.time()
closed = None
for b in b"GET /metrics HTTP/1.1\r\nX: yyyyyyyyyy":
    try:
        t.send(bytes([b]))
    except OSError:
        break
    time.sleep(1)
    if time.time() - start > 8:
        break
for s in ss:
    s.settimeout(5)
    try:
        s.recv(100)
    except OSError:
        pass
print("server let go after %.1f s" % (time.time() - start), flush=True)' >"$WORK/holders.out" 2>&1 &
    local job=$!
    _lab_wait_for 5 grep -q holding "$WORK/holders.out"
    t0=$SECONDS
    for i in 1 2 3; do
        text=$(LAB_CMD_TIMEOUT=10 lab_gw curl -sS -m 3 "http://$ADDR/metrics") && [[ $text == *ftpalg_packets_total* ]] && ok=$((ok + 1))
        sleep 0.5
    done
    # Traffic still flows meanwhile.
    curl_get PASV "$WORK/during.bin"
    local during
    [[ $(got_sha "$WORK/during.bin") == "$(lab_content_sha256 file20k.bin)" ]] && during=ok || during=failed
    wait "$job"
    holders=$(tail -n 1 "$WORK/holders.out")
    check metrics/stray-clients "$ok of 3 scrapes answered while 5 clients held connections ($((SECONDS - t0)) s); transfer meanwhile: $during; $holders" \
        test "$ok" = 3 -a "$during" = ok
}

# Two queues, two workers: the exposition has both, and their packets add up to what the
# kernel queued on both. --queue-balance hashes the address pair, so the downloads come from
# three pairs (client IPv4, client IPv6, the other host): which queue each lands on depends
# on the kernel's hash seed, so only the sums are asserted.
case_two_queues() {
    local text i q seq=0 packets=0 per=() kq mq
    LAB_ALG_QUEUE=0-1
    if ! lab_fw_load alg || ! lab_alg_start --metrics "$ADDR" --log-format json; then
        result FAIL metrics/two-queues "the daemon did not start on queues 0-1"
        LAB_ALG_QUEUE=0
        return
    fi
    curl_get PASV "$WORK/q1.bin"
    LAB_CMD_TIMEOUT=20 lab_cli curl -sS --connect-timeout 3 -m 10 -u "$U:$P" -o "$WORK/q2.bin" \
        "ftp://[$LAB_SRV_V6]/pub/file20k.bin" 2>>"$WORK/curl.err"
    LAB_CMD_TIMEOUT=20 lab_oth curl -sS --connect-timeout 3 -m 10 -u "$U:$P" --disable-epsv \
        -o "$WORK/q3.bin" "ftp://$LAB_SRV_V4/pub/file20k.bin" 2>>"$WORK/curl.err"
    settle
    text=$(scrape) || { result FAIL metrics/two-queues "scrape failed"; return; }
    for q in 0 1; do
        kq=$(LAB_CMD_TIMEOUT=5 lab_gw cat /proc/net/netfilter/nfnetlink_queue | awk -v q="$q" '$1 == q { print $8 }')
        mq=$(metric "$text" ftpalg_packets_total queue="$q")
        per+=("queue $q: kernel ${kq:-?}, metrics $mq")
        seq=$((seq + ${kq:-0}))
        [[ $mq == absent ]] || packets=$((packets + mq))
    done
    local installed
    installed=$("$PY" "$CHECK" sum ftpalg_expectations_installed_total <<<"$text")
    local arrived=0
    for i in 1 2 3; do [[ $(got_sha "$WORK/q$i.bin") == "$(lab_content_sha256 file20k.bin)" ]] && arrived=$((arrived + 1)); done
    check metrics/two-queues "${per[*]}; installed over both: $installed; $arrived of 3 downloads intact" \
        test "$packets" = "$seq" -a "$installed" = 3 -a "$arrived" = 3 -a "$(metric "$text" ftpalg_packets_total queue=1)" != absent -a "$(metric "$text" ftpalg_packets_total queue=0)" != absent
    lab_alg_stop
    LAB_ALG_QUEUE=0
}

# ------------------------------------------------------------------ main
part_metrics() {
    if lab_start_server vsftpd && lab_fw_load alg && daemon_or_fail metrics/start --metrics "$ADDR" --log-format json; then
        case_format
        case_transfers
        case_agree_with_queue
        case_stray_client
        case_json_log
        lab_alg_stop
        case_two_queues
    else
        result FAIL metrics/start "vsftpd or the alg ruleset did not start"
    fi
}

t0=$(now)
[[ -x $FTPALG_BIN ]] || { result FAIL metrics/binary "$FTPALG_BIN missing (cargo build --release)"; exit 1; }
# vsftpd, curl, nftables, iptables (idempotent; make test's gateway suite has usually
# installed them already).
lab_install_deps >/dev/null 2>&1 || { result FAIL lab "lab_install_deps failed"; exit 1; }
lab_up >/dev/null 2>"$WORK/lab-up.err" || { result FAIL lab "lab_up failed: $(tail -n 3 "$WORK/lab-up.err" | tr '\n' ' ')"; exit 1; }
exec 3>&2 2>>"$WORK/lab.log"
SUITE_PARTS="metrics"
part metrics part_metrics
exec 2>&3 3>&-
suite_summary ops/metrics "$t0"
if ((N_FAIL > 0)); then
    echo "== ftp-alg log (last 20 lines):"
    lab_alg_log | tail -n 20
fi
((N_FAIL == 0))
