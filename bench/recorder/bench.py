#!/usr/bin/env python3
"""Side-by-side benchmark of terminal recorders through a real pty.

Runs the same workloads with no recorder, `script -T`, `tlog-rec` and `sessrec-shell`, interleaved,
and prints medians with interquartile ranges. See README.md beside this file for the method.
Run as root (sessrec-shell is started by root with SESSREC_CONFIG pointing at a private config).
"""
import argparse
import fcntl
import json
import os
import platform
import pty
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time

MB = 1024 * 1024


def quantiles(values):
    v = sorted(values)
    if not v:
        return (float("nan"),) * 3
    if len(v) == 1:
        return v[0], v[0], v[0]
    q = statistics.quantiles(v, n=4, method="inclusive")
    return q[1], q[0], q[2]


def pct(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = min(len(v) - 1, max(0, int(round(p / 100 * (len(v) - 1)))))
    return v[k]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def vm_hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Env:
    """Scratch files, configs and the variants' command lines."""

    def __init__(self, sessrec_shell, workdir, baseline_shell=None, recorder_options=()):
        self.dir = workdir
        self.sessrec_shell = sessrec_shell
        self.baseline_shell = baseline_shell
        self.rec_dir = os.path.join(workdir, "rec")
        self.out_dir = os.path.join(workdir, "out")
        os.makedirs(self.out_dir, exist_ok=True)
        self.configs = {}
        for name, line_bytes, flush_ms in (
            ("sessrec", 8192, 1000),
            ("sessrec-64k", 65536, 1000),
            ("sessrec-200ms", 8192, 200),
            ("sessrec-5s", 8192, 5000),
            ("sessrec-base", 8192, 1000),
        ):
            path = os.path.join(workdir, f"{name}.toml")
            with open(path, "w") as f:
                f.write(
                    f'record_dir = "{self.rec_dir}/{name}"\nmin_free_mb = 1\n'
                    f'[recorder]\nshell = "/bin/sh"\nmax_line_bytes = {line_bytes}\n'
                    f'flush_interval_ms = {flush_ms}\nnotice = ""\n'
                )
                if name != "sessrec-base":
                    f.writelines(f"{option}\n" for option in recorder_options)
            os.chmod(path, 0o644)
            self.configs[name] = path
        if not os.path.exists("/var/run/utmp"):
            open("/var/run/utmp", "a").close()

    def make_data(self, text_mb, random_mb):
        self.text = os.path.join(self.dir, "text.b64")
        self.random = os.path.join(self.dir, "random.bin")
        with open(self.text, "wb") as f:
            raw = os.urandom(int(text_mb * MB * 3 / 4))
            import base64

            f.write(base64.encodebytes(raw))
        with open(self.random, "wb") as f:
            f.write(os.urandom(int(random_mb * MB)))
        self.vim_file = os.path.join(self.dir, "vim.txt")
        with open(self.vim_file, "w") as f:
            for i in range(5000):
                f.write(f"line {i} the quick brown fox jumps over the lazy dog {i * 7919 % 1000}\n")
        self.vim_keys = os.path.join(self.dir, "vim.keys")
        with open(self.vim_keys, "w") as f:
            # Page through the file, search, edit a few lines, undo, quit without saving.
            f.write("\x06" * 150 + "gg" + "/fox 9\n" + "n" * 40 + "ggOinserted line\x1b" + "G" + "\x02" * 100 + "uuu:q!\n")

    def record_files(self, variant):
        if variant.startswith("sessrec"):
            base = os.path.join(self.rec_dir, variant)
        else:
            base = os.path.join(self.out_dir, variant)
        found = []
        for root, _, files in os.walk(base):
            for name in files:
                found.append(os.path.join(root, name))
        return found

    def clear_records(self, variant):
        base = os.path.join(self.rec_dir, variant) if variant.startswith("sessrec") else os.path.join(self.out_dir, variant)
        shutil.rmtree(base, ignore_errors=True)
        os.makedirs(base, exist_ok=True)

    def argv(self, variant, command):
        env = {"PATH": "/usr/bin:/bin", "TERM": "xterm-256color", "HOME": "/root", "LANG": "C.UTF-8"}
        if variant == "none":
            return ["/bin/sh", "-c", command], env
        if variant == "script":
            out = os.path.join(self.out_dir, "script")
            env["SHELL"] = "/bin/sh"
            return ["script", "-q", "-T", os.path.join(out, "timing"), "-c", command, os.path.join(out, "typescript")], env
        if variant == "tlog":
            out = os.path.join(self.out_dir, "tlog", "log.json")
            return ["tlog-rec", "--writer=file", f"--file-path={out}", "/bin/sh", "-c", command], env
        if variant.startswith("sessrec"):
            env["SESSREC_CONFIG"] = self.configs[variant]
            shell = self.baseline_shell if variant == "sessrec-base" else self.sessrec_shell
            return [shell, "-c", command], env
        raise ValueError(variant)


class PtyRun:
    """One program on a fresh pty; the driver plays the terminal."""

    def __init__(self, argv, env, cols=200, rows=50):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.start = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(self.master)
                os.setsid()
                fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
                for fd in (0, 1, 2):
                    os.dup2(slave, fd)
                if slave > 2:
                    os.close(slave)
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        os.close(slave)
        self.pid = pid
        self.hwm = 0
        self.out_bytes = 0
        self.first_byte_at = None

    def sample(self):
        # Before the first output the pid may still be the driver's own fork (not yet exec'd).
        if self.first_byte_at is None:
            return
        h = vm_hwm_kb(self.pid)
        if h:
            self.hwm = max(self.hwm, h)

    def drain(self, stall_after=None, stall_secs=0.0):
        last_sample = 0.0
        stalled = False
        while True:
            now = time.perf_counter()
            if now - last_sample > 0.05:
                self.sample()
                last_sample = now
            if stall_after is not None and not stalled and self.out_bytes >= stall_after:
                stalled = True
                end = time.perf_counter() + stall_secs
                while time.perf_counter() < end:
                    self.sample()
                    time.sleep(0.05)
            r, _, _ = select.select([self.master], [], [], 0.2)
            if not r:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                break
            if not data:
                break
            if self.first_byte_at is None:
                self.first_byte_at = time.perf_counter()
            self.out_bytes += len(data)
        return self.finish()

    def hangup(self):
        """Closes the terminal, as a disconnect does, and reaps the program (killed after 10 s)."""
        if self.master is not None:
            os.close(self.master)
            self.master = None
        deadline = time.time() + 10
        while time.time() < deadline:
            pid, status, ru = os.wait4(self.pid, os.WNOHANG)
            if pid:
                return status, ru
            time.sleep(0.02)
        os.kill(self.pid, signal.SIGKILL)
        _, status, ru = os.wait4(self.pid, 0)
        return status, ru

    def finish(self):
        _, status, ru = os.wait4(self.pid, 0)
        wall = time.perf_counter() - self.start
        os.close(self.master)
        self.master = None
        return {
            "wall": wall,
            "tree_cpu": ru.ru_utime + ru.ru_stime,
            "maxrss_kb": ru.ru_maxrss,
            "recorder_hwm_kb": self.hwm,
            "out_bytes": self.out_bytes,
            "status": status,
        }


def channel_end_stats(files):
    """The recorder's own getrusage numbers from channel.end."""
    for path in files:
        if os.path.basename(path).startswith("channel-"):
            with open(path, "rb") as f:
                for line in f:
                    try:
                        obj = json.loads(line)
                    except ValueError:
                        continue
                    if obj.get("type") == "channel.end":
                        return obj.get("recorder_cpu_us", 0) / 1e6, obj.get("recorder_max_rss_kib")
    return None, None


def bulk(env, variant, command, stall=None):
    env.clear_records(variant)
    argv, e = env.argv(variant, command)
    run = PtyRun(argv, e)
    res = run.drain(stall_after=stall, stall_secs=10.0 if stall else 0.0)
    files = env.record_files(variant)
    res["record_bytes"] = sum(os.path.getsize(p) for p in files)
    if variant.startswith("sessrec"):
        res["recorder_cpu"], res["recorder_rss_kb"] = channel_end_stats(files)
    return res


# Keystroke latencies are measured in this many rounds, each running every variant in turn.
KEY_ROUNDS = 4

# Load conditions for keystroke latency: how many CPU-bound processes run beside the typist,
# each in a session of its own (as another user's would be). On 2 cores: one keeps the other
# core busy, two keep both busy.
KEY_LOADS = {"idle": 0, "other_core_busy": 1, "both_cores_busy": 2}


class Hogs:
    """`n` busy loops at normal priority, each in its own session, for the length of a `with`."""

    def __init__(self, n):
        self.n = n
        self.procs = []

    def __enter__(self):
        for _ in range(self.n):
            self.procs.append(subprocess.Popen(["/bin/sh", "-c", "while :; do :; done"], start_new_session=True))
        if self.n:
            time.sleep(0.2)
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
            p.wait()


def cpu_times():
    """(busy, steal, total) jiffies of the whole machine from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    total = sum(fields[:8])
    return total - idle - iowait - steal, steal, total


class MachineNoise:
    """Samples the 1-minute load average every 2 s and the machine's busy and steal time, so a
    run on a shared machine says how shared it was."""

    def __init__(self):
        self.loads = []
        self.stop = threading.Event()
        self.start = cpu_times()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            with open("/proc/loadavg") as f:
                self.loads.append(float(f.read().split()[0]))
            self.stop.wait(2.0)

    def finish(self):
        self.stop.set()
        self.thread.join()
        busy0, steal0, total0 = self.start
        busy1, steal1, total1 = cpu_times()
        span = max(1, total1 - total0)
        loads = sorted(self.loads) or [float("nan")]
        return {
            "load1_min": loads[0],
            "load1_median": statistics.median(loads),
            "load1_max": loads[-1],
            "busy_pct": 100.0 * (busy1 - busy0) / span,
            "steal_pct": 100.0 * (steal1 - steal0) / span,
        }


def keystroke_latencies(env, variant, count, load_variant=None):
    """Echo latency of single keystrokes into `cat` with canonical mode off."""
    env.clear_records(variant)
    load = None
    if load_variant:
        # 50 MB/s of output on another recorded channel, in parallel.
        producer = (
            "python3 -c \"import os,sys,time\nb=b'x'*65535+b'\\n'\nt=time.time()\nn=0\n"
            "while time.time()-t<600:\n  os.write(1,b); n+=len(b)\n  d=n/52428800-(time.time()-t)\n"
            "  d>0 and time.sleep(d)\""
        )
        argv, e = env.argv(load_variant, producer)
        load = PtyRun(argv, e)

        def consume():
            while not getattr(load, "stop", False):
                r, _, _ = select.select([load.master], [], [], 0.1)
                if r:
                    try:
                        os.read(load.master, 65536)
                    except OSError:
                        return

        load_thread = threading.Thread(target=consume, daemon=True)
        load_thread.start()
        time.sleep(0.5)
    argv, e = env.argv(variant, "stty -icanon min 1 time 0; exec cat >/dev/null")
    run = PtyRun(argv, e, cols=80, rows=24)
    # Wait until the shell has set the terminal up (an echoed probe comes back).
    ready_deadline = time.time() + 10
    lat = []
    buf = b""
    os.write(run.master, b"#")
    while time.time() < ready_deadline and b"#" not in buf:
        r, _, _ = select.select([run.master], [], [], 0.1)
        if r:
            buf += os.read(run.master, 4096)
    for i in range(count):
        ch = bytes([ord("a") + i % 26])
        t0 = time.perf_counter_ns()
        os.write(run.master, ch)
        got = b""
        while ch not in got:
            r, _, _ = select.select([run.master], [], [], 2.0)
            if not r:
                break
            got += os.read(run.master, 4096)
        lat.append((time.perf_counter_ns() - t0) / 1000.0)
        time.sleep(0.002)
    run.hangup()
    if load:
        load.stop = True
        load_thread.join()
        load.hangup()
    return lat


def start_latency(env, variant):
    argv, e = env.argv(variant, "printf R")
    run = PtyRun(argv, e)
    res = run.drain()
    return (run.first_byte_at - run.start) * 1e3 if run.first_byte_at else float("nan")


def typing_growth(env, variant, seconds):
    """Record bytes written while typing shell commands at 5 keys/s, scaled to one hour."""
    env.clear_records(variant)
    argv, e = env.argv(variant, "exec /bin/sh -i")
    run = PtyRun(argv, e, cols=80, rows=24)
    text = b"echo the quick brown fox; ls /tmp >/dev/null\r"
    end = time.time() + seconds
    i = 0
    reader_stop = threading.Event()

    def reader():
        while not reader_stop.is_set():
            r, _, _ = select.select([run.master], [], [], 0.1)
            if r:
                try:
                    os.read(run.master, 65536)
                except OSError:
                    return

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    while time.time() < end:
        os.write(run.master, text[i % len(text) : i % len(text) + 1])
        i += 1
        time.sleep(0.2)
    os.write(run.master, b"\rexit\r")
    time.sleep(1.0)
    reader_stop.set()
    t.join()
    run.hangup()
    files = env.record_files(variant)
    return sum(os.path.getsize(p) for p in files) * 3600.0 / seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sessrec-shell", required=True)
    ap.add_argument(
        "--baseline-shell",
        help="an older sessrec-shell build run side by side as variant sessrec-base (same config)",
    )
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--text-mb", type=float, default=100)
    ap.add_argument("--random-mb", type=float, default=20)
    ap.add_argument("--keystrokes", type=int, default=2000)
    ap.add_argument("--start-runs", type=int, default=100)
    ap.add_argument("--typing-seconds", type=float, default=60)
    ap.add_argument("--out", default="bench-results.json")
    ap.add_argument(
        "--parts",
        default="bulk,keys,start,typing",
        help="comma-separated: bulk (throughput, CPU, RSS, stalled terminal), keys (keystroke "
        "echo in the three load conditions), start, typing",
    )
    ap.add_argument("--key-rounds", type=int, default=KEY_ROUNDS)
    ap.add_argument(
        "--recorder-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a [recorder] setting for the --sessrec-shell variants only (not sessrec-base), "
        "e.g. echo_spin_us=100; repeatable",
    )
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    if os.geteuid() != 0:
        sys.exit("run as root")
    work = tempfile.mkdtemp(prefix="sessrec-bench-")
    os.chmod(work, 0o755)
    baseline = os.path.abspath(args.baseline_shell) if args.baseline_shell else None
    env = Env(os.path.abspath(args.sessrec_shell), work, baseline, args.recorder_option)
    env.make_data(args.text_mb, args.random_mb)
    variants = ["none", "script", "tlog", "sessrec"] + (["sessrec-base"] if baseline else [])
    workloads = {
        "text": f"cat {env.text}",
        "ls": "ls --color=always -R /usr",
        "vim": f"vim.tiny -u NONE -i NONE -N -n -s {env.vim_keys} {env.vim_file}",
        "random": f"cat {env.random}",
    }
    results = {"cpu": cpu_model(), "cores": os.cpu_count(), "runs": args.runs, "bulk": {}, "extra": {}}
    noise = MachineNoise()
    if "bulk" in parts:
        # One uncounted warm-up round fills the page cache (ls -R /usr, the data files, vim).
        for wname, cmd in workloads.items():
            for v in variants:
                bulk(env, v, cmd)
        for r in range(args.runs):
            for wname, cmd in workloads.items():
                for v in variants + (["sessrec-64k"] if wname == "text" else []):
                    res = bulk(env, v, cmd)
                    results["bulk"].setdefault(wname, {}).setdefault(v, []).append(res)
                    print(f"run {r} {wname:6} {v:12} wall {res['wall']:.3f}s out {res['out_bytes']} rec {res['record_bytes']}", flush=True)
        # Stalled terminal: 10 s without reading after 10 MB.
        for v in ["sessrec", "script", "tlog"] + (["sessrec-base"] if baseline else []):
            res = bulk(env, v, workloads["text"], stall=10 * MB)
            results["extra"].setdefault("stall", {})[v] = res
    # Latencies in interleaved rounds too: on a shared machine the load drifts within minutes.
    extra = results["extra"]
    if "keys" in parts:
        extra["keys"] = {load: {v: [] for v in variants} for load in KEY_LOADS}
        per_round = args.keystrokes // args.key_rounds
        for r in range(args.key_rounds):
            for load, hogs in KEY_LOADS.items():
                with Hogs(hogs):
                    for v in variants:
                        extra["keys"][load][v] += keystroke_latencies(env, v, per_round)
            print(f"keystroke round {r} done", flush=True)
    if "start" in parts:
        extra["start_ms"] = {v: [] for v in variants}
        for _ in range(args.start_runs):
            for v in variants:
                extra["start_ms"][v].append(start_latency(env, v))
    if "typing" in parts:
        for v in ["script", "tlog", "sessrec", "sessrec-200ms", "sessrec-5s"] + (["sessrec-base"] if baseline else []):
            results["extra"].setdefault("typing_bytes_per_hour", {})[v] = typing_growth(env, v, args.typing_seconds)
    results["machine"] = noise.finish()
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    print_report(results)
    shutil.rmtree(work, ignore_errors=True)


def fmt_q(values, scale=1.0, digits=3):
    m, lo, hi = quantiles([x * scale for x in values if x is not None])
    return f"{m:.{digits}f} [{lo:.{digits}f}–{hi:.{digits}f}]"


def print_report(res):
    print(f"\nCPU: {res['cpu']} ({res['cores']} cores); median [IQR]\n")
    if res["bulk"]:
        print(f"{res['runs']} interleaved runs\n")
        print("| workload | variant | wall s | ×none | tree CPU s | recorder CPU s | recorder peak RSS MB | record B / output B |")
        print("|---|---|---|---|---|---|---|---|")
    for w, per in res["bulk"].items():
        base = statistics.median(r["wall"] for r in per["none"])
        base_cpu = statistics.median(r["tree_cpu"] for r in per["none"])
        for v, runs in per.items():
            wall = [r["wall"] for r in runs]
            cpu = [r["tree_cpu"] for r in runs]
            if v.startswith("sessrec") and runs[0].get("recorder_cpu") is not None:
                rcpu = fmt_q([r["recorder_cpu"] for r in runs])
                rss = fmt_q([r["recorder_rss_kb"] / 1024 for r in runs], digits=1)
            elif v == "none":
                rcpu, rss = "—", "—"
            else:
                rcpu = fmt_q([c - base_cpu for c in cpu]) + " (tree − none)"
                rss = fmt_q([r["recorder_hwm_kb"] / 1024 for r in runs], digits=1)
            ratio = [r["record_bytes"] / r["out_bytes"] for r in runs if r["out_bytes"]] if v != "none" else []
            print(
                f"| {w} | {v} | {fmt_q(wall)} | {statistics.median(wall) / base:.2f} | {fmt_q(cpu)} | {rcpu} | {rss} | "
                f"{fmt_q(ratio, digits=3) if ratio else '—'} |"
            )
    ex = res["extra"]
    variants = [v for v in ["none", "script", "tlog", "sessrec", "sessrec-base"] if v in ex.get("keys", {}).get("idle", {})]
    if ex.get("keys"):
        print("\nKeystroke echo, µs (p50 / p99; Δp50 = p50 − none's p50; p99 ÷ tlog's p99)\n")
        print("| load | variant | p50 | p99 | Δp50 | p99 ÷ tlog |")
        print("|---|---|---|---|---|---|")
        for load, per in ex["keys"].items():
            none50 = pct(per["none"], 50) if per.get("none") else float("nan")
            tlog99 = pct(per["tlog"], 99) if per.get("tlog") else float("nan")
            for v in variants:
                lat = per.get(v)
                if not lat:
                    continue
                p50, p99 = pct(lat, 50), pct(lat, 99)
                delta = "—" if v == "none" else f"{p50 - none50:+.0f}"
                ratio = "—" if v in ("none", "tlog") else f"{p99 / tlog99:.2f}"
                print(f"| {load} | {v} | {p50:.0f} | {p99:.0f} | {delta} | {ratio} |")
    rows = [v for v in ["none", "script", "tlog", "sessrec", "sessrec-base", "sessrec-200ms", "sessrec-5s"]
            if v in ex.get("stall", {}) or v in ex.get("start_ms", {}) or v in ex.get("typing_bytes_per_hour", {})]
    if rows:
        print("\n| variant | stalled-terminal peak RSS MB | start p50 ms | start p99 ms | record MB per hour typing |")
        print("|---|---|---|---|---|")
        for v in rows:
            st = ex.get("stall", {}).get(v)
            stall = f"{(st.get('recorder_rss_kb') or st['recorder_hwm_kb']) / 1024:.1f}" if st else "—"
            s = ex.get("start_ms", {}).get(v)
            start = f"{pct(s, 50):.2f} | {pct(s, 99):.2f}" if s else "— | —"
            typing = ex.get("typing_bytes_per_hour", {}).get(v)
            print(f"| {v} | {stall} | {start} | {typing / MB if typing else float('nan'):.2f} |")
    m = res.get("machine")
    if m:
        print(
            f"\nMachine during the run: 1-min load average {m['load1_min']:.1f}–{m['load1_max']:.1f} "
            f"(median {m['load1_median']:.1f}), CPU busy {m['busy_pct']:.0f} %, steal {m['steal_pct']:.1f} %"
        )

if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--report":
        with open(sys.argv[2]) as f:
            print_report(json.load(f))
    else:
        main()
