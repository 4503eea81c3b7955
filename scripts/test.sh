#!/usr/bin/env bash
# The whole test suite, as CI runs it (README command 2). Run as root on Debian 12 with Rust
# installed: installs every system package the tests use, then checks formatting and lints,
# builds, checks how the PAM module links, and runs every test with the end-to-end tests
# required (a missing prerequisite fails instead of skipping).
set -euo pipefail

cd "$(dirname "$0")/.."

# Every Debian package the tests use (the test files say which part needs what). `pkg:cmd`:
# also satisfied when `cmd` is already on the PATH from elsewhere (e.g. npm from another
# Node.js distribution, which Debian's npm would conflict with).
PACKAGES=(
    openssh-server openssh-client sudo pamtester libpam0g-dev rsyslog asciinema rsync tlog
    build-essential pkg-config e2fsprogs procps psmisc iproute2 tmux man-db groff-base vim-tiny
    adduser passwd ca-certificates openssl binutils util-linux
    rsyslog-relp        # bastion → central over RELP (with TLS, from librelp): tests/tests/shipper_rsyslog.rs
    auditd              # exec and connect audit: a private auditd started by the tests
    rpm                 # packaging: rpmbuild and rpm -qp
    tcpdump python3     # forwarded connections: tcpdump -r reads the PCAP, python3 -m http.server as the target
    chromium:chromium   # sessrec export --format html, checked in headless Chromium
    chromium-driver python3-selenium  # ... and driven there (clicks on its jump marks)
    npm:npm             # scripts/fetch-player.sh (the pinned asciinema-player)
)

step() { printf '\n==> [%ds] %s\n' "$SECONDS" "$*"; }
die() { printf 'test.sh: %b\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root: the end-to-end tests create users, start sshd and install a setuid recorder"

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (rustup or Debian's cargo) first"

step "system packages"
missing=()
for entry in "${PACKAGES[@]}"; do
    p=${entry%%:*}
    cmd=${entry#*:}
    [ "$cmd" != "$entry" ] && command -v "$cmd" >/dev/null 2>&1 && continue
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    echo "all installed"
fi
# sshd's privilege separation directory (absent when sshd never ran, e.g. without systemd).
install -d -m 0755 /run/sshd

step "asciinema-player for HTML exports (vendor-player/, pinned)"
[ -f vendor-player/asciinema-player.min.js ] || sh scripts/fetch-player.sh vendor-player

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo build --workspace --all-targets"
cargo build --workspace --all-targets

target_dir="${CARGO_TARGET_DIR:-target}"
module="$target_dir/debug/libpam_sessrec.so"
step "PAM module linkage: $module"
[ -f "$module" ] || die "$module was not built"
# Linked against libpam.so dynamically: with only libpam.a around, the module would carry
# its own copy of libpam and silently not work inside sshd.
ldd "$module" | grep -E '^\s*libpam\.so\.0 => /' \
    || die "$module does not link libpam.so.0 dynamically:\n$(ldd "$module")"
# Exports only the PAM entry points.
exports=$(nm -D --defined-only "$module" | awk '$2 ~ /^[TtWwDdBbRrVvi]$/ { print $3 }' | sort)
[ -n "$exports" ] || die "$module exports nothing"
unexpected=$(printf '%s\n' "$exports" | grep -v '^pam_sm_' || true)
[ -z "$unexpected" ] || die "$module exports more than pam_sm_*: $(echo $unexpected)"
echo "links libpam.so.0; exports: $(echo $exports)"

step "fuzz: sudo I/O log readers, 60 s (cargo-fuzz, nightly toolchain)"
# The parsers of hostile sudo logs run under libFuzzer from the checked-in corpus; a crash
# fails the run and leaves its input in sudo-iolog-import/fuzz/artifacts/.
cargo +nightly --version >/dev/null 2>&1 || die "the nightly toolchain is needed for fuzzing (rustup toolchain install nightly)"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi
bash sudo-iolog-import/fuzz/ci.sh

step "SESSREC_E2E=required cargo test --workspace"
log=$(mktemp /tmp/sessrec-test-log.XXXXXX)
trap 'rm -f "$log"' EXIT
set +e
SESSREC_E2E=required cargo test --workspace --no-fail-fast </dev/null 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
echo "cargo test exited with $status after ${SECONDS}s in total"
# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ {
        for (i = 1; i <= NF; i++) {
            if ($(i) ~ /^passed/) p += $(i - 1)
            if ($(i) ~ /^failed/) f += $(i - 1)
            if ($(i) ~ /^ignored/) s += $(i - 1)
        }
     }
     END { printf "\nsummary: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
