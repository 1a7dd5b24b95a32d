//! Exports in constant memory: the access log of 100,000 and then
//! 1,000,000 entries (and the members and payments beside them) exported by
//! the real `zhima export` to /dev/null, with its wall time and the most
//! memory the process held (VmHWM, read from /proc while it runs).
//!
//! `cargo bench -p zhima-server --bench export [-- SIZES…]` (default
//! 100000 1000000). SQLite by default, PostgreSQL when
//! `TEST_ZHIMA_POSTGRES_URL` is set. The ratios to the first size are the
//! result: time should grow with the rows, memory should not.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure is a crash

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use zhima_storage::testing::TestDatabase;
use zhima_storage::{Store, StoreOptions};

/// The most resident memory of process `pid` so far, in KiB.
fn high_water(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn seed(db: &TestDatabase, entries: u64) {
    let store = Store::open(db.url(), &StoreOptions::default()).unwrap();
    store.migrate().unwrap();
    drop(store);
    let members = (entries / 10).max(1);
    let t = Utc::now().timestamp();
    let count = |n: u64| {
        format!("WITH RECURSIVE s(i) AS (SELECT CAST(0 AS BIGINT) UNION ALL SELECT i + 1 FROM s WHERE i < {})", n - 1)
    };
    db.execute(&format!(
        "{} INSERT INTO members (openid, nickname, nickname_key, tags, password_hash, \
         must_change_password, created_at, updated_at) \
         SELECT 'exp-' || i, 'exp ' || i, 'exp ' || i, 'MEMBER', 'x', TRUE, {t}, {t} FROM s",
        count(members)
    ))
    .unwrap();
    db.execute(&format!(
        "{} INSERT INTO payments (member_id, pay_index, amount_fen, pay_type, paid_at, recorded_at) \
         SELECT 1 + i, 'exp-pay-' || i, 20000, '1M MEMBERSHIP', {t} - 86400, {t} FROM s",
        count(members)
    ))
    .unwrap();
    db.execute(&format!(
        "{} INSERT INTO access_events (at, door, method, outcome, reason, member_id, detail) \
         SELECT {t} - 31536000 + i * 30, 'front', 'qr', 'granted', 'qr_ok', 1 + (i % {members}), 'an entry' FROM s",
        count(entries)
    ))
    .unwrap();
}

/// Runs `zhima export TABLE` to /dev/null: its time and high-water mark.
fn export(url: &str, table: &str) -> (Duration, u64) {
    let started = Instant::now();
    let mut child = Command::new(common::process::ZHIMA)
        .args(["export", table])
        .env("ZHIMA_DATABASE__URL", url)
        .env("ZHIMA_LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut most = 0;
    loop {
        if let Some(kib) = high_water(child.id()) {
            most = most.max(kib);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    (started.elapsed(), most)
}

fn main() {
    let mut sizes: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = vec![100_000, 1_000_000];
    }
    println!("| entries | members | export entries: time / peak RSS | export members: time / peak RSS | export payments: time / peak RSS |");
    println!("|---|---|---|---|---|");
    let mut first: Option<(Duration, u64)> = None;
    for n in sizes {
        let db = TestDatabase::new().unwrap();
        seed(&db, n);
        let entries = export(db.url(), "entries");
        let members = export(db.url(), "members");
        let payments = export(db.url(), "payments");
        let (t0, m0) = *first.get_or_insert(entries);
        println!(
            "| {n} | {} | {:.2} s ({:.2}×) / {} MiB ({:.2}×) | {:.2} s / {} MiB | {:.2} s / {} MiB |",
            n / 10,
            entries.0.as_secs_f64(),
            entries.0.as_secs_f64() / t0.as_secs_f64(),
            entries.1 / 1024,
            entries.1 as f64 / m0 as f64,
            members.0.as_secs_f64(),
            members.1 / 1024,
            payments.0.as_secs_f64(),
            payments.1 / 1024,
        );
    }
    println!("(× = relative to the first size; memory should stay flat)");
}
