#!/usr/bin/python3
"""Hostile clients and raw packets for tests/lab/hostile-tests.sh.

Owns: the client side of the live adversarial cases.  Standard library only; runs under
Debian's /usr/bin/python3 in a lab namespace (raw packets need root).  Each subcommand
prints one line.

  hostile_probe.py slipstream HOST DATAPORT [--hold S]
      Listens on DATAPORT, connects to HOST:21, reads the greeting, then sends an HTTP POST
      whose body starts with "PORT <own address>,DATAPORT" at the start of a TCP segment
      of its own (TCP_NODELAY, two send()s 100 ms apart), as a NAT-slipstreaming page
      would.  Keeps the connection open HOLD seconds (default 6) and counts connections
      to DATAPORT.  "sent HEAD+BODY bytes; server said CODE; accepted N"

  hostile_probe.py active HOST USER PASS HOW
      Logs in and makes one active-mode RETR pub/file20k.bin whose PORT line is sent
      HOW: "bytewise" (one byte per send(), TCP_NODELAY, 20 ms apart), "urgent" (the
      line's 20th byte sent with MSG_OOB: the segment carries URG) or "iac" (an IAC NOP
      inside the verb: "PO<IAC><NOP>RT ...").  "ok BYTES SHA256 reply=CODE" or
      "fail reply=CODE ..." (no data connection then).

  hostile_probe.py pasv HOST USER [--timeout S]
      Logs in to hostile_ftpd.py as USER (which picks its lie), sends PASV, and connects
      where the 227 it read says; then a second PASV (answered honestly).
      "first ADDR:PORT connect|timeout|refused BYTES; second ADDR:PORT ..."

  hostile_probe.py raw KIND SRC DST [--count N] [--dport 21] [--first-sport P]
      Sends crafted datagrams SRC -> DST:dport through a raw socket (IPv4: IP_HDRINCL;
      IPv6: IPPROTO_RAW, header included), payload "PORT ...\\r\\n" with ACK|PSH, KIND:
        syn      N SYNs from distinct source ports, never completed (the peer's SYN-ACK
                 is answered by nobody: SRC is SRC, but no socket listens)
        badsum   a wrong TCP checksum
        trunc    a TCP header cut to 12 bytes (the IP length says so)
        ipopt    IPv4 with 4 bytes of options (NOP NOP NOP EOL)
        frag4    the segment in two IPv4 fragments (8 bytes, then the rest)
        v6ext    IPv6 with a hop-by-hop and a destination options header
        frag6    the segment in two IPv6 fragments (24 bytes, then the rest)
      "sent N datagrams (KIND)"
"""
import argparse
import hashlib
import os
import socket
import struct
import sys
import time

from tcp_flood import checksum as csum  # the Internet checksum (RFC 1071), one copy


# ---------------------------------------------------------------- FTP clients
class Ftp:
    def __init__(self, host, timeout=10):
        self.sock = socket.create_connection((host, 21), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def line(self):
        while b"\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError("control connection closed")
            self.buf += d
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    def reply(self):
        first = self.line()
        if first[3:4] == b"-":
            while True:
                l = self.line()
                if l[:3] == first[:3] and l[3:4] == b" ":
                    return l
        return first

    def drain(self, secs=1.0):
        """Forget whatever the server sent beyond the replies read so far."""
        self.sock.settimeout(secs)
        try:
            while self.sock.recv(65536):
                pass
        except socket.timeout:
            pass
        self.sock.settimeout(10)
        self.buf = b""

    def cmd(self, text):
        self.sock.sendall(text.encode("latin-1") + b"\r\n")
        return self.reply()

    def login(self, user, password):
        self.reply()
        self.cmd("USER " + user)
        r = self.cmd("PASS " + password)
        if not r.startswith(b"230"):
            raise RuntimeError("login: %r" % r)
        self.cmd("TYPE I")


def slipstream(args):
    own = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c = socket.create_connection((args.host, 21), timeout=5)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    me = c.getsockname()[0]
    own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    own.bind((me, args.dataport))
    own.listen(4)
    own.settimeout(0.2)
    greeting = c.recv(4096)
    body = ("PORT %s,%d,%d\r\n" % (me.replace(".", ","), args.dataport >> 8, args.dataport & 255)).encode()
    body += b"x" * 64
    head = ("POST /upload HTTP/1.1\r\nHost: %s:21\r\nContent-Length: %d\r\n\r\n"
            % (args.host, len(body))).encode()
    c.sendall(head)
    time.sleep(0.1)
    c.sendall(body)
    c.settimeout(2)
    try:
        answer = c.recv(4096)
    except OSError:
        answer = b""
    accepted = 0
    end = time.monotonic() + args.hold
    while time.monotonic() < end:
        try:
            d, _ = own.accept()
            accepted += 1
            d.close()
        except socket.timeout:
            pass
    c.close()
    code = (answer[:3] or b"none").decode("latin-1")
    return "sent %d+%d bytes; greeting %s; server said %s; accepted %d" % (
        len(head), len(body), greeting[:3].decode("latin-1"), code, accepted)


def active(args):
    f = Ftp(args.host)
    f.login(args.user, args.password)
    me = f.sock.getsockname()[0]
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind((me, 0))
    ls.listen(1)
    ls.settimeout(10)
    port = ls.getsockname()[1]
    line = ("PORT %s,%d,%d\r\n" % (me.replace(".", ","), port >> 8, port & 255)).encode()
    if args.how == "bytewise":
        for i in range(len(line)):
            f.sock.send(line[i:i + 1])
            time.sleep(0.02)
    elif args.how == "urgent":
        f.sock.send(line[:19])
        time.sleep(0.05)
        f.sock.send(line[19:20], socket.MSG_OOB)
        time.sleep(0.05)
        f.sock.send(line[20:])
    elif args.how == "iac":
        f.sock.sendall(b"PO\xff\xf1" + line[2:])
    r = f.reply()
    code = r[:3].decode("latin-1")
    if not r.startswith(b"2"):
        f.cmd("QUIT")
        return "fail reply=%s port=%d" % (code, port)
    f.sock.sendall(b"RETR pub/file20k.bin\r\n")
    try:
        d, _ = ls.accept()
    except socket.timeout:
        return "fail reply=%s port=%d no data connection" % (code, port)
    h = hashlib.sha256()
    n = 0
    while True:
        chunk = d.recv(65536)
        if not chunk:
            break
        h.update(chunk)
        n += len(chunk)
    d.close()
    f.reply()
    f.reply()
    f.cmd("QUIT")
    return "ok %d %s reply=%s port=%d" % (n, h.hexdigest(), code, port)


def parse227(r):
    inside = r[r.index(b"(") + 1:r.index(b")")].split(b",")
    n = [int(x) for x in inside]
    return "%d.%d.%d.%d" % tuple(n[:4]), n[4] * 256 + n[5]


def try_data(host, port, timeout):
    try:
        d = socket.create_connection((host, port), timeout=timeout)
    except socket.timeout:
        return "timeout 0"
    except ConnectionRefusedError:
        return "refused 0"
    except OSError as e:
        return "error:%s 0" % e.errno
    d.settimeout(timeout)
    got = b""
    try:
        while True:
            chunk = d.recv(4096)
            if not chunk:
                break
            got += chunk
    except OSError:
        pass
    d.close()
    return "connect %d" % len(got)


def pasv(args):
    f = Ftp(args.host, timeout=20)
    f.login(args.user, "x")
    out = []
    for which in ("first", "second"):
        r = f.cmd("PASV")
        if not r.startswith(b"227"):
            out.append("%s answered %r" % (which, r[:40]))
            continue
        host, port = parse227(r)
        out.append("%s %s:%d %s" % (which, host, port, try_data(host, port, args.timeout)))
        f.drain()
    f.cmd("QUIT")
    return "; ".join(out)


# ---------------------------------------------------------------- raw datagrams
def tcp_segment(src, dst, v6, sport, dport, flags, payload, bad=False):
    seq, ack = struct.unpack("!II", os.urandom(8))
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack if flags & 0x10 else 0, 5 << 4, flags, 64240, 0, 0)
    if v6:
        pseudo = src + dst + struct.pack("!IxxxB", len(hdr) + len(payload), 6)
    else:
        pseudo = src + dst + struct.pack("!BBH", 0, 6, len(hdr) + len(payload))
    c = csum(pseudo + hdr + payload) ^ (0x5A5A if bad else 0)
    return hdr[:16] + struct.pack("!H", c) + hdr[18:] + payload


def ipv4(src, dst, body, ident=0, frag=0x4000, options=b""):
    ihl = 5 + len(options) // 4
    h = struct.pack("!BBHHHBBH4s4s", (4 << 4) | ihl, 0, 20 + len(options) + len(body), ident, frag, 64, 6, 0,
                    src, dst) + options
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + body


def ipv6(src, dst, nh, body):
    return struct.pack("!IHBB16s16s", 6 << 28, len(body), nh, 64, src, dst) + body


def raw(args):
    v6 = ":" in args.dst
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    src = socket.inet_pton(fam, args.src)
    dst = socket.inet_pton(fam, args.dst)
    s = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_RAW)
    payload = b"PORT 198,51,100,2,195,80\r\n"
    ident = struct.unpack("!H", os.urandom(2))[0] | 1
    sent = 0
    for i in range(args.count):
        sport = args.first_sport + i
        k = args.kind
        if k == "syn":
            dgrams = [ipv4(src, dst, tcp_segment(src, dst, v6, sport, args.dport, 0x02, b""))]
        else:
            seg = tcp_segment(src, dst, v6, sport, args.dport, 0x18, payload, bad=(k == "badsum"))
            if k == "badsum":
                dgrams = [ipv6(src, dst, 6, seg) if v6 else ipv4(src, dst, seg)]
            elif k == "trunc":
                dgrams = [ipv4(src, dst, seg[:12])]
            elif k == "ipopt":
                dgrams = [ipv4(src, dst, seg, options=b"\x01\x01\x01\x00")]
            elif k == "frag4":
                dgrams = [ipv4(src, dst, seg[:8], ident=ident + i, frag=0x2000),
                          ipv4(src, dst, seg[8:], ident=ident + i, frag=1)]
            elif k == "v6ext":
                hbh = struct.pack("!BB", 60, 0) + b"\x01\x04\0\0\0\0"
                dst_opts = struct.pack("!BB", 6, 0) + b"\x01\x04\0\0\0\0"
                dgrams = [ipv6(src, dst, 0, hbh + dst_opts + seg)]
            elif k == "frag6":
                fid = struct.unpack("!I", os.urandom(4))[0]
                # The first fragment holds the whole TCP header (RFC 7112; Linux drops
                # a first fragment without it).
                f1 = struct.pack("!BBHI", 6, 0, 0 | 1, fid) + seg[:24]
                f2 = struct.pack("!BBHI", 6, 0, 24, fid) + seg[24:]
                dgrams = [ipv6(src, dst, 44, f1), ipv6(src, dst, 44, f2)]
            else:
                raise SystemExit("unknown kind %s" % k)
        for d in dgrams:
            s.sendto(d, (args.dst, 0))
            sent += 1
    return "sent %d datagrams (%s)" % (sent, args.kind)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("slipstream")
    p.add_argument("host")
    p.add_argument("dataport", type=int)
    p.add_argument("--hold", type=float, default=6)
    p = sub.add_parser("active")
    p.add_argument("host")
    p.add_argument("user")
    p.add_argument("password")
    p.add_argument("how", choices=["bytewise", "urgent", "iac"])
    p = sub.add_parser("pasv")
    p.add_argument("host")
    p.add_argument("user")
    p.add_argument("--timeout", type=float, default=3)
    p = sub.add_parser("raw")
    p.add_argument("kind", choices=["syn", "badsum", "trunc", "ipopt", "frag4", "v6ext", "frag6"])
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--dport", type=int, default=21)
    p.add_argument("--first-sport", type=int, default=30000)
    args = ap.parse_args()
    try:
        out = {"slipstream": slipstream, "active": active, "pasv": pasv, "raw": raw}[args.what](args)
    except (OSError, EOFError, RuntimeError, ValueError) as e:
        out = "fail %s: %s" % (type(e).__name__, e)
    print(out, flush=True)
    return 0 if not out.startswith("fail") else 1


if __name__ == "__main__":
    sys.exit(main())
