#!/usr/bin/python3
"""A scripted FTP control server for the gateway tests: it coalesces replies.

Runs under Debian's /usr/bin/python3 in the server namespace (lab.sh:
`lab_start_server scripted`); standard library only.  Real servers answer
each command with a write of its own, so a gateway rarely sees two replies
in one segment; this one makes that case happen on purpose:

  * it answers ALL the complete command lines of one read with ONE send()
    (TCP_NODELAY, so one small send() leaves as one segment).  When a read
    ends with PASV or EPSV and nothing after it, it waits up to 0.2 s for
    more lines first, so a pipelined `PASV\\r\\nQUIT\\r\\n` is always answered
    by `227 ...\\r\\n221 Goodbye.\\r\\n` in one segment;
  * 220 greeting; USER 331, PASS 230 (any name and password), TYPE/MODE/
    STRU/NOOP 200, SYST 215, PASV 227 (the control connection's own IPv4
    address, ports counting up from --pasv-port), EPSV 229 (same ports),
    QUIT 221 and close; anything else 502;
  * it opens no data connections and listens on no data port: the tests
    read only what the gateway's sets hold.

  scripted_ftpd.py [--port 21] [--pasv-port 50000] [--pasv-count 100]

One [::] socket (dual-stack).  Each answer is logged on stdout as
"PEER sent N bytes in one send(): LINE|LINE".
"""
import argparse
import select
import socket
import sys
import threading

lock = threading.Lock()
next_port = [0, 0, 0]  # current, first, count


def pasv_port():
    with lock:
        port = next_port[0]
        next_port[0] = next_port[1] + (port + 1 - next_port[1]) % next_port[2]
        return port


def log(msg):
    with lock:
        print(msg, flush=True)


def own_v4(conn):
    addr = conn.getsockname()[0]
    if addr.startswith("::ffff:"):
        addr = addr[7:]
    return addr if "." in addr else None


def answer(conn, line):
    """The reply to one command line, and whether to close afterwards."""
    verb = line.split(b" ", 1)[0].upper()
    if verb == b"USER":
        return b"331 Any password will do.\r\n", False
    if verb == b"PASS":
        return b"230 Logged in.\r\n", False
    if verb in (b"TYPE", b"MODE", b"STRU", b"NOOP"):
        return b"200 OK.\r\n", False
    if verb == b"SYST":
        return b"215 UNIX Type: L8\r\n", False
    if verb == b"PASV":
        v4 = own_v4(conn)
        if v4 is None:
            return b"425 PASV over IPv6: use EPSV.\r\n", False
        p = pasv_port()
        h = v4.replace(".", ",")
        return ("227 Entering Passive Mode (%s,%d,%d).\r\n" % (h, p >> 8, p & 255)).encode(), False
    if verb == b"EPSV":
        return ("229 Entering Extended Passive Mode (|||%d|)\r\n" % pasv_port()).encode(), False
    if verb == b"QUIT":
        return b"221 Goodbye.\r\n", True
    return b"502 Not implemented here.\r\n", False


def serve(conn, peer):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.settimeout(60)
    try:
        conn.sendall(b"220 ftp-alg lab scripted server\r\n")
        buf = b""
        while True:
            data = conn.recv(4096)
            if not data:
                return
            buf += data
            lines = buf.split(b"\n")
            buf = lines.pop()
            cmds = [l.rstrip(b"\r") for l in lines]
            # A read that ends with a passive command: give a pipelined
            # next line (QUIT) a moment to arrive, so both are answered
            # by one send().
            if cmds and not buf and cmds[-1].split(b" ", 1)[0].upper() in (b"PASV", b"EPSV"):
                ready, _, _ = select.select([conn], [], [], 0.2)
                if ready:
                    more = conn.recv(4096)
                    if more:
                        lines = more.split(b"\n")
                        buf = lines.pop()
                        cmds += [l.rstrip(b"\r") for l in lines]
            if not cmds:
                continue
            out = b""
            close = False
            for c in cmds:
                reply, close = answer(conn, c)
                out += reply
                if close:
                    break
            conn.sendall(out)
            log("%s sent %d bytes in one send(): %s"
                % (peer, len(out), "|".join(l.decode("latin-1") for l in out.split(b"\r\n")[:-1])))
            if close:
                return
    except OSError:
        return
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=21)
    ap.add_argument("--pasv-port", type=int, default=50000)
    ap.add_argument("--pasv-count", type=int, default=100)
    args = ap.parse_args()
    next_port[:] = [args.pasv_port, args.pasv_port, max(1, args.pasv_count)]
    ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    ls.bind(("::", args.port))
    ls.listen(64)
    log("listening on [::]:%d, passive ports from %d" % (args.port, args.pasv_port))
    while True:
        conn, addr = ls.accept()
        peer = addr[0][7:] if addr[0].startswith("::ffff:") else addr[0]
        peer = "%s:%d" % (peer, addr[1])
        threading.Thread(target=serve, args=(conn, peer), daemon=True).start()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
