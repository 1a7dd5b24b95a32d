#!/usr/bin/env bash
# Checks the architecture invariants a machine can check (docs/ARCHITECTURE.md):
# dependencies point one way, and the domain stays pure.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
forbid() { # forbid PACKAGE DEP...
  local pkg=$1; shift
  local tree
  tree=$(cargo tree -p "$pkg" -e normal --prefix none --format '{p}' 2>/dev/null | awk '{print $1}' | sort -u)
  for dep in "$@"; do
    if grep -qx "$dep" <<<"$tree"; then
      echo "architecture: $pkg must not depend on $dep (cargo tree -p $pkg -i $dep)"
      fail=1
    fi
  done
}

# The domain is pure: no database, web framework, runtime or hardware.
forbid zhima-domain diesel actix-web actix-rt tokio r2d2 rppal libsqlite3-sys pq-sys reqwest
# Only zhima-http and zhima-server know actix; nothing below http knows it.
forbid zhima-storage actix-web tokio rppal
forbid zhima-oauth actix-web rppal
forbid zhima-door-hardware actix-web diesel zhima-storage r2d2
# The application layer knows no web framework.
forbid zhima-app actix-web actix-rt actix-http
# Nothing depends on the server.
for pkg in zhima-domain zhima-storage zhima-oauth zhima-door-hardware zhima-app zhima-http; do
  forbid "$pkg" zhima-server
done
# The domain never reads the clock (clippy's disallowed-methods, crates/domain/clippy.toml,
# does this too; this grep also catches a use behind a macro).
if grep -rnE 'Utc::now|Local::now|SystemTime::now|Instant::now' crates/domain/src; then
  echo "architecture: crates/domain must take time as a parameter"
  fail=1
fi

# The door's admission is a use case of the app layer: its steps (verify a
# code, evaluate standing, write the access log) appear in no front end.
if grep -nE 'qr::verify|evaluate\(|record_access|start_unlock' \
    crates/http/src/door.rs crates/server/src/scanner.rs; then
  echo "architecture: the door's admission belongs to zhima-app (entrance.rs), not to a front end"
  fail=1
fi

# So is every other use case: the HTTP crate reaches storage only for the
# pool's and the outbox's gauges (/metrics) and the pending migrations
# (/readyz); members,
# API keys, wallets and logins go through zhima-app.
if grep -rnE 'store\.[a-z_]+\(' crates/http/src | grep -vE 'store\.(pool_state|pending_migrations|outbox_counts)\('; then
  echo "architecture: zhima-http calls storage only for /metrics and /readyz; use cases belong to zhima-app"
  fail=1
fi

# The CLI's administration (keys, partners, passwords, deactivation,
# gifts) goes through zhima-app too.
if grep -nE 'store\.(create_api_key|revoke_api_key|list_api_keys|set_password|set_deactivated|grant_tokens|oauth_clients|remove_oauth_client|set_oauth_client_pkce)\(' \
    crates/server/src/main.rs; then
  echo "architecture: the CLI's administration belongs to zhima-app (admin.rs, wallet.rs)"
  fail=1
fi

if [ "$fail" -ne 0 ]; then exit 1; fi
echo "architecture invariants hold"
