//! PostgreSQL goes away while serving: requests answer a documented errno
//! promptly (no hang past the connect timeout), `/readyz` fails, the door
//! stays locked, and the service recovers by itself when the database
//! returns. PostgreSQL only (`TEST_ZHIMA_POSTGRES_URL`); on SQLite the test
//! says it was skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use crate::support::spawn_app_with;
use serde_json::json;

#[actix_web::test]
async fn the_database_goes_away_and_comes_back() {
    let app = spawn_app_with(&[("ZHIMA_DATABASE__CONNECT_TIMEOUT_SECS", "1")]).await;
    if !app.db.is_postgres() {
        eprintln!("skipped: needs TEST_ZHIMA_POSTGRES_URL");
        return;
    }
    let body = json!({"openid": "outage-openid-1", "basicInfo": {"nickName": "Outage"}});
    crate::support::expect_errno(&app.post("/api/v1.0/member/new", &body).await, "1000");
    crate::support::expect_errno(
        &app.get("/api/v1.0/member/openid/outage-openid-1").await,
        "1000",
    );

    app.db.set_reachable(false).unwrap();
    let pay = json!({"op": "add", "data": {"paidTime": "201803121929", "payIndex": "out-1", "CNYAmount": "1", "payType": "DONATION"}});
    for _ in 0..3 {
        let started = Instant::now();
        let read = app.get("/api/v1.0/member/openid/outage-openid-1").await;
        let write = app
            .patch("/api/v1.0/member/openid/outage-openid-1", &pay)
            .await;
        let door = app
            .send(
                "POST",
                "/api/v1.0/open/seconds",
                Some(&app.door_key),
                Some(br#"{"seconds": 1}"#.to_vec()),
            )
            .await;
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "answers took {:?}",
            started.elapsed()
        );
        for a in [&read, &write, &door] {
            assert!(matches!(a.status, 500 | 503), "{} {}", a.status, a.body);
            let errno = a.body["errno"].as_str().unwrap();
            assert!(errno == "1500" || errno == "1503", "{}", a.body);
        }
        let ready = app.send("GET", "/readyz", None, None).await;
        assert_eq!(ready.status, 503);
        assert_eq!(ready.body["database"], "unreachable");
    }
    assert_eq!(app.door.unlock_count(), 0, "no log, no unlock");
    assert_eq!(app.door.relay(), zhima_door_hardware::Relay::Locked);
    // health is the process, not the database
    assert_eq!(app.send("GET", "/healthz", None, None).await.status, 200);

    app.db.set_reachable(true).unwrap();
    let back = Instant::now();
    loop {
        let ready = app.send("GET", "/readyz", None, None).await;
        if ready.status == 200 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "did not recover: {}",
            ready.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    crate::support::expect_errno(
        &app.get("/api/v1.0/member/openid/outage-openid-1").await,
        "1000",
    );
    crate::support::expect_errno(
        &app.patch("/api/v1.0/member/openid/outage-openid-1", &pay)
            .await,
        "1000",
    );
    eprintln!(
        "recovered {:?} after the database came back",
        back.elapsed()
    );
}
