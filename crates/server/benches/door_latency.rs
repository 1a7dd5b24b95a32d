//! How long from a `POST /api/v1.0/open/seconds` reaching the application to
//! the relay command in the simulated driver, over many unlocks.
//!
//! `cargo bench -p zhima-server --bench door_latency [-- UNLOCKS]`
//!
//! The service is called in-process (no socket), on the same code path as a
//! real request: key check, body check, the access event committed to the
//! database (a throwaway SQLite file, synchronous=FULL; or, when
//! `TEST_ZHIMA_POSTGRES_URL` is set, a throwaway PostgreSQL database made
//! through it), then the controller. The tokio
//! clock is paused, so each 1-second hold ends as soon as nothing else is
//! running: holds cost no wall time and the relay instants are real.
//!
//! The same for `POST /api/v1.0/door/scan` with a member's signed code
//! (members with a paid month; each scan waits for the door to lock again,
//! on the paused clock, so every scan releases the relay).
//!
//! Printed side by side, measured in the same run: committing one access
//! event alone, which is the floor of the request-to-relay time, and
//! signed-code verifications per second on one core.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure is a crash

mod common;

use common::percentile;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::test as atest;
use actix_web::{web, App};
use chrono::Utc;
use zhima_domain::access::{AccessMethod, NewAccessEvent, Outcome};
use zhima_domain::ids::{NickName, OpenId, PayIndex};
use zhima_domain::member::{NewMember, NewPayment, Profile};
use zhima_domain::money::Fen;
use zhima_domain::plan::Plans;
use zhima_domain::qr::{self, KeyId, Keyring, Signer};
use zhima_domain::scope::Scopes;
use zhima_domain::tags::Tags;
use zhima_door_hardware::{DoorController, DoorRules, Relay, SimulatedDoor};
use zhima_http::{AppState, DoorState};
use zhima_server::SystemClock;
use zhima_storage::testing::TestDatabase;
use zhima_storage::{Store, StoreOptions};

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

const SEED: [u8; 32] = [7; 32];
const MEMBERS: usize = 1000;

fn main() {
    let unlocks: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let db = TestDatabase::new().unwrap();
    let url = db.url().to_owned();
    let store = Store::open(&url, &StoreOptions::default()).unwrap();
    store.migrate().unwrap();
    let (_, key) = store
        .create_api_key(
            &format!("bench-{}", std::process::id()),
            &Scopes::parse("door:open").unwrap(),
            Utc::now(),
        )
        .unwrap();

    let now = Utc::now();
    let mut member_ids = Vec::with_capacity(MEMBERS);
    for i in 0..MEMBERS {
        let new = NewMember {
            openid: OpenId::parse(&format!("bench-{i}")).unwrap(),
            nickname: NickName::parse(&format!("bench {i}")).unwrap(),
            rfid: None,
            tags: Tags::default_new_member(),
            profile: Profile::default(),
        };
        let paid = NewPayment {
            pay_index: PayIndex::parse(&format!("bench-pay-{i}")).unwrap(),
            amount: Fen::parse_yuan("200").unwrap(),
            pay_type: "1M MEMBERSHIP".into(),
            paid_at: now,
            until_days: None,
            span: None,
        };
        let record = store.create_member(&new, Some(&paid), now).unwrap();
        member_ids.push(record.member.id);
    }
    let signer = Signer::from_seed(KeyId::parse("1").unwrap(), &SEED);
    let mut keyring = Keyring::new();
    keyring.insert(signer.key_id(), signer.verifying_key());
    let until = now + chrono::Duration::days(28);
    let codes: Vec<String> = member_ids
        .iter()
        .map(|id| qr::issue(&signer, *id, now, until))
        .collect();
    // signed-code verifications per second, one core
    let verify_rounds = 20_000;
    let t0 = Instant::now();
    for i in 0..verify_rounds {
        let code = &codes[i % codes.len()];
        assert!(qr::verify(code.as_bytes(), &keyring, now).is_ok());
    }
    let verify_rate = verify_rounds as f64 / t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    for i in 0..verify_rounds {
        std::hint::black_box(qr::issue(&signer, member_ids[i % MEMBERS], now, until));
    }
    let sign_rate = verify_rounds as f64 / t0.elapsed().as_secs_f64();
    let scan_signer = Signer::from_seed(KeyId::parse("1").unwrap(), &SEED);

    actix_web::rt::System::new().block_on(async move {
        tokio::time::pause();
        let door = Arc::new(SimulatedDoor::new());
        let controller = DoorController::start(
            door.clone(),
            DoorRules::default(),
            Arc::new(SystemClock),
            Arc::new(|_| {}),
        )
        .unwrap();
        let entrance = Arc::new(zhima_app::entrance::Entrance::new(
            store.clone(),
            Plans::standard(),
            zhima_domain::time::DEFAULT_TIMEZONE,
            keyring.clone(),
            controller.clone(),
            zhima_app::entrance::EntranceSettings {
                door: "bench".into(),
                entry: Duration::from_secs(3),
                replay_window: Duration::ZERO,
            },
            Arc::new(|_| {}),
        ));
        let logins = Arc::new(zhima_app::login::Logins::new(store.clone()));
        let state = web::Data::new(AppState {
            sessions: Arc::new(zhima_app::sessions::Sessions::new(
                store.clone(),
                logins.clone(),
            )),
            logins,
            wallet: Arc::new(zhima_app::wallet::Wallet::new(
                store.clone(),
                Default::default(),
                zhima_domain::time::DEFAULT_TIMEZONE,
            )),
            entrance,
            admin: Arc::new(zhima_app::admin::Admin::new(
                store.clone(),
                zhima_oauth::Provider::new(store.clone(), Default::default()),
            )),
            audit: zhima_app::audit::Audit::new(store.clone()),
            notifier: None,
            members: Arc::new(zhima_app::members::Members::new(
                store.clone(),
                Plans::standard(),
                zhima_domain::time::DEFAULT_TIMEZONE,
            )),
            store: store.clone(),
            plans: Plans::standard(),
            tz: zhima_domain::time::DEFAULT_TIMEZONE,
            clock: Arc::new(SystemClock),
            keys: Arc::new(zhima_app::keys::ApiKeys::new(store.clone())),
            door: DoorState {
                controller,
                name: "bench".into(),
                max_unlock_secs: 30,
                scan_limit: zhima_http::RateLimiter::new(
                    zhima_domain::limit::Rate {
                        per_sec: 1_000_000,
                        burst: 1_000_000,
                    },
                    16,
                ),
            },
            qr: zhima_http::qr::QrState::new(
                scan_signer,
                &SEED,
                keyring,
                chrono::Duration::days(365),
                Duration::from_secs(3),
                Duration::ZERO,
            ),
            oauth: zhima_http::oauth::OAuthState::new(
                zhima_oauth::Provider::new(store.clone(), Default::default()),
                [9; 32],
                None,
                Vec::new(),
            ),
            metrics: Default::default(),
            proxies: Default::default(),
            body_timeout: zhima_http::body::BODY_TIMEOUT,
        });
        let app = atest::init_service(
            App::new()
                .app_data(state.clone())
                .configure(zhima_http::configure),
        )
        .await;

        let mut to_relay = Vec::with_capacity(unlocks);
        let started = Instant::now();
        for i in 0..unlocks {
            door.clear_history();
            let req = atest::TestRequest::post()
                .uri("/api/v1.0/open/seconds")
                .insert_header(("Authorization", format!("Bearer {key}")))
                .insert_header(("Content-Type", "application/json"))
                .set_payload(r#"{"seconds": 1}"#)
                .to_request();
            let t0 = Instant::now();
            let res = atest::call_service(&app, req).await;
            assert!(res.status().is_success(), "request {i}: {}", res.status());
            let released = door
                .relay_transitions()
                .into_iter()
                .find(|(_, r)| *r == Relay::Unlocked)
                .expect("the door unlocked")
                .0;
            to_relay.push(released - t0);
        }
        let wall = started.elapsed();
        assert_eq!(door.relay(), Relay::Locked);

        let mut scan_to_relay = Vec::with_capacity(unlocks);
        for i in 0..unlocks {
            door.clear_history();
            let req = atest::TestRequest::post()
                .uri("/api/v1.0/door/scan")
                .insert_header(("Authorization", format!("Bearer {key}")))
                .insert_header(("Content-Type", "application/json"))
                .set_payload(format!(r#"{{"code": "{}"}}"#, codes[i % codes.len()]))
                .to_request();
            let t0 = Instant::now();
            let res = atest::call_service(&app, req).await;
            assert!(res.status().is_success(), "scan {i}: {}", res.status());
            let body: serde_json::Value = atest::read_body_json(res).await;
            assert_eq!(body["errno"], "1000", "scan {i}: {body}");
            let released = door
                .relay_transitions()
                .into_iter()
                .find(|(_, r)| *r == Relay::Unlocked)
                .expect("the door unlocked")
                .0;
            scan_to_relay.push(released - t0);
            // let the 3 s entry end (no wall time: the clock is paused)
            tokio::time::sleep(Duration::from_secs(4)).await;
        }

        // the floor: one access event committed, nothing else
        let mut write_only = Vec::with_capacity(unlocks);
        for _ in 0..unlocks {
            let e = NewAccessEvent::new(
                Utc::now(),
                "bench",
                AccessMethod::Api,
                Outcome::Granted,
                "bench",
            );
            let st = store.clone();
            let t0 = Instant::now();
            web::block(move || st.record_access(&e))
                .await
                .unwrap()
                .unwrap();
            write_only.push(t0.elapsed());
        }

        to_relay.sort();
        scan_to_relay.sort();
        write_only.sort();
        let backend = zhima_storage::redact_url(&url);
        println!("door latency, {unlocks} unlocks with zero-length holds ({backend})");
        println!("| measure | p50 | p99 | max |");
        println!("|---|---|---|---|");
        for (name, v) in [
            (
                "POST /open/seconds reaches the app → relay command",
                &to_relay,
            ),
            (
                "POST /door/scan reaches the app → relay command",
                &scan_to_relay,
            ),
            ("one access event committed (same run)", &write_only),
        ] {
            println!(
                "| {name} | {} | {} | {} |",
                micros(percentile(v, 0.5)),
                micros(percentile(v, 0.99)),
                micros(*v.last().unwrap())
            );
        }
        println!(
            "ratio p50 request→relay / commit alone: {:.2}",
            percentile(&to_relay, 0.5).as_secs_f64() / percentile(&write_only, 0.5).as_secs_f64()
        );
        println!(
            "signed-code verifications on one core: {verify_rate:.0}/s (signing: {sign_rate:.0}/s)"
        );
        println!(
            "{unlocks} /open/seconds unlocks in {:.1} s of wall time ({:.0} unlocks/s)",
            wall.as_secs_f64(),
            unlocks as f64 / wall.as_secs_f64()
        );
    });
}
