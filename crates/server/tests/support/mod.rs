//! `spawn_app()`: the real server on port 0 over a throwaway database (SQLite,
//! or PostgreSQL when `TEST_ZHIMA_POSTGRES_URL` is set), with a clock the test
//! controls.
#![allow(dead_code)] // each test binary uses a part of it
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failure is a test failure

pub mod browser;
#[cfg(feature = "legacy-import")]
pub mod mariadb;
pub mod oauth;
pub mod process;
pub mod smtp;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use zhima_domain::scope::Scopes;
use zhima_door_hardware::SimulatedDoor;
use zhima_http::Clock;
use zhima_server::settings::Settings;
use zhima_server::Application;
use zhima_storage::testing::TestDatabase;
use zhima_storage::{Store, StoreOptions};

/// A clock that stands still until the test moves it.
#[derive(Debug)]
pub struct TestClock(AtomicI64);

impl TestClock {
    pub fn set(&self, t: DateTime<Utc>) {
        self.0.store(t.timestamp_micros(), Ordering::SeqCst);
    }
    pub fn advance(&self, d: chrono::Duration) {
        self.0
            .fetch_add(d.num_microseconds().unwrap(), Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0.load(Ordering::SeqCst)).unwrap()
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub clock: Arc<TestClock>,
    /// member:read + member:write
    pub key: String,
    pub read_key: String,
    pub write_key: String,
    pub door_key: String,
    pub admin_key: String,
    /// The simulated door the server drives.
    pub door: Arc<SimulatedDoor>,
    pub db: TestDatabase,
}

/// The QR signing seed of every test server (key id 1).
pub const TEST_SEED_HEX: &str = "0707070707070707070707070707070707070707070707070707070707070707";

/// A signer with the test servers' key, for tests that make their own codes.
pub fn test_signer() -> zhima_domain::qr::Signer {
    zhima_domain::qr::Signer::from_seed(
        zhima_domain::qr::KeyId::parse("1").unwrap(),
        &zhima_domain::qr::parse_hex32(TEST_SEED_HEX).unwrap(),
    )
}

/// 2018-03-12 20:00 in Shanghai: shortly after the seed's example payment.
pub fn default_now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2018-03-12T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(extra_env: &[(&str, &str)]) -> TestApp {
    let db = TestDatabase::new().expect("test database");
    let mut env: HashMap<String, String> = HashMap::from([
        ("ZHIMA_DATABASE__URL".to_owned(), db.url().to_owned()),
        ("ZHIMA_HTTP__BIND".to_owned(), "127.0.0.1:0".to_owned()),
        ("ZHIMA_HTTP__WORKERS".to_owned(), "2".to_owned()),
        ("ZHIMA_QR__SIGNING_KEY".to_owned(), TEST_SEED_HEX.to_owned()),
    ]);
    for (k, v) in extra_env {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    let settings = Settings::load_with_env(None, Some(env)).expect("settings");
    let clock = Arc::new(TestClock(AtomicI64::new(default_now().timestamp_micros())));
    let door = Arc::new(SimulatedDoor::new());
    let app = Application::build_with_door(&settings, clock.clone(), door.clone())
        .expect("server builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    actix_web::rt::spawn(app.run_until_stopped());

    let store = Store::open(
        db.url(),
        &StoreOptions {
            pool_size: 2,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let key_with = |name: &str, scopes: &str| {
        store
            .create_api_key(name, &Scopes::parse(scopes).unwrap(), default_now())
            .unwrap()
            .1
    };
    TestApp {
        key: key_with("full", "member:read,member:write"),
        read_key: key_with("reader", "member:read"),
        write_key: key_with("writer", "member:write"),
        door_key: key_with("door", "door:open"),
        admin_key: key_with("admin", "admin"),
        door,
        address,
        client: reqwest::Client::new(),
        store,
        clock,
        db,
    }
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl TestApp {
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .client
            .request(method, format!("{}{}", self.address, path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.header("Content-Type", "application/json").body(body);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "status {status}: body is not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, Some(&self.key), None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(
            "POST",
            path,
            Some(&self.key),
            Some(serde_json::to_vec(body).unwrap()),
        )
        .await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Answer {
        self.send(
            "PATCH",
            path,
            Some(&self.key),
            Some(serde_json::to_vec(body).unwrap()),
        )
        .await
    }
}

/// The access log, newest first (up to 500 events).
pub fn events(app: &TestApp) -> Vec<zhima_domain::access::AccessEvent> {
    app.store
        .access_events(zhima_storage::access::EventQuery {
            since: None,
            before: None,
            limit: 500,
            ..Default::default()
        })
        .unwrap()
}

/// Asserts a 200 envelope with `errno`, and returns the body.
#[track_caller]
pub fn expect_errno(answer: &Answer, errno: &str) -> Value {
    assert_eq!(answer.body["errno"], errno, "body: {}", answer.body);
    answer.body.clone()
}

/// The payIndex values stored for `openid`, read straight from `store`;
/// fails if any is stored twice.
#[track_caller]
pub fn stored_pay_indexes(store: &Store, openid: &str) -> std::collections::BTreeSet<String> {
    let openid = zhima_domain::ids::OpenId::parse(openid).unwrap();
    let record = store
        .member(zhima_storage::MemberKey::OpenId(&openid))
        .unwrap()
        .unwrap();
    let stored: Vec<String> = record
        .payments
        .iter()
        .map(|p| p.pay_index.to_string())
        .collect();
    let unique: std::collections::BTreeSet<String> = stored.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        stored.len(),
        "a payIndex stored twice: {stored:?}"
    );
    unique
}

/// A member made straight in storage with `tags` (`"MEMBER,STAFF"`) and, if
/// given, a password of their own.
pub fn add_member(app: &TestApp, openid: &str, nickname: &str, tags: &str, password: Option<&str>) {
    add_member_to(&app.store, openid, nickname, tags, password);
}

/// [`add_member`] on any store.
pub fn add_member_to(
    store: &Store,
    openid: &str,
    nickname: &str,
    tags: &str,
    password: Option<&str>,
) {
    let openid = zhima_domain::ids::OpenId::parse(openid).expect("an openid");
    store
        .create_member(
            &zhima_domain::member::NewMember {
                openid: openid.clone(),
                nickname: zhima_domain::ids::NickName::parse(nickname).expect("a nickname"),
                rfid: None,
                tags: zhima_domain::tags::Tags::from_stored(tags).expect("tags"),
                profile: zhima_domain::member::Profile::default(),
            },
            None,
            default_now(),
        )
        .expect("the member is created");
    if let Some(p) = password {
        store
            .set_password(&openid, p, false, default_now())
            .expect("the password is set");
    }
}
