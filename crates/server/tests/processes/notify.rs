//! Notifications from the real binary: the QR code by email opens the door;
//! two sweeps at once send each reminder once; a sweep killed mid-way
//! loses nothing and repeats at most the one email in flight.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

use std::process::{Command, Stdio};
use std::time::Duration;

use zhima_domain::ids::{OpenId, PayIndex};
use zhima_domain::member::{MemberChange, NewPayment, UpdatableField};
use zhima_domain::money::Fen;
use zhima_storage::testing::TestDatabase;
use zhima_storage::{Store, StoreOptions};

use crate::support::process::{create_api_key, free_port, serve, wait_ready, ZHIMA};
use crate::support::smtp::SmtpSink;
use crate::support::{add_member_to, TEST_SEED_HEX};

/// A member with an email address and a month paid at `paid`.
fn member(store: &Store, openid: &str, paid: chrono::DateTime<chrono::Utc>) {
    add_member_to(store, openid, &format!("N {openid}"), "MEMBER", None);
    let id = OpenId::parse(openid).unwrap();
    store
        .update_member(
            &id,
            &[
                MemberChange::text(UpdatableField::Email, &format!("{openid}@example.org"))
                    .unwrap(),
            ],
            paid,
        )
        .unwrap();
    store
        .add_payment(
            &id,
            &NewPayment {
                pay_index: PayIndex::parse(&format!("{openid}-1")).unwrap(),
                amount: Fen::from_yuan(200),
                pay_type: "1M MEMBERSHIP".into(),
                paid_at: paid,
                until_days: None,
                span: None,
            },
            paid,
        )
        .unwrap();
}

/// `zhima ARGS` with the database, the test key and `env`; the child.
fn zhima(url: &str, env: &[(String, String)], args: &[&str]) -> Command {
    let mut cmd = Command::new(ZHIMA);
    cmd.args(args)
        .env("ZHIMA_DATABASE__URL", url)
        .env("ZHIMA_QR__SIGNING_KEY", TEST_SEED_HEX)
        .env("ZHIMA_LOG__LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// `zhima remind --date DATE` run to its end; it must succeed.
fn remind(url: &str, env: &[(String, String)], date: &str) {
    let out = zhima(url, env, &["remind", "--date", date])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every recipient of every message the sink took, sorted.
fn recipients(sink: &SmtpSink) -> Vec<String> {
    let mut to: Vec<String> = sink.received().into_iter().flat_map(|m| m.to).collect();
    to.sort();
    to
}

fn db() -> (TestDatabase, Store) {
    let db = TestDatabase::new().unwrap();
    let store = Store::open(db.url(), &StoreOptions::default()).unwrap();
    store.migrate().unwrap();
    (db, store)
}

#[actix_web::test]
async fn the_qr_code_sent_by_email_opens_the_door() {
    let (db, store) = db();
    let now = chrono::Utc::now();
    member(&store, "qr-m", now - chrono::Duration::days(1));
    let sink = SmtpSink::start(0);
    let out = zhima(
        db.url(),
        &sink.env(),
        &["member", "send-qr", "--openid", "qr-m"],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = sink.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].to, ["qr-m@example.org"]);
    let png = got[0].part_bytes("image/png").expect("a PNG attached");
    let img = image::load_from_memory(&png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let codes: Vec<String> = prepared
        .detect_grids()
        .iter()
        .filter_map(|g| g.decode().ok().map(|(_, t)| t))
        .collect();
    assert_eq!(codes.len(), 1, "{codes:?}");

    // the real server on the same database lets that code in
    let port = free_port();
    let _server = serve(db.url(), port, &[]);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_ready(&http, &base).await;
    let key = create_api_key(db.url(), "door", "door:open");
    let answer: serde_json::Value = http
        .post(format!("{base}/api/v1.0/door/scan"))
        .bearer_auth(&key)
        .json(&serde_json::json!({ "code": codes[0] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["errno"], "1000", "{answer}");

    // a member without an email address is refused, nothing is sent
    add_member_to(&store, "qr-none", "No Mail", "MEMBER", None);
    let out = zhima(
        db.url(),
        &sink.env(),
        &["member", "send-qr", "--openid", "qr-none"],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no email address"));
    assert_eq!(sink.received().len(), 1);
}

/// Members whose month ends in five days: each is due a 7-day reminder.
fn due_members(store: &Store, n: usize) -> chrono::NaiveDate {
    let now = chrono::Utc::now();
    for i in 0..n {
        member(
            store,
            &format!("due-{i:03}"),
            now - chrono::Duration::days(26),
        );
    }
    zhima_domain::time::local_date(now, zhima_domain::time::DEFAULT_TIMEZONE)
}

#[test]
fn two_sweeps_at_once_send_each_reminder_once() {
    let (db, store) = db();
    let today = due_members(&store, 30).format("%Y-%m-%d").to_string();
    let sink = SmtpSink::start(0);
    let children: Vec<_> = (0..2)
        .map(|_| {
            zhima(db.url(), &sink.env(), &["remind", "--date", &today])
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut to = recipients(&sink);
    assert_eq!(to.len(), 30, "{to:?}");
    to.dedup();
    assert_eq!(to.len(), 30, "a reminder went out twice");
    // and again: nothing more
    let out = zhima(db.url(), &sink.env(), &["remind", "--date", &today])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(sink.received().len(), 30);
}

#[test]
fn a_sweep_killed_mid_way_loses_nothing_and_repeats_at_most_one() {
    let (db, store) = db();
    let today = due_members(&store, 20).format("%Y-%m-%d").to_string();
    // a mail server that takes 150 ms a message: the kill lands mid-way
    let sink = SmtpSink::start_with(0, Duration::from_millis(150));
    let mut env = sink.env();
    env.push(("ZHIMA_NOTIFY__LEASE_SECS".into(), "1".into()));
    let mut first = zhima(db.url(), &env, &["remind", "--date", &today])
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while sink.received().len() < 5 && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let before = sink.received().len();
    assert!((5..20).contains(&before), "killed after {before}");
    // after the lease of the dead sender runs out, a new run finishes the job
    std::thread::sleep(Duration::from_millis(2500));
    remind(db.url(), &env, &today);
    let mut to = recipients(&sink);
    let total = to.len();
    to.dedup();
    assert_eq!(to.len(), 20, "an email was lost");
    assert!(
        total <= 21,
        "{total} emails for 20 reminders: more than the one in flight repeated"
    );
}

/// A request a receiver got: its headers (lower-case names) and body.
#[derive(Debug, Clone)]
struct Hooked {
    headers: std::collections::HashMap<String, String>,
    body: Vec<u8>,
    answered: u16,
}

/// A webhook receiver on loopback that answers 500 to its first `fail`
/// requests and 204 after; every request it got.
fn receiver(fail: usize) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<Hooked>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = std::collections::HashMap::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                }
            }
            let len: usize = headers["content-length"].parse().unwrap();
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let mut seen = seen.lock().unwrap();
            let answered = if seen.len() < fail { 500 } else { 204 };
            seen.push(Hooked {
                headers,
                body,
                answered,
            });
            let mut out = stream;
            let _ = out.write_all(
                format!("HTTP/1.1 {answered} X\r\nContent-Length: 0\r\n\r\n").as_bytes(),
            );
        }
    });
    (port, got)
}

/// The documented recipe: HMAC-SHA256 keyed with the secret, over the
/// timestamp, a dot and the body, in lowercase hex after `sha256=`; and the
/// timestamp no older than 5 minutes.
fn verifies(secret: &str, hooked: &Hooked) -> bool {
    use hmac::{Hmac, Mac};
    let ts = &hooked.headers["x-zhima-timestamp"];
    let fresh = ts
        .parse::<i64>()
        .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() <= 300);
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(&hooked.body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    fresh && hooked.headers["x-zhima-signature"] == format!("sha256={hex}")
}

#[actix_web::test]
async fn a_webhook_that_fails_twice_gets_each_event_once_it_succeeds() {
    let (db, _store) = db();
    let (port, got) = receiver(2);
    let env = vec![("ZHIMA_NOTIFY__RETRY_SECS".to_owned(), "1".to_owned())];
    let url = format!("http://127.0.0.1:{port}/hook");
    // an https URL is required unless --insecure-http; unknown events refused
    let refused = zhima(
        db.url(),
        &env,
        &[
            "webhook",
            "add",
            "--url",
            &url,
            "--events",
            "payment.recorded",
        ],
    )
    .output()
    .unwrap();
    assert!(!refused.status.success());
    let refused = zhima(
        db.url(),
        &env,
        &[
            "webhook",
            "add",
            "--url",
            &url,
            "--events",
            "pay.day",
            "--insecure-http",
        ],
    )
    .output()
    .unwrap();
    assert!(String::from_utf8_lossy(&refused.stderr).contains("unknown event"));
    let added = zhima(
        db.url(),
        &env,
        &[
            "webhook",
            "add",
            "--url",
            &url,
            "--events",
            "member.created,payment.recorded",
            "--insecure-http",
        ],
    )
    .output()
    .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let secret = String::from_utf8(added.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned();
    assert_eq!(secret.len(), 64, "{secret}");

    // the real server: a member with a payment is two events
    let port = free_port();
    let _server = serve(
        db.url(),
        port,
        &[
            ("ZHIMA_NOTIFY__RETRY_SECS", "1"),
            ("ZHIMA_NOTIFY__DELIVER_EVERY_SECS", "1"),
        ],
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_ready(&http, &base).await;
    let key = create_api_key(db.url(), "mini", "member:read,member:write");
    let answer: serde_json::Value = http
        .post(format!("{base}/api/v1.0/member/new"))
        .bearer_auth(&key)
        .json(&serde_json::json!({
            "openid": "hooked", "basicInfo": {"nickName": "Hooked"},
            "paymentInfo": {"paidTime": "201803121929", "payIndex": "hook-1",
                            "CNYAmount": "200", "payType": "1M MEMBERSHIP"}
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["errno"], "1000", "{answer}");
    let mut accepted = Vec::new();
    for _ in 0..300 {
        accepted = got
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.answered == 204)
            .cloned()
            .collect();
        if accepted.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all = got.lock().unwrap().clone();
    assert_eq!(accepted.len(), 2, "{all:?}");
    assert_eq!(all.len(), 4, "two refused, two accepted: {all:?}");
    let mut events: Vec<&str> = accepted
        .iter()
        .map(|h| h.headers["x-zhima-event"].as_str())
        .collect();
    events.sort();
    assert_eq!(events, ["member.created", "payment.recorded"]);
    for h in &accepted {
        assert!(verifies(&secret, h), "the signature does not verify: {h:?}");
        assert!(!verifies("another-secret", h));
        let body: serde_json::Value = serde_json::from_slice(&h.body).unwrap();
        assert_eq!(body["event"], h.headers["x-zhima-event"].as_str());
        assert_eq!(body["data"]["member"]["openid"], "hooked");
    }
    // nothing more arrives, and the log says so
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(got.lock().unwrap().len(), 4);
    let log = zhima(db.url(), &env, &["webhook", "log"]).output().unwrap();
    let log = String::from_utf8(log.stdout).unwrap();
    assert_eq!(
        log.lines().filter(|l| l.contains("\tsent\t")).count(),
        2,
        "{log}"
    );
}

/// The one case the outbox cannot make exactly once: the mail server has
/// the message, and the sender dies before it writes "sent". After the
/// lease that one message goes again; every other is sent once.
#[test]
fn a_sender_that_dies_after_handing_over_a_message_repeats_that_one() {
    let (db, store) = db();
    let today = due_members(&store, 3).format("%Y-%m-%d").to_string();
    let sink = SmtpSink::start(0);
    sink.stall_next(Duration::from_secs(4));
    let mut env = sink.env();
    env.push(("ZHIMA_NOTIFY__LEASE_SECS".into(), "1".into()));
    let mut first = zhima(db.url(), &env, &["remind", "--date", &today])
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while sink.received().is_empty() && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    // the message is with the mail server; its sender dies before the answer
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(sink.received().len(), 1);
    std::thread::sleep(Duration::from_millis(2500));
    remind(db.url(), &env, &today);
    let mut to = recipients(&sink);
    assert_eq!(to.len(), 4, "{to:?}");
    let handed_over = sink.received()[0].to.clone();
    assert_eq!(
        to.iter().filter(|t| **t == handed_over[0]).count(),
        2,
        "{to:?}"
    );
    to.dedup();
    assert_eq!(to.len(), 3, "{to:?}");
}
