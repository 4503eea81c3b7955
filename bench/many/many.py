#!/usr/bin/env python3
"""Many users at once: 200 concurrent sessions on ptys, 20 of them typing and one streaming
50 MB/s, with sessrec-shell recording each, next to the same load with no recorder.

Reports per-session memory (PSS from smaps_rollup), wake-ups per second of the idle sessions'
processes, and keystroke echo latency of the typists, with the machine's load and steal time.
See README.md beside this file for the method. Run as root.
"""
import argparse
import json
import os
import random
import select
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "recorder"))
from bench import PtyRun, pct  # noqa: E402  (the recorder benchmark's pty driver)

MB = 1024 * 1024

PRODUCER = (
    "python3 -c \"import os,time\nb=b'x'*65535+b'\\n'\nt=time.time()\nn=0\n"
    "while time.time()-t<3600:\n  os.write(1,b); n+=len(b)\n  d=n/52428800-(time.time()-t)\n"
    "  d>0 and time.sleep(d)\""
)
TYPIST = "stty -icanon min 1 time 0; exec cat >/dev/null"
IDLE = "exec /bin/sh -i"


class Machine:
    """Load average and CPU time split (busy, steal) between two points in time."""

    @staticmethod
    def cpu():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + v[4]
        return sum(v[:8]), idle, v[7]

    def __init__(self):
        self.load = [float(x) for x in open("/proc/loadavg").read().split()[:3]]
        self.t0 = self.cpu()

    def finish(self):
        total, idle, steal = (b - a for a, b in zip(self.t0, self.cpu()))
        load = [float(x) for x in open("/proc/loadavg").read().split()[:3]]
        return {
            "load1_start": self.load[0],
            "load1_end": load[0],
            "busy_pct": 100.0 * (total - idle) / total if total else 0.0,
            "steal_pct": 100.0 * steal / total if total else 0.0,
        }


def tree(pid):
    """pid and all its descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def switches(pid):
    """Voluntary + involuntary context switches of every thread of pid: its wake-ups."""
    n = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        n += int(line.split()[1])
    except OSError:
        pass
    return n


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def wait_for(run, needle, timeout=30):
    buf = b""
    end = time.time() + timeout
    while time.time() < end and needle not in buf:
        r, _, _ = select.select([run.master], [], [], 0.2)
        if r:
            buf += os.read(run.master, 4096)
    return needle in buf


def drain_in_child(fd):
    """Reads fd as fast as it can in a child process; returns (pid, pipe with its byte count)."""
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rd)
        n = 0
        stop = [False]
        signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
        start = time.time()
        while not stop[0]:
            try:
                r, _, _ = select.select([fd], [], [], 0.1)
                if r:
                    data = os.read(fd, 65536)
                    if not data:
                        break
                    n += len(data)
            except (OSError, InterruptedError):
                if stop[0]:
                    break
        os.write(wr, json.dumps({"bytes": n, "secs": time.time() - start}).encode())
        os._exit(0)
    os.close(wr)
    return pid, rd


class Variant:
    def __init__(self, name, shell, config):
        self.name, self.shell, self.config = name, shell, config

    def argv(self, command):
        env = {"PATH": "/usr/bin:/bin", "TERM": "xterm-256color", "HOME": "/root", "LANG": "C.UTF-8", "PS1": "# "}
        if self.name == "none":
            return ["/bin/sh", "-c", command], env
        env["SESSREC_CONFIG"] = self.config
        return [self.shell, "-c", command], env


def one_round(variant, args):
    """Starts every session, measures for args.seconds, stops them; returns the numbers."""
    sessions = {"typist": [], "idle": [], "stream": []}
    started = time.time()
    for kind, count, command in (
        ("typist", args.typists, TYPIST),
        ("idle", args.sessions - args.typists - 1, IDLE),
        ("stream", 1, PRODUCER),
    ):
        for _ in range(count):
            run = PtyRun(*variant.argv(command), cols=80, rows=24)
            sessions[kind].append(run)
    # Ready: the typists echo a probe (their terminal is set up), the idle shells print a prompt.
    for run in sessions["typist"]:
        os.write(run.master, b"#")
        if not wait_for(run, b"#"):
            raise SystemExit(f"{variant.name}: a typist never became ready")
    for run in sessions["idle"]:
        if not wait_for(run, b"# "):
            raise SystemExit(f"{variant.name}: an idle shell never showed its prompt")
    start_secs = time.time() - started
    drain_pid, drain_pipe = drain_in_child(sessions["stream"][0].master)
    time.sleep(args.settle)

    machine = Machine()
    idle_trees = [tree(run.pid) for run in sessions["idle"]]
    before = [[switches(p) for p in t] for t in idle_trees]
    t_idle0 = time.time()

    # Typing: each typist sends one key every 1/rate s, phases spread; the echo is timed.
    masters = {run.master: i for i, run in enumerate(sessions["typist"])}
    poll = select.poll()
    for fd in masters:
        poll.register(fd, select.POLLIN)
    period = 1.0 / args.key_rate
    now = time.perf_counter()
    next_at = [now + random.random() * period for _ in sessions["typist"]]
    pending = [None] * len(next_at)
    lat, lost = [], 0
    end = now + args.seconds
    n = 0
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        for i, at in enumerate(next_at):
            if at <= now:
                if pending[i] is not None:
                    lost += 1
                ch = bytes([ord("a") + n % 26])
                n += 1
                pending[i] = (time.perf_counter_ns(), ch)
                os.write(sessions["typist"][i].master, ch)
                next_at[i] = at + period
        wait_ms = max(0, (min(next_at) - time.perf_counter()) * 1000)
        for fd, _ in poll.poll(min(wait_ms, 50)):
            data = os.read(fd, 4096)
            i = masters[fd]
            if pending[i] is not None and pending[i][1] in data:
                lat.append((time.perf_counter_ns() - pending[i][0]) / 1000.0)
                pending[i] = None

    idle_secs = time.time() - t_idle0
    after = [[switches(p) for p in t] for t in idle_trees]
    load = machine.finish()

    # Memory, with everything running.
    def session_pss(run):
        pids = tree(run.pid)
        return sum(pss_kb(p) for p in pids), pss_kb(run.pid) if variant.name != "none" else 0

    memory = {kind: [session_pss(r) for r in runs] for kind, runs in sessions.items()}
    idle_rates = []
    recorder_rates = []
    for t, b, a in zip(idle_trees, before, after):
        idle_rates.append(sum(a) - sum(b))
        if variant.name != "none":
            recorder_rates.append(a[0] - b[0])
    os.kill(drain_pid, signal.SIGTERM)
    os.waitpid(drain_pid, 0)
    stream = json.loads(os.read(drain_pipe, 4096) or b"{}")
    os.close(drain_pipe)

    # Stop: hang every terminal up at once, then reap.
    for runs in sessions.values():
        for run in runs:
            os.close(run.master)
            run.master = None
    deadline = time.time() + 30
    for runs in sessions.values():
        for run in runs:
            while True:
                pid, _ = os.waitpid(run.pid, os.WNOHANG)
                if pid or time.time() > deadline:
                    break
                time.sleep(0.01)
            if not pid:
                os.kill(run.pid, signal.SIGKILL)
                os.waitpid(run.pid, 0)
    return {
        "variant": variant.name,
        "start_all_s": start_secs,
        "keys": len(lat),
        "keys_lost": lost,
        "key_p50_us": pct(lat, 50),
        "key_p99_us": pct(lat, 99),
        "key_max_us": max(lat) if lat else float("nan"),
        "idle_wakeups_per_s_per_session": sum(idle_rates) / len(idle_rates) / idle_secs,
        "idle_recorder_wakeups_per_s": (sum(recorder_rates) / len(recorder_rates) / idle_secs) if recorder_rates else 0.0,
        "idle_sessions_with_wakeups": sum(1 for r in idle_rates if r > 0),
        "stream_mb_s": stream.get("bytes", 0) / MB / max(stream.get("secs", 1), 1e-9),
        "pss_kb": {k: [m[0] for m in v] for k, v in memory.items()},
        "recorder_pss_kb": {k: [m[1] for m in v] for k, v in memory.items()},
        **load,
    }


def med(values):
    v = sorted(values)
    return v[len(v) // 2] if v else float("nan")


def report(results):
    print("\n| variant | round | sessions start s | load1 start→end | busy % | steal % | stream MB/s | keys | key p50 µs | key p99 µs | key max µs | idle wake-ups/s per session (recorder) | idle sessions with any wake-up |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for i, r in enumerate(results):
        print(
            f"| {r['variant']} | {i // 2 + 1} | {r['start_all_s']:.1f} | {r['load1_start']:.1f}→{r['load1_end']:.1f} | "
            f"{r['busy_pct']:.0f} | {r['steal_pct']:.1f} | {r['stream_mb_s']:.1f} | {r['keys']} | {r['key_p50_us']:.0f} | "
            f"{r['key_p99_us']:.0f} | {r['key_max_us']:.0f} | {r['idle_wakeups_per_s_per_session']:.3f} ({r['idle_recorder_wakeups_per_s']:.3f}) | "
            f"{r['idle_sessions_with_wakeups']} |"
        )
    print("\nPSS per session (KiB; whole session: recorder + shell + command; median / max over the sessions of the last round)")
    print("| variant | idle session | typist session | streaming session | recorder alone, idle (median / max) | 200 sessions total MiB |")
    print("|---|---|---|---|---|---|")
    last = {}
    for r in results:
        last[r["variant"]] = r
    for name, r in last.items():
        p, rec = r["pss_kb"], r["recorder_pss_kb"]
        total = sum(sum(v) for v in p.values()) / 1024
        print(
            f"| {name} | {med(p['idle'])} / {max(p['idle'])} | {med(p['typist'])} / {max(p['typist'])} | "
            f"{p['stream'][0]} | {med(rec['idle'])} / {max(rec['idle'])} | {total:.1f} |"
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sessrec-shell", required=True)
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--typists", type=int, default=20)
    ap.add_argument("--key-rate", type=float, default=5.0, help="keys per second per typist")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured window per round")
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default="many-results.json")
    ap.add_argument("--report", help="reprint a saved run")
    args = ap.parse_args()
    if args.report:
        report(json.load(open(args.report)))
        return
    if os.geteuid() != 0:
        sys.exit("run as root")
    work = tempfile.mkdtemp(prefix="sessrec-many-")
    os.chmod(work, 0o755)
    config = os.path.join(work, "sessrec.toml")
    with open(config, "w") as f:
        f.write(
            f'record_dir = "{work}/rec"\nmin_free_mb = 1\n'
            f'[recorder]\nshell = "/bin/sh"\nnotice = ""\nmax_channel_bytes = 17179869184\n'
        )
    os.chmod(config, 0o644)
    if not os.path.exists("/var/run/utmp"):
        open("/var/run/utmp", "a").close()
    variants = [Variant("none", None, None), Variant("sessrec", os.path.abspath(args.sessrec_shell), config)]
    results = []
    try:
        for rnd in range(args.rounds):
            order = variants if rnd % 2 == 0 else variants[::-1]
            for v in order:
                r = one_round(v, args)
                r["round"] = rnd + 1
                results.append(r)
                print(
                    f"round {rnd + 1} {v.name:8} keys {r['keys']} p50 {r['key_p50_us']:.0f} p99 {r['key_p99_us']:.0f} µs, "
                    f"idle wake-ups/s {r['idle_wakeups_per_s_per_session']:.3f}, stream {r['stream_mb_s']:.1f} MB/s, "
                    f"load {r['load1_start']:.1f}→{r['load1_end']:.1f}, steal {r['steal_pct']:.1f} %",
                    flush=True,
                )
                shutil.rmtree(os.path.join(work, "rec"), ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results.sort(key=lambda r: (r["round"], r["variant"]))
    with open(args.out, "w") as f:
        json.dump(results, f)
    report(results)


if __name__ == "__main__":
    main()
