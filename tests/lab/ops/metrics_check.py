#!/usr/bin/python3
"""Checks for tests/lab/ops/metrics.sh (standard library only).

  metrics_check.py expo < exposition
      Parse a Prometheus text exposition (format 0.0.4) strictly: HELP then TYPE once per
      family before its samples, valid metric and label names, quoted label values, numeric
      values, counters named *_total, histogram buckets cumulative with le="+Inf" equal to
      _count.  Prints "ok FAMILIES SAMPLES" or "bad LINE: why" (exit 1).

  metrics_check.py get NAME [LABEL=VALUE ...] < exposition
      Print the value of one sample (labels in any order), or "absent".

  metrics_check.py sum NAME < exposition
      The sum of every sample of NAME (any labels).

  metrics_check.py jsonl LOGFILE
      Every line must be one JSON object with a "type"; prints "ok LINES TYPE=N ..." or
      "bad LINENO: text" (exit 1).

  metrics_check.py events LOGFILE TYPE
      The JSON events of TYPE, one per line: "SRC DST DPORT" for expect/revoke, "REASON"
      for refuse.

  metrics_check.py ftp-pause HOST USER PASS FILE SECONDS
      Log in, send PASV, print "port N", wait SECONDS (the caller looks at the kernel set),
      then connect and RETR FILE; print "got BYTES SHA256".
"""
import hashlib
import json
import re
import sys

NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL = re.compile(r'^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"$')


def parse(text):
    """[(name, {labels}, value)] and {family: type}; raises ValueError on a bad line."""
    types, helped, samples, current, done = {}, set(), [], None, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line[7:].split(" ", 1)[0]
            if not NAME.match(name) or name in helped:
                raise ValueError("%s: bad or repeated HELP" % line)
            helped.add(name)
            continue
        if line.startswith("# TYPE "):
            parts = line[7:].split(" ")
            if len(parts) != 2 or parts[0] not in helped or parts[0] in types:
                raise ValueError("%s: bad TYPE" % line)
            if parts[1] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                raise ValueError("%s: unknown type" % line)
            if current:
                done.add(current)
            current = parts[0]
            types[current] = parts[1]
            continue
        if line.startswith("#") or not line:
            raise ValueError("%s: stray comment or blank line" % line)
        m = re.match(r"^([^{ ]+)(\{([^}]*)\})? (\S+)$", line)
        if not m:
            raise ValueError("%s: not NAME{LABELS} VALUE" % line)
        name, labels = m.group(1), {}
        if not NAME.match(name):
            raise ValueError("%s: bad name" % line)
        if m.group(3):
            for pair in m.group(3).split(","):
                lm = LABEL.match(pair)
                if not lm:
                    raise ValueError("%s: bad label %s" % (line, pair))
                labels[lm.group(1)] = lm.group(2)
        value = float(m.group(4))
        family = name
        if family not in types:
            for suffix in ("_bucket", "_sum", "_count"):
                if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "histogram":
                    family = name[: -len(suffix)]
        if family not in types or family != current or family in done:
            raise ValueError("%s: sample outside its family" % line)
        if types[family] == "counter" and not name.endswith("_total"):
            raise ValueError("%s: counter without _total" % line)
        samples.append((name, labels, value))
    check_histograms(samples, types)
    return samples, types


def check_histograms(samples, types):
    for family, kind in types.items():
        if kind != "histogram":
            continue
        series = {}
        for name, labels, value in samples:
            if name == family + "_bucket":
                key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
                series.setdefault(key, []).append((float(labels["le"]), value))
        for key, buckets in series.items():
            buckets.sort()
            values = [v for _, v in buckets]
            if values != sorted(values) or buckets[-1][0] != float("inf"):
                raise ValueError("%s %s: buckets not cumulative or no +Inf" % (family, key))
            count = [v for n, l, v in samples if n == family + "_count"
                     and tuple(sorted(l.items())) == key]
            if count != [values[-1]]:
                raise ValueError("%s %s: +Inf != _count" % (family, key))


def get(samples, name, want):
    for n, labels, value in samples:
        if n == name and labels == want:
            return value
    return None


def main(argv):
    cmd = argv[1]
    if cmd in ("expo", "get", "sum"):
        try:
            samples, types = parse(sys.stdin.read())
        except ValueError as e:
            print("bad %s" % e)
            return 1
        if cmd == "expo":
            print("ok %d %d" % (len(types), len(samples)))
        elif cmd == "get":
            want = dict(a.split("=", 1) for a in argv[3:])
            v = get(samples, argv[2], want)
            print("absent" if v is None else "%g" % v)
        else:
            print("%g" % sum(v for n, _, v in samples if n == argv[2]))
        return 0
    if cmd == "jsonl":
        counts = {}
        with open(argv[2], encoding="utf-8", errors="replace") as f:
            for i, line in enumerate(f, 1):
                try:
                    obj = json.loads(line)
                    kind = obj["type"]
                except (ValueError, KeyError, TypeError):
                    print("bad %d: %s" % (i, line.strip()[:200]))
                    return 1
                counts[kind] = counts.get(kind, 0) + 1
        print("ok %d %s" % (sum(counts.values()),
                            " ".join("%s=%d" % kv for kv in sorted(counts.items()))))
        return 0
    if cmd == "events":
        with open(argv[2], encoding="utf-8") as f:
            for line in f:
                obj = json.loads(line)
                if obj.get("type") != argv[3]:
                    continue
                if "data" in obj:
                    d = obj["data"]
                    print(d["src"], d["dst"], d["dport"])
                else:
                    print(obj.get("reason"))
        return 0
    if cmd == "ftp-pause":
        import ftplib
        import socket
        import time
        host, user, password, path, secs = argv[2:7]
        f = ftplib.FTP()
        f.connect(host, 21, timeout=10)
        f.login(user, password)
        f.voidcmd("TYPE I")
        addr, port = ftplib.parse227(f.sendcmd("PASV"))
        print("port %d" % port, flush=True)
        time.sleep(float(secs))
        s = socket.create_connection((addr, port), timeout=5)
        f.sendcmd("RETR " + path)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        f.voidresp()
        f.quit()
        print("got %d %s" % (len(data), hashlib.sha256(data).hexdigest()), flush=True)
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
