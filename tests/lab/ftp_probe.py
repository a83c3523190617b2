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
        if words[0] == "quit":
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
