#!/usr/bin/env python3
"""Before/after timings of `verify --all` and `search --fixed-strings` on one central tree,
runs interleaved (so both see the same load), beside `grep -rF` on the same tree.

Usage: bench/fleet/compare.py CENTRAL RUNS BEFORE_BINARY AFTER_BINARY

Prints one table row per command: median wall time and median CPU time (user + sys of the
process and its threads), each also as MB/s of record bytes (files under CENTRAL named
*.jsonl or *.jsonl.gz, the access log left out). The page cache is warmed first, and each
binary runs one search first so that both find their catalogs current.
"""
import os
import resource
import statistics
import subprocess
import sys
import time

central, runs, before, after = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
total = 0
for root, _, files in os.walk(central):
    for f in files:
        if ".jsonl" in f and not root.endswith("/access"):
            total += os.path.getsize(os.path.join(root, f))


def timed(cmd):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


subprocess.run(["sh", "-c", f"find {central} -name '*.jsonl*' -exec cat {{}} + > /dev/null"])
load = lambda: " ".join(open("/proc/loadavg").read().split()[:3])
print(f"tree {central}: {total / 1e6:.0f} MB of records; load average before: {load()}")
cases = {
    "verify --all": lambda b: [b, "--dir", central, "verify", "--all"],
    "search --fixed-strings": lambda b: [
        b, "--dir", central, "search", "--fixed-strings", "no-such-fixed-string"],
}
for b in (before, after):
    timed(cases["search --fixed-strings"](b))
res = {}
for _ in range(runs):
    for name, cmd in cases.items():
        for label, b in (("before", before), ("after", after)):
            res.setdefault((name, label), []).append(timed(cmd(b)))
    res.setdefault(("grep -rF", ""), []).append(
        timed(["grep", "-rF", "no-such-fixed-string", central]))
print("| command | binary | wall (median) | CPU (median) | runs |")
print("|---|---|---|---|---|")
for (name, label), xs in res.items():
    w = statistics.median(x[0] for x in xs)
    c = statistics.median(x[1] for x in xs)
    print(f"| {name} | {label} | {w:.2f} s = {total / w / 1e6:.0f} MB/s "
          f"| {c:.2f} s = {total / c / 1e6:.0f} MB/s per CPU-second | {runs} |")
print(f"load average after: {load()}")
