//! Throughput and latency of the OAuth2 token endpoint and the Partner API,
//! against the health route, measured side by side in one run.
//!
//! `cargo bench -p zhima-server --bench partner_api [-- SECONDS CONNECTIONS]`
//!
//! The real server (`Application`, 2 workers, simulated door) listens on a
//! loopback port over a throwaway database (SQLite, synchronous=FULL; or
//! PostgreSQL when `TEST_ZHIMA_POSTGRES_URL` is set). An in-process load
//! generator keeps CONNECTIONS requests in flight for SECONDS per phase, on
//! the same two cores:
//!
//! 1. `GET /healthz`: the floor of one request through actix;
//! 2. `GET /partner/1/profile` with a Bearer token (random among 100 members):
//!    token check (hash lookup), member, balance;
//! 3. `POST /oauth/token` refresh grant by a public partner: each connection
//!    follows its own rotation chain (every answer's refresh token is the
//!    next request's), so every request rotates a family;
//! 4. the same by a confidential partner with HTTP Basic: plus one argon2id
//!    verification of the client secret per request.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure is a crash

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use zhima_domain::ids::{MemberId, NickName, OpenId};
use zhima_domain::member::{NewMember, Profile};
use zhima_domain::partner::{PartnerScope, TokenKind, Tokens};
use zhima_domain::tags::Tags;
use zhima_door_hardware::SimulatedDoor;
use zhima_oauth::Provider;
use zhima_server::settings::Settings;
use zhima_server::{Application, SystemClock};
use zhima_storage::testing::TestDatabase;
use zhima_storage::{Store, StoreOptions};

const REDIRECT: &str = "http://127.0.0.1:9/cb";
const MEMBERS: usize = 100;

struct Phase {
    name: &'static str,
    rate: f64,
    p50: Duration,
    p99: Duration,
    errors: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Runs `conns` loops of `step` for `secs`; `step(i, n)` is connection `i`'s
/// `n`th request and says whether it succeeded.
async fn phase<F, Fut>(name: &'static str, secs: u64, conns: usize, step: F) -> Phase
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let step = Arc::new(step);
    // warm up
    let warm = Instant::now() + Duration::from_millis(500);
    let mut tasks = Vec::new();
    for i in 0..conns {
        let step = step.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < warm {
                step(i).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for i in 0..conns {
        let step = step.clone();
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            let mut errors = 0;
            while Instant::now() < end {
                let t0 = Instant::now();
                if !step(i).await {
                    errors += 1;
                }
                times.push(t0.elapsed());
            }
            (times, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (times, e) = t.await.unwrap();
        all.extend(times);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    Phase {
        name,
        rate: all.len() as f64 / elapsed,
        p50: percentile(&all, 0.50),
        p99: percentile(&all, 0.99),
        errors,
    }
}

fn code_for(
    provider: &Provider,
    client_id: &str,
    member: MemberId,
    challenge: Option<&str>,
) -> String {
    common::oauth::approved_code(
        provider,
        client_id,
        REDIRECT,
        "profile vip",
        member,
        challenge,
        Utc::now(),
    )
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    refresh_token: String,
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let secs = args.first().copied().unwrap_or(5);
    let conns = args.get(1).copied().unwrap_or(16) as usize;

    let db = TestDatabase::new().unwrap();
    let store = Store::open(db.url(), &StoreOptions::default()).unwrap();
    store.migrate().unwrap();
    let now = Utc::now();
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        let new = NewMember {
            openid: OpenId::parse(&format!("bench-{i}")).unwrap(),
            nickname: NickName::parse(&format!("bench {i}")).unwrap(),
            rfid: None,
            tags: Tags::default_new_member(),
            profile: Profile::default(),
        };
        let record = store.create_member(&new, None, now).unwrap();
        store
            .grant_tokens(
                &new.openid,
                TokenKind::Free,
                Tokens::whole(50),
                "bench",
                now,
            )
            .unwrap();
        members.push(record.member.id);
    }
    let provider = Provider::new(store.clone(), Default::default());
    let scopes: BTreeSet<PartnerScope> = PartnerScope::ALL.into_iter().collect();
    let confidential = provider
        .register("Bench", &[REDIRECT.to_owned()], false, &scopes, now)
        .unwrap();
    let public = provider
        .register("Bench app", &[REDIRECT.to_owned()], true, &scopes, now)
        .unwrap();
    let secret = confidential.secret.clone().unwrap();
    let conf_id = confidential.client.client_id.clone();
    let pub_id = public.client.client_id.clone();

    let env: HashMap<String, String> = HashMap::from([
        ("ZHIMA_DATABASE__URL".to_owned(), db.url().to_owned()),
        ("ZHIMA_HTTP__BIND".to_owned(), "127.0.0.1:0".to_owned()),
        ("ZHIMA_HTTP__WORKERS".to_owned(), "2".to_owned()),
        ("ZHIMA_LOG__LEVEL".to_owned(), "error".to_owned()),
        ("ZHIMA_QR__SIGNING_KEY".to_owned(), "07".repeat(32)),
    ]);
    let settings = Settings::load_with_env(None, Some(env)).unwrap();

    actix_web::rt::System::new().block_on(async move {
        let app = Application::build_with_door(
            &settings,
            Arc::new(SystemClock),
            Arc::new(SimulatedDoor::new()),
        )
        .unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        actix_web::rt::spawn(app.run_until_stopped());

        // the load generator runs on its own runtime thread
        let handle = std::thread::spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    let http = reqwest::Client::builder()
                        .pool_max_idle_per_host(conns)
                        .build()
                        .unwrap();
                    let token_url = format!("{base}/oauth/token");
                    // access tokens for the profile phase; refresh chains
                    let mut access = Vec::new();
                    let mut chains_public = Vec::new();
                    let mut chains_conf = Vec::new();
                    for (i, member) in members.iter().enumerate() {
                        let code = code_for(
                            &provider,
                            &conf_id,
                            *member,
                            Some(common::oauth::CHALLENGE),
                        );
                        let answer = common::oauth::redeem(
                            &http,
                            &token_url,
                            (&conf_id, &secret),
                            &code,
                            REDIRECT,
                        )
                        .await;
                        let t: TokenAnswer = serde_json::from_value(answer).unwrap();
                        access.push(t.access_token);
                        if i < conns {
                            chains_conf.push(std::sync::Mutex::new(t.refresh_token));
                            let (challenge, verifier) =
                                oauth2::PkceCodeChallenge::new_random_sha256();
                            let code =
                                code_for(&provider, &pub_id, *member, Some(challenge.as_str()));
                            let t: TokenAnswer = http
                                .post(&token_url)
                                .form(&[
                                    ("grant_type", "authorization_code"),
                                    ("code", &code),
                                    ("redirect_uri", REDIRECT),
                                    ("client_id", &pub_id),
                                    ("code_verifier", verifier.secret()),
                                ])
                                .send()
                                .await
                                .unwrap()
                                .json()
                                .await
                                .unwrap();
                            chains_public.push(std::sync::Mutex::new(t.refresh_token));
                        }
                    }
                    let access = Arc::new(access);
                    let chains_public = Arc::new(chains_public);
                    let chains_conf = Arc::new(chains_conf);
                    let mut phases = Vec::new();

                    let (h, u) = (http.clone(), format!("{base}/healthz"));
                    phases.push(
                        phase("GET /healthz", secs, conns, move |_| {
                            let (h, u) = (h.clone(), u.clone());
                            async move {
                                h.get(&u)
                                    .send()
                                    .await
                                    .is_ok_and(|r| r.status().is_success())
                            }
                        })
                        .await,
                    );
                    let (h, u, a) = (http.clone(), format!("{base}/partner/1/profile"), access.clone());
                    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                    phases.push(
                        phase("GET /partner/1/profile", secs, conns, move |_| {
                            let n = counter.fetch_add(7, std::sync::atomic::Ordering::Relaxed);
                            let token = a[n % a.len()].clone();
                            let (h, u) = (h.clone(), u.clone());
                            async move {
                                h.get(&u)
                                    .bearer_auth(token)
                                    .send()
                                    .await
                                    .is_ok_and(|r| r.status().is_success())
                            }
                        })
                        .await,
                    );
                    for (name, chains, basic) in [
                        ("POST /oauth/token (refresh, public)", chains_public, None),
                        (
                            "POST /oauth/token (refresh, Basic + argon2id)",
                            chains_conf,
                            Some((conf_id.clone(), secret.clone())),
                        ),
                    ] {
                        let (h, u) = (http.clone(), token_url.clone());
                        let pub_id = pub_id.clone();
                        phases.push(
                            phase(name, secs, conns, move |i| {
                                let (h, u, chains, basic, pub_id) =
                                    (h.clone(), u.clone(), chains.clone(), basic.clone(), pub_id.clone());
                                async move {
                                    let refresh = chains[i].lock().unwrap().clone();
                                    let mut req = h.post(&u);
                                    let mut form = vec![
                                        ("grant_type", "refresh_token".to_owned()),
                                        ("refresh_token", refresh),
                                    ];
                                    match &basic {
                                        Some((id, secret)) => req = req.basic_auth(id, Some(secret)),
                                        None => form.push(("client_id", pub_id)),
                                    }
                                    let Ok(res) = req.form(&form).send().await else {
                                        return false;
                                    };
                                    if !res.status().is_success() {
                                        return false;
                                    }
                                    let Ok(t) = res.json::<TokenAnswer>().await else {
                                        return false;
                                    };
                                    *chains[i].lock().unwrap() = t.refresh_token;
                                    true
                                }
                            })
                            .await,
                        );
                    }
                    phases
                })
        });
        // wait off the System thread, which must keep driving the server
        let phases = actix_web::rt::task::spawn_blocking(move || handle.join().unwrap())
            .await
            .unwrap();
        let backend = if std::env::var_os("TEST_ZHIMA_POSTGRES_URL").is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        };
        println!(
            "partner_api on {backend}: {secs} s per phase, {conns} connections, 2 server workers, same 2 cores"
        );
        println!(
            "| phase | req/s | p50 ms | p99 ms | errors | req/s ÷ health |\n|---|---|---|---|---|---|"
        );
        let health = phases[0].rate;
        for p in &phases {
            println!(
                "| {} | {:.0} | {:.2} | {:.2} | {} | {:.3} |",
                p.name,
                p.rate,
                p.p50.as_secs_f64() * 1e3,
                p.p99.as_secs_f64() * 1e3,
                p.errors,
                p.rate / health
            );
        }
    });
}
