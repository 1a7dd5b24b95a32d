#!/usr/bin/env bash
# Installs, upgrades, removes and purges the amd64 package with dpkg on this
# machine, as root, and checks each step: files, modes, the zhima user, the
# configuration kept on upgrade, the data kept on remove and gone only on
# purge. Then checks the arm64 and armhf packages' contents and control.
#
# Usage (as root): scripts/test-deb.sh DEBDIR
#   DEBDIR holds zhima_<v>_amd64.deb and zhima_<v>+upgrade_amd64.deb (the
#   same binary, a later version), and the arm64/armhf packages if built.
# Refuses to run where a zhima package is already installed.
set -euo pipefail
debdir="${1:?usage: test-deb.sh DEBDIR}"
[ "$(id -u)" = 0 ] || { echo "test-deb.sh: must run as root (dpkg)" >&2; exit 2; }
if dpkg-query -W -f='${Status}' zhima 2>/dev/null | grep -q "installed\|config-files"; then
  echo "test-deb.sh: a zhima package is already on this machine; not touching it" >&2
  exit 2
fi
first=$(ls "$debdir"/zhima_*_amd64.deb | grep -v '+upgrade' | head -1)
second=$(ls "$debdir"/zhima_*+upgrade_amd64.deb | head -1)

fail() { echo "FAIL: $*" >&2; exit 1; }
check() { local what="$1"; shift; "$@" || fail "$what"; echo "ok: $what"; }
mode_owner() { stat -c '%a %U:%G' "$1"; }
lists_key() { as_zhima api-key list | grep -q deb-test; }
has_backup() { compgen -G "/var/lib/zhima/backups/zhima-backup-*.tar" >/dev/null; }
as_zhima() { runuser -u zhima -- /usr/bin/zhima --config /etc/zhima/zhima.toml "$@"; }
# a Pi has a gpio group; where this machine has none, one is made for the
# test (and removed after it) to see the package put zhima in it
made_gpio=0
if ! getent group gpio >/dev/null; then
  groupadd --system gpio
  made_gpio=1
fi
cleanup() {
  dpkg --purge zhima >/dev/null 2>&1 || true
  if [ "$made_gpio" = 1 ]; then groupdel gpio 2>/dev/null || true; fi
}
trap cleanup EXIT

echo "==> install $(basename "$first")"
dpkg -i "$first"
check "zhima in /usr/bin runs" /usr/bin/zhima --version
check "a system user zhima" test "$(getent passwd zhima | cut -d: -f3)" -lt 1000
check "a group zhima" getent group zhima
check "the configuration is root:zhima 0640" test "$(mode_owner /etc/zhima/zhima.toml)" = "640 root:zhima"
check "/etc/zhima is root:zhima 0750" test "$(mode_owner /etc/zhima)" = "750 root:zhima"
check "/var/lib/zhima is zhima:zhima 0750" test "$(mode_owner /var/lib/zhima)" = "750 zhima:zhima"
check "the unit is installed" test -f /lib/systemd/system/zhima.service
check "the configuration is a conffile" grep -qx /etc/zhima/zhima.toml /var/lib/dpkg/info/zhima.conffiles
check "zhima is in the gpio group" sh -c 'id -nG zhima | grep -qw gpio'

if command -v systemd-analyze >/dev/null; then
  out=$(systemd-analyze verify /lib/systemd/system/zhima.service 2>&1) || fail "systemd-analyze verify: $out"
  [ -z "$out" ] || fail "systemd-analyze verify said: $out"
  echo "ok: systemd-analyze verify on the installed unit"
fi

echo "==> the service user works with the installed configuration"
as_zhima migrate
key=$(as_zhima api-key create --name deb-test --scopes admin | tail -1)
[ -n "$key" ] || fail "no API key printed"
check "the database is in /var/lib/zhima, owned by zhima" test "$(stat -c %U /var/lib/zhima/zhima.db)" = zhima
as_zhima qr public-key >/dev/null
check "the QR key is zhima's, mode 0600" test "$(mode_owner /var/lib/zhima/qr-signing.key)" = "600 zhima:zhima"
as_zhima backup >/dev/null
check "a backup in /var/lib/zhima/backups (backup.dir of the packaged configuration)" has_backup

echo "==> the operator edits the configuration, then upgrades to $(basename "$second")"
echo '# edited by the operator' >> /etc/zhima/zhima.toml
sed -i 's|^# name = "front"|name = "back"|' /etc/zhima/zhima.toml
before_sum=$(sha256sum /etc/zhima/zhima.toml)
dpkg -i "$second"
check "the new version is installed" test "$(dpkg-query -W -f='${Version}' zhima)" = "$(dpkg-deb -f "$second" Version)"
check "the edited configuration is kept" test "$(sha256sum /etc/zhima/zhima.toml)" = "$before_sum"
check "its mode and owner too" test "$(mode_owner /etc/zhima/zhima.toml)" = "640 root:zhima"
check "the API key still lists" lists_key

echo "==> remove (not purge)"
dpkg -r zhima
check "the binary is gone" test ! -e /usr/bin/zhima
check "the unit is gone" test ! -e /lib/systemd/system/zhima.service
check "the database is kept" test -s /var/lib/zhima/zhima.db
check "the QR key is kept" test -s /var/lib/zhima/qr-signing.key
check "the backups are kept" has_backup
check "the configuration is kept" test "$(sha256sum /etc/zhima/zhima.toml)" = "$before_sum"
check "the user is kept" getent passwd zhima

echo "==> install again over the kept data, then purge"
dpkg -i "$second"
check "the kept API key is there again" lists_key
echo "==> the operator deleted the configuration; installing again still works"
rm /etc/zhima/zhima.toml
dpkg -i "$second"
check "the package is configured" test "$(dpkg-query -W -f='${Status}' zhima)" = "install ok installed"
dpkg --purge zhima
check "the data is gone" test ! -e /var/lib/zhima
check "the configuration is gone" test ! -e /etc/zhima
check "the user is gone" sh -c '! getent passwd zhima'
check "the group is gone" sh -c '! getent group zhima'
check "dpkg forgets the package" sh -c "! dpkg-query -W zhima >/dev/null 2>&1 || dpkg-query -W -f='\${Status}' zhima | grep -q not-installed"

echo "==> the Pi packages"
for arch in arm64 armhf; do
  deb=$(ls "$debdir"/zhima_*_"$arch".deb 2>/dev/null | grep -v '+upgrade' | head -1 || true)
  [ -n "$deb" ] || fail "no $arch package in $debdir"
  check "$arch: control says $arch" test "$(dpkg-deb -f "$deb" Architecture)" = "$arch"
  contents=$(dpkg-deb -c "$deb")
  for path in ./usr/bin/zhima ./etc/zhima/zhima.toml ./lib/systemd/system/zhima.service; do
    grep -q " $path\$" <<<"$contents" || fail "$arch: $path missing"
  done
  tmp=$(mktemp -d)
  dpkg-deb -x "$deb" "$tmp"
  want=$([ "$arch" = arm64 ] && echo "ARM aarch64" || echo "ARM, EABI5")
  file_type=$(od -An -tx1 -j18 -N2 "$tmp/usr/bin/zhima" | tr -d ' ')
  case "$arch:$file_type" in
    arm64:b700|armhf:2800) echo "ok: $arch: the binary is $want" ;;
    *) fail "$arch: the binary's ELF machine is $file_type" ;;
  esac
  rm -rf "$tmp"
done
echo "all package checks passed"
