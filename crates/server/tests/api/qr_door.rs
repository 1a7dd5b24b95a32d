//! Member QR codes end to end: the signed image link, the PNG, and the door
//! that reads it (and RFID cards), on the real server with a simulated door.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

use std::time::Duration;

use crate::support::{
    default_now, events, expect_errno, spawn_app, spawn_app_with, test_signer, TestApp,
};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use zhima_domain::access::{AccessMethod, Outcome};
use zhima_domain::ids::{MemberId, OpenId};
use zhima_domain::qr::{self, KeyId, Signer};
use zhima_domain::time::Clock as _;

struct Image {
    status: u16,
    headers: reqwest::header::HeaderMap,
    bytes: Vec<u8>,
}

async fn fetch(app: &TestApp, url: &str) -> Image {
    let res = app
        .client
        .get(format!("{}{url}", app.address))
        .send()
        .await
        .unwrap();
    Image {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        bytes: res.bytes().await.unwrap().to_vec(),
    }
}

fn decode(png: &[u8]) -> Vec<String> {
    let img = image::load_from_memory(png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    prepared
        .detect_grids()
        .iter()
        .filter_map(|g| g.decode().ok().map(|(_, text)| text))
        .collect()
}

/// Creates a member (with a payment body if given); returns id and qrcode_url.
async fn member(app: &TestApp, openid: &str, nick: &str, payment: Option<Value>) -> (i64, String) {
    let mut body = json!({"openid": openid, "basicInfo": {"nickName": nick}});
    if let Some(p) = payment {
        body["paymentInfo"] = p;
    }
    let answer = app.post("/api/v1.0/member/new", &body).await;
    let data = expect_errno(&answer, "1000")["data"].clone();
    (
        data["new_id"].as_i64().unwrap(),
        data["qrcode_url"].as_str().unwrap().to_owned(),
    )
}

fn month(index: &str) -> Value {
    json!({"paidTime": "201803121929", "payIndex": index, "CNYAmount": "200", "payType": "1M MEMBERSHIP"})
}

async fn scan(app: &TestApp, code: &str) -> crate::support::Answer {
    app.send(
        "POST",
        "/api/v1.0/door/scan",
        Some(&app.door_key),
        Some(serde_json::to_vec(&json!({ "code": code })).unwrap()),
    )
    .await
}

fn code_for(id: i64, now: DateTime<Utc>, until: DateTime<Utc>) -> String {
    qr::issue(&test_signer(), MemberId(id), now, until)
}

#[actix_web::test]
async fn a_member_fetches_their_code_and_the_door_opens() {
    let app = spawn_app().await;
    let (id, url) = member(&app, "o-qr", "Qr Member", Some(month("QR1"))).await;
    assert!(
        url.starts_with(&format!("/images/XCJ_{id}.png?1520856000.000000&exp=")),
        "{url}"
    );
    assert!(url.contains("&sig="), "{url}");

    // the link works without any header, as in a WeChat <image> tag
    let image = fetch(&app, &url).await;
    assert_eq!(image.status, 200);
    assert_eq!(image.headers["content-type"], "image/png");
    assert_eq!(image.headers["cache-control"], "private, max-age=60");
    let codes = decode(&image.bytes);
    assert_eq!(codes.len(), 1, "one QR code in the PNG");
    let code = &codes[0];
    assert!(code.len() <= 120, "{code}");
    // valid until the end of the paid month (2018-04-12 19:29 Shanghai)
    let mut keys = qr::Keyring::new();
    keys.insert(test_signer().key_id(), test_signer().verifying_key());
    let payload = qr::verify(code.as_bytes(), &keys, default_now()).unwrap();
    assert_eq!(payload.member, MemberId(id));
    assert_eq!(
        payload.valid_until,
        DateTime::parse_from_rfc3339("2018-04-12T11:29:00Z").unwrap()
    );

    let answer = scan(&app, code).await;
    let body = expect_errno(&answer, "1000");
    assert_eq!(body["errmsg"], "Welcome, Qr Member!");
    assert_eq!(body["data"]["memberId"], id);
    assert_eq!(body["data"]["seconds"], 3);
    assert_eq!(body["data"]["replay"], false);
    assert_eq!(app.door.unlock_count(), 1);
    let log = events(&app);
    assert_eq!(log.len(), 1);
    let e = &log[0].event;
    assert_eq!((e.method, e.outcome), (AccessMethod::Qr, Outcome::Granted));
    assert_eq!(e.reason, "qr_ok");
    assert_eq!(e.member, Some(MemberId(id)));
    assert!(
        !e.detail.contains(code.as_str()),
        "never the code in the log"
    );

    // the scanner sends it again at once: same answer, nothing new
    let again = scan(&app, code).await;
    let body = expect_errno(&again, "1000");
    assert_eq!(body["data"]["replay"], true);
    assert_eq!(events(&app).len(), 1);
    assert_eq!(app.door.unlock_count(), 1);

    // lastActive now follows the entry
    let m = app.get("/api/v1.0/member/openid/o-qr").await;
    assert_eq!(m.body["memberInfo"]["lastActiveType"], "Open the door");
}

#[actix_web::test]
async fn a_member_who_is_not_ok_gets_no_key_and_no_entry() {
    let app = spawn_app().await;
    let (id, url) = member(&app, "o-unpaid", "Unpaid", None).await;
    let image = fetch(&app, &url).await;
    assert_eq!(image.status, 200);
    assert_eq!(image.headers["content-type"], "image/png");
    assert_eq!(image.headers["x-zhima-refusal"], "member_not_ok");
    assert_eq!(image.headers["cache-control"], "no-store");
    assert!(decode(&image.bytes).is_empty(), "no QR code at all");

    // even a well-signed code does not let them in
    let code = code_for(id, default_now(), default_now() + chrono::Duration::days(1));
    let answer = scan(&app, &code).await;
    let body = expect_errno(&answer, "1606");
    assert_eq!(body["errmsg"], "No valid membership, pass or entry today");
    assert_eq!(app.door.unlock_count(), 0);
    let log = events(&app);
    assert_eq!(log[0].event.outcome, Outcome::Refused);
    assert_eq!(log[0].event.reason, "member_not_ok");
    assert_eq!(log[0].event.member, Some(MemberId(id)));

    // deactivated
    let (id2, _) = member(&app, "o-gone", "Gone", Some(month("QR2"))).await;
    app.store
        .set_deactivated(&OpenId::parse("o-gone").unwrap(), true, default_now())
        .unwrap();
    let code = code_for(
        id2,
        default_now(),
        default_now() + chrono::Duration::days(1),
    );
    expect_errno(&scan(&app, &code).await, "1607");
    assert_eq!(app.door.unlock_count(), 0);
}

#[actix_web::test]
async fn forged_altered_expired_and_early_codes_are_refused() {
    let app = spawn_app().await;
    let (id, _) = member(&app, "o-f", "Forger Victim", Some(month("QR3"))).await;
    let now = default_now();
    let good = code_for(id, now, now + chrono::Duration::days(1));

    // one character of the signature changed
    let mut altered = good.clone().into_bytes();
    let last = altered.len() - 1;
    altered[last - 10] = if altered[last - 10] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let altered = String::from_utf8(altered).unwrap();
    expect_errno(&scan(&app, &altered).await, "1602");
    // the member id changed
    let mut fields: Vec<&str> = good.split('.').collect();
    assert_eq!(fields[2], radix36(id));
    fields[2] = "zz";
    let other = fields.join(".");
    expect_errno(&scan(&app, &other).await, "1602");
    // another key
    let stranger = Signer::from_seed(KeyId::parse("2").unwrap(), &[9; 32]);
    let foreign = qr::issue(
        &stranger,
        MemberId(id),
        now,
        now + chrono::Duration::days(1),
    );
    expect_errno(&scan(&app, &foreign).await, "1603");
    // the key id of this server, another key: forged
    let impostor = Signer::from_seed(KeyId::parse("1").unwrap(), &[9; 32]);
    let forged = qr::issue(
        &impostor,
        MemberId(id),
        now,
        now + chrono::Duration::days(1),
    );
    expect_errno(&scan(&app, &forged).await, "1602");
    // expired, and not yet valid
    let expired = code_for(
        id,
        now - chrono::Duration::days(2),
        now - chrono::Duration::minutes(1),
    );
    expect_errno(&scan(&app, &expired).await, "1605");
    let early = code_for(
        id,
        now + chrono::Duration::hours(1),
        now + chrono::Duration::days(1),
    );
    expect_errno(&scan(&app, &early).await, "1604");
    // the old plain-text and random text
    let answer = scan(&app, "XCJ1#1#someone").await;
    let body = expect_errno(&answer, "1601");
    assert_eq!(body["errmsg"], "This is not a member code");

    assert_eq!(app.door.unlock_count(), 0, "nothing opened the door");
    let reasons: Vec<String> = events(&app).into_iter().map(|e| e.event.reason).collect();
    assert_eq!(
        reasons,
        [
            "bad_format",
            "not_yet_valid",
            "expired",
            "bad_signature",
            "unknown_key",
            "bad_signature",
            "bad_signature"
        ]
    );
    // each refusal's detail reads as a sentence naming its reason
    let details: Vec<String> = events(&app).into_iter().map(|e| e.event.detail).collect();
    assert_eq!(details[0], "QR code refused (bad format)");
    assert_eq!(details[3], "QR code refused (bad signature)");
    assert_eq!(details[4], "QR code refused (unknown key)");
    // the good one still works
    expect_errno(&scan(&app, &good).await, "1000");
}

fn radix36(mut n: i64) -> String {
    let mut s = Vec::new();
    while n > 0 {
        s.push(std::char::from_digit((n % 36) as u32, 36).unwrap());
        n /= 36;
    }
    s.iter().rev().collect()
}

#[actix_web::test]
async fn image_links_need_their_signature() {
    let app = spawn_app().await;
    let (id, url) = member(&app, "o-link", "Link", Some(month("QR4"))).await;
    let (other, other_url) = member(&app, "o-link2", "Link Two", Some(month("QR5"))).await;
    let query = url.split_once('?').unwrap().1;
    let sig = query
        .split('&')
        .find_map(|p| p.strip_prefix("sig="))
        .unwrap();
    for bad in [
        format!("/images/XCJ_{id}.png"),
        format!("/images/XCJ_{id}.png?1520856000.000000"),
        format!("/images/XCJ_{other}.png?{query}"),
        url.replace(sig, "AAAAAAAAAAAAAAAAAAAAAA"),
        url.replace("&exp=", "&exp=9"),
        "/images/XCJ_abc.png".to_owned(),
        "/images/../etc/passwd".to_owned(),
    ] {
        let image = fetch(&app, &bad).await;
        assert!(
            image.status == 403 || image.status == 404,
            "{bad}: {}",
            image.status
        );
        if image.status == 403 {
            let body: Value = serde_json::from_slice(&image.bytes).unwrap();
            assert_eq!(body["errno"], "1403", "{bad}");
        }
    }
    assert_eq!(fetch(&app, &other_url).await.status, 200);
    // a link expires (365 days by default)
    app.clock.advance(chrono::Duration::days(366));
    assert_eq!(fetch(&app, &url).await.status, 403);
}

#[actix_web::test]
async fn a_ten_entries_visitor_spends_one_day_per_distinct_day() {
    // 21 scans in a second or so: above the default door-scan burst
    let app = spawn_app_with(&[("ZHIMA_DOOR__SCAN_BURST", "100")]).await;
    let payment = json!({"paidTime": "201803121929", "payIndex": "QR10", "CNYAmount": "350", "payType": "10 ENTRIES"});
    let (id, _) = member(&app, "o-visitor", "Visitor", Some(payment)).await;
    let start = default_now();
    let until = start + chrono::Duration::days(150);
    for day in 0..10 {
        app.clock.set(start + chrono::Duration::days(day));
        let now = app.clock.now();
        let answer = scan(&app, &code_for(id, now, until)).await;
        let body = expect_errno(&answer, "1000");
        assert_eq!(body["data"]["entryDaysLeft"], 9 - day, "day {day}");
        // a second entry the same day is free (a later code: not a replay)
        app.clock.advance(chrono::Duration::hours(2));
        let now = app.clock.now();
        let answer = scan(&app, &code_for(id, now, until)).await;
        let body = expect_errno(&answer, "1000");
        assert_eq!(body["data"]["entryDaysLeft"], 9 - day, "day {day}, again");
    }
    app.clock.set(start + chrono::Duration::days(10));
    let now = app.clock.now();
    let answer = scan(&app, &code_for(id, now, until)).await;
    let body = expect_errno(&answer, "1608");
    assert_eq!(body["errmsg"], "All entry days are used up");
    let granted = events(&app)
        .iter()
        .filter(|e| e.event.outcome == Outcome::Granted)
        .count();
    assert_eq!(granted, 20);
}

#[actix_web::test]
async fn rfid_cards_open_for_members_and_unknown_cards_are_logged() {
    let app = spawn_app().await;
    let (id, _) = member(&app, "o-card", "Card Holder", Some(month("QR6"))).await;
    let answer = app
        .patch(
            "/api/v1.0/member/openid/o-card",
            &json!({"op": "update", "data": {"rfid": "04A1B2C3"}}),
        )
        .await;
    expect_errno(&answer, "1000");
    let tap = |uid: &str| {
        let body = serde_json::to_vec(&json!({ "uid": uid })).unwrap();
        let app = &app;
        async move {
            app.send(
                "POST",
                "/api/v1.0/door/rfid",
                Some(&app.door_key),
                Some(body),
            )
            .await
        }
    };
    let body = expect_errno(&tap("04a1b2c3").await, "1000");
    assert_eq!(body["data"]["memberId"], id);
    assert_eq!(body["errmsg"], "Welcome, Card Holder!");
    expect_errno(&tap("DEADBEEF").await, "1609");
    expect_errno(&tap("not a card!").await, "1609");
    let log = events(&app);
    assert_eq!(log[2].event.reason, "rfid_ok");
    assert_eq!(log[2].event.method, AccessMethod::Rfid);
    assert_eq!(log[1].event.reason, "unknown_card");
    assert_eq!(log[1].event.detail, "card DEADBEEF");
    assert_eq!(app.door.unlock_count(), 1);
}

#[actix_web::test]
async fn scan_requests_are_checked_like_every_other() {
    let app = spawn_app().await;
    for (body, field) in [
        (json!({"code": 5}), "code"),
        (json!({}), "code"),
        (json!({"code": "  "}), "code"),
        (json!({"code": "x", "door": "back"}), "door"),
    ] {
        let answer = app
            .send(
                "POST",
                "/api/v1.0/door/scan",
                Some(&app.door_key),
                Some(serde_json::to_vec(&body).unwrap()),
            )
            .await;
        assert_eq!(expect_errno(&answer, "1002")["data"]["field"], field);
    }
    let body = Some(br#"{"code": "x"}"#.to_vec());
    let answer = app
        .send("POST", "/api/v1.0/door/scan", None, body.clone())
        .await;
    assert_eq!(answer.status, 401);
    let answer = app
        .send("POST", "/api/v1.0/door/scan", Some(&app.key), body)
        .await;
    assert_eq!(answer.status, 403);
    assert!(events(&app).is_empty());
    assert_eq!(app.door.unlock_count(), 0);
}

#[actix_web::test]
async fn the_scanner_on_the_pi_reads_codes_line_by_line() {
    let dir = std::env::temp_dir().join(format!("zhima-scanner-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let device = dir.join("ttyACM0");
    std::fs::write(&device, "").unwrap();
    let app = spawn_app_with(&[("ZHIMA_DOOR__SCANNER", device.to_str().unwrap())]).await;
    let (id, _) = member(&app, "o-scan", "Scanner User", Some(month("QR7"))).await;
    let code = code_for(id, default_now(), default_now() + chrono::Duration::days(1));
    // the scanner types the code and a newline, as a keyboard-mode scanner does
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&device)
        .unwrap();
    writeln!(f, "{code}").unwrap();
    writeln!(f, "garbage").unwrap();
    for _ in 0..100 {
        if events(&app).len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = events(&app);
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[1].event.reason, "qr_ok");
    assert_eq!(log[1].event.member, Some(MemberId(id)));
    assert_eq!(log[1].event.api_key, None, "not through the API");
    assert_eq!(log[0].event.reason, "bad_format");
    assert_eq!(app.door.unlock_count(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[actix_web::test]
async fn door_scans_over_the_rate_limit_answer_429_and_cost_nothing() {
    let app = spawn_app_with(&[
        ("ZHIMA_DOOR__SCAN_PER_SEC", "1"),
        ("ZHIMA_DOOR__SCAN_BURST", "3"),
    ])
    .await;
    let (id, _) = member(&app, "o-rate", "Rate", Some(month("rate-1"))).await;
    let now = app.clock.now();
    let good = code_for(
        id,
        now - chrono::Duration::minutes(1),
        now + chrono::Duration::days(20),
    );
    // a burst of three forged codes is checked and logged...
    for i in 0..3 {
        let answer = scan(&app, &format!("ZM1.1.{i}.garbage")).await;
        assert_eq!(answer.status, 200);
        assert_ne!(answer.body["errno"], "1000");
    }
    assert_eq!(events(&app).len(), 3);
    // ...then the key is over its rate: even a good code waits, and nothing is
    // read, logged or opened
    for path in ["/api/v1.0/door/scan", "/api/v1.0/door/rfid"] {
        let body = if path.ends_with("scan") {
            json!({ "code": good })
        } else {
            json!({ "uid": "0a0b0c0d" })
        };
        let answer = app
            .send(
                "POST",
                path,
                Some(&app.door_key),
                Some(serde_json::to_vec(&body).unwrap()),
            )
            .await;
        assert_eq!(answer.status, 429, "{path}: {}", answer.body);
        assert_eq!(answer.body["errno"], "1429");
        assert_eq!(answer.body["data"]["retryAfter"], 1);
        assert_eq!(answer.headers["retry-after"], "1");
    }
    assert_eq!(events(&app).len(), 3, "a limited request is not logged");
    assert_eq!(app.door.unlock_count(), 0);
    // another key has its own allowance
    let (_, other) = app
        .store
        .create_api_key(
            "side-door",
            &zhima_domain::scope::Scopes::parse("door:open").unwrap(),
            now,
        )
        .unwrap();
    let answer = app
        .send(
            "POST",
            "/api/v1.0/door/scan",
            Some(&other),
            Some(serde_json::to_vec(&json!({ "code": good })).unwrap()),
        )
        .await;
    expect_errno(&answer, "1000");
    assert_eq!(app.door.unlock_count(), 1);
    // a credential that fails authentication is refused before the limit
    let answer = app
        .send(
            "POST",
            "/api/v1.0/door/scan",
            Some("not-a-key"),
            Some(br#"{"code": "x"}"#.to_vec()),
        )
        .await;
    assert_eq!(answer.status, 401);
    // after Retry-After the first key goes again
    actix_web::rt::time::sleep(Duration::from_millis(1100)).await;
    let answer = scan(&app, &format!("{good} ")).await;
    expect_errno(&answer, "1000");
}
