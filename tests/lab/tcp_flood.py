#!/usr/bin/python3
"""One-segment TCP "connections" for the gateway tests' flood part.

Runs under Debian's /usr/bin/python3 inside a lab namespace, as root (raw
socket).  Standard library only.

  tcp_flood.py SRC DST [--dport 21] [--count 20000] [--first-sport 20000]
               [--payload 'NOOP\\r\\n'] [--rate PPS] [--batch N]

Sends COUNT IPv4 TCP segments SRC:sport -> DST:dport, one per source port
(FIRST_SPORT, FIRST_SPORT+1, ...; all distinct), each with ACK|PSH, the
payload and random sequence and acknowledgment numbers, and no handshake.
A stateful firewall with nf_conntrack_tcp_loose=1 picks each up mid-stream
as a new connection, so each reaches an FTP gateway's queue as a new
control connection that never proves to be FTP.  The segments are built
first (IP_HDRINCL through an IPPROTO_RAW socket; the kernel fills in the IP
checksum and the IP id, this script the TCP checksum), then sent as fast as
possible, or paced to --rate segments per second in batches of --batch.

Prints one line: "sent N in S s (R/s), first sport A, last sport B".
Exits 1 if a send failed (the line then says where).
"""
import argparse
import os
import socket
import struct
import sys
import time

TCP_ACK = 0x10
TCP_PSH = 0x08


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def segment(src, dst, sport, dport, seq, ack, payload):
    """IPv4 header + TCP header (20 bytes, no options) + payload."""
    window = 64240
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, TCP_ACK | TCP_PSH, window, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp) + len(payload))
    csum = checksum(pseudo + tcp + payload)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    total = 20 + len(tcp) + len(payload)
    # Version/IHL, TOS, total length, id (0: the kernel fills it), DF,
    # TTL, protocol, checksum (the kernel fills it), addresses.
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, socket.IPPROTO_TCP, 0, src, dst)
    return ip + tcp + payload


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--dport", type=int, default=21)
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--first-sport", type=int, default=20000)
    ap.add_argument("--payload", default="NOOP\\r\\n", help="backslash escapes allowed")
    ap.add_argument("--rate", type=float, default=0.0, help="segments per second (0: as fast as possible)")
    ap.add_argument("--batch", type=int, default=200)
    args = ap.parse_args()
    if args.count < 1 or args.first_sport < 1 or args.first_sport + args.count - 1 > 65535:
        ap.error("source ports FIRST_SPORT .. FIRST_SPORT+COUNT-1 must lie in 1..65535")
    payload = args.payload.encode().decode("unicode_escape").encode("latin-1")
    src = socket.inet_aton(args.src)
    dst = socket.inet_aton(args.dst)

    packets = []
    for i in range(args.count):
        seq, ack = struct.unpack("!II", os.urandom(8))
        packets.append(segment(src, dst, args.first_sport + i, args.dport, seq, ack, payload))

    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    to = (args.dst, 0)
    start = time.monotonic()
    sent = 0
    try:
        for i, p in enumerate(packets):
            s.sendto(p, to)
            sent += 1
            if args.rate > 0 and sent % args.batch == 0:
                ahead = start + sent / args.rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
    except OSError as e:
        secs = time.monotonic() - start
        print("sent %d in %.2f s, then failed at sport %d: %s" % (sent, secs, args.first_sport + sent, e), flush=True)
        return 1
    secs = time.monotonic() - start
    rate = sent / secs if secs > 0 else float("inf")
    print("sent %d in %.2f s (%.0f/s), first sport %d, last sport %d"
          % (sent, secs, rate, args.first_sport, args.first_sport + sent - 1), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
