#!/usr/bin/env bash
# Every check and test of zhima: formatting, clippy, the architecture
# invariants, the whole test suite on SQLite, schemathesis against the
# served OpenAPI description, then the storage and server suites again on
# PostgreSQL over its socket and over TCP (each test on its own throwaway
# database). The Raspberry Pi binaries (scripts/cross.sh) run in each suite
# under qemu-user-static; last, the Debian packages are built, and as root
# installed, upgraded, removed and purged (scripts/test-deb.sh).
#
# The Pi builds and the packages need Debian's cross compilers and qemu
# (docs/deploy-pi.md, "Building the packages"); without them those steps are
# skipped with a message, unless REQUIRE_PI=1 (as in CI), which makes that a
# failure.
#
# PostgreSQL: TEST_ZHIMA_POSTGRES_URL, or else the local server on its socket
# (/var/run/postgresql, user postgres) or on 127.0.0.1:5432. When none is
# reachable the PostgreSQL suite is skipped with a clear message, unless
# REQUIRE_POSTGRES=1 (as in CI), which makes that a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "the server without the legacy import (a door Pi's build: --no-default-features)"
cargo clippy -p zhima-server --no-default-features --all-targets --locked -- -D warnings

step "the Raspberry Pi driver (rppal), compiled and tested off the Pi"
cargo clippy -p zhima-door-hardware --features rppal --all-targets --locked -- -D warnings
cargo test -p zhima-door-hardware --features rppal --locked

step "architecture invariants"
scripts/check-architecture.sh

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
pi_ready() {
  command -v qemu-aarch64-static >/dev/null && command -v qemu-arm-static >/dev/null \
    && command -v aarch64-linux-gnu-gcc >/dev/null && command -v arm-linux-gnueabihf-gcc >/dev/null \
    && [ -e /usr/lib/aarch64-linux-gnu/libpq.so.5 ] && [ -e /usr/lib/arm-linux-gnueabihf/libpq.so.5 ]
}
step "Raspberry Pi builds (scripts/cross.sh)"
if pi_ready || [ "${REQUIRE_PI:-0}" = "1" ]; then
  scripts/cross.sh
  export TEST_ZHIMA_PI_BINARIES="$target_dir/pi"
  export REQUIRE_PI_SMOKE=1
else
  echo "!! no cross compilers or qemu-user-static: the Pi builds and their smoke test were SKIPPED."
fi

step "tests on SQLite"
env -u TEST_ZHIMA_POSTGRES_URL cargo test --workspace --locked

step "schemathesis against the served OpenAPI description"
scripts/schemathesis.sh

# PostgreSQL is tested twice: over its Unix socket and over TCP. libpq
# negotiates SSL and GSS encryption over TCP only, and a process exiting
# during that negotiation once crashed; the socket alone never showed it.
probe() {
  if command -v psql >/dev/null 2>&1; then
    PGCONNECT_TIMEOUT=3 psql "$1" -Atqc 'select 1' </dev/null >/dev/null 2>&1
  else
    return 0 # no psql to probe with: let the tests say
  fi
}

socket_url="${TEST_ZHIMA_POSTGRES_URL:-postgres:///postgres?host=/var/run/postgresql&user=postgres}"
tcp_url="${TEST_ZHIMA_POSTGRES_TCP_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
ran=0
for pair in "socket|$socket_url" "TCP|$tcp_url"; do
  how="${pair%%|*}"; url="${pair#*|}"
  step "tests on PostgreSQL over $how"
  if probe "$url"; then
    echo "using PostgreSQL at ${url%%\?*} (a throwaway database per test)"
    TEST_ZHIMA_POSTGRES_URL="$url" cargo test --locked -p zhima-storage -p zhima-server
    ran=$((ran + 1))
  elif [ "${REQUIRE_POSTGRES:-0}" = "1" ]; then
    echo "PostgreSQL over $how is required (REQUIRE_POSTGRES=1) but not reachable at ${url%%\?*}" >&2
    exit 1
  else
    echo "!! PostgreSQL over $how is not reachable: that suite was SKIPPED."
    echo "!! Set TEST_ZHIMA_POSTGRES_URL (socket) or TEST_ZHIMA_POSTGRES_TCP_URL (TCP) to postgres://USER@HOST/DB (a user that may create databases)."
  fi
done

step "Debian packages (scripts/package-deb.sh, scripts/test-deb.sh)"
if [ -n "${TEST_ZHIMA_PI_BINARIES:-}" ]; then
  cargo build --release --locked -p zhima-server
  debs="$target_dir/deb"
  rm -rf "$debs" && mkdir -p "$debs"
  version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
  scripts/package-deb.sh amd64 "$target_dir/release/zhima" "$debs"
  scripts/package-deb.sh amd64 "$target_dir/release/zhima" "$debs" "$version+upgrade"
  scripts/package-deb.sh arm64 "$TEST_ZHIMA_PI_BINARIES/zhima-aarch64-unknown-linux-gnu" "$debs"
  scripts/package-deb.sh armhf "$TEST_ZHIMA_PI_BINARIES/zhima-armv7-unknown-linux-gnueabihf" "$debs"
  if [ "$(id -u)" = "0" ]; then
    scripts/test-deb.sh "$debs"
  elif [ "${REQUIRE_PI:-0}" = "1" ]; then
    echo "the package test installs with dpkg and must run as root (REQUIRE_PI=1)" >&2
    exit 1
  else
    echo "!! not root: the packages were built but not installed (scripts/test-deb.sh as root)."
  fi
else
  echo "!! no Pi builds: the packages were SKIPPED."
fi

step "all checks passed"
