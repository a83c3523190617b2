#!/usr/bin/python3
"""What the kernel holds and what crossed the wire, for the gateway tests.

Runs under Debian's /usr/bin/python3; standard library only.

  lab_inspect.py set-elems < nft-json
      Reads `nft -j list set inet TABLE SET` on stdin and prints one line
      per element, "SRC DST PORT" (the key of an ftp-alg expectation: data
      source, data destination, data port), sorted by port.  Prints nothing
      for an empty set.  Exits 1 if the input is not such a listing.

  lab_inspect.py segments CAPTURE PORT
      Reads a pcap file (tcpdump -w; Ethernet, IPv4 and IPv6) and prints one
      line per TCP segment with payload to or from PORT, in capture order:
        "c2s|s2c LEN NLINES LINE1|LINE2|..."
      c2s is towards PORT (client to server), LEN the payload length, NLINES
      the number of CRLF- or LF-terminated lines in it, and the lines with
      their terminators removed (non-printable bytes as \\xNN).
"""
import json
import struct
import sys


def set_elems(stream):
    data = json.load(stream)
    out = []
    for obj in data.get("nftables", []):
        s = obj.get("set")
        if s is None:
            continue
        for e in s.get("elem", []):
            # {"elem": {"val": {"concat": [...]}, "expires": N}} with a
            # timeout, or a bare {"concat": [...]} without one.
            if isinstance(e, dict) and "elem" in e:
                e = e["elem"]["val"]
            if isinstance(e, dict) and "concat" in e:
                key = [str(x) for x in e["concat"]]
            else:
                key = [str(e)]
            out.append(key)
    out.sort(key=lambda k: (int(k[-1]) if k[-1].isdigit() else 0, k))
    for key in out:
        print(" ".join(key))
    return 0


def pcap_packets(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise ValueError("%s: not a pcap file" % path)
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError("%s: not a pcap file (pcapng is not read)" % path)
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        raise ValueError("%s: link type %d, only Ethernet (1) is read" % (path, linktype))
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
        yield data[off + 16:off + 16 + incl]
        off += 16 + incl


def tcp_payload(frame):
    """(sport, dport, payload) of a TCP segment in an Ethernet frame, or None."""
    if len(frame) < 14:
        return None
    etype = struct.unpack("!H", frame[12:14])[0]
    ip = frame[14:]
    if etype == 0x0800 and len(ip) >= 20:
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        if ip[9] != 6:
            return None
        seg = ip[ihl:total]
    elif etype == 0x86DD and len(ip) >= 40:
        if ip[6] != 6:  # no extension headers in the lab
            return None
        plen = struct.unpack("!H", ip[4:6])[0]
        seg = ip[40:40 + plen]
    else:
        return None
    if len(seg) < 20:
        return None
    sport, dport = struct.unpack("!HH", seg[:4])
    doff = (seg[12] >> 4) * 4
    return sport, dport, seg[doff:]


def show(line):
    return "".join(chr(b) if 32 <= b < 127 and b != 0x7C else "\\x%02x" % b for b in line)


def segments(path, port):
    for frame in pcap_packets(path):
        t = tcp_payload(frame)
        if t is None:
            continue
        sport, dport, payload = t
        if not payload or port not in (sport, dport):
            continue
        direction = "c2s" if dport == port else "s2c"
        lines = payload.split(b"\n")
        complete = lines[:-1]
        shown = [show(l[:-1] if l.endswith(b"\r") else l) for l in complete]
        if lines[-1]:
            shown.append(show(lines[-1]) + "(partial)")
        print("%s %d %d %s" % (direction, len(payload), len(complete), "|".join(shown)))
    return 0


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "set-elems":
        try:
            return set_elems(sys.stdin)
        except (ValueError, KeyError, TypeError) as e:
            print("lab_inspect.py set-elems: %s" % e, file=sys.stderr)
            return 1
    if len(sys.argv) == 4 and sys.argv[1] == "segments":
        try:
            return segments(sys.argv[2], int(sys.argv[3]))
        except (OSError, ValueError) as e:
            print("lab_inspect.py segments: %s" % e, file=sys.stderr)
            return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
