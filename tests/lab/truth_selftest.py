#!/usr/bin/env python3
"""Self-test for truth.py on small hand-built captures (needs tshark).

    python3 tests/lab/truth_selftest.py

Builds pcaps with chosen FTP control lines and SYNs (including the awkward
cases the lab captures do not contain: several lines in one segment, a line
split across segments, unusable and malformed endpoints, retransmitted
SYNs and segments, SYNs from the wrong host) and checks truth.py's output
and exit status.  capture-samples.sh runs it before capturing.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TRUTH = os.path.join(HERE, "truth.py")

C4, S4 = "198.51.100.2", "203.0.113.2"
C6, S6 = "2001:db8:100::2", "2001:db8:113::2"


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip_bytes(a):
    import ipaddress
    return ipaddress.ip_address(a).packed


class Pcap:
    def __init__(self):
        self.frames = []
        self.seq = {}   # (src, sport, dst, dport) -> next seq

    def tcp(self, src, sport, dst, dport, flags, payload=b"", seq=None, isn=1000):
        key = (src, sport, dst, dport)
        if flags & 0x02:
            seq = isn if seq is None else seq
            self.seq[key] = seq + 1
        elif seq is None:
            seq = self.seq.get(key, isn + 1)
            self.seq[key] = seq + len(payload)
        ack = 1 if flags & 0x10 else 0
        hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
        v6 = ":" in src
        s, d = ip_bytes(src), ip_bytes(dst)
        seg = hdr + payload
        if v6:
            pseudo = s + d + struct.pack("!IxxxB", len(seg), 6)
        else:
            pseudo = s + d + struct.pack("!xBH", 6, len(seg))
        seg = seg[:16] + struct.pack("!H", csum(pseudo + seg)) + seg[18:]
        if v6:
            ip = struct.pack("!IHBB", 6 << 28, len(seg), 6, 64) + s + d
            eth_type = 0x86DD
        else:
            ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(seg), 1, 0, 64, 6, 0) + s + d
            ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
            eth_type = 0x0800
        eth = b"\x02\0\0\0\0\x01" + b"\x02\0\0\0\0\x02" + struct.pack("!H", eth_type)
        self.frames.append(eth + ip + seg)

    def write(self, path):
        with open(path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
            for i, fr in enumerate(self.frames):
                f.write(struct.pack("<IIII", 1000 + i, 0, len(fr), len(fr)))
                f.write(fr)


SYN, ACK, PSH = 0x02, 0x10, 0x08


def session(p, c=C4, s=S4, cport=40000):
    p.tcp(c, cport, s, 21, SYN, isn=100)
    p.tcp(s, 21, c, cport, SYN | ACK, isn=500)


def run(p):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.pcap")
        p.write(path)
        r = subprocess.run([sys.executable, TRUTH, path], capture_output=True, text=True, timeout=60)
        return r.returncode, [json.loads(x) for x in r.stdout.splitlines()], r.stderr


def case_normal():
    p = Pcap()
    session(p)
    p.tcp(S4, 21, C4, 40000, PSH | ACK, b"227 Entering Passive Mode (203,0,113,2,195,80).\r\n")
    p.tcp(C4, 41000, S4, 50000, SYN, isn=7)          # admitted
    p.tcp(C4, 41000, S4, 50000, SYN, isn=7)          # retransmission: ignored
    p.tcp(C4, 41001, S4, 50000, SYN, isn=9)          # expectation used up
    rc, ev, err = run(p)
    assert rc == 0, err
    assert ev == [
        {"type": "expect", "trigger": "227", "mode": "passive",
         "control": {"client": "198.51.100.2:40000", "server": "203.0.113.2:21"},
         "data": {"src": "198.51.100.2", "dst": "203.0.113.2", "dport": 50000}},
        {"type": "admit", "conn": {"src": "198.51.100.2:41000", "dst": "203.0.113.2:50000"}},
    ], ev


def case_two_lines_one_segment_and_retransmit():
    p = Pcap()
    session(p)
    p.tcp(C4, 40000, S4, 21, PSH | ACK, b"TYPE I\r\nPORT 198,51,100,2,160,1\r\n")
    p.tcp(C4, 40000, S4, 21, PSH | ACK, b"TYPE I\r\nPORT 198,51,100,2,160,1\r\n", seq=101)  # retransmission
    p.tcp(S4, 20, C4, 40961, SYN, isn=3)
    rc, ev, err = run(p)
    assert rc == 0, err
    assert [e["type"] for e in ev] == ["expect", "admit"], ev
    assert ev[0]["trigger"] == "PORT" and ev[0]["data"] == {"src": S4, "dst": C4, "dport": 40961}, ev
    assert ev[1]["conn"] == {"src": "203.0.113.2:20", "dst": "198.51.100.2:40961"}, ev


def case_unusable():
    p = Pcap()
    session(p)
    p.tcp(S4, 21, C4, 40000, PSH | ACK, b"227 Entering Passive Mode (203,0,113,256,195,80).\r\n")
    p.tcp(C4, 40000, S4, 21, PSH | ACK, b"PORT 198,51,100,2,0,0\r\n")
    rc, ev, err = run(p)
    assert rc == 0 and ev == [] and "no usable endpoint" in err, (rc, ev, err)


def case_split_line():
    p = Pcap()
    session(p)
    p.tcp(S4, 21, C4, 40000, PSH | ACK, b"227 Entering Passive Mode (203,0,113")
    p.tcp(S4, 21, C4, 40000, PSH | ACK, b",2,195,80).\r\n")
    rc, ev, err = run(p)
    assert rc == 1 and "split" in err, (rc, ev, err)


def case_split_harmless():
    p = Pcap()
    session(p)
    p.tcp(S4, 21, C4, 40000, PSH | ACK, b"150 Opening BINARY mode data connection for a file named 227 ")
    p.tcp(S4, 21, C4, 40000, PSH | ACK, b"(1,2,3,4,5,6)\r\n229 Entering Extended Passive Mode (|||50001|)\r\n")
    rc, ev, err = run(p)
    assert rc == 0, err
    assert [(e["trigger"], e["data"]["dport"]) for e in ev] == [("229", 50001)], ev


def case_malformed():
    for line in (b"EPRT |1|198.51.100.2|\r\n", b"EPRT |1|198.51.100.300|5000|\r\n", b"PORT 198,51,100,2\r\n"):
        p = Pcap()
        session(p)
        p.tcp(C4, 40000, S4, 21, PSH | ACK, line)
        rc, ev, err = run(p)
        assert rc == 1 and "cannot parse" in err, (line, rc, ev, err)
    p = Pcap()
    session(p)
    p.tcp(S4, 21, C4, 40000, PSH | ACK, b"229 Entering Extended Passive Mode\r\n")
    rc, ev, err = run(p)
    assert rc == 1 and "cannot parse" in err, (rc, ev, err)


def case_v6_and_hosts():
    p = Pcap()
    session(p, C6, S6, 40002)
    p.tcp(C6, 40002, S6, 21, PSH | ACK, b"eprt |2|2001:DB8:100:0:0:0:0:2|50123|\r\n")
    p.tcp("2001:db8:113::99", 20, C6, 50123, SYN, isn=1)   # third host: no admit
    p.tcp(S6, 20, C6, 50123, SYN, isn=2)                   # admitted
    p.tcp(S6, 21, C6, 40002, PSH | ACK, b"229 Entering Extended Passive Mode (!!!50002!)\r\n")
    rc, ev, err = run(p)
    assert rc == 0, err
    assert ev == [
        {"type": "expect", "trigger": "EPRT", "mode": "active",
         "control": {"client": "[2001:db8:100::2]:40002", "server": "[2001:db8:113::2]:21"},
         "data": {"src": S6, "dst": C6, "dport": 50123}},
        {"type": "admit", "conn": {"src": "[2001:db8:113::2]:20", "dst": "[2001:db8:100::2]:50123"}},
        {"type": "expect", "trigger": "229", "mode": "passive",
         "control": {"client": "[2001:db8:100::2]:40002", "server": "[2001:db8:113::2]:21"},
         "data": {"src": C6, "dst": S6, "dport": 50002}},
    ], ev


def case_syn_before_expect():
    p = Pcap()
    session(p)
    p.tcp(C4, 41000, S4, 50000, SYN, isn=7)   # before the 227: not admitted
    p.tcp(S4, 21, C4, 40000, PSH | ACK, b"227 Entering Passive Mode (203,0,113,2,195,80).\r\n")
    p.tcp(C4, 41000, S4, 50000, SYN, isn=7)   # same ISN: a retransmission, still ignored
    p.tcp(C4, 41002, S4, 50000, SYN, isn=8)   # admitted
    rc, ev, err = run(p)
    assert rc == 0, err
    assert [e["type"] for e in ev] == ["expect", "admit"], ev
    assert ev[1]["conn"]["src"] == "198.51.100.2:41002", ev


def main():
    cases = [v for k, v in sorted(globals().items()) if k.startswith("case_")]
    failed = 0
    for c in cases:
        try:
            c()
            print("ok   %s" % c.__name__)
        except AssertionError as e:
            failed += 1
            print("FAIL %s: %s" % (c.__name__, e))
    print("%d passed, %d failed" % (len(cases) - failed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
