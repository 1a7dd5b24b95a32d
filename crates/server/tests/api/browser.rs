//! The console in a real browser (Debian's Chromium through chromedriver,
//! headless): the journeys a person takes, each checked on the page and in
//! the database. Screenshots go to `TEST_ZHIMA_SCREENSHOTS` (or the
//! temporary directory).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

use crate::support::browser::{screenshot_dir, Browser};
use crate::support::{add_member, spawn_app};

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
    browser.click("form.search button").await;
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
