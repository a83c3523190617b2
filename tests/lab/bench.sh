#!/usr/bin/env bash
# ftp-alg benchmarks: `make bench` (full, writes docs/benchmarks.md) and `make bench-quick`
# (tiny sizes, a few seconds per part, prints the tables; run by `make test` so the harness
# cannot rot). Every figure is measured side by side with its baseline in the same run and
# reported as a ratio; nothing here asserts a time.
#
#   replay   gen_capture's capture: `ftp-alg replay --format json` vs the read floor
#            (`tcpdump -r F -w /dev/null`) vs tshark extracting the same fields; RSS of each;
#            replay RSS at two capture sizes. Checks admitted == transfers (the generator's).
#   scale    flow_memory --curve: ns per packet and RSS as the flow table grows.
#   live     (root) a namespace lab (LAB_PREFIX=ftpalg-bench) with vsftpd and ftp_load:
#            control path (announce round trip p50/p99, sessions/s, transfers/s) through an
#            open gateway, the kernel helper and ftp-alg; daemon CPU per packet vs the
#            nfq_accept loop; pinhole latency (nft, ipset) and data SYNs that arrived before
#            their element; a bulk transfer; 1 vs 2 queues.
#
# BENCH_PARTS="replay scale live" chooses parts; BENCH_QUICK=1 the tiny sizes; BENCH_OUT the
# Markdown file (default docs/benchmarks.md in full mode, none in quick mode);
# BENCH_BASELINE_BIN another ftp-alg binary whose replay is timed beside (before/after).
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
QUICK=${BENCH_QUICK:-0}
PARTS=${BENCH_PARTS:-replay scale live}
if ((QUICK)); then OUT=${BENCH_OUT:-}; else OUT=${BENCH_OUT:-docs/benchmarks.md}; fi
BIN=$REPO/target/release/ftp-alg
EX=$REPO/target/release/examples
WORK=$(mktemp -d /tmp/ftp-alg-bench.XXXXXX)
REPORT=$WORK/report.md
trap 'rm -rf "$WORK"' EXIT

log() { printf '[bench] %s\n' "$*" >&2; }
# field NAME TEXT: the value of NAME=VALUE in TEXT.
field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p" | head -n1; }
# ratio A B: A/B with 2 decimals ("n/a" if either is missing or B is 0).
ratio() { awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
# median of the arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
md() { printf '%s\n' "$*" >>"$REPORT"; }
# timed CMD...: run, print "SECONDS MAXRSS_KB" (GNU time), output discarded.
timed() { /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >/dev/null 2>"$WORK/stderr" || { log "failed: $*"; tail -3 "$WORK/stderr" >&2; }; tail -n1 "$WORK/time"; }

for need in "$BIN" "$EX/gen_capture" "$EX/flow_memory" "$EX/ftp_load" "$EX/nfq_accept"; do
    [[ -x $need ]] || { log "missing $need (cargo build --release --examples)"; exit 1; }
done

md "# Benchmarks"
md ""
md "Written by \`make bench\` (\`tests/lab/bench.sh\`) on $(date -u +%Y-%m-%d), $(nproc) CPUs, Linux $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the start. Every figure has its baseline measured in the same run; ratios are what to compare across machines. The machine is shared (other builds and labs run beside it), so single figures are noisy: repeated ones are medians."
md ""

# ------------------------------------------------------------------ replay
part_replay() {
    local big small reps
    if ((QUICK)); then big=300 small=75 reps=1; else big=14000 small=3500 reps=3; fi
    log "replay: generating captures ($big and $small sessions)"
    local gen_big gen_small
    gen_big=$("$EX/gen_capture" --sessions "$big" --out "$WORK/big.pcap") || return 1
    gen_small=$("$EX/gen_capture" --sessions "$small" --out "$WORK/small.pcap") || return 1
    local packets transfers
    packets=$(field packets "$gen_big") transfers=$(field transfers "$gen_big")
    local admitted
    admitted=$("$BIN" replay --format json "$WORK/big.pcap" | tail -n1 | sed -n 's/.*"admitted":\([0-9]*\).*/\1/p')
    if [[ $admitted != "$transfers" ]]; then
        log "replay: admitted $admitted data connections, the generator made $transfers"
        md "**replay check failed: admitted $admitted of $transfers generated transfers**"
        return 1
    fi
    local t_floor=() t_replay=() r_floor=() r_replay=() t_text=() i out
    for ((i = 0; i < reps; i++)); do
        out=$(timed tcpdump -r "$WORK/big.pcap" -w /dev/null); t_floor+=("${out% *}"); r_floor+=("${out#* }")
        out=$(timed "$BIN" replay --format json "$WORK/big.pcap"); t_replay+=("${out% *}"); r_replay+=("${out#* }")
        out=$(timed "$BIN" replay --format text "$WORK/big.pcap"); t_text+=("${out% *}")
    done
    local floor replay text rss_floor rss_replay rss_small tshark="" rss_tshark=""
    floor=$(median "${t_floor[@]}") replay=$(median "${t_replay[@]}") text=$(median "${t_text[@]}")
    rss_floor=$(median "${r_floor[@]}") rss_replay=$(median "${r_replay[@]}")
    out=$(timed "$BIN" replay --format json "$WORK/small.pcap"); rss_small=${out#* }
    if command -v tshark >/dev/null; then
        out=$(timed tshark -n -r "$WORK/big.pcap" -Y 'ftp.request.command == "PORT" || ftp.request.command == "EPRT" || ftp.response.code == 227 || ftp.response.code == 229' \
            -T fields -e frame.number -e ftp.request.command -e ftp.request.arg -e ftp.response.code -e ftp.response.arg)
        tshark=${out% *} rss_tshark=${out#* }
    fi
    # Before/after: another build of ftp-alg (BENCH_BASELINE_BIN, e.g. the commit before an
    # optimization) timed on the same capture in the same run.
    local t_base=() r_base=() base="" rss_base=""
    if [[ -x ${BENCH_BASELINE_BIN:-} ]]; then
        for ((i = 0; i < reps; i++)); do
            out=$(timed "$BENCH_BASELINE_BIN" replay --format json "$WORK/big.pcap"); t_base+=("${out% *}"); r_base+=("${out#* }")
        done
        base=$(median "${t_base[@]}") rss_base=$(median "${r_base[@]}")
    fi
    # Instructions per packet (valgrind's count: independent of the machine's load).
    local ir_floor="" ir_replay="" ir_base="" small_packets
    small_packets=$(field packets "$gen_small")
    if command -v valgrind >/dev/null; then
        ir_floor=$(instructions tcpdump -r "$WORK/small.pcap" -w /dev/null)
        ir_replay=$(instructions "$BIN" replay --format json "$WORK/small.pcap")
        if [[ -n $base ]]; then
            ir_base=$(instructions "$BENCH_BASELINE_BIN" replay --format json "$WORK/small.pcap")
        fi
    fi
    local mpps
    mpps=$(awk -v p="$packets" -v t="$replay" 'BEGIN { if (t > 0) printf "%.2f", p / t / 1e6; else print "n/a" }')
    md "## Replay"
    md ""
    md "\`gen_capture --sessions $big\`: $packets packets, $(field bytes "$gen_big") bytes, $transfers transfers (PASV $(field pasv "$gen_big"), EPSV $(field epsv "$gen_big"), PORT $(field port "$gen_big"), EPRT $(field eprt "$gen_big")), $(field control_packets "$gen_big") control packets. Replay admitted all $admitted. Median of $reps."
    md ""
    md "| | time (s) | × the read floor | RSS (MB) |"
    md "| --- | --- | --- | --- |"
    md "| \`tcpdump -r big.pcap -w /dev/null\` (the floor) | $floor | 1.00 | $((rss_floor / 1024)) |"
    md "| \`ftp-alg replay --format json\` | $replay | $(ratio "$replay" "$floor") | $((rss_replay / 1024)) |"
    md "| \`ftp-alg replay --format text\` | $text | $(ratio "$text" "$floor") | |"
    if [[ -n $base ]]; then
        md "| baseline \`ftp-alg replay --format json\` (${BENCH_BASELINE_NAME:-BENCH_BASELINE_BIN}) | $base | $(ratio "$base" "$floor") | $((rss_base / 1024)) |"
    fi
    if [[ -n $tshark ]]; then
        md "| tshark, the same PORT/EPRT/227/229 fields | $tshark | $(ratio "$tshark" "$floor") | $((rss_tshark / 1024)) |"
    fi
    md ""
    if [[ -n $ir_replay ]]; then
        md "Instructions per packet (valgrind \`--tool=cachegrind\`, the $small-session capture, $small_packets packets): floor $((ir_floor / small_packets)), replay $((ir_replay / small_packets)) ($(ratio "$ir_replay" "$ir_floor")× the floor)${ir_base:+, baseline $((ir_base / small_packets)) ($(ratio "$ir_base" "$ir_floor")×)}."
        md ""
    fi
    md "Replay: $mpps M packets/s. RSS with $small sessions: $((rss_small / 1024)) MB; with $big: $((rss_replay / 1024)) MB (ratio $(ratio "$rss_replay" "$rss_small") for $((big / small))× the capture). Target: ≤ 2× the floor, RSS ≤ 16 MB and independent of the capture's size."
    md ""
}

# instructions CMD...: the instructions CMD executes (valgrind cachegrind, no cache model).
instructions() {
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$@" 2>&1 >/dev/null |
        sed -n 's/.*I *refs: *//p' | tr -d ,
}

# ------------------------------------------------------------------- scale
part_scale() {
    local n
    if ((QUICK)); then n=20000; else n=1000000; fi
    log "scale: flow_memory $n --curve"
    local out
    out=$("$EX/flow_memory" "$n" --curve) || return 1
    md "## Scale"
    md ""
    md "\`flow_memory $n --curve\`: idle logged-in sessions fed to one engine whose table holds them all; cost per packet of each tenth, and RSS."
    md ""
    md "| flows tracked | ns per packet | RSS (MB) |"
    md "| --- | --- | --- |"
    local first="" line
    while read -r line; do
        [[ $line == curve* ]] || continue
        local ns
        ns=$(field ns_per_packet "$line")
        first=${first:-$ns}
        md "| $(field tracked "$line") | $ns | $(($(field rss "$line") / 1048576)) |"
    done <<<"$out"
    local last
    last=$(tail -n1 <<<"$out")
    md ""
    md "Bytes per flow: $(field bytes_per_flow "$last"); last tenth / first tenth cost per packet: $(ratio "$ns" "$first") (no cliff: near 1)."
    md ""
}

# -------------------------------------------------------------------- live
part_live() {
    if [[ $(id -u) -ne 0 ]]; then
        log "live: skipped (needs root: network namespaces, nftables)"
        md "## Live gateway"; md ""; md "Skipped: not root."; md ""
        return 0
    fi
    export LAB_PREFIX=${BENCH_LAB_PREFIX:-ftpalg-bench} LAB_PASV_MIN=40000 LAB_PASV_MAX=60000
    export LAB_VSFTPD_EXTRA=$'max_clients=0\nmax_per_ip=0'
    export FTPALG_BIN=$BIN LAB_ALG_RUST_LOG=${LAB_ALG_RUST_LOG:-info}
    # shellcheck source=tests/lab/lab.sh
    source "$REPO/tests/lab/lab.sh"
    trap 'lab_alg_stop; lab_down; rm -rf "$WORK"' EXIT
    lab_up && lab_start_server vsftpd || { log "live: the lab did not come up"; return 1; }
    local s_lat s_thr c_thr xfers bulk_mb reps
    if ((QUICK)); then s_lat=5 s_thr=8 c_thr=4 xfers=2 bulk_mb=4 reps=1 ROUNDS=1; else s_lat=100 s_thr=240 c_thr=8 xfers=4 bulk_mb=256 reps=3 ROUNDS=${BENCH_ROUNDS:-5}; fi
    local load="$EX/ftp_load --server $LAB_SRV_V4"
    local lat_load="$load --sessions $s_lat --concurrency 1 --transfers 8 --modes pasv,epsv,port,eprt --no-data"
    declare -gA LAT THR CPU ROUND
    # Throughput first: announcements without data leave expectations behind (the kernel
    # helper's live 5 minutes and make its later 227s for a clashing port fail), and every
    # gateway starts from an empty conntrack table.
    local fw
    # The same gateways alternated in rounds, as for the control path below; SCHED_FIFO once.
    local thr_rounds=$((QUICK ? 1 : ${BENCH_THR_ROUNDS:-3})) round out syns early
    EARLY="0 0"
    for ((round = 0; round < thr_rounds; round++)); do
        log "live: throughput round $((round + 1)) of $thr_rounds"
        for fw in open kernel alg; do
            fw_up "$fw" || return 1
            out=$(lab_cli $load --sessions "$s_thr" --concurrency "$c_thr" --transfers "$xfers" --modes pasv,epsv,port,eprt)
            ROUND[$fw.sps.$round]=$(field sessions_per_s "$out")
            ROUND[$fw.tps.$round]=$(field transfers_per_s "$out")
            ROUND[$fw.xfail.$round]=$(field transfers_failed "$out")
            ROUND[$fw.tp50.$round]=$(field announce_p50_us "$out")
            ROUND[$fw.tp99.$round]=$(field announce_p99_us "$out")
            if [[ $fw == alg ]]; then
                read -r syns early <<<"$(early_syns)"
                local s0 e0
                read -r s0 e0 <<<"$EARLY"
                EARLY="$((s0 + ${syns:-0})) $((e0 + ${early:-0}))"
            fi
            fw_down
        done
    done
    fw_up alg-fifo || return 1
    THR[alg-fifo]=$(lab_cli $load --sessions "$s_thr" --concurrency "$c_thr" --transfers "$xfers" --modes pasv,epsv,port,eprt)
    LAT[alg-fifo]=$(lab_cli $lat_load)
    fw_down
    # The control path and the daemon's CPU: announce round trips one session at a time,
    # ROUNDS rounds with the gateways alternated, so that a slow minute of a shared machine
    # falls on every gateway alike; each figure is the median over the rounds, and each
    # difference or ratio is taken within a round, then its median.
    local round
    for ((round = 0; round < ROUNDS; round++)); do
        log "live: control-path round $((round + 1)) of $ROUNDS"
        for fw in open kernel accept alg alg-ipset; do
            latency_round "$fw" "$round" "$lat_load" || return 1
        done
    done
    # Two queues.
    LAB_ALG_QUEUE=0-1 lab_fw_load alg && LAB_ALG_QUEUE=0-1 lab_alg_start || return 1
    THR[alg2]=$(lab_cli $load --sessions "$s_thr" --concurrency "$c_thr" --transfers "$xfers" --modes pasv,epsv,port,eprt)
    LAT[alg2]=$(lab_cli $lat_load)
    fw_down
    # Bulk data: one large RETR, the modes alternated, median of reps.
    dd if=/dev/zero of="$LAB_FTP_ROOT/pub/bulk.bin" bs=1M count="$bulk_mb" status=none
    declare -gA BULK
    local i mb=()
    for fw in open kernel alg; do BULK[$fw]=""; done
    for ((i = 0; i < reps; i++)); do
        for fw in open kernel alg; do
            fw_up "$fw" || return 1
            BULK[$fw]+=" $(field data_mb_per_s "$(LAB_CMD_TIMEOUT=300 lab_cli $load --sessions 1 --concurrency 1 --transfers 1 --modes pasv --file /pub/bulk.bin --timeout-ms 60000)")"
            fw_down
        done
    done
    rm -f "$LAB_FTP_ROOT/pub/bulk.bin"
    write_live "$bulk_mb" "$reps"
}

# latency_round FW ROUND LOAD: one run of the no-data load through FW; files its p50 and p99
# (ROUND[FW.p50.R], ROUND[FW.p99.R]), for accept and alg the CPU per packet
# (ROUND[FW.cpu.R]), and for the daemons their pinhole latency (ROUND[FW.pin.R]).
latency_round() {
    local fw=$1 r=$2 lat_load=$3 out
    case $fw in
    open | kernel)
        fw_up "$fw" || return 1
        out=$(lab_cli $lat_load)
        ;;
    accept)
        # The accept-all loop in the daemon's place: the alg ruleset, nothing installed.
        lab_fw_load alg || return 1
        LAB_CMD_TIMEOUT=600 ip netns exec "$LAB_NS_GW" "$EX/nfq_accept" 0 >"$WORK/nfq.out" 2>&1 &
        local nfq=$! cpu
        _lab_wait_for 5 grep -q ready "$WORK/nfq.out"
        cpu=$(cpu_of_daemon "$nfq" lab_cli $lat_load)
        kill -TERM "$nfq"; wait "$nfq" 2>/dev/null
        out=$(cat "$WORK/cpu_load.out")
        ROUND[$fw.cpu.$r]=$(per_packet "$cpu" "$(field packets "$(grep packets= "$WORK/nfq.out")")")
        ;;
    alg | alg-ipset)
        if [[ $fw == alg ]]; then
            fw_up alg || return 1
        else
            lab_fw_load alg-ipset && lab_alg_start --backend ipset || return 1
        fi
        local before cpu stats
        before=$(field packets "$(lab_alg_stats)")
        cpu=$(cpu_of_daemon "$(lab_alg_pid)" lab_cli $lat_load)
        out=$(cat "$WORK/cpu_load.out")
        stats=$(lab_alg_stats)
        ROUND[$fw.cpu.$r]=$(per_packet "$cpu" "$(($(field packets "$stats") - before))")
        ROUND[$fw.pin.$r]="$(field pinhole_us_p50 "$stats") $(field pinhole_us_p99 "$stats") $(field pinholes_timed "$stats")"
        ;;
    esac
    ROUND[$fw.p50.$r]=$(field announce_p50_us "$out")
    ROUND[$fw.p99.$r]=$(field announce_p99_us "$out")
    ROUND[$fw.failed.$r]=$(field announce_failed "$out")
    fw_down
}
# per_packet MICROS PACKETS: µs per packet, 1 decimal.
per_packet() { awk -v c="$1" -v p="${2:-0}" 'BEGIN { if (p > 0) printf "%.1f", c / p; else print "n/a" }'; }
# rounds_of KEY: ROUND[KEY.r] for each round, one per line.
rounds_of() { local r; for ((r = 0; ${ROUND[$1.$r]+1}+0; r++)); do printf '%s\n' "${ROUND[$1.$r]}"; done; }
# diffs A B KIND: per round, ROUND[A.KIND.r] - ROUND[B.KIND.r].
diffs() { local r; for ((r = 0; ${ROUND[$1.$3.$r]+1}+0; r++)); do echo $((${ROUND[$1.$3.$r]:-0} - ${ROUND[$2.$3.$r]:-0})); done; }
# ratios A B KIND: per round, ROUND[A.KIND.r] / ROUND[B.KIND.r].
ratios() { local r; for ((r = 0; ${ROUND[$1.$3.$r]+1}+0; r++)); do ratio "${ROUND[$1.$3.$r]}" "${ROUND[$2.$3.$r]:-}"; echo; done; }
# spread VALUES...: "median (min-max)".
spread() { local sorted v; sorted=$(printf '%s\n' "$@" | sort -g | tr '\n' ' '); read -ra v <<<"$sorted"; printf '%s (%s to %s)' "$(median "$@")" "${v[0]}" "${v[-1]}"; }

fw_up() {
    case $1 in
    open) lab_fw_flush ;;
    kernel) lab_fw_load kernel ;;
    alg) lab_fw_load alg && early_chain && lab_alg_start ;;
    # The daemon's threads at real-time priority (what `chrt -f 20` or systemd's
    # CPUSchedulingPolicy=fifo give; docs/deploy.md): a woken worker runs at once.
    alg-fifo) lab_fw_load alg && lab_alg_start && chrt -f -a -p 20 "$(lab_alg_pid)" && chrt -p "$(lab_alg_pid)" >&2 ;;
    esac
}
fw_down() {
    lab_alg_stop
    lab_fw_flush
    lab_gw conntrack -F >/dev/null 2>&1
    lab_gw conntrack -F expect >/dev/null 2>&1
    return 0
}

# A chain before the filter that counts data SYNs, and those whose element was not (yet) in
# the set: the daemon's promise is that the second count stays 0.
early_chain() {
    lab_gw nft -f - <<'EOF'
table inet ftpalg {
    chain bench_early {
        type filter hook forward priority filter - 20; policy accept;
        ct state new tcp flags & (fin|syn|rst|ack) == syn tcp dport != 21 counter
        ct state new tcp flags & (fin|syn|rst|ack) == syn tcp dport != 21 ip saddr . ip daddr . tcp dport != @expect4 counter
    }
}
EOF
}
# "SYNS EARLY" from the chain's two counters.
early_syns() {
    lab_gw nft list chain inet ftpalg bench_early | sed -n 's/.*counter packets \([0-9]*\).*/\1/p' | tr '\n' ' '
}

# cpu_of_daemon PID CMD...: run CMD; print the CPU time (µs) PID's threads used meanwhile.
cpu_of_daemon() {
    local pid=$1; shift
    local before after
    before=$(cpu_ns "$pid")
    "$@" >"$WORK/cpu_load.out"
    after=$(cpu_ns "$pid")
    echo $(((after - before) / 1000))
}
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }

fw_name() {
    case $1 in
    alg) echo "ftp-alg" ;;
    alg-fifo) echo "ftp-alg, SCHED_FIFO 20" ;;
    alg2) echo "ftp-alg, 2 queues" ;;
    alg-ipset) echo "ftp-alg, ipset backend" ;;
    accept) echo "NFQUEUE accept-all loop (nfq_accept; no pinholes)" ;;
    *) echo "$1" ;;
    esac
}

write_live() {
    local bulk_mb=$1 reps=$2 fw
    md "## Live gateway"
    md ""
    md "Lab \`$LAB_PREFIX\` (tests/lab/lab.sh): client → gateway → vsftpd (\`max_clients=0\`, passive ports $LAB_PASV_MIN-$LAB_PASV_MAX), IPv4. Load: \`ftp_load\` (tests/tools/ftp_load.rs). *open*: no firewall; *kernel*: \`ftp-alg rules --backend kernel\` (nf_conntrack_ftp); *ftp-alg*: \`rules --backend nft --queue-via iptables\` + \`run\` (log level info: one line per pinhole)."
    md ""
    md "### Control path"
    md ""
    md "Announce round trip (\`PASV\`→227, \`EPSV\`→229, \`PORT\`/\`EPRT\`→200) measured by the client, one session at a time (${s_lat:-} sessions × 8 announcements, no data), in $ROUNDS rounds with the gateways alternated (open, kernel, accept-all, ftp-alg, ftp-alg with ipset). Each cell: the median over the rounds (lowest to highest); a difference is taken within each round, then its median."
    md ""
    md "| gateway | p50 (µs) | p99 (µs) | p50 − kernel's | p99 − kernel's | p50 − accept-all's | announcements failed |"
    md "| --- | --- | --- | --- | --- | --- | --- |"
    for fw in open kernel accept alg alg-ipset; do
        local failed=0 r
        for ((r = 0; r < ROUNDS; r++)); do failed=$((failed + ${ROUND[$fw.failed.$r]:-0})); done
        md "| $(fw_name "$fw") | $(spread $(rounds_of "$fw.p50")) | $(spread $(rounds_of "$fw.p99")) | $(spread $(diffs "$fw" kernel p50)) | $(spread $(diffs "$fw" kernel p99)) | $(spread $(diffs "$fw" accept p50)) | $failed |"
    done
    local kp50 kp99
    kp50=$(median $(rounds_of kernel.p50)) kp99=$(median $(rounds_of kernel.p99))
    for fw in alg-fifo alg2; do
        local p50 p99
        p50=$(field announce_p50_us "${LAT[$fw]}") p99=$(field announce_p99_us "${LAT[$fw]}")
        md "| $(fw_name "$fw") (one run) | $p50 | $p99 | $((p50 - kp50)) | $((p99 - kp99)) | | $(field announce_failed "${LAT[$fw]}") |"
    done
    md ""
    md "Target: ftp-alg within +15 µs (p50) and +50 µs (p99) of the kernel helper. The accept-all loop in the daemon's place (the alg ruleset, control packets queued, nothing installed) shows what queueing itself costs: two trips through userspace per command/reply pair, which any NFQUEUE helper pays; *p50 − accept-all's* is what ftp-alg adds to them (judging, the pinhole's kernel transaction before the announcement is released, logging). The two single runs are compared with the kernel's median."
    md ""
    md "### Sessions and transfers"
    md ""
    md "${s_thr:-} sessions, ${c_thr:-} at a time, ${xfers:-} RETRs of 20 KB each, modes PASV/EPSV/PORT/EPRT in turn; open, kernel and ftp-alg alternated in $thr_rounds rounds (medians, lowest to highest; ratios within each round), the other two once."
    md ""
    md "| gateway | sessions/s | transfers/s | × kernel (sessions) | × kernel (transfers) | failed transfers | announce p50 / p99 (µs) |"
    md "| --- | --- | --- | --- | --- | --- | --- |"
    local xfailed r
    for fw in open kernel alg; do
        xfailed=0
        for ((r = 0; ${ROUND[$fw.xfail.$r]+1}+0; r++)); do xfailed=$((xfailed + ${ROUND[$fw.xfail.$r]:-0})); done
        md "| $(fw_name "$fw") | $(spread $(rounds_of "$fw.sps")) | $(spread $(rounds_of "$fw.tps")) | $(spread $(ratios "$fw" kernel sps)) | $(spread $(ratios "$fw" kernel tps)) | $xfailed | $(median $(rounds_of "$fw.tp50")) / $(median $(rounds_of "$fw.tp99")) |"
    done
    local ks kt
    ks=$(median $(rounds_of kernel.sps)) kt=$(median $(rounds_of kernel.tps))
    for fw in alg-fifo alg2; do
        local s t
        s=$(field sessions_per_s "${THR[$fw]}") t=$(field transfers_per_s "${THR[$fw]}")
        md "| $(fw_name "$fw") (one run) | $s | $t | $(ratio "$s" "$ks") | $(ratio "$t" "$kt") | $(field transfers_failed "${THR[$fw]}") | $(field announce_p50_us "${THR[$fw]}") / $(field announce_p99_us "${THR[$fw]}") |"
    done
    md ""
    md "Target: ≥ 0.9× the kernel helper's sessions/s and transfers/s."
    md ""
    md "### Daemon CPU per queued packet"
    md ""
    md "CPU time of the process's threads (/proc/PID/task/*/schedstat) over each round's latency load above, divided by the packets it received; medians over the $ROUNDS rounds (lowest to highest), the ratio taken within each round."
    md ""
    md "| process | µs per packet | × the accept-all loop |"
    md "| --- | --- | --- |"
    md "| \`nfq_accept\` (accept-all loop, the floor) | $(spread $(rounds_of accept.cpu)) | 1 |"
    md "| \`ftp-alg run\`, nft backend | $(spread $(rounds_of alg.cpu)) | $(spread $(ratios alg accept cpu)) |"
    md "| \`ftp-alg run\`, ipset backend | $(spread $(rounds_of alg-ipset.cpu)) | $(spread $(ratios alg-ipset accept cpu)) |"
    md ""
    md "Target: ≤ 1.5× (nft backend). Both see the same load: control packets only, one session at a time, so each packet wakes the process (the wake-up and the two syscalls per packet dominate the floor)."
    md ""
    md "### Pinhole latency"
    md ""
    md "From the change handed to the backend to the kernel's answer (the daemon's histogram, \`pinhole_us_*\` in its stats line), over every install of each round; medians over the rounds (lowest to highest)."
    md ""
    md "| backend | installs timed per round | p50 (µs) | p99 (µs) |"
    md "| --- | --- | --- | --- |"
    local fw r
    for fw in alg alg-ipset; do
        local p50s=() p99s=() counts=()
        for ((r = 0; r < ROUNDS; r++)); do
            local p50 p99 count
            read -r p50 p99 count <<<"${ROUND[$fw.pin.$r]:-}"
            p50s+=("${p50:-}") p99s+=("${p99:-}") counts+=("${count:-}")
        done
        md "| $([[ $fw == alg ]] && echo nft || echo ipset) | $(median "${counts[@]}") | $(spread "${p50s[@]}") | $(spread "${p99s[@]}") |"
    done
    md ""
    read -r syns early <<<"$EARLY"
    md "Data SYNs that reached the gateway before their element existed (a counter chain before the filter, \`ip saddr . ip daddr . tcp dport != @expect4\`): **${early:-?}** of ${syns:-?} data SYNs (must be 0)."
    md ""
    md "### Bulk data"
    md ""
    md "One ${bulk_mb} MB passive RETR through the gateway; MB/s while the data connection is read (after the 150 reply), median of $reps runs (the gateways alternated)."
    md ""
    md "| gateway | MB/s | × open | × kernel |"
    md "| --- | --- | --- | --- |"
    local open_mb kernel_mb
    open_mb=$(median ${BULK[open]}) kernel_mb=$(median ${BULK[kernel]})
    for fw in open kernel alg; do
        local m name=$fw
        [[ $fw == alg ]] && name="ftp-alg"
        m=$(median ${BULK[$fw]})
        md "| $name | $m | $(ratio "$m" "$open_mb") | $(ratio "$m" "$kernel_mb") |"
    done
    md ""
    md "Target: ftp-alg ≥ 0.98× (data connections never reach userspace)."
    md ""
}

rc=0
for part in $PARTS; do
    "part_$part" || { log "part $part failed"; rc=1; }
done

if [[ -n $OUT ]]; then
    # Keep the hand-written part of an existing file.
    marker='<!-- hand-written: kept by bench.sh -->'
    if [[ -f $OUT ]] && grep -qF "$marker" "$OUT"; then
        sed -n "/$marker/,\$p" "$OUT" >>"$REPORT"
    fi
    cp "$REPORT" "$OUT"
    log "wrote $OUT"
else
    cat "$REPORT"
fi
exit "$rc"
