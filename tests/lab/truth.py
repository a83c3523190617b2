#!/usr/bin/env python3
"""Independent ground truth for FTP captures, derived with tshark only.

    truth.py CAPTURE > pcaps/NAME.expected

tshark dissects the capture (frames, IPv4/IPv6, TCP, and its own FTP
dissector); this script reads the TCP payload of the FTP control
connections, parses PORT/EPRT commands and 227/229 replies itself, and
cross-checks every parsed endpoint against tshark's FTP fields
(ftp.active.*, ftp.passive.*, ftp.eprt.*, ftp.epsv.*).  It shares no code
with the ftp-alg project.

Output: JSON Lines in frame order, no time fields.

  {"type":"expect","trigger":"227","mode":"passive",
   "control":{"client":"198.51.100.2:41234","server":"203.0.113.2:21"},
   "data":{"src":"198.51.100.2","dst":"203.0.113.2","dport":50007}}

    one per PORT/EPRT command (client->server; mode "active", data src =
    control server address, dst = advertised address) and per 227/229
    reply (server->client; mode "passive", data src = control client
    address, dst = advertised address, or the control server address for
    229) that carries a usable endpoint.

  {"type":"admit","conn":{"src":"203.0.113.2:20","dst":"198.51.100.2:41000"}}

    one per TCP SYN (SYN set, ACK clear; a repeated SYN with the same
    4-tuple and the same initial sequence number is a retransmission and is
    ignored) whose source address, destination address and destination
    port equal the data endpoint (src, dst, dport) of an earlier, not yet
    used expectation whose control connection is between the same two
    hosts.  Each expectation admits one connection (the earliest matching
    one is used first).  Expectations do not expire.

Rules:
  * Control connections are TCP connections with server port 21
    (--ftp-port).  Only complete lines (ending in LF) inside one TCP segment
    are parsed; tshark does not reassemble FTP lines across segments.  If a
    line that is or may be PORT/EPRT/227/229 is split across segments, or
    such a line cannot be parsed, or tshark's FTP dissector disagrees with
    the parse, the script prints the problem to stderr and exits 1 instead
    of guessing.  (tshark decodes only upper-case commands; a lower-case
    "eprt"/"port" is parsed here and noted on stderr as not cross-checked.)
  * A line that parses but carries no usable endpoint (a 227/PORT number
    above 255, port 0, an address family other than the control
    connection's) produces no event; it is reported on stderr only.
  * Segments fully retransmitted on a control connection are skipped; a
    partially overlapping one is an error.
  * Frames that are ICMP/ICMPv6 (which quote TCP headers) are ignored.
"""

import argparse
import ipaddress
import json
import re
import subprocess
import sys

FIELDS = [
    "frame.number",
    "ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
    "tcp.stream", "tcp.srcport", "tcp.dstport",
    "tcp.flags.syn", "tcp.flags.ack", "tcp.seq", "tcp.seq_raw", "tcp.len",
    "tcp.payload",
    "ftp.request.command", "ftp.response.code",
    "ftp.active.cip", "ftp.active.port",
    "ftp.passive.ip", "ftp.passive.port",
    "ftp.eprt.ip", "ftp.eprt.ipv6", "ftp.eprt.port",
    "ftp.epsv.port",
]

KEYWORDS = ("PORT", "EPRT", "227", "229")


class Unparseable(Exception):
    pass


class Unusable(Exception):
    pass


def fail(msg):
    print("truth.py: error: " + msg, file=sys.stderr)
    sys.exit(1)


def note(msg):
    print("truth.py: note: " + msg, file=sys.stderr)


def sockaddr(addr, port):
    if addr.version == 6:
        return "[%s]:%d" % (addr.compressed, port)
    return "%s:%d" % (addr.compressed, port)


def parse_port_num(text):
    if not re.fullmatch(r"[0-9]{1,5}", text):
        raise Unparseable("bad port %r" % text)
    p = int(text)
    if not 1 <= p <= 65535:
        raise Unusable("port %d out of range" % p)
    return p


def parse_h_p(text, what):
    """h1,h2,h3,h4,p1,p2 -> (IPv4Address, port)."""
    m = re.fullmatch(r"([0-9]+),([0-9]+),([0-9]+),([0-9]+),([0-9]+),([0-9]+)", text)
    if not m:
        raise Unparseable("%s: no h1,h2,h3,h4,p1,p2 in %r" % (what, text))
    nums = [int(x) for x in m.groups()]
    if any(n > 255 for n in nums):
        raise Unusable("%s: number above 255 in %r" % (what, text))
    port = nums[4] * 256 + nums[5]
    if port == 0:
        raise Unusable("%s: port 0 in %r" % (what, text))
    return ipaddress.IPv4Address(".".join(str(n) for n in nums[:4])), port


def parse_eprt(arg):
    """RFC 2428 EPRT <d><af><d><addr><d><port><d>."""
    if len(arg) < 2 or not 33 <= ord(arg[0]) <= 126:
        raise Unparseable("EPRT: bad delimiter in %r" % arg)
    d = arg[0]
    parts = arg.split(d)
    if len(parts) != 5 or parts[0] != "" or parts[4] != "":
        raise Unparseable("EPRT: malformed %r" % arg)
    af, addr, port = parts[1], parts[2], parts[3]
    try:
        if af == "1":
            a = ipaddress.IPv4Address(addr)
        elif af == "2":
            a = ipaddress.IPv6Address(addr)
        else:
            raise Unusable("EPRT: address family %r" % af)
    except ipaddress.AddressValueError as e:
        raise Unparseable("EPRT: bad address %r (%s)" % (addr, e))
    return a, parse_port_num(port)


def parse_227(text):
    # RFC 1123: the numbers may appear anywhere in the reply text.
    m = re.search(r"[0-9]+,[0-9]+,[0-9]+,[0-9]+,[0-9]+,[0-9]+", text)
    if not m:
        raise Unparseable("227: no h1,h2,h3,h4,p1,p2 in %r" % text)
    return parse_h_p(m.group(0), "227")


def parse_229(text):
    m = re.search(r"\(([\x21-\x7e])\1\1([0-9]+)\1\)", text)
    if not m:
        raise Unparseable("229: no (|||port|) in %r" % text)
    return parse_port_num(m.group(2))


def run_tshark(path):
    cmd = ["tshark", "-n", "-r", path,
           "-o", "tcp.desegment_tcp_streams:FALSE",
           "-o", "tcp.relative_sequence_numbers:TRUE",
           "-Y", "tcp && !icmp && !icmpv6",
           "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=|"]
    for f in FIELDS:
        cmd += ["-e", f]
    try:
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120).stdout
    except subprocess.CalledProcessError as e:
        fail("tshark failed: %s" % e.stderr.strip())
    for line in out.splitlines():
        vals = line.split("\t")
        if len(vals) != len(FIELDS):
            fail("unexpected tshark output line %r" % line)
        yield dict(zip(FIELDS, vals))


def one(row, field):
    v = row[field]
    if "|" in v:
        fail("frame %s: several values for %s (tunnelled packet?)" % (row["frame.number"], field))
    return v


def addresses(row):
    if row["ip.src"]:
        if row["ipv6.src"]:
            fail("frame %s: both IPv4 and IPv6 headers" % row["frame.number"])
        return ipaddress.ip_address(one(row, "ip.src")), ipaddress.ip_address(one(row, "ip.dst"))
    return ipaddress.ip_address(one(row, "ipv6.src")), ipaddress.ip_address(one(row, "ipv6.dst"))


def may_be_keyword(fragment):
    """True if a line starting with this text could be PORT/EPRT/227/229."""
    f = fragment.lstrip(" ").upper()
    return any(f.startswith(k) or k.startswith(f) for k in KEYWORDS)


class Truth:
    def __init__(self, ftp_port):
        self.ftp_port = ftp_port
        self.events = []
        self.pending = []          # [expect_event, consumed, control hosts]
        self.syns = {}             # 4-tuple -> set of ISNs
        self.seen_end = {}         # (stream, direction) -> highest seq end
        self.split = {}            # (stream, direction) -> True if mid-line

    def frame(self, row):
        src, dst = addresses(row)
        sport, dport = int(one(row, "tcp.srcport")), int(one(row, "tcp.dstport"))
        if one(row, "tcp.flags.syn") in ("1", "True") and one(row, "tcp.flags.ack") in ("0", "False"):
            self.syn(row, src, sport, dst, dport)
        if dport == self.ftp_port:
            self.control(row, "c2s", src, sport, dst, dport)
        elif sport == self.ftp_port:
            self.control(row, "s2c", dst, dport, src, sport)

    def syn(self, row, src, sport, dst, dport):
        key = (src, sport, dst, dport)
        isn = one(row, "tcp.seq_raw")
        if key in self.syns:
            if isn in self.syns[key]:
                return              # retransmitted SYN
            note("frame %s: new SYN (ISN %s) on a 4-tuple seen before" % (row["frame.number"], isn))
        self.syns.setdefault(key, set()).add(isn)
        for entry in self.pending:
            ev, used, hosts = entry
            if used:
                continue
            d = ev["data"]
            if (d["src"] == src.compressed and d["dst"] == dst.compressed and d["dport"] == dport
                    and {src, dst} == hosts):
                entry[1] = True
                self.events.append({"type": "admit",
                                    "conn": {"src": sockaddr(src, sport), "dst": sockaddr(dst, dport)}})
                return

    def control(self, row, direction, caddr, cport, saddr, sport):
        fn = row["frame.number"]
        length = int(one(row, "tcp.len"))
        if length == 0:
            return
        stream = one(row, "tcp.stream")
        seq = int(one(row, "tcp.seq"))
        k = (stream, direction)
        end = self.seen_end.get(k)
        if end is not None and seq + length <= end:
            note("frame %s: retransmitted control segment skipped" % fn)
            return
        if end is not None and seq < end:
            fail("frame %s: control segment partially overlaps earlier data" % fn)
        if end is not None and seq > end:
            note("frame %s: gap in control stream %s (%s), %d bytes missing"
                 % (fn, stream, direction, seq - end))
            self.split[k] = False
        self.seen_end[k] = seq + length

        payload = bytes.fromhex(one(row, "tcp.payload").replace(":", ""))
        if len(payload) != length:
            fail("frame %s: payload length %d, tcp.len %d" % (fn, len(payload), length))
        text = payload.decode("latin-1")
        pieces = text.split("\n")
        lines, tail = pieces[:-1], pieces[-1]
        first = True
        tail_starts_line = True
        if self.split.get(k):
            if lines:
                # End of a line whose start (earlier segment) was judged
                # not to be PORT/EPRT/227/229.
                lines = lines[1:]
                first = False
            else:
                tail_starts_line = False
        for line in lines:
            self.line(row, direction, line.rstrip("\r"), first, caddr, cport, saddr, sport)
            first = False
        if tail and tail_starts_line and may_be_keyword(tail):
            fail("frame %s: FTP line split across TCP segments, not parsed: %r" % (fn, tail))
        self.split[k] = bool(tail)

    def line(self, row, direction, line, first, caddr, cport, saddr, sport):
        fn = row["frame.number"]
        control = {"client": sockaddr(caddr, cport), "server": sockaddr(saddr, sport)}
        family = caddr.version
        if direction == "c2s":
            m = re.match(r" *([A-Za-z]+)(?: (.*))?$", line)
            if not m or m.group(1).upper() not in ("PORT", "EPRT"):
                return
            cmd, arg = m.group(1).upper(), (m.group(2) or "").strip(" ")
            try:
                if cmd == "PORT":
                    addr, port = parse_h_p(arg, "PORT")
                else:
                    addr, port = parse_eprt(arg)
                if addr.version != family:
                    raise Unusable("%s: IPv%d address on an IPv%d control connection"
                                   % (cmd, addr.version, family))
            except Unparseable as e:
                fail("frame %s: cannot parse %r: %s" % (fn, line, e))
            except Unusable as e:
                note("frame %s: no usable endpoint in %r: %s" % (fn, line, e))
                return
            if first:
                self.crosscheck(row, cmd, addr, port)
            ev = {"type": "expect", "trigger": cmd, "mode": "active", "control": control,
                  "data": {"src": saddr.compressed, "dst": addr.compressed, "dport": port}}
        else:
            if not re.match(r"22[79] ", line):
                if re.match(r" *22[79]", line):
                    note("frame %s: not a final 227/229 reply line, ignored: %r" % (fn, line))
                return
            code = line[:3]
            try:
                if code == "227":
                    addr, port = parse_227(line[4:])
                    if family != 4:
                        raise Unusable("227 on an IPv6 control connection")
                else:
                    addr, port = saddr, parse_229(line[4:])
            except Unparseable as e:
                fail("frame %s: cannot parse %r: %s" % (fn, line, e))
            except Unusable as e:
                note("frame %s: no usable endpoint in %r: %s" % (fn, line, e))
                return
            if first:
                self.crosscheck(row, code, addr, port)
            ev = {"type": "expect", "trigger": code, "mode": "passive", "control": control,
                  "data": {"src": caddr.compressed, "dst": addr.compressed, "dport": port}}
        self.events.append(ev)
        self.pending.append([ev, False, {caddr, saddr}])

    def crosscheck(self, row, what, addr, port):
        """The line is the first in its segment: tshark's FTP dissector must agree."""
        if what == "PORT":
            fa, fp = row["ftp.active.cip"], row["ftp.active.port"]
        elif what == "227":
            fa, fp = row["ftp.passive.ip"], row["ftp.passive.port"]
        elif what == "EPRT":
            fa, fp = row["ftp.eprt.ip"] or row["ftp.eprt.ipv6"], row["ftp.eprt.port"]
        else:
            fa, fp = addr.compressed, row["ftp.epsv.port"]
        if not fa and not fp:
            # tshark's FTP dissector only decodes upper-case commands.
            note("frame %s: tshark did not decode %s; not cross-checked" % (row["frame.number"], what))
            return
        try:
            ok = ipaddress.ip_address(fa) == addr and int(fp) == port
        except ValueError:
            ok = False
        if not ok:
            fail("frame %s: tshark's FTP dissector reads %s as %r port %r, this script as %s port %d"
                 % (row["frame.number"], what, fa, fp, addr, port))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("capture")
    ap.add_argument("--ftp-port", type=int, default=21)
    args = ap.parse_args()
    t = Truth(args.ftp_port)
    for row in run_tshark(args.capture):
        t.frame(row)
    for ev in t.events:
        print(json.dumps(ev, separators=(",", ":")))


if __name__ == "__main__":
    main()
