#!/usr/bin/python3
"""pyftpdlib server for the ftp-alg lab (started by tests/lab/lab.sh).

Listens on a dual-stack [::] socket (IPv4 clients appear as IPv4-mapped
addresses; pyftpdlib still answers PASV with the plain IPv4 address).
One account: read-only at the root, writable in /upload.
Run with Debian's /usr/bin/python3 (python3-pyftpdlib).
"""
import argparse
import logging
import os

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--port", type=int, default=21)
    ap.add_argument("--passive", default="50000-50100")
    ap.add_argument("--address", default="::")
    args = ap.parse_args()

    lo, hi = (int(x) for x in args.passive.split("-"))
    authorizer = DummyAuthorizer()
    authorizer.add_user(args.user, args.password, args.root, perm="elr")
    authorizer.override_perm(args.user, os.path.join(args.root, "upload"), perm="elradfmw", recursive=True)

    handler = FTPHandler
    handler.authorizer = authorizer
    handler.passive_ports = range(lo, hi + 1)
    handler.banner = "ftp-alg lab pyftpdlib"
    handler.permit_foreign_addresses = False
    handler.use_sendfile = False

    logging.basicConfig(level=logging.INFO)
    server = FTPServer((args.address, args.port), handler)
    server.max_cons = 30
    server.serve_forever()


if __name__ == "__main__":
    main()
