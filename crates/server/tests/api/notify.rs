//! Reminders through a real SMTP conversation (the sink in
//! `support/smtp.rs`): the server sweeps on its clock, queues each notice
//! once, and delivers it in the member's language; a renewal leaves the old
//! end without a notice; a temporary refusal is retried until delivered.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

use chrono::Duration;
use serde_json::json;

use crate::support::smtp::{Received, SmtpSink};
use crate::support::{expect_errno, spawn_app_with, TestApp};

async fn notifying_app(sink: &SmtpSink) -> TestApp {
    let port = sink.port.to_string();
    spawn_app_with(&[
        ("ZHIMA_SMTP__HOST", "127.0.0.1"),
        ("ZHIMA_SMTP__PORT", port.as_str()),
        ("ZHIMA_SMTP__TLS", "none"),
        ("ZHIMA_SMTP__FROM", "XinCheJian <door@xinchejian.example>"),
        ("ZHIMA_NOTIFY__REMINDER_DAYS", "7"),
        ("ZHIMA_NOTIFY__SWEEP_AT", "00:00"),
        ("ZHIMA_NOTIFY__SPACE_NAME", "XinCheJian"),
        ("ZHIMA_NOTIFY__DELIVER_EVERY_SECS", "1"),
    ])
    .await
}

/// A member with a month paid at `paid` (YYYYMMDDHHMM, Shanghai).
async fn member(app: &TestApp, openid: &str, nick: &str, email: &str, language: &str, paid: &str) {
    let answer = app
        .post(
            "/api/v1.0/member/new",
            &json!({
                "openid": openid,
                "basicInfo": {"nickName": nick, "email": email, "language": language},
                "paymentInfo": {"paidTime": paid, "payIndex": format!("{openid}-1"),
                                "CNYAmount": "200", "payType": "1M MEMBERSHIP"}
            }),
        )
        .await;
    expect_errno(&answer, "1000");
}

/// The messages that are not receipts (reminders and end notices).
fn notices(got: &[Received]) -> Vec<Received> {
    got.iter()
        .filter(|m| {
            !m.subject().contains("payment received") && !m.subject().contains("已收到付款")
        })
        .cloned()
        .collect()
}

/// The receipts.
fn receipts(got: &[Received]) -> Vec<Received> {
    got.iter()
        .filter(|m| m.subject().contains("payment received") || m.subject().contains("已收到付款"))
        .cloned()
        .collect()
}

/// Waits (up to 10 s) until `n` notices arrived; all notices.
async fn wait_notices(sink: &SmtpSink, n: usize) -> Vec<Received> {
    for _ in 0..200 {
        if notices(&sink.received()).len() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    notices(&sink.received())
}

#[actix_web::test]
async fn each_member_gets_each_notice_once_in_their_language() {
    let sink = SmtpSink::start(0);
    // the server starts on 2018-03-12 20:00 (Shanghai) and sweeps at once
    let app = notifying_app(&sink).await;
    // Ann's month ends on 2018-03-17 (in 5 days): her 7-day reminder is due
    member(&app, "ann", "Ann", "ann@example.org", "en", "201802172000").await;
    // Bo's ends on 2018-03-22 (in 10 days): nothing yet
    member(&app, "bo", "Bo", "bo@example.org", "zh_CN", "201802222000").await;
    // Cy has no email address: counted, never sent
    member(&app, "cy", "Cy", "", "en", "201802152000").await;
    // Eve's month ends with Ann's, but she opted out of reminders (an
    // extension of PATCH op:update); her receipt still comes
    member(&app, "eve", "Eve", "eve@example.org", "en", "201802172000").await;
    let opted = app
        .patch(
            "/api/v1.0/member/openid/eve",
            &json!({"op": "update", "data": {"reminders": false}}),
        )
        .await;
    assert_eq!(
        expect_errno(&opted, "1000")["data"]["updated"],
        json!(["reminders"])
    );
    let refused = app
        .patch(
            "/api/v1.0/member/openid/eve",
            &json!({"op": "update", "data": {"reminders": "no"}}),
        )
        .await;
    expect_errno(&refused, "1002");
    // the members came after the start-up sweep: the next day's sweep finds them
    // each payment's receipt, in the member's language (none for Cy)
    let got = sink.wait_for(3, 10).await;
    let paid = receipts(&got);
    assert_eq!(paid.len(), 3, "{got:?}");
    let ann = paid.iter().find(|m| m.to == ["ann@example.org"]).unwrap();
    assert_eq!(
        ann.subject(),
        "XinCheJian: payment received, 1M MEMBERSHIP 200.00 CNY"
    );
    let text = ann.part("text/plain").unwrap();
    assert!(text.contains("reference ann-1"), "{text}");
    assert!(text.contains("valid until 2018-03-17 20:00"), "{text}");
    let bo = paid.iter().find(|m| m.to == ["bo@example.org"]).unwrap();
    assert_eq!(
        bo.subject(),
        "XinCheJian：已收到付款，1M MEMBERSHIP 200.00 元"
    );

    app.clock.advance(Duration::hours(5)); // 2018-03-13 01:00
    let got = wait_notices(&sink, 1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].to, ["ann@example.org"]);
    assert_eq!(got[0].from, "door@xinchejian.example");
    assert_eq!(
        got[0].subject(),
        "Your membership at XinCheJian ends on 2018-03-17"
    );
    let text = got[0].part("text/plain").unwrap();
    assert!(text.starts_with("Hello Ann,"), "{text}");
    assert!(text.contains("in 4 days"), "{text}");
    let html = got[0].part("text/html").unwrap();
    assert!(html.contains("<html lang=\"en\">"), "{html}");

    // the same day again: nothing more
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(notices(&sink.received()).len(), 1);

    // Bo renews before his reminder; on 2018-03-17 Ann's month ends (her
    // end notice) and Bo's new end (2018-04-22) is far away
    let renewed = app
        .patch(
            "/api/v1.0/member/openid/bo",
            &json!({"op": "add", "data": {"paidTime": "201803130900", "payIndex": "bo-2",
                    "CNYAmount": "200", "payType": "1M MEMBERSHIP"}}),
        )
        .await;
    expect_errno(&renewed, "1000");
    // the renewal's receipt, once, even when the payment is sent again
    let again = app
        .patch(
            "/api/v1.0/member/openid/bo",
            &json!({"op": "add", "data": {"paidTime": "201803130900", "payIndex": "bo-2",
                    "CNYAmount": "200", "payType": "1M MEMBERSHIP"}}),
        )
        .await;
    expect_errno(&again, "1000");
    app.clock.advance(Duration::days(4)); // 2018-03-17 01:00
    let got = wait_notices(&sink, 2).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1].to, ["ann@example.org"]);
    assert_eq!(got[1].subject(), "Your membership at XinCheJian has ended");

    // Bo's old end passes with nothing; his new one gets its reminder, in Chinese
    app.clock.advance(Duration::days(5)); // 2018-03-22
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        notices(&sink.received()).len(),
        2,
        "a notice for the old period"
    );
    app.clock.advance(Duration::days(26)); // 2018-04-17: 5 days before 04-22
    let got = wait_notices(&sink, 3).await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[2].to, ["bo@example.org"]);
    assert_eq!(
        got[2].subject(),
        "你在XinCheJian的会员资格将于 2018-04-22 到期"
    );
    let text = got[2].part("text/plain").unwrap();
    assert!(text.starts_with("Bo，你好："), "{text}");

    // Cy never got anything; the outbox shows what was sent
    assert!(sink.received().iter().all(|m| m.to != ["cy@example.org"]));
    assert!(notices(&sink.received())
        .iter()
        .all(|m| m.to != ["eve@example.org"]));
    assert_eq!(
        receipts(&sink.received()).len(),
        4,
        "four payments, four receipts"
    );
    let counts = app.store.outbox_counts().unwrap();
    assert_eq!(
        (counts.sent, counts.pending, counts.failed),
        (7, 0, 0),
        "{counts:?}"
    );
}

#[actix_web::test]
async fn a_refused_email_is_retried_with_backoff_until_it_is_delivered_once() {
    // the mail server refuses the first two attempts (451)
    let sink = SmtpSink::start(2);
    let app = notifying_app(&sink).await;
    member(&app, "dee", "Dee", "dee@example.org", "en", "201802172000").await;
    app.clock.advance(Duration::hours(5));
    // the first two attempts refused; the retries wait a minute, then two
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(sink.received().len() < 2, "{:?}", sink.received());
    for _ in 0..4 {
        app.clock.advance(Duration::minutes(2));
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    }
    // the receipt and the reminder, each once
    let got = sink.wait_for(2, 10).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((receipts(&got).len(), notices(&got).len()), (1, 1));
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(sink.received().len(), 2, "delivered twice");
    let counts = app.store.outbox_counts().unwrap();
    assert_eq!((counts.sent, counts.pending), (2, 0), "{counts:?}");
    // /metrics shows it
    let res = app
        .client
        .get(format!("{}/metrics", app.address))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    assert!(
        text.contains("zhima_notifications{state=\"sent\"} 2"),
        "{text}"
    );
}

#[actix_web::test]
async fn a_mail_server_outage_slows_nothing_and_keeps_the_server_ready() {
    // nothing listens on this port: every delivery fails to connect
    let port = crate::support::process::free_port().to_string();
    let app = spawn_app_with(&[
        ("ZHIMA_SMTP__HOST", "127.0.0.1"),
        ("ZHIMA_SMTP__PORT", port.as_str()),
        ("ZHIMA_SMTP__TLS", "none"),
        ("ZHIMA_SMTP__FROM", "door@xinchejian.example"),
        ("ZHIMA_NOTIFY__DELIVER_EVERY_SECS", "1"),
    ])
    .await;
    member(&app, "out", "Out", "out@example.org", "en", "201803121900").await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let started = std::time::Instant::now();
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200, "{:?}", ready.body);
    let read = app.get("/api/v1.0/member/openid/out").await;
    expect_errno(&read, "1000");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "requests waited for the mail server: {:?}",
        started.elapsed()
    );
    // the receipt waits in the outbox for the mail server to come back
    let counts = app.store.outbox_counts().unwrap();
    assert_eq!((counts.pending, counts.sent), (1, 0), "{counts:?}");
}

#[actix_web::test]
async fn a_space_can_word_its_emails_itself() {
    let dir = std::env::temp_dir().join(format!("zhima-words-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("en")).unwrap();
    std::fs::write(
        dir.join("en/reminder_subject.txt"),
        "Time to renew at {space}: {date}\n",
    )
    .unwrap();
    let sink = SmtpSink::start(0);
    let port = sink.port.to_string();
    let dir_text = dir.to_string_lossy().into_owned();
    let app = spawn_app_with(&[
        ("ZHIMA_SMTP__HOST", "127.0.0.1"),
        ("ZHIMA_SMTP__PORT", port.as_str()),
        ("ZHIMA_SMTP__TLS", "none"),
        ("ZHIMA_SMTP__FROM", "door@xinchejian.example"),
        ("ZHIMA_NOTIFY__SWEEP_AT", "00:00"),
        ("ZHIMA_NOTIFY__SPACE_NAME", "XinCheJian"),
        ("ZHIMA_NOTIFY__DELIVER_EVERY_SECS", "1"),
        ("ZHIMA_NOTIFY__TEMPLATES_DIR", dir_text.as_str()),
    ])
    .await;
    member(&app, "ann", "Ann", "ann@example.org", "en", "201802172000").await;
    app.clock.advance(Duration::hours(5));
    let got = wait_notices(&sink, 1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].subject(), "Time to renew at XinCheJian: 2018-03-17");
    // the strings not overridden stay the built-in ones
    assert!(got[0]
        .part("text/plain")
        .unwrap()
        .contains("Your membership at XinCheJian ends on 2018-03-17"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[actix_web::test]
async fn a_visitor_hears_when_two_entry_days_are_left_and_when_none_are() {
    let sink = SmtpSink::start(0);
    let app = notifying_app(&sink).await;
    // a 10-entry pack bought on 2018-03-01; eight days of entries since
    let answer = app
        .post(
            "/api/v1.0/member/new",
            &json!({
                "openid": "vis", "basicInfo": {"nickName": "Vis", "email": "vis@example.org", "language": "en"},
                "paymentInfo": {"paidTime": "201803011000", "payIndex": "vis-1",
                                "CNYAmount": "350", "payType": "10 ENTRIES"}
            }),
        )
        .await;
    let id = expect_errno(&answer, "1000")["data"]["new_id"]
        .as_i64()
        .unwrap();
    let enter = |day: i64| zhima_domain::access::NewAccessEvent {
        at: crate::support::default_now() - Duration::days(day),
        door: "front".into(),
        method: zhima_domain::access::AccessMethod::Qr,
        outcome: zhima_domain::access::Outcome::Granted,
        reason: "qr_ok".into(),
        member: Some(zhima_domain::ids::MemberId(id)),
        api_key: None,
        detail: String::new(),
    };
    for day in 1..=8 {
        app.store.record_access(&enter(day)).unwrap();
    }
    app.clock.advance(Duration::hours(5)); // the next day's sweep
    let got = wait_notices(&sink, 1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].subject(), "XinCheJian: 2 entry days left");
    // two more days of entries: the pack is used up
    app.store.record_access(&enter(0)).unwrap();
    let mut today = enter(0);
    today.at = crate::support::default_now() + Duration::hours(6);
    app.store.record_access(&today).unwrap();
    app.clock.advance(Duration::days(1));
    let got = wait_notices(&sink, 2).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1].subject(), "XinCheJian: your entry pack is used up");
    // and never again for the same pack
    app.clock.advance(Duration::days(1));
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(notices(&sink.received()).len(), 2);
}
