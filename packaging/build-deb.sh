#!/bin/sh
# Builds the Debian package: release build, staged tree, dpkg-deb.
#
#   packaging/build-deb.sh            -> $CARGO_TARGET_DIR/packages/sessrec_<version>-1_<arch>.deb
#
# Environment: CARGO_TARGET_DIR (default: target/ in the source tree),
# SESSREC_PKG_OUT (output directory), SESSREC_PKG_NO_BUILD=1 (package the existing release build),
# DEBFULLNAME and DEBEMAIL (the Maintainer field and changelog signature, as Debian tools use).
# Needs: cargo, dpkg-dev (dpkg-architecture, dpkg-shlibdeps), binutils (strip).
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$src/target}
out=${SESSREC_PKG_OUT:-$target/packages}
bindir=$target/release

if [ "${SESSREC_PKG_NO_BUILD:-}" != 1 ]; then
    (cd "$src" && CARGO_TARGET_DIR=$target cargo build --release --locked \
        -p sessrec-shell -p sessrec -p sudo-iolog-import -p audit-import -p sessrec-web -p pam_sessrec)
fi

upstream=$(sed -n 's/^version = "\(.*\)"/\1/p' "$src/Cargo.toml" | head -n 1)
[ -n "$upstream" ] || { echo "build-deb.sh: no version in Cargo.toml" >&2; exit 1; }
version=$upstream-1
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
maintainer="${DEBFULLNAME:-sessrec maintainers} <${DEBEMAIL:-sessrec@localhost}>"

work=$target/deb-build
root=$work/root
rm -rf "$work"
mkdir -p "$root/DEBIAN" "$out"

"$src/packaging/stage.sh" --layout debian --bin-dir "$bindir" --dest "$root"

doc=$root/usr/share/doc/sessrec
install -m 0644 "$src/packaging/debian/copyright" "$doc/copyright"
install -D -m 0644 "$src/packaging/debian/lintian-overrides" "$root/usr/share/lintian/overrides/sessrec"
date=$(date -R -u -d "@${SOURCE_DATE_EPOCH:-$(git -C "$src" log -1 --format=%ct 2>/dev/null || date +%s)}")
sed -e "s/@VERSION@/$version/" -e "s/@DATE@/$date/" -e "s|@MAINTAINER@|$maintainer|" \
    "$src/packaging/debian/changelog" |
    gzip -9n >"$doc/changelog.Debian.gz"
chmod 0644 "$doc/changelog.Debian.gz"

# Shared-library dependencies as Debian computes them.
mkdir -p "$work/shlibs/debian"
printf 'Source: sessrec\n\nPackage: sessrec\nArchitecture: any\n' >"$work/shlibs/debian/control"
shlibs=$(cd "$work/shlibs" && dpkg-shlibdeps -O \
    "$root/usr/bin/sessrec-shell" "$root/usr/bin/sessrec" "$root/usr/sbin/sudo-iolog-import" \
    "$root/usr/sbin/sessrec-audit-import" "$root/usr/sbin/sessrec-web" \
    "$root/lib/$multiarch/security/pam_sessrec.so" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "build-deb.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@SHLIBS@/$shlibs/" \
    -e "s|@MAINTAINER@|$maintainer|" \
    "$src/packaging/debian/control.in" >"$root/DEBIAN/control"
printf '%s\n' /etc/sessrec/sessrec.toml /etc/sessrec/web.toml /etc/pam.d/sessrec-web >"$root/DEBIAN/conffiles"
for script in postinst prerm postrm; do
    sed "s/@MULTIARCH@/$multiarch/g" "$src/packaging/debian/$script" >"$root/DEBIAN/$script"
    chmod 0755 "$root/DEBIAN/$script"
done
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | sed 's#^\./##' | LC_ALL=C sort |
    xargs md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

deb=$out/sessrec_${version}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
