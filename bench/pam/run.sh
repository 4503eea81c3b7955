#!/bin/sh
# open_session + close_session latency of pam_sessrec through real Linux-PAM, with files-only
# NSS, with and without fsync. See README.md. Needs root; leaves nothing behind.
#   bench/pam/run.sh [RUNS]          (default 1000)
#   RECORD_TMPFS=1 bench/pam/run.sh  record_dir on a tmpfs: the module without disk waits
set -eu
RUNS=${1:-1000}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}

(cd "$repo" && CARGO_TARGET_DIR=$target cargo build -q --release -p pam_sessrec)
(cd "$here/driver" && CARGO_TARGET_DIR=$target/bench-pam-driver cargo build -q --release)
module=$target/release/libpam_sessrec.so
driver=$target/bench-pam-driver/release/pam-bench-driver

tag=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
work=/var/lib/srt-bench-$tag
user=srt-bench-$tag
svc_sync=srt-bench-sync-$tag
svc_nosync=srt-bench-nosync-$tag
svc_base=srt-bench-base-$tag
cleanup() {
    rm -f "/etc/pam.d/$svc_sync" "/etc/pam.d/$svc_nosync" "/etc/pam.d/$svc_base"
    userdel "$user" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

mkdir -m 0755 "$work"
mkdir -m 0700 "$work/records"
# The launch check compares paths only; the recorder itself is not run here.
printf '#!/bin/sh\nexit 0\n' > "$work/sessrec-shell"
chmod 0755 "$work/sessrec-shell"
useradd -M -d /nonexistent -s "$work/sessrec-shell" "$user"

# A user certificate from a trusted CA, as sshd would report it in SSH_AUTH_INFO_0.
ssh-keygen -q -t ed25519 -N '' -C ca -f "$work/ca"
ssh-keygen -q -t ed25519 -N '' -C user -f "$work/user"
ssh-keygen -q -s "$work/ca" -I "bench@example.com" -n "$user" -z 1 "$work/user.pub"
ca_fp=$(ssh-keygen -lf "$work/ca.pub" | awk '{print $2}')
awk '{print "publickey " $1 " " $2}' "$work/user-cert.pub" > "$work/auth_info"

cat > "$work/sessrec.toml" <<TOML
record_dir = "$work/records"
min_free_mb = 1
[identity]
trusted_user_cas = ["$ca_fp"]
TOML
chmod 0644 "$work/sessrec.toml"

for svc in "$svc_sync" "$svc_nosync"; do
    extra=""
    [ "$svc" = "$svc_nosync" ] && extra=nofsync
    printf 'account required pam_permit.so\nsession required %s config=%s recorder=%s services=%s %s\n' \
        "$module" "$work/sessrec.toml" "$work/sessrec-shell" "$svc" "$extra" > "/etc/pam.d/$svc"
done
# BASE_MODULE=path/to/older/pam_sessrec.so adds the variant fsync-base: that build, with fsync,
# in the same interleaved rounds.
variants="fsync nofsync floor floor-prealloc floor-dirsync"
if [ -n "${BASE_MODULE:-}" ]; then
    printf 'account required pam_permit.so\nsession required %s config=%s recorder=%s services=%s\n' \
        "$BASE_MODULE" "$work/sessrec.toml" "$work/sessrec-shell" "$svc_base" > "/etc/pam.d/$svc_base"
    variants="fsync fsync-base nofsync floor floor-prealloc floor-dirsync"
fi

# A private mount namespace: files-only NSS (the host's nsswitch.conf is untouched) and a tmpfs
# on /run/sessrec, as /run is on a systemd host (and other runs' grants stay out of the way).
sed -E 's/^(passwd|group|shadow|gshadow):.*/\1: files/' /etc/nsswitch.conf > "$work/nsswitch.conf"
mkdir -p -m 0700 /run/sessrec
record_mount=":"
if [ "${RECORD_TMPFS:-0}" = 1 ]; then
    record_mount="mount -t tmpfs -o mode=0700 srt-bench-records $work/records"
fi
in_ns() {
    unshare -m --propagation private sh -c \
        'mount --bind "$0" /etc/nsswitch.conf && mount -t tmpfs -o mode=0700 srt-bench /run/sessrec && $1 && shift && exec nice -n -20 "$@"' \
        "$work/nsswitch.conf" "$record_mount" "$@"
}

# Interleaved rounds: each variant runs RUNS/ROUNDS times per round, in turn, so the load of
# other processes hits all alike. "floor", "floor-prealloc" and "floor-dirsync" are the disk
# alone (see driver).
ROUNDS=${ROUNDS:-5}
per=$(( (RUNS + ROUNDS - 1) / ROUNDS ))
steal() { awk '/^cpu /{print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
echo "pam_sessrec open+close latency, $RUNS runs each in $ROUNDS interleaved rounds ($(uname -r), $(nproc) CPUs, record_dir on $( [ "${RECORD_TMPFS:-0}" = 1 ] && echo tmpfs || findmnt -no FSTYPE -T "$work"), load average at start $(cut -d' ' -f1-3 /proc/loadavg))"
set -- $(steal); steal0=$1 total0=$2
for svc in "$svc_sync" "$svc_nosync" ${BASE_MODULE:+"$svc_base"}; do
    in_ns "$driver" "$svc" "$user" 50 "$work/auth_info" > /dev/null   # warm-up
done
round=1
while [ $round -le "$ROUNDS" ]; do
    for variant in $variants; do
        SAMPLES=$work/samples-$variant
        export SAMPLES
        case $variant in
            fsync) in_ns "$driver" "$svc_sync" "$user" "$per" "$work/auth_info" > /dev/null ;;
            fsync-base) in_ns "$driver" "$svc_base" "$user" "$per" "$work/auth_info" > /dev/null ;;
            nofsync) in_ns "$driver" "$svc_nosync" "$user" "$per" "$work/auth_info" > /dev/null ;;
            floor) in_ns "$driver" --floor "$work/records" "$per" > /dev/null ;;
            floor-prealloc) in_ns "$driver" --floor "$work/records" "$per" prealloc > /dev/null ;;
            floor-dirsync) in_ns "$driver" --floor "$work/records" "$per" dirsync > /dev/null ;;
        esac
    done
    round=$((round + 1))
done
unset SAMPLES
set -- $(steal)
echo "load average at end $(cut -d' ' -f1-3 /proc/loadavg), steal $(awk -v s="$(( $1 - steal0 ))" -v t="$(( $2 - total0 ))" 'BEGIN { printf "%.1f%%", t ? 100 * s / t : 0 }') of CPU time during the runs"
for variant in $variants; do
    printf '%-14s ' "$variant"
    for col in 1 2 3; do
        label=$(echo "wall open-alone cpu" | cut -d' ' -f$col)
        cut -d' ' -f$col "$work/samples-$variant" | sort -n | awk -v label="$label" '
            { v[NR] = $1; sum += $1 }
            END {
                printf "%s: p50=%dus p90=%dus p99=%dus max=%dus | ", label,
                    v[int((NR - 1) * 0.50 + 1.5)], v[int((NR - 1) * 0.90 + 1.5)],
                    v[int((NR - 1) * 0.99 + 1.5)], v[NR]
            }'
    done
    echo "runs=$(wc -l < "$work/samples-$variant")"
done

# End to end with pamtester: includes starting a process and loading libpam for each run.
if command -v pamtester > /dev/null; then
    for svc in "$svc_sync" "$svc_nosync"; do
        label=fsync; [ "$svc" = "$svc_nosync" ] && label=nofsync
        printf '%-8s pamtester:  ' "$label"
        in_ns sh -c '
            svc=$1 user=$2 runs=$3
            i=0
            while [ $i -lt "$runs" ]; do
                s=$(date +%s%N)
                pamtester "$svc" "$user" open_session close_session > /dev/null 2>&1 || { echo "pamtester failed" >&2; exit 1; }
                e=$(date +%s%N)
                echo $(( (e - s) / 1000 ))
                i=$((i + 1))
            done' sh "$svc" "$user" "$RUNS" | sort -n | awk '
            { v[NR] = $1; sum += $1 }
            END {
                printf "runs=%d p50=%dus p90=%dus p99=%dus max=%dus mean=%dus\n", NR,
                    v[int((NR - 1) * 0.50 + 1.5)], v[int((NR - 1) * 0.90 + 1.5)],
                    v[int((NR - 1) * 0.99 + 1.5)], v[NR], sum / NR
            }'
    done
fi
if [ "${RECORD_TMPFS:-0}" != 1 ]; then
    echo "session directories written: $(find "$work/records" -name session.jsonl | wc -l)"
fi
