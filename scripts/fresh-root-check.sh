#!/usr/bin/env bash
# On demand, never in CI: does the README hold on a truly fresh Debian 12?
#
# Builds a new Debian 12 root with debootstrap (minbase plus what a small server image has:
# adduser, ca-certificates, curl, git, iproute2, less, netbase, procps; no compiler, no sshd,
# no systemd), copies this machine's Rust toolchain into it, clones the committed tree (HEAD,
# not the working tree) and runs the README's two commands exactly as written, inside the root
# with /proc, /sys and a /dev of its own mounted, and no standard input. Reports each command's exit
# status and time; exits non-zero when either failed. Run as root.
#
#   scripts/fresh-root-check.sh [--keep] [--mirror URL] [DIR]
#
# DIR defaults to a new /var/tmp/sessrec-fresh.XXXXXX; --keep leaves it (and the logs in it)
# for a look afterwards, otherwise it is removed. Each command's output goes to
# DIR/root/readme-command-N.log and is summarised at the end.
set -euo pipefail

keep=false
mirror=http://deb.debian.org/debian
root=
while [ $# -gt 0 ]; do
    case "$1" in
        --keep) keep=true ;;
        --mirror) mirror=$2; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        -*) echo "fresh-root-check: unknown option $1" >&2; exit 2 ;;
        *) root=$1 ;;
    esac
    shift
done

die() { printf 'fresh-root-check: %s\n' "$*" >&2; exit 1; }
say() { printf '\n==> [%ds] %s\n' "$SECONDS" "$*"; }

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot and mounts)"
repo=$(cd "$(dirname "$0")/.." && pwd)
git -C "$repo" rev-parse HEAD >/dev/null 2>&1 || die "$repo is not a git checkout"
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
cargo_home=${CARGO_HOME:-$HOME/.cargo}
[ -x "$cargo_home/bin/cargo" ] && [ -d "$rustup_home/toolchains" ] \
    || die "no rustup toolchain under $rustup_home and $cargo_home to copy in"

# The README's two commands: the first two command lines of its first ```sh block.
mapfile -t commands < <(awk '/^```sh$/ { inside = 1; next } inside && /^```/ { exit }
    inside && NF { sub(/[[:space:]]+#.*$/, ""); print }' "$repo/README.md" | head -n 2)
[ "${#commands[@]}" -eq 2 ] || die "could not find the README's two commands"

if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap </dev/null \
        || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap </dev/null; }
fi

[ -n "$root" ] || root=$(mktemp -d /var/tmp/sessrec-fresh.XXXXXX)
mkdir -p "$root"
[ -z "$(ls -A "$root")" ] || die "$root is not empty"

mounted=()
cleanup() {
    # Whatever still runs inside the root (the demo sshd, rsyslogd, a test left behind).
    for p in /proc/[0-9]*; do
        if [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ]; then
            kill -9 "${p#/proc/}" 2>/dev/null || true
        fi
    done
    sleep 0.5
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount -R -l "${mounted[$i]}" 2>/dev/null || true
    done
    if ! $keep; then
        rm -rf --one-file-system "$root"
    else
        echo "fresh-root-check: root kept at $root"
    fi
}
trap cleanup EXIT

say "debootstrap bookworm into $root"
debootstrap --variant=minbase \
    --include=adduser,ca-certificates,curl,git,iproute2,less,netbase,procps \
    bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 \
    || { tail -n 30 "$root.debootstrap.log"; die "debootstrap failed"; }
rm -f "$root.debootstrap.log"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# The host's own local CA certificates (e.g. an HTTPS proxy's), so the root reaches crates.io
# and the other registries the same way the host does.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in the root"
fi
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb http://security.debian.org/debian-security bookworm-security main\n' \
    "$mirror" "$mirror" >"$root/etc/apt/sources.list"

say "copying the Rust toolchain (no crate caches)"
mkdir -p "$root/root/.cargo"
cp -a "$rustup_home" "$root/root/.rustup"
cp -a "$cargo_home/bin" "$root/root/.cargo/bin"
rm -rf "$root/root/.rustup/downloads" "$root/root/.rustup/tmp"

say "cloning the committed tree ($(git -C "$repo" rev-parse --short HEAD))"
git clone -q --no-local "$repo" "$root/root/sessrec"

mount -t proc proc "$root/proc" && mounted+=("$root/proc")
mount -t sysfs sys "$root/sys" && mounted+=("$root/sys")
# A /dev of the root's own, as a fresh container or VM has: the basic nodes, its own devpts
# instance and /dev/shm, and nothing else (no /dev/net/tun, no /dev/log of the host's syslog
# daemon).
mount -t tmpfs -o mode=0755,nosuid dev "$root/dev" && mounted+=("$root/dev")
for node in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9" "tty 5 0"; do
    set -- $node
    mknod -m 0666 "$root/dev/$1" c "$2" "$3"
done
mkdir -p "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$root/dev/pts"
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$root/dev/shm"
ln -s pts/ptmx "$root/dev/ptmx"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"


in_root() {
    chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
        PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        bash -c "cd /root/sessrec && $1" </dev/null
}

results=()
failed=0
for n in 1 2; do
    cmd=${commands[$((n - 1))]}
    log="$root/root/readme-command-$n.log"
    say "README command $n: $cmd"
    start=$SECONDS
    set +e
    in_root "$cmd" >"$log" 2>&1
    status=$?
    set -e
    took=$((SECONDS - start))
    tail -n 5 "$log"
    results+=("command $n ($cmd): exit $status in ${took}s")
    [ "$status" -eq 0 ] || failed=1
done
# The demo sshd the first command started.
in_root "bash scripts/quickstart.sh --stop" >/dev/null 2>&1 || true

say "results"
printf '  %s\n' "${results[@]}"
grep -h '^summary:' "$root/root/readme-command-2.log" | sed 's/^/  /' || true
if [ "$failed" -ne 0 ]; then
    keep=true
    echo "fresh-root-check: a command failed; logs kept in $root/root/readme-command-*.log"
fi
exit "$failed"
