#!/usr/bin/env python3
"""Relay a transfer server's stdin/stdout and log every chunk in relay order.

Used to make the fixtures in this directory from real OpenSSH and rsync
programs. The file format is a sequence of records:
  b'a' u32be len  command string (once, first)
  b'c' u32be len  bytes the client sent to the server
  b's' u32be len  bytes the server sent to the client
  b'x' u32be 4    exit status (i32be) of the server, last
Chunks are logged before they are relayed, so the log keeps the causal order a
recorder sees.

  capture.py OUT -- ARGV...     run ARGV (sftp -D mode)
  capture.py --ssh OUT ARGS...  act as the remote shell of scp -S / rsync -e:
                                the remote command is split on spaces and run
"""
import os, select, struct, subprocess, sys

def main():
    args = sys.argv[1:]
    if args[0] == "--ssh":
        out = args[1]
        rest = args[2:]
        if "--" in rest:
            rest = rest[rest.index("--") + 1:]
            cmd = " ".join(rest[1:])
        else:
            i = 0
            while rest[i].startswith("-"):
                i += 1 if rest[i] not in ("-l", "-p", "-o", "-i") else 2
            cmd = " ".join(rest[i + 1:])
        argv = cmd.split()
        if argv == ["sftp"]:
            argv = ["/usr/lib/openssh/sftp-server"]
    else:
        out = args[0]
        assert args[1] == "--"
        argv = args[2:]
        cmd = " ".join(argv)
    log = open(out, "wb")
    def rec(kind, data):
        log.write(kind + struct.pack(">I", len(data)) + data)
    rec(b"a", cmd.encode())
    if argv[0] == "scp":
        argv[0] = "/usr/bin/scp"
    if argv[0] == "rsync":
        argv[0] = "/usr/bin/rsync"
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    cin, cout = 0, 1
    sin, sout = p.stdin.fileno(), p.stdout.fileno()
    open_in = True
    while True:
        fds = [sout] + ([cin] if open_in else [])
        r, _, _ = select.select(fds, [], [])
        if cin in r:
            d = os.read(cin, 65536)
            if not d:
                open_in = False
                p.stdin.close()
            else:
                rec(b"c", d)
                os.write(sin, d) if len(d) else None
        if sout in r:
            d = os.read(sout, 65536)
            if not d:
                break
            rec(b"s", d)
            view = memoryview(d)
            while view:
                n = os.write(cout, view)
                view = view[n:]
    status = p.wait()
    rec(b"x", struct.pack(">i", status))
    log.close()
    sys.exit(status)

main()
