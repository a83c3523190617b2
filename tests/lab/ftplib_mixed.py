#!/usr/bin/python3
"""One ftplib session with two passive and two active transfers.

Used by capture-samples.sh (run in the client namespace with Debian's
/usr/bin/python3).  Over IPv4 ftplib sends PASV for passive and PORT for
active transfers.  Order: passive RETR, passive STOR, active RETR,
active STOR.  Downloads land in OUTDIR; uploads go to /upload on the
server.  Prints one line per transfer; checksums are checked by the caller.
"""
import argparse
import ftplib
import os


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("user")
    ap.add_argument("password")
    ap.add_argument("src", help="local file to upload")
    ap.add_argument("outdir")
    ap.add_argument("--remote", default="pub/file20k.bin")
    ap.add_argument("--timeout", type=float, default=20)
    args = ap.parse_args()

    ftp = ftplib.FTP(timeout=args.timeout)
    ftp.connect(args.host, 21)
    ftp.login(args.user, args.password)
    ftp.voidcmd("TYPE I")
    for mode, passive in (("pasv", True), ("port", False)):
        ftp.set_pasv(passive)
        dst = os.path.join(args.outdir, "ftplib-%s.bin" % mode)
        with open(dst, "wb") as f:
            ftp.retrbinary("RETR " + args.remote, f.write)
        print("RETR", mode, dst)
        with open(args.src, "rb") as f:
            ftp.storbinary("STOR upload/ftplib-%s.bin" % mode, f)
        print("STOR", mode, "upload/ftplib-%s.bin" % mode)
    ftp.quit()


if __name__ == "__main__":
    main()
