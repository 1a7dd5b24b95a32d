//! The staff console over HTTP, as a browser without script would use it:
//! cookies and forms by hand, no redirect followed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

use std::collections::HashMap;

use zhima_domain::ids::OpenId;

use crate::support::{add_member, default_now, spawn_app, TestApp};

struct Browser {
    client: reqwest::Client,
    base: String,
    cookies: HashMap<String, String>,
    lang: &'static str,
}

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Browser {
    fn new(app: &TestApp, lang: &'static str) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.address.clone(),
            cookies: HashMap::new(),
            lang,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, method: &str, path: &str, form: Option<&[(&str, &str)]>) -> Page {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "POST" => self.client.post(&url),
            _ => self.client.get(&url),
        };
        req = req
            .header("Accept-Language", self.lang)
            .header("Cookie", self.cookie_header());
        if let Some(form) = form {
            let body: String = form
                .iter()
                .map(|(k, v)| format!("{k}={}", urlencode(v)))
                .collect::<Vec<_>>()
                .join("&");
            req = req
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body);
        }
        let res = req.send().await.unwrap();
        for value in res.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Page {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        }
    }

    async fn log_in(&mut self, nickname: &str, password: &str) -> Page {
        let form = self.send("GET", "/console/login", None).await;
        let csrf = hidden(&form.body, "csrf");
        self.send(
            "POST",
            "/console/login",
            Some(&[
                ("nickname", nickname),
                ("password", password),
                ("csrf", &csrf),
            ]),
        )
        .await
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of the hidden input `name` of a page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

#[actix_web::test]
async fn staff_log_in_see_the_dashboard_in_either_language_and_log_out() {
    let app = spawn_app().await;
    add_member(
        &app,
        "desk-1",
        "Desk",
        "MEMBER,STAFF",
        Some("front-desk-2026"),
    );
    let mut zh = Browser::new(&app, "zh-CN,zh;q=0.9");

    // without a session the console sends you to the login page
    let page = zh.send("GET", "/console", None).await;
    assert_eq!(page.status, 303);
    assert_eq!(page.headers["location"], "/console/login");

    let page = zh.send("GET", "/console/login", None).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<html lang=\"zh-CN\">"), "{}", page.body);
    assert!(page.body.contains("登录芝麻开门"), "{}", page.body);
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert!(!page.body.contains("<script"), "a page with script");

    let page = zh.log_in("desk", "front-desk-2026").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.headers["location"], "/console");
    let set = page.headers["set-cookie"].to_str().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );

    let page = zh.send("GET", "/console", None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("概览") && page.body.contains("今日进门"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Desk"));

    // the language switch: remembered in a cookie, back to the same page
    let page = zh.send("GET", "/lang/en?back=/console", None).await;
    assert_eq!(page.status, 303);
    assert_eq!(page.headers["location"], "/console");
    let page = zh.send("GET", "/console", None).await;
    assert!(page.body.contains("<html lang=\"en\">"));
    assert!(page.body.contains("Dashboard") && page.body.contains("Entries today"));
    assert!(
        !page.body.contains("概览"),
        "Chinese left on the English page"
    );
    // a switch never sends you to another site
    let page = zh
        .send("GET", "/lang/zh-CN?back=//evil.example/", None)
        .await;
    assert_eq!(page.headers["location"], "/console");

    // logging out needs the session's CSRF token
    let dashboard = zh.send("GET", "/console", None).await;
    let csrf = hidden(&dashboard.body, "csrf");
    let stolen = zh.cookies.clone();
    let page = zh
        .send("POST", "/console/logout", Some(&[("csrf", "forged")]))
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(
        zh.send("GET", "/console", None).await.status,
        200,
        "a forged form logged out"
    );
    let page = zh
        .send("POST", "/console/logout", Some(&[("csrf", &csrf)]))
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(page.headers["location"], "/console/login");
    // the old cookie opens nothing
    zh.cookies = stolen;
    let page = zh.send("GET", "/console", None).await;
    assert_eq!(page.status, 303, "the session outlived its logout");
}

#[actix_web::test]
async fn members_default_passwords_and_forged_forms_open_nothing() {
    let app = spawn_app().await;
    add_member(&app, "plain-1", "Plain", "MEMBER", Some("member-pass-2026"));
    add_member(&app, "new-staff", "Fresh", "MEMBER,STAFF", None);
    let mut en = Browser::new(&app, "en-GB,en;q=0.9");

    // a plain member logs in to their own page and is refused the console
    // (403), every page of it
    let page = en.log_in("plain", "member-pass-2026").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.headers["location"], "/me");
    let page = en.send("GET", "/console", None).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("This page is for staff"));
    assert_eq!(en.send("GET", "/me", None).await.status, 200);
    en.cookies.clear();

    // staff still on the default password: the same refusal as a wrong password
    let wrong = en.log_in("fresh", "not-the-password").await;
    let default = en
        .log_in("fresh", zhima_domain::password::DEFAULT_PASSWORD)
        .await;
    assert_eq!(wrong.status, 200);
    assert_eq!(default.status, 200);
    assert!(default.body.contains("Login failed"), "{}", default.body);
    assert_eq!(
        wrong.body.replace(&hidden(&wrong.body, "csrf"), ""),
        default.body.replace(&hidden(&default.body, "csrf"), ""),
        "the default password answered differently from a wrong one"
    );

    // a login form without its token, or with another browser's, does nothing
    app.store
        .set_password(
            &OpenId::parse("new-staff").unwrap(),
            "fresh-pass-2026",
            false,
            default_now(),
        )
        .unwrap();
    let page = en
        .send(
            "POST",
            "/console/login",
            Some(&[("nickname", "fresh"), ("password", "fresh-pass-2026")]),
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("This form has expired"));
    let mut other = Browser::new(&app, "en");
    let theirs = other.send("GET", "/console/login", None).await;
    let page = en
        .send(
            "POST",
            "/console/login",
            Some(&[
                ("nickname", "fresh"),
                ("password", "fresh-pass-2026"),
                ("csrf", &hidden(&theirs.body, "csrf")),
            ]),
        )
        .await;
    assert_eq!(page.status, 403, "another browser's token was accepted");
    assert!(
        !en.cookies.keys().any(|k| k.contains("session")),
        "{:?}",
        en.cookies
    );
    // and with its token it works
    assert_eq!(en.log_in("fresh", "fresh-pass-2026").await.status, 303);
    assert_eq!(en.send("GET", "/console", None).await.status, 200);
}

#[actix_web::test]
async fn staff_find_a_member_and_read_their_page_and_members_cannot() {
    let app = spawn_app().await;
    add_member(
        &app,
        "desk-s",
        "Desk",
        "MEMBER,STAFF",
        Some("front-desk-2026"),
    );
    add_member(
        &app,
        "wx-annabel",
        "Annabel",
        "MEMBER",
        Some("member-pass-2026"),
    );
    add_member(&app, "wx-ann", "Ann", "MEMBER", None);
    let openid = OpenId::parse("wx-annabel").unwrap();
    app.store
        .add_payment(
            &openid,
            &zhima_domain::member::NewPayment {
                pay_index: zhima_domain::ids::PayIndex::parse("desk-cash-1").unwrap(),
                amount: zhima_domain::money::Fen::parse_yuan("200").unwrap(),
                pay_type: "1M MEMBERSHIP".into(),
                paid_at: default_now() - chrono::Duration::days(1),
                until_days: None,
                span: None,
            },
            default_now(),
        )
        .unwrap();
    let annabel = app
        .store
        .member(zhima_storage::MemberKey::OpenId(&openid))
        .unwrap()
        .unwrap();

    let mut en = Browser::new(&app, "en");
    en.log_in("desk", "front-desk-2026").await;
    let page = en.send("GET", "/console/members?q=ANN", None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let (ann, belle) = (
        page.body.find(">Ann<").unwrap(),
        page.body.find(">Annabel<").unwrap(),
    );
    assert!(ann < belle, "by nickname: {}", page.body);
    assert!(!page.body.contains(">Desk</a>"), "{}", page.body);
    let detail = format!("/console/members/{}", annabel.member.id.0);
    assert!(
        page.body.contains(&format!("href=\"{detail}\"")),
        "{}",
        page.body
    );
    let page = en.send("GET", "/console/members?q=wx-annabel", None).await;
    assert!(
        page.body.contains(">Annabel<") && !page.body.contains(">Ann<"),
        "{}",
        page.body
    );

    let page = en.send("GET", &detail, None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Annabel") && page.body.contains("desk-cash-1"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("1M MEMBERSHIP") && page.body.contains("200.00"),
        "{}",
        page.body
    );
    assert!(page.body.contains("class=\"status OK\""), "{}", page.body);
    assert_eq!(
        en.send("GET", "/console/members/999999", None).await.status,
        404
    );
    assert_eq!(
        en.send("GET", "/console/members/abc", None).await.status,
        404
    );

    // a plain member's own session opens neither page
    let mut plain = Browser::new(&app, "en");
    assert_eq!(
        plain.log_in("annabel", "member-pass-2026").await.status,
        303
    );
    for path in ["/console/members?q=a", detail.as_str()] {
        let page = plain.send("GET", path, None).await;
        assert_eq!(page.status, 403, "{path}: {}", page.body);
        assert!(!page.body.contains("desk-cash-1"));
    }
}

/// Journey 1 over HTTP: staff find a member and record a cash payment; the
/// member turns OK; the same form sent again records nothing more; a form
/// without its token, or a payIndex not made by the desk, records nothing.
#[actix_web::test]
async fn a_desk_payment_is_recorded_once_per_form() {
    let app = spawn_app().await;
    add_member(
        &app,
        "desk-p",
        "Desk",
        "MEMBER,STAFF",
        Some("front-desk-2026"),
    );
    add_member(&app, "wx-cash", "Cash", "MEMBER", None);
    let openid = OpenId::parse("wx-cash").unwrap();
    let cash = app
        .store
        .member(zhima_storage::MemberKey::OpenId(&openid))
        .unwrap()
        .unwrap();
    let payments = || {
        app.store
            .member(zhima_storage::MemberKey::OpenId(&openid))
            .unwrap()
            .unwrap()
            .payments
    };
    let mut en = Browser::new(&app, "en");
    en.log_in("desk", "front-desk-2026").await;
    let detail = format!("/console/members/{}", cash.member.id.0);
    let page = en.send("GET", &detail, None).await;
    assert!(
        page.body.contains("class=\"status NOT_OK\""),
        "{}",
        page.body
    );
    let csrf = hidden(&page.body, "csrf");
    let pay_index = hidden(&page.body, "pay_index");
    assert!(pay_index.starts_with("desk-"), "{pay_index}");
    let path = format!("{detail}/payments");
    // the form offers the test clock's "now" on the space's wall clock
    assert!(
        page.body
            .contains("type=\"datetime-local\" required value=\"2018-03-12T20:00\""),
        "{}",
        page.body
    );
    let paid_at = "2018-03-12T09:30";
    let form = [
        ("csrf", csrf.as_str()),
        ("pay_index", pay_index.as_str()),
        ("plan", "1M MEMBERSHIP"),
        ("amount", "200"),
        ("paid_at", paid_at),
    ];

    // without the session's token: refused, nothing recorded
    let mut forged = form;
    forged[0] = ("csrf", "forged");
    assert_eq!(en.send("POST", &path, Some(&forged)).await.status, 403);
    // a payIndex the desk did not make: refused
    let mut foreign = form;
    foreign[1] = ("pay_index", "wx-pay-123");
    assert_eq!(en.send("POST", &path, Some(&foreign)).await.status, 400);
    assert!(payments().is_empty(), "a refused form recorded a payment");

    let page = en.send("POST", &path, Some(&form)).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        page.headers["location"],
        format!("{detail}?done=paid").as_str()
    );
    let page = en.send("GET", &format!("{detail}?done=paid"), None).await;
    assert!(page.body.contains("Payment recorded."), "{}", page.body);
    assert!(page.body.contains("class=\"status OK\""), "{}", page.body);
    assert!(page.body.contains(&pay_index), "{}", page.body);

    // the same form again (a double click, a resubmit): recorded once
    let page = en.send("POST", &path, Some(&form)).await;
    assert_eq!(
        page.headers["location"],
        format!("{detail}?done=again").as_str()
    );
    let stored = payments();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].pay_type, "1M MEMBERSHIP");
    assert_eq!(stored[0].amount.to_string(), "200.00");

    // nonsense in the form: refused with the words, nothing recorded
    for (field, value) in [
        ("plan", "NO SUCH PLAN"),
        ("amount", "-5"),
        ("paid_at", "1999-01-01T00:00"),
    ] {
        let mut bad = form;
        bad[1] = ("pay_index", "desk-other");
        let i = bad.iter().position(|(k, _)| *k == field).unwrap();
        bad[i] = (field, value);
        let page = en.send("POST", &path, Some(&bad)).await;
        assert_eq!(page.status, 400, "{field}={value}: {}", page.body);
        assert!(page.body.contains("The payment was not recorded"));
    }
    assert_eq!(payments().len(), 1);
}

/// Journey 3 over HTTP: staff unlock the door from the door page with a
/// reason; the access log names them; a forged form, a bad number of
/// seconds or no reason moves nothing.
#[actix_web::test]
async fn staff_unlock_the_door_with_a_reason_and_the_log_names_them() {
    let app = spawn_app().await;
    add_member(
        &app,
        "desk-d",
        "Desk",
        "MEMBER,STAFF",
        Some("front-desk-2026"),
    );
    let mut en = Browser::new(&app, "en");
    en.log_in("desk", "front-desk-2026").await;
    let page = en.send("GET", "/console/door", None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Locked"), "{}", page.body);
    let csrf = hidden(&page.body, "csrf");
    let before = app.door.unlock_count();

    for (form, status) in [
        (
            [("csrf", "forged"), ("seconds", "3"), ("reason", "delivery")],
            403,
        ),
        (
            [
                ("csrf", csrf.as_str()),
                ("seconds", "0"),
                ("reason", "delivery"),
            ],
            400,
        ),
        (
            [
                ("csrf", csrf.as_str()),
                ("seconds", "9999"),
                ("reason", "delivery"),
            ],
            400,
        ),
        (
            [("csrf", csrf.as_str()), ("seconds", "3"), ("reason", "   ")],
            400,
        ),
    ] {
        let page = en.send("POST", "/console/door", Some(&form)).await;
        assert_eq!(page.status, status, "{form:?}: {}", page.body);
    }
    assert_eq!(
        app.door.unlock_count(),
        before,
        "a refused form moved the door"
    );

    let page = en
        .send(
            "POST",
            "/console/door",
            Some(&[
                ("csrf", csrf.as_str()),
                ("seconds", "2"),
                ("reason", "courier at the door"),
            ]),
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.headers["location"], "/console/door?opened=1");
    let page = en.send("GET", "/console/door?opened=1", None).await;
    assert!(page.body.contains("The door is unlocked"), "{}", page.body);
    let mut moved = false;
    for _ in 0..100 {
        if app.door.unlock_count() > before {
            moved = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(moved, "the relay never released");
    let events = app
        .store
        .access_events(zhima_storage::access::EventQuery {
            since: None,
            before: None,
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    let logged = events
        .iter()
        .find(|e| e.event.reason == "console_unlock")
        .expect("the unlock is in the access log");
    assert!(
        logged.event.detail.contains("Desk") && logged.event.detail.contains("courier at the door"),
        "{:?}",
        logged.event
    );
    assert!(
        logged.event.member.is_none(),
        "the unlock counted as the staff member's own entry"
    );
}

/// The access-log page and its CSV: filters by outcome and member, pages
/// of 50 with a link to older ones, and a CSV a spreadsheet opens without
/// running anything a stranger wrote into the log.
#[actix_web::test]
async fn the_access_log_filters_pages_and_downloads_safely() {
    use zhima_domain::access::{AccessMethod, NewAccessEvent, Outcome};
    let app = spawn_app().await;
    add_member(
        &app,
        "desk-l",
        "Desk",
        "MEMBER,STAFF",
        Some("front-desk-2026"),
    );
    add_member(
        &app,
        "wx-visitor",
        "Visitor",
        "MEMBER",
        Some("member-pass-2026"),
    );
    let visitor = app
        .store
        .member(zhima_storage::MemberKey::OpenId(
            &OpenId::parse("wx-visitor").unwrap(),
        ))
        .unwrap()
        .unwrap()
        .member
        .id;
    let at = default_now();
    for i in 0..60 {
        let event = NewAccessEvent::new(at, "front", AccessMethod::Qr, Outcome::Granted, "qr_ok")
            .for_member(visitor)
            .detail(format!("entry {i}"));
        app.store.record_access(&event).unwrap();
    }
    let refused = NewAccessEvent::new(
        at,
        "front",
        AccessMethod::Qr,
        Outcome::Refused,
        "qr_bad_signature",
    )
    .detail("=HYPERLINK(\"http://evil.example\")");
    app.store.record_access(&refused).unwrap();

    let mut en = Browser::new(&app, "en");
    en.log_in("desk", "front-desk-2026").await;
    let page = en.send("GET", "/console/log?outcome=refused", None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("qr_bad_signature") && !page.body.contains("qr_ok"),
        "{}",
        page.body
    );

    let page = en
        .send("GET", &format!("/console/log?member={}", visitor.0), None)
        .await;
    assert_eq!(
        page.body.matches("<tr class=\"granted\">").count(),
        50,
        "{}",
        page.body
    );
    assert!(!page.body.contains("qr_bad_signature"));
    let next = page
        .body
        .split("href=\"")
        .find(|h| h.starts_with("/console/log?"))
        .unwrap();
    let next = &next[..next.find('"').unwrap()]
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    assert!(next.contains("before="), "{next}");
    let older = en.send("GET", next, None).await;
    assert_eq!(
        older.body.matches("<tr class=\"granted\">").count(),
        10,
        "{}",
        older.body
    );

    let csv = en.send("GET", "/console/log.csv", None).await;
    assert_eq!(csv.status, 200);
    assert!(csv.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(csv.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    let lines: Vec<&str> = csv.body.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(
        lines[0],
        "id,time,timeUtc,door,method,outcome,reason,member,detail"
    );
    assert_eq!(lines.len(), 1 + 61, "{}", csv.body);
    let evil = lines.iter().find(|l| l.contains("HYPERLINK")).unwrap();
    assert!(
        evil.ends_with("\"'=HYPERLINK(\"\"http://evil.example\"\")\""),
        "a formula reached the spreadsheet: {evil}"
    );

    // a plain member gets neither
    let mut plain = Browser::new(&app, "en");
    plain.log_in("visitor", "member-pass-2026").await;
    for path in ["/console/log", "/console/log.csv"] {
        let page = plain.send("GET", path, None).await;
        assert_eq!(page.status, 403, "{path}");
        assert!(!page.body.contains("qr_ok"));
    }
}

/// Passes: an event pass is refused for a day already over or more than a
/// year ahead (nothing is created); a day pass makes one visitor member
/// with the pass payment, and the audit log names who issued it. Staff are
/// refused the admin pages and forms.
#[actix_web::test]
async fn passes_are_bounded_and_audited_and_staff_cannot_reach_the_admin_pages() {
    let app = spawn_app().await;
    add_member(
        &app,
        "desk-x",
        "Desk",
        "MEMBER,STAFF",
        Some("front-desk-2026"),
    );
    let mut en = Browser::new(&app, "en");
    en.log_in("desk", "front-desk-2026").await;
    let page = en.send("GET", "/console/passes", None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = hidden(&page.body, "csrf");
    let members_before = app.store.member_count().unwrap();
    for date in ["2018-03-11", "2019-03-14", "9999-12-31", "not-a-day"] {
        let page = en
            .send(
                "POST",
                "/console/passes",
                Some(&[
                    ("csrf", &csrf),
                    ("kind", "event"),
                    ("visitor", "Eve"),
                    ("amount", "0"),
                    ("date", date),
                ]),
            )
            .await;
        assert_eq!(page.status, 400, "{date}: {}", page.body);
        assert!(page.body.contains("No pass was issued"), "{}", page.body);
    }
    assert_eq!(app.store.member_count().unwrap(), members_before);

    let page = en
        .send(
            "POST",
            "/console/passes",
            Some(&[
                ("csrf", &csrf),
                ("kind", "event"),
                ("visitor", "Eve"),
                ("amount", "30"),
                ("date", "2018-03-20"),
            ]),
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Event pass: Eve"), "{}", page.body);
    assert!(page.body.contains("2018-03-20 00:00"), "{}", page.body);
    assert_eq!(app.store.member_count().unwrap(), members_before + 1);
    let log = app.store.audit_log(None, 5).unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].note.action, "pass.issue");
    assert_eq!(log[0].note.actor, "Desk");
    assert!(log[0].note.after.contains("amount=30.00"), "{log:?}");

    // staff: every admin page and form refused, nothing changed
    for path in ["/console/admin", "/console/audit"] {
        let page = en.send("GET", path, None).await;
        assert_eq!(page.status, 403, "{path}");
        assert!(
            page.body.contains("This page is for admins"),
            "{}",
            page.body
        );
    }
    for (path, form) in [
        (
            "/console/admin/keys",
            vec![("name", "sneaky"), ("scopes", "admin")],
        ),
        ("/console/members/1/tags", vec![("tags", "ADMIN")]),
        (
            "/console/members/1/password",
            vec![("password", "taken-over-2026")],
        ),
        ("/console/members/1/status", vec![("action", "deactivate")]),
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        let page = en.send("POST", path, Some(&form)).await;
        assert_eq!(page.status, 403, "{path}: {}", page.body);
    }
    assert_eq!(app.store.audit_log(None, 5).unwrap().len(), 1);
    assert!(app
        .store
        .list_api_keys()
        .unwrap()
        .iter()
        .all(|k| k.name != "sneaky"));
}

/// The member search filters by status, tag and "valid until before", and
/// pages through every match once, in nickname order.
#[actix_web::test]
async fn the_member_search_filters_and_pages_through_every_match_once() {
    let app = spawn_app().await;
    add_member(
        &app,
        "desk-f",
        "Desk",
        "MEMBER,STAFF",
        Some("front-desk-2026"),
    );
    // 130 members "Page 000".."Page 129": every third paid a month, every
    // tenth is deactivated, every seventh is staff
    for i in 0..130 {
        let openid = format!("page-{i:03}");
        let tags = if i % 7 == 0 { "MEMBER,STAFF" } else { "MEMBER" };
        add_member(&app, &openid, &format!("Page {i:03}"), tags, None);
        let openid = OpenId::parse(&openid).unwrap();
        if i % 3 == 0 {
            app.store
                .add_payment(
                    &openid,
                    &zhima_domain::member::NewPayment {
                        pay_index: zhima_domain::ids::PayIndex::parse(&format!("pg-{i}")).unwrap(),
                        amount: zhima_domain::money::Fen::from_yuan(200),
                        pay_type: "1M MEMBERSHIP".into(),
                        paid_at: default_now() - chrono::Duration::days(1),
                        until_days: None,
                        span: None,
                    },
                    default_now(),
                )
                .unwrap();
        }
        if i % 10 == 0 {
            app.store
                .set_deactivated(&openid, true, default_now())
                .unwrap();
        }
    }
    let mut en = Browser::new(&app, "en");
    en.log_in("desk", "front-desk-2026").await;
    // every page of a search, following its "More" link: the nicknames
    let walk = |first: String| {
        let mut en = Browser {
            client: en.client.clone(),
            base: en.base.clone(),
            cookies: en.cookies.clone(),
            lang: en.lang,
        };
        async move {
            let mut names = Vec::new();
            let mut next = Some(first);
            let mut pages = 0;
            while let Some(path) = next.take() {
                let page = en.send("GET", &path, None).await;
                assert_eq!(page.status, 200, "{path}: {}", page.body);
                pages += 1;
                for chunk in page.body.split("<td><a href=\"/console/members/").skip(1) {
                    let name = chunk.split('>').nth(1).unwrap().split('<').next().unwrap();
                    names.push(name.to_owned());
                }
                next = page
                    .body
                    .split("rel=\"next\"")
                    .next()
                    .filter(|_| page.body.contains("rel=\"next\""))
                    .and_then(|head| head.rsplit("href=\"").next())
                    .map(|href| {
                        href.split('"')
                            .next()
                            .unwrap()
                            .replace("&amp;", "&")
                            .replace("&#38;", "&")
                    });
                assert!(pages < 20, "the pages never end: {next:?}");
            }
            (names, pages)
        }
    };
    let expect = |keep: &dyn Fn(usize) -> bool| -> Vec<String> {
        (0..130)
            .filter(|i| keep(*i))
            .map(|i| format!("Page {i:03}"))
            .collect()
    };

    let (all, pages) = walk("/console/members?q=page".into()).await;
    assert_eq!(all, expect(&|_| true), "every match once, in order");
    assert_eq!(pages, 3, "50 a page");

    let (ok, _) = walk("/console/members?q=page&status=OK".into()).await;
    assert_eq!(ok, expect(&|i| i % 3 == 0 && i % 10 != 0));
    let (invalid, _) = walk("/console/members?q=page&status=INVALID".into()).await;
    assert_eq!(invalid, expect(&|i| i % 10 == 0));
    let (staff, _) = walk("/console/members?q=page&tag=STAFF".into()).await;
    assert_eq!(staff, expect(&|i| i % 7 == 0));
    // valid until before 2018-05-01: the paid ones (their month ends in April)
    let (ending, _) = walk("/console/members?q=page&status=OK&before=2018-05-01".into()).await;
    assert_eq!(ending, ok);
    let (none, _) = walk("/console/members?q=page&before=2018-03-01".into()).await;
    assert!(none.is_empty(), "{none:?}");
    // nonsense filters are ignored, not refused; a cursor past every
    // nickname is an empty last page
    let (same, _) =
        walk("/console/members?q=page&status=MAYBE&tag=KING&before=someday".into()).await;
    assert_eq!(same, all);
    let (past, pages) = walk("/console/members?q=page&after=%FF%FF".into()).await;
    assert!(past.is_empty() && pages == 1, "{past:?}");
}

/// The member page's button emails the member their QR code (queued, then
/// sent by the notification task); without an email address it says so.
#[actix_web::test]
async fn staff_email_a_member_their_qr_code_from_the_member_page() {
    let sink = crate::support::smtp::SmtpSink::start(0);
    let env: Vec<(String, String)> = sink
        .env()
        .into_iter()
        .chain([(
            "ZHIMA_NOTIFY__DELIVER_EVERY_SECS".to_owned(),
            "1".to_owned(),
        )])
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = crate::support::spawn_app_with(&env).await;
    add_member(
        &app,
        "desk-q",
        "Desk",
        "MEMBER,STAFF",
        Some("front-desk-2026"),
    );
    let answer = app
        .post(
            "/api/v1.0/member/new",
            &serde_json::json!({
                "openid": "qr-mail", "basicInfo": {"nickName": "Mailed", "email": "mailed@example.org"},
                "paymentInfo": {"paidTime": "201803121929", "payIndex": "qm-1",
                                "CNYAmount": "200", "payType": "1M MEMBERSHIP"}
            }),
        )
        .await;
    let id = crate::support::expect_errno(&answer, "1000")["data"]["new_id"]
        .as_i64()
        .unwrap();
    let mut en = Browser::new(&app, "en");
    en.log_in("desk", "front-desk-2026").await;
    let path = format!("/console/members/{id}");
    let page = en.send("GET", &path, None).await;
    assert!(page.body.contains("Email the QR code"), "{}", page.body);
    let csrf = hidden(&page.body, "csrf");
    let sent = en
        .send("POST", &format!("{path}/send-qr"), Some(&[("csrf", &csrf)]))
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let got = sink.wait_for(2, 10).await; // the receipt, then the QR code
    let qr: Vec<_> = got
        .iter()
        .filter(|m| m.part_bytes("image/png").is_some())
        .collect();
    assert_eq!(qr.len(), 1, "{got:?}");
    assert_eq!(qr[0].to, ["mailed@example.org"]);
    // a forged form sends nothing
    let forged = en
        .send(
            "POST",
            &format!("{path}/send-qr"),
            Some(&[("csrf", "forged")]),
        )
        .await;
    assert_eq!(forged.status, 403);
    // a member without an email address: refused with the words
    add_member(&app, "no-mail", "Nomail", "MEMBER", None);
    let other = app
        .store
        .member(zhima_storage::MemberKey::OpenId(
            &OpenId::parse("no-mail").unwrap(),
        ))
        .unwrap()
        .unwrap()
        .member
        .id
        .0;
    let refused = en
        .send(
            "POST",
            &format!("/console/members/{other}/send-qr"),
            Some(&[("csrf", &csrf)]),
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        refused.body.contains("no email address"),
        "{}",
        refused.body
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        sink.received()
            .iter()
            .filter(|m| m.part_bytes("image/png").is_some())
            .count(),
        1
    );
}
