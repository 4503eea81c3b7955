#!/usr/bin/env bash
# What the shipped audit rules cost the user: an exec storm and a small cargo build, run by a
# process with a login uid (as an SSH login's processes are), with
#   A  auditing disabled, no auditd (baseline)
#   B  auditd running, no rules
#   C  auditd running + the shipped rules (the deployment)
#   D  the shipped rules with auditd stopped (the kernel's side alone; events are dropped)
# and the events per second auditd kept without loss during the storm.
#
# Run as root from the repository root:  bash bench/audit/run_rules.sh [EXECS] [REPEATS]
# It takes the locks of the test harness (tests/src/audit.rs) so that no test uses audit
# meanwhile, starts its own auditd with a private config, uses its own rule key, and puts the
# enabled flag, backlog settings and rules back.
set -euo pipefail
execs=${1:-20000}
repeats=${2:-3}
run=/run/srt-auditd
work=$(mktemp -d /var/tmp/srt-bench-rules.XXXXXX)
key=srt-bench-$$
mkdir -p "$run"
exec 8>"$run/lock" 9>"$run/users" 7>"$run/settings"
flock -x 8 && flock -x 9 && flock -x 7
if [ "$(auditctl -s | awk '/^pid/{print $2}')" != 0 ]; then
    echo "an auditd is running: this benchmark needs to start and stop its own" >&2
    exit 1
fi
enabled_before=$(auditctl -s | awk '/^enabled/{print $2}')
rules=$(grep '^-a ' packaging/examples/audit/sessrec.rules | sed "s/key=sessrec-[a-z]*/key=$key/")
mkdir -p "$work/conf" "$work/log"
# The test harness's private auditd config, with larger and fewer logs and auditd's default
# end-of-event timeout.
sed -e "s|/run/srt-auditd/log|$work/log|" -e 's/^max_log_file = .*/max_log_file = 512/' \
    -e 's/^num_logs = .*/num_logs = 2/' -e '/^end_of_event_timeout/d' \
    tests/src/auditd.conf > "$work/conf/auditd.conf"
chmod 0600 "$work/conf/auditd.conf"
auditd_pid=
cleanup() {
    [ -n "$auditd_pid" ] && kill "$auditd_pid" 2>/dev/null && wait "$auditd_pid" 2>/dev/null || true
    while read -r r; do auditctl ${r/-a /-d } >/dev/null 2>&1 || true; done <<<"$rules"
    auditctl -e "$enabled_before" >/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
start_auditd() { auditd -n -c "$work/conf" & auditd_pid=$!; while [ "$(auditctl -s | awk '/^pid/{print $2}')" = 0 ]; do sleep 0.1; done; }
stop_auditd() { kill "$auditd_pid"; wait "$auditd_pid" 2>/dev/null || true; auditd_pid=; }
add_rules() { while read -r r; do auditctl $r >/dev/null; done <<<"$rules"; }
del_rules() { while read -r r; do auditctl ${r/-a /-d } >/dev/null; done <<<"$rules"; }

# A small crate to build (no dependencies, offline).
cargo new -q --vcs none --name smallcrate "$work/crate"
python3 -c "
for i in range(400):
    print(f'pub fn f{i}(v: &[u64]) -> u64 {{ v.iter().map(|x| x.wrapping_mul({i} + 1) ^ (x >> 3)).fold({i}, |a, b| a.rotate_left(5) ^ b) }}')
" >> "$work/crate/src/main.rs"
# Runs "$@" as a process with login uid 1000 (what pam_loginuid gives a login); prints
# "wall cpu" seconds (cpu: user + system of it and its children; less disturbed by other load).
as_login() {
    python3 - "$@" <<'PY'
import os, resource, sys, time
t0 = time.monotonic()
pid = os.fork()
if pid == 0:
    with open("/proc/self/loginuid", "w") as f:
        f.write("1000")
    os.execvp(sys.argv[1], sys.argv[1:])
_, _, ru = os.wait4(pid, 0)
print(f"{time.monotonic() - t0:.3f} {ru.ru_utime + ru.ru_stime:.3f}")
PY
}
# CPU seconds auditd has used so far.
auditd_cpu() {
    if [ -n "$auditd_pid" ]; then
        awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / hz }' "/proc/$auditd_pid/stat"
    else
        echo 0
    fi
}
storm() { as_login bash -c "for i in \$(seq $execs); do /bin/true; done"; }
build() { as_login bash -c "cd $work/crate && CARGO_TARGET_DIR=$work/crate/target cargo build -q --offline && rm -rf $work/crate/target"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# One round = every configuration once, so that the host's changing load hits them alike.
declare -A SW SC BW BC DC
config() { # A|B|C|D: puts audit in that state
    case $1 in
    A) [ -n "$auditd_pid" ] && stop_auditd; del_rules 2>/dev/null || true; auditctl -e 0 >/dev/null ;;
    B) [ -z "$auditd_pid" ] && start_auditd; del_rules 2>/dev/null || true; auditctl -e 1 >/dev/null ;;
    C) [ -z "$auditd_pid" ] && start_auditd; del_rules 2>/dev/null || true; add_rules; auditctl -e 1 >/dev/null ;;
    D) [ -n "$auditd_pid" ] && stop_auditd; del_rules 2>/dev/null || true; add_rules; auditctl -e 1 >/dev/null ;;
    esac
}
echo "host: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r), $execs execs per storm, $repeats rounds"
for round in $(seq "$repeats"); do
    for c in A B C D; do
        config "$c"
        d0=$(auditd_cpu)
        read -r sw sc < <(storm)
        d1=$(auditd_cpu)
        read -r bw bc < <(build)
        SW[$c]+="$sw "; SC[$c]+="$sc "; BW[$c]+="$bw "; BC[$c]+="$bc "
        DC[$c]+="$(python3 -c "print(f'{$d1 - $d0:.2f}')") "
        echo "round $round $c: storm wall $sw s cpu $sc s (auditd cpu +$(python3 -c "print(f'{$d1 - $d0:.2f}')") s); build wall $bw s cpu $bc s; load $(cut -d' ' -f1 /proc/loadavg)"
    done
done
config C
lost0=$(auditctl -s | awk '/^lost/{print $2}')
logged0=$(grep -c "key=\"$key\"" "$work/log/audit.log" || true)
read -r t _ < <(storm)
logged1=$(grep -c "key=\"$key\"" "$work/log/audit.log" || true)
lost1=$(auditctl -s | awk '/^lost/{print $2}')
echo "C: one storm of $execs execs in $t s: $((logged1 - logged0)) events logged, lost counter +$((lost1 - lost0)): $(python3 -c "print(f'{($logged1 - $logged0) / $t:.0f}')") events/s kept without loss"
config D
lost0=$(auditctl -s | awk '/^lost/{print $2}')
storm >/dev/null
lost1=$(auditctl -s | awk '/^lost/{print $2}')
echo "D: one storm with auditd stopped: lost counter +$((lost1 - lost0)) (the kernel drops what no daemon takes)"
med() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
python3 - "$(echo "${SW[A]}" | med)" "$(echo "${SC[A]}" | med)" "$(echo "${BW[A]}" | med)" "$(echo "${BC[A]}" | med)" \
    "$(echo "${SW[B]}" | med)" "$(echo "${SC[B]}" | med)" "$(echo "${BW[B]}" | med)" "$(echo "${BC[B]}" | med)" \
    "$(echo "${SW[C]}" | med)" "$(echo "${SC[C]}" | med)" "$(echo "${BW[C]}" | med)" "$(echo "${BC[C]}" | med)" \
    "$(echo "${SW[D]}" | med)" "$(echo "${SC[D]}" | med)" "$(echo "${BW[D]}" | med)" "$(echo "${BC[D]}" | med)" \
    "$(echo "${DC[C]}" | med)" <<'PY'
import sys
v = list(map(float, sys.argv[1:17])); dc = float(sys.argv[17])
names = ["A no audit", "B auditd, no rules", "C auditd + rules", "D rules, auditd stopped"]
print("medians (ratio to A):")
for i, n in enumerate(names):
    sw, sc, bw, bc = v[4 * i:4 * i + 4]
    print(f"  {n}: storm wall {sw:.2f} s (x{sw / v[0]:.2f}), cpu {sc:.2f} s (x{sc / v[1]:.2f}); "
          f"build wall {bw:.2f} s (x{bw / v[2]:.2f}), cpu {bc:.2f} s (x{bc / v[3]:.2f})")
print(f"  auditd's own CPU per storm under C: {dc:.2f} s")
PY
