#!/usr/bin/env bash
# Import throughput and peak memory of sudo-iolog-import on a generated backlog, compared with
# `sudoreplay -n -m 0` reading the same logs. Run as root from the repository root:
#   bash bench/sudo-import/run_bench.sh [SESSIONS] [TOTAL_MB] [CPU]
# Writes results to stdout; leaves nothing behind (the backlog is kept in $BENCH_DIR if set).
set -euo pipefail
sessions=${1:-1000}
total_mb=${2:-1000}
cpu=${3:-1}
here=$(cd "$(dirname "$0")" && pwd)
work=${BENCH_DIR:-/var/tmp/srt-bench-$sessions-$total_mb}
target=${CARGO_TARGET_DIR:-target}

cargo build --release -q -p sudo-iolog-import
bin="$target/release/sudo-iolog-import"

if [ ! -f "$work/io/seq" ]; then
    echo "generating $sessions sessions, $total_mb MB of stream data in $work/io"
    python3 "$here/gen_backlog.py" "$work/io" "$sessions" "$total_mb"
fi
rm -rf "$work/records" "$work/state" "$work/sessrec.toml"
cat > "$work/sessrec.toml" <<TOML
record_dir = "$work/records"
[sudo]
iolog_dirs = ["$work/io"]
state_file = "$work/state/sudo-import.state"
TOML
chmod 0644 "$work/sessrec.toml"

bytes=$(find "$work/io" -name ttyout -o -name ttyin | xargs zcat | wc -c)
echo "decompressed stream bytes: $bytes ($(du -sh "$work/io" | cut -f1) on disk)"
# Warm the page cache.
find "$work/io" -type f -print0 | xargs -0 cat > /dev/null

measure() { # label, command...
    local label=$1; shift
    local t0 t1 usage
    t0=$(date +%s.%N)
    usage=$( { /usr/bin/time -f '%M %U %S' taskset -c "$cpu" "$@" > /dev/null; } 2>&1 | tail -1)
    t1=$(date +%s.%N)
    python3 - "$label" "$t0" "$t1" "$bytes" $usage <<'PY'
import sys
label, t0, t1, b = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
rss, user, system = int(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
wall, cpu = t1 - t0, user + system
print(f"{label}: wall {wall:.2f} s ({b / wall / 1e6:.1f} MB/s), CPU {cpu:.2f} s "
      f"({b / cpu / 1e6:.1f} MB/s per CPU-second), peak RSS {rss / 1024:.1f} MiB")
PY
}

measure "sudo-iolog-import --once" "$bin" --once --json --config "$work/sessrec.toml"
echo "records written: $(du -sh "$work/records" | cut -f1)"
ids=$(cd "$work/io" && find . -name timing | sed 's|^\./||; s|/timing$||; s|/||g' | sort)
measure "sudoreplay -n -m 0 (one process per session)" \
    bash -c "for id in $(echo $ids); do sudoreplay -d '$work/io' -n -m 0 \$id; done"
rm -rf "$work/records" "$work/state"
