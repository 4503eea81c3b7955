#!/usr/bin/env python3
"""Writes an auditd log (ENRICHED) of exec and connect events for the importer benchmark, and a
record tree with the login session that half of them belong to.

usage: gen_log.py WORKDIR MEGABYTES
"""
import json, os, random, sys, time, uuid

work, mb = sys.argv[1], int(sys.argv[2])
os.makedirs(work, exist_ok=True)
now = time.time()
ses = 7
boot = open("/proc/sys/kernel/random/boot_id").read().strip()

# A login session (UUIDv7 id, date directory from its time) whose audit session is `ses`.
ms = int(now * 1000) - 60_000
raw = bytearray(uuid.uuid4().bytes)
raw[0:6] = ms.to_bytes(6, "big")
raw[6] = 0x70 | (raw[6] & 0x0F)
raw[8] = 0x80 | (raw[8] & 0x3F)
sid = str(uuid.UUID(bytes=bytes(raw)))
t = time.gmtime(ms / 1000)
sdir = os.path.join(work, "records", time.strftime("%Y/%m/%d", t), sid)
os.makedirs(sdir, mode=0o700, exist_ok=True)
stamp = time.strftime("%Y-%m-%dT%H:%M:%S", t) + ".000000Z"
head = {"v": 1, "type": "login", "seq": 1, "time": stamp, "host": "bench", "session": sid,
        "file": "session.jsonl", "user": "bench", "actor": "bench", "prev": "0" * 64,
        "audit_session": ses, "loginuid": 1000, "boot_id": boot}
with open(os.path.join(sdir, "session.jsonl"), "w") as f:
    f.write(json.dumps(head) + "\n")
ch = dict(head, type="channel.start", file="channel-1.jsonl", kind="shell", pid=1000)
with open(os.path.join(sdir, "channel-1.jsonl"), "w") as f:
    f.write(json.dumps(ch) + "\n")

enr = "\x1dARCH=x86_64 SYSCALL=execve AUID=\"bench\" UID=\"bench\" GID=\"bench\" EUID=\"bench\" SUID=\"bench\" FSUID=\"bench\" EGID=\"bench\" SGID=\"bench\" FSGID=\"bench\""
serial = 1000
secs = now - 30
out = open(os.path.join(work, "audit.log"), "w")
written = 0
target = mb * 1_000_000
words = ["ls", "-la", "/etc", "grep", "-r", "pattern", "--color=auto", "make", "install", "x" * 40]
while written < target:
    serial += 1
    secs += 0.0005
    pid = 2000 + serial % 30000
    s = ses if serial % 2 == 0 else 8
    mid = f"audit({secs:.3f}:{serial})"
    if serial % 10 == 0:
        recs = [
            f"type=SYSCALL msg={mid}: arch=c000003e syscall=42 success=yes exit=0 a0=3 a1=7ffd a2=10 a3=0 items=0 ppid=1000 pid={pid} auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts1 ses={s} comm=\"curl\" exe=\"/usr/bin/curl\" key=\"sessrec-connect\"{enr}",
            f"type=SOCKADDR msg={mid}: saddr=020001BB5DB8D8220000000000000000\x1dSADDR={{ saddr_fam=inet laddr=93.184.216.34 lport=443 }}",
            f"type=PROCTITLE msg={mid}: proctitle=6375726C0068747470733A2F2F6578616D706C652E636F6D",
        ]
    else:
        argv = random.sample(words, random.randint(1, 6))
        args = " ".join(
            f"a{i}=\"{a}\"" if i % 3 else f"a{i}={a.encode().hex().upper()}" for i, a in enumerate(argv))
        recs = [
            f"type=SYSCALL msg={mid}: arch=c000003e syscall=59 success=yes exit=0 a0=55d a1=55e a2=55f a3=8 items=2 ppid=1000 pid={pid} auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts1 ses={s} comm=\"{argv[0][:15]}\" exe=\"/usr/bin/{argv[0][:15]}\" key=\"sessrec-exec\"{enr}",
            f"type=EXECVE msg={mid}: argc={len(argv)} {args}",
            f"type=CWD msg={mid}: cwd=\"/home/bench/project\"",
            f"type=PATH msg={mid}: item=0 name=\"/usr/bin/{argv[0][:15]}\" inode=247497 dev=fe:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\x1dOUID=\"root\" OGID=\"root\"",
            f"type=PATH msg={mid}: item=1 name=\"/lib64/ld-linux-x86-64.so.2\" inode=325843 dev=fe:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\x1dOUID=\"root\" OGID=\"root\"",
            f"type=PROCTITLE msg={mid}: proctitle={' '.join(argv).encode().hex().upper()[:256]}",
        ]
    text = "\n".join(recs) + "\n"
    out.write(text)
    written += len(text)
out.close()
os.chmod(os.path.join(work, "audit.log"), 0o600)
print(f"{written} bytes, {serial - 1000} events, session {sid}")
