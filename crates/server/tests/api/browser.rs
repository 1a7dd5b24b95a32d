//! The console in a real browser (Debian's Chromium through chromedriver,
//! headless): the journeys a person takes, each checked on the page and in
//! the database. Screenshots go to `TEST_ZHIMA_SCREENSHOTS` (or the
//! temporary directory).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

use crate::support::browser::{screenshot_dir, Browser};
use crate::support::{add_member, spawn_app};
use zhima_domain::time::Clock as _;

/// Journeys 7 and 3, and the login half of 5: staff log in on a phone-sized
/// window, the dashboard shows in English, the language switch turns every
/// visible string to Chinese and back, and after logout the console sends
/// the browser to the login page.
#[actix_web::test]
async fn staff_log_in_switch_language_and_log_out_in_chromium() {
    let Some(browser) = Browser::start(390, 844).await else {
        return;
    };
    let app = spawn_app().await;
    add_member(
        &app,
        "desk-b",
        "Desk",
        "MEMBER,STAFF",
        Some("front-desk-2026"),
    );
    let shots = screenshot_dir();

    browser.goto(&format!("{}/console", app.address)).await;
    assert!(
        browser.url().await.ends_with("/console/login"),
        "{}",
        browser.url().await
    );
    // Chromium asks for English (--lang=en-US)
    let text = browser.text().await;
    assert!(text.contains("Log in to zhima"), "{text}");
    browser
        .screenshot(&shots.join("console-login-en.png"))
        .await;

    browser.fill("#nickname", "desk").await;
    browser.fill("#password", "wrong-password").await;
    browser.click("button[type=submit]").await;
    assert!(
        browser.shows("Login failed").await,
        "{}",
        browser.text().await
    );

    browser.fill("#nickname", "desk").await;
    browser.fill("#password", "front-desk-2026").await;
    browser.click("main button[type=submit]").await;
    assert!(browser.reaches("/console").await, "{}", browser.url().await);
    let text = browser.text().await;
    assert!(
        text.contains("Dashboard") && text.contains("Entries today"),
        "{text}"
    );
    assert!(text.contains("Desk"), "{text}");
    browser
        .screenshot(&shots.join("console-dashboard-en.png"))
        .await;

    browser.click("a[hreflang='zh-CN']").await;
    assert!(browser.shows("概览").await, "{}", browser.text().await);
    let text = browser.text().await;
    assert!(text.contains("概览") && text.contains("今日进门"), "{text}");
    for english in ["Dashboard", "Entries today", "Log out", "Door"] {
        assert!(
            !text.contains(english),
            "{english:?} left on the Chinese page: {text}"
        );
    }
    browser
        .screenshot(&shots.join("console-dashboard-zh.png"))
        .await;
    browser.click("a[hreflang='en']").await;
    assert!(browser.shows("Dashboard").await, "{}", browser.text().await);

    // the member search, from the navigation
    browser.click("nav.main a[href='/console/members']").await;
    assert!(browser.reaches("/console/members").await);
    browser.fill("#q", "de").await;
    browser.click("form[role=search] button").await;
    assert!(browser.shows("desk-b").await, "{}", browser.text().await);
    browser
        .screenshot(&shots.join("console-members-en.png"))
        .await;
    browser.click("td a").await;
    assert!(
        browser.shows("Member number").await,
        "{}",
        browser.text().await
    );
    browser
        .screenshot(&shots.join("console-member-en.png"))
        .await;

    // journey 3: unlock the door from the door page, with a reason
    let before = app.door.unlock_count();
    browser.click("nav.main a[href='/console/door']").await;
    assert!(browser.reaches("/console/door").await);
    browser.fill("#seconds", "2").await;
    browser.fill("#reason", "courier at the door").await;
    browser.click("main button[type=submit]").await;
    assert!(
        browser.shows("The door is unlocked").await,
        "{}",
        browser.text().await
    );
    browser.screenshot(&shots.join("console-door-en.png")).await;
    let events = app
        .store
        .access_events(zhima_storage::access::EventQuery {
            since: None,
            before: None,
            limit: 5,
            ..Default::default()
        })
        .unwrap();
    assert!(
        events.iter().any(|e| e.event.reason == "console_unlock"
            && e.event.detail.contains("Desk")
            && e.event.detail.contains("courier at the door")),
        "{events:?}"
    );
    for _ in 0..100 {
        if app.door.unlock_count() > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(app.door.unlock_count() > before, "the relay never released");

    browser.click("form.logout button").await;
    assert!(
        browser.reaches("/console/login").await,
        "{}",
        browser.url().await
    );
    browser.goto(&format!("{}/console", app.address)).await;
    assert!(
        browser.url().await.ends_with("/console/login"),
        "the console opened after logout"
    );
}

/// The QR codes a PNG `data:` URI (an `<img src>`) holds.
fn decode_data_uri(uri: &str) -> Vec<String> {
    use base64::Engine as _;
    let b64 = uri
        .strip_prefix("data:image/png;base64,")
        .unwrap_or_else(|| panic!("not a PNG data URI: {uri:.60}"));
    let png = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let img = image::load_from_memory(&png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    prepared
        .detect_grids()
        .iter()
        .filter_map(|g| g.decode().ok().map(|(_, text)| text))
        .collect()
}

/// Logs in through the form of the login page.
async fn log_in(browser: &Browser, app: &crate::support::TestApp, nickname: &str, password: &str) {
    browser
        .goto(&format!("{}/console/login", app.address))
        .await;
    browser.fill("#nickname", nickname).await;
    browser.fill("#password", password).await;
    browser.click("main button[type=submit]").await;
}

async fn log_out(browser: &Browser) {
    browser.click("form.logout button").await;
    assert!(
        browser.reaches("/console/login").await,
        "{}",
        browser.url().await
    );
}

/// Journeys 1 and 2: staff find a member and record a cash payment (a
/// double click records it once) and the member turns OK; staff issue a
/// day pass whose QR code opens the door at `/api/v1.0/door/scan`, and the
/// access log page shows the entry.
#[actix_web::test]
async fn staff_take_a_payment_and_issue_a_day_pass_that_opens_the_door_in_chromium() {
    let Some(browser) = Browser::start(1280, 900).await else {
        return;
    };
    let app = spawn_app().await;
    add_member(
        &app,
        "desk-j1",
        "Desk",
        "MEMBER,STAFF",
        Some("front-desk-2026"),
    );
    add_member(&app, "payer-j1", "Mei Payer", "MEMBER", None);
    let shots = screenshot_dir();
    log_in(&browser, &app, "desk", "front-desk-2026").await;
    assert!(browser.reaches("/console").await, "{}", browser.url().await);

    // journey 1: search, open, record a cash payment with a double click
    browser.click("nav.main a[href='/console/members']").await;
    browser.fill("#q", "mei").await;
    browser.click("form[role=search] button").await;
    assert!(browser.shows("Mei Payer").await, "{}", browser.text().await);
    browser.click("td a").await;
    assert!(browser.shows("Not OK").await, "{}", browser.text().await);
    browser.click("#plan option[value='1M MEMBERSHIP']").await;
    browser.fill("#amount", "200").await;
    browser.double_click("form.pay button[type=submit]").await;
    assert!(
        browser.shows("OK").await && browser.url().await.contains("done="),
        "{}",
        browser.url().await
    );
    assert!(browser.shows("Payment recorded").await || browser.shows("already recorded").await);
    let record = app
        .store
        .member(zhima_storage::MemberKey::OpenId(
            &zhima_domain::ids::OpenId::parse("payer-j1").unwrap(),
        ))
        .unwrap()
        .unwrap();
    assert_eq!(record.payments.len(), 1, "{:?}", record.payments);
    assert_eq!(record.payments[0].amount.to_string(), "200.00");
    assert_eq!(record.payments[0].pay_type, "1M MEMBERSHIP");
    let text = browser.text().await;
    assert!(text.contains("OK") && !text.contains("Not OK"), "{text}");
    // the timeline shows the month the payment grants, as the current span
    assert!(
        text.contains("2018-03-12 20:00 2018-04-12 20:00 membership (now)"),
        "{text}"
    );
    browser.resize(1280, 2400).await;
    browser
        .screenshot(&shots.join("console-member-paid-en.png"))
        .await;
    browser.resize(1280, 900).await;

    // journey 2: a day pass, its QR code scanned at the door
    browser.click("nav.main a[href='/console/passes']").await;
    assert!(browser.reaches("/console/passes").await);
    browser.fill("#visitor", "Ada Guest").await;
    browser.fill("#pass_amount", "50").await;
    browser.click("main form button[type=submit]").await;
    assert!(browser.shows("Ada Guest").await, "{}", browser.text().await);
    browser.screenshot(&shots.join("console-pass-en.png")).await;
    let src = browser.attribute(".pass img", "src").await;
    let codes = decode_data_uri(&src);
    assert_eq!(codes.len(), 1, "{codes:?}");
    let before = app.door.unlock_count();
    let answer = app
        .send(
            "POST",
            "/api/v1.0/door/scan",
            Some(&app.door_key),
            Some(serde_json::to_vec(&serde_json::json!({ "code": codes[0] })).unwrap()),
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["errno"], "1000", "{:?}", answer.body);
    for _ in 0..100 {
        if app.door.unlock_count() > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        app.door.unlock_count() > before,
        "the pass did not open the door"
    );
    let pass_id = browser.attribute(".pass dd a", "href").await;
    let pass_id = pass_id.rsplit('/').next().unwrap().to_owned();

    browser.click("nav.main a[href='/console/log']").await;
    assert!(browser.reaches("/console/log").await);
    let text = browser.text().await;
    assert!(
        text.lines()
            .any(|l| l.contains(&format!("#{pass_id}")) && l.contains("granted")),
        "the pass's entry is not in the log: {text}"
    );
    browser.screenshot(&shots.join("console-log-en.png")).await;

    // the dashboard shows the payment and the entry
    browser.click("nav.main a[href='/console']").await;
    assert!(browser.shows("Latest payments").await);
    let text = browser.text().await;
    assert!(
        text.contains("Mei Payer") && text.contains("Ada Guest"),
        "{text}"
    );
    browser
        .screenshot(&shots.join("console-dashboard-busy-en.png"))
        .await;
}

/// Journey 4: a member on the default password cannot log in; an admin sets
/// a password; the member logs in, lands on their page, sees their QR code
/// and changes the password there.
#[actix_web::test]
async fn a_member_gets_a_password_from_an_admin_and_changes_it_on_their_page_in_chromium() {
    let Some(browser) = Browser::start(390, 844).await else {
        return;
    };
    let app = spawn_app().await;
    add_member(
        &app,
        "admin-j4",
        "Boss",
        "MEMBER,ADMIN",
        Some("admin-pass-2026"),
    );
    let answer = app
        .post(
            "/api/v1.0/member/new",
            &serde_json::json!({
                "openid": "member-j4",
                "basicInfo": {"nickName": "Lin"},
                "paymentInfo": {"paidTime": "201803121929", "payIndex": "j4-1",
                                "CNYAmount": "200", "payType": "1M MEMBERSHIP"}
            }),
        )
        .await;
    let id = crate::support::expect_errno(&answer, "1000")["data"]["new_id"]
        .as_i64()
        .unwrap();
    let shots = screenshot_dir();

    log_in(
        &browser,
        &app,
        "lin",
        zhima_domain::password::DEFAULT_PASSWORD,
    )
    .await;
    assert!(
        browser.shows("Login failed").await,
        "{}",
        browser.text().await
    );

    log_in(&browser, &app, "boss", "admin-pass-2026").await;
    assert!(browser.reaches("/console").await);
    browser
        .goto(&format!("{}/console/members/{id}", app.address))
        .await;
    assert!(
        browser.shows("no password yet").await,
        "{}",
        browser.text().await
    );
    browser.fill("#new_password", "lin-first-2026").await;
    browser
        .click("form[action$='/password'] button[type=submit]")
        .await;
    assert!(
        browser.shows("The password is set").await,
        "{}",
        browser.text().await
    );
    log_out(&browser).await;

    log_in(&browser, &app, "lin", "lin-first-2026").await;
    assert!(browser.reaches("/me").await, "{}", browser.url().await);
    assert!(browser.shows("Lin").await);
    let src = browser.attribute(".qr img", "src").await;
    let codes = decode_data_uri(&src);
    assert_eq!(codes.len(), 1, "{codes:?}");
    let payload = zhima_domain::qr::verify(
        codes[0].as_bytes(),
        &{
            let mut k = zhima_domain::qr::Keyring::new();
            let s = crate::support::test_signer();
            k.insert(s.key_id(), s.verifying_key());
            k
        },
        app.clock.now(),
    )
    .unwrap();
    assert_eq!(payload.member.0, id);
    browser.screenshot(&shots.join("me-en.png")).await;

    // a wrong current password changes nothing
    browser.fill("#current", "not-my-password").await;
    browser.fill("#new", "lin-second-2026").await;
    browser.fill("#again", "lin-second-2026").await;
    browser.click("form[action='/me/password'] button").await;
    assert!(browser.shows("The current password is wrong").await);
    browser.fill("#current", "lin-first-2026").await;
    browser.fill("#new", "lin-second-2026").await;
    browser.fill("#again", "lin-second-2026").await;
    browser.click("form[action='/me/password'] button").await;
    assert!(
        browser.shows("Your password is changed").await,
        "{}",
        browser.text().await
    );
    // still logged in on this browser; the new password logs in, the old not
    browser.goto(&format!("{}/me", app.address)).await;
    assert!(browser.reaches("/me").await);
    log_out(&browser).await;
    log_in(&browser, &app, "lin", "lin-first-2026").await;
    assert!(browser.shows("Login failed").await);
    log_in(&browser, &app, "lin", "lin-second-2026").await;
    assert!(browser.reaches("/me").await);
    browser.click("a[hreflang='zh-CN']").await;
    assert!(browser.shows("修改密码").await);
    browser.screenshot(&shots.join("me-zh.png")).await;
}

/// Journeys 5 and 6: a plain member is refused every console page; a form
/// posted from another site carries no session and opens nothing; after
/// logout the old cookie opens nothing. An admin creates an API key (shown
/// once) and revokes it; the audit log shows both.
#[actix_web::test]
async fn members_are_refused_forged_forms_do_nothing_and_admins_keys_are_audited_in_chromium() {
    let Some(browser) = Browser::start(1280, 900).await else {
        return;
    };
    let app = spawn_app().await;
    add_member(
        &app,
        "plain-j5",
        "Plain",
        "MEMBER",
        Some("member-pass-2026"),
    );
    add_member(
        &app,
        "admin-j6",
        "Boss",
        "MEMBER,ADMIN",
        Some("admin-pass-2026"),
    );
    let shots = screenshot_dir();

    log_in(&browser, &app, "plain", "member-pass-2026").await;
    assert!(browser.reaches("/me").await, "{}", browser.url().await);
    for path in [
        "/console",
        "/console/members",
        "/console/passes",
        "/console/door",
        "/console/log",
        "/console/admin",
        "/console/audit",
    ] {
        browser.goto(&format!("{}{path}", app.address)).await;
        assert!(
            browser.shows("This page is for staff").await,
            "{path}: {}",
            browser.text().await
        );
    }
    log_out(&browser).await;

    // an admin; a form from another site carries no session (SameSite)
    log_in(&browser, &app, "boss", "admin-pass-2026").await;
    assert!(browser.reaches("/console").await);
    let before = app.door.unlock_count();
    let forged = format!(
        "data:text/html,<form method=post action='{}/console/door'><input name=seconds value=5>\
         <input name=reason value=forged><input name=csrf value=forged><button id=go>go</button></form>",
        app.address
    );
    browser.goto(&forged).await;
    browser.click("#go").await;
    assert!(
        browser.reaches("/console/login").await || browser.shows("This form has expired").await,
        "{}",
        browser.url().await
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        app.door.unlock_count(),
        before,
        "a forged form opened the door"
    );
    let events = crate::support::events(&app);
    assert!(
        !events.iter().any(|e| e.event.detail.contains("forged")),
        "{events:?}"
    );

    // journey 6: an API key, shown once, then revoked; both in the audit log
    browser
        .goto(&format!("{}/console/admin", app.address))
        .await;
    assert!(browser.shows("API keys").await, "{}", browser.text().await);
    browser.fill("#key_name", "kiosk").await;
    browser.fill("#key_scopes", "door:open").await;
    browser
        .click("form[action='/console/admin/keys'] button")
        .await;
    assert!(
        browser.shows("API key created").await,
        "{}",
        browser.text().await
    );
    let key = browser.text_of("#secret-1").await.trim().to_owned();
    assert!(key.len() > 20, "{key:?}");
    browser
        .screenshot(&shots.join("console-key-created-en.png"))
        .await;
    let opened = app
        .send(
            "POST",
            "/api/v1.0/open/seconds",
            Some(&key),
            Some(b"{\"seconds\":1}".to_vec()),
        )
        .await;
    assert_eq!(
        opened.body["errno"], "1000",
        "the key shown does not work: {key:?} {:?}",
        opened.body
    );
    browser
        .goto(&format!("{}/console/admin", app.address))
        .await;
    assert!(
        !browser.text().await.contains(&key),
        "the key was shown twice"
    );
    browser
        .click("form[action='/console/admin/keys/revoke'] button[aria-label='Revoke kiosk']")
        .await;
    assert!(
        browser.shows("The key is revoked").await,
        "{}",
        browser.text().await
    );
    let refused = app
        .send(
            "POST",
            "/api/v1.0/open/seconds",
            Some(&key),
            Some(b"{\"seconds\":1}".to_vec()),
        )
        .await;
    assert_ne!(refused.body["errno"], "1000", "a revoked key still opens");
    browser
        .screenshot(&shots.join("console-admin-en.png"))
        .await;

    browser.click("nav.main a[href='/console/audit']").await;
    assert!(
        browser.shows("api_key.revoke").await,
        "{}",
        browser.text().await
    );
    let text = browser.text().await;
    assert!(
        text.contains("api_key.create") && text.contains("API key kiosk"),
        "{text}"
    );
    assert!(text.contains("Boss"), "{text}");
    browser
        .screenshot(&shots.join("console-audit-en.png"))
        .await;
    let log = app.store.audit_log(None, 10).unwrap();
    assert_eq!(
        log.iter()
            .map(|e| e.note.action.as_str())
            .collect::<Vec<_>>(),
        ["api_key.revoke", "api_key.create"],
        "{log:?}"
    );

    // after logout the old cookie opens nothing
    let cookie = browser
        .cookie("zhima_session")
        .await
        .expect("a session cookie");
    log_out(&browser).await;
    browser.set_cookie("zhima_session", &cookie).await;
    browser.goto(&format!("{}/console", app.address)).await;
    assert!(
        browser.reaches("/console/login").await,
        "the old cookie opened {}",
        browser.url().await
    );
}
