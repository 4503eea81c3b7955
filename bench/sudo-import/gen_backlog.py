#!/usr/bin/env python3
"""Writes a backlog of finished sudo I/O log sessions in sudo 1.9's format (log, log.json,
gzip timing/ttyout/ttyin, empty stdin/stdout/stderr, timing 0400) under OUT/00/00/01 ...

Output is log-like text (a shell session printing logs and listings), cut into reads of
64..4096 bytes like a pty delivers them, so gzip ratios are realistic (about 4-6x).

usage: gen_backlog.py OUT SESSIONS TOTAL_MB [USER]
"""
import gzip
import json
import os
import random
import sys

B36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def seq_path(n):
    digits = []
    for _ in range(6):
        digits.append(B36[n % 36])
        n //= 36
    s = "".join(reversed(digits))
    return f"{s[0:2]}/{s[2:4]}/{s[4:6]}"


def line_pool(rng, count=20000):
    words = ("kernel systemd sshd nginx postgres backup cron audit ok failed started stopped "
             "connection from user session opened closed for root with uid gid pid request "
             "GET POST /api/v1/items 200 404 500 bytes latency ms queue worker retry").split()
    pool = []
    for i in range(count):
        n = rng.randint(4, 14)
        text = " ".join(rng.choice(words) for _ in range(n))
        if i % 7 == 0:
            text = f"-rw-r--r-- 1 root root {rng.randint(0, 10**7):>9} Dec  4 10:{rng.randint(0,59):02} file-{rng.randint(0,99999)}.log"
        pool.append(f"2026-12-04T10:{rng.randint(0,59):02}:{rng.randint(0,59):02}.{rng.randint(0,999999):06}Z vm {text}\r\n".encode())
    return pool


def main():
    out, sessions, total_mb = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    user = sys.argv[4] if len(sys.argv) > 4 else "srt-bench"
    rng = random.Random(42)
    pool = line_pool(rng)
    per_session = int(total_mb * 1e6 / sessions)
    os.makedirs(out, exist_ok=True)
    start = 1796390000
    for n in range(1, sessions + 1):
        d = os.path.join(out, seq_path(n))
        os.makedirs(d, exist_ok=True)
        ts = start + n * 60
        meta = {
            "timestamp": {"seconds": ts, "nanoseconds": 123456789},
            "submituser": user, "command": "/usr/bin/bash", "runuser": "root",
            "ttyname": "/dev/pts/%d" % (n % 50), "submithost": "vm", "submitcwd": "/home/" + user,
            "runuid": 0, "columns": 80, "lines": 24, "runargv": ["-bash"],
            "runenv": ["HOME=/root", "SUDO_USER=" + user, "TERM=xterm"],
        }
        with open(os.path.join(d, "log.json"), "w") as f:
            json.dump(meta, f, indent=4)
        with open(os.path.join(d, "log"), "w") as f:
            f.write(f"{ts}:{user}:root::/dev/pts/{n % 50}:24:80\n/home/{user}\n/usr/bin/bash\n")
        timing = []
        out_chunks = []
        in_chunks = []
        produced = 0
        while produced < per_session:
            if rng.random() < 0.02:
                cmd = rng.choice([b"ls -l /var/log\n", b"journalctl -n 200\n", b"tail -f app.log\n"])
                in_chunks.append(cmd)
                timing.append(f"3 {rng.random() * 2:.9f} {len(cmd)}")
            size = rng.randint(64, 4096)
            buf = bytearray()
            while len(buf) < size:
                buf += rng.choice(pool)
            chunk = bytes(buf[:size])
            out_chunks.append(chunk)
            timing.append(f"4 {rng.random() / 100:.9f} {len(chunk)}")
            produced += len(chunk)
        for name, data in (("ttyout", b"".join(out_chunks)), ("ttyin", b"".join(in_chunks)),
                           ("timing", ("\n".join(timing) + "\n").encode()),
                           ("stdin", b""), ("stdout", b""), ("stderr", b"")):
            with open(os.path.join(d, name), "wb") as f:
                f.write(gzip.compress(data, compresslevel=6))
        os.chmod(os.path.join(d, "timing"), 0o400)
    with open(os.path.join(out, "seq"), "w") as f:
        f.write(seq_path(sessions).replace("/", "") + "\n")


if __name__ == "__main__":
    main()
