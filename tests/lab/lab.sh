# shellcheck shell=bash
# ftp-alg network-namespace lab.  Source this file (bash), then call the
# lab_* functions.  Everything runs as root.
#
#   source tests/lab/lab.sh
#   lab_install_deps            # apt packages + private proftpd/pure-ftpd
#   lab_up                      # four namespaces, routing, no firewall
#   lab_start_server vsftpd     # or proftpd | pureftpd | pyftpdlib | scripted
#   lab_cli curl ...            # run a command in the client namespace
#   lab_fw_load alg             # firewall in the gateway: alg | alg-ipset | kernel | drop
#                               #   (NAT lab: kernel-nat | alg-nat, after lab_nat_up)
#   lab_nat_up T1|T2            # NAT lab: re-address for a published server (T1) or a
#                               #   masqueraded client (T2); lab_nat_down goes back
#   lab_alg_start [ARGS...]     # ftp-alg run in the gateway (waits for "ready")
#   lab_alg_stop                # SIGTERM, bounded wait, SIGKILL
#   lab_alg_kill                # SIGKILL the daemon (a crash: no state file)
#   lab_fw_flush                # back to a plain router
#   lab_stop_server
#   lab_down                    # idempotent; also safe when nothing exists
#
# Topology (names derive from LAB_PREFIX, default "ftpalg", so two labs
# with different prefixes can coexist):
#
#   ${LAB_PREFIX}-cli            ${LAB_PREFIX}-gw                 ${LAB_PREFIX}-srv
#   eth0 ----------------- veth-cli      veth-srv ----------------- eth0
#   198.51.100.2/24        198.51.100.1   203.0.113.1              203.0.113.2/24
#   2001:db8:100::2/64     2001:db8:100::1  2001:db8:113::1        2001:db8:113::2/64
#                                 veth-oth
#                                 192.0.2.1, 2001:db8:2::1
#                                    |
#                                  eth0   ${LAB_PREFIX}-oth ("another host", used to
#                                  192.0.2.2/24, 2001:db8:2::2/64   prove that a pinhole
#                                                                   admits only its peer)
#
# Only documentation address ranges are used; nothing leaves the namespaces.
# The functions return non-zero on failure and never call `exit`, so the
# file can be sourced by scripts with or without `set -e`.  Call lab_down
# from an EXIT trap.
#
# Notes for users of the lab:
# * The gateway namespace is a plain router (ip_forward, IPv6 forwarding);
#   no firewall rules are installed until lab_fw_load.  Capture on veth-cli /
#   veth-srv there (lab_capture_start / lab_capture_stop).
# * Firewall variants (lab_fw_load): the ruleset text always comes from the
#   binary ($FTPALG_BIN rules ...), so the lab tests what ships.
#     alg        nft table inet ftpalg (sets expect4/expect6, default-drop
#                forward chain) + iptables/ip6tables NFQUEUE rules for port
#                21 with --queue-bypass; run the daemon with lab_alg_start.
#     alg-ipset  iptables/ip6tables + ipset sets (daemon: --backend ipset).
#     kernel     the kernel's ct helper "ftp" (baseline, no daemon).
#     drop       the alg ruleset without a daemon: queue-bypass lets control
#                through, every data connection is dropped.
#     kernel-nat, alg-nat  the NAT lab's: kernel, or the alg ruleset's NAT form
#                (rules --nat --outside IFACE), each with the operator's own NAT
#                table and a counter of invalid packets (see "NAT lab" below).
# * Offloads (TSO/GSO/GRO, tx checksum) are off on all six veth ends, IPv6
#   DAD and router advertisements are off, MACs are fixed.
# * Servers (lab_start_server NAME): one at a time, in the server
#   namespace, port 21, dual-stack.  Account LAB_FTP_USER/LAB_FTP_PASS
#   (ftpalglab/labpass), files in /pub, uploads into /upload, passive ports
#   LAB_PASV_MIN..LAB_PASV_MAX (50000-50100).  Configs and logs:
#   $LAB_SERVER_CONF_DIR.  Active-mode data connections come from port 20
#   (vsftpd, proftpd, pure-ftpd) or from an ephemeral port (pyftpdlib,
#   which also connects as soon as PORT/EPRT arrives, before RETR/STOR).
#   vsftpd and pyftpdlib use one [::] socket (IPv4 clients are
#   IPv4-mapped), pure-ftpd separate 0.0.0.0 and [::] sockets, proftpd [::].
#   `scripted` is not a real server: scripted_ftpd.py ([::]) accepts any
#   login, answers PASV/EPSV and QUIT, and answers all the command lines of
#   one read with one send() (so a pipelined PASV+QUIT gets 227+221 in one
#   segment); it serves no files and opens no data connections.
# * Client and server processes are pinned to CPU LAB_CPU (see below).
# * The server namespace keeps no TIME_WAIT sockets (see lab_up).

# ---------------------------------------------------------------- settings
LAB_PREFIX=${LAB_PREFIX:-ftpalg}
LAB_NS_CLI="${LAB_PREFIX}-cli"
LAB_NS_GW="${LAB_PREFIX}-gw"
LAB_NS_SRV="${LAB_PREFIX}-srv"
LAB_NS_OTH="${LAB_PREFIX}-oth"

# Interface names inside the namespaces (fixed, independent of the prefix).
LAB_CLI_IF=eth0
LAB_SRV_IF=eth0
LAB_GW_IF_CLI=veth-cli
LAB_GW_IF_SRV=veth-srv
LAB_OTH_IF=eth0
LAB_GW_IF_OTH=veth-oth

LAB_CLI_V4=198.51.100.2
LAB_GW_CLI_V4=198.51.100.1
LAB_SRV_V4=203.0.113.2
LAB_GW_SRV_V4=203.0.113.1
LAB_CLI_V6=2001:db8:100::2
LAB_GW_CLI_V6=2001:db8:100::1
LAB_SRV_V6=2001:db8:113::2
LAB_GW_SRV_V6=2001:db8:113::1
LAB_OTH_V4=192.0.2.2
LAB_GW_OTH_V4=192.0.2.1
LAB_OTH_V6=2001:db8:2::2
LAB_GW_OTH_V6=2001:db8:2::1

# Fixed, locally administered MACs (derived from the IPv4 addresses) so that
# captures and link-local addresses are the same on every run.
LAB_CLI_MAC=02:00:c6:33:64:02
LAB_GW_CLI_MAC=02:00:c6:33:64:01
LAB_GW_SRV_MAC=02:00:cb:00:71:01
LAB_SRV_MAC=02:00:cb:00:71:02
LAB_OTH_MAC=02:00:c0:00:02:02
LAB_GW_OTH_MAC=02:00:c0:00:02:01

LAB_FTP_PORT=21
LAB_PASV_MIN=${LAB_PASV_MIN:-50000}
LAB_PASV_MAX=${LAB_PASV_MAX:-50100}

# FTP account used by all four servers (a system user without a login shell;
# vsftpd/proftpd authenticate it via /etc/shadow, pure-ftpd and pyftpdlib via
# their own user databases with the same name and password).
LAB_FTP_USER=${LAB_FTP_USER:-ftpalglab}
LAB_FTP_PASS=${LAB_FTP_PASS:-labpass}
LAB_FTP_HOME=/var/lib/ftp-alg-lab

# Private, unpacked copies of proftpd and pure-ftpd (they conflict with
# vsftpd as Debian packages, so they are not installed with dpkg -i).
LAB_PKG_CACHE=${LAB_PKG_CACHE:-/var/cache/ftp-alg-lab}
LAB_PKG_ROOT="$LAB_PKG_CACHE/root"
LAB_PKG_LIBS="$LAB_PKG_ROOT/usr/lib/x86_64-linux-gnu"
LAB_PROFTPD="$LAB_PKG_ROOT/usr/sbin/proftpd"
LAB_PUREFTPD="$LAB_PKG_ROOT/usr/sbin/pure-ftpd"
LAB_PUREPW="$LAB_PKG_ROOT/usr/bin/pure-pw"
LAB_SYS_PYTHON=/usr/bin/python3

# Per-lab state: FTP root, server configs, logs, pid files.
LAB_STATE_DIR=${LAB_STATE_DIR:-/run/ftp-alg-lab/$LAB_PREFIX}
# Where lab_alg_start's daemon leaves its state at a clean stop (ftp-alg run --state-dir).
LAB_ALG_STATE=${LAB_ALG_STATE:-$LAB_STATE_DIR/alg-state}
LAB_FTP_ROOT="$LAB_STATE_DIR/ftproot"     # pub/ (read-only), upload/ (writable)

# Safety nets: a started server never outlives this many seconds, and each
# short command is bounded by LAB_STEP_TIMEOUT.
LAB_SERVER_TIMEOUT=${LAB_SERVER_TIMEOUT:-3600}
LAB_STEP_TIMEOUT=${LAB_STEP_TIMEOUT:-20}

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Test content: name, size in bytes.  Bytes are SHAKE-256 of the label
# "ftp-alg-lab:<name>", so they are deterministic; sums are listed in
# lab_content_sha256 and checked when the files are created.
LAB_CONTENT_FILES=(file20k.bin:20480 file200k.bin:204800)

lab_content_sha256() {
    case "$1" in
        file20k.bin)  echo 2974d4f1cbe0c8d924990bc19cc5d46a5b25aa04d47fd163cf78ee49b9fe666a ;;
        file200k.bin) echo e1ccf31afb265ce74aa7bf33c0578d04b9a6495d8ec9d9121591a36ad74e3c69 ;;
        *) return 1 ;;
    esac
}

# ---------------------------------------------------------------- helpers
lab_log() { printf '[lab %s] %s\n' "$LAB_PREFIX" "$*" >&2; }

# Run a bounded command: _lab_t SECONDS cmd...
_lab_t() { local s=$1; shift; timeout --kill-after=5 "$s" "$@"; }

# Client and server processes run on one CPU (LAB_CPU, default 0; empty =
# no pinning).  A sender that migrates between CPUs in the middle of a burst
# makes veth deliver its packets out of order (different per-CPU backlogs),
# which shows up in captures as reordering and fast retransmissions.
LAB_CPU=${LAB_CPU-0}
_lab_pin() {
    if [[ -n $LAB_CPU ]] && command -v taskset >/dev/null; then
        echo taskset -c "$LAB_CPU"
    fi
}

# Run a bounded command in a namespace (default limit LAB_CMD_TIMEOUT=60 s).
# lab_cli and lab_srv pin to LAB_CPU; lab_gw does not.
lab_cli() { # shellcheck disable=SC2046
    _lab_t "${LAB_CMD_TIMEOUT:-60}" ip netns exec "$LAB_NS_CLI" $(_lab_pin) "$@"; }
lab_srv() { # shellcheck disable=SC2046
    _lab_t "${LAB_CMD_TIMEOUT:-60}" ip netns exec "$LAB_NS_SRV" $(_lab_pin) "$@"; }
lab_gw()  { _lab_t "${LAB_CMD_TIMEOUT:-60}" ip netns exec "$LAB_NS_GW" "$@"; }
lab_oth() { # shellcheck disable=SC2046
    _lab_t "${LAB_CMD_TIMEOUT:-60}" ip netns exec "$LAB_NS_OTH" $(_lab_pin) "$@"; }

_lab_ns_exists() { ip netns list 2>/dev/null | awk -v n="$1" '$1 == n { f = 1 } END { exit !f }'; }

# Wait until CMD succeeds, polling every 0.1 s, at most SECONDS.
_lab_wait_for() {
    local secs=$1; shift
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then return 1; fi
        sleep 0.1
    done
}

# ------------------------------------------------------------ dependencies
LAB_APT_PACKAGES=(vsftpd lftp tnftp python3-pyftpdlib tshark tcpdump ethtool iproute2 iputils-ping wget curl openssl
                  util-linux nftables iptables ipset conntrack)
LAB_DEB_PRIVATE=(proftpd-core pure-ftpd libsodium23 libpcre2-posix3 libhashkit2
                 libmemcached11 libmemcachedutil2 libhiredis0.14)

lab_install_deps() {
    local missing=() p
    for p in "${LAB_APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if ((${#missing[@]})); then
        lab_log "installing: ${missing[*]}"
        echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
        # Never let a package start a daemon in the root namespace (e.g.
        # vsftpd on *:21) on machines without a policy-rc.d.
        local own_policy=0
        if [[ ! -e /usr/sbin/policy-rc.d ]]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
        fi
        local rc=0
        _lab_t 300 apt-get update -qq || rc=$?
        if ((rc == 0)); then
            DEBIAN_FRONTEND=noninteractive _lab_t 600 apt-get install -y -qq --no-install-recommends \
                "${missing[@]}" >/dev/null || rc=$?
        fi
        ((own_policy)) && rm -f /usr/sbin/policy-rc.d
        ((rc == 0)) || { lab_log "apt-get failed ($rc)"; return 1; }
    fi

    # proftpd and pure-ftpd: download + unpack privately.
    if [[ ! -x $LAB_PROFTPD || ! -x $LAB_PUREFTPD || ! -x $LAB_PUREPW ]]; then
        lab_log "unpacking proftpd and pure-ftpd into $LAB_PKG_ROOT"
        rm -rf "$LAB_PKG_ROOT" "$LAB_PKG_CACHE/debs"
        mkdir -p "$LAB_PKG_CACHE/debs" "$LAB_PKG_ROOT" || return 1
        (cd "$LAB_PKG_CACHE/debs" && _lab_t 300 apt-get download -q "${LAB_DEB_PRIVATE[@]}") >/dev/null 2>&1 || {
            _lab_t 300 apt-get update -qq &&
                (cd "$LAB_PKG_CACHE/debs" && _lab_t 300 apt-get download -q "${LAB_DEB_PRIVATE[@]}") >/dev/null
        } || { lab_log "apt-get download failed"; return 1; }
        local deb
        for deb in "$LAB_PKG_CACHE"/debs/*.deb; do
            dpkg-deb -x "$deb" "$LAB_PKG_ROOT" || return 1
        done
    fi
    LD_LIBRARY_PATH=$LAB_PKG_LIBS _lab_t 10 "$LAB_PROFTPD" -v >/dev/null || { lab_log "proftpd does not run"; return 1; }
    LD_LIBRARY_PATH=$LAB_PKG_LIBS _lab_t 10 "$LAB_PUREFTPD" --help >/dev/null 2>&1 || true
    LD_LIBRARY_PATH=$LAB_PKG_LIBS ldd "$LAB_PUREFTPD" | grep -q 'not found' && { lab_log "pure-ftpd misses libraries"; return 1; }

    # The FTP account: system user without a login shell.  Its home only has
    # to exist (vsftpd changes into it before local_root); each server's
    # config points it at the lab's own FTP root.
    mkdir -p "$LAB_FTP_HOME" && chmod 755 "$LAB_FTP_HOME" || return 1
    if ! getent passwd "$LAB_FTP_USER" >/dev/null; then
        useradd --system --no-create-home --home-dir "$LAB_FTP_HOME" \
            --shell /usr/sbin/nologin --user-group "$LAB_FTP_USER" || return 1
    elif [[ $(getent passwd "$LAB_FTP_USER" | cut -d: -f6) != "$LAB_FTP_HOME" ]]; then
        usermod --home "$LAB_FTP_HOME" "$LAB_FTP_USER" || return 1
    fi
    echo "$LAB_FTP_USER:$LAB_FTP_PASS" | chpasswd || return 1
    # PAM service for vsftpd: plain pam_unix (Debian's "vsftpd" service
    # insists on a shell listed in /etc/shells).
    if [[ ! -e /etc/pam.d/ftp-alg-lab ]]; then
        cat >/etc/pam.d/ftp-alg-lab <<'EOF'
# ftp-alg lab (tests/lab/lab.sh): vsftpd authentication against /etc/shadow
auth     required pam_unix.so
account  required pam_unix.so
session  required pam_permit.so
EOF
    fi
    return 0
}

# --------------------------------------------------------------- topology
# _lab_veth NS_A IF_A MAC_A NS_B IF_B MAC_B: veth pair created directly in
# the two namespaces (no name clash in the root namespace).
_lab_veth() {
    _lab_t "$LAB_STEP_TIMEOUT" ip link add name "$2" address "$3" netns "$1" type veth \
        peer name "$5" address "$6" netns "$4"
}

# _lab_write_hosts NS CLI_V4 SRV_V4 [LINE...]: the namespace's own hosts file
# (lab-cli, lab-srv, the LINEs, lab-oth's IPv6 address).
_lab_write_hosts() {
    local ns=$1 cli4=$2 srv4=$3 line
    shift 3
    {
        echo "127.0.0.1 localhost $(hostname)"
        echo "::1 localhost ip6-localhost ip6-loopback"
        echo "$cli4 lab-cli"
        echo "$srv4 lab-srv"
        echo "$LAB_CLI_V6 lab-cli"
        echo "$LAB_SRV_V6 lab-srv"
        for line in "$@"; do echo "$line"; done
        echo "$LAB_OTH_V6 lab-oth"
    } >"/etc/netns/$ns/hosts"
}

_lab_ns_setup() {
    local ns=$1
    _lab_t "$LAB_STEP_TIMEOUT" ip netns add "$ns" || return 1
    mkdir -p "/etc/netns/$ns" || return 1
    echo "nameserver 127.0.0.1" >"/etc/netns/$ns/resolv.conf"
    _lab_write_hosts "$ns" "$LAB_CLI_V4" "$LAB_SRV_V4" "$LAB_OTH_V4 lab-oth"
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0 \
        net.ipv6.conf.default.accept_ra=0 net.ipv6.conf.all.accept_ra=0 >/dev/null || return 1
    _lab_t "$LAB_STEP_TIMEOUT" ip -n "$ns" link set lo up
}

# _lab_if_setup NS IF: no DAD, no segmentation/receive offloads, no tx
# checksum offload (so captured checksums are real), link up.
_lab_if_setup() {
    local ns=$1 ifc=$2
    ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$ifc.accept_dad=0" "net.ipv6.conf.$ifc.accept_ra=0" >/dev/null || return 1
    if command -v ethtool >/dev/null; then
        _lab_t "$LAB_STEP_TIMEOUT" ip netns exec "$ns" ethtool -K "$ifc" tso off gso off gro off tx off >/dev/null 2>&1 ||
            lab_log "warning: ethtool -K $ifc failed in $ns"
    else
        lab_log "warning: ethtool missing; offloads stay on (captures may show super-segments)"
    fi
    _lab_t "$LAB_STEP_TIMEOUT" ip -n "$ns" link set "$ifc" up
}

lab_up() {
    local ns
    for ns in "$LAB_NS_CLI" "$LAB_NS_GW" "$LAB_NS_SRV" "$LAB_NS_OTH"; do
        if _lab_ns_exists "$ns"; then
            lab_log "lab already exists (prefix $LAB_PREFIX); tearing it down first"
            lab_down
            break
        fi
    done
    lab_log "creating namespaces $LAB_NS_CLI $LAB_NS_GW $LAB_NS_SRV $LAB_NS_OTH"
    _lab_ns_setup "$LAB_NS_CLI" && _lab_ns_setup "$LAB_NS_GW" && _lab_ns_setup "$LAB_NS_SRV" &&
        _lab_ns_setup "$LAB_NS_OTH" || return 1

    _lab_veth "$LAB_NS_CLI" "$LAB_CLI_IF" "$LAB_CLI_MAC" "$LAB_NS_GW" "$LAB_GW_IF_CLI" "$LAB_GW_CLI_MAC" || return 1
    _lab_veth "$LAB_NS_SRV" "$LAB_SRV_IF" "$LAB_SRV_MAC" "$LAB_NS_GW" "$LAB_GW_IF_SRV" "$LAB_GW_SRV_MAC" || return 1
    _lab_veth "$LAB_NS_OTH" "$LAB_OTH_IF" "$LAB_OTH_MAC" "$LAB_NS_GW" "$LAB_GW_IF_OTH" "$LAB_GW_OTH_MAC" || return 1

    # Gateway: plain router, IPv4 + IPv6 forwarding, no firewall rules.
    ip netns exec "$LAB_NS_GW" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
        net.ipv6.conf.default.forwarding=1 >/dev/null || return 1

    # Server: keep no TIME_WAIT sockets.  Otherwise, after vsftpd (dual-stack
    # socket) made an active connection from port 20, pure-ftpd's next
    # active connection (IPv4 socket) cannot bind port 20 for 60 s and comes
    # from port 2 instead.  Only the server's own socket table is affected;
    # packets on the wire are the same.
    ip netns exec "$LAB_NS_SRV" sysctl -qw net.ipv4.tcp_max_tw_buckets=0 >/dev/null || return 1

    _lab_if_setup "$LAB_NS_CLI" "$LAB_CLI_IF" &&
        _lab_if_setup "$LAB_NS_GW" "$LAB_GW_IF_CLI" &&
        _lab_if_setup "$LAB_NS_GW" "$LAB_GW_IF_SRV" &&
        _lab_if_setup "$LAB_NS_SRV" "$LAB_SRV_IF" &&
        _lab_if_setup "$LAB_NS_GW" "$LAB_GW_IF_OTH" &&
        _lab_if_setup "$LAB_NS_OTH" "$LAB_OTH_IF" || return 1

    local ipc=(_lab_t "$LAB_STEP_TIMEOUT" ip)
    "${ipc[@]}" -n "$LAB_NS_CLI" addr add "$LAB_CLI_V4/24" dev "$LAB_CLI_IF" &&
        "${ipc[@]}" -n "$LAB_NS_CLI" -6 addr add "$LAB_CLI_V6/64" dev "$LAB_CLI_IF" nodad &&
        "${ipc[@]}" -n "$LAB_NS_CLI" route add default via "$LAB_GW_CLI_V4" &&
        "${ipc[@]}" -n "$LAB_NS_CLI" -6 route add default via "$LAB_GW_CLI_V6" &&
        "${ipc[@]}" -n "$LAB_NS_GW" addr add "$LAB_GW_CLI_V4/24" dev "$LAB_GW_IF_CLI" &&
        "${ipc[@]}" -n "$LAB_NS_GW" -6 addr add "$LAB_GW_CLI_V6/64" dev "$LAB_GW_IF_CLI" nodad &&
        "${ipc[@]}" -n "$LAB_NS_GW" addr add "$LAB_GW_SRV_V4/24" dev "$LAB_GW_IF_SRV" &&
        "${ipc[@]}" -n "$LAB_NS_GW" -6 addr add "$LAB_GW_SRV_V6/64" dev "$LAB_GW_IF_SRV" nodad &&
        "${ipc[@]}" -n "$LAB_NS_SRV" addr add "$LAB_SRV_V4/24" dev "$LAB_SRV_IF" &&
        "${ipc[@]}" -n "$LAB_NS_SRV" -6 addr add "$LAB_SRV_V6/64" dev "$LAB_SRV_IF" nodad &&
        "${ipc[@]}" -n "$LAB_NS_SRV" route add default via "$LAB_GW_SRV_V4" &&
        "${ipc[@]}" -n "$LAB_NS_SRV" -6 route add default via "$LAB_GW_SRV_V6" &&
        "${ipc[@]}" -n "$LAB_NS_GW" addr add "$LAB_GW_OTH_V4/24" dev "$LAB_GW_IF_OTH" &&
        "${ipc[@]}" -n "$LAB_NS_GW" -6 addr add "$LAB_GW_OTH_V6/64" dev "$LAB_GW_IF_OTH" nodad &&
        "${ipc[@]}" -n "$LAB_NS_OTH" addr add "$LAB_OTH_V4/24" dev "$LAB_OTH_IF" &&
        "${ipc[@]}" -n "$LAB_NS_OTH" -6 addr add "$LAB_OTH_V6/64" dev "$LAB_OTH_IF" nodad &&
        "${ipc[@]}" -n "$LAB_NS_OTH" route add default via "$LAB_GW_OTH_V4" &&
        "${ipc[@]}" -n "$LAB_NS_OTH" -6 route add default via "$LAB_GW_OTH_V6" || return 1

    # Link-local addresses come up without DAD, but the veth carrier may
    # need a moment: wait until the client reaches the server both ways.
    _lab_wait_for 10 lab_cli ping -c1 -W1 -n "$LAB_SRV_V4" || { lab_log "no IPv4 path cli->srv"; return 1; }
    _lab_wait_for 10 lab_cli ping -6 -c1 -W1 -n "$LAB_SRV_V6" || { lab_log "no IPv6 path cli->srv"; return 1; }
    _lab_wait_for 10 lab_oth ping -c1 -W1 -n "$LAB_SRV_V4" || { lab_log "no IPv4 path oth->srv"; return 1; }
    _lab_wait_for 10 lab_oth ping -6 -c1 -W1 -n "$LAB_SRV_V6" || { lab_log "no IPv6 path oth->srv"; return 1; }

    lab_make_content || return 1
    lab_log "lab is up"
}

# FTP root: pub/ holds the deterministic test files (read-only), upload/ is
# writable by the FTP user.  Root itself is root-owned and not writable
# (vsftpd refuses a writable chroot).
lab_make_content() {
    local owner f name size want got
    owner="$(id -u "$LAB_FTP_USER"):$(id -g "$LAB_FTP_USER")" || return 1
    mkdir -p "$LAB_FTP_ROOT/pub" "$LAB_FTP_ROOT/upload" || return 1
    chmod 755 "$LAB_STATE_DIR" "$LAB_FTP_ROOT" "$LAB_FTP_ROOT/pub" && chmod 755 "$(dirname "$LAB_STATE_DIR")"
    chown "$owner" "$LAB_FTP_ROOT/upload" && chmod 755 "$LAB_FTP_ROOT/upload" || return 1
    for f in "${LAB_CONTENT_FILES[@]}"; do
        name=${f%%:*} size=${f##*:}
        "$LAB_SYS_PYTHON" -c 'import hashlib,sys; sys.stdout.buffer.write(hashlib.shake_256(("ftp-alg-lab:"+sys.argv[1]).encode()).digest(int(sys.argv[2])))' \
            "$name" "$size" >"$LAB_FTP_ROOT/pub/$name" || return 1
        want=$(lab_content_sha256 "$name") got=$(sha256sum <"$LAB_FTP_ROOT/pub/$name" | cut -d' ' -f1)
        [[ $want == "$got" ]] || { lab_log "content $name: sha256 $got, expected $want"; return 1; }
    done
    echo "ftp-alg lab server" >"$LAB_FTP_ROOT/pub/README.txt"
    chmod 644 "$LAB_FTP_ROOT"/pub/*
}

lab_down() {
    lab_alg_stop 2>/dev/null
    lab_stop_server 2>/dev/null
    local ns pids
    for ns in "$LAB_NS_CLI" "$LAB_NS_GW" "$LAB_NS_SRV" "$LAB_NS_OTH"; do
        if _lab_ns_exists "$ns"; then
            # Anything still running inside the namespace was started by the
            # lab (servers, tcpdump, clients): end it by pid.
            pids=$(ip netns pids "$ns" 2>/dev/null) || true
            if [[ -n $pids ]]; then
                # shellcheck disable=SC2086
                kill $pids 2>/dev/null || true
                sleep 0.3
                pids=$(ip netns pids "$ns" 2>/dev/null) || true
                # shellcheck disable=SC2086
                [[ -z $pids ]] || kill -9 $pids 2>/dev/null || true
            fi
            _lab_t "$LAB_STEP_TIMEOUT" ip netns del "$ns" || lab_log "warning: could not delete $ns"
        fi
        rm -rf "/etc/netns/$ns"
    done
    rm -rf "$LAB_STATE_DIR"
    # Parent directories, only if no other lab uses them.
    rmdir "$(dirname "$LAB_STATE_DIR")" /etc/netns 2>/dev/null || true
    return 0
}

# ----------------------------------------------------------------- capture
LAB_CAPTURE_PID=

# lab_capture_start FILE [IFACE]: tcpdump (full snaplen, packet-buffered) on
# a gateway interface, default the client side (veth-cli).  Returns once
# tcpdump is listening.  At most one capture at a time.
lab_capture_start() {
    local file=$1 ifc=${2:-$LAB_GW_IF_CLI}
    mkdir -p "$LAB_STATE_DIR" || return 1
    : >"$LAB_STATE_DIR/tcpdump.err"
    timeout --kill-after=5 "${LAB_CAPTURE_TIMEOUT:-300}" ip netns exec "$LAB_NS_GW" \
        tcpdump -i "$ifc" -s 0 -U -n -Z root -w "$file" 2>"$LAB_STATE_DIR/tcpdump.err" </dev/null &
    LAB_CAPTURE_PID=$!
    if ! _lab_wait_for 10 grep -q "listening on" "$LAB_STATE_DIR/tcpdump.err"; then
        cat "$LAB_STATE_DIR/tcpdump.err" >&2
        lab_capture_stop
        return 1
    fi
}

# lab_capture_stop: wait a second for the last FIN/ACKs, stop tcpdump, wait
# for it to flush.  Prints tcpdump's counters; fails if it dropped packets.
lab_capture_stop() {
    [[ -n $LAB_CAPTURE_PID ]] || return 0
    sleep 1
    kill -INT "$LAB_CAPTURE_PID" 2>/dev/null || true
    wait "$LAB_CAPTURE_PID" 2>/dev/null || true
    LAB_CAPTURE_PID=
    grep -E "packets (captured|dropped)" "$LAB_STATE_DIR/tcpdump.err" | tr '\n' ' ' >&2 || true
    echo >&2
    grep -qE "^0 packets dropped by kernel" "$LAB_STATE_DIR/tcpdump.err" || {
        lab_log "tcpdump dropped packets or did not report"
        return 1
    }
}

# ----------------------------------------------------------------- servers
LAB_SERVER_PIDFILE="$LAB_STATE_DIR/server.pid"
LAB_SERVER_NAMEFILE="$LAB_STATE_DIR/server.name"

# Generates a config for the named server into a fresh temp dir and starts
# it in the server namespace on port 21 (IPv4 and IPv6), passive ports
# LAB_PASV_MIN..LAB_PASV_MAX, account LAB_FTP_USER/LAB_FTP_PASS with the
# FTP root LAB_FTP_ROOT (download from /pub, upload into /upload).
# Sets LAB_SERVER_CONF_DIR (configs and logs) and LAB_SERVER_PID.
lab_start_server() {
    local name=$1 dir uid gid
    [[ -d $LAB_FTP_ROOT/pub ]] || { lab_log "lab is not up"; return 1; }
    lab_stop_server
    dir=$(mktemp -d "$LAB_STATE_DIR/$name.XXXXXX") || return 1
    chmod 755 "$dir"
    uid=$(id -u "$LAB_FTP_USER") gid=$(id -g "$LAB_FTP_USER") || return 1
    local cmd=()
    case "$name" in
    vsftpd)
        mkdir -p "$dir/empty" && chmod 555 "$dir/empty"
        sed -e "s|@ROOT@|$LAB_FTP_ROOT|g" -e "s|@DIR@|$dir|g" \
            -e "s|@PASV_MIN@|$LAB_PASV_MIN|g" -e "s|@PASV_MAX@|$LAB_PASV_MAX|g" \
            -e "s|@USER@|$LAB_FTP_USER|g" \
            "$LAB_DIR/conf/vsftpd.conf.in" >"$dir/vsftpd.conf" || return 1
        # Extra lines (e.g. the benchmarks' max_clients=0), one per line.
        [[ -z ${LAB_VSFTPD_EXTRA:-} ]] || printf '%s\n' "$LAB_VSFTPD_EXTRA" >>"$dir/vsftpd.conf"
        cmd=(/usr/sbin/vsftpd "$dir/vsftpd.conf")
        ;;
    proftpd)
        sed -e "s|@ROOT@|$LAB_FTP_ROOT|g" -e "s|@DIR@|$dir|g" \
            -e "s|@PASV_MIN@|$LAB_PASV_MIN|g" -e "s|@PASV_MAX@|$LAB_PASV_MAX|g" \
            -e "s|@USER@|$LAB_FTP_USER|g" \
            "$LAB_DIR/conf/proftpd.conf.in" >"$dir/proftpd.conf" || return 1
        cmd=(env "LD_LIBRARY_PATH=$LAB_PKG_LIBS" "$LAB_PROFTPD" --nodaemon -c "$dir/proftpd.conf")
        ;;
    pureftpd)
        # Virtual user, written directly: pure-pw would hash with argon2id
        # at a cost that makes every login take ~3.5 s; pure-ftpd accepts
        # any crypt(3) hash, so use SHA-512-crypt.
        local hash
        hash=$(openssl passwd -6 -salt ftpalglab "$LAB_FTP_PASS") || return 1
        printf '%s:%s:%s:%s::%s/./::::::::::::\n' "$LAB_FTP_USER" "$hash" "$uid" "$gid" "$LAB_FTP_ROOT" \
            >"$dir/pureftpd.passwd" || return 1
        LD_LIBRARY_PATH=$LAB_PKG_LIBS _lab_t 10 "$LAB_PUREPW" mkdb "$dir/pureftpd.pdb" \
            -f "$dir/pureftpd.passwd" || return 1
        # -l puredb: virtual user (chrooted to its home); -E: no anonymous;
        # -H: no DNS; -p: passive range; -f none: no syslog; -O: xfer log.
        cmd=(env "LD_LIBRARY_PATH=$LAB_PKG_LIBS" "$LAB_PUREFTPD" -l "puredb:$dir/pureftpd.pdb" -E -H
             -p "$LAB_PASV_MIN:$LAB_PASV_MAX" -f none -O "clf:$dir/xfer.log" -c 20 -C 20)
        ;;
    pyftpdlib)
        cmd=("$LAB_SYS_PYTHON" "$LAB_DIR/pyftpdlib_server.py" --root "$LAB_FTP_ROOT" --user "$LAB_FTP_USER"
             --password "$LAB_FTP_PASS" --port "$LAB_FTP_PORT" --passive "$LAB_PASV_MIN-$LAB_PASV_MAX")
        ;;
    scripted)
        # Not a real server: scripted_ftpd.py answers all the lines of one
        # read in one send() (227+221 in one segment) and serves no data.
        cmd=("$LAB_SYS_PYTHON" "$LAB_DIR/scripted_ftpd.py" --port "$LAB_FTP_PORT" --pasv-port "$LAB_PASV_MIN"
             --pasv-count "$((LAB_PASV_MAX - LAB_PASV_MIN + 1))")
        ;;
    *)
        lab_log "unknown server '$name' (vsftpd|proftpd|pureftpd|pyftpdlib|scripted)"
        return 1
        ;;
    esac
    # shellcheck disable=SC2034  # for callers: configs and logs of the server
    LAB_SERVER_CONF_DIR=$dir
    # shellcheck disable=SC2046
    timeout --kill-after=5 "$LAB_SERVER_TIMEOUT" ip netns exec "$LAB_NS_SRV" $(_lab_pin) "${cmd[@]}" \
        >"$dir/stdout.log" 2>"$dir/stderr.log" </dev/null &
    LAB_SERVER_PID=$!
    echo "$LAB_SERVER_PID" >"$LAB_SERVER_PIDFILE"
    echo "$name" >"$LAB_SERVER_NAMEFILE"
    if ! _lab_wait_for 15 _lab_server_listening; then
        lab_log "$name did not start listening on [::]:$LAB_FTP_PORT / 0.0.0.0:$LAB_FTP_PORT; logs in $dir:"
        tail -n 20 "$dir"/*.log >&2 2>/dev/null
        lab_stop_server
        return 1
    fi
    lab_log "$name running (pid $LAB_SERVER_PID, config in $dir)"
}

# True when something in the server namespace accepts TCP on port 21 over
# both IPv4 and IPv6 (a dual-stack [::] socket counts for both).
_lab_server_listening() {
    kill -0 "$LAB_SERVER_PID" 2>/dev/null || return 1
    local l
    l=$(ip netns exec "$LAB_NS_SRV" ss -Hltn "sport = :$LAB_FTP_PORT") || return 1
    [[ -n $l ]] || return 1
    # Probe both families with bash's /dev/tcp from the server namespace.
    # (In the NAT lab the server's IPv4 address is LAB_NAT_SRV_V4.)
    _lab_t 3 ip netns exec "$LAB_NS_SRV" bash -c "exec 3<>/dev/tcp/${LAB_NAT_SRV_V4:-$LAB_SRV_V4}/$LAB_FTP_PORT" &&
        _lab_t 3 ip netns exec "$LAB_NS_SRV" bash -c "exec 3<>/dev/tcp/$LAB_SRV_V6/$LAB_FTP_PORT"
}

_lab_pid_gone() { ! kill -0 "$1" 2>/dev/null; }

lab_stop_server() {
    local pid=
    [[ -r $LAB_SERVER_PIDFILE ]] && pid=$(cat "$LAB_SERVER_PIDFILE")
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        # pid is the `timeout` wrapper: it forwards TERM to the server.
        kill -TERM "$pid" 2>/dev/null || true
        _lab_wait_for 5 _lab_pid_gone "$pid" || true
        kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid" 2>/dev/null || true; }
        wait "$pid" 2>/dev/null || true
    fi
    # Server children (session processes) that survived their master.
    if _lab_ns_exists "$LAB_NS_SRV"; then
        local pids
        pids=$(ip netns pids "$LAB_NS_SRV" 2>/dev/null) || true
        # shellcheck disable=SC2086
        [[ -z $pids ]] || { kill $pids 2>/dev/null || true; sleep 0.2; }
    fi
    rm -f "$LAB_SERVER_PIDFILE" "$LAB_SERVER_NAMEFILE"
    LAB_SERVER_PID=
    return 0
}

# ---------------------------------------------------------------- firewall
# The binary under test and the NFQUEUE number shared by its rules and its
# daemon.  The ruleset text always comes from `$FTPALG_BIN rules`, so the
# lab exercises exactly what ships.
LAB_REPO=$(cd "$LAB_DIR/../.." && pwd)
FTPALG_BIN=${FTPALG_BIN:-$LAB_REPO/target/release/ftp-alg}
LAB_ALG_QUEUE=${LAB_ALG_QUEUE:-0}
# shellcheck disable=SC2034  # for callers: the loaded variant, empty if none
LAB_FW_VARIANT=

# lab_fw_load VARIANT: replace the gateway's firewall with one of
#   alg        nft sets + default-drop forward chain, iptables NFQUEUE rules
#              (queue-bypass) for port 21; start the daemon with lab_alg_start
#   alg-ipset  iptables + ipset; daemon with lab_alg_start --backend ipset
#   kernel     the kernel's FTP conntrack helper (baseline, no daemon)
#   drop       the alg ruleset, meant to run without a daemon: control
#              connections pass (queue-bypass), data connections are dropped
#   kernel-nat the kernel ruleset in the NAT lab (lab_nat_up first), with the
#              operator's NAT table (nf_nat_ftp rewrites) and lab_watch
#   alg-nat    the alg ruleset's NAT form (--nat --outside the NAT lab's
#              outside interface), with the operator's NAT table and lab_watch
#   alg-forward-nat  a control, NOT a deployment: alg-nat with the inside's
#              control packets queued in FORWARD like the outside's (after
#              conntrack), the placement docs/decisions.md D23 rejects: the
#              raw PREROUTING jump to FTPALG_INSIDE is removed and FTPALG_QUEUE
#              queues port 21 from every interface
# The generated script/ruleset is kept in $LAB_STATE_DIR/fw-VARIANT.
lab_fw_load() {
    local variant=${1:-} file gen=() load=()
    case "$variant" in
    alg | drop) gen=(rules --backend nft --queue-via iptables --queue "$LAB_ALG_QUEUE") load=(sh) ;;
    alg-ipset) gen=(rules --backend ipset --queue "$LAB_ALG_QUEUE") load=(sh) ;;
    kernel) gen=(rules --backend kernel) load=(nft -f) ;;
    kernel-nat) gen=(rules --backend kernel) load=(nft -f) ;;
    alg-nat | alg-forward-nat)
        gen=(rules --backend nft --queue-via iptables --queue "$LAB_ALG_QUEUE" --nat --outside "$LAB_NAT_OUTSIDE_IF")
        load=(sh)
        ;;
    *) lab_log "unknown firewall variant '$variant' (alg|alg-ipset|kernel|drop|kernel-nat|alg-nat|alg-forward-nat)"; return 1 ;;
    esac
    if [[ $variant == *-nat && -z $LAB_NAT_TOPO ]]; then
        lab_log "firewall $variant: the NAT lab is not up (lab_nat_up T1|T2)"
        return 1
    fi
    [[ -x $FTPALG_BIN ]] || { lab_log "FTPALG_BIN=$FTPALG_BIN is not executable (cargo build --release?)"; return 1; }
    _lab_ns_exists "$LAB_NS_GW" || { lab_log "lab is not up"; return 1; }
    lab_fw_flush || return 1
    rm -rf "$LAB_ALG_STATE"
    file="$LAB_STATE_DIR/fw-$variant"
    _lab_t "$LAB_STEP_TIMEOUT" "$FTPALG_BIN" "${gen[@]}" >"$file" || {
        lab_log "'$FTPALG_BIN ${gen[*]}' failed"
        return 1
    }
    if [[ $variant == alg-forward-nat ]]; then _lab_forward_queue >>"$file" || return 1; fi
    LAB_CMD_TIMEOUT=$LAB_STEP_TIMEOUT lab_gw "${load[@]}" "$file" || {
        lab_log "loading the $variant ruleset ($file) into $LAB_NS_GW failed"
        return 1
    }
    if [[ $variant == *-nat ]]; then _lab_nat_fw_extras || return 1; fi
    LAB_FW_VARIANT=$variant
    lab_log "firewall: $variant"
}

# The control of D23, appended to the generated NAT script (so the file
# that was loaded says it): the inside's control packets are queued in
# FORWARD too, after conntrack; the rest of the ruleset (sets, maps,
# nat_prerouting, the filter) stays as generated.
_lab_forward_queue() {
    cat <<EOF

# --- tests/lab/lab.sh, firewall alg-forward-nat: a CONTROL, not a deployment.
# The placement docs/decisions.md (D23) rejects: control packets from the inside
# are queued in FORWARD like those from the outside, after conntrack has tracked
# them unrewritten.
for ipt in iptables ip6tables; do
	"\$ipt" -w -t raw -D PREROUTING -j FTPALG_INSIDE
	"\$ipt" -w -t raw -F FTPALG_INSIDE
	"\$ipt" -w -t raw -X FTPALG_INSIDE
	"\$ipt" -w -F FTPALG_QUEUE
	"\$ipt" -w -A FTPALG_QUEUE -p tcp --dport $LAB_FTP_PORT -j NFQUEUE --queue-num $LAB_ALG_QUEUE --queue-bypass
	"\$ipt" -w -A FTPALG_QUEUE -p tcp --sport $LAB_FTP_PORT -j NFQUEUE --queue-num $LAB_ALG_QUEUE --queue-bypass
done
EOF
}

# lab_fw_flush: the gateway goes back to a plain router.  `nft flush
# ruleset` also removes the iptables-nft tables (and resets their policies);
# ipset sets can only be destroyed after that, once no rule refers to them.
lab_fw_flush() {
    # shellcheck disable=SC2034
    LAB_FW_VARIANT=
    _lab_ns_exists "$LAB_NS_GW" || return 0
    LAB_CMD_TIMEOUT=$LAB_STEP_TIMEOUT lab_gw nft flush ruleset || { lab_log "nft flush ruleset failed"; return 1; }
    if command -v ipset >/dev/null; then
        LAB_CMD_TIMEOUT=$LAB_STEP_TIMEOUT lab_gw ipset destroy 2>/dev/null || true
    fi
    return 0
}

# ------------------------------------------------------------------ ftp-alg
# The daemon runs in the gateway namespace under `timeout` (a safety net,
# LAB_ALG_TIMEOUT seconds).  Its stdout and stderr are appended to
# LAB_ALG_LOG; LAB_ALG_MARK is the log's line count when the current
# instance started, so `lab_alg_log` shows only that instance's lines.
LAB_ALG_TIMEOUT=${LAB_ALG_TIMEOUT:-3600}
LAB_ALG_LOG="$LAB_STATE_DIR/ftp-alg.log"
LAB_ALG_PID=
LAB_ALG_MARK=0
# shellcheck disable=SC2034  # for callers: exit status of the last lab_alg_stop
LAB_ALG_STATUS=

# lab_alg_start [ARGS...]: `ftp-alg run --queue $LAB_ALG_QUEUE --backend nft
# ARGS` in the gateway namespace (no default --backend when ARGS has one),
# RUST_LOG=info.  Returns once the log says "ready" (at most 10 s).
lab_alg_start() {
    lab_alg_stop
    [[ -x $FTPALG_BIN ]] || { lab_log "FTPALG_BIN=$FTPALG_BIN is not executable"; return 1; }
    _lab_ns_exists "$LAB_NS_GW" || { lab_log "lab is not up"; return 1; }
    local args=() a backend=
    for a in "$@"; do
        [[ $a == --backend || $a == --backend=* ]] && backend=given
    done
    [[ -n $backend ]] || args=(--backend nft)
    # The lab's own state directory (lab_fw_load empties it: a new ruleset has empty sets).
    [[ " $* " == *" --state-dir "* || " $* " == *" --no-state "* ]] ||
        args+=(--state-dir "$LAB_ALG_STATE")
    args+=("$@")
    mkdir -p "$LAB_STATE_DIR" && touch "$LAB_ALG_LOG" || return 1
    LAB_ALG_MARK=$(wc -l <"$LAB_ALG_LOG")
    timeout --kill-after=5 "$LAB_ALG_TIMEOUT" ip netns exec "$LAB_NS_GW" \
        env RUST_LOG="${LAB_ALG_RUST_LOG:-info}" "$FTPALG_BIN" run --queue "$LAB_ALG_QUEUE" "${args[@]}" \
        >>"$LAB_ALG_LOG" 2>&1 </dev/null &
    LAB_ALG_PID=$!
    _lab_wait_for 10 _lab_alg_ready_or_gone || true
    if ! lab_alg_running || ! lab_alg_log | grep -q ready; then
        lab_log "ftp-alg did not become ready; its log:"
        lab_alg_log >&2
        lab_alg_stop
        return 1
    fi
    lab_log "ftp-alg running (pid $LAB_ALG_PID: run ${args[*]})"
}

# A daemon that already exited will never become ready: stop polling then.
_lab_alg_ready_or_gone() { ! lab_alg_running || lab_alg_log | grep -q ready; }

# lab_alg_log: the current (or last) instance's log lines.
lab_alg_log() {
    [[ -r $LAB_ALG_LOG ]] || return 0
    tail -n "+$((LAB_ALG_MARK + 1))" "$LAB_ALG_LOG"
}

# lab_alg_pid: the daemon's own pid (the child of the `timeout` wrapper
# LAB_ALG_PID; `ip netns exec` and `env` exec into it), or status 1.
lab_alg_pid() {
    lab_alg_running || return 1
    local c
    c=$(cat "/proc/$LAB_ALG_PID/task/$LAB_ALG_PID/children" 2>/dev/null) || return 1
    c=${c%% *}
    # The binary's name (a rebuilt binary reads "... (deleted)").
    [[ -n $c && $(readlink "/proc/$c/exe" 2>/dev/null) == */"${FTPALG_BIN##*/}"* ]] || return 1
    echo "$c"
}

# lab_alg_stats: SIGUSR1 to the running daemon (not to the wrapper, which
# would die of it), then print the stats line it logs, without the log
# prefix (at most 5 s; status 1 if none came).  With several queues, the
# first queue's line.
# lab_alg_kill: SIGKILL the daemon itself (a crash: no state is written), then reap it.
lab_alg_kill() {
    local pid
    pid=$(lab_alg_pid) || { lab_log "lab_alg_kill: no running daemon"; return 1; }
    kill -KILL "$pid" || return 1
    _lab_wait_for 5 _lab_pid_gone "$pid" || return 1
    wait "$LAB_ALG_PID" 2>/dev/null
    LAB_ALG_PID=
}
lab_alg_stats() {
    local pid before
    pid=$(lab_alg_pid) || { lab_log "lab_alg_stats: no running daemon"; return 1; }
    before=$(lab_alg_log | grep -ac ': stats ')
    kill -USR1 "$pid" || return 1
    _lab_wait_for 5 _lab_alg_stats_after "$before" || { lab_log "lab_alg_stats: no stats line within 5 s"; return 1; }
    lab_alg_log | grep -a ': stats ' | sed -n "$((before + 1))p" | sed -e 's/^\[[^]]*\] *//'
}
_lab_alg_stats_after() { (($(lab_alg_log | grep -ac ': stats ') > $1)); }

# lab_alg_running: true while the daemon started by lab_alg_start lives.
lab_alg_running() { [[ -n $LAB_ALG_PID ]] && kill -0 "$LAB_ALG_PID" 2>/dev/null; }

# lab_alg_stop: SIGTERM (the `timeout` wrapper forwards it; the daemon logs
# its stats and exits), wait at most LAB_ALG_STOP_WAIT seconds, then SIGKILL
# the wrapper's process group (SIGKILL cannot be forwarded; `timeout` runs
# in a process group of its own with the daemon).  Sets LAB_ALG_STATUS.
lab_alg_stop() {
    local pid=$LAB_ALG_PID
    LAB_ALG_PID=
    [[ -n $pid ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        if ! _lab_wait_for "${LAB_ALG_STOP_WAIT:-10}" _lab_pid_gone "$pid"; then
            lab_log "ftp-alg ignored SIGTERM for ${LAB_ALG_STOP_WAIT:-10} s; SIGKILL"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    # shellcheck disable=SC2034
    LAB_ALG_STATUS=0
    # shellcheck disable=SC2034
    wait "$pid" 2>/dev/null || LAB_ALG_STATUS=$?
    return 0
}

# ----------------------------------------------------------------- NAT lab
# The same four namespaces with their IPv4 links re-addressed so that the
# gateway translates.  IPv6 stays as lab_up made it (not translated).
#
#   T1 "published server"                 T2 "masqueraded client"
#   cli 203.0.113.2 (outside peer)        cli 192.0.2.2 (inside, private)
#     veth-cli 203.0.113.1 (public)         veth-cli 192.0.2.1
#   gw                                    gw
#     veth-srv 192.0.2.1                    veth-srv 203.0.113.1 (public)
#   srv 192.0.2.2 (inside, private)       srv 203.0.113.2 (outside peer)
#
# The outside peer has an `unreachable 192.0.2.0/24` route: the Internet does
# not route private addresses, so an announcement that still names one fails
# at once instead of reaching the host over the gateway's own route.  The
# other host's link (-oth, 192.0.2.0/24 in lab_up) has no IPv4 address
# meanwhile.  The operator's own NAT rules (lab_nat_operator) are a table of
# their own, ip operator_nat, which lab_fw_load kernel-nat|alg-nat loads:
#   T1  iifname OUTSIDE ip daddr 203.0.113.1 tcp dport 21 dnat to 192.0.2.2, and
#       oifname OUTSIDE masquerade (the server's active-mode connections)
#   T2  oifname OUTSIDE masquerade
# beside inet lab_watch, whose forward chain (priority filter - 20, before the
# ruleset's `ct state invalid drop`) counts the invalid packets it will drop,
# and whose input and output chains count the invalid packets addressed to
# and sent by the gateway itself: a reply to a masqueraded connection that
# conntrack finds invalid is not de-masqueraded, so it is delivered to the
# gateway's own stack, not forwarded, and the gateway answers it (a TCP
# segment for no socket of its own) with a RST, itself invalid to conntrack
# (a RST cannot open a connection).
# Neither server is told the public address (no pasv_address or
# MasqueradeAddress): what a 227 names has to be rewritten at the gateway.
#
#   lab_nat_up T1|T2   re-address (from lab_up's state or the other topology),
#                      flush conntrack, nf_conntrack_tcp_be_liberal=0 in the
#                      gateway; sets the LAB_NAT_* variables below
#   lab_nat_down       back to lab_up's addressing
#   lab_nat_operator   print the operator's NAT table for the current topology
#   lab_nat_counters   "fwd_invalid=N ct_invalid=N ct_drop=N ct_insert_failed=N
#                      in_invalid=N out_invalid=N"
#   lab_make_big NAME MB   a deterministic MB-megabyte file in pub/
#   lab_nat_long_up    T2: a second prefix on the inside link, 198.51.100.0/24
#                      (unused in T2): the gateway 198.51.100.1, the client
#                      also 198.51.100.222, which a PORT line spells longer than
#                      the public address ("198,51,100,222" -> "203,0,113,1": a
#                      rewrite that shrinks the stream by 3 bytes); the server
#                      gets an unreachable route for it.  The client's default
#                      source stays 192.0.2.2: bind to LAB_NAT_LONG_V4 to use it
#   lab_nat_long_down  remove it again
LAB_NAT_PUBLIC_V4=203.0.113.1   # the gateway's public address, on the outside link
LAB_NAT_PEER_V4=203.0.113.2     # the outside peer (T1 client, T2 server)
LAB_NAT_GW_INSIDE_V4=192.0.2.1
LAB_NAT_PRIVATE_V4=192.0.2.2    # the inside host (T1 server, T2 client)
LAB_NAT_PRIVATE_NET=192.0.2.0/24
LAB_NAT_LONG_V4=198.51.100.222  # lab_nat_long_up: the client's second, longer private address
LAB_NAT_LONG_GW_V4=198.51.100.1
LAB_NAT_LONG_NET=198.51.100.0/24
# Set by lab_nat_up: the topology, the gateway's outside and inside
# interfaces, the client's and the server's own addresses, and the address
# the client dials (T1 the public address, T2 the server).
LAB_NAT_TOPO= LAB_NAT_OUTSIDE_IF= LAB_NAT_INSIDE_IF=
LAB_NAT_CLI_V4= LAB_NAT_SRV_V4= LAB_NAT_DIAL_V4=

# _lab_v4_links CLI GW_CLI GW_SRV SRV GW_OTH OTH: the six IPv4 addresses (/24;
# empty: none).  All are removed first, so two links may trade prefixes.
_lab_v4_links() {
    local i ns=("$LAB_NS_CLI" "$LAB_NS_GW" "$LAB_NS_GW" "$LAB_NS_SRV" "$LAB_NS_GW" "$LAB_NS_OTH")
    local ifs=("$LAB_CLI_IF" "$LAB_GW_IF_CLI" "$LAB_GW_IF_SRV" "$LAB_SRV_IF" "$LAB_GW_IF_OTH" "$LAB_OTH_IF")
    local addrs=("$@")
    for i in 0 1 2 3 4 5; do
        _lab_t "$LAB_STEP_TIMEOUT" ip -n "${ns[i]}" -4 addr flush dev "${ifs[i]}" || return 1
    done
    for i in 0 1 2 3 4 5; do
        [[ -z ${addrs[i]:-} ]] ||
            _lab_t "$LAB_STEP_TIMEOUT" ip -n "${ns[i]}" addr add "${addrs[i]}/24" dev "${ifs[i]}" || return 1
    done
}

# _lab_v4_default NS VIA [UNREACHABLE]: the default route, and an unreachable
# route for the private prefix (removed when not given).
_lab_v4_default() {
    local ns=$1 via=$2 unreachable=${3:-}
    _lab_t "$LAB_STEP_TIMEOUT" ip -n "$ns" route replace default via "$via" || return 1
    if [[ -n $unreachable ]]; then
        _lab_t "$LAB_STEP_TIMEOUT" ip -n "$ns" route replace unreachable "$unreachable"
    else
        ip -n "$ns" route del unreachable "$LAB_NAT_PRIVATE_NET" 2>/dev/null
        return 0
    fi
}

lab_nat_up() {
    local topo=${1:-} pub=$LAB_NAT_PUBLIC_V4 peer=$LAB_NAT_PEER_V4 gwin=$LAB_NAT_GW_INSIDE_V4
    local priv=$LAB_NAT_PRIVATE_V4 ns
    [[ $topo == T1 || $topo == T2 ]] || { lab_log "lab_nat_up T1|T2"; return 1; }
    _lab_ns_exists "$LAB_NS_GW" || { lab_log "lab is not up"; return 1; }
    lab_nat_long_down
    LAB_NAT_TOPO=
    if [[ $topo == T1 ]]; then
        _lab_v4_links "$peer" "$pub" "$gwin" "$priv" "" "" &&
            _lab_v4_default "$LAB_NS_CLI" "$pub" "$LAB_NAT_PRIVATE_NET" &&
            _lab_v4_default "$LAB_NS_SRV" "$gwin" || return 1
        LAB_NAT_OUTSIDE_IF=$LAB_GW_IF_CLI LAB_NAT_INSIDE_IF=$LAB_GW_IF_SRV
        LAB_NAT_CLI_V4=$peer LAB_NAT_SRV_V4=$priv LAB_NAT_DIAL_V4=$pub
    else
        _lab_v4_links "$priv" "$gwin" "$pub" "$peer" "" "" &&
            _lab_v4_default "$LAB_NS_CLI" "$gwin" &&
            _lab_v4_default "$LAB_NS_SRV" "$pub" "$LAB_NAT_PRIVATE_NET" || return 1
        LAB_NAT_OUTSIDE_IF=$LAB_GW_IF_SRV LAB_NAT_INSIDE_IF=$LAB_GW_IF_CLI
        LAB_NAT_CLI_V4=$priv LAB_NAT_SRV_V4=$peer LAB_NAT_DIAL_V4=$peer
    fi
    for ns in "$LAB_NS_CLI" "$LAB_NS_GW" "$LAB_NS_SRV" "$LAB_NS_OTH"; do
        _lab_write_hosts "$ns" "$LAB_NAT_CLI_V4" "$LAB_NAT_SRV_V4" "$pub lab-public"
    done
    _lab_nat_gateway_reset || return 1
    # The neighbours answer on the new addresses (each host pings its gateway).
    _lab_wait_for 10 lab_cli ping -c1 -W1 -n "$( [[ $topo == T1 ]] && echo "$pub" || echo "$gwin")" &&
        _lab_wait_for 10 lab_srv ping -c1 -W1 -n "$( [[ $topo == T1 ]] && echo "$gwin" || echo "$pub")" ||
        { lab_log "lab_nat_up $topo: no IPv4 path to the gateway"; return 1; }
    LAB_NAT_TOPO=$topo
    lab_log "NAT lab $topo: client $LAB_NAT_CLI_V4 dials $LAB_NAT_DIAL_V4, server $LAB_NAT_SRV_V4, outside $LAB_NAT_OUTSIDE_IF"
}

# Conntrack starts empty, and strict about TCP windows (the default, stated).
_lab_nat_gateway_reset() {
    LAB_CMD_TIMEOUT=$LAB_STEP_TIMEOUT lab_gw conntrack -F >/dev/null 2>&1 || true
    LAB_CMD_TIMEOUT=$LAB_STEP_TIMEOUT lab_gw sysctl -qw net.netfilter.nf_conntrack_tcp_be_liberal=0 >/dev/null
}

lab_nat_down() {
    local ns
    _lab_ns_exists "$LAB_NS_GW" || return 0
    lab_nat_long_down
    _lab_v4_links "$LAB_CLI_V4" "$LAB_GW_CLI_V4" "$LAB_GW_SRV_V4" "$LAB_SRV_V4" "$LAB_GW_OTH_V4" "$LAB_OTH_V4" &&
        _lab_v4_default "$LAB_NS_CLI" "$LAB_GW_CLI_V4" &&
        _lab_v4_default "$LAB_NS_SRV" "$LAB_GW_SRV_V4" &&
        _lab_v4_default "$LAB_NS_OTH" "$LAB_GW_OTH_V4" || return 1
    for ns in "$LAB_NS_CLI" "$LAB_NS_GW" "$LAB_NS_SRV" "$LAB_NS_OTH"; do
        _lab_write_hosts "$ns" "$LAB_CLI_V4" "$LAB_SRV_V4" "$LAB_OTH_V4 lab-oth"
    done
    LAB_CMD_TIMEOUT=$LAB_STEP_TIMEOUT lab_gw conntrack -F >/dev/null 2>&1 || true
    LAB_NAT_TOPO= LAB_NAT_OUTSIDE_IF= LAB_NAT_INSIDE_IF= LAB_NAT_CLI_V4= LAB_NAT_SRV_V4= LAB_NAT_DIAL_V4=
    _lab_wait_for 10 lab_cli ping -c1 -W1 -n "$LAB_SRV_V4" || { lab_log "lab_nat_down: no IPv4 path cli->srv"; return 1; }
}

lab_nat_operator() {
    [[ -n $LAB_NAT_TOPO ]] || { lab_log "lab_nat_operator: the NAT lab is not up"; return 1; }
    echo "# The operator's own NAT rules (tests/lab/lab.sh, NAT lab $LAB_NAT_TOPO)."
    echo "table ip operator_nat {"
    if [[ $LAB_NAT_TOPO == T1 ]]; then
        echo "	chain prerouting {"
        echo "		type nat hook prerouting priority dstnat; policy accept;"
        echo "		iifname \"$LAB_NAT_OUTSIDE_IF\" ip daddr $LAB_NAT_PUBLIC_V4 tcp dport $LAB_FTP_PORT dnat to $LAB_NAT_PRIVATE_V4"
        echo "	}"
    fi
    echo "	chain postrouting {"
    echo "		type nat hook postrouting priority srcnat; policy accept;"
    echo "		oifname \"$LAB_NAT_OUTSIDE_IF\" masquerade"
    echo "	}"
    echo "}"
}

# The operator's NAT table and the lab's invalid-packet counter, beside the
# generated ruleset (kept in $LAB_STATE_DIR/fw-operator-nat).
_lab_nat_fw_extras() {
    local file="$LAB_STATE_DIR/fw-operator-nat"
    {
        lab_nat_operator || return 1
        echo
        echo "# The lab's counter: what the ruleset's \`ct state invalid drop\` will drop."
        echo "table inet lab_watch {"
        echo "	chain forward {"
        echo "		type filter hook forward priority filter - 20; policy accept;"
        echo "		ct state invalid counter"
        echo "	}"
        echo "	# Invalid packets to the gateway itself (e.g. a reply that was not de-masqueraded)"
        echo "	# and from it (e.g. its RST answering one)."
        echo "	chain input {"
        echo "		type filter hook input priority filter - 20; policy accept;"
        echo "		ct state invalid counter"
        echo "	}"
        echo "	chain output {"
        echo "		type filter hook output priority filter - 20; policy accept;"
        echo "		ct state invalid counter"
        echo "	}"
        echo "}"
    } >"$file" || return 1
    LAB_CMD_TIMEOUT=$LAB_STEP_TIMEOUT lab_gw nft -f "$file" || {
        lab_log "loading the operator's NAT table ($file) failed"
        return 1
    }
}

lab_nat_counters() {
    local fwd ct in out
    fwd=$(LAB_CMD_TIMEOUT=5 lab_gw nft list chain inet lab_watch forward 2>/dev/null |
        awk '/ct state invalid counter/ { for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1) }')
    in=$(LAB_CMD_TIMEOUT=5 lab_gw nft list chain inet lab_watch input 2>/dev/null |
        awk '/ct state invalid counter/ { for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1) }')
    out=$(LAB_CMD_TIMEOUT=5 lab_gw nft list chain inet lab_watch output 2>/dev/null |
        awk '/ct state invalid counter/ { for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1) }')
    ct=$(LAB_CMD_TIMEOUT=5 lab_gw conntrack -S 2>/dev/null | awk '
        { for (i = 1; i <= NF; i++) { split($i, kv, "="); sum[kv[1]] += kv[2] } }
        END { printf "ct_invalid=%d ct_drop=%d ct_insert_failed=%d", sum["invalid"], sum["drop"], sum["insert_failed"] }')
    echo "fwd_invalid=${fwd:-?} $ct in_invalid=${in:-?} out_invalid=${out:-?}"
}

lab_nat_long_up() {
    [[ $LAB_NAT_TOPO == T2 ]] || { lab_log "lab_nat_long_up: T2 only (the NAT lab is '${LAB_NAT_TOPO:-down}')"; return 1; }
    lab_nat_long_down
    _lab_t "$LAB_STEP_TIMEOUT" ip -n "$LAB_NS_GW" addr add "$LAB_NAT_LONG_GW_V4/24" dev "$LAB_NAT_INSIDE_IF" &&
        _lab_t "$LAB_STEP_TIMEOUT" ip -n "$LAB_NS_CLI" addr add "$LAB_NAT_LONG_V4/24" dev "$LAB_CLI_IF" &&
        _lab_t "$LAB_STEP_TIMEOUT" ip -n "$LAB_NS_SRV" route replace unreachable "$LAB_NAT_LONG_NET" || return 1
    _lab_wait_for 10 lab_cli ping -c1 -W1 -n -I "$LAB_NAT_LONG_V4" "$LAB_NAT_LONG_GW_V4" ||
        { lab_log "lab_nat_long_up: $LAB_NAT_LONG_V4 does not reach $LAB_NAT_LONG_GW_V4"; return 1; }
}

lab_nat_long_down() {
    _lab_ns_exists "$LAB_NS_GW" || return 0
    ip -n "$LAB_NS_GW" addr del "$LAB_NAT_LONG_GW_V4/24" dev "$LAB_GW_IF_CLI" 2>/dev/null
    ip -n "$LAB_NS_GW" addr del "$LAB_NAT_LONG_GW_V4/24" dev "$LAB_GW_IF_SRV" 2>/dev/null
    ip -n "$LAB_NS_CLI" addr del "$LAB_NAT_LONG_V4/24" dev "$LAB_CLI_IF" 2>/dev/null
    ip -n "$LAB_NS_SRV" route del unreachable "$LAB_NAT_LONG_NET" 2>/dev/null
    return 0
}

lab_make_big() {
    local name=$1 mb=$2
    "$LAB_SYS_PYTHON" -c 'import hashlib,sys
h = hashlib.shake_256(("ftp-alg-lab:" + sys.argv[1]).encode())
sys.stdout.buffer.write(h.digest(int(sys.argv[2]) << 20))' "$name" "$mb" >"$LAB_FTP_ROOT/pub/$name" &&
        chmod 644 "$LAB_FTP_ROOT/pub/$name"
}
