//! kill -9 of the real `zhima` binary during a stream of payments: after a
//! restart every payment that was answered errno 1000 is there exactly once,
//! the database is consistent, and the server comes back ready with the door
//! locked. Runs on SQLite, and on PostgreSQL when `TEST_ZHIMA_POSTGRES_URL`
//! is set.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

use crate::support::process::{call, cli, create_api_key, free_port, serve, wait_ready};
use reqwest::Method;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use zhima_storage::testing::TestDatabase;
use zhima_storage::{Store, StoreOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_payments_loses_no_answered_payment() {
    let db = TestDatabase::new().unwrap();
    let key = create_api_key(db.url(), "till", "member:read,member:write");

    let port = free_port();
    let mut server = serve(db.url(), port, &[]);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    wait_ready(&client, &base).await;
    let body = json!({"openid": "crash-openid-1", "basicInfo": {"nickName": "Crash"}});
    let url = format!("{base}/api/v1.0/member/new");
    let created = call(&client, Method::POST, &url, &key, &body).await;
    assert_eq!(created["errno"], "1000", "{created}");

    // eight tills send payments until the server dies
    let answered = Arc::new(Mutex::new(BTreeSet::new()));
    let sent = Arc::new(Mutex::new(BTreeSet::new()));
    let mut tills = Vec::new();
    for till in 0..8 {
        let (client, base, key) = (client.clone(), base.clone(), key.clone());
        let (answered, sent) = (answered.clone(), sent.clone());
        tills.push(tokio::spawn(async move {
            for n in 0.. {
                let index = format!("crash-{till}-{n}");
                sent.lock().unwrap().insert(index.clone());
                let body = json!({"op": "add", "data": {"paidTime": "201803121929",
                    "payIndex": index, "CNYAmount": "1", "payType": "DONATION"}});
                let Ok(res) = client
                    .patch(format!("{base}/api/v1.0/member/openid/crash-openid-1"))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await
                else {
                    return;
                };
                let Ok(v) = res.json::<Value>().await else {
                    return;
                };
                if v["errno"] == "1000" {
                    answered.lock().unwrap().insert(index);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    for t in tills {
        t.await.unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    let sent = sent.lock().unwrap().clone();
    assert!(
        answered.len() > 20,
        "too few payments before the kill: {}",
        answered.len()
    );

    // straight from the database, before anything else touches it
    let store = Store::open(db.url(), &StoreOptions::default()).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    let unique = crate::support::stored_pay_indexes(&store, "crash-openid-1");
    let missing: Vec<_> = answered.difference(&unique).collect();
    assert!(missing.is_empty(), "answered 1000 but lost: {missing:?}");
    // at most the requests in flight at the kill were stored unanswered
    assert!(unique.is_subset(&sent));
    assert!(
        unique.len() - answered.len() <= 8,
        "{} stored, {} answered",
        unique.len(),
        answered.len()
    );

    // the server comes back ready, the door locked, and serves them all
    let port = free_port();
    let mut server = serve(db.url(), port, &[]);
    let base = format!("http://127.0.0.1:{port}");
    let ready = wait_ready(&client, &base).await;
    assert_eq!(ready["door"], "ok");
    // a replay of an answered payment is recognised, not recorded again
    let replay = answered.iter().next().unwrap().clone();
    let body = json!({"op": "add", "data": {"paidTime": "201803121929",
        "payIndex": replay, "CNYAmount": "1", "payType": "DONATION"}});
    let url = format!("{base}/api/v1.0/member/openid/crash-openid-1");
    let v = call(&client, Method::PATCH, &url, &key, &body).await;
    assert_eq!(v["errno"], "1000", "{v}");
    assert_eq!(
        crate::support::stored_pay_indexes(&store, "crash-openid-1"),
        unique,
        "the replay added nothing"
    );
    server.kill().unwrap();
    server.wait().unwrap();
    eprintln!(
        "kill -9: {} payments answered 1000, {} stored, none lost or doubled",
        answered.len(),
        unique.len()
    );
}

/// A CLI command over TCP to PostgreSQL used to crash at exit about one run
/// in five (SIGSEGV, or krb5's `k5_mutex_lock` assertion): the pool was
/// still making a connection, inside libpq's SSL/GSS negotiation, on a
/// thread of its own. A hundred commands in a row now all exit cleanly
/// (`cli` fails with the signal and the stderr of any that does not).
#[test]
fn a_hundred_cli_commands_exit_cleanly() {
    let db = TestDatabase::new().unwrap();
    for i in 0..100 {
        match i % 3 {
            0 => {
                cli(db.url(), &["migrate"]);
            }
            1 => {
                create_api_key(db.url(), &format!("loop-{i}"), "member:read");
            }
            _ => {
                assert!(cli(db.url(), &["api-key", "list"]).contains("loop-1\t"));
            }
        }
    }
}

/// Log lines written to a pipe (the systemd journal, a file) carry no
/// terminal colour codes.
#[test]
fn logs_to_a_pipe_have_no_colour_codes() {
    let db = TestDatabase::new().unwrap();
    let out = std::process::Command::new(crate::support::process::ZHIMA)
        .arg("migrate")
        .env("ZHIMA_DATABASE__URL", db.url())
        .env("ZHIMA_LOG__LEVEL", "info")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("applied migration"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "colour codes in: {stderr:?}");
}

/// `zhima --version` names the version and, in a git checkout, the commit
/// the binary was built from.
#[test]
fn the_version_names_the_commit() {
    let out = std::process::Command::new(crate::support::process::ZHIMA)
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(&format!("zhima {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    let checkout = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.git");
    if checkout.exists() {
        let commit = text
            .trim()
            .trim_end_matches(')')
            .rsplit(' ')
            .next()
            .unwrap_or("");
        assert!(
            commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit()),
            "{text}"
        );
    }
}

/// `zhima doctor` names each problem with its fix, exits 1 while there is
/// one, and 0 once they are fixed; it creates no database.
#[test]
fn the_doctor_names_problems_with_their_fixes() {
    let dir = std::env::temp_dir().join(format!("zhima-doctor-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("z.db");
    let key = dir.join("qr.key");
    let doctor = || {
        let out = std::process::Command::new(crate::support::process::ZHIMA)
            .arg("doctor")
            .env("ZHIMA_DATABASE__URL", format!("sqlite://{}", db.display()))
            .env("ZHIMA_QR__KEY_FILE", &key)
            .env("ZHIMA_LOG__LEVEL", "warn")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    let (code, out) = doctor();
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("PROBLEM database") && out.contains("zhima migrate"),
        "{out}"
    );
    assert!(!db.exists(), "the doctor created the database");
    assert!(out.contains("PROBLEM qr key"), "{out}");
    assert!(out.contains("ok      door"), "{out}");
    crate::support::process::cli(&format!("sqlite://{}", db.display()), &["migrate"]);
    std::fs::write(&key, "07".repeat(32)).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, out) = doctor();
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("fix: chmod 600 {}", key.display())),
        "{out}"
    );
    assert!(out.contains("ok      database"), "{out}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, out) = doctor();
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("PROBLEM"), "{out}");
    // the GPIO driver where it cannot work (this build, this machine): a
    // problem named, found by probing, without claiming a pin
    let out = std::process::Command::new(crate::support::process::ZHIMA)
        .arg("doctor")
        .env("ZHIMA_DATABASE__URL", format!("sqlite://{}", db.display()))
        .env("ZHIMA_QR__KEY_FILE", &key)
        .env("ZHIMA_DOOR__DRIVER", "rppal")
        .env("ZHIMA_LOG__LEVEL", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("PROBLEM door") && text.contains("rppal"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
