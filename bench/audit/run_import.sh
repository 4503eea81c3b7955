#!/usr/bin/env bash
# Importer throughput (MB/s of audit log on one core) and peak RSS on a generated log.
# Run as root from the repository root:  bash bench/audit/run_import.sh [MEGABYTES] [CPU]
set -euo pipefail
mb=${1:-200}
cpu=${2:-1}
here=$(cd "$(dirname "$0")" && pwd)
work=${BENCH_DIR:-/var/tmp/srt-bench-audit-$mb}
target=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p audit-import
bin="$target/release/sessrec-audit-import"
rm -rf "$work"
python3 "$here/gen_log.py" "$work" "$mb"
cat > "$work/sessrec.toml" <<TOML
record_dir = "$work/records"
[audit]
log_file = "$work/audit.log"
state_file = "$work/state/audit-import.state"
TOML
chmod 0644 "$work/sessrec.toml"
bytes=$(stat -c %s "$work/audit.log")
cat "$work/audit.log" > /dev/null   # warm the page cache
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
t0=$(date +%s.%N)
usage=$( { /usr/bin/time -f '%M %U %S' taskset -c "$cpu" "$bin" --once --json --config "$work/sessrec.toml" > "$work/summary.json"; } 2>&1 | tail -1)
t1=$(date +%s.%N)
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$t0" "$t1" "$bytes" $usage "$work/summary.json" <<'PY'
import json, sys
t0, t1, b = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
rss, user, system = int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
s = json.load(open(sys.argv[7]))
wall, cpu = t1 - t0, user + system
print(f"sessrec-audit-import --once: {b/1e6:.0f} MB, {s['events']} events "
      f"({s['execs_written']} execs + {s['connects_written']} connects written, {s['unattributed']} of another session)")
print(f"  wall {wall:.2f} s ({b / wall / 1e6:.1f} MB/s), CPU {cpu:.2f} s ({b / cpu / 1e6:.1f} MB/s per CPU-second), peak RSS {rss / 1024:.1f} MiB")
PY
du -sh "$work/records" | sed 's/^/records written: /'
rm -rf "$work"
