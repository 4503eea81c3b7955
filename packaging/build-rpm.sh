#!/bin/sh
# Builds the RPM for the RHEL 9 family from the release build of this tree.
#
#   packaging/build-rpm.sh            -> $CARGO_TARGET_DIR/packages/sessrec-<version>-1.x86_64.rpm
#
# It works on Debian (apt-get install rpm) as well as on RHEL. Binaries built elsewhere than
# RHEL 9 must not need a newer glibc than RHEL 9's 2.34; this script checks that. For a
# distribution build, use the spec with a source tarball on RHEL 9 instead (see the spec).
# Environment: CARGO_TARGET_DIR, SESSREC_PKG_OUT, SESSREC_PKG_NO_BUILD=1 (as build-deb.sh).
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$src/target}
out=${SESSREC_PKG_OUT:-$target/packages}
bindir=$target/release
glibc_max=2.34

if [ "${SESSREC_PKG_NO_BUILD:-}" != 1 ]; then
    (cd "$src" && CARGO_TARGET_DIR=$target cargo build --release --locked \
        -p sessrec-shell -p sessrec -p sudo-iolog-import -p audit-import -p sessrec-web -p pam_sessrec)
fi

for f in sessrec-shell sessrec sudo-iolog-import sessrec-audit-import libpam_sessrec.so; do
    newest=$(objdump -T "$bindir/$f" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' |
        sort -t. -k1,1n -k2,2n -u | tail -n 1)
    if [ "$(printf '%s\n%s\n' "$newest" "$glibc_max" | sort -t. -k1,1n -k2,2n | tail -n 1)" != "$glibc_max" ]; then
        echo "build-rpm.sh: $f needs glibc $newest, newer than RHEL 9's $glibc_max" >&2
        exit 1
    fi
done

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$src/Cargo.toml" | head -n 1)
top=$target/rpm-build
rm -rf "$top"
mkdir -p "$top/SPECS" "$out"
date=$(LC_ALL=C date -u -d "@${SOURCE_DATE_EPOCH:-$(git -C "$src" log -1 --format=%ct 2>/dev/null || date +%s)}" '+%a %b %d %Y')
sed -e "s/@VERSION@/$version/g" -e "s/@DATE@/$date/" "$src/packaging/rpm/sessrec.spec" \
    >"$top/SPECS/sessrec.spec"

# The staged files are already stripped and compressed; the host's brp scripts are skipped
# (Debian's are not meant for RHEL payloads).
rpmbuild -bb --quiet \
    --define "_topdir $top" \
    --define "_rpmdir $out" \
    --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
    --define "_docdir /usr/share/doc" \
    --define "_mandir /usr/share/man" \
    --define "_sysconfdir /etc" \
    --define "dist .el9" \
    --define "__os_install_post %{nil}" \
    --define "sessrec_srcdir $src" \
    --define "sessrec_bindir $bindir" \
    --target x86_64-redhat-linux \
    "$top/SPECS/sessrec.spec"
echo "$out/sessrec-$version-1.el9.x86_64.rpm"
