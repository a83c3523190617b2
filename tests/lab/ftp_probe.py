#!/usr/bin/python3
"""FTP client driver and TCP probe for the gateway tests (gateway-tests.sh).

Runs under Debian's /usr/bin/python3 inside a lab namespace.

  ftp_probe.py connect HOST PORT [--timeout S]
      One TCP connect.  Prints exactly one word: "timeout" (no answer: the
      SYN was dropped on the way), "refused" (a RST came back: the SYN
      reached the host), "connected", or "error:<errno name>".

  ftp_probe.py session HOST USER PASSWORD
      Logs in (TYPE I), then reads commands on stdin, one per line, and
      answers each with one line on stdout (flushed), so that a shell can
      drive a single control connection step by step (bash coproc):
        pasv                 PASV (IPv4) / EPSV (IPv6); "port N"
        retr PATH            RETR over the port of the last pasv; "ok BYTES SHA256"
        probe PORT [S]       connect to the server's PORT; as `connect` above
        burst N PATH         N times pasv + retr PATH; "ok N SECONDS" or
                             "fail I REASON" at the first failure
        noop                 NOOP; "ok"
        ports P1 P2 ...      one PORT line per port (the control connection's
                             own IPv4 address), all in ONE send(); reads one
                             reply per line; "ok CODE CODE ..." if all are 2yz
        pipe VERB VERB ...   the verbs (no arguments, e.g. PASV QUIT) as lines
                             in ONE send(); reads one reply per line;
                             "ok CODE CODE ..." (any codes), plus " port N"
                             if one was 227/229; a session whose pipe ends
                             with QUIT ends there
        portsplit PATH [MS]  active RETR PATH whose PORT line (the control
                             connection's own IPv4 address, a listening port)
                             is written in two send()s with TCP_NODELAY:
                             "PORT a,b,c," then, MS milliseconds later
                             (default 50), the rest; "ok BYTES SHA256" or
                             "fail ..."; both say what PORT was answered
        quit                 QUIT and exit; "ok"
      Any failure answers "fail REASON" and the session goes on (or ends
      if the control connection is gone).
"""
import argparse
import errno
import ftplib
import hashlib
import socket
import sys
import time


def connect_probe(host, port, timeout):
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except socket.timeout:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except OSError as e:
        return "error:%s" % errno.errorcode.get(e.errno, e.errno)
    s.close()
    return "connected"


class Session:
    def __init__(self, host, user, password, timeout):
        self.host = host
        self.v6 = ":" in host
        self.timeout = timeout
        self.port = None
        self.ftp = ftplib.FTP(timeout=timeout)
        self.ftp.connect(host, 21)
        self.ftp.login(user, password)
        self.ftp.voidcmd("TYPE I")

    def pasv(self):
        if self.v6:
            resp = self.ftp.sendcmd("EPSV")
            _, self.port = ftplib.parse229(resp, (self.host, 21))
        else:
            resp = self.ftp.sendcmd("PASV")
            _, self.port = ftplib.parse227(resp)
        return "port %d" % self.port

    def retr(self, path):
        if self.port is None:
            return "fail no pasv"
        port, self.port = self.port, None
        # Connect first, as a passive client does; the server accepts
        # before it reads RETR.
        data = socket.create_connection((self.host, port), timeout=self.timeout)
        try:
            resp = self.ftp.sendcmd("RETR " + path)
            if not resp.startswith(("125", "150")):
                return "fail RETR answered %r" % resp
            h = hashlib.sha256()
            n = 0
            while True:
                chunk = data.recv(65536)
                if not chunk:
                    break
                h.update(chunk)
                n += len(chunk)
        finally:
            data.close()
        self.ftp.voidresp()
        return "ok %d %s" % (n, h.hexdigest())

    def pipelined(self, lines):
        """Send LINES in one send(); one reply each, without raising on 4yz/5yz."""
        self.ftp.sock.sendall(b"".join(l.encode("ascii") + b"\r\n" for l in lines))
        return [self.ftp.getmultiline() for _ in lines]

    def ports(self, ports):
        h = self.ftp.sock.getsockname()[0].replace(".", ",")
        replies = self.pipelined(["PORT %s,%d,%d" % (h, p >> 8, p & 255) for p in ports])
        codes = " ".join(r[:3] for r in replies)
        if all(r[:1] == "2" for r in replies):
            return "ok " + codes
        return "fail replies " + codes

    def pipe(self, verbs):
        replies = self.pipelined(verbs)
        out = "ok " + " ".join(r[:3] for r in replies)
        for r in replies:
            if r.startswith("227"):
                out += " port %d" % ftplib.parse227(r)[1]
            elif r.startswith("229"):
                out += " port %d" % ftplib.parse229(r, (self.host, 21))[1]
        return out

    def port_split(self, path, delay):
        """RETR over an active connection announced by a PORT line in two segments."""
        if self.v6:
            return "fail PORT is IPv4 only"
        sock = self.ftp.sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        local = sock.getsockname()[0]
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind((local, 0))
            listener.listen(1)
            listener.settimeout(self.timeout)
            port = listener.getsockname()[1]
            line = "PORT %s,%d,%d\r\n" % (local.replace(".", ","), port >> 8, port & 255)
            cut = len("PORT ") + len(",".join(local.split(".")[:3])) + 1
            sock.sendall(line[:cut].encode("ascii"))
            time.sleep(delay)
            sock.sendall(line[cut:].encode("ascii"))
            reply = self.ftp.getmultiline()
            answered = "PORT answered %r" % reply[:3]
            if not reply.startswith("2"):
                return "fail %s (%s)" % (answered, reply)
            resp = self.ftp.sendcmd("RETR " + path)
            if not resp.startswith(("125", "150")):
                return "fail %s, RETR answered %r" % (answered, resp)
            data, _ = listener.accept()
        finally:
            listener.close()
        h = hashlib.sha256()
        n = 0
        with data:
            while True:
                chunk = data.recv(65536)
                if not chunk:
                    break
                h.update(chunk)
                n += len(chunk)
        self.ftp.voidresp()
        return "ok %d %s %s" % (n, h.hexdigest(), answered)

    def burst(self, count, path):
        start = time.monotonic()
        for i in range(count):
            try:
                self.pasv()
                r = self.retr(path)
            except (OSError, EOFError, ftplib.Error) as e:
                r = "fail %s: %s" % (type(e).__name__, e)
            if not r.startswith("ok"):
                return "fail %d %s" % (i + 1, r)
        return "ok %d %.2f" % (count, time.monotonic() - start)

    def handle(self, words):
        cmd = words[0]
        if cmd == "pasv":
            return self.pasv()
        if cmd == "retr":
            return self.retr(words[1])
        if cmd == "probe":
            t = float(words[2]) if len(words) > 2 else 3.0
            return connect_probe(self.host, int(words[1]), t)
        if cmd == "burst":
            return self.burst(int(words[1]), words[2])
        if cmd == "ports":
            return self.ports([int(w) for w in words[1:]])
        if cmd == "pipe":
            return self.pipe(words[1:])
        if cmd == "portsplit":
            delay = float(words[2]) / 1000 if len(words) > 2 else 0.05
            return self.port_split(words[1], delay)
        if cmd == "noop":
            self.ftp.voidcmd("NOOP")
            return "ok"
        if cmd == "quit":
            self.ftp.quit()
            return "ok"
        return "fail unknown command %r" % cmd


def session(args):
    try:
        s = Session(args.host, args.user, args.password, args.timeout)
    except (OSError, EOFError, ftplib.Error) as e:
        print("fail login: %s: %s" % (type(e).__name__, e), flush=True)
        return 1
    print("ready", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            answer = s.handle(words)
        except (OSError, EOFError, ftplib.Error) as e:
            answer = "fail %s: %s" % (type(e).__name__, e)
        print(answer, flush=True)
        if words[0] == "quit" or (words[0] == "pipe" and words[-1].upper() == "QUIT"):
            break
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    c = sub.add_parser("connect")
    c.add_argument("host")
    c.add_argument("port", type=int)
    c.add_argument("--timeout", type=float, default=3.0)
    s = sub.add_parser("session")
    s.add_argument("host")
    s.add_argument("user")
    s.add_argument("password")
    s.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()
    if args.what == "connect":
        print(connect_probe(args.host, args.port, args.timeout), flush=True)
        return 0
    return session(args)


if __name__ == "__main__":
    sys.exit(main())
