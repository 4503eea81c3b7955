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
cargo build -q --release -p sessrec --bin sessrec --example gen_records
bin=$CARGO_TARGET_DIR/release/sessrec
gen=$CARGO_TARGET_DIR/release/examples/gen_records

median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }
iqr() { sort -n | awk '{a[NR]=$1} END {printf "%.3f", a[int(NR*3/4+0.5)]-a[int(NR/4+0.5)]}'; }
timeit() { # seconds of one run of "$@", output discarded
    s=$(date +%s.%N); "$@" >/dev/null || true; e=$(date +%s.%N); echo "$e - $s" | bc -l
}

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "cores: $(nproc)"

if [ ! -d "$work/list" ]; then
    echo "generating 10,000 sessions ..."
    "$gen" "$work/list" 10000 2000
fi
"$bin" --dir "$work/list" list >/dev/null   # warm the cache
for i in 1 2 3 4 5 6 7; do timeit "$bin" --dir "$work/list" list; done > "$work/list.times"
echo "list, 10,000 sessions: median $(median < "$work/list.times") s, IQR $(iqr < "$work/list.times") s (7 runs)"
for i in 1 2 3 4 5; do timeit "$bin" --dir "$work/list" list --since 1d; done > "$work/list-since.times"
echo "list --since 1d: median $(median < "$work/list-since.times") s"

if [ ! -d "$work/search" ]; then
    echo "generating ~1 GB of records ..."
    "$gen" "$work/search" 50 12000000
fi
bytes=$(find "$work/search" -name '*.jsonl' -printf '%s\n' | awk '{s+=$1} END {print s}')
cat $(find "$work/search" -name '*.jsonl') > /dev/null   # warm the cache
for pattern in "no-such-fixed-string" "(foxtrot|juliet) zulu|[0-9]{6}"; do
    for i in 1 2 3 4 5; do timeit taskset -c 0 "$bin" --dir "$work/search" search "$pattern"; done > "$work/search.times"
    m=$(median < "$work/search.times")
    echo "search '$pattern' over $((bytes / 1000000)) MB: median $m s = $(echo "$bytes / $m / 1000000" | bc) MB/s, IQR $(iqr < "$work/search.times") s (5 runs, one core)"
done
echo "work directory: $work (remove when done)"
