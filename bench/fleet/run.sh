#!/bin/sh
# sessrec fleet benchmarks (run on demand; see README.md): a central archive as the rsyslog
# receiver writes it (<host>/<session>/<file>), HOSTS hosts x SESSIONS sessions each, made with
# the real record writer (sessrec/examples/gen_records.rs), then
#   list (first run fills the verdict cache, the second the catalog; later runs use both),
#   hosts, verify --all, and
#   search --fixed-strings beside grep -rF on the same tree.
# Usage: bench/fleet/run.sh [WORKDIR [HOSTS [SESSIONS [BYTES]]]]
#   defaults: a fresh directory under /var/tmp, 100 hosts, 1000 sessions, 2000 output bytes
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$(mktemp -d /var/tmp/sessrec-bench-fleet.XXXXXX)}
hosts=${2:-100}
sessions=${3:-1000}
bytes=${4:-2000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$here/target}
cd "$here"
cargo build -q --release -p sessrec --bin sessrec
cargo build -q --release -p sessrec --example gen_records
bin=$CARGO_TARGET_DIR/release/sessrec
gen=$CARGO_TARGET_DIR/release/examples/gen_records
central=$work/central

median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }
timeit() { # "wall cpu" seconds of one run of "$@" (cpu = user + sys), output discarded
    /usr/bin/time -f '%e %U %S' -o "$work/time.out" "$@" >/dev/null 2>&1 || true
    # (time writes "Command exited with non-zero status N" first when the command fails.)
    awk '/^[0-9]/ {printf "%.3f %.3f\n", $1, $2 + $3}' "$work/time.out"
}
wall() { cut -d' ' -f1; }
cpu() { cut -d' ' -f2; }

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "cores: $(nproc); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ ! -d "$central" ]; then
    echo "generating $hosts hosts x $sessions sessions ..."
    mkdir -p "$work/stage" "$central"
    # The writer syncs every line: generation waits on the disk, so hosts are made in parallel.
    seq 1 "$hosts" | xargs -P 25 -I{} "$gen" "$work/stage/{}" "$sessions" "$bytes" "host{}.example.net"
    for h in $(seq 1 "$hosts"); do
        mkdir -p "$central/host$h.example.net"
        find "$work/stage/$h" -mindepth 4 -maxdepth 4 -type d \
            -exec mv -t "$central/host$h.example.net" {} +
    done
    rm -rf "$work/stage"
fi
total=$(find "$central" -name '*.jsonl' -printf '%s\n' | awk '{s+=$1} END {print s}')
count=$(find "$central" -mindepth 2 -maxdepth 2 -type d | wc -l)
echo "tree: $count sessions, $((total / 1000000)) MB of records"
find "$central" -name '*.jsonl' -exec cat {} + > /dev/null   # warm the page cache

timeit "$bin" --dir "$central" list > "$work/list-first.times"
echo "list, first run (verifies every chain, fills the verdict cache): wall $(wall < "$work/list-first.times") s, CPU $(cpu < "$work/list-first.times") s"
# Catalog entries are kept only of files and directories that last changed 2 s before: the
# first run's verdict files make the second run the one that fills the catalog.
sleep 2.5
timeit "$bin" --dir "$central" list > "$work/list-second.times"
echo "list, second run (fills the catalog): wall $(wall < "$work/list-second.times") s, CPU $(cpu < "$work/list-second.times") s"
for i in 1 2 3 4 5; do timeit "$bin" --dir "$central" list; done > "$work/list.times"
echo "list, cached verdicts: wall median $(wall < "$work/list.times" | median) s, CPU median $(cpu < "$work/list.times" | median) s (5 runs; target <= 1 s)"
for i in 1 2 3; do timeit "$bin" --dir "$central" hosts --silent-after 3650d; done > "$work/hosts.times"
echo "hosts: wall median $(wall < "$work/hosts.times" | median) s, CPU median $(cpu < "$work/hosts.times" | median) s (3 runs; target <= 2 s)"
for i in 1 2 3; do timeit "$bin" --dir "$central" verify --all; done > "$work/verify.times"
m=$(wall < "$work/verify.times" | median)
echo "verify --all: wall median $m s = $(echo "$total / $m / 1000000" | bc) MB/s (3 runs; target >= 300 MB/s)"
for i in 1 2 3; do timeit "$bin" --dir "$central" search --fixed-strings no-such-fixed-string; done > "$work/search.times"
m=$(wall < "$work/search.times" | median)
echo "search --fixed-strings: wall median $m s = $(echo "$total / $m / 1000000" | bc) MB/s (3 runs; target >= 1000 MB/s)"
for i in 1 2 3; do timeit grep -rF no-such-fixed-string "$central"; done > "$work/grep.times"
m=$(wall < "$work/grep.times" | median)
echo "grep -rF, same tree:    wall median $m s = $(echo "$total / $m / 1000000" | bc) MB/s (3 runs)"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "work directory: $work (remove when done)"
