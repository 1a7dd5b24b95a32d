#!/usr/bin/env bash
# Release builds of the `zhima` binary for the Raspberry Pi:
#   aarch64-unknown-linux-gnu      64-bit Raspberry Pi OS (Pi 3, 4, 5)
#   armv7-unknown-linux-gnueabihf  32-bit Raspberry Pi OS (Pi 2 and later)
# both with SQLite (bundled) and PostgreSQL (the target's own libpq5 from
# Debian, linked dynamically as on amd64: the package depends on libpq5).
#
# Usage: scripts/cross.sh [TARGET...]   (default: both)
# Writes target/pi/zhima-<target> (or $CARGO_TARGET_DIR/pi/...) and prints
# each binary's size. Needs, from Debian (.ci/run installs them):
#   gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf
#   libpq5:arm64 libpq5:armhf   (after dpkg --add-architecture arm64 armhf)
# and the targets' standard libraries: rustup target add <target>.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
out="$target_dir/pi"
mkdir -p "$out"

# the target's C cross compiler (Debian's) and multiarch directory
toolchain() {
  case "$1" in
    aarch64-unknown-linux-gnu) gcc=aarch64-linux-gnu-gcc; multiarch=aarch64-linux-gnu; debarch=arm64 ;;
    armv7-unknown-linux-gnueabihf) gcc=arm-linux-gnueabihf-gcc; multiarch=arm-linux-gnueabihf; debarch=armhf ;;
    *) echo "cross.sh: unknown target $1" >&2; exit 2 ;;
  esac
}

missing=()
for target in "${targets[@]}"; do
  toolchain "$target"
  command -v "$gcc" >/dev/null || missing+=("the linker $gcc (Debian: gcc-$multiarch)")
  [ -e "/usr/lib/$multiarch/libpq.so.5" ] || missing+=("libpq5 for $multiarch (Debian: libpq5:$debarch, see the header)")
  rustup target list --installed 2>/dev/null | grep -qx "$target" || missing+=("the $target standard library (rustup target add $target)")
done
if [ ${#missing[@]} -gt 0 ]; then
  printf 'cross.sh: missing %s\n' "${missing[@]}" >&2
  exit 1
fi

for target in "${targets[@]}"; do
  toolchain "$target"
  upper=$(echo "$target" | tr 'a-z-' 'A-Z_')
  # libpq: the target's libpq.so.5 under the name the linker looks for
  # (Debian's libpq-dev for a foreign architecture would clash with the
  # build machine's own), and its own dependencies found where multiarch
  # puts them.
  libs="$target_dir/pi/lib-$target"
  mkdir -p "$libs"
  ln -sf "/usr/lib/$multiarch/libpq.so.5" "$libs/libpq.so"
  echo "==> cargo build --release --target $target"
  env "CARGO_TARGET_${upper}_LINKER=$gcc" \
      "CC_${target//-/_}=$gcc" \
      "AR_${target//-/_}=${gcc%-gcc}-ar" \
      "PQ_LIB_DIR_${upper}=$libs" \
      "CARGO_TARGET_${upper}_RUSTFLAGS=-C link-arg=-Wl,-rpath-link,/usr/lib/$multiarch" \
    cargo build --release --locked -p zhima-server --target "$target"
  cp "$target_dir/$target/release/zhima" "$out/zhima-$target"
  printf '%s\t%s bytes\n' "$out/zhima-$target" "$(stat -c %s "$out/zhima-$target")"
done
