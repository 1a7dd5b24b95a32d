//! A mixed workload against the real `zhima` binary: 80 % GET member by
//! openid, 10 % PATCH update, 5 % payments (PATCH op:add), 5 % door scans
//! (the answer does not wait for the hold to end; the replay window is off,
//! so every scan is checked and logged).
//!
//! `cargo bench -p zhima-server --bench mixed_load [-- SECONDS CONNECTIONS MEMBERS]`
//! (defaults 60, 64, 2000). SQLite by default, PostgreSQL when
//! `TEST_ZHIMA_POSTGRES_URL` is set (a throwaway database either way). The
//! server runs as its own process (2 workers) and the load generator in this
//! one, on the same machine; the server's peak resident memory is read from
//! `/proc/<pid>/status` (VmHWM).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure is a crash

mod common;

use common::percentile;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;
use zhima_domain::ids::{NickName, OpenId, PayIndex};
use zhima_domain::member::{NewMember, NewPayment, Profile};
use zhima_domain::money::Fen;
use zhima_domain::qr::{self, KeyId, Signer};
use zhima_domain::scope::Scopes;
use zhima_domain::tags::Tags;
use zhima_storage::testing::TestDatabase;
use zhima_storage::{Store, StoreOptions};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Get,
    Update,
    Payment,
    Scan,
}

fn vm_hwm_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let secs = args.first().copied().unwrap_or(60);
    let conns = args.get(1).copied().unwrap_or(64) as usize;
    let members = args.get(2).copied().unwrap_or(2000) as usize;

    let db = TestDatabase::new().unwrap();
    let store = Store::open(db.url(), &StoreOptions::default()).unwrap();
    store.migrate().unwrap();
    let now = Utc::now();
    let (_, key) = store
        .create_api_key(
            "load",
            &Scopes::parse("member:read,member:write,door:open").unwrap(),
            now,
        )
        .unwrap();
    let seed = [7u8; 32];
    let signer = Signer::from_seed(KeyId::parse("1").unwrap(), &seed);
    let mut codes = Vec::with_capacity(members);
    for i in 0..members {
        let new = NewMember {
            openid: OpenId::parse(&format!("load-{i}")).unwrap(),
            nickname: NickName::parse(&format!("load {i}")).unwrap(),
            rfid: None,
            tags: Tags::default_new_member(),
            profile: Profile::default(),
        };
        let paid = NewPayment {
            pay_index: PayIndex::parse(&format!("load-pay-{i}")).unwrap(),
            amount: Fen::parse_yuan("200").unwrap(),
            pay_type: "1M MEMBERSHIP".into(),
            paid_at: now,
            until_days: None,
            span: None,
        };
        let record = store.create_member(&new, Some(&paid), now).unwrap();
        codes.push(qr::issue(
            &signer,
            record.member.id,
            now - chrono::Duration::minutes(1),
            now + chrono::Duration::days(20),
        ));
    }
    drop(store);

    let port = common::process::free_port();
    let mut server = common::process::serve(db.url(), port, &common::OPEN_DOOR_LIMITS);
    let pid = server.id();
    let base = format!("http://127.0.0.1:{port}");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let results = rt.block_on(async move {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(conns)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        common::process::wait_ready(&http, &base).await;
        let codes = Arc::new(codes);
        let counter = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let end = start + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let (http, base, key, codes, counter) = (
                http.clone(),
                base.clone(),
                key.clone(),
                codes.clone(),
                counter.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut out: Vec<(Kind, Duration, bool)> = Vec::new();
                while Instant::now() < end {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let member = (n * 7919) % codes.len();
                    let openid = format!("load-{member}");
                    let kind = match n % 20 {
                        0..=15 => Kind::Get,
                        16 | 17 => Kind::Update,
                        18 => Kind::Payment,
                        _ => Kind::Scan,
                    };
                    let req = match kind {
                        Kind::Get => http.get(format!("{base}/api/v1.0/member/openid/{openid}")),
                        Kind::Update => http
                            .patch(format!("{base}/api/v1.0/member/openid/{openid}"))
                            .json(&json!({"op": "update", "data": {"avatarUrl": format!("https://a.example/{n}.png")}})),
                        Kind::Payment => http
                            .patch(format!("{base}/api/v1.0/member/openid/{openid}"))
                            .json(&json!({"op": "add", "data": {"paidTime": "201803121929",
                                "payIndex": format!("load-extra-{n}"), "CNYAmount": "1", "payType": "DONATION"}})),
                        Kind::Scan => http
                            .post(format!("{base}/api/v1.0/door/scan"))
                            .json(&json!({"code": codes[member]})),
                    };
                    let t0 = Instant::now();
                    let ok = match req.bearer_auth(&key).send().await {
                        Ok(res) if res.status().is_success() => res
                            .json::<serde_json::Value>()
                            .await
                            .is_ok_and(|v| v["errno"] == "1000"),
                        _ => false,
                    };
                    out.push((kind, t0.elapsed(), ok));
                }
                out
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        (all, start.elapsed())
    });
    let peak_kb = vm_hwm_kb(pid);
    let _ = server.kill();
    let _ = server.wait();
    let (all, elapsed) = results;

    let backend = if db.is_postgres() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "mixed_load on {backend}: {secs} s, {conns} connections, {members} members, server 2 workers; server peak RSS {:.1} MB",
        peak_kb as f64 / 1024.0
    );
    println!("| requests | count | req/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|");
    let row = |name: &str, filter: &dyn Fn(Kind) -> bool| {
        let mut times: Vec<Duration> = all
            .iter()
            .filter(|(k, _, _)| filter(*k))
            .map(|(_, d, _)| *d)
            .collect();
        let errors = all.iter().filter(|(k, _, ok)| filter(*k) && !ok).count();
        times.sort();
        println!(
            "| {name} | {} | {:.0} | {:.2} | {:.2} | {errors} |",
            times.len(),
            times.len() as f64 / elapsed.as_secs_f64(),
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
        );
    };
    row("all", &|_| true);
    row("GET member", &|k| k == Kind::Get);
    row("PATCH update", &|k| k == Kind::Update);
    row("PATCH payment", &|k| k == Kind::Payment);
    row("POST door/scan", &|k| k == Kind::Scan);
}
