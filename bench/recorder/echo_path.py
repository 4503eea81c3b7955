#!/usr/bin/env python3
"""The recorder's own share of keystroke echo latency, measured inside it.

Types `--keys` single keystrokes (2 ms apart) into `stty -icanon min 1; cat` under each given
sessrec-shell build, records the recorder's system calls with `perf record -e raw_syscalls:*`,
and reports, per build, the time from each read(2) of a keystroke (or of its echo) returning to
the write(2) that passes it on starting, and how many other system calls ran in between. That
part is the recorder's alone; the rest of the echo (the kernel's pty work, scheduling) is not,
and on a shared machine it is mostly queueing. Needs root and `perf` (`apt-get install
linux-perf`). See README.md beside this file.
"""
import argparse
import os
import select
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def trace(env, variant, keys, out):
    env.clear_records(variant)
    argv, e = env.argv(variant, "stty -icanon min 1 time 0; exec cat >/dev/null")
    run = bench.PtyRun(argv, e, cols=80, rows=24)
    got = b""
    os.write(run.master, b"#")
    deadline = time.time() + 10
    while b"#" not in got and time.time() < deadline:
        if select.select([run.master], [], [], 0.1)[0]:
            got += os.read(run.master, 4096)
    perf = subprocess.Popen(
        ["perf", "record", "-q", "-e", "raw_syscalls:sys_enter,raw_syscalls:sys_exit", "-p", str(run.pid), "-o", out],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    for i in range(keys):
        ch = bytes([ord("a") + i % 26])
        os.write(run.master, ch)
        got = b""
        while ch not in got:
            if not select.select([run.master], [], [], 2.0)[0]:
                break
            got += os.read(run.master, 4096)
        time.sleep(0.002)
    time.sleep(0.2)
    perf.send_signal(2)
    perf.wait()
    run.hangup()


def legs(data):
    """(keystroke leg µs, echo leg µs, syscalls in between per leg) from a perf.data file."""
    text = subprocess.run(
        ["perf", "script", "-i", data, "-F", "time,event,trace"], capture_output=True, text=True
    ).stdout
    found = {"keystroke": [], "echo": []}
    between = {"keystroke": 0, "echo": 0}
    pending = None  # (fd read, time it returned, bytes)
    entered = None  # (syscall nr, fd)
    others = 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 6:
            continue
        t = float(parts[0].rstrip(":"))
        nr = int(parts[3])
        if "sys_enter" in parts[1]:
            args = line.split("(", 1)[1].split(",")
            fd = int(args[0], 16)
            count = int(args[2], 16) if nr == 1 else -1
            if pending and nr == 1:
                keystroke = pending[0] == 0 and fd not in (1, 2) and count == pending[2]
                echo = pending[0] != 0 and fd == 1
                if keystroke or echo:
                    leg = "keystroke" if keystroke else "echo"
                    found[leg].append((t - pending[1]) * 1e6)
                    between[leg] += others
                    pending = None
                    entered = (nr, fd)
                    continue
            if pending:
                others += 1
            entered = (nr, fd)
        elif "sys_exit" in parts[1] and entered and entered[0] == 0 and nr == 0:
            ret = int(parts[5])
            if ret > 0:
                pending, others = (entered[1], t, ret), 0
    return found, between


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))] if v else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sessrec-shell", required=True)
    ap.add_argument("--baseline-shell")
    ap.add_argument("--keys", type=int, default=1000)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    work = tempfile.mkdtemp(prefix="sessrec-echo-path-")
    os.chmod(work, 0o755)
    baseline = os.path.abspath(args.baseline_shell) if args.baseline_shell else None
    env = bench.Env(os.path.abspath(args.sessrec_shell), work, baseline)
    variants = ["sessrec"] + (["sessrec-base"] if baseline else [])
    print("| build | leg | n | p50 µs | p99 µs | max µs | other syscalls in between (all legs) |")
    print("|---|---|---|---|---|---|---|")
    for v in variants:
        data = os.path.join(work, f"{v}.perf")
        trace(env, v, args.keys, data)
        found, between = legs(data)
        for leg, values in found.items():
            print(
                f"| {v} | {leg} | {len(values)} | {pct(values, 50):.0f} | {pct(values, 99):.0f} | "
                f"{max(values) if values else float('nan'):.0f} | {between[leg]} |"
            )


if __name__ == "__main__":
    main()
