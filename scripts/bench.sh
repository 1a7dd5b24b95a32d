#!/usr/bin/env bash
# Benchmark of the Member API, all figures from one run on one machine:
#   1. POST /api/v1.0/member/new: members created per second (wrk, 16 connections);
#      the database is then topped up to MEMBERS members;
#   2. GET /healthz (the trivial route) and GET member by openid (random among
#      the seeded members), side by side: requests/s, p50, p99, and the ratio;
#   3. the server's peak resident memory (VmHWM) over the whole run.
# Usage: scripts/bench.sh [MEMBERS=10000] [DURATION=15] [CONNECTIONS=64]
# Needs wrk (apt-get install wrk) and python3. The server uses SQLite unless
# ZHIMA_DATABASE__URL is set in the environment; BENCH_BIN runs a given
# binary instead of building this tree (to compare two versions).
# wrk shares the machine's cores with the server, so both GET phases give it
# the same work per request (a Lua script picking a prepared request from a
# table at random): the ratio is then the server's cost, not the load
# generator's.
set -euo pipefail
cd "$(dirname "$0")/.."

MEMBERS=${1:-10000}
DURATION=${2:-15}
CONNECTIONS=${3:-64}
command -v wrk >/dev/null || { echo "bench: wrk is needed (apt-get install wrk)" >&2; exit 1; }

if [ -n "${BENCH_BIN:-}" ]; then
  BIN=$BENCH_BIN
else
  cargo build --release --locked -p zhima-server >&2
  BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/zhima
fi
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export ZHIMA_DATABASE__URL=${ZHIMA_DATABASE__URL:-sqlite://$WORK/bench.db}
export ZHIMA_HTTP__BIND=127.0.0.1:$PORT
export ZHIMA_LOG__LEVEL=warn
BASE=http://127.0.0.1:$PORT
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

KEY=$("$BIN" api-key create --name "bench-$$" --scopes member:read,member:write | tail -n 1)
"$BIN" serve & PID=$!
for _ in $(seq 1 100); do curl -fs "$BASE/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

# wrk's summary: requests/s, p50 and p99 in ms, non-2xx count
summary() {
  awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ { rps=$2 }
    /^ +50%/ { p50=ms($2) }
    /^ +99%/ { p99=ms($2) }
    /Non-2xx/ { bad=$5 }
    END { printf "%.0f %.2f %.2f %d\n", rps, p50, p99, bad+0 }'
}

cat > "$WORK/post.lua" <<LUA
local counter = 0
local id = 0
function setup(thread) id = id + 1; thread:set("tid", id) end
function init(args) math.randomseed(os.time() + tid) end
request = function()
  counter = counter + 1
  local openid = string.format("bench-%d-%d-%d", tid, counter, math.random(1, 1000000000))
  local body = string.format('{"openid":"%s","basicInfo":{"nickName":"%s","country":"China","gender":1},"memberInfo":{"tags":["MEMBER"]}}', openid, openid)
  return wrk.format("POST", "/api/v1.0/member/new", {["Authorization"] = "Bearer $KEY", ["Content-Type"] = "application/json"}, body)
end
LUA

echo "== POST member/new (16 connections, ${DURATION}s)" >&2
read -r post_rps post_p50 post_p99 post_bad < <(wrk -t2 -c16 -d"${DURATION}s" --latency -s "$WORK/post.lua" "$BASE" | tee "$WORK/post.txt" | summary)

count_members() {
  case "$ZHIMA_DATABASE__URL" in
    sqlite://*) python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from members").fetchone()[0])' "${ZHIMA_DATABASE__URL#sqlite://}" ;;
    *) psql "$ZHIMA_DATABASE__URL" -Atc 'select count(*) from members' ;;
  esac
}
have=$(count_members)
if [ "$have" -lt "$MEMBERS" ]; then
  echo "== topping up to $MEMBERS members (have $have)" >&2
  python3 - "$BASE" "$KEY" "$((MEMBERS - have))" <<'PY'
import http.client, json, sys, urllib.parse
base, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
u = urllib.parse.urlparse(base)
c = http.client.HTTPConnection(u.hostname, u.port)
for i in range(n):
    oid = f"seed-{i}"
    body = json.dumps({"openid": oid, "basicInfo": {"nickName": oid}})
    c.request("POST", "/api/v1.0/member/new", body, {"Authorization": f"Bearer {key}"})
    r = json.loads(c.getresponse().read())
    assert r["errno"] == "1000", r
PY
fi
members=$(count_members)

# openids for the GET phase
case "$ZHIMA_DATABASE__URL" in
  sqlite://*) python3 -c 'import sqlite3,sys; [print(r[0]) for r in sqlite3.connect(sys.argv[1]).execute("select openid from members")]' "${ZHIMA_DATABASE__URL#sqlite://}" ;;
  *) psql "$ZHIMA_DATABASE__URL" -Atc 'select openid from members' ;;
esac > "$WORK/openids.txt"

# both phases: a table of prepared requests, one picked at random per request
cat > "$WORK/get.lua" <<LUA
local reqs = {}
function init(args)
  for line in io.lines("$WORK/openids.txt") do
    reqs[#reqs + 1] = wrk.format("GET", "/api/v1.0/member/openid/" .. line, {["Authorization"] = "Bearer $KEY"})
  end
  math.randomseed(os.time())
end
request = function() return reqs[math.random(1, #reqs)] end
LUA
cat > "$WORK/health.lua" <<LUA
local reqs = {}
function init(args)
  for line in io.lines("$WORK/openids.txt") do reqs[#reqs + 1] = wrk.format("GET", "/healthz") end
  math.randomseed(os.time())
end
request = function() return reqs[math.random(1, #reqs)] end
LUA

echo "== GET /healthz ($CONNECTIONS connections, ${DURATION}s)" >&2
read -r h_rps h_p50 h_p99 h_bad < <(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/health.lua" "$BASE" | summary)
echo "== GET member by openid ($CONNECTIONS connections, ${DURATION}s)" >&2
read -r g_rps g_p50 g_p99 g_bad < <(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/get.lua" "$BASE" | summary)
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")

ratio=$(python3 -c "print(f'{$g_rps / $h_rps:.2f}')")
printf '\nzhima Member API benchmark (%s, %s members, %s connections, %ss per phase, %s cores)\n' \
  "${ZHIMA_DATABASE__URL%%:*}" "$members" "$CONNECTIONS" "$DURATION" "$(nproc)"
printf '%-26s %10s %10s %10s %8s\n' phase "req/s" "p50 ms" "p99 ms" "non-2xx"
printf '%-26s %10s %10s %10s %8s\n' "GET /healthz" "$h_rps" "$h_p50" "$h_p99" "$h_bad"
printf '%-26s %10s %10s %10s %8s\n' "GET member by openid" "$g_rps" "$g_p50" "$g_p99" "$g_bad"
printf '%-26s %10s %10s %10s %8s\n' "POST member/new (16 conn)" "$post_rps" "$post_p50" "$post_p99" "$post_bad"
case "$ZHIMA_DATABASE__URL" in sqlite://*) target=0.50 ;; *) target=0.30 ;; esac
printf 'GET member / health throughput ratio: %s (target >= %s)\n' "$ratio" "$target"
printf 'GET member p99: %s ms (target < 10 ms)\n' "$g_p99"
printf 'peak resident memory of the server: %d MB (target < 60 MB)\n' "$((rss_kb / 1024))"
