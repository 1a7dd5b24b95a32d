//! `zhima backup` and `zhima restore` with the real binary. On SQLite:
//! a backup taken while payments keep arriving restores to a sound
//! database holding every payment answered before it began; restore then
//! serve gives the same member; a restore is refused while a server
//! serves; a backup killed midway leaves earlier backups whole and no file
//! under a backup's name.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use zhima_storage::{Store, StoreOptions};

use crate::support::process::{
    call, create_api_key, free_port, serve, try_cli, wait_ready, Server, ZHIMA,
};

/// A directory of its own for a test, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("zhima-backup-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn url(&self, db: &str) -> String {
        format!("sqlite://{}", self.0.join(db).display())
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn backups(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "tar"))
        .collect();
    found.sort();
    found
}

fn pay(n: usize) -> Value {
    json!({"op": "add", "data": {"paidTime": "202612011000", "payIndex": format!("load-{n}"),
                                 "CNYAmount": "1", "payType": "DONATION"}})
}

/// `zhima serve` on `url` with a desk key and one member (`openid`, a
/// month paid as `<openid>-first`): the server, a client, the base URL and
/// the key.
async fn serving_a_member(
    url: &str,
    openid: &str,
    nick: &str,
) -> (Server, reqwest::Client, String, String) {
    let key = create_api_key(url, "desk", "member:read,member:write");
    let port = free_port();
    let server = serve(url, port, &[]);
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&http, &base).await;
    let created = call(
        &http,
        Method::POST,
        &format!("{base}/api/v1.0/member/new"),
        &key,
        &json!({"openid": openid, "basicInfo": {"nickName": nick},
                "paymentInfo": {"paidTime": "202612011000", "payIndex": format!("{openid}-first"),
                                "CNYAmount": "200", "payType": "1M MEMBERSHIP"}}),
    )
    .await;
    assert_eq!(created["errno"], "1000", "{created}");
    (server, http, base, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_every_payment_answered_before_it() {
    if std::env::var_os("TEST_ZHIMA_POSTGRES_URL").is_some() {
        eprintln!("skipped in the PostgreSQL run: backups are of SQLite files");
        return;
    }
    let dir = Dir::new("load");
    let url = dir.url("live.db");
    let (mut server, http, base, key) = serving_a_member(&url, "bk-1", "备份 1").await;

    // payments one after another, while a backup is taken
    let (writer_http, writer_base, writer_key) = (http.clone(), base.clone(), key.clone());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = stop.clone();
    let writer = tokio::spawn(async move {
        let mut answered = Vec::new();
        let mut n = 0;
        while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
            let answer = call(
                &writer_http,
                Method::PATCH,
                &format!("{writer_base}/api/v1.0/member/openid/bk-1"),
                &writer_key,
                &pay(n),
            )
            .await;
            assert_eq!(answer["errno"], "1000", "{answer}");
            answered.push((n, std::time::Instant::now()));
            n += 1;
        }
        answered
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let began = std::time::Instant::now();
    let (ok, out, err) = {
        let url = url.clone();
        let to = dir.0.join("backups");
        tokio::task::spawn_blocking(move || {
            try_cli(&url, &["backup", "--to", to.to_str().unwrap()])
        })
        .await
        .unwrap()
    };
    assert!(ok, "{out}\n{err}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answered = writer.await.unwrap();
    let before: Vec<usize> = answered
        .iter()
        .filter(|(_, at)| *at < began)
        .map(|(n, _)| *n)
        .collect();
    assert!(
        before.len() > 3,
        "too few payments before the backup: {}",
        before.len()
    );
    assert!(
        answered.len() > before.len(),
        "no payment during or after the backup"
    );
    let live = call(
        &http,
        Method::GET,
        &format!("{base}/api/v1.0/member/openid/bk-1"),
        &key,
        &json!({}),
    )
    .await;

    // a restore is refused while the server serves
    let backup = backups(&dir.0.join("backups")).pop().unwrap();
    let (ok, _, err) = try_cli(&url, &["restore", backup.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("a server is using"), "{err}");
    let _ = server.kill();
    let _ = server.wait();

    // restored into a new place: sound, with every payment answered before
    let restored_url = dir.url("restored.db");
    let (ok, out, err) = try_cli(&restored_url, &["restore", backup.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    let store = Store::open(&restored_url, &StoreOptions::default()).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    let kept = crate::support::stored_pay_indexes(&store, "bk-1");
    for n in &before {
        assert!(
            kept.contains(&format!("load-{n}")),
            "load-{n} answered before the backup is missing"
        );
    }
    drop(store);

    // a quiet backup of the live database, restored over it and served,
    // gives the same member
    let (ok, out, err) = try_cli(
        &url,
        &["backup", "--to", dir.0.join("quiet").to_str().unwrap()],
    );
    assert!(ok, "{out}\n{err}");
    let quiet = backups(&dir.0.join("quiet")).pop().unwrap();
    let (ok, out, err) = try_cli(&url, &["restore", quiet.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("the database it replaced is kept as"), "{out}");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = serve(&url, port, &[]);
    wait_ready(&http, &base).await;
    let again = call(
        &http,
        Method::GET,
        &format!("{base}/api/v1.0/member/openid/bk-1"),
        &key,
        &json!({}),
    )
    .await;
    assert_eq!(again, live, "restore then serve: the same member");
}

#[test]
fn a_killed_backup_leaves_earlier_backups_whole_and_no_file_under_a_backups_name() {
    if std::env::var_os("TEST_ZHIMA_POSTGRES_URL").is_some() {
        return;
    }
    let dir = Dir::new("kill");
    let url = dir.url("big.db");
    let store = Store::open(&url, &StoreOptions::default()).unwrap();
    store.migrate().unwrap();
    // enough rows that a backup takes a while
    zhima_storage::testing::execute(
        &url,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
         INSERT INTO access_events (at, door, method, outcome, reason, detail)
         SELECT 1700000000 + i, 'front', 'api', 'refused', 'bad_seconds', printf('%0100d', i) FROM n;",
    )
    .unwrap();
    drop(store);
    let to = dir.0.join("backups");
    let (ok, out, err) = try_cli(&url, &["backup", "--to", to.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    let first = backups(&to).pop().unwrap();
    let first_bytes = std::fs::read(&first).unwrap();
    let mut killed = 0;
    for delay in [5u64, 20, 40, 80, 120] {
        std::thread::sleep(Duration::from_millis(1100)); // a new stamp
        let mut child = Command::new(ZHIMA)
            .args(["backup", "--to", to.to_str().unwrap()])
            .env("ZHIMA_DATABASE__URL", &url)
            .env("ZHIMA_QR__SIGNING_KEY", "07".repeat(32))
            .env("ZHIMA_LOG__LEVEL", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        if child.try_wait().unwrap().is_none() {
            killed += 1;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // every file with a backup's name is whole
        for backup in backups(&to) {
            let listed = Command::new("tar").arg("tf").arg(&backup).output().unwrap();
            let names = String::from_utf8_lossy(&listed.stdout);
            assert!(
                listed.status.success() && names.contains("zhima.db") && names.contains("MANIFEST"),
                "{} is not whole: {names}",
                backup.display()
            );
        }
        assert_eq!(
            std::fs::read(&first).unwrap(),
            first_bytes,
            "an earlier backup changed"
        );
    }
    assert!(
        killed > 0,
        "no backup was killed midway: the database is too small"
    );
    // the next backup clears what the killed ones left
    let (ok, out, err) = try_cli(
        &url,
        &["backup", "--to", to.to_str().unwrap(), "--keep", "2"],
    );
    assert!(ok, "{out}\n{err}");
    let left: Vec<String> = std::fs::read_dir(&to)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.iter().all(|n| !n.ends_with(".partial")), "{left:?}");
    assert!(backups(&to).len() <= 2, "--keep 2 kept {left:?}");
}

#[test]
fn a_file_that_is_not_a_backup_is_refused_and_nothing_is_replaced() {
    if std::env::var_os("TEST_ZHIMA_POSTGRES_URL").is_some() {
        return;
    }
    let dir = Dir::new("bad");
    let url = dir.url("z.db");
    let (ok, _, err) = try_cli(&url, &["migrate"]);
    assert!(ok, "{err}");
    let before = std::fs::read(dir.0.join("z.db")).unwrap();
    // not a tar; a tar with a path outside; a tar without a database
    let junk = dir.0.join("junk.tar");
    std::fs::write(&junk, b"not a backup at all").unwrap();
    let evil_dir = dir.0.join("evil");
    std::fs::create_dir_all(&evil_dir).unwrap();
    std::fs::write(evil_dir.join("passwd"), b"x").unwrap();
    let evil = dir.0.join("evil.tar");
    let made = Command::new("tar")
        .arg("cf")
        .arg(&evil)
        .arg("-C")
        .arg(&evil_dir)
        .arg("passwd")
        .status()
        .unwrap();
    assert!(made.success());
    for file in [&junk, &evil, &dir.0.join("missing.tar")] {
        let (ok, out, err) = try_cli(&url, &["restore", file.to_str().unwrap()]);
        assert!(!ok, "{} was restored: {out}", file.display());
        assert!(!err.is_empty());
    }
    assert_eq!(
        std::fs::read(dir.0.join("z.db")).unwrap(),
        before,
        "the database changed"
    );
    assert!(!dir.0.join("passwd").exists());
}

/// `zhima backup --to DIR` on the PostgreSQL `url`, with `PATH` as given.
fn backup_postgres(url: &str, to: &Path, path: &std::ffi::OsStr) -> (bool, String) {
    let out = Command::new(ZHIMA)
        .args(["backup", "--to", to.to_str().unwrap()])
        .env("ZHIMA_DATABASE__URL", url)
        .env("ZHIMA_QR__SIGNING_KEY", "07".repeat(32))
        .env("PATH", path)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_postgres_backup_says_plainly_when_pg_dump_is_missing_or_fails() {
    let dir = Dir::new("pg-missing");
    let to = dir.0.join("backups");
    let url = "postgres://zhima:hunter2-secret@127.0.0.1:1/none";
    // no pg_dump on PATH
    let empty = dir.0.join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let (ok, err) = backup_postgres(url, &to, empty.as_os_str());
    assert!(!ok, "a backup without pg_dump succeeded");
    assert!(err.contains("pg_dump, which is not installed"), "{err}");
    // pg_dump there, the database not: pg_dump's own words, not the password
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).any(|d| d.join("pg_dump").is_file());
    if found {
        let (ok, err) = backup_postgres(url, &to, &path);
        assert!(!ok, "a backup of an unreachable database succeeded");
        assert!(err.contains("pg_dump ended with"), "{err}");
        assert!(!err.contains("hunter2"), "the password in the error: {err}");
    } else {
        assert!(
            std::env::var("REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "REQUIRE_POSTGRES=1 and no pg_dump on PATH"
        );
        eprintln!("pg_dump not installed: its failure not tested");
    }
    // nothing under a backup's name, nothing half-written
    let left: Vec<_> = std::fs::read_dir(&to)
        .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in the backup directory: {left:?}");
}

#[test]
fn a_postgres_server_that_never_answers_fails_the_backup_in_time() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if !std::env::split_paths(&path).any(|d| d.join("pg_dump").is_file()) {
        eprintln!("skipped: no pg_dump");
        return;
    }
    // a port that takes the connection and never says a word
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let dir = Dir::new("pg-silent");
    let to = dir.0.join("backups");
    let mut backup = Command::new(ZHIMA)
        .args(["backup", "--to", to.to_str().unwrap()])
        .env(
            "ZHIMA_DATABASE__URL",
            format!("postgres://zhima@127.0.0.1:{port}/zhima?sslmode=disable"),
        )
        .env("ZHIMA_QR__SIGNING_KEY", "07".repeat(32))
        .env_remove("PGCONNECT_TIMEOUT")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = backup.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = backup.kill();
            let _ = backup.wait();
            panic!("the backup still waited after 60 s for a server that never answers");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut backup.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "a backup of a silent server succeeded");
    assert!(err.contains("pg_dump ended with"), "{err}");
    drop(silent);
}

/// On PostgreSQL, `zhima backup` is `pg_dump` of the live database in the
/// same kind of archive; `pg_restore` of it into an empty database gives a
/// server that answers the same member; `zhima restore` says how instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_backup_is_a_dump_that_pg_restore_puts_back() {
    if std::env::var_os("TEST_ZHIMA_POSTGRES_URL").is_none() {
        eprintln!("skipped: the PostgreSQL backup is tested in the PostgreSQL runs");
        return;
    }
    let db = zhima_storage::testing::TestDatabase::new().unwrap();
    let url = db.url().to_owned();
    let (mut server, http, base, key) = serving_a_member(&url, "pg-1", "备份 PG").await;
    for n in 0..5 {
        let answer = call(
            &http,
            Method::PATCH,
            &format!("{base}/api/v1.0/member/openid/pg-1"),
            &key,
            &pay(n),
        )
        .await;
        assert_eq!(answer["errno"], "1000", "{answer}");
    }
    let live = call(
        &http,
        Method::GET,
        &format!("{base}/api/v1.0/member/openid/pg-1"),
        &key,
        &json!({}),
    )
    .await;

    // backed up while it serves
    let dir = Dir::new("pg");
    let (ok, out, err) = try_cli(
        &url,
        &["backup", "--to", dir.0.join("backups").to_str().unwrap()],
    );
    assert!(ok, "{out}\n{err}");
    let _ = server.kill();
    let _ = server.wait();
    let archive = backups(&dir.0.join("backups")).pop().unwrap();
    let listed = Command::new("tar")
        .arg("tf")
        .arg(&archive)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        ["zhima.pgdump", "MANIFEST"],
        "the archive's files"
    );
    let unpacked = Command::new("tar")
        .arg("xf")
        .arg(&archive)
        .arg("-C")
        .arg(&dir.0)
        .arg("zhima.pgdump")
        .status()
        .unwrap();
    assert!(unpacked.success());

    // into an empty database, then served by this build
    let fresh = zhima_storage::testing::TestDatabase::new().unwrap();
    let restored = Command::new("pg_restore")
        .args([
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--dbname",
        ])
        .arg(fresh.url())
        .arg(dir.0.join("zhima.pgdump"))
        .output()
        .unwrap();
    assert!(
        restored.status.success(),
        "pg_restore: {}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = serve(fresh.url(), port, &[]);
    wait_ready(&http, &base).await;
    let again = call(
        &http,
        Method::GET,
        &format!("{base}/api/v1.0/member/openid/pg-1"),
        &key,
        &json!({}),
    )
    .await;
    assert_eq!(again, live, "pg_restore then serve: the same member");

    // zhima restore does not pretend: it says how
    let (ok, _, err) = try_cli(&dir.url("z.db"), &["restore", archive.to_str().unwrap()]);
    assert!(!ok, "a PostgreSQL dump was restored into SQLite");
    assert!(err.contains("pg_restore"), "{err}");
}

/// `GET /metrics` with an admin key: the Prometheus text.
async fn metrics(http: &reqwest::Client, base: &str, key: &str) -> String {
    http.get(format!("{base}/metrics"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_makes_the_missed_daily_backup_at_start_and_a_failure_leaves_it_ready() {
    if std::env::var_os("TEST_ZHIMA_POSTGRES_URL").is_some() {
        return;
    }
    let dir = Dir::new("daily");
    let url = dir.url("z.db");
    let key = create_api_key(&url, "ops", "admin");
    let (daily, second) = (dir.0.join("daily"), dir.0.join("usb"));
    let env = [
        ("ZHIMA_BACKUP__DIR", daily.to_str().unwrap()),
        ("ZHIMA_BACKUP__COPY_TO", second.to_str().unwrap()),
        // a time of day already past: today's backup is due at start-up
        ("ZHIMA_BACKUP__AT", "00:00"),
    ];
    let http = reqwest::Client::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = serve(&url, port, &env);
    wait_ready(&http, &base).await;
    let started = std::time::Instant::now();
    while backups(&second).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no backup made at start-up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(backups(&daily).len(), 1);
    let text = metrics(&http, &base, &key).await;
    assert!(text.contains("zhima_backup_age_seconds "), "{text}");
    assert!(text.contains("zhima_backup_failures_total 0"), "{text}");
    // a restart the same day makes no second one
    let _ = server.kill();
    let _ = server.wait();
    let _server = serve(&url, port, &env);
    wait_ready(&http, &base).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(backups(&daily).len(), 1, "a second backup the same day");
    drop(_server);

    // a directory that cannot be made: counted, logged, and the server is ready
    let blocker = dir.0.join("a-file");
    std::fs::write(&blocker, b"x").unwrap();
    let bad = blocker.join("backups");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _failing = serve(
        &url,
        port,
        &[
            ("ZHIMA_BACKUP__DIR", bad.to_str().unwrap()),
            ("ZHIMA_BACKUP__AT", "00:00"),
        ],
    );
    wait_ready(&http, &base).await;
    let started = std::time::Instant::now();
    loop {
        let text = metrics(&http, &base, &key).await;
        if text.contains("zhima_backup_failures_total 1") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no failure counted: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(
        ready.status(),
        200,
        "a failed backup took the server out of service"
    );
}
