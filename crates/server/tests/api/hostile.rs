//! Hostile input and the route table.
//!
//! - Every route registered in `crates/http/src` is listed in [`ROUTES`] with
//!   its guard; a route added without an entry fails the build of trust.
//! - Every route that changes data or moves the door refuses a missing,
//!   wrong, revoked or under-scoped credential, and nothing changes.
//! - A generated corpus of malformed requests (well over 500) against every
//!   route: each answer is a documented status, never a 5xx, never success,
//!   and afterwards the members, payments, wallets and the door are as
//!   before.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::support::{spawn_app_with, TestApp};
use serde_json::{json, Value};
use zhima_domain::ids::OpenId;
use zhima_domain::partner::{PartnerScope, TokenKind, Tokens};
use zhima_domain::scope::Scopes;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guard {
    /// No credential (health, readiness, metadata, the login page).
    Open,
    /// An API key with this scope.
    ApiKey(&'static str),
    /// A partner's bearer token with this scope.
    Bearer(&'static str),
    /// A partner's client credentials.
    Client,
    /// The login form's CSRF cookie and token.
    Csrf,
    /// An image link's signature.
    Signed,
    /// A console session of staff (and, for a form, its CSRF token).
    Session,
}

/// Every route: method, path (as registered), guard.
const ROUTES: &[(&str, &str, Guard)] = &[
    ("GET", "/healthz", Guard::Open),
    ("GET", "/readyz", Guard::Open),
    ("GET", "/metrics", Guard::ApiKey("admin")),
    ("GET", "/openapi.json", Guard::Open),
    (
        "POST",
        "/api/v1.0/member/new",
        Guard::ApiKey("member:write"),
    ),
    (
        "GET",
        "/api/v1.0/member/openid/{openid}",
        Guard::ApiKey("member:read"),
    ),
    (
        "PATCH",
        "/api/v1.0/member/openid/{openid}",
        Guard::ApiKey("member:write"),
    ),
    (
        "GET",
        "/api/v1.0/member/rfid/{rfid}",
        Guard::ApiKey("member:read"),
    ),
    ("GET", "/api/v1.0/member/{id}", Guard::ApiKey("member:read")),
    ("POST", "/api/v1.0/open/seconds", Guard::ApiKey("door:open")),
    ("GET", "/api/v1.0/entries", Guard::ApiKey("admin")),
    ("POST", "/api/v1.0/door/scan", Guard::ApiKey("door:open")),
    ("POST", "/api/v1.0/door/rfid", Guard::ApiKey("door:open")),
    ("GET", "/images/{file}", Guard::Signed),
    ("GET", "/oauth/authorize", Guard::Open),
    ("POST", "/oauth/authorize", Guard::Csrf),
    ("POST", "/oauth/token", Guard::Client),
    ("POST", "/oauth/revoke", Guard::Client),
    ("POST", "/oauth/introspect", Guard::Client),
    (
        "GET",
        "/.well-known/oauth-authorization-server",
        Guard::Open,
    ),
    ("GET", "/partner/1/profile", Guard::Bearer("profile")),
    ("POST", "/partner/1/profile", Guard::Bearer("profile")),
    ("POST", "/partner/1/vip", Guard::Bearer("vip")),
    ("GET", "/console", Guard::Session),
    ("GET", "/console/members", Guard::Session),
    ("GET", "/console/members/{id}", Guard::Session),
    ("POST", "/console/members/{id}/payments", Guard::Session),
    ("GET", "/console/door", Guard::Session),
    ("GET", "/console/log", Guard::Session),
    ("GET", "/console/log.csv", Guard::Session),
    ("POST", "/console/door", Guard::Session),
    ("POST", "/console/members/{id}/profile", Guard::Session),
    ("POST", "/console/members/{id}/send-qr", Guard::Session),
    ("POST", "/console/members/{id}/tags", Guard::Session),
    ("POST", "/console/members/{id}/status", Guard::Session),
    ("POST", "/console/members/{id}/password", Guard::Session),
    ("GET", "/console/passes", Guard::Session),
    ("POST", "/console/passes", Guard::Session),
    ("GET", "/console/admin", Guard::Session),
    ("POST", "/console/admin/keys", Guard::Session),
    ("POST", "/console/admin/keys/revoke", Guard::Session),
    ("POST", "/console/admin/partners", Guard::Session),
    ("POST", "/console/admin/partners/remove", Guard::Session),
    ("POST", "/console/admin/tokens", Guard::Session),
    ("GET", "/console/audit", Guard::Session),
    ("GET", "/me", Guard::Session),
    ("POST", "/me/password", Guard::Session),
    ("GET", "/console/login", Guard::Open),
    ("POST", "/console/login", Guard::Csrf),
    ("POST", "/console/logout", Guard::Session),
    ("GET", "/lang/{tag}", Guard::Open),
    ("GET", "/static/console.css", Guard::Open),
];

/// The routes registered in the http crate's sources: each
/// `resource("PATH")` and the `web::METHOD()` routes of its builder.
fn registered_routes() -> BTreeSet<(String, String)> {
    let mut files = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../http/src")];
    let mut sources = Vec::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if path.extension().is_some_and(|e| e == "rs") {
            sources.push(path);
        }
    }
    let mut out = BTreeSet::new();
    for path in sources {
        let text = std::fs::read_to_string(path).unwrap();
        for chunk in text.split("resource(\"").skip(1) {
            let path = &chunk[..chunk.find('"').unwrap()];
            // the builder runs to the end of the config function
            let builder = &chunk[..chunk.find("\n}").unwrap_or(chunk.len())];
            for method in ["get", "post", "patch", "put", "delete"] {
                if builder.contains(&format!("web::{method}()")) {
                    out.insert((method.to_uppercase(), path.to_owned()));
                }
            }
        }
    }
    out
}

#[test]
fn every_registered_route_is_in_the_table() {
    let registered = registered_routes();
    let table: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert!(registered.len() >= 20, "{registered:?}");
    assert_eq!(
        registered, table,
        "a route was added or removed: list it in ROUTES with its guard"
    );
    // the only routes without a credential read nothing private and change nothing
    for (method, path, guard) in ROUTES {
        if *guard == Guard::Open {
            assert_eq!(
                *method, "GET",
                "{path} changes something without a credential"
            );
        }
    }
}

/// The routes the OpenAPI description must hold: the Member API, the door,
/// the Partner API and the service routes (the OAuth2 endpoints have RFC
/// 8414 metadata instead, and image links are signed URLs, not an API).
fn described(path: &str) -> bool {
    !path.starts_with("/oauth/")
        && !path.starts_with("/console")
        && path != "/me"
        && !path.starts_with("/me/")
        && !path.starts_with("/lang/")
        && !path.starts_with("/static/")
        && !path.starts_with("/.well-known/")
        && !path.starts_with("/images/")
}

#[actix_web::test]
async fn the_openapi_description_holds_exactly_the_api_routes() {
    let app = spawn_app_with(&[]).await;
    let res = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut listed = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "patch", "put", "delete"] {
            if item.get(method).is_some() {
                listed.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .filter(|(_, path, _)| described(path))
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(
        listed, expected,
        "docs/openapi.json and the route table differ: describe every API route, and nothing else"
    );
    // every guarded route names its security
    for (method, path, guard) in ROUTES.iter().filter(|(_, p, _)| described(p)) {
        let op = &doc["paths"][path][method.to_lowercase()];
        let security = op["security"].as_array().unwrap();
        assert_eq!(
            security.is_empty(),
            *guard == Guard::Open,
            "{method} {path}: security {security:?} for {guard:?}"
        );
    }
}

/// A concrete path for a route template.
fn concrete(path: &str) -> String {
    path.replace("{openid}", "victim-openid-0001")
        .replace("{rfid}", "a1b2c3d4")
        .replace("{id}", "1")
        .replace("{file}", "XCJ_1.png")
}

struct Fixture {
    app: TestApp,
    profile_token: String,
    full_token: String,
    client_id: String,
    secret: String,
    victim: OpenId,
}

/// A server with a member who holds tokens, and a partner with tokens for
/// that member (issued through the provider, as the login pages would).
async fn fixture() -> Fixture {
    // every malformed door request must reach the parser, not the door-scan
    // rate limit (tested in qr_door.rs)
    let app = spawn_app_with(&[
        ("ZHIMA_DOOR__SCAN_PER_SEC", "100000"),
        ("ZHIMA_DOOR__SCAN_BURST", "100000"),
    ])
    .await;
    let body = json!({"openid": "victim-openid-0001", "rfid": "A1B2C3D4",
        "basicInfo": {"nickName": "Victim"},
        "paymentInfo": {"paidTime": "201803121929", "payIndex": "V-1", "CNYAmount": "200", "payType": "1M MEMBERSHIP"}});
    crate::support::expect_errno(&app.post("/api/v1.0/member/new", &body).await, "1000");
    let victim = OpenId::parse("victim-openid-0001").unwrap();
    app.store
        .grant_tokens(
            &victim,
            TokenKind::Free,
            Tokens::whole(1000),
            "gift",
            crate::support::default_now(),
        )
        .unwrap();
    let member_id = app
        .store
        .member(zhima_storage::MemberKey::OpenId(&victim))
        .unwrap()
        .unwrap()
        .member
        .id;
    let provider = zhima_oauth::Provider::new(app.store.clone(), Default::default());
    let scopes: BTreeSet<PartnerScope> = PartnerScope::ALL.into_iter().collect();
    let registered = provider
        .register(
            "Partner",
            &["https://partner.example/cb".to_owned()],
            false,
            &scopes,
            crate::support::default_now(),
        )
        .unwrap();
    let client_id = registered.client.client_id.clone();
    let secret = registered.secret.unwrap();
    let http = reqwest::Client::new();
    let token_for = |scope: &'static str| {
        let code = crate::support::oauth::approved_code(
            &provider,
            &client_id,
            "https://partner.example/cb",
            scope,
            member_id,
            Some(crate::support::oauth::CHALLENGE),
            crate::support::default_now(),
        );
        let (http, address, client_id, secret) = (
            http.clone(),
            app.address.clone(),
            client_id.clone(),
            secret.clone(),
        );
        async move {
            let answer = crate::support::oauth::redeem(
                &http,
                &format!("{address}/oauth/token"),
                (&client_id, &secret),
                &code,
                "https://partner.example/cb",
            )
            .await;
            answer["access_token"].as_str().unwrap().to_owned()
        }
    };
    let profile_token = token_for("profile").await;
    let full_token = token_for("profile vip").await;
    Fixture {
        app,
        profile_token,
        full_token,
        client_id,
        secret,
        victim,
    }
}

/// Everything a hostile request must not change.
fn snapshot(f: &Fixture) -> Value {
    let store = &f.app.store;
    let record = store
        .member(zhima_storage::MemberKey::OpenId(&f.victim))
        .unwrap()
        .unwrap();
    let balance = store.balance(record.member.id).unwrap();
    json!({
        "members": store.member_count().unwrap(),
        "nickname": record.member.nickname.as_str(),
        "payments": record.payments.len(),
        "vip": record.vip.len(),
        "paid": balance.paid.hundredths(),
        "free": balance.free.hundredths(),
        "unlocks": f.app.door.unlock_count(),
        "clients": store.oauth_clients().unwrap().len(),
    })
}

async fn send(
    f: &Fixture,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> (u16, BTreeMap<String, String>, Vec<u8>) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut req = client.request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        format!("{}{}", f.app.address, path),
    );
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    match req.send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            let headers = res
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                .collect();
            (
                status,
                headers,
                res.bytes().await.unwrap_or_default().to_vec(),
            )
        }
        // the server may close the connection on a body it will not read
        Err(e) => {
            assert!(!e.is_timeout(), "{method} {path}: timed out");
            assert!(
                !e.is_builder(),
                "{method} {path}: the client could not send it: {e}"
            );
            (0, BTreeMap::new(), Vec::new())
        }
    }
}

#[actix_web::test]
async fn writes_and_the_door_refuse_missing_wrong_revoked_and_underscoped_credentials() {
    let f = fixture().await;
    let app = &f.app;
    let (_, revoked) = app
        .store
        .create_api_key(
            "revoked",
            &Scopes::parse("admin").unwrap(),
            crate::support::default_now(),
        )
        .unwrap();
    app.store
        .revoke_api_key("revoked", crate::support::default_now())
        .unwrap();
    let before = snapshot(&f);
    let body = br#"{"openid": "new-openid-0002", "basicInfo": {"nickName": "New"}, "seconds": 1, "code": "x", "uid": "a1b2c3d4", "op": "update", "data": {"nickName": "Owned"}}"#.to_vec();
    let mut checked = 0;
    for (method, template, guard) in ROUTES {
        let path = concrete(template);
        match guard {
            Guard::ApiKey(scope) => {
                let weak = if *scope == "member:read" || *scope == "admin" {
                    app.door_key.clone()
                } else {
                    app.read_key.clone()
                };
                let cases: [(Option<String>, u16, &str); 4] = [
                    (None, 401, "1401"),
                    (Some("zk_not_a_key_at_all".into()), 401, "1401"),
                    (Some(revoked.clone()), 401, "1401"),
                    (Some(weak), 403, "1403"),
                ];
                for (key, status, errno) in cases {
                    let auth = key.map(|k| format!("Bearer {k}"));
                    let mut headers = vec![("Content-Type", "application/json")];
                    if let Some(a) = &auth {
                        headers.push(("Authorization", a.as_str()));
                    }
                    let (got, _, bytes) =
                        send(&f, method, &path, &headers, Some(body.clone())).await;
                    assert_eq!(got, status, "{method} {path} with {auth:?}");
                    let v: Value = serde_json::from_slice(&bytes).unwrap();
                    assert_eq!(v["errno"], errno, "{method} {path}");
                    checked += 1;
                }
            }
            Guard::Bearer(scope) => {
                let weak = if *scope == "vip" {
                    Some(f.profile_token.clone())
                } else {
                    None
                };
                let mut cases: Vec<(Option<String>, u16)> = vec![
                    (None, 401),
                    (Some("not-a-token".into()), 401),
                    (Some(f.full_token.clone() + "x"), 401),
                ];
                if let Some(w) = weak {
                    cases.push((Some(w), 403));
                }
                for (token, status) in cases {
                    let auth = token.map(|t| format!("Bearer {t}"));
                    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
                    if let Some(a) = &auth {
                        headers.push(("Authorization", a.as_str()));
                    }
                    let (got, h, bytes) =
                        send(&f, method, &path, &headers, Some(b"level=gold".to_vec())).await;
                    assert_eq!(got, status, "{method} {path}");
                    assert!(
                        h["www-authenticate"].starts_with("Bearer"),
                        "{method} {path}"
                    );
                    let v: Value = serde_json::from_slice(&bytes).unwrap();
                    assert_eq!(v["success"], false);
                    checked += 1;
                }
            }
            Guard::Client => {
                let form = b"grant_type=refresh_token&refresh_token=x&token=x".to_vec();
                let wrong = format!("Basic {}", base64_basic(&f.client_id, "wrong-secret"));
                for (auth, status) in [(None, 400), (Some(wrong), 401)] {
                    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
                    if let Some(a) = &auth {
                        headers.push(("Authorization", a.as_str()));
                    }
                    let (got, _, _) = send(&f, method, &path, &headers, Some(form.clone())).await;
                    assert!(
                        got == status || (auth.is_none() && got == 401),
                        "{method} {path}: {got}"
                    );
                    checked += 1;
                }
            }
            Guard::Csrf => {
                let form = format!(
                    "response_type=code&client_id={}&redirect_uri=https%3A%2F%2Fpartner.example%2Fcb&zhima_action=allow&zhima_ticket=forged&zhima_csrf=AAAAAAAAAAAAAAAAAAAAAA",
                    f.client_id
                );
                let (got, h, _) = send(
                    &f,
                    method,
                    &path,
                    &[("Content-Type", "application/x-www-form-urlencoded")],
                    Some(form.into_bytes()),
                )
                .await;
                assert_eq!(got, 403, "{method} {path}");
                assert!(!h.contains_key("location"));
                checked += 1;
            }
            Guard::Signed => {
                for query in ["", "?exp=9999999999&sig=00", "?1&exp=1&sig=zz"] {
                    let (got, _, _) = send(&f, method, &format!("{path}{query}"), &[], None).await;
                    assert_eq!(got, 403, "{method} {path}{query}");
                    checked += 1;
                }
            }
            Guard::Session => {
                // no session, or a forged one: to the login page, nothing done
                for cookie in [None, Some("zhima_session=forged-session-token")] {
                    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
                    if let Some(c) = cookie {
                        headers.push(("Cookie", c));
                    }
                    let (got, h, _) =
                        send(&f, method, &path, &headers, Some(b"csrf=forged".to_vec())).await;
                    if *method == "POST" && cookie.is_some() && got == 403 {
                        // a form whose CSRF token is not the cookie's session's
                        assert!(!h.contains_key("location"), "{method} {path}");
                    } else {
                        assert_eq!(got, 303, "{method} {path} with {cookie:?}");
                        assert_eq!(h["location"], "/console/login", "{method} {path}");
                    }
                    checked += 1;
                }
            }
            Guard::Open => {}
        }
    }
    assert!(checked > 40, "{checked}");
    assert_eq!(snapshot(&f), before, "a refused request changed something");
    // the client secret is still good, the key check still works
    let _ = &f.secret;
}

fn base64_basic(id: &str, secret: &str) -> String {
    use std::fmt::Write as _;
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{id}:{secret}");
    let bytes = input.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= n {
                let _ = write!(
                    out,
                    "{}",
                    TABLE[((v >> (18 - 6 * i)) & 63) as usize] as char
                );
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Malformed bodies for any route.
fn generic_bodies() -> Vec<(&'static str, Vec<u8>)> {
    let deep_array = "[".repeat(100_000).into_bytes();
    let deep_object = "{\"a\":".repeat(50_000).into_bytes();
    vec![
        ("empty", Vec::new()),
        ("null", b"null".to_vec()),
        ("array", b"[]".to_vec()),
        ("string", b"\"member\"".to_vec()),
        ("number", b"1e400".to_vec()),
        ("truncated", b"{\"openid\": \"abc".to_vec()),
        ("trailing", b"{} {}".to_vec()),
        ("invalid utf-8", b"{\"openid\": \"\xff\xfe\xfd\"}".to_vec()),
        ("nul", b"{\"openid\": \"a\x00b\"}".to_vec()),
        ("deep array", deep_array),
        ("deep object", deep_object),
        (
            "duplicate keys",
            b"{\"openid\": \"a\", \"openid\": \"b\"}".to_vec(),
        ),
        ("bom", b"\xef\xbb\xbf{}".to_vec()),
    ]
}

/// Malformed bodies aimed at each JSON route's fields.
fn field_bodies(path: &str) -> Vec<Value> {
    let huge = json!(1e308);
    let sql = "' OR 1=1; DROP TABLE members; --";
    let traversal = "../../../../etc/passwd";
    let long = "x".repeat(70_000);
    match path {
        "/api/v1.0/member/new" => vec![
            json!({}),
            json!({"openid": 12, "basicInfo": {"nickName": "A"}}),
            json!({"openid": null, "basicInfo": {"nickName": "A"}}),
            json!({"openid": "", "basicInfo": {"nickName": "A"}}),
            json!({"openid": sql, "basicInfo": {"nickName": "A"}}),
            json!({"openid": traversal, "basicInfo": {"nickName": "A"}}),
            json!({"openid": long, "basicInfo": {"nickName": "A"}}),
            json!({"openid": "ok-openid-9", "basicInfo": "A"}),
            json!({"openid": "ok-openid-9", "basicInfo": {"nickName": 5}}),
            json!({"openid": "ok-openid-9", "basicInfo": {"nickName": ""}}),
            json!({"openid": "ok-openid-9", "basicInfo": {"nickName": "Victim"}}),
            json!({"openid": "victim-openid-0001", "basicInfo": {"nickName": "Other"}}),
            json!({"openid": "ok-openid-9", "basicInfo": {"nickName": "A", "gender": 7}}),
            json!({"openid": "ok-openid-9", "basicInfo": {"nickName": "A", "gender": huge}}),
            json!({"openid": "ok-openid-9", "basicInfo": {"nickName": "A"}, "rfid": "zz-not-hex"}),
            json!({"openid": "ok-openid-9", "basicInfo": {"nickName": "A"}, "paymentInfo": {"CNYAmount": "1e999", "payIndex": "p", "paidTime": "201803121929", "payType": "1M MEMBERSHIP"}}),
            json!({"openid": "ok-openid-9", "basicInfo": {"nickName": "A"}, "paymentInfo": {"CNYAmount": -200, "payIndex": "p", "paidTime": "201803121929", "payType": "1M MEMBERSHIP"}}),
            json!({"openid": "ok-openid-9", "basicInfo": {"nickName": "A"}, "paymentInfo": {"CNYAmount": "200", "payIndex": "p", "paidTime": "20181399", "payType": "1M MEMBERSHIP"}}),
            json!({"openid": "ok-openid-9", "basicInfo": {"nickName": "A"}, "paymentInfo": {"CNYAmount": "200", "payIndex": "V-1", "paidTime": "201803121929", "payType": "6M MEMBERSHIP"}}),
            json!({"openid": "ok-openid-9", "basicInfo": {"nickName": "A"}, "paymentInfo": {"CNYAmount": "200", "payIndex": "", "paidTime": "201803121929", "payType": "1M MEMBERSHIP"}}),
            json!({"openid": "ok-openid-9", "basicInfo": {"nickName": "A"}, "paymentInfo": "all of it"}),
        ],
        "/api/v1.0/member/openid/{openid}" => vec![
            json!({}),
            json!({"op": "delete", "data": {}}),
            json!({"op": "update"}),
            json!({"op": "update", "data": []}),
            json!({"op": "update", "data": {"nickName": ""}}),
            json!({"op": "update", "data": {"nickName": 3}}),
            json!({"op": "update", "data": {"openid": sql}}),
            json!({"op": "update", "data": {"tags": huge}}),
            json!({"op": "update", "data": {"tags": "ROOT"}}),
            json!({"op": "update", "data": {"expireTime": "2099"}}),
            json!({"op": "update", "data": {"rfid": traversal}}),
            json!({"op": "update", "data": {"avatarUrl": long}}),
            json!({"op": "update", "data": {"id": 99}}),
            json!({"op": "add", "data": {}}),
            json!({"op": "add", "data": {"CNYAmount": "abc", "payIndex": "q", "paidTime": "201803121929", "payType": "DONATION"}}),
            json!({"op": "add", "data": {"CNYAmount": huge, "payIndex": "q", "paidTime": "201803121929", "payType": "DONATION"}}),
            json!({"op": "add", "data": {"CNYAmount": "1", "payIndex": "q", "paidTime": "999999999999", "payType": "DONATION"}}),
            json!({"op": "add", "data": {"CNYAmount": "1", "payIndex": long, "paidTime": "201803121929", "payType": "DONATION"}}),
            json!({"op": "add", "data": {"CNYAmount": "999", "payIndex": "V-1", "paidTime": "201803121929", "payType": "DONATION"}}),
            json!({"op": ["update"], "data": {}}),
        ],
        "/api/v1.0/open/seconds" => vec![
            json!({}),
            json!({"seconds": "abc"}),
            json!({"seconds": -5}),
            json!({"seconds": 0}),
            json!({"seconds": 1e20}),
            json!({"seconds": 3.5}),
            json!({"seconds": true}),
            json!({"seconds": [1]}),
            json!({"seconds": null}),
            json!({"seconds": 99999}),
            json!({"seconds": "1; rm -rf /"}),
        ],
        "/api/v1.0/door/scan" => vec![
            json!({}),
            json!({"code": 123}),
            json!({"code": ""}),
            json!({"code": sql}),
            json!({"code": long}),
            json!({"code": "ZM1.1.1.1.1.1.AAAA"}),
            json!({"code": "ZM1.z.zzzzzzzzzzzzzzzzzz.0.zzzzzzzz.0.AAAA"}),
            json!({"code": "XCJ1#1#Victim"}),
            json!({"code": ["ZM1"]}),
            json!({"code": null}),
        ],
        "/api/v1.0/door/rfid" => vec![
            json!({}),
            json!({"uid": 123}),
            json!({"uid": ""}),
            json!({"uid": "zz"}),
            json!({"uid": sql}),
            json!({"uid": long}),
            json!({"uid": "ffffffff"}),
            json!({"uid": null}),
        ],
        _ => Vec::new(),
    }
}

/// A corpus case: its name, headers and body.
type Case<'a> = (String, Vec<(&'a str, String)>, Option<Vec<u8>>);

fn allowed(status: u16) -> bool {
    // 0: the server closed the connection on a body it would not read
    matches!(
        status,
        0 | 200 | 303 | 400 | 401 | 403 | 404 | 405 | 413 | 415 | 422 | 429 | 431
    )
}

#[actix_web::test]
async fn a_corpus_of_malformed_requests_gets_documented_answers_and_changes_nothing() {
    let f = fixture().await;
    let before = snapshot(&f);
    let api_auth = format!("Bearer {}", f.app.admin_key);
    let partner_auth = format!("Bearer {}", f.full_token);
    let client_auth = format!("Basic {}", base64_basic(&f.client_id, &f.secret));
    let ten_mb = vec![b'{'; 10 * 1024 * 1024];
    let mut sent = 0usize;
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();

    for (method, template, guard) in ROUTES {
        let path = concrete(template);
        let auth: Option<&str> = match guard {
            Guard::ApiKey(_) => Some(&api_auth),
            Guard::Bearer(_) => Some(&partner_auth),
            Guard::Client => Some(&client_auth),
            _ => None,
        };
        let mut cases: Vec<Case<'_>> = Vec::new();
        let with_auth = |ct: &str| {
            let mut h = vec![("Content-Type", ct.to_owned())];
            if let Some(a) = auth {
                h.push(("Authorization", a.to_owned()));
            }
            h
        };
        let writes = *method != "GET";
        if writes {
            for (name, body) in generic_bodies() {
                for ct in ["application/json", "application/x-www-form-urlencoded"] {
                    cases.push((format!("{name} as {ct}"), with_auth(ct), Some(body.clone())));
                }
            }
            for ct in [
                "text/plain",
                "application/xml",
                "multipart/form-data; boundary=x",
                "application/json; charset=utf-16",
                "",
            ] {
                cases.push((
                    format!("content type {ct:?}"),
                    with_auth(ct),
                    Some(b"{}".to_vec()),
                ));
            }
            for body in field_bodies(template) {
                cases.push((
                    format!("fields {body}"),
                    with_auth("application/json"),
                    Some(body.to_string().into_bytes()),
                ));
            }
            let form_attacks = [
                "level=platinum",
                "level=gold&level=standard",
                "access_token=a&access_token=b",
                "grant_type=password&username=admin&password=x",
                "grant_type=authorization_code&code=%00%ff",
                "grant_type=refresh_token&refresh_token=' OR 1=1 --",
                "token=../../etc/passwd",
                "%zz=%zz",
                "zhima_action=allow&zhima_csrf=&zhima_ticket=1.2.3.4.5",
            ];
            for form in form_attacks {
                cases.push((
                    format!("form {form}"),
                    with_auth("application/x-www-form-urlencoded"),
                    Some(form.as_bytes().to_vec()),
                ));
            }
            cases.push((
                "10 MB".into(),
                with_auth("application/json"),
                Some(ten_mb.clone()),
            ));
        }
        // header abuse, on every route
        let garbage = "A".repeat(8 * 1024);
        let header_cases: Vec<Vec<(&str, String)>> = vec![
            vec![("Authorization", format!("Bearer {garbage}"))],
            vec![("Authorization", "Bearer".into())],
            vec![("Authorization", "Basic !!!!".into())],
            vec![("Authorization", "Bearer a b c".into())],
            vec![("Authorization", "Digest username=x".into())],
            vec![("X-Request-Id", garbage.clone())],
            vec![("Cookie", format!("zhima_csrf={garbage}"))],
            vec![
                ("Content-Type", "application/json".into()),
                ("Content-Encoding", "gzip".into()),
            ],
            vec![
                ("Accept", "*/*;q=abc".into()),
                ("Idempotency-Key", "k".repeat(300)),
            ],
        ];
        for mut h in header_cases {
            if let Some(a) = auth {
                if !h.iter().any(|(k, _)| *k == "Authorization") {
                    h.push(("Authorization", a.to_owned()));
                }
            }
            let body = writes.then(|| b"{\"seconds\": \"x\"}".to_vec());
            cases.push(("header abuse".into(), h, body));
        }
        // path abuse
        let mut paths = vec![path.clone()];
        if template.contains('{') {
            for bad in [
                "%00",
                "..%2F..%2Fetc%2Fpasswd",
                "99999999999999999999999",
                "-1",
                "%E0%80%80",
                "' OR '1'='1",
                &"z".repeat(3000),
            ] {
                let p = template
                    .replace("{openid}", bad)
                    .replace("{rfid}", bad)
                    .replace("{id}", bad)
                    .replace("{file}", bad);
                paths.push(p);
            }
        }
        paths.push(format!(
            "{path}?access_token=%ff%fe&exp=-1&sig=%00&level=gold"
        ));

        for p in &paths {
            let cases_here: &[Case<'_>] = if p == &path { &cases } else { &[] };
            let mut list: Vec<Case<'_>> = cases_here.to_vec();
            if p != &path {
                list.push((
                    "path".into(),
                    with_auth("application/json"),
                    writes.then(|| b"{}".to_vec()),
                ));
            }
            for (name, headers, body) in list {
                let headers: Vec<(&str, &str)> =
                    headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let (status, _, bytes) = send(&f, method, p, &headers, body).await;
                sent += 1;
                *by_status.entry(status).or_default() += 1;
                assert!(
                    allowed(status),
                    "{method} {p} [{name}]: {status} {}",
                    String::from_utf8_lossy(&bytes)
                );
                // a dropped connection could hide a panic: only a body the
                // server refuses to read may end that way
                assert!(
                    status != 0 || name == "10 MB",
                    "{method} {p} [{name}]: connection dropped"
                );
                if p.starts_with("/api/") && status != 0 && status != 431 {
                    let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                        panic!(
                            "{method} {p} [{name}]: not the envelope: {}",
                            String::from_utf8_lossy(&bytes)
                        )
                    });
                    assert!(v["errno"].is_string(), "{method} {p} [{name}]: {v}");
                    // an update whose fields are all read-only answers 1000
                    // with nothing updated (documented); anything else must fail
                    if writes && v["errno"] == "1000" {
                        assert_eq!(
                            v["data"]["updated"],
                            json!([]),
                            "{method} {p} [{name}] succeeded: {v}"
                        );
                    }
                }
                if p.starts_with("/partner/") && status != 0 && status != 431 {
                    let v: Value = serde_json::from_slice(&bytes).unwrap();
                    if writes && *template == "/partner/1/vip" {
                        assert_eq!(v["success"], false, "{method} {p} [{name}]: {v}");
                    }
                }
            }
        }
    }
    assert!(sent >= 500, "only {sent} requests");
    assert_eq!(
        snapshot(&f),
        before,
        "a malformed request changed something"
    );
    // the server is still healthy and still serves the victim
    let ok = f
        .app
        .get("/api/v1.0/member/openid/victim-openid-0001")
        .await;
    crate::support::expect_errno(&ok, "1000");
    eprintln!("corpus: {sent} requests, answers by status: {by_status:?}");
}

/// Sends a request whose body trickles in a byte every 300 ms, and returns
/// the first line and body of the answer.
async fn trickle(
    address: &str,
    path: &str,
    headers: &str,
) -> (String, String, std::time::Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Content-Length: 200\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..40 {
        if stream.write_all(b" ").await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {}
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let first = text.lines().next().unwrap_or("").to_owned();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (first, body, started.elapsed())
}

#[actix_web::test]
async fn a_body_that_trickles_in_times_out_and_changes_nothing() {
    let app = spawn_app_with(&[("ZHIMA_HTTP__BODY_TIMEOUT_SECS", "1")]).await;
    let auth = format!(
        "Authorization: Bearer {}\r\nContent-Type: application/json\r\n",
        app.key
    );
    let (status, body, took) = trickle(&app.address, "/api/v1.0/member/new", &auth).await;
    assert!(status.contains(" 408 "), "{status} {body}");
    assert!(body.contains("\"errno\":\"1408\""), "{body}");
    assert!(took < Duration::from_secs(4), "answered after {took:?}");
    let form = "Content-Type: application/x-www-form-urlencoded\r\n";
    let (status, _, _) = trickle(&app.address, "/oauth/token", form).await;
    assert!(
        status.contains(" 400 ") || status.contains(" 408 "),
        "{status}"
    );
    let (status, _, _) = trickle(&app.address, "/partner/1/vip", form).await;
    assert!(status.contains(" 408 "), "{status}");
    // the console's forms too: the login form answers 408, a session's form
    // (without a session here) is answered, not held
    let (status, body, took) = trickle(&app.address, "/console/login", form).await;
    assert!(status.contains(" 408 "), "{status} {body} after {took:?}");
    assert!(body.contains("表单未能及时送达"), "{body}");
    assert!(took < Duration::from_secs(4), "answered after {took:?}");
    let (status, _, took) = trickle(&app.address, "/console/door", form).await;
    assert!(status.contains(" 303 "), "{status}");
    assert!(took < Duration::from_secs(4), "answered after {took:?}");
    // and one over 64 KiB is refused whole
    let big = format!("csrf=x&nickname={}", "a".repeat(70_000));
    let res = app
        .client
        .post(format!("{}/console/login", app.address))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept-Language", "en")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 413);
    assert!(res.text().await.unwrap().contains("The form is too large"));
    // the server still answers, and nothing was created
    assert_eq!(app.get("/api/v1.0/member/1").await.body["errno"], "1999");
}
