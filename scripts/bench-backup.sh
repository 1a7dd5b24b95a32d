#!/usr/bin/env bash
# Times `zhima backup` (release build) of a SQLite database at two sizes side
# by side: 10,000 members with 100,000 access events, and 100,000 members
# with 1,000,000 access events (a payment each). Prints seconds, peak memory
# (GNU time), the archive's size and the ratios. Needs sqlite3 and
# /usr/bin/time. Usage: scripts/bench-backup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p zhima-server --bin zhima >/dev/null
ZHIMA="$(pwd)/${CARGO_TARGET_DIR:-target}/release/zhima"
[ -x "$ZHIMA" ] || ZHIMA="${CARGO_TARGET_DIR}/release/zhima"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export ZHIMA_LOG__LEVEL=warn ZHIMA_QR__SIGNING_KEY=0707070707070707070707070707070707070707070707070707070707070707

fill() { # fill DB MEMBERS EVENTS
  ZHIMA_DATABASE__URL="sqlite://$1" "$ZHIMA" migrate >/dev/null
  sqlite3 "$1" <<SQL
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2)
INSERT INTO members (openid, nickname, nickname_key, tags, password_hash, created_at, updated_at)
  SELECT 'o-' || i, '会员 ' || i, '会员 ' || i, 'MEMBER', 'x', 1700000000 + i, 1700000000 + i FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2)
INSERT INTO payments (member_id, pay_index, amount_fen, pay_type, paid_at, recorded_at)
  SELECT i, 'p-' || i, 20000, '1M MEMBERSHIP', 1700000000 + i, 1700000000 + i FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $3)
INSERT INTO access_events (at, door, method, outcome, reason, member_id, detail)
  SELECT 1700000000 + i * 30, 'front', 'qr', 'granted', 'qr_ok', (i % $2) + 1, '' FROM n;
SQL
}

declare -A result
for size in small full; do
  case $size in
    small) fill "$work/$size.db" 10000 100000 ;;
    full) fill "$work/$size.db" 100000 1000000 ;;
  esac
  db_bytes=$(stat -c %s "$work/$size.db")
  /usr/bin/time -f "%e %M" -o "$work/time" env ZHIMA_DATABASE__URL="sqlite://$work/$size.db" \
    "$ZHIMA" backup --to "$work/backups-$size" >/dev/null
  read -r secs kib <"$work/time"
  tar_bytes=$(stat -c %s "$work"/backups-$size/*.tar)
  result[$size]="$secs $((kib / 1024)) $((db_bytes / 1048576)) $((tar_bytes / 1048576))"
done

printf '%-6s %8s %9s %9s %9s\n' size seconds "peak MiB" "db MiB" "tar MiB"
for size in small full; do
  read -r s m d t <<<"${result[$size]}"
  printf '%-6s %8s %9s %9s %9s\n' "$size" "$s" "$m" "$d" "$t"
done
read -r s1 _ <<<"${result[small]}"
read -r s2 _ <<<"${result[full]}"
awk -v a="$s1" -v b="$s2" 'BEGIN { printf "full/small time: %.1fx (10x the rows)\n", (a > 0 ? b / a : 0) }'
