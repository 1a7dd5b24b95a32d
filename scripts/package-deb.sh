#!/usr/bin/env bash
# Builds zhima_<version>_<arch>.deb around a built `zhima` binary, with
# dpkg-deb (no other tool):
#   /usr/bin/zhima                       the binary
#   /etc/zhima/zhima.toml                packaging/zhima.toml, a conffile
#                                        (root:zhima 0640, set by postinst)
#   /lib/systemd/system/zhima.service    packaging/zhima.service
#   /usr/share/doc/zhima/                README, CHANGELOG, docs/*.md
#   /var/lib/zhima                       made by postinst (zhima:zhima 0750)
# Maintainer scripts: packaging/debian/{postinst,prerm,postrm}.
#
# Usage: scripts/package-deb.sh ARCH BINARY [OUTDIR] [VERSION]
#   ARCH     amd64, arm64 or armhf (the binary's architecture)
#   OUTDIR   default: the current directory
#   VERSION  default: the workspace version in Cargo.toml
# Prints the package's path and size.
set -euo pipefail
root_dir="$(cd "$(dirname "$0")/.." && pwd)"

arch="${1:?usage: package-deb.sh ARCH BINARY [OUTDIR] [VERSION]}"
binary="${2:?usage: package-deb.sh ARCH BINARY [OUTDIR] [VERSION]}"
outdir="${3:-$PWD}"
version="${4:-$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$root_dir/Cargo.toml")}"
case "$arch" in
  amd64|arm64|armhf) ;;
  *) echo "package-deb.sh: ARCH must be amd64, arm64 or armhf, not $arch" >&2; exit 2 ;;
esac
[ -x "$binary" ] || { echo "package-deb.sh: no binary at $binary" >&2; exit 2; }
[ -n "$version" ] || { echo "package-deb.sh: no version" >&2; exit 2; }

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
pkg="$stage/zhima"
install -d -m 0755 "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/etc/zhima" \
  "$pkg/lib/systemd/system" "$pkg/usr/share/doc/zhima"
install -m 0755 "$binary" "$pkg/usr/bin/zhima"
install -m 0640 "$root_dir/packaging/zhima.toml" "$pkg/etc/zhima/zhima.toml"
install -m 0644 "$root_dir/packaging/zhima.service" "$pkg/lib/systemd/system/zhima.service"
install -m 0644 "$root_dir/README.md" "$root_dir/CHANGELOG.md" "$root_dir"/docs/*.md \
  "$pkg/usr/share/doc/zhima/"
cat > "$pkg/usr/share/doc/zhima/copyright" <<'COPYRIGHT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: zhima

Files: *
License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy
 of this software and associated documentation files (the "Software"), to deal
 in the Software without restriction, including without limitation the rights
 to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 copies of the Software, and to permit persons to whom the Software is
 furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in
 all copies or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
 THE SOFTWARE.
COPYRIGHT
chmod 0644 "$pkg/usr/share/doc/zhima/copyright"
for script in postinst prerm postrm; do
  install -m 0755 "$root_dir/packaging/debian/$script" "$pkg/DEBIAN/$script"
done
echo /etc/zhima/zhima.toml > "$pkg/DEBIAN/conffiles"
installed_kib=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: zhima
Version: $version
Architecture: $arch
Maintainer: zhima developers <zhima@localhost>
Installed-Size: $installed_kib
Depends: libc6 (>= 2.34), libpq5, adduser
Section: net
Priority: optional
Description: membership and door-access server for hackerspaces
 zhima keeps a space's members, payments and door: a JSON API for the
 space's mini-program, an OAuth2 provider and Partner API, a bilingual
 staff console, signed member QR codes and the Raspberry Pi's door relay,
 on SQLite (embedded) or PostgreSQL. The door fails secure: locked at
 start, on error and whenever the service stops.
CONTROL
# reproducible when SOURCE_DATE_EPOCH is set
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
  find "$pkg" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
fi
mkdir -p "$outdir"
deb="$outdir/zhima_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
printf '%s\t%s bytes\n' "$deb" "$(stat -c %s "$deb")"
