#!/usr/bin/env bash
# Holds the server to its own OpenAPI description with schemathesis, a
# property-based API tester nobody here wrote: it generates requests for every
# operation of /openapi.json (a bounded number of examples each) and fails on
# any 5xx, an undocumented status or content type, or a body that does not
# match the described schema. Runs the debug binary on a throwaway SQLite
# database with the simulated door.
#
# schemathesis comes from PyPI into a virtualenv under ~/.cache/zhima (set
# ZHIMA_VENV to move it). Without it (no python3 venv, no PyPI) this step says
# so and is skipped, unless REQUIRE_SCHEMATHESIS=1 (CI), which fails.
set -euo pipefail
cd "$(dirname "$0")/.."

examples="${SCHEMATHESIS_EXAMPLES:-30}"
venv="${ZHIMA_VENV:-$HOME/.cache/zhima/venv}"
version="4.32.5"

skip() {
  if [ "${REQUIRE_SCHEMATHESIS:-0}" = "1" ]; then
    echo "schemathesis is required (REQUIRE_SCHEMATHESIS=1): $*" >&2
    exit 1
  fi
  echo "!! schemathesis SKIPPED: $*"
  exit 0
}

if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$version"; then
  python3 -m venv "$venv" >/dev/null 2>&1 || skip "python3 -m venv failed (apt-get install python3-venv)"
  "$venv/bin/pip" install -q "schemathesis==$version" || skip "pip could not install schemathesis $version"
fi

cargo build --locked -q -p zhima-server --bin zhima
bin="${CARGO_TARGET_DIR:-target}/debug/zhima"

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

export ZHIMA_DATABASE__URL="sqlite://$work/zhima.db"
export ZHIMA_QR__KEY_FILE="$work/qr.key"
export ZHIMA_LOG__LEVEL=warn
key=$("$bin" api-key create --name schemathesis --scopes member:read,member:write,door:open,admin | tail -n 1)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# unlocks of at most a second, and no scan limit: the tester sends many
ZHIMA_HTTP__BIND="127.0.0.1:$port" ZHIMA_DOOR__MAX_UNLOCK_SECS=1 \
  ZHIMA_DOOR__SCAN_BURST=1000000 ZHIMA_DOOR__SCAN_PER_SEC=1000000 \
  "$bin" serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

status=0
"$venv/bin/st" run "http://127.0.0.1:$port/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "$examples" --seed 20261206 --workers 2 \
  --header "Authorization: Bearer $key" \
  --request-timeout 10 --no-color || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- server log ---"; tail -n 50 "$work/server.log"
fi
exit "$status"
