//! Black-box tests of the door API and the access log: the real server on
//! port 0 driving a simulated door.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

use std::time::{Duration, Instant};

use crate::support::{events, expect_errno, spawn_app, TestApp};
use serde_json::{json, Value};
use zhima_domain::access::{AccessMethod, NewAccessEvent, Outcome};
use zhima_domain::scope::Scopes;
use zhima_door_hardware::simulated::WriteFault;
use zhima_door_hardware::Relay;

const OPEN: &str = "/api/v1.0/open/seconds";

async fn open(app: &TestApp, key: Option<&str>, body: &[u8]) -> crate::support::Answer {
    app.send("POST", OPEN, key, Some(body.to_vec())).await
}

fn reasons(app: &TestApp) -> Vec<String> {
    events(app).into_iter().map(|e| e.event.reason).collect()
}

/// Each unlock of the simulated door: how long the relay stayed released.
fn holds(app: &TestApp) -> Vec<Duration> {
    let relay = app.door.relay_transitions();
    let mut holds = Vec::new();
    for (i, (at, r)) in relay.iter().enumerate() {
        if *r == Relay::Unlocked {
            let locked = relay[i + 1..]
                .iter()
                .find(|(_, r)| *r == Relay::Locked)
                .expect("every unlock ends locked");
            holds.push(locked.0 - *at);
        }
    }
    holds
}

/// Waits (up to 4 s) for an event the door's background task writes.
async fn wait_for_event(app: &TestApp, reason: &str) -> zhima_domain::access::AccessEvent {
    for _ in 0..400 {
        if let Some(e) = events(app).into_iter().find(|e| e.event.reason == reason) {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no {reason} event; log: {:?}", reasons(app));
}

#[actix_web::test]
async fn an_unlock_answers_when_the_door_has_locked_again() {
    let app = spawn_app().await;
    let started = Instant::now();
    let answer = open(&app, Some(&app.door_key), br#"{"seconds": 1}"#).await;
    let took = started.elapsed();
    assert_eq!(answer.status, 200);
    let body = expect_errno(&answer, "1000");
    assert_eq!(body["errmsg"], "Door is now closed");
    assert_eq!(body["data"]["seconds"], 1);
    assert_eq!(body["data"]["extended"], false);
    // the test clock stands still: both times are its "now", in Shanghai time
    assert_eq!(body["data"]["unlockedAt"], "2018-03-12T20:00:00.000+08:00");
    assert_eq!(body["data"]["lockedAt"], "2018-03-12T20:00:00.000+08:00");
    assert!(took >= Duration::from_secs(1), "answered after {took:?}");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");

    let relay: Vec<Relay> = app.door.relay_transitions().iter().map(|t| t.1).collect();
    assert_eq!(relay.first(), Some(&Relay::Locked), "locked at start");
    let held = holds(&app);
    assert_eq!(held.len(), 1);
    assert!(
        held[0] >= Duration::from_secs(1) && held[0] < Duration::from_millis(1500),
        "{held:?}"
    );
    assert_eq!(app.door.relay(), Relay::Locked);

    let log = events(&app);
    assert_eq!(log.len(), 1);
    let e = &log[0].event;
    assert_eq!((e.method, e.outcome), (AccessMethod::Api, Outcome::Granted));
    assert_eq!(e.reason, "api_unlock");
    assert_eq!(e.door, "front");
    assert_eq!(e.detail, "1 s by API key door");
    let door_key = app
        .store
        .list_api_keys()
        .unwrap()
        .into_iter()
        .find(|k| k.name == "door")
        .unwrap();
    assert_eq!(e.api_key, Some(door_key.id));
}

#[actix_web::test]
async fn every_bad_seconds_is_1998_and_the_door_does_not_move() {
    let app = spawn_app().await;
    let cases: [(&[u8], &str); 17] = [
        (br#"{"seconds": "3"}"#, "got a string"),
        (br#"{"seconds": 3.0}"#, "not an integer"),
        (br#"{"seconds": 2.5}"#, "not an integer"),
        (br#"{"seconds": true}"#, "got a boolean"),
        (br#"{"seconds": null}"#, "got null"),
        (br#"{"seconds": [3]}"#, "a list or an object"),
        (br#"{"seconds": -1}"#, "got -1"),
        (br#"{"seconds": 0}"#, "got 0"),
        (br#"{"seconds": 31}"#, "got 31"),
        (br#"{"seconds": 99998}"#, "got 99998"),
        (br#"{"seconds": 1e3}"#, "not an integer"),
        (br#"{}"#, "missing"),
        (br#"{"seconds": 3, "door": "back"}"#, "unexpected field"),
        (b"seconds=3", "not valid JSON"),
        (b"", "empty"),
        (b"[3]", "JSON object"),
        (b"\xff\xfe", "not valid JSON"),
    ];
    for (body, says) in cases {
        let answer = open(&app, Some(&app.door_key), body).await;
        assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(body));
        let b = expect_errno(&answer, "1998");
        let msg = b["errmsg"].as_str().unwrap();
        assert!(
            msg.starts_with(
                "Incorrect call to open the door: seconds must be a JSON integer from 1 to 30"
            ),
            "{msg}"
        );
        assert!(
            msg.contains(says),
            "{}: {msg}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(b["data"], json!({}));
    }
    assert_eq!(app.door.unlock_count(), 0, "the door never moved");
    assert_eq!(app.door.relay(), Relay::Locked);
    // each refusal is logged, with what was wrong
    let log = events(&app);
    assert_eq!(log.len(), cases.len());
    assert!(log
        .iter()
        .all(|e| e.event.outcome == Outcome::Refused && e.event.reason == "bad_seconds"));
    assert!(log.iter().any(|e| e.event.detail.contains("got 99998")));
}

#[actix_web::test]
async fn the_upper_bound_follows_the_configuration() {
    let app = crate::support::spawn_app_with(&[("ZHIMA_DOOR__MAX_UNLOCK_SECS", "2")]).await;
    let answer = open(&app, Some(&app.door_key), br#"{"seconds": 3}"#).await;
    let b = expect_errno(&answer, "1998");
    assert!(b["errmsg"].as_str().unwrap().contains("from 1 to 2"));
    assert_eq!(app.door.unlock_count(), 0);
}

#[actix_web::test]
async fn without_the_door_scope_nothing_moves() {
    let app = spawn_app().await;
    let (_, revoked) = app
        .store
        .create_api_key(
            "old-door",
            &Scopes::parse("door:open").unwrap(),
            crate::support::default_now(),
        )
        .unwrap();
    app.store
        .revoke_api_key("old-door", crate::support::default_now())
        .unwrap();
    let body = br#"{"seconds": 1}"#;
    for (key, status, errno) in [
        (None, 401, "1401"),
        (Some("zk_0000"), 401, "1401"),
        (Some(revoked.as_str()), 401, "1401"),
        (Some(app.key.as_str()), 403, "1403"),
        (Some(app.read_key.as_str()), 403, "1403"),
    ] {
        let answer = open(&app, key, body).await;
        assert_eq!(answer.status, status, "{key:?}: {}", answer.body);
        expect_errno(&answer, errno);
    }
    // a GET is not an unlock
    let answer = app.send("GET", OPEN, Some(&app.door_key), None).await;
    assert_eq!(answer.status, 405);
    assert_eq!(app.door.unlock_count(), 0);
    assert!(events(&app).is_empty());
    // an admin key may open
    let answer = open(&app, Some(&app.admin_key), body).await;
    expect_errno(&answer, "1000");
    assert_eq!(app.door.unlock_count(), 1);
}

#[actix_web::test]
async fn overlapping_requests_share_one_extended_unlock() {
    let app = spawn_app().await;
    let started = Instant::now();
    let first = open(&app, Some(&app.door_key), br#"{"seconds": 1}"#);
    let second = async {
        // once the first request has the door unlocked
        while app.door.relay() != Relay::Unlocked {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        open(&app, Some(&app.door_key), br#"{"seconds": 2}"#).await
    };
    let (first, second) = tokio::join!(first, second);
    let took = started.elapsed();
    let first = expect_errno(&first, "1000");
    let second = expect_errno(&second, "1000");
    assert_eq!(first["data"]["extended"], false);
    assert_eq!(second["data"]["extended"], true);
    assert_eq!(first["data"]["unlockedAt"], second["data"]["unlockedAt"]);
    assert_eq!(first["data"]["lockedAt"], second["data"]["lockedAt"]);
    // one release, held until the later end (about 0.3 + 2 s); stacking
    // would hold it 1 + 2 s
    let held = holds(&app);
    assert_eq!(held.len(), 1);
    let held = held[0];
    assert!(
        held >= Duration::from_millis(2300) && held < Duration::from_millis(3000),
        "held {held:?}"
    );
    assert!(took < Duration::from_millis(3500), "{took:?}");
    assert_eq!(reasons(&app), ["api_unlock", "api_unlock"]);
}

#[actix_web::test]
async fn a_hardware_fault_answers_1997_and_leaves_the_door_locked() {
    let app = spawn_app().await;
    app.door.fail_writes(WriteFault::Unlock, 1);
    let answer = open(&app, Some(&app.door_key), br#"{"seconds": 1}"#).await;
    assert_eq!(answer.status, 503);
    let b = expect_errno(&answer, "1997");
    assert_eq!(b["errmsg"], "The door hardware failed; the door is locked");
    assert_eq!(app.door.relay(), Relay::Locked);
    assert_eq!(app.door.unlock_count(), 0);
    let fault = wait_for_event(&app, "door_fault").await;
    assert_eq!(fault.event.outcome, Outcome::Fault);
    assert_eq!(fault.event.method, AccessMethod::Door);
    assert!(
        fault.event.detail.starts_with("unlocking: "),
        "{}",
        fault.event.detail
    );

    // a lock that fails at the end of the unlock: not 1000 either, and retried
    app.door.fail_writes(WriteFault::Lock, 1);
    let answer = open(&app, Some(&app.door_key), br#"{"seconds": 1}"#).await;
    expect_errno(&answer, "1997");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(app.door.relay(), Relay::Locked, "the lock was retried");
}

#[actix_web::test]
async fn if_the_access_log_cannot_be_written_the_door_does_not_open() {
    let app = spawn_app().await;
    // the log's table disappears (the database is thrown away afterwards)
    app.db.execute("DROP TABLE access_events").unwrap();
    let answer = open(&app, Some(&app.door_key), br#"{"seconds": 1}"#).await;
    assert_eq!(answer.status, 500, "{}", answer.body);
    expect_errno(&answer, "1500");
    assert_eq!(app.door.unlock_count(), 0, "no log, no unlock");
    assert_eq!(app.door.relay(), Relay::Locked);
}

#[actix_web::test]
async fn the_access_log_lists_newest_first_in_pages() {
    let app = spawn_app().await;
    for minutes in 0..5 {
        let at = crate::support::default_now() + chrono::Duration::minutes(minutes);
        let e = NewAccessEvent::new(
            at,
            "front",
            AccessMethod::Rfid,
            Outcome::Refused,
            "unknown_card",
        )
        .detail(format!("n{minutes}"));
        app.store.record_access(&e).unwrap();
    }
    let get = |q: &str| {
        let path = format!("/api/v1.0/entries{q}");
        let app = &app;
        async move { app.send("GET", &path, Some(&app.admin_key), None).await }
    };
    let page = get("?limit=2").await;
    let page = expect_errno(&page, "1000");
    let details = |p: &Value| -> Vec<String> {
        p["data"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["detail"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(details(&page), ["n4", "n3"]);
    let first = &page["data"]["events"][0];
    assert_eq!(first["time"], "201803122004");
    assert_eq!(first["at"], "2018-03-12T20:04:00+08:00");
    assert_eq!(first["method"], "rfid");
    assert_eq!(first["outcome"], "refused");
    assert_eq!(first["reason"], "unknown_card");
    assert_eq!(first["memberId"], Value::Null);
    let next = page["data"]["next"].as_i64().unwrap();
    let page2 = get(&format!("?limit=2&before={next}")).await;
    let page2 = expect_errno(&page2, "1000");
    assert_eq!(details(&page2), ["n2", "n1"]);
    let next = page2["data"]["next"].as_i64().unwrap();
    let last = get(&format!("?limit=2&before={next}")).await;
    let last = expect_errno(&last, "1000");
    assert_eq!(details(&last), ["n0"]);
    assert_eq!(last["data"]["next"], Value::Null);
    // since is a local YYYYMMDDHHMM, inclusive
    let since = get("?since=201803122003").await;
    assert_eq!(details(&expect_errno(&since, "1000")), ["n4", "n3"]);

    for (q, field) in [
        ("?since=2018-03-12", "since"),
        ("?limit=0", "limit"),
        ("?limit=501", "limit"),
        ("?limit=ten", "limit"),
        ("?before=-4", "before"),
        ("?page=2", "page"),
    ] {
        let answer = get(q).await;
        let b = expect_errno(&answer, "1002");
        assert_eq!(b["data"]["field"], field, "{q}");
    }
    let answer = app
        .send("GET", "/api/v1.0/entries", Some(&app.door_key), None)
        .await;
    assert_eq!(answer.status, 403);
    let answer = app.send("GET", "/api/v1.0/entries", None, None).await;
    assert_eq!(answer.status, 401);
}

#[actix_web::test]
async fn last_active_follows_the_latest_entry_or_payment() {
    let app = spawn_app().await;
    let created = app
        .post(
            "/api/v1.0/member/new",
            &json!({
                "openid": "o-active", "basicInfo": {"nickName": "Active"},
                "paymentInfo": {"paidTime": "201803121929", "payIndex": "PA1",
                                "CNYAmount": "200", "payType": "1M MEMBERSHIP"}
            }),
        )
        .await;
    let id = expect_errno(&created, "1000")["data"]["new_id"]
        .as_i64()
        .unwrap();
    let member = app.get("/api/v1.0/member/openid/o-active").await;
    assert_eq!(
        member.body["memberInfo"]["lastActiveType"],
        "Paid 1M MEMBERSHIP"
    );

    let at = crate::support::default_now() + chrono::Duration::hours(1);
    let entry = NewAccessEvent::new(at, "front", AccessMethod::Qr, Outcome::Granted, "qr_ok")
        .for_member(zhima_domain::ids::MemberId(id));
    app.store.record_access(&entry).unwrap();
    let refused = NewAccessEvent::new(
        at + chrono::Duration::hours(1),
        "front",
        AccessMethod::Qr,
        Outcome::Refused,
        "expired",
    )
    .for_member(zhima_domain::ids::MemberId(id));
    app.store.record_access(&refused).unwrap();
    let member = app.get("/api/v1.0/member/openid/o-active").await;
    assert_eq!(member.body["memberInfo"]["lastActiveTime"], "201803122100");
    assert_eq!(member.body["memberInfo"]["lastActiveType"], "Open the door");
}

#[actix_web::test]
async fn a_door_left_open_after_locking_is_logged_once() {
    let app = crate::support::spawn_app_with(&[("ZHIMA_DOOR__HELD_OPEN_SECS", "1")]).await;
    let answer = open(&app, Some(&app.door_key), br#"{"seconds": 1}"#).await;
    expect_errno(&answer, "1000");
    // someone props the door open after it locked
    app.door.set_switch(zhima_door_hardware::DoorSwitch::Open);
    let held = wait_for_event(&app, "door_held_open").await;
    assert_eq!(held.event.outcome, Outcome::Event);
    assert_eq!(held.event.method, AccessMethod::Door);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let count = reasons(&app)
        .iter()
        .filter(|r| *r == "door_held_open")
        .count();
    assert_eq!(count, 1, "reported once per episode");
}

#[actix_web::test]
async fn readyz_fails_while_the_door_cannot_lock_or_migrations_are_pending() {
    let app = spawn_app().await;
    let ready = app.send("GET", "/readyz", None, None).await;
    assert_eq!(ready.status, 200);
    assert_eq!(
        ready.body,
        serde_json::json!({"status": "ready", "database": "ok", "migrations": "current", "door": "ok"})
    );

    // the relay refuses to lock at the end of an unlock
    app.door.fail_writes(WriteFault::Lock, u32::MAX);
    let answer = open(&app, Some(&app.door_key), br#"{"seconds": 1}"#).await;
    expect_errno(&answer, "1997");
    let ready = app.send("GET", "/readyz", None, None).await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body["status"], "not_ready");
    assert_eq!(ready.body["door"], "lock_failing");
    // the hardware recovers; the retry locks; ready again
    app.door.heal();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(app.door.relay(), Relay::Locked);
    assert_eq!(app.send("GET", "/readyz", None, None).await.status, 200);

    // a migration this binary expects is missing from the database
    app.db
        .execute("DELETE FROM __diesel_schema_migrations WHERE version = '20261122000003'")
        .unwrap();
    let ready = app.send("GET", "/readyz", None, None).await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body["migrations"], "pending");
    assert_eq!(ready.body["database"], "ok");
}

#[actix_web::test]
async fn metrics_count_requests_unlocks_and_refusals_without_identifiers() {
    let app = spawn_app().await;
    let refused = app.send("GET", "/metrics", None, None).await;
    assert_eq!(refused.status, 401);
    let refused = app.send("GET", "/metrics", Some(&app.door_key), None).await;
    assert_eq!(refused.status, 403);
    expect_errno(
        &open(&app, Some(&app.door_key), br#"{"seconds": 1}"#).await,
        "1000",
    );
    expect_errno(
        &open(&app, Some(&app.door_key), br#"{"seconds": -1}"#).await,
        "1998",
    );
    app.get("/api/v1.0/member/openid/secret-openid-777").await;
    // invented methods: one OTHER label, never the client's text
    for i in 0..50 {
        let method = format!("X{}{i}", "Y".repeat(2000));
        let res = app
            .client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}/healthz", app.address),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 405);
    }

    let res = app
        .client
        .get(format!("{}/metrics", app.address))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = res.text().await.unwrap();
    for line in [
        r#"zhima_http_requests_total{method="POST",route="/api/v1.0/open/seconds",status="200"} 2"#,
        r#"zhima_http_requests_total{method="GET",route="/metrics",status="401"} 1"#,
        r#"zhima_http_requests_total{method="GET",route="/metrics",status="403"} 1"#,
        r#"zhima_http_request_duration_seconds_count{method="POST",route="/api/v1.0/open/seconds"} 2"#,
        r#"zhima_oauth_token_responses_total 0"#,
        r#"zhima_door_unlocked 0"#,
        r#"zhima_door_ready 1"#,
        r#"zhima_http_requests_total{method="OTHER",route="/healthz",status="405"} 50"#,
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
    }
    let access: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("zhima_access_events_total{"))
        .collect();
    assert_eq!(access.len(), 2, "{text}");
    assert!(access
        .iter()
        .any(|l| l.contains(r#"outcome="granted""#) && l.ends_with(" 1")));
    assert!(access
        .iter()
        .any(|l| l.contains(r#"outcome="refused""#) && l.ends_with(" 1")));
    assert!(text.contains(r#"route="/api/v1.0/member/openid/{openid}""#));
    assert!(!text.contains("secret-openid-777"));
    assert!(!text.contains(&app.door_key) && !text.contains(&app.admin_key));
    assert!(text.contains(r#"zhima_db_pool_connections{state="max"}"#));
    assert!(!text.contains("YYYY"), "a client's method became a label");
    assert!(text.len() < 64 * 1024, "{} bytes of metrics", text.len());
}
