#!/usr/bin/env python3
"""SFTP and legacy scp throughput over loopback ssh, recorded by sessrec-shell vs unrecorded.

A private sshd on 127.0.0.1 (own config, host key, PAM service with pam_sessrec), two users:
one whose login shell is the setuid recorder (sshd runs `sessrec-shell -c
/usr/lib/openssh/sftp-server`), one whose shell is /bin/sh (sshd runs `/bin/sh -c
/usr/lib/openssh/sftp-server`). Each round uploads and downloads the same file once per
variant, in alternating order, with `sftp -b` (and `scp -O` with --scp) and a fixed cipher.
See README.md.

Run as root:  python3 bench/transfer/bench.py [--runs 5] [--size-mib 1024]
Leaves nothing behind (users, PAM file, sshd symlink, directories are removed on exit).
"""

import argparse
import json
import os
import pwd
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

CIPHER = "aes128-gcm@openssh.com"
# The compared build runs as the recorded user (the PAM module accepts one recorder path).
USER_OF = {"unrecorded": "unrecorded", "recorded": "recorded", "compared": "recorded"}
SFTP_SERVER = "/usr/lib/openssh/sftp-server"


def sh(*args, **kw):
    return subprocess.run(args, check=True, **kw)


def quartiles(values):
    """Median and interquartile range (inclusive method, as numpy's default)."""
    v = sorted(values)
    if len(v) == 1:
        return v[0], v[0], v[0]
    q1, med, q3 = statistics.quantiles(v, n=4, method="inclusive")
    return med, q1, q3


def proc_cpu(pid):
    """(own, reaped children's) CPU seconds of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime) / tick, (cutime + cstime) / tick


class ServerCpu(threading.Thread):
    """CPU seconds of the listener's descendants (sshd session processes, the recorder,
    sftp-server), sampled every 20 ms: sshd does not reliably reap them into its children
    times, so each process's last sample counts (under-counting each by at most 20 ms)."""

    def __init__(self, listener):
        super().__init__(daemon=True)
        self.listener = listener
        self.last = {}
        self.done = threading.Event()

    def descendants(self, pid):
        found = []
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return found
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    kids = [int(c) for c in f.read().split()]
            except OSError:
                continue
            for kid in kids:
                found.append(kid)
                found += self.descendants(kid)
        return found

    def run(self):
        while not self.done.is_set():
            for pid in self.descendants(self.listener):
                try:
                    start_time = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[19]
                    self.last[(pid, start_time)] = proc_cpu(pid)[0]
                except (OSError, IndexError):
                    pass
            self.done.wait(0.02)

    def stop(self):
        self.done.set()
        self.join()
        return sum(self.last.values())


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_ticks():
    """(steal, total) jiffies of all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already in user/nice).
    return fields[7], sum(fields[:8])


def steal_percent(before, after):
    """Share of CPU time the hypervisor gave to others between two `cpu_ticks()`."""
    total = after[1] - before[1]
    return 100.0 * (after[0] - before[0]) / total if total > 0 else 0.0


class Bench:
    def __init__(self, args):
        self.args = args
        tag = secrets.token_hex(3)
        self.tag = tag
        self.service = f"sshd-srt-xb-{tag}"
        self.inst = f"/usr/local/lib/srt-xbench-{tag}"
        self.work = f"/var/lib/srt-xbench-{tag}"
        self.shm = f"/dev/shm/srt-xbench-{tag}"
        self.pam_file = f"/etc/pam.d/{self.service}"
        self.symlink = f"/usr/local/sbin/{self.service}"
        self.users = {"recorded": f"srt-xbr-{tag}", "unrecorded": f"srt-xbu-{tag}"}
        self.sshd = None
        self.port = None
        self.seen = set()
        self.installed_variant = "recorded"
        self.variants = ["unrecorded", "recorded"] + (["compared"] if args.compare_shell else [])
        self.directions = [d for d in ("upload", "download", "scp-upload", "scp-download")
                           if d.startswith("scp-") == args.scp or (args.scp and args.sftp_too)]

    # --- set-up -------------------------------------------------------------------------
    def setup(self):
        a = self.args
        try:
            pwd.getpwnam("sessrec")
        except KeyError:
            sh("adduser", "--system", "--group", "--no-create-home", "sessrec",
               stdout=subprocess.DEVNULL)
        os.makedirs(self.inst, mode=0o755)
        os.chmod(self.inst, 0o755)
        self.shell = f"{self.inst}/sessrec-shell"
        self.module = f"{self.inst}/pam_sessrec.so"
        shutil.copyfile(a.sessrec_shell, self.shell)
        os.chmod(self.shell, 0o4755)
        shutil.copyfile(a.pam_module, self.module)
        os.chmod(self.module, 0o644)

        os.makedirs(self.work, mode=0o755)
        os.chmod(self.work, 0o755)
        self.records = f"{self.work}/records"
        os.makedirs(self.records, mode=0o700)
        self.config = f"{self.work}/sessrec.toml"
        with open(self.config, "w") as f:
            f.write(
                f'record_dir = "{self.records}"\nmin_free_mb = 1\n'
                f'[policy]\nusers = ["{self.users["recorded"]}"]\n'
                f'services = ["{self.service}"]\n'
                '[recorder]\nshell = "/bin/sh"\nnotice = ""\n'
            )
        os.chmod(self.config, 0o644)

        sh("useradd", "-m", "-p", "*", "-s", self.shell, self.users["recorded"])
        sh("useradd", "-m", "-p", "*", "-s", "/bin/sh", self.users["unrecorded"])
        key = f"{self.work}/client_key"
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key)
        self.key = key
        with open(f"{key}.pub") as f:
            pub = f.read()
        for user in self.users.values():
            pw = pwd.getpwnam(user)
            ssh_dir = os.path.join(pw.pw_dir, ".ssh")
            os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
            with open(os.path.join(ssh_dir, "authorized_keys"), "w") as f:
                f.write(pub)
            for p in (ssh_dir, os.path.join(ssh_dir, "authorized_keys")):
                os.chown(p, pw.pw_uid, pw.pw_gid)
            os.chmod(os.path.join(ssh_dir, "authorized_keys"), 0o600)

        with open(self.pam_file, "w") as f:
            f.write(
                "auth     required pam_deny.so\n"
                "account  required pam_unix.so\n"
                "password required pam_deny.so\n"
                "session  required pam_unix.so\n"
                f"session  required {self.module} config={self.config} "
                f"services={self.service} recorder={self.shell}\n"
            )
        os.makedirs("/usr/local/sbin", exist_ok=True)
        os.symlink("/usr/sbin/sshd", self.symlink)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)

        # The payload lives in tmpfs and goes to /dev/null on the other side: the disk is not
        # part of what is measured.
        os.makedirs(self.shm, mode=0o755)
        os.chmod(self.shm, 0o755)
        self.data = f"{self.shm}/data.bin"
        with open("/dev/urandom", "rb") as src, open(self.data, "wb") as dst:
            left = a.size_mib * 1024 * 1024
            while left:
                chunk = src.read(min(left, 4 << 20))
                dst.write(chunk)
                left -= len(chunk)
        os.chmod(self.data, 0o644)
        self.start_sshd()

    def start_sshd(self):
        host_key = f"{self.work}/host_key"
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        cfg = f"{self.work}/sshd_config"
        with open(cfg, "w") as f:
            f.write("\n".join([
                f"ListenAddress 127.0.0.1:{self.port}",
                f"HostKey {host_key}",
                f"PidFile {self.work}/sshd.pid",
                "UsePAM yes",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "AuthenticationMethods publickey",
                f"AllowUsers {' '.join(self.users.values())}",
                f"Ciphers {CIPHER}",
                "UseDNS no",
                "PrintMotd no",
                "LogLevel ERROR",
                f"Subsystem sftp {SFTP_SERVER}",
            ]) + "\n")
        sh(self.symlink, "-t", "-f", cfg)
        self.sshd_log = open(f"{self.work}/sshd.log", "w")
        self.sshd = subprocess.Popen([self.symlink, "-D", "-e", "-f", cfg],
                                     stdout=self.sshd_log, stderr=self.sshd_log)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("private sshd did not start")
                time.sleep(0.05)

    # --- runs -------------------------------------------------------------------------
    def sftp(self, variant, direction):
        """One transfer of the whole file: `sftp -b` for "upload"/"download", `scp -O` (the
        legacy protocol) for "scp-upload"/"scp-download"; "none" is `sftp -b` with `pwd` only,
        the fixed cost of connection, login and channel start. Returns the measurements."""
        batch = b""
        if direction == "upload":
            batch = f"put {self.data} /dev/null\n".encode()
        elif direction == "download":
            batch = f"get {self.data} /dev/null\n".encode()
        elif direction == "none":
            batch = b"pwd\n"
        options = [
            "-F", "/dev/null",
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
            "-o", "IdentityAgent=none", "-o", f"IdentityFile={self.key}",
            "-o", "LogLevel=ERROR", "-c", CIPHER, "-P", str(self.port),
        ]
        login = f"{self.users[USER_OF[variant]]}@127.0.0.1"
        if direction == "scp-upload":
            cmd = ["scp", "-O", "-q", *options, self.data, f"{login}:/dev/null"]
        elif direction == "scp-download":
            cmd = ["scp", "-O", "-q", *options, f"{login}:{self.data}", "/dev/null"]
        else:
            cmd = ["sftp", "-q", "-b", "-", *options, login]
        if variant != "unrecorded":
            self.install_recorder(variant)
        client_before = children_cpu()
        sampler = ServerCpu(self.sshd.pid)
        sampler.start()
        start = time.monotonic()
        out = subprocess.run(cmd, input=batch, capture_output=True)
        seconds = time.monotonic() - start
        if out.returncode != 0:
            raise SystemExit(f"{cmd[0]} {variant} {direction} failed: {out.stderr.decode()}")
        client = children_cpu() - client_before
        self.wait_connections_gone()
        server = sampler.stop()
        recorder = self.recorder_cpu() if variant != "unrecorded" else 0.0
        size = self.args.size_mib * 1024 * 1024
        return {"seconds": seconds, "mbps": size / seconds / 1e6,
                "client_cpu": client, "server_cpu": server, "recorder_cpu": recorder}

    def install_recorder(self, variant):
        """Puts the build for `variant` at the recorded user's shell path (setuid root)."""
        if self.installed_variant == variant:
            return
        source = self.args.sessrec_shell if variant == "recorded" else self.args.compare_shell
        staged = f"{self.shell}.new"
        shutil.copyfile(source, staged)
        os.chmod(staged, 0o4755)
        os.replace(staged, self.shell)
        self.installed_variant = variant

    def wait_connections_gone(self):
        path = f"/proc/{self.sshd.pid}/task/{self.sshd.pid}/children"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(path) as f:
                if not f.read().strip():
                    return
            time.sleep(0.02)
        raise SystemExit("sshd connection processes did not exit")

    def recorder_cpu(self):
        """The recorder's own CPU seconds from the channel.end of the newest channel."""
        for root, _dirs, names in os.walk(self.records):
            for n in names:
                p = os.path.join(root, n)
                if n.startswith("channel-") and p not in self.seen:
                    self.seen.add(p)
                    with open(p) as f:
                        for line in f:
                            ev = json.loads(line)
                            if ev.get("type") == "channel.end":
                                return ev["recorder_cpu_us"] / 1e6
                    raise SystemExit(f"{p} has no channel.end")
        raise SystemExit("no new channel file for a recorded run")

    def run(self):
        a = self.args
        results = {d: {"runs": [], **{v: [] for v in self.variants},
                       **{f"ratio_{v}": [] for v in self.variants[1:]}}
                   for d in self.directions}
        loads = [loadavg()]
        steals = []
        # Warm-up: page cache, sshd's first fork, the recorder's first exec.
        for variant in self.variants:
            self.sftp(variant, "download")
        # The fixed cost of a session without a transfer, to tell it apart from throughput.
        startup = {v: [] for v in self.variants}
        for r in range(a.startup_runs):
            k = r % len(self.variants)
            for variant in self.variants[k:] + self.variants[:k]:
                startup[variant].append(self.sftp(variant, "none")["seconds"])
        results["startup"] = startup
        for r in range(a.runs):
            ticks = cpu_ticks()
            for direction in self.directions:
                # Rotate the order each round, so no variant always goes first.
                k = r % len(self.variants)
                order = self.variants[k:] + self.variants[:k]
                this = {}
                for variant in order:
                    m = self.sftp(variant, direction)
                    m.update(round=r + 1, variant=variant)
                    this[variant] = m["mbps"]
                    results[direction][variant].append(m["mbps"])
                    results[direction]["runs"].append(m)
                    print(f"round {r + 1} {direction:8} {variant:10} {m['seconds']:6.2f} s "
                          f"{m['mbps']:7.1f} MB/s  CPU client {m['client_cpu']:5.2f} s "
                          f"server {m['server_cpu']:5.2f} s recorder {m['recorder_cpu']:5.2f} s"
                          f"  load {loadavg()}", flush=True)
                for v in self.variants[1:]:
                    results[direction][f"ratio_{v}"].append(this[v] / this["unrecorded"])
            loads.append(loadavg())
            steals.append(steal_percent(ticks, cpu_ticks()))
        results["steal_percent"] = steals
        return results, loads

    def record_summary(self):
        files = []
        for root, _dirs, names in os.walk(self.records):
            files += [os.path.join(root, n) for n in names if n.startswith("channel-")]
        sizes = [os.path.getsize(p) for p in files]
        ops = spliced = 0
        for p in files:
            with open(p) as f:
                for line in f:
                    ev = json.loads(line)
                    if ev.get("type") == "transfer" and ev.get("op") in ("open", "file"):
                        ops += 1
                    if ev.get("type") == "channel.end":
                        spliced += ev.get("spliced_bytes_out", 0)
        return len(files), max(sizes, default=0), ops, spliced

    # --- clean-up -----------------------------------------------------------------------
    def cleanup(self):
        if self.sshd is not None:
            self.sshd.terminate()
            try:
                self.sshd.wait(10)
            except subprocess.TimeoutExpired:
                self.sshd.kill()
        for user in self.users.values():
            subprocess.run(["userdel", "-r", "-f", user],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for path in (self.pam_file, self.symlink):
            if os.path.lexists(path):
                os.remove(path)
        if not self.args.keep:
            for d in (self.inst, self.work, self.shm):
                shutil.rmtree(d, ignore_errors=True)
        else:
            print(f"kept {self.work} {self.inst}")
            shutil.rmtree(self.shm, ignore_errors=True)


def report(results, loads, args, records, variants):
    print()
    what = "SFTP and legacy scp" if args.scp and args.sftp_too else "legacy scp" if args.scp else "SFTP"
    print(f"{what} {args.size_mib} MiB over loopback ssh ({CIPHER}), {args.runs} interleaved "
          f"rounds, {os.cpu_count()} CPUs, kernel {os.uname().release}, "
          f"nice {os.nice(0)}")
    if args.compare_shell:
        print(f"recorded = {args.sessrec_shell}, compared = {args.compare_shell}")
    print(f"load average (1/5/15 min) at start and after each round: {' | '.join(loads)}")
    steals = results.pop("steal_percent")
    print(f"steal time (% of all CPU time) in each round: "
          f"{' | '.join(f'{x:.1f}' for x in steals)}")
    print("throughput MB/s and ratio to unrecorded within each round, median [IQR]")
    startup = results.pop("startup")
    size_mb = args.size_mib * 1024 * 1024 / 1e6
    for direction, r in results.items():
        for v in variants:
            med, q1, q3 = quartiles(r[v])
            line = f"{direction:10} {v:11} {med:7.1f} [{q1:6.1f}-{q3:6.1f}] MB/s"
            if v != "unrecorded":
                med, q1, q3 = quartiles(r[f"ratio_{v}"])
                line += f"   ratio {med:6.3f} [{q1:5.3f}-{q3:5.3f}]"
            print(line)
        # Throughput of the transfer alone: each run's time minus its variant's median fixed cost.
        net = {v: [size_mb / (m["seconds"] - statistics.median(startup[v]))
                   for m in r["runs"] if m["variant"] == v] for v in variants}
        for v in variants[1:]:
            ratios = [x / y for x, y in zip(net[v], net["unrecorded"])]
            med, q1, q3 = quartiles(ratios)
            print(f"{direction:10} {v:11} transfer only (fixed cost taken off): ratio "
                  f"{med:6.3f} [{q1:5.3f}-{q3:5.3f}]")
    print("fixed cost of a session (sftp -b with `pwd`), median [IQR] seconds:")
    for v in variants:
        med, q1, q3 = quartiles(startup[v])
        print(f"  {v:11} {med:6.3f} [{q1:5.3f}-{q3:5.3f}]")
    results["startup"] = startup
    results["steal_percent"] = steals
    gib = args.size_mib / 1024
    print()
    print("CPU seconds per GiB (median [IQR]): client = sftp + ssh; server = sshd's connection")
    print("processes + sftp-server (+ the recorder), sampled; recorder = its own getrusage.")
    print("CPU-bound estimate = unrecorded (client + server) CPU over this variant's: the")
    print("throughput ratio to expect when CPU is what limits the transfer.")
    print(f"{'direction':10} {'variant':11} {'client':>18} {'server':>18} {'of it recorder':>18}")
    for direction, r in ((d, r) for d, r in results.items()
                         if d not in ("startup", "steal_percent")):
        totals = {}
        for variant in variants:
            runs = [m for m in r["runs"] if m["variant"] == variant]
            cols = []
            for key in ("client_cpu", "server_cpu", "recorder_cpu"):
                med, q1, q3 = quartiles([m[key] / gib for m in runs])
                cols.append(f"{med:5.2f} [{q1:5.2f}-{q3:5.2f}]")
            totals[variant] = statistics.median(
                (m["client_cpu"] + m["server_cpu"]) / gib for m in runs)
            line = f"{direction:10} {variant:11} {cols[0]:>18} {cols[1]:>18} {cols[2]:>18}"
            if variant != "unrecorded":
                line += f"   estimate {totals['unrecorded'] / totals[variant]:.3f}"
            print(line)
    n, biggest, ops, spliced = records
    print(f"records: {n} recorded channels, largest channel file {biggest} bytes, "
          f"{ops} sftp open or scp file lines, {spliced / 2**20:.0f} MiB spliced")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    p.add_argument("--sessrec-shell", default=f"{target}/release/sessrec-shell")
    p.add_argument("--pam-module", default=f"{target}/release/libpam_sessrec.so")
    p.add_argument("--compare-shell", metavar="PATH",
                   help="another sessrec-shell build, run as a third variant (same user and "
                        "path as the recorded one, swapped in before each of its runs)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--startup-runs", type=int, default=10,
                   help="sessions without a transfer per variant, to measure the fixed cost")
    p.add_argument("--scp", action="store_true",
                   help="legacy scp (`scp -O`) each way instead of SFTP")
    p.add_argument("--sftp-too", action="store_true",
                   help="with --scp: SFTP each way as well, in the same rounds")
    p.add_argument("--json", help="also write the raw numbers here")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--no-nice", dest="nice", action="store_false",
                   help="do not run at nice -20")
    args = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    for f in (args.sessrec_shell, args.pam_module) + ((args.compare_shell,) if args.compare_shell else ()):
        if not os.path.isfile(f):
            raise SystemExit(f"{f} not found (cargo build --release -p sessrec-shell -p pam_sessrec)")
    if args.nice:
        # Everything started from here (sshd, its sessions, the recorder, the clients) inherits
        # this, so other work on a shared machine disturbs the runs less.
        os.nice(-20)
    bench = Bench(args)
    try:
        bench.setup()
        results, loads = bench.run()
        records = bench.record_summary()
    finally:
        bench.cleanup()
    report(results, loads, args, records, bench.variants)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "loads": loads, "results": results,
                       "records": records}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
