"""Resident and proportional memory of idle recorders, side by side.

Starts N recorders of each kind (`script`, `tlog-rec`, `sessrec-shell`) on their own ptys, each
running `sleep`, waits until they are idle, and prints the median RSS and PSS of the recorder
processes (`/proc/PID/smaps_rollup`). RSS counts every page a process maps, including library
and program pages shared with every other process; PSS divides shared pages among their
users, so with N alike processes it approaches what one more session costs the host.

    python3 bench/recorder/idle_memory.py --sessrec-shell target/release/sessrec-shell [-n 10]
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the same variants, configs and pty driver as bench.py)


def rollup(pid):
    values = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if parts[0] in ("Rss:", "Pss:"):
                values[parts[0][:-1]] = int(parts[1])
    return values


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sessrec-shell", required=True)
    ap.add_argument("-n", type=int, default=10)
    args = ap.parse_args()
    env = bench.Env(args.sessrec_shell, tempfile.mkdtemp(prefix="sessrec-idle-memory-"))
    print("| variant | recorders | RSS median kB | PSS median kB |")
    print("|---|---|---|---|")
    for variant in ("script", "tlog", "sessrec"):
        env.clear_records(variant)
        runs = []
        for _ in range(args.n):
            argv, e = env.argv(variant, "sleep 30")
            runs.append(bench.PtyRun(argv, e))
        time.sleep(3)
        samples = [rollup(r.pid) for r in runs]
        rss = sorted(s["Rss"] for s in samples)
        pss = sorted(s["Pss"] for s in samples)
        print(f"| {variant} | {args.n} | {rss[args.n // 2]} | {pss[args.n // 2]} |")
        for r in runs:
            r.hangup()


if __name__ == "__main__":
    main()
