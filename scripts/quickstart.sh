#!/usr/bin/env bash
# sessrec quickstart (README command 1). Run as root on Debian 12 with Rust installed.
#
# Installs the build and run dependencies, builds sessrec (release), installs the setuid
# recorder and the PAM module into a private prefix, and starts a private, recorded sshd on
# 127.0.0.1:2222 with a demo user whose login shell is the recorder. The demo user may run a
# few commands with sudo, which logs their output (log_output), and sudo-iolog-import files
# those logs into the login's record as they are written. The host's own sshd, its
# /etc/ssh/sshd_config and /etc/pam.d/sshd are not touched. Running it again updates and
# restarts the demo; `--stop` removes it again (the records are kept).
#
#   scripts/quickstart.sh          set up (or refresh) and start the demo
#   scripts/quickstart.sh --stop   stop the demo sshd, remove the demo user and installed files
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PORT=2222
PREFIX=/opt/sessrec-demo                # bin/sessrec-shell (4755 root), lib/pam_sessrec.so
ETC=/etc/sessrec-demo                   # sessrec.toml, sshd_config, host and demo keys
RECORDS=/var/log/sessrec-demo           # the record tree (root 0700)
SERVICE=sshd-sessrec-demo               # sshd's program name = its PAM service name
SSHD_LINK=/usr/local/sbin/$SERVICE      # symlink to /usr/sbin/sshd
PAM_FILE=/etc/pam.d/$SERVICE
PIDFILE=/run/$SERVICE.pid
SSHD_LOG=/var/log/$SERVICE.log
DEMO_USER=srt-demo
DEMO_KEY=$ETC/demo_ed25519
SUDO_IO=/var/log/sessrec-demo-sudo-io   # sudo's I/O logs of the demo user (root 0700)
SUDOERS=/etc/sudoers.d/sessrec-demo     # the demo user's sudo rules (no dot: sudo reads it)
IMPORT_PIDFILE=/run/sessrec-demo-import.pid
IMPORT_LOG=/var/log/sessrec-demo-import.log
PACKAGES=(openssh-server openssh-client build-essential pkg-config libpam0g-dev adduser passwd ca-certificates sudo)

say() { printf '==> %s\n' "$*"; }
die() { printf 'quickstart: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (it installs a setuid program, a PAM service and a user)"

stop_sshd() {
    if [ -f "$PIDFILE" ]; then
        local pid
        pid=$(cat "$PIDFILE")
        # Only stop the process if it really is the demo sshd.
        if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = /usr/sbin/sshd ] \
            && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$ETC/sshd_config"; then
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -f "$PIDFILE"
    fi
}

stop_importer() {
    if [ -f "$IMPORT_PIDFILE" ]; then
        local pid
        pid=$(cat "$IMPORT_PIDFILE")
        # Only stop the process if it really is the demo's importer.
        if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$PREFIX/bin/sudo-iolog-import" ]; then
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -f "$IMPORT_PIDFILE"
    fi
}

if [ "${1:-}" = "--stop" ]; then
    say "stopping the demo sshd and the sudo log importer"
    stop_sshd
    stop_importer
    rm -f "$SUDOERS"
    if id "$DEMO_USER" >/dev/null 2>&1; then
        say "removing user $DEMO_USER"
        # End the demo user's own processes (by uid) so userdel can remove the account.
        uid=$(id -u "$DEMO_USER")
        for dir in /proc/[0-9]*; do
            if [ "$(stat -c %u "$dir" 2>/dev/null)" = "$uid" ]; then
                kill "${dir#/proc/}" 2>/dev/null || true
            fi
        done
        sleep 0.5
        userdel -r "$DEMO_USER" 2>/dev/null || userdel -r -f "$DEMO_USER" 2>/dev/null || true
    fi
    rm -f "$SSHD_LINK" "$PAM_FILE"
    rm -rf "$PREFIX" "$ETC"
    say "stopped; records kept in $RECORDS (remove with: rm -r $RECORDS $SUDO_IO)"
    exit 0
elif [ $# -gt 0 ]; then
    die "unknown argument '$1' (usage: $0 [--stop])"
fi

# --- 1. packages -------------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- 2. build ------------------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust first (rustup or apt-get install cargo)"
say "building (release)"
(cd "$REPO" && cargo build --release -p sessrec-shell -p pam_sessrec -p sudo-iolog-import)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
case "$TARGET" in /*) ;; *) TARGET=$REPO/$TARGET ;; esac
have_cli=no
if (cd "$REPO" && cargo build --release -p sessrec); then
    have_cli=yes
else
    echo "quickstart: the sessrec CLI did not build; continuing without it" >&2
fi

# --- 3. install ----------------------------------------------------------------------------
if ! id sessrec >/dev/null 2>&1; then
    say "creating the sessrec system user"
    adduser --system --group --no-create-home sessrec
fi
install -d -m 0755 -o root -g root "$PREFIX" "$PREFIX/bin" "$PREFIX/lib"
if findmnt -n -o OPTIONS --target "$PREFIX" | tr ',' '\n' | grep -qx nosuid; then
    die "$PREFIX is on a nosuid mount; the recorder must be setuid root"
fi
say "installing into $PREFIX"
install -m 4755 -o root -g root "$TARGET/release/sessrec-shell" "$PREFIX/bin/sessrec-shell"
install -m 0644 -o root -g root "$TARGET/release/libpam_sessrec.so" "$PREFIX/lib/pam_sessrec.so"
install -m 0755 -o root -g root "$TARGET/release/sudo-iolog-import" "$PREFIX/bin/sudo-iolog-import"
if [ "$have_cli" = yes ]; then
    install -m 0755 -o root -g root "$TARGET/release/sessrec" "$PREFIX/bin/sessrec"
fi

install -d -m 0755 -o root -g root "$ETC"
install -d -m 0700 -o root -g root "$RECORDS"
install -d -m 0700 -o root -g root "$SUDO_IO"
cat >"$ETC/sessrec.toml" <<TOML
# sessrec quickstart configuration (see man sessrec.toml.5).
record_dir = "$RECORDS"
on_error = "deny"
min_free_mb = 64

[policy]
users = ["*"]
services = ["$SERVICE"]
launch = "login-shell"

[recorder]
shell = "/bin/bash"

[sudo]
iolog_dirs = ["$SUDO_IO"]
state_file = "$ETC/sudo-import.state"
settle_minutes = 1
TOML
chmod 0644 "$ETC/sessrec.toml"

# --- 4. the private sshd -------------------------------------------------------------------
[ -f "$ETC/ssh_host_ed25519_key" ] \
    || ssh-keygen -q -t ed25519 -N '' -C "$SERVICE host key" -f "$ETC/ssh_host_ed25519_key"
cat >"$ETC/sshd_config" <<SSHD
# Private sshd for the sessrec quickstart: 127.0.0.1:$PORT, keys only, demo user only.
ListenAddress 127.0.0.1:$PORT
HostKey $ETC/ssh_host_ed25519_key
PidFile $PIDFILE
UsePAM yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthenticationMethods publickey
PermitRootLogin no
AllowUsers $DEMO_USER
PrintMotd no
# What DESIGN requires for recorded users: nothing that bypasses the recorder.
DisableForwarding yes
PermitTunnel no
PermitUserRC no
PermitUserEnvironment no
PermitListen none
PermitOpen none
AcceptEnv LANG LC_* SESSREC_TICKET
Subsystem sftp /usr/lib/openssh/sftp-server
SSHD
chmod 0600 "$ETC/sshd_config"
cat >"$PAM_FILE" <<PAM
# PAM service of the sessrec quickstart sshd ($SSHD_LINK). Keys only: auth is never used.
auth     required pam_deny.so
account  required pam_unix.so
password required pam_deny.so
session  required pam_unix.so
# A login uid and kernel audit session for the login, recorded by pam_sessrec (optional:
# a container without CAP_AUDIT_CONTROL cannot set them).
session  optional pam_loginuid.so
session  required $PREFIX/lib/pam_sessrec.so config=$ETC/sessrec.toml services=$SERVICE recorder=$PREFIX/bin/sessrec-shell
PAM
chmod 0644 "$PAM_FILE"
ln -sfn /usr/sbin/sshd "$SSHD_LINK"
install -d -m 0755 /run/sshd
"$SSHD_LINK" -t -f "$ETC/sshd_config" || die "sshd -t rejected $ETC/sshd_config"

# --- 5. the demo user ----------------------------------------------------------------------
if id "$DEMO_USER" >/dev/null 2>&1; then
    usermod -s "$PREFIX/bin/sessrec-shell" "$DEMO_USER"
else
    say "creating user $DEMO_USER (login shell: the recorder)"
    useradd -m -s "$PREFIX/bin/sessrec-shell" -p '*' "$DEMO_USER"
fi
[ -f "$DEMO_KEY" ] || ssh-keygen -q -t ed25519 -N '' -C "$DEMO_USER" -f "$DEMO_KEY"
home=$(getent passwd "$DEMO_USER" | cut -d: -f6)
install -d -m 0700 -o "$DEMO_USER" -g "$DEMO_USER" "$home/.ssh"
install -m 0600 -o "$DEMO_USER" -g "$DEMO_USER" "$DEMO_KEY.pub" "$home/.ssh/authorized_keys"

# --- 6. sudo, logged by sudo and filed into the login's record ------------------------------
# A few harmless commands as root without a password (the demo user has none), with their
# output logged by sudo; SESSREC_SESSION is kept so the importer can cross-check its match.
cat >"$SUDOERS.check" <<SUDO
# sessrec quickstart: the demo user's sudo, logged (see scripts/quickstart.sh).
Defaults:$DEMO_USER log_output, use_pty, iolog_dir=$SUDO_IO
Defaults:$DEMO_USER env_keep += "SESSREC_SESSION"
$DEMO_USER ALL=(root) NOPASSWD: /usr/bin/id, /usr/bin/ls, /usr/bin/uptime
SUDO
chmod 0440 "$SUDOERS.check"
visudo -cf "$SUDOERS.check" >/dev/null || { rm -f "$SUDOERS.check"; die "visudo rejected the demo sudoers rules"; }
mv "$SUDOERS.check" "$SUDOERS"

# --- 7. start ------------------------------------------------------------------------------
stop_sshd
stop_importer
say "starting the sudo log importer (follows running sudo sessions)"
setsid "$PREFIX/bin/sudo-iolog-import" --follow --config "$ETC/sessrec.toml" --interval 2 \
    </dev/null >>"$IMPORT_LOG" 2>&1 &
echo $! >"$IMPORT_PIDFILE"
say "starting the recorded sshd on 127.0.0.1:$PORT"
"$SSHD_LINK" -f "$ETC/sshd_config" -E "$SSHD_LOG"
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null \
    || die "sshd did not start listening on 127.0.0.1:$PORT; see $SSHD_LOG"

SSH="ssh -i $DEMO_KEY -p $PORT -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null $DEMO_USER@127.0.0.1"
cat <<DONE

sessrec is recording SSH logins on 127.0.0.1:$PORT.

Log in (an interactive, recorded session; type 'exit' to leave):
    $SSH

Run a recorded command:
    $SSH 'uname -a; id'

Use sudo (logged by sudo, filed into the session's record within seconds):
    $SSH 'sudo id; sudo ls -la /root'

Records (root only):    $RECORDS/YYYY/MM/DD/<session-id>/{session,channel-N}.jsonl
    find $RECORDS -name '*.jsonl' | sort
    cat "\$(find $RECORDS -name 'channel-*.jsonl' | sort | tail -n 1)"
DONE
if [ "$have_cli" = yes ]; then
    cat <<DONE

With the operator's CLI (as root; set these once instead of typing --config each time):
    export SESSREC_CONFIG=$ETC/sessrec.toml PATH=$PREFIX/bin:\$PATH
    sessrec list
    sessrec show <session-id>
    sessrec play <session-id>
Every read is logged (syslog authpriv and $RECORDS/access/).

Check the installation (should end "all checks passed" or "warnings only"):
    sessrec doctor --sshd-config $ETC/sshd_config --pam-service $SERVICE
DONE
fi
cat <<DONE

sshd log: $SSHD_LOG    importer log: $IMPORT_LOG
Stop and remove the demo (records are kept): $0 --stop
DONE
