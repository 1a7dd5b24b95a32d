//! The Raspberry Pi binaries (`scripts/cross.sh`) run under
//! `qemu-user-static`, as they would on the Pi: `--version`, `migrate`,
//! `serve` until `/readyz`, an API key, a member created and read back, a
//! QR scan that unlocks the simulated door, and SIGTERM.
//!
//! `TEST_ZHIMA_PI_BINARIES` names the directory of `zhima-<target>` files
//! (`$CARGO_TARGET_DIR/pi`); without it the test is skipped, unless
//! `REQUIRE_PI_SMOKE=1` (as in CI), which makes that a failure. It runs on
//! the suite's database: SQLite, then PostgreSQL over its socket and TCP.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use zhima_storage::testing::TestDatabase;

use crate::support::process::{call, free_port, Server};

/// The targets and the emulator each runs under.
const TARGETS: [(&str, &str); 2] = [
    ("aarch64-unknown-linux-gnu", "qemu-aarch64-static"),
    ("armv7-unknown-linux-gnueabihf", "qemu-arm-static"),
];

/// The same signing key the server uses, so the test can make a code.
const KEY_HEX: &str = "2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a";

fn binaries() -> Option<PathBuf> {
    match std::env::var_os("TEST_ZHIMA_PI_BINARIES") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => {
            assert!(
                std::env::var("REQUIRE_PI_SMOKE").as_deref() != Ok("1"),
                "REQUIRE_PI_SMOKE=1 but TEST_ZHIMA_PI_BINARIES is not set (scripts/cross.sh makes them)"
            );
            eprintln!("skipped: TEST_ZHIMA_PI_BINARIES is not set (scripts/cross.sh)");
            None
        }
    }
}

/// `qemu BINARY ARGS` with the database and the key: success, stdout, stderr.
fn run(qemu: &str, binary: &Path, url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(qemu)
        .arg(binary)
        .args(args)
        .env("ZHIMA_DATABASE__URL", url)
        .env("ZHIMA_QR__SIGNING_KEY", KEY_HEX)
        .env("ZHIMA_LOG__LEVEL", "warn")
        .output()
        .unwrap_or_else(|e| panic!("{qemu} (Debian: qemu-user-static): {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(qemu: &str, binary: &Path, url: &str, args: &[&str]) -> String {
    let (success, out, err) = run(qemu, binary, url, args);
    assert!(
        success,
        "{} {}: {err}{out}",
        binary.display(),
        args.join(" ")
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pi_binaries_run_a_door_under_qemu() {
    let Some(dir) = binaries() else { return };
    for (target, qemu) in TARGETS {
        let binary = dir.join(format!("zhima-{target}"));
        assert!(
            binary.is_file(),
            "no {} (scripts/cross.sh)",
            binary.display()
        );
        smoke(target, qemu, &binary).await;
    }
}

async fn smoke(target: &str, qemu: &str, binary: &Path) {
    let db = TestDatabase::new().unwrap();
    let url = db.url().to_owned();

    let version = ok(qemu, binary, &url, &["--version"]);
    assert!(
        version.starts_with(&format!("zhima {}", env!("CARGO_PKG_VERSION"))),
        "{target}: {version}"
    );
    let migrated = ok(qemu, binary, &url, &["migrate"]);
    assert!(migrated.contains("up to date"), "{target}: {migrated}");
    let admin = ok(
        qemu,
        binary,
        &url,
        &["api-key", "create", "--name", "desk", "--scopes", "admin"],
    )
    .lines()
    .last()
    .unwrap()
    .to_owned();
    let door = ok(
        qemu,
        binary,
        &url,
        &[
            "api-key",
            "create",
            "--name",
            "scanner",
            "--scopes",
            "door:open",
        ],
    )
    .lines()
    .last()
    .unwrap()
    .to_owned();

    let port = free_port();
    let mut server = Server(
        Command::new(qemu)
            .arg(binary)
            .arg("serve")
            .env("ZHIMA_DATABASE__URL", &url)
            .env("ZHIMA_HTTP__BIND", format!("127.0.0.1:{port}"))
            .env("ZHIMA_HTTP__WORKERS", "2")
            .env("ZHIMA_QR__SIGNING_KEY", KEY_HEX)
            .env("ZHIMA_LOG__LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    // emulated, a start takes longer than natively
    let up = Instant::now();
    let ready: Value = loop {
        if let Ok(res) = http.get(format!("{base}/readyz")).send().await {
            if res.status().is_success() {
                break res.json().await.unwrap();
            }
        }
        assert!(
            server.try_wait().unwrap().is_none(),
            "{target}: the server exited"
        );
        assert!(
            up.elapsed() < Duration::from_secs(120),
            "{target}: not ready in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(ready["status"], "ready", "{target}: {ready}");

    // a member with a month paid, read back
    let created = call(
        &http,
        Method::POST,
        &format!("{base}/api/v1.0/member/new"),
        &admin,
        &json!({"openid": "pi-1", "basicInfo": {"nickName": "树莓派"},
                "paymentInfo": {"paidTime": chrono::Utc::now().format("%Y%m%d%H%M").to_string(),
                                "payIndex": "pi-pay-1", "CNYAmount": "200",
                                "payType": "1M MEMBERSHIP"}}),
    )
    .await;
    assert_eq!(created["errno"], "1000", "{target}: {created}");
    let id = created["data"]["new_id"].as_i64().unwrap();
    let read = call(
        &http,
        Method::GET,
        &format!("{base}/api/v1.0/member/openid/pi-1"),
        &admin,
        &json!({}),
    )
    .await;
    assert_eq!(read["basicInfo"]["nickName"], "树莓派", "{target}: {read}");
    assert_eq!(read["basicInfo"]["status"], "OK", "{target}: {read}");

    // the member's code, signed with the server's key, opens the door
    let signer = zhima_domain::qr::Signer::from_seed(
        zhima_domain::qr::KeyId::parse("1").unwrap(),
        &zhima_domain::qr::parse_hex32(KEY_HEX).unwrap(),
    );
    let now = chrono::Utc::now();
    let code = zhima_domain::qr::issue(
        &signer,
        zhima_domain::ids::MemberId(id),
        now,
        now + chrono::Duration::days(1),
    );
    let scanned = call(
        &http,
        Method::POST,
        &format!("{base}/api/v1.0/door/scan"),
        &door,
        &json!({ "code": code }),
    )
    .await;
    assert_eq!(scanned["errno"], "1000", "{target}: {scanned}");
    assert_eq!(scanned["errmsg"], "Welcome, 树莓派!", "{target}: {scanned}");
    let log = call(
        &http,
        Method::GET,
        &format!("{base}/api/v1.0/entries"),
        &admin,
        &json!({}),
    )
    .await;
    let newest = &log["data"]["events"][0];
    assert_eq!(
        (&newest["reason"], &newest["memberId"]),
        (&json!("qr_ok"), &json!(id)),
        "{target}: the entry in the log: {log}"
    );

    // SIGTERM: a clean stop, exit status 0
    let stopped = Command::new("kill")
        .arg("-TERM")
        .arg(server.id().to_string())
        .status()
        .unwrap();
    assert!(stopped.success());
    let until = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < until,
            "{target}: still running 60 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{target}: SIGTERM ended it with {status}");
    eprintln!("{target}: version, migrate, serve, key, member, QR entry, SIGTERM: ok");
}
