#!/usr/bin/env bash
# ops/watch: `ftp-alg watch` against real transfers, and the FTPS fallback (docs/operations.md,
# docs/deploy.md#ftps). Run by tests/lab/ops-tests.sh (LAB_PREFIX set there); alone:
#
#   OPS_ONLY=watch bash tests/lab/ops-tests.sh
#
# Cases (one `ok|FAIL|n/a NAME (details)` line each; exit 1 if any failed):
#   watch-<mode>      the gateway is a plain router (no firewall, no helper); `watch --iface
#                     veth-cli --format json` runs in it while curl downloads over PASV and PORT
#                     (IPv4) and EPSV and EPRT (IPv6) from vsftpd: the file's sha256 is right,
#                     the data connection's SYN that tcpdump saw on veth-cli during the transfer
#                     goes to the address and port of the `expect` event watch printed (already
#                     flushed while watch still runs), and watch printed its `admit`
#   watch-summary     SIGINT ends watch with status 0 and the summary last (4 admitted)
#   watch-sigterm     in the FTPS part, SIGTERM does the same
#   watch-untouched   nft ruleset, conntrack expectations and ipsets of the gateway are the
#                     same after watch as before (empty)
#   ftps-blocked      vsftpd with TLS (openssl self-signed cert), the default-drop ftp-alg
#                     ruleset and daemon without the fallback: curl --ssl-reqd cannot open its
#                     data connection
#   ftps-fallback     the same with `rules --ftps-server 203.0.113.2 --ftps-server
#                     2001:db8:113::2 --ftps-passive-ports 50000-50100`: IPv4 (PASV) and IPv6
#                     (EPSV) downloads arrive intact
#   ftps-reported     those two sessions: watch printed exactly one `tls` event each (with the
#                     pointer to docs/deploy.md#ftps) and no `expect`; the daemon logged exactly
#                     one `encrypted control=` warning each
set -u

# shellcheck source=tests/lab/ops-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../ops-common.sh" watch

PY=$LAB_SYS_PYTHON
U=$LAB_FTP_USER P=$LAB_FTP_PASS
WATCH_PID=
suite_cleanup_hook() {
    watch_stop >/dev/null 2>&1
    lab_capture_stop >/dev/null 2>&1
}

# watch_start OUT: `ftp-alg watch` on the gateway's client-side veth, JSON to OUT; returns
# once it says it is listening.
watch_start() {
    timeout --kill-after=5 120 ip netns exec "$LAB_NS_GW" "$FTPALG_BIN" watch --iface "$LAB_GW_IF_CLI" \
        --format json >"$1" 2>"$1.err" </dev/null &
    WATCH_PID=$!
    _lab_wait_for 10 grep -q "listening on" "$1.err" || { cat "$1.err" >&2; return 1; }
}
# watch_stop [SIGNAL]: SIGINT (or SIGNAL) to watch itself (the child of `timeout`); sets
# WATCH_STATUS.
watch_stop() {
    [[ -n $WATCH_PID ]] || return 0
    local child signal=${1:-INT}
    child=$(cat "/proc/$WATCH_PID/task/$WATCH_PID/children" 2>/dev/null)
    kill -"$signal" "${child%% *}" 2>/dev/null || kill -"$signal" "$WATCH_PID"
    WATCH_STATUS=0
    wait "$WATCH_PID" || WATCH_STATUS=$?
    WATCH_PID=
}

# get URL OUT [CURL ARGS]: a download in the client namespace; prints its sha256.
get() {
    local url=$1 out=$2
    shift 2
    rm -f "$out"
    LAB_CMD_TIMEOUT=20 lab_cli curl -sS --max-time 15 -u "$U:$P" "$@" "$url" -o "$out" 2>"$out.err" || return 1
    sha256sum <"$out" | cut -d' ' -f1
}

# wire_syns PCAP FROM TO: "DST DPORT" of each data connection's SYN (not to port 21) that the
# capture holds between the epoch times FROM and TO.
wire_syns() {
    tshark -r "$1" -Y "tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.dstport != 21 && frame.time_epoch >= $2 && frame.time_epoch <= $3" \
        -T fields -e ip.dst -e ipv6.dst -e tcp.dstport 2>/dev/null | awk '{ print $1, $2 }'
}

# events JSONL TYPE FROM TO: the events of TYPE between FROM and TO, one per line, as
# "DST DPORT MODE TRIGGER" (expect), "DST DPORT" (admit) or "CLIENT" (tls).
events() {
    "$PY" - "$@" <<'EOF'
import json, sys
path, kind, lo, hi = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
for line in open(path):
    e = json.loads(line)
    if e["type"] != kind or not lo <= e.get("time", -1) <= hi:
        continue
    if kind == "expect":
        print(e["data"]["dst"], e["data"]["dport"], e["mode"], e["trigger"])
    elif kind == "admit":
        dst = e["conn"]["dst"]
        host, port = dst.rsplit(":", 1)
        print(host.strip("[]"), port)
    elif kind == "tls":
        ok = e.get("see") == "docs/deploy.md#ftps" and "cannot be opened" in e.get("detail", "")
        print(e["control"]["client"], "pointer" if ok else "no-pointer")
EOF
}

# ----------------------------------------------------------------- watch on plain FTP
state_of_gateway() {
    {
        LAB_CMD_TIMEOUT=10 lab_gw nft list ruleset
        echo "-- expect"
        LAB_CMD_TIMEOUT=10 lab_gw conntrack -L expect 2>/dev/null
        echo "-- ipset"
        LAB_CMD_TIMEOUT=10 lab_gw ipset list -n 2>/dev/null
    }
}

# one_transfer NAME URL MODE TRIGGER [CURL ARGS]
one_transfer() {
    local name=$1 url=$2 mode=$3 trigger=$4 t0 t1 sum want syns expects admits
    shift 4
    want=$(lab_content_sha256 file20k.bin)
    t0=$(now)
    sum=$(get "$url" "$WORK/$name.bin" "$@") || { result FAIL "$name" "curl: $(head -c 300 "$WORK/$name.bin.err")"; return; }
    sleep 0.3
    t1=$(now)
    expects=$(events "$WORK/watch.jsonl" expect "$t0" "$t1")
    admits=$(events "$WORK/watch.jsonl" admit "$t0" "$t1")
    TRANSFERS+=("$name $t0 $t1 $mode $trigger")
    if [[ $sum != "$want" ]]; then
        result FAIL "$name" "sha256 $sum, expected $want"
    elif [[ $(grep -c . <<<"$expects") != 1 ]]; then
        result FAIL "$name" "watch printed $(grep -c . <<<"$expects") expect event(s) during the transfer, not 1: $expects"
    elif [[ ${expects#* * } != "$mode $trigger" ]]; then
        result FAIL "$name" "expect event '$expects', wanted mode $mode trigger $trigger"
    elif [[ $admits != "${expects% * *}" ]]; then
        result FAIL "$name" "admit '$admits' does not match expect '$expects'"
    else
        # The wire is checked once the capture is flushed (check_wire).
        PENDING+=("$name|$t0|$t1|${expects% * *}")
        return
    fi
}

check_wire() {
    local item name t0 t1 want syns
    for item in "${PENDING[@]}"; do
        IFS='|' read -r name t0 t1 want <<<"$item"
        syns=$(wire_syns "$WORK/cli.pcap" "$t0" "$t1")
        if [[ $(grep -c . <<<"$syns") != 1 ]]; then
            result FAIL "$name" "tcpdump saw $(grep -c . <<<"$syns") data SYN(s) in the transfer, not 1: $syns"
        elif [[ $syns != "$want" ]]; then
            result FAIL "$name" "data SYN on the wire to $syns, watch announced $want"
        else
            result ok "$name" "sha256 ok; SYN on the wire to $syns = watch's expect and admit"
        fi
    done
}

part_watch() {
    local before after srv4=$LAB_SRV_V4 srv6="[$LAB_SRV_V6]" summary
    lab_start_server vsftpd >/dev/null 2>&1 || { result FAIL watch-setup "vsftpd did not start"; return; }
    before=$(state_of_gateway)
    lab_capture_start "$WORK/cli.pcap" "$LAB_GW_IF_CLI" || { result FAIL watch-setup "tcpdump"; return; }
    watch_start "$WORK/watch.jsonl" || { result FAIL watch-setup "watch did not start"; return; }
    TRANSFERS=() PENDING=()
    one_transfer watch-pasv "ftp://$srv4/pub/file20k.bin" passive 227 --disable-epsv
    one_transfer watch-port "ftp://$srv4/pub/file20k.bin" active PORT -P - --disable-eprt
    one_transfer watch-epsv "ftp://$srv6/pub/file20k.bin" passive 229 -g
    one_transfer watch-eprt "ftp://$srv6/pub/file20k.bin" active EPRT -g -P -
    watch_stop
    lab_capture_stop 2>/dev/null || true
    check_wire
    summary=$(tail -n 1 "$WORK/watch.jsonl")
    if [[ $WATCH_STATUS != 0 ]]; then
        result FAIL watch-summary "exit status $WATCH_STATUS: $(tail -n 3 "$WORK/watch.jsonl.err")"
    elif ! "$PY" -c 'import json,sys; s=json.loads(sys.argv[1]); sys.exit(not (s["type"]=="summary" and s["admitted"]==4 and s["expectations"]>=4 and s["packets"]>0))' "$summary"; then
        result FAIL watch-summary "last line: $summary"
    else
        result ok watch-summary "SIGINT: status 0, summary last: admitted 4, $(grep -o '"packets":[0-9]*' <<<"$summary" | head -1)"
    fi
    after=$(state_of_gateway)
    if [[ $before != "$after" ]]; then
        result FAIL watch-untouched "the gateway changed: $(diff <(echo "$before") <(echo "$after") | head -5 | tr '\n' ' ')"
    elif [[ -n $(grep -v '^--' <<<"$after" | grep -v 'flow entries' | grep .) ]]; then
        result FAIL watch-untouched "the gateway holds state: $after"
    else
        result ok watch-untouched "no nft table, no conntrack expectation, no ipset before or after"
    fi
}

# ----------------------------------------------------------------- FTPS
ftps_server() {
    local dir=$WORK/tls
    mkdir -p "$dir" && chmod 755 "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=lab-srv" \
        -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1 || return 1
    LAB_VSFTPD_EXTRA="ssl_enable=YES
rsa_cert_file=$dir/cert.pem
rsa_private_key_file=$dir/key.pem
force_local_logins_ssl=YES
force_local_data_ssl=YES
require_ssl_reuse=NO
ssl_ciphers=HIGH" lab_start_server vsftpd >/dev/null 2>&1
}

# ftps_firewall [FALLBACK ARGS]: the default-drop ftp-alg ruleset (iptables queueing), with
# the FTPS fallback when given its flags, and the daemon.
ftps_firewall() {
    rm -rf "$LAB_ALG_STATE"
    lab_fw_flush && "$FTPALG_BIN" rules --backend nft --queue-via iptables --queue "$LAB_ALG_QUEUE" "$@" >"$WORK/fw.sh" &&
        LAB_CMD_TIMEOUT=20 lab_gw sh "$WORK/fw.sh" && lab_alg_start >/dev/null 2>&1
}

part_ftps() {
    local want sum t0 t1 tls4 tls6 log n4 n6
    want=$(lab_content_sha256 file20k.bin)
    ftps_server || { result FAIL ftps-setup "vsftpd with TLS did not start"; return; }
    ftps_firewall || { result FAIL ftps-setup "ruleset or daemon"; return; }
    # -v: curl shows the decrypted control replies, so the test sees that the login and the
    # 227 worked and only the data connection failed.
    if sum=$(LAB_CMD_TIMEOUT=10 get "ftp://$LAB_SRV_V4/pub/file20k.bin" "$WORK/blocked.bin" -v --ssl-reqd -k --disable-epsv --connect-timeout 3 --max-time 6); then
        result FAIL ftps-blocked "the download worked without the fallback (sha256 $sum)"
    elif ! grep -q "^< 234" "$WORK/blocked.bin.err" || ! grep -q "^< 227" "$WORK/blocked.bin.err"; then
        result FAIL ftps-blocked "the control connection failed: $(grep -v '^[*{}]' "$WORK/blocked.bin.err" | tail -n 3 | tr '\n' ' ')"
    else
        result ok ftps-blocked "no fallback: TLS login and 227 worked, the data connection did not ($(grep '^curl:' "$WORK/blocked.bin.err" | tr '\n' ' '))"
    fi
    lab_alg_stop
    ftps_firewall --ftps-server "$LAB_SRV_V4" --ftps-server "$LAB_SRV_V6" \
        --ftps-passive-ports "$LAB_PASV_MIN-$LAB_PASV_MAX" || { result FAIL ftps-setup "fallback ruleset or daemon"; return; }
    watch_start "$WORK/ftps.jsonl" || { result FAIL ftps-setup "watch did not start"; return; }
    t0=$(now)
    local s4 s6
    s4=$(get "ftp://$LAB_SRV_V4/pub/file20k.bin" "$WORK/ftps4.bin" --ssl-reqd -k --disable-epsv) || s4="curl failed: $(head -c 200 "$WORK/ftps4.bin.err")"
    s6=$(get "ftp://[$LAB_SRV_V6]/pub/file20k.bin" "$WORK/ftps6.bin" -g --ssl-reqd -k) || s6="curl failed: $(head -c 200 "$WORK/ftps6.bin.err")"
    sleep 0.3
    t1=$(now)
    watch_stop TERM
    if [[ $WATCH_STATUS != 0 || $(tail -n 1 "$WORK/ftps.jsonl") != *'"type":"summary"'* ]]; then
        result FAIL watch-sigterm "status $WATCH_STATUS, last line: $(tail -n 1 "$WORK/ftps.jsonl" | head -c 200)"
    else
        result ok watch-sigterm "SIGTERM: status 0, summary last"
    fi
    if [[ $s4 == "$want" && $s6 == "$want" ]]; then
        result ok ftps-fallback "PASV over IPv4 and EPSV over IPv6 through the fallback: sha256 ok"
    else
        result FAIL ftps-fallback "IPv4: $s4; IPv6: $s6"
    fi
    tls4=$(events "$WORK/ftps.jsonl" tls "$t0" "$t1" | grep -c "^$LAB_CLI_V4:.* pointer$")
    tls6=$(events "$WORK/ftps.jsonl" tls "$t0" "$t1" | grep -c "^\[$LAB_CLI_V6\]:.* pointer$")
    log=$(lab_alg_log | grep -a "encrypted control=")
    n4=$(grep -c "control=$LAB_CLI_V4:[0-9]* -> $LAB_SRV_V4:21 see=docs/deploy.md#ftps" <<<"$log")
    n6=$(grep -c "control=\[$LAB_CLI_V6\]:[0-9]* -> \[$LAB_SRV_V6\]:21 see=docs/deploy.md#ftps" <<<"$log")
    local expects all
    expects=$(events "$WORK/ftps.jsonl" expect "$t0" "$t1" | grep -c .)
    all=$(grep -c '"type":"tls"' "$WORK/ftps.jsonl")
    if [[ $tls4 == 1 && $tls6 == 1 && $all == 2 && $n4 == 1 && $n6 == 1 && $expects == 0 ]]; then
        result ok ftps-reported "watch: one tls event per session with the pointer, no expect; daemon: one 'encrypted' warning per session"
    else
        result FAIL ftps-reported "watch tls v4=$tls4 v6=$tls6 (all $all), expect=$expects; daemon v4=$n4 v6=$n6: $log"
    fi
}

# ----------------------------------------------------------------- main
t0=$(now)
# vsftpd, curl, openssl, tcpdump, tshark, conntrack (idempotent; make test's gateway suite
# has usually installed them already).
lab_install_deps >/dev/null 2>&1 || { result FAIL lab "lab_install_deps failed"; exit 1; }
lab_up >/dev/null 2>&1 || { result FAIL lab "lab_up failed"; exit 1; }
SUITE_PARTS="watch ftps"
part watch part_watch
part ftps part_ftps
suite_summary ops/watch "$t0"
((N_FAIL == 0))
