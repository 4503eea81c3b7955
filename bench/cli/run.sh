#!/bin/sh
# sessrec CLI benchmarks (run on demand; see README.md):
#   1. `sessrec list` over 10,000 generated sessions, warm cache;
#   2. `sessrec search` over about 1 GB of records, one core, warm cache.
# Usage: bench/cli/run.sh [WORKDIR]   (default: a fresh directory under /var/tmp; needs ~1.3 GB)
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$(mktemp -d /var/tmp/sessrec-bench-cli.XXXXXX)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$here/target}
cd "$here"
# Two builds: the generator's test-only helpers must not change the measured binary.
cargo build -q --release -p sessrec --bin sessrec
cargo build -q --release -p sessrec --example gen_records
bin=$CARGO_TARGET_DIR/release/sessrec
gen=$CARGO_TARGET_DIR/release/examples/gen_records

median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }
iqr() { sort -n | awk '{a[NR]=$1} END {printf "%.3f", a[int(NR*3/4+0.5)]-a[int(NR/4+0.5)]}'; }
timeit() { # "wall cpu" seconds of one run of "$@" (cpu = user + sys), output discarded
    /usr/bin/time -f '%e %U %S' -o "$work/time.out" "$@" >/dev/null || true
    awk '{printf "%.3f %.3f\n", $1, $2 + $3}' "$work/time.out"
}
wall() { cut -d' ' -f1; }
cpu() { cut -d' ' -f2; }

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "cores: $(nproc); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ ! -d "$work/list" ]; then
    echo "generating 10,000 sessions ..."
    "$gen" "$work/list" 10000 2000
fi
"$bin" --dir "$work/list" list >/dev/null   # warm the cache
for i in 1 2 3 4 5 6 7; do timeit "$bin" --dir "$work/list" list; done > "$work/list.times"
echo "list, 10,000 sessions: wall median $(wall < "$work/list.times" | median) s, IQR $(wall < "$work/list.times" | iqr) s; CPU median $(cpu < "$work/list.times" | median) s (7 runs)"
for i in 1 2 3 4 5; do timeit "$bin" --dir "$work/list" list --since 1d; done > "$work/list-since.times"
echo "list --since 1d: wall median $(wall < "$work/list-since.times" | median) s, CPU $(cpu < "$work/list-since.times" | median) s"

if [ ! -d "$work/search" ]; then
    echo "generating ~1 GB of records ..."
    "$gen" "$work/search" 50 12000000
fi
bytes=$(find "$work/search" -name '*.jsonl' -printf '%s\n' | awk '{s+=$1} END {print s}')
cat $(find "$work/search" -name '*.jsonl') > /dev/null   # warm the cache
for pattern in "no-such-fixed-string" "(foxtrot|juliet) zulu|[0-9]{6}"; do
    for i in 1 2 3 4 5; do timeit taskset -c 0 "$bin" --dir "$work/search" search "$pattern"; done > "$work/search.times"
    m=$(wall < "$work/search.times" | median)
    c=$(cpu < "$work/search.times" | median)
    echo "search '$pattern' over $((bytes / 1000000)) MB (5 runs, one core): wall median $m s = $(echo "$bytes / $m / 1000000" | bc) MB/s, IQR $(wall < "$work/search.times" | iqr) s; CPU median $c s = $(echo "$bytes / $c / 1000000" | bc) MB/s"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "work directory: $work (remove when done)"
