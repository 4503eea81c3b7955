#!/bin/sh
# Fetches the asciinema-player used by `sessrec export --format html` at a pinned version,
# checks the tarball against a pinned SHA-512, and unpacks the two files sessrec inlines into
# vendor-player/ (git-ignored; never committed). Run at source-release or packaging time:
#   scripts/fetch-player.sh [DEST]        (default DEST: <repo>/vendor-player)
set -eu

VERSION=3.10.0
# npm's "integrity" for asciinema-player-3.10.0.tgz
SHA512=shoOK6F606nDKZxDVM7JuGSCAyWLePoGRFNlV+FqiP5Sqvyn0BlE7wlbjZyd2X4P1iRhv/HKfVNtnQIxmgphRA==

here=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$here/vendor-player}
command -v npm >/dev/null || { echo "fetch-player.sh: npm is needed (apt-get install npm)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "asciinema-player@$VERSION" >/dev/null)
tarball="$work/asciinema-player-$VERSION.tgz"
[ -f "$tarball" ] || { echo "fetch-player.sh: npm pack produced no $tarball" >&2; exit 1; }
actual=$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)
if [ "$actual" != "$SHA512" ]; then
    echo "fetch-player.sh: checksum mismatch for asciinema-player $VERSION" >&2
    echo "  expected sha512-$SHA512" >&2
    echo "  got      sha512-$actual" >&2
    exit 1
fi
tar -xzf "$tarball" -C "$work" package/dist/bundle/asciinema-player.min.js package/dist/bundle/asciinema-player.css package/LICENSE
mkdir -p "$dest"
cp "$work/package/dist/bundle/asciinema-player.min.js" "$work/package/dist/bundle/asciinema-player.css" "$dest/"
cp "$work/package/LICENSE" "$dest/LICENSE.asciinema-player"
echo "$VERSION" > "$dest/VERSION"
echo "asciinema-player $VERSION verified and unpacked into $dest"
