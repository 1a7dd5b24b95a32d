//! How request latency grows with the size of the database.
//!
//! For each member count (default 1,000, 10,000 and 100,000) a throwaway
//! database is filled with that many members (one `1M MEMBERSHIP` payment
//! each) and ten granted door entries per member (so 1,000,000 access events
//! at 100,000 members), plus one long-standing member with `HEAVY` entries
//! (default 10,000: a member who opens the door every day for 27 years).
//! Then the real `zhima` binary serves it, and one connection sends
//! requests one after the other:
//! - `GET /api/v1.0/member/openid/{openid}` of random members;
//! - `PATCH … {"op": "add"}` payments for random members;
//! - `POST /api/v1.0/door/scan` of random members (no hold, no replay window);
//! - `GET` of the long-standing member.
//!
//! `cargo bench -p zhima-server --bench growth [-- REQUESTS HEAVY SIZES…]`
//! (defaults 2000, 10000, then 1000 10000 100000). SQLite by default,
//! PostgreSQL when `TEST_ZHIMA_POSTGRES_URL` is set. Every row of one run is
//! measured on the same machine, one size after the other; the ratios to
//! the first size are the result.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure is a crash

mod common;

use common::percentile;
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

const EVENTS_PER_MEMBER: u64 = 10;

/// A small deterministic generator (the runs must be comparable).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

struct Row {
    members: u64,
    events: u64,
    seed_secs: f64,
    get: (Duration, Duration),
    pay: (Duration, Duration),
    scan: (Duration, Duration),
    heavy: (Duration, Duration),
}

/// Fills the database: member 1 is the long-standing member (made through
/// the store, so its row is a real one), members 2..=n+1 copy its columns.
fn seed(db: &TestDatabase, n: u64, heavy: u64) -> (String, Signer) {
    let store = Store::open(db.url(), &StoreOptions::default()).unwrap();
    store.migrate().unwrap();
    let now = Utc::now();
    let (_, key) = store
        .create_api_key(
            "growth",
            &Scopes::parse("member:read,member:write,door:open").unwrap(),
            now,
        )
        .unwrap();
    let new = NewMember {
        openid: OpenId::parse("heavy").unwrap(),
        nickname: NickName::parse("heavy").unwrap(),
        rfid: None,
        tags: Tags::default_new_member(),
        profile: Profile::default(),
    };
    let paid = NewPayment {
        pay_index: PayIndex::parse("heavy-pay").unwrap(),
        amount: Fen::parse_yuan("200").unwrap(),
        pay_type: "1M MEMBERSHIP".into(),
        paid_at: now,
        until_days: None,
    };
    store.create_member(&new, Some(&paid), now).unwrap();
    drop(store);

    let t = now.timestamp();
    let year = 365 * 86_400;
    // a recursive CTE counts on both backends
    let count = |limit: u64| {
        format!("WITH RECURSIVE s(i) AS (SELECT CAST(0 AS BIGINT) UNION ALL SELECT i + 1 FROM s WHERE i < {})", limit - 1)
    };
    db.execute(&format!(
        "{} INSERT INTO members (openid, nickname, nickname_key, tags, password_hash, \
         must_change_password, created_at, updated_at) \
         SELECT 'grow-' || i, 'grow ' || i, 'grow ' || i, m.tags, m.password_hash, \
         m.must_change_password, m.created_at, m.updated_at FROM s, members m WHERE m.id = 1",
        count(n)
    ))
    .unwrap();
    db.execute(&format!(
        "{} INSERT INTO payments (member_id, pay_index, amount_fen, pay_type, paid_at, recorded_at) \
         SELECT 2 + i, 'grow-pay-' || i, 20000, '1M MEMBERSHIP', {t} - 86400, {t} FROM s",
        count(n)
    ))
    .unwrap();
    // ten entries per member over the past year, in time order
    let events = n * EVENTS_PER_MEMBER;
    db.execute(&format!(
        "{} INSERT INTO access_events (at, door, method, outcome, reason, member_id) \
         SELECT {t} - {year} + (i * {year}) / {events}, 'front', 'qr', 'granted', 'qr_ok', 2 + (i % {n}) FROM s",
        count(events)
    ))
    .unwrap();
    // the long-standing member: one entry a day, going back `heavy` days
    db.execute(&format!(
        "{} INSERT INTO access_events (at, door, method, outcome, reason, member_id) \
         SELECT {t} - 86400 * (i + 1), 'front', 'qr', 'granted', 'qr_ok', 1 FROM s",
        count(heavy)
    ))
    .unwrap();
    db.execute("ANALYZE").unwrap();

    let seed = [7u8; 32];
    let signer = Signer::from_seed(KeyId::parse("1").unwrap(), &seed);
    (key, signer)
}

fn measure(n: u64, heavy: u64, requests: usize) -> Row {
    let db = TestDatabase::new().unwrap();
    let started = Instant::now();
    let (key, signer) = seed(&db, n, heavy);
    let seed_secs = started.elapsed().as_secs_f64();

    let port = common::process::free_port();
    let mut extra = vec![("ZHIMA_HTTP__WORKERS", "1")];
    extra.extend(common::OPEN_DOOR_LIMITS);
    let mut server = common::process::serve(db.url(), port, &extra);
    let base = format!("http://127.0.0.1:{port}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let row = rt.block_on(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        common::process::wait_ready(&http, &base).await;
        let mut rng = Lcg(n);
        let now = Utc::now();
        let timed = |req: reqwest::RequestBuilder| {
            let req = req.bearer_auth(&key);
            async move {
                let t0 = Instant::now();
                let res = req.send().await.unwrap();
                let body: serde_json::Value = res.json().await.unwrap();
                let took = t0.elapsed();
                assert_eq!(body["errno"], "1000", "{body}");
                took
            }
        };
        let mut get = Vec::new();
        let mut pay = Vec::new();
        let mut scan = Vec::new();
        let mut heavy_get = Vec::new();
        // warm up the connection and the server's caches
        for _ in 0..50 {
            timed(http.get(format!("{base}/api/v1.0/member/openid/heavy"))).await;
        }
        for i in 0..requests {
            let m = rng.below(n);
            get.push(timed(http.get(format!("{base}/api/v1.0/member/openid/grow-{m}"))).await);
            if i % 4 == 0 {
                let m = rng.below(n);
                pay.push(
                    timed(
                        http.patch(format!("{base}/api/v1.0/member/openid/grow-{m}"))
                            .json(&json!({"op": "add", "data": {"paidTime": "201803121929",
                                "payIndex": format!("grow-extra-{i}"), "CNYAmount": "1", "payType": "DONATION"}})),
                    )
                    .await,
                );
                let m = rng.below(n);
                let code = qr::issue(
                    &signer,
                    zhima_domain::ids::MemberId(2 + m as i64),
                    now - chrono::Duration::minutes(1),
                    now + chrono::Duration::days(20),
                );
                scan.push(
                    timed(http.post(format!("{base}/api/v1.0/door/scan")).json(&json!({"code": code})))
                        .await,
                );
                heavy_get.push(timed(http.get(format!("{base}/api/v1.0/member/openid/heavy"))).await);
            }
        }
        let p = |mut v: Vec<Duration>| {
            v.sort();
            (percentile(&v, 0.5), percentile(&v, 0.99))
        };
        Row {
            members: n,
            events: n * EVENTS_PER_MEMBER + heavy,
            seed_secs,
            get: p(get),
            pay: p(pay),
            scan: p(scan),
            heavy: p(heavy_get),
        }
    });
    let _ = server.kill();
    let _ = server.wait();
    row
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let requests = args.first().copied().unwrap_or(2000) as usize;
    let heavy = args.get(1).copied().unwrap_or(10_000);
    let mut sizes: Vec<u64> = args.iter().skip(2).copied().collect();
    if sizes.is_empty() {
        sizes = vec![1_000, 10_000, 100_000];
    }
    let backend = if std::env::var_os("TEST_ZHIMA_POSTGRES_URL").is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "growth on {backend}: {requests} GETs, {} payments, {} scans and {} GETs of a member with {heavy} entries per size, one connection, server 1 worker",
        requests.div_ceil(4),
        requests.div_ceil(4),
        requests.div_ceil(4)
    );
    let rows: Vec<Row> = sizes.iter().map(|&n| measure(n, heavy, requests)).collect();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("| members | access events | seeded in | GET member p50 / p99 ms | payment p50 / p99 ms | door/scan p50 / p99 ms | GET long-standing member p50 / p99 ms |");
    println!("|---|---|---|---|---|---|---|");
    let first = &rows[0];
    for r in &rows {
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        println!(
            "| {} | {} | {:.1} s | {:.2} / {:.2} ({:.2}×) | {:.2} / {:.2} ({:.2}×) | {:.2} / {:.2} ({:.2}×) | {:.2} / {:.2} |",
            r.members,
            r.events,
            r.seed_secs,
            ms(r.get.0),
            ms(r.get.1),
            ratio(r.get.0, first.get.0),
            ms(r.pay.0),
            ms(r.pay.1),
            ratio(r.pay.0, first.pay.0),
            ms(r.scan.0),
            ms(r.scan.1),
            ratio(r.scan.0, first.scan.0),
            ms(r.heavy.0),
            ms(r.heavy.1),
        );
    }
    println!("(× = p50 relative to the first size)");
}
