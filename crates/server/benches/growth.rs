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
//! - `GET` of the long-standing member;
//! - then, logged in to the staff console as an admin, each console page
//!   (dashboard, member search by name and by status, a member's page, the
//!   access log unfiltered
//!   and by member, passes, door, admin, audit log, the member page), the
//!   same number of times each.
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
    pages: Vec<(&'static str, (Duration, Duration))>,
}

/// The admin who logs in to the console in the benchmark.
const CONSOLE_ADMIN: (&str, &str) = ("bench-admin", "bench-console-2026");

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
        span: None,
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
    // an admin for the console, made after the copies (which copy member 1)
    let store = Store::open(db.url(), &StoreOptions::default()).unwrap();
    let admin = OpenId::parse(CONSOLE_ADMIN.0).unwrap();
    store
        .create_member(
            &NewMember {
                openid: admin.clone(),
                nickname: NickName::parse(CONSOLE_ADMIN.0).unwrap(),
                rfid: None,
                tags: Tags::from_stored("MEMBER,ADMIN").unwrap(),
                profile: Profile::default(),
            },
            None,
            now,
        )
        .unwrap();
    store
        .set_password(&admin, CONSOLE_ADMIN.1, false, now)
        .unwrap();
    drop(store);
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
        let cookie = console_login(&base).await;
        let per_page = requests.div_ceil(8).max(50);
        let mut pages = Vec::new();
        for (name, path) in console_pages(n, &mut rng) {
            let mut times = Vec::with_capacity(per_page);
            for i in 0..=per_page {
                let path = path(i);
                let t0 = Instant::now();
                let res = http
                    .get(format!("{base}{path}"))
                    .header("Cookie", &cookie)
                    .header("Accept-Language", "zh-CN")
                    .send()
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                let body = res.bytes().await.unwrap();
                let took = t0.elapsed();
                assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
                if i > 0 {
                    times.push(took); // the first request of a page warms it
                }
            }
            pages.push((name, p(times)));
        }
        Row {
            members: n,
            events: n * EVENTS_PER_MEMBER + heavy,
            seed_secs,
            get: p(get),
            pay: p(pay),
            scan: p(scan),
            heavy: p(heavy_get),
            pages,
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
    println!();
    println!("console pages, p50 / p99 ms (logged in as an admin, Chinese):");
    print!("| page |");
    for r in &rows {
        print!(" {} members |", r.members);
    }
    println!();
    println!("|---|{}", "---|".repeat(rows.len()));
    for (i, (name, _)) in first.pages.iter().enumerate() {
        print!("| {name} |");
        for r in &rows {
            let (p50, p99) = r.pages[i].1;
            print!(" {:.2} / {:.2} |", ms(p50), ms(p99));
        }
        println!();
    }
    let worst = rows
        .iter()
        .flat_map(|r| {
            r.pages
                .iter()
                .map(move |(name, (_, p99))| (r.members, *name, *p99))
        })
        .max_by_key(|(_, _, p99)| *p99);
    if let Some((members, name, p99)) = worst {
        println!(
            "slowest console p99: {name} at {members} members, {:.2} ms",
            ms(p99)
        );
    }
}

/// Logs the benchmark's admin in through the console's form: the session
/// cookie (`name=value`).
async fn console_login(base: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = http
        .get(format!("{base}/console/login"))
        .send()
        .await
        .unwrap();
    let planted = cookie_of(&res, "zhima_console_csrf");
    let page = res.text().await.unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let res = http
        .post(format!("{base}/console/login"))
        .header("Cookie", format!("zhima_console_csrf={planted}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("nickname", CONSOLE_ADMIN.0),
            ("password", CONSOLE_ADMIN.1),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let session = (status == 303).then(|| cookie_of(&res, "zhima_session"));
    let Some(session) = session else {
        panic!(
            "the console login failed: {status} {}",
            res.text().await.unwrap_or_default()
        );
    };
    format!("zhima_session={session}")
}

/// The value of the cookie `name` a response sets.
fn cookie_of(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_owned()
}

type PagePath = Box<dyn Fn(usize) -> String>;

/// The console pages measured, each with the path of its i-th request
/// (random members and prefixes for the pages that name one).
fn console_pages(n: u64, rng: &mut Lcg) -> Vec<(&'static str, PagePath)> {
    let members: Vec<u64> = (0..4096).map(|_| 2 + rng.below(n)).collect();
    let m = move |i: usize| members[i % members.len()];
    let m2 = m.clone();
    vec![
        ("dashboard", Box::new(|_| "/console".to_owned()) as PagePath),
        (
            "member search (nickname prefix)",
            Box::new(move |i| format!("/console/members?q=grow+{}", m(i) % 1000)),
        ),
        (
            "member search, status OK",
            Box::new(|_| "/console/members?status=OK".to_owned()),
        ),
        (
            "member search, status Not OK (none match: a full scan window)",
            Box::new(|_| "/console/members?status=NOT_OK".to_owned()),
        ),
        (
            "a member's page",
            Box::new(move |i| format!("/console/members/{}", m2(i))),
        ),
        ("access log", Box::new(|_| "/console/log".to_owned())),
        (
            "access log of a member",
            Box::new(move |i| format!("/console/log?member={}", 2 + (i as u64 * 7919) % n)),
        ),
        ("passes", Box::new(|_| "/console/passes".to_owned())),
        ("door", Box::new(|_| "/console/door".to_owned())),
        ("admin", Box::new(|_| "/console/admin".to_owned())),
        ("audit log", Box::new(|_| "/console/audit".to_owned())),
        ("member page (/me)", Box::new(|_| "/me".to_owned())),
    ]
}
