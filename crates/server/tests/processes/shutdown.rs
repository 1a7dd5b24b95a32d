//! The real `zhima` binary: SIGTERM during an unlock locks the door at once,
//! answers the waiting request, and exits cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

use crate::support::process::{create_api_key, free_port, serve};
use std::process::Command;
use std::time::{Duration, Instant};

use zhima_storage::access::EventQuery;
use zhima_storage::testing::TestDatabase;
use zhima_storage::{Store, StoreOptions};

#[tokio::test]
async fn sigterm_during_an_unlock_locks_and_answers_at_once() {
    let db = TestDatabase::new().unwrap();
    let key = create_api_key(db.url(), "door", "door:open");

    let port = free_port();
    let mut server = serve(db.url(), port, &[("ZHIMA_HTTP__WORKERS", "1")]);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let up = Instant::now();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(
            up.elapsed() < Duration::from_secs(20),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let request = tokio::spawn({
        let client = client.clone();
        let url = format!("{base}/api/v1.0/open/seconds");
        async move {
            let res = client
                .post(url)
                .bearer_auth(key)
                .header("Content-Type", "application/json")
                .body(r#"{"seconds": 20}"#)
                .send()
                .await
                .unwrap();
            (
                res.status().as_u16(),
                res.json::<serde_json::Value>().await.unwrap(),
            )
        }
    });
    // wait until the unlock is logged (it is written just before the door moves)
    let store = Store::open(db.url(), &StoreOptions::default()).unwrap();
    let logged = Instant::now();
    loop {
        let events = store
            .access_events(EventQuery {
                since: None,
                before: None,
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        if events.iter().any(|e| e.event.reason == "api_unlock") {
            break;
        }
        assert!(
            logged.elapsed() < Duration::from_secs(10),
            "no unlock logged"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let signalled = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), request)
        .await
        .expect("the waiting request is answered promptly")
        .unwrap();
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "answered {:?} after SIGTERM, not after the 20 s unlock",
        signalled.elapsed()
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["errno"], "1000", "{body}");
    assert_eq!(body["errmsg"], "Door is now closed");

    let exited = Instant::now();
    loop {
        if let Some(code) = server.try_wait().unwrap() {
            assert!(code.success(), "exit status {code:?}");
            break;
        }
        assert!(
            exited.elapsed() < Duration::from_secs(15),
            "server did not exit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
