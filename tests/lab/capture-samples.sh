#!/usr/bin/env bash
# Regenerates the lab captures pcaps/lab-*.pcap[ng] and their ground truth
# pcaps/lab-*.expected (tests/lab/truth.py), using real FTP servers and
# clients in the namespace lab of tests/lab/lab.sh.  Run as root:
#
#   bash tests/lab/capture-samples.sh            # all captures
#   bash tests/lab/capture-samples.sh NAME...    # only these (e.g. lab-vsftpd-curl-pasv-v4)
#
# Every capture is taken on the gateway's client-side veth (veth-cli in
# ${LAB_PREFIX}-gw), from before the client connects until after it exits.
# Each transfer's SHA-256 is verified, each capture is checked (frame sizes,
# TCP/IP checksums, only lab addresses, expected trigger/admit counts), and
# only when everything passed are the files copied into pcaps/.  The lab is
# torn down on exit, also on failure.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT_DIR=${OUT_DIR:-$REPO/pcaps}

# shellcheck source=tests/lab/lab.sh
source "$HERE/lab.sh"

die() { echo "capture-samples: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "must run as root"

WORK=
cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    lab_capture_stop 2>/dev/null
    lab_down
    [[ -n $WORK ]] && rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

START=$SECONDS
lab_install_deps
# The oracle first: truth.py on hand-built captures.
"$LAB_SYS_PYTHON" "$HERE/truth_selftest.py" >&2 || die "truth.py self-test failed"
lab_up

WORK=$(mktemp -d /tmp/ftp-alg-capture.XXXXXX)
mkdir -p "$WORK/out" "$WORK/dl" "$WORK/home"
chmod 755 "$WORK" "$WORK/dl"
U=$LAB_FTP_USER P=$LAB_FTP_PASS
V4=$LAB_SRV_V4 V6="[$LAB_SRV_V6]"
PY=$LAB_SYS_PYTHON
# Local copies of the content, for uploads.
cp "$LAB_FTP_ROOT/pub/file20k.bin" "$LAB_FTP_ROOT/pub/file200k.bin" "$WORK/"

# ------------------------------------------------------------- capturing
CAP_FILE=
capture_start() {  # capture_start NAME
    CAP_FILE="$WORK/$1.pcap"
    lab_capture_start "$CAP_FILE" "$LAB_GW_IF_CLI" || die "tcpdump did not start"
}
capture_stop() { lab_capture_stop || die "capture incomplete"; }

# check_sha FILE CONTENT_NAME
check_sha() {
    local got want
    got=$(sha256sum <"$1" | cut -d' ' -f1)
    want=$(lab_content_sha256 "$2")
    [[ $got == "$want" ]] || die "checksum mismatch for $1: $got, expected $want ($2)"
    echo "  sha256 ok: ${1#"$WORK"/} = $2" >&2
}

# tshark without its "Running as user root" warning.
tsh() {
    local rc=0
    tshark "$@" 2>"$WORK/tshark.err" || rc=$?
    grep -v '^Running as user "root"' "$WORK/tshark.err" >&2 || true
    return "$rc"
}

# check_capture FILE: frames fit the MTU, TCP/IP checksums are right, no
# TCP anomalies (reordering, loss, retransmission), only lab addresses.
check_capture() {
    local f=$1 max bad addrs
    max=$(tsh -n -r "$f" -T fields -e frame.len | sort -n | tail -n1)
    ((max <= 1514)) || die "$f: frame of $max bytes (offloads not disabled?)"
    bad=$(tsh -n -r "$f" -o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE \
        -Y 'tcp.checksum.status == 0 || ip.checksum.status == 0' -T fields -e frame.number | wc -l)
    ((bad == 0)) || die "$f: $bad frames with bad checksums"
    bad=$(tsh -n -r "$f" -Y 'tcp.analysis.retransmission || tcp.analysis.out_of_order ||
        tcp.analysis.lost_segment || tcp.analysis.duplicate_ack' -T fields -e frame.number | wc -l)
    ((bad == 0)) || die "$f: $bad frames reordered, lost, duplicated or retransmitted"
    addrs=$(tsh -n -r "$f" -T fields -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst |
        tr ',\t' '\n' | sed '/^$/d' | sort -u |
        grep -Ev '^(198\.51\.100\.|203\.0\.113\.|2001:db8:|fe80::|ff02::)' || true)
    [[ -z $addrs ]] || die "$f: unexpected addresses: $addrs"
}

# finish NAME EXT WANT: convert (pcapng), write .expected, compare the
# counts of "<trigger>" expect lines and "admit" lines against WANT, e.g.
# "227=1 admit=1".
finish() {
    local name=$1 ext=$2 want=$3 final got
    final="$WORK/out/$name.$ext"
    if [[ $ext == pcapng ]]; then
        editcap -F pcapng "$CAP_FILE" "$final"
    else
        cp "$CAP_FILE" "$final"
    fi
    check_capture "$final"
    timeout 60 "$PY" "$HERE/truth.py" "$final" >"$WORK/out/$name.expected" 2>"$WORK/truth.err" || {
        cat "$WORK/truth.err" >&2
        die "$name: truth.py failed"
    }
    # Lab captures are clean: any note (retransmission, unusable endpoint,
    # line tshark did not decode) means the scenario did not go as planned.
    [[ ! -s $WORK/truth.err ]] || { cat "$WORK/truth.err" >&2; die "$name: truth.py reported notes"; }
    got=$(counts "$WORK/out/$name.expected")
    [[ $got == "$want" ]] || die "$name: truth has '$got', scenario expects '$want'"
    echo "  $name.$ext: $(stat -c %s "$final") bytes; $got" >&2
}

# counts FILE: e.g. "227=3 admit=3" (triggers sorted, then admit).
counts() {
    "$PY" - "$1" <<'EOF'
import json, sys
c = {}
for line in open(sys.argv[1]):
    e = json.loads(line)
    k = e["trigger"] if e["type"] == "expect" else e["type"]
    c[k] = c.get(k, 0) + 1
keys = sorted(k for k in c if k != "admit") + (["admit"] if "admit" in c else [])
print(" ".join("%s=%d" % (k, c[k]) for k in keys))
EOF
}

selected() {
    ((${#ONLY[@]} == 0)) && return 0
    local n
    for n in "${ONLY[@]}"; do [[ $n == "$1" ]] && return 0; done
    return 1
}

server() { [[ $(cat "$LAB_SERVER_NAMEFILE" 2>/dev/null) == "$1" ]] || lab_start_server "$1"; }

CURL=(curl -sS --connect-timeout 5 --max-time 30 -u "$U:$P")
LFTP_BASE="set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 10; set net:reconnect-interval-base 1; set xfer:clobber on; set cmd:fail-exit yes"

# ------------------------------------------------------------- scenarios
ONLY=("$@")
DONE=()

run() {  # run NAME EXT WANT SERVER -- command (a function name)
    local name=$1 ext=$2 want=$3 srv=$4 fn=$5
    selected "$name" || return 0
    echo "== $name" >&2
    server "$srv"
    rm -rf "${WORK:?}/dl/"* "${LAB_FTP_ROOT:?}/upload/"*
    capture_start "$name"
    LAB_CMD_TIMEOUT=60 "$fn"
    capture_stop
    "$fn"_verify
    finish "$name" "$ext" "$want"
    DONE+=("$name.$ext" "$name.expected")
}

s1() { lab_cli "${CURL[@]}" --disable-epsv -o "$WORK/dl/f" "ftp://$V4/pub/file200k.bin"; }
s1_verify() { check_sha "$WORK/dl/f" file200k.bin; }
s2() { lab_cli "${CURL[@]}" -o "$WORK/dl/f" "ftp://$V4/pub/file20k.bin"; }
s2_verify() { check_sha "$WORK/dl/f" file20k.bin; }
s3() { lab_cli "${CURL[@]}" -P - --disable-eprt -o "$WORK/dl/f" "ftp://$V4/pub/file200k.bin"; }
s3_verify() { check_sha "$WORK/dl/f" file200k.bin; }
s4() { lab_cli "${CURL[@]}" -P - -o "$WORK/dl/f" "ftp://$V6/pub/file20k.bin"; }
s4_verify() { check_sha "$WORK/dl/f" file20k.bin; }
s5() { lab_cli "${CURL[@]}" -o "$WORK/dl/f" "ftp://$V6/pub/file200k.bin"; }
s5_verify() { check_sha "$WORK/dl/f" file200k.bin; }

s6() {
    lab_cli env HOME="$WORK/home" lftp -c "$LFTP_BASE; set ftp:passive-mode on; set ftp:prefer-epsv no;
        open -u $U,$P $V4; ls pub; get pub/file200k.bin -o $WORK/dl/f;
        put $WORK/file20k.bin -o upload/lftp.bin; bye"
}
s6_verify() { check_sha "$WORK/dl/f" file200k.bin; check_sha "$LAB_FTP_ROOT/upload/lftp.bin" file20k.bin; }

s7() {
    lab_cli env HOME="$WORK/home" lftp -c "$LFTP_BASE; set ftp:passive-mode off;
        open -u $U,$P $V4; get pub/file200k.bin -o $WORK/dl/f; bye"
}
s7_verify() { check_sha "$WORK/dl/f" file200k.bin; }

s8() { lab_cli "$PY" "$HERE/ftplib_mixed.py" "$V4" "$U" "$P" "$WORK/file20k.bin" "$WORK/dl"; }
s8_verify() {
    check_sha "$WORK/dl/ftplib-pasv.bin" file20k.bin
    check_sha "$WORK/dl/ftplib-port.bin" file20k.bin
    check_sha "$LAB_FTP_ROOT/upload/ftplib-pasv.bin" file20k.bin
    check_sha "$LAB_FTP_ROOT/upload/ftplib-port.bin" file20k.bin
}

# Extras: other clients, EPRT over IPv4, "EPSV 2" over IPv6.
s9() { lab_cli tnftp -A -V -o "$WORK/dl/f" "ftp://$U:$P@$V4/pub/file20k.bin" </dev/null; }
s9_verify() { check_sha "$WORK/dl/f" file20k.bin; }
s10() { lab_cli wget -q --tries=1 --timeout=10 -O "$WORK/dl/f" "ftp://$U:$P@$V6/pub/file20k.bin"; }
s10_verify() { check_sha "$WORK/dl/f" file20k.bin; }

run lab-vsftpd-curl-pasv-v4 pcap "227=1 admit=1" vsftpd s1
run lab-vsftpd-curl-epsv-v4 pcap "229=1 admit=1" vsftpd s2
run lab-vsftpd-curl-port-v4 pcap "PORT=1 admit=1" vsftpd s3
run lab-vsftpd-curl-eprt-v6 pcap "EPRT=1 admit=1" vsftpd s4
run lab-vsftpd-curl-epsv-v6 pcap "229=1 admit=1" vsftpd s5
run lab-proftpd-lftp-pasv-upload-v4 pcap "227=3 admit=3" proftpd s6
run lab-pureftpd-lftp-port-v4 pcap "PORT=1 admit=1" pureftpd s7
run lab-pyftpdlib-ftplib-mixed-v4 pcapng "227=2 PORT=2 admit=4" pyftpdlib s8
run lab-pureftpd-tnftp-eprt-v4 pcap "EPRT=1 admit=1" pureftpd s9
run lab-proftpd-wget-epsv-v6 pcap "229=1 admit=1" proftpd s10

((${#DONE[@]})) || die "no capture selected (names: see the run lines in $0)"
lab_stop_server
mkdir -p "$OUT_DIR"
for f in "${DONE[@]}"; do cp "$WORK/out/$f" "$OUT_DIR/$f"; done
echo "capture-samples: wrote ${#DONE[@]} files to $OUT_DIR in $((SECONDS - START)) s" >&2
