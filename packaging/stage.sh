#!/bin/sh
# Installs the built programs, configuration, units, man pages, docs and examples into a
# staging root, with the file layout of one distribution family. Used by build-deb.sh and by
# the rpm spec's %install; run it as root or under fakeroot only if you need real owners (the
# package tools set root:root themselves).
#
#   stage.sh --layout debian|rpm --bin-dir DIR --dest DIR
set -eu

usage() { echo "usage: $0 --layout debian|rpm --bin-dir DIR --dest DIR" >&2; exit 2; }
layout= bindir= dest=
while [ $# -gt 0 ]; do
    case "$1" in
    --layout) layout=$2; shift 2 ;;
    --bin-dir) bindir=$2; shift 2 ;;
    --dest) dest=$2; shift 2 ;;
    *) usage ;;
    esac
done
[ -n "$layout" ] && [ -n "$bindir" ] && [ -n "$dest" ] || usage

src=$(cd "$(dirname "$0")/.." && pwd)

case "$layout" in
debian)
    multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
    pamdir=/lib/$multiarch/security
    unitdir=/lib/systemd/system
    ;;
rpm)
    pamdir=/usr/lib64/security
    unitdir=/usr/lib/systemd/system
    ;;
*) usage ;;
esac
docdir=/usr/share/doc/sessrec

for f in sessrec-shell sessrec sudo-iolog-import sessrec-audit-import sessrec-web libpam_sessrec.so; do
    if [ ! -f "$bindir/$f" ]; then
        echo "stage.sh: $bindir/$f is missing (build with: cargo build --release)" >&2
        exit 1
    fi
done

d() { install -d -m "$1" "$dest$2"; }
f() { install -m "$1" "$2" "$dest$3"; }
# Programs are stripped of debug information; the PAM module keeps its dynamic symbols.
prog() { f "$1" "$2" "$3"; strip --strip-unneeded "$dest$3"; chmod "$1" "$dest$3"; }

d 0755 /usr/bin
d 0755 /usr/sbin
d 0755 "$pamdir"
prog 4755 "$bindir/sessrec-shell" /usr/bin/sessrec-shell
prog 0755 "$bindir/sessrec" /usr/bin/sessrec
prog 0755 "$bindir/sudo-iolog-import" /usr/sbin/sudo-iolog-import
prog 0755 "$bindir/sessrec-audit-import" /usr/sbin/sessrec-audit-import
prog 0755 "$bindir/sessrec-web" /usr/sbin/sessrec-web
prog 0644 "$bindir/libpam_sessrec.so" "$pamdir/pam_sessrec.so"

d 0755 /etc/sessrec
f 0644 "$src/packaging/sessrec.toml" /etc/sessrec/sessrec.toml
# The web console's configuration (all commented out) and its PAM service, which differs by
# distribution family (Debian's common-* files, RHEL's authselect password-auth).
f 0644 "$src/packaging/web.toml" /etc/sessrec/web.toml
d 0755 /etc/pam.d
f 0644 "$src/packaging/pam.d/$layout/sessrec-web" /etc/pam.d/sessrec-web

d 0755 /usr/lib/tmpfiles.d
f 0644 "$src/packaging/tmpfiles.d/sessrec.conf" /usr/lib/tmpfiles.d/sessrec.conf

d 0755 "$unitdir"
for unit in "$src"/packaging/systemd/*.service "$src"/packaging/systemd/*.path \
    "$src"/packaging/systemd/*.timer; do
    [ -f "$unit" ] || continue
    f 0644 "$unit" "$unitdir/$(basename "$unit")"
done

# Every man page in man/, by the section its name ends in, compressed reproducibly.
for page in "$src"/man/*.[1-8]; do
    [ -f "$page" ] || continue
    name=$(basename "$page")
    section=${name##*.}
    d 0755 "/usr/share/man/man$section"
    gzip -9nc "$page" >"$dest/usr/share/man/man$section/$name.gz"
    chmod 0644 "$dest/usr/share/man/man$section/$name.gz"
done

# The asciinema-player inlined by `sessrec export --format html`: fetched at a pinned version
# and checksum (scripts/fetch-player.sh), never kept in the source tree.
player=$src/vendor-player
if [ ! -f "$player/asciinema-player.min.js" ]; then
    sh "$src/scripts/fetch-player.sh" "$player"
fi
d 0755 /usr/share/sessrec/asciinema-player
for file in asciinema-player.min.js asciinema-player.css LICENSE.asciinema-player VERSION; do
    f 0644 "$player/$file" "/usr/share/sessrec/asciinema-player/$file"
done

d 0755 "$docdir"
for doc in "$src"/docs/*.md "$src/README.md"; do
    [ -f "$doc" ] || continue
    f 0644 "$doc" "$docdir/$(basename "$doc")"
done
(
    cd "$src/packaging/examples"
    find . -type d | while read -r dir; do install -d -m 0755 "$dest$docdir/examples/$dir"; done
    find . -type f | while read -r file; do install -m 0644 "$file" "$dest$docdir/examples/$file"; done
)
(
    cd "$src/packaging/shippers"
    find . -type d | while read -r dir; do install -d -m 0755 "$dest$docdir/examples/shippers/$dir"; done
    find . -type f | while read -r file; do install -m 0644 "$file" "$dest$docdir/examples/shippers/$file"; done
)
