#!/usr/bin/python3
"""A hostile FTP control server for tests/lab/hostile-tests.sh (server namespace, port 21).

Owns: the server side of the hostile-server cases.  Standard library only; runs under
Debian's /usr/bin/python3.  Any login is accepted; the USER name picks how the server lies
in its answer to the session's FIRST PASV (later PASVs are answered honestly):

  USER third     227 naming --third (another host) instead of itself
  USER flood     the honest 227, followed in the same send() by --flood unsolicited 227
                 lines (each naming itself, every port of --pasv-port..+99 in turn)
  USER longline  a multi-line 227 whose first line is "227-" and --long bytes, then the
                 honest 227 as its last line
  USER *         honest

An honest 227 names the control connection's own IPv4 address and a port from
--pasv-port on where the server really listens: it accepts one data connection, sends
"hostile-ftpd data\\n" and closes.  Replies: 220, 331, 230, 200 (TYPE/NOOP), 227, 221 (QUIT),
502 otherwise.

  hostile_ftpd.py [--port 21] [--pasv-port 50000] [--third 192.0.2.2] [--flood 10000]
                  [--long 65536]
"""
import argparse
import socket
import sys
import threading

lock = threading.Lock()
state = {"next": 0}


def next_port(args):
    with lock:
        p = args.pasv_port + state["next"] % 100
        state["next"] += 1
        return p


def own_v4(conn):
    addr = conn.getsockname()[0]
    return addr[7:] if addr.startswith("::ffff:") else addr


def h227(addr, port):
    return ("227 Entering Passive Mode (%s,%d,%d).\r\n"
            % (addr.replace(".", ","), port >> 8, port & 255)).encode()


def data_once(port, family):
    """Listen on PORT, serve one data connection (or give up after 10 s)."""
    ls = socket.socket(family, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
    ls.listen(1)
    ls.settimeout(10)

    def serve():
        try:
            c, _ = ls.accept()
            c.sendall(b"hostile-ftpd data\n")
            c.close()
        except OSError:
            pass
        finally:
            ls.close()

    threading.Thread(target=serve, daemon=True).start()


def session(conn, args):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.settimeout(30)
    f = conn.makefile("rb")
    user = b""
    lied = False
    conn.sendall(b"220 hostile-ftpd ready\r\n")
    for line in f:
        words = line.strip().split(b" ", 1)
        verb = words[0].upper()
        arg = words[1] if len(words) > 1 else b""
        if verb == b"USER":
            user = arg
            conn.sendall(b"331 Any password.\r\n")
        elif verb == b"PASS":
            conn.sendall(b"230 Logged in.\r\n")
        elif verb in (b"TYPE", b"NOOP"):
            conn.sendall(b"200 OK.\r\n")
        elif verb == b"PASV":
            me = own_v4(conn)
            honest_port = next_port(args)
            if not lied and user == b"third":
                lied = True
                conn.sendall(h227(args.third, honest_port))
                continue
            data_once(honest_port, socket.AF_INET6)
            out = h227(me, honest_port)
            if not lied and user == b"flood":
                lied = True
                out += b"".join(h227(me, args.pasv_port + i % 100) for i in range(args.flood))
            elif not lied and user == b"longline":
                lied = True
                out = b"227-" + b"A" * args.long + b"\r\n" + out
            conn.sendall(out)
        elif verb == b"QUIT":
            conn.sendall(b"221 Bye.\r\n")
            break
        else:
            conn.sendall(b"502 Not here.\r\n")
    conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=21)
    ap.add_argument("--pasv-port", type=int, default=50000)
    ap.add_argument("--third", default="192.0.2.2")
    ap.add_argument("--flood", type=int, default=10000)
    ap.add_argument("--long", type=int, default=65536)
    args = ap.parse_args()
    ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    ls.bind(("::", args.port))
    ls.listen(64)
    print("listening on [::]:%d" % args.port, flush=True)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=session, args=(conn, args), daemon=True).start()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
