#!/usr/bin/env bash
# `make demo`: ftp-alg on a live gateway, in under a minute.  Needs root.
#
# Builds nothing (make builds the release binary first).  Brings up the
# namespace lab of tests/lab/lab.sh with vsftpd, loads the `alg` firewall
# (default-drop forward chain, expectation sets, NFQUEUE for port 21: all
# printed by `ftp-alg rules`), starts `ftp-alg run`, and makes real
# transfers through the gateway: passive, active, EPSV, upload, IPv6.  For
# each it prints the mode, the client, the result and whether the sha256
# matches.  Then the daemon's log (every expectation installed and revoked)
# and its stats line, and, with the daemon stopped, one more passive
# download that the firewall must block.  Tears the lab down on exit.
# Exit status 1 if a transfer went wrong.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [[ $(id -u) -ne 0 ]]; then
    echo "make demo needs root (network namespaces, nftables). Without root: make replay-demo" >&2
    exit 2
fi

export LAB_PREFIX=${LAB_PREFIX:-ftpalg-demo}
# shellcheck source=tests/lab/lab.sh
source "$HERE/lab.sh"

WORK=
cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    lab_down
    [[ -n $WORK ]] && rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() { echo "demo: $*" >&2; exit 1; }

T0=$SECONDS
[[ -x $FTPALG_BIN ]] || die "$FTPALG_BIN missing (cargo build --release)"
echo "== setting up the lab: client 198.51.100.2 / 2001:db8:100::2 -> gateway -> vsftpd 203.0.113.2 / 2001:db8:113::2"
lab_install_deps || die "lab_install_deps failed"
WORK=$(mktemp -d /tmp/ftp-alg-demo.XXXXXX) || exit 1
chmod 755 "$WORK"
mkdir -p "$WORK/home"
lab_up 2>"$WORK/lab.log" || { cat "$WORK/lab.log" >&2; die "lab_up failed"; }
lab_start_server vsftpd 2>>"$WORK/lab.log" || die "vsftpd did not start"
lab_fw_load alg 2>>"$WORK/lab.log" || die "loading the alg firewall failed"
echo "== gateway firewall: $FTPALG_BIN rules --backend nft --queue-via iptables --queue $LAB_ALG_QUEUE (default drop)"
# shellcheck disable=SC2119  # no extra daemon options
lab_alg_start 2>>"$WORK/lab.log" || { cat "$WORK/lab.log" >&2; die "ftp-alg run did not start"; }
echo "== ftp-alg run --queue $LAB_ALG_QUEUE --backend nft is ready"
cp "$LAB_FTP_ROOT/pub/file20k.bin" "$WORK/upload.bin"

U=$LAB_FTP_USER P=$LAB_FTP_PASS
CURL=(curl -sS --connect-timeout 3 -m 10 -u "$U:$P")
LFTP="set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 3; set xfer:clobber on; set cmd:fail-exit yes"
FAILED=0

# row MODE CLIENT EXPECT FILE CONTENT -- COMMAND...: run one transfer in the
# client namespace, compare FILE with the lab's CONTENT, print one row.
# EXPECT is "ok" or "blocked".
row() {
    local mode=$1 client=$2 expect=$3 file=$4 content=$5 rc=0 match=no result
    shift 6
    rm -f "$file"
    LAB_CMD_TIMEOUT=20 lab_cli "$@" >/dev/null 2>"$WORK/client.err" || rc=$?
    [[ -f $file && $(sha256sum <"$file" | cut -d' ' -f1) == "$(lab_content_sha256 "$content")" ]] && match=yes
    if [[ $rc -eq 0 && $match == yes ]]; then result=ok; else result="failed (exit $rc)"; fi
    if [[ $expect == blocked ]]; then
        if [[ $result == ok ]]; then result="NOT BLOCKED"; FAILED=1; else result="blocked, as expected"; fi
    elif [[ $result != ok ]]; then
        FAILED=1
        result="$result: $(tail -n 1 "$WORK/client.err")"
    fi
    printf '%-34s %-16s %-9s %s\n' "$mode" "$client" "$match" "$result"
}

V4=$LAB_SRV_V4 V6="[$LAB_SRV_V6]"
echo
printf '%-34s %-16s %-9s %s\n' "mode" "client" "sha256" "result"
printf '%-34s %-16s %-9s %s\n' "----" "------" "------" "------"
row "passive (PASV), IPv4, download" "curl" ok "$WORK/pasv.bin" file200k.bin -- \
    "${CURL[@]}" --disable-epsv -o "$WORK/pasv.bin" "ftp://$V4/pub/file200k.bin"
row "active (PORT), IPv4, download" "curl --ftp-port" ok "$WORK/port.bin" file200k.bin -- \
    "${CURL[@]}" --ftp-port - --disable-eprt -o "$WORK/port.bin" "ftp://$V4/pub/file200k.bin"
row "extended passive (EPSV), IPv4" "lftp" ok "$WORK/epsv.bin" file200k.bin -- \
    env HOME="$WORK/home" lftp -c "$LFTP; set ftp:passive-mode on; set ftp:prefer-epsv yes;
        open -u $U,$P ftp://$V4; get pub/file200k.bin -o $WORK/epsv.bin; bye"
row "upload (EPSV, STOR), IPv4" "curl -T" ok "$LAB_FTP_ROOT/upload/demo.bin" file20k.bin -- \
    "${CURL[@]}" -T "$WORK/upload.bin" "ftp://$V4/upload/demo.bin"
row "extended passive (EPSV), IPv6" "curl" ok "$WORK/epsv6.bin" file200k.bin -- \
    "${CURL[@]}" -o "$WORK/epsv6.bin" "ftp://$V6/pub/file200k.bin"

lab_alg_stop
echo
echo "== ftp-alg log (expectations installed, refused, revoked) and its stats on SIGTERM:"
lab_alg_log | grep -aE 'install|refuse|revoke|stats' | sed -e 's/^\[[^]]*\] */  /'
[[ $LAB_ALG_STATUS -eq 0 ]] || { echo "demo: ftp-alg exited with status $LAB_ALG_STATUS" >&2; FAILED=1; }

echo
echo "== the same passive download with ftp-alg stopped (the firewall alone must block it):"
row "passive (PASV), IPv4, no ftp-alg" "curl" blocked "$WORK/pasv2.bin" file200k.bin -- \
    "${CURL[@]}" --disable-epsv -m 5 -o "$WORK/pasv2.bin" "ftp://$V4/pub/file200k.bin"

echo
if ((FAILED)); then
    echo "== demo FAILED ($((SECONDS - T0)) s); lab messages:"
    tail -n 20 "$WORK/lab.log"
    exit 1
fi
echo "== demo done: every transfer through the ftp-alg gateway succeeded ($((SECONDS - T0)) s)"
