//! Every released schema upgrades with its data. For each version in
//! `migrations/released.txt`: a database with exactly the migrations that
//! version shipped, filled as that version wrote it
//! (`tests/fixtures/<version>.sql`: members, payments, an API key, the
//! access log), migrated by this build's `zhima migrate`, then served; the
//! member, their validity, their payments, the API key and the access log
//! read back through the API. On SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

use std::path::Path;

use reqwest::Method;
use serde_json::{json, Value};
use zhima_storage::testing::{migrate_through, TestDatabase};

use crate::support::process::{call, cli, free_port, serve, wait_ready};

const RELEASED: &str = include_str!("../../../../migrations/released.txt");

/// The fixtures' API key (admin), stored there only as its SHA-256.
const FIXTURE_KEY: &str = "zk_upgrade_fixture_key_0000000000000000000000";

/// (version, last migration) for each released version.
fn released() -> Vec<(&'static str, &'static str)> {
    RELEASED
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_once(char::is_whitespace).unwrap())
        .map(|(v, m)| (v, m.trim()))
        .collect()
}

#[test]
fn the_released_list_names_each_tags_last_migration() {
    let versions = released();
    assert!(
        !versions.is_empty(),
        "migrations/released.txt lists no version"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for (version, last) in versions {
        for backend in ["sqlite", "postgres"] {
            assert!(
                root.join("migrations").join(backend).join(last).is_dir(),
                "{version}: no migrations/{backend}/{last}"
            );
        }
        // where the clone has the tag, the list agrees with it
        let tree = std::process::Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(["ls-tree", "--name-only", version, "migrations/sqlite/"])
            .output();
        match tree {
            Ok(out) if out.status.success() => {
                let listed = String::from_utf8_lossy(&out.stdout).into_owned();
                let tagged_last = listed.lines().filter_map(|l| l.rsplit('/').next()).max();
                assert_eq!(
                    tagged_last,
                    Some(last),
                    "{version}: the tag's last migration"
                );
            }
            _ => eprintln!("{version}: no such tag in this clone; the list is taken as it is"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_released_schema_upgrades_with_its_data() {
    for (version, last) in released() {
        let db = TestDatabase::new().unwrap();
        let applied = migrate_through(db.url(), last).unwrap();
        assert_eq!(applied.last().map(String::as_str), Some(last), "{version}");
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(format!("{version}.sql"));
        let sql = std::fs::read_to_string(&fixture)
            .unwrap_or_else(|e| panic!("{}: {e}", fixture.display()));
        db.execute(&sql)
            .unwrap_or_else(|e| panic!("{version}: the fixture does not load: {e}"));

        // this build migrates it
        let migrated = cli(db.url(), &["migrate"]);
        assert!(migrated.contains("(0 pending)"), "{version}: {migrated}");

        let port = free_port();
        let _server = serve(db.url(), port, &[]);
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let ready = wait_ready(&http, &base).await;
        assert_eq!(ready["status"], "ready", "{version}: {ready}");

        // the member, as that version answered for them
        let member = call(
            &http,
            Method::GET,
            &format!("{base}/api/v1.0/member/openid/o-upgrade-1"),
            FIXTURE_KEY,
            &json!({}),
        )
        .await;
        assert_eq!(member["errno"], "1000", "{version}: {member}");
        check_member(version, &member);

        // the access log keeps its entry
        let entries = call(
            &http,
            Method::GET,
            &format!("{base}/api/v1.0/entries"),
            FIXTURE_KEY,
            &json!({}),
        )
        .await;
        let events = entries["data"]["events"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let seen: Vec<(Value, Value, Value, bool)> = events
            .iter()
            .map(|e| {
                let whose = e["memberId"] == member["id"];
                (
                    e["door"].clone(),
                    e["outcome"].clone(),
                    e["reason"].clone(),
                    whose,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (json!("front"), json!("granted"), json!("rfid_ok"), true),
                (
                    json!("front"),
                    json!("refused"),
                    json!("unknown_card"),
                    false
                ),
            ],
            "{version}: the fixture's entries: {entries}"
        );

        // and the upgraded database takes new writes
        let paid = call(
            &http,
            Method::PATCH,
            &format!("{base}/api/v1.0/member/openid/o-upgrade-1"),
            FIXTURE_KEY,
            &json!({"op": "add", "data": {"paidTime": "202612051000", "payIndex": "after-upgrade",
                                         "CNYAmount": "50", "payType": "DONATION"}}),
        )
        .await;
        assert_eq!(paid["errno"], "1000", "{version}: {paid}");
        let created = call(
            &http,
            Method::POST,
            &format!("{base}/api/v1.0/member/new"),
            FIXTURE_KEY,
            &json!({"openid": "o-upgrade-new", "basicInfo": {"nickName": "after upgrade"}}),
        )
        .await;
        assert_eq!(created["errno"], "1000", "{version}: {created}");
    }
}

/// The fixture's member as the API must answer for them after the upgrade:
/// two paid months from 2026-11-01 10:00 run to 2027-01-01 10:00, the
/// latest payment shown, the card and the tag kept.
fn check_member(version: &str, member: &Value) {
    let expected = [
        ("/basicInfo/nickName", json!("升级 Upgrade")),
        ("/basicInfo/city", json!("Shanghai")),
        ("/memberInfo/expireTime", json!("202701011000")),
        ("/memberInfo/tags", json!(["STAFF"])),
        ("/paymentInfo/payIndex", json!("U-1M-2")),
        ("/paymentInfo/CNYAmount", json!("200.00")),
        ("/rfid", json!("04A1B2C3")),
    ];
    for (pointer, want) in expected {
        assert_eq!(
            member.pointer(pointer),
            Some(&want),
            "{version}: {pointer} of {member}"
        );
    }
}
