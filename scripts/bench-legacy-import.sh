#!/usr/bin/env bash
# Times `zhima import zhima-legacy` (release build) from a MariaDB holding the
# old server's schema, at two sizes side by side:
#   small: 1,000 users, 10,000 transactions, 100,000 log rows
#   full:  10,000 users, 100,000 transactions, 1,000,000 log rows
# one user in ten with a real password (hashed with argon2id on import), the
# others on the default one. Each size is imported into a fresh SQLite file
# (dry run, then the import, then a second run that changes nothing), and
# into PostgreSQL when TEST_ZHIMA_POSTGRES_URL names one. Prints seconds and
# peak memory (GNU time), and the full/small ratios.
#
# Needs MariaDB at MARIADB (default mysql://root@127.0.0.1:3306) with the
# mariadb client, and /usr/bin/time. Usage: scripts/bench-legacy-import.sh
set -euo pipefail
cd "$(dirname "$0")/.."

MARIADB="${MARIADB:-mysql://root@127.0.0.1:3306}"
hostport="${MARIADB#mysql://}"; user="${hostport%@*}"; hostport="${hostport#*@}"
host="${hostport%:*}"; port="${hostport#*:}"
sql() { mariadb -u"$user" -h"$host" -P"$port" "$@"; }

cargo build --release --locked -p zhima-server --bin zhima >/dev/null
ZHIMA="${CARGO_TARGET_DIR:-target}/release/zhima"
work="$(mktemp -d)"
trap 'rm -rf "$work"; sql -e "DROP DATABASE IF EXISTS zhima_bench_small; DROP DATABASE IF EXISTS zhima_bench_full" || true' EXIT

# fill DB with USERS users, TX transactions and LOG log rows (MariaDB's
# sequence engine makes the rows)
fill() {
  local db=$1 users=$2 tx=$3 log=$4
  sql -e "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db CHARACTER SET utf8mb4"
  sql "$db" <<SQL
SET time_zone = '+08:00';
CREATE TABLE users (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, openid varchar(40) NOT NULL UNIQUE,
  username varchar(200) NOT NULL UNIQUE, passwd varchar(50), avatar_url varchar(500), email varchar(200),
  status varchar(20), role int, city varchar(100), province varchar(100), country varchar(100),
  gender tinyint, language varchar(5), last_active_type varchar(50), last_active_time datetime,
  create_time datetime, last_update datetime) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE transactions (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, member_id int, type varchar(20),
  description text, amount float, currency varchar(4), valid_from date, valid_until date,
  created_on datetime) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE tb_log (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, type varchar(20), code int,
  message text, created_on timestamp NULL DEFAULT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO users (id, openid, username, passwd, email, status, role, gender, language, create_time)
  SELECT seq, CONCAT('o-', seq), CONCAT('会员 ', seq), IF(seq % 10 = 0, CONCAT('pw-', seq), 'password123'),
         IF(seq % 3 = 0, NULL, CONCAT('m', seq, '@example.com')), IF(seq % 50 = 0, 'INVALID', 'OK'),
         1, seq % 3, 'zh_CN', '2016-01-01 10:00:00' + INTERVAL seq MINUTE
  FROM seq_1_to_$users;
INSERT INTO transactions (id, member_id, type, amount, currency, valid_from, valid_until, created_on)
  SELECT seq, (seq % $users) + 1, '1M MEMBERSHIP', 200, 'CNY',
         '2018-01-01' + INTERVAL (seq DIV $users) MONTH,
         '2018-01-01' + INTERVAL (seq DIV $users) + 1 MONTH - INTERVAL 1 DAY,
         '2018-01-01 12:00:00' + INTERVAL (seq DIV $users) MONTH
  FROM seq_1_to_$tx;
INSERT INTO tb_log (id, type, code, message, created_on)
  SELECT seq, IF(seq % 20 = 0, 'NOT_OK', IF(seq % 97 = 0, 'INFO', 'OPEN')), 0,
         CONCAT('Welcome 会员 ', (seq % ($users + 50)) + 1, ' - QR V2'),
         '2018-01-01 08:00:00' + INTERVAL (seq * 3) MINUTE
  FROM seq_1_to_$log;
SQL
}

# time ONE zhima command: prints "seconds peak-MiB"
timed() {
  /usr/bin/time -f "%e %M" -o "$work/time" "$ZHIMA" "$@" >"$work/out" 2>"$work/err" || {
    cat "$work/out" "$work/err" >&2
    exit 1
  }
  read -r secs kib <"$work/time"
  echo "$secs $((kib / 1024))"
}

declare -A result
run() { # run SIZE TARGET-NAME URL
  local size=$1 name=$2 url=$3 from="$MARIADB/zhima_bench_$1"
  export ZHIMA_DATABASE__URL="$url" ZHIMA_LOG__LEVEL=warn ZHIMA_TIMEZONE=Asia/Shanghai
  export ZHIMA_QR__SIGNING_KEY=0707070707070707070707070707070707070707070707070707070707070707
  "$ZHIMA" migrate >/dev/null
  result[$size,$name,dry]=$(timed import zhima-legacy --from "$from" --dry-run)
  result[$size,$name,import]=$(timed import zhima-legacy --from "$from")
  grep -E "^(members|payments|log|passwords)" "$work/out" | sed "s/^/  $size $name: /"
  result[$size,$name,again]=$(timed import zhima-legacy --from "$from")
  grep -q "nothing changed" "$work/out" || { echo "the second run changed something" >&2; cat "$work/out" >&2; exit 1; }
}

echo "filling MariaDB (small: 1k/10k/100k, full: 10k/100k/1M)…"
fill zhima_bench_small 1000 10000 100000
fill zhima_bench_full 10000 100000 1000000

targets=(sqlite)
for size in small full; do
  run "$size" sqlite "sqlite://$work/$size.db"
done
if [ -n "${TEST_ZHIMA_POSTGRES_URL:-}" ]; then
  targets+=(postgres)
  for size in small full; do
    psql "$TEST_ZHIMA_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS zhima_bench_$size" -c "CREATE DATABASE zhima_bench_$size" >/dev/null
    base="${TEST_ZHIMA_POSTGRES_URL%%\?*}"; query="${TEST_ZHIMA_POSTGRES_URL#"$base"}"
    run "$size" postgres "${base%/*}/zhima_bench_$size$query"
    psql "$TEST_ZHIMA_POSTGRES_URL" -qc "DROP DATABASE zhima_bench_$size" >/dev/null || true
  done
fi

printf '\n%-9s %-7s %14s %14s %9s\n' target step "small s/MiB" "full s/MiB" "ratio s"
for t in "${targets[@]}"; do
  for step in dry import again; do
    read -r s1 m1 <<<"${result[small,$t,$step]}"
    read -r s2 m2 <<<"${result[full,$t,$step]}"
    ratio=$(awk -v a="$s1" -v b="$s2" 'BEGIN { printf "%.1f", (a > 0 ? b / a : 0) }')
    printf '%-9s %-7s %8s / %-4s %8s / %-4s %8s\n' "$t" "$step" "$s1" "$m1" "$s2" "$m2" "${ratio}x"
  done
done
