//! The disk under a SQLite database fills up, or its file system turns
//! read-only (what an ext4 SD card does after an I/O error, with
//! `errors=remount-ro`), while the real `zhima` binary serves it:
//! - every write answers errno 1507 (HTTP 507) promptly, and the door does
//!   not open (a grant that cannot be logged is no grant);
//! - reads keep answering, with the data as it was;
//! - nothing is half-written: after the fault, `PRAGMA integrity_check` is
//!   `ok`, no refused write left a row, and writes work again.
//!
//! SQLite only (a PostgreSQL server's disk is not the test's to fill; its
//! messages for a full disk and a read-only transaction map to 1507 too).
//! The database lives on a small ext4 image mounted through a loop device,
//! which needs root. Without it the tests print that they were skipped,
//! unless `TEST_ZHIMA_REQUIRE_MOUNT` is set (`.ci/run` sets it), which turns
//! a skip into a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::process::{free_port, serve, wait_ready};
use chrono::Utc;
use serde_json::{json, Value};
use zhima_domain::ids::{MemberId, NickName, OpenId, PayIndex};
use zhima_domain::member::{NewMember, NewPayment, Profile};
use zhima_domain::money::Fen;
use zhima_domain::qr::{self, KeyId, Signer};
use zhima_domain::scope::Scopes;
use zhima_domain::tags::Tags;
use zhima_storage::{MemberKey, Store, StoreOptions};

/// A 32 MB ext4 image (4 KiB blocks) mounted with `errors=remount-ro`; unmounted and
/// removed on drop.
struct Ext4 {
    dir: PathBuf,
    image: PathBuf,
    device: String,
}

fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(format!(
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Ext4 {
    fn mount(name: &str) -> Option<Ext4> {
        let base = std::env::temp_dir().join(format!("zhima-disk-{name}-{}", std::process::id()));
        let dir = base.join("mnt");
        let image = base.join("fs.img");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::File::create(&image)
            .unwrap()
            .set_len(32 << 20)
            .unwrap();
        // 4 KiB blocks, as on any card or partition above 512 MB: mkfs
        // gives an image this small 1 KiB blocks, and SQLite allocates its
        // shared-memory index (`-shm`) by writing one byte per 4 KiB page,
        // so three blocks of each page stay holes; the server touching one
        // once the disk is full is killed by SIGBUS (seen once in CI).
        let mounted = run(
            "mkfs.ext4",
            &["-q", "-F", "-b", "4096", image.to_str().unwrap()],
        )
        .and_then(|_| {
            run(
                "mount",
                &[
                    "-o",
                    "loop,errors=remount-ro",
                    image.to_str().unwrap(),
                    dir.to_str().unwrap(),
                ],
            )
        })
        .and_then(|_| run("findmnt", &["-n", "-o", "SOURCE", dir.to_str().unwrap()]));
        match mounted {
            Ok(source) => Some(Ext4 {
                device: source.trim_start_matches("/dev/").to_owned(),
                dir,
                image,
            }),
            Err(why) => {
                let _ = std::fs::remove_dir_all(&base);
                if std::env::var_os("TEST_ZHIMA_REQUIRE_MOUNT").is_some() {
                    panic!("cannot mount a loop file system: {why}");
                }
                eprintln!("skipped: cannot mount a loop file system ({why}); run as root");
                None
            }
        }
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.dir.join("zhima.db").display())
    }

    fn filler(&self) -> PathBuf {
        self.dir.join("filler")
    }

    /// Writes a file until the file system has no block left.
    fn fill(&self) {
        let mut f = std::fs::File::create(self.filler()).unwrap();
        let chunk = vec![0xA5u8; 64 << 10];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling: {e}"),
            }
        }
        // small writes take the last partial block
        while f.write(&[0xA5]).is_ok_and(|n| n == 1) {}
        let _ = f.sync_all();
    }

    fn unfill(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }

    /// What ext4 does on an I/O error with `errors=remount-ro`.
    fn fail_read_only(&self) {
        std::fs::write(
            format!("/sys/fs/ext4/{}/trigger_fs_error", self.device),
            "zhima disk test\n",
        )
        .unwrap();
        let err = std::fs::write(self.dir.join("probe"), "x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(30), "EROFS: {err}");
    }

    /// Unmounts and mounts the image again, read-write (as after a reboot).
    fn remount(&self) {
        run("umount", &[self.dir.to_str().unwrap()]).unwrap();
        run("e2fsck", &["-f", "-y", "-q", self.image.to_str().unwrap()]).ok();
        run(
            "mount",
            &[
                "-o",
                "loop,errors=remount-ro",
                self.image.to_str().unwrap(),
                self.dir.to_str().unwrap(),
            ],
        )
        .unwrap();
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        let _ = run("umount", &["-l", self.dir.to_str().unwrap()]);
        if let Some(base) = self.image.parent() {
            let _ = std::fs::remove_dir_all(base);
        }
    }
}

const MEMBERS: usize = 10;

/// A database with an API key and ten paid members; returns the key and a
/// valid code for member 1.
fn seed(url: &str) -> (String, String) {
    let store = Store::open(url, &StoreOptions::default()).unwrap();
    store.migrate().unwrap();
    let now = Utc::now();
    let (_, key) = store
        .create_api_key(
            "desk",
            &Scopes::parse("member:read,member:write,door:open").unwrap(),
            now,
        )
        .unwrap();
    let mut first = None;
    for i in 0..MEMBERS {
        let new = NewMember {
            openid: OpenId::parse(&format!("disk-{i}")).unwrap(),
            nickname: NickName::parse(&format!("disk {i}")).unwrap(),
            rfid: None,
            tags: Tags::default_new_member(),
            profile: Profile::default(),
        };
        let paid = NewPayment {
            pay_index: PayIndex::parse(&format!("disk-pay-{i}")).unwrap(),
            amount: Fen::parse_yuan("200").unwrap(),
            pay_type: "1M MEMBERSHIP".into(),
            paid_at: now,
            until_days: None,
            span: None,
        };
        let id = store
            .create_member(&new, Some(&paid), now)
            .unwrap()
            .member
            .id;
        first.get_or_insert(id);
    }
    let signer = Signer::from_seed(KeyId::parse("1").unwrap(), &[7u8; 32]);
    let code = qr::issue(
        &signer,
        first.unwrap_or(MemberId(1)),
        now - chrono::Duration::minutes(1),
        now + chrono::Duration::days(20),
    );
    (key, code)
}

struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.try_send(method, path, body).await.unwrap()
    }

    async fn try_send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .timeout(Duration::from_secs(10));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        Ok((status, res.json().await.unwrap_or(Value::Null)))
    }
}

/// The writes tried while the disk is at fault; each must answer 1507.
fn writes(code: &str) -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "POST",
            "/api/v1.0/member/new",
            json!({"openid": "disk-new", "basicInfo": {"nickName": "disk new"},
                   "paymentInfo": {"paidTime": "201803121929", "payIndex": "disk-new-pay",
                                   "CNYAmount": "200", "payType": "1M MEMBERSHIP"}}),
        ),
        (
            "PATCH",
            "/api/v1.0/member/openid/disk-2",
            json!({"op": "add", "data": {"paidTime": "201803121929", "payIndex": "disk-fault-pay",
                                         "CNYAmount": "1", "payType": "DONATION"}}),
        ),
        (
            "PATCH",
            "/api/v1.0/member/openid/disk-3",
            json!({"op": "update", "data": {"avatarUrl": "https://a.example/changed.png"}}),
        ),
        ("POST", "/api/v1.0/door/scan", json!({ "code": code })),
        ("POST", "/api/v1.0/open/seconds", json!({ "seconds": 1 })),
    ]
}

/// How the disk comes back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Recovery {
    /// Space is freed; the same server must write again.
    FreeSpace,
    /// The file system is mounted again (a reboot); a new server must write.
    Remount,
}

/// Starts the fault with `start`, checks what the server answers meanwhile,
/// ends the fault, and checks that nothing was half-written and writes work.
async fn under_fault(name: &str, start: impl FnOnce(&Ext4), recovery: Recovery) {
    if std::env::var_os("TEST_ZHIMA_POSTGRES_URL").is_some() {
        eprintln!("skipped in the PostgreSQL run: this fault is on a SQLite file");
        return;
    }
    let Some(fs) = Ext4::mount(name) else {
        return;
    };
    let url = fs.url();
    let (key, code) = seed(&url);
    let port = free_port();
    let mut server = serve(&url, port, &[]);
    let client = Client {
        http: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{port}"),
        key,
    };
    wait_ready(&client.http, &client.base).await;
    let (status, before) = client
        .send("GET", "/api/v1.0/member/openid/disk-3", None)
        .await;
    assert_eq!((status, before["errno"].as_str()), (200, Some("1000")));
    let events_before = Store::open(&url, &StoreOptions::default())
        .unwrap()
        .access_event_count()
        .unwrap();

    start(&fs);

    for (method, path, body) in writes(&code) {
        let t0 = Instant::now();
        let (status, answer) = match client.try_send(method, path, Some(body)).await {
            Ok(answer) => answer,
            Err(e) => panic!(
                "{name}: {method} {path}: {e}; the server: {:?}",
                server.try_wait()
            ),
        };
        assert_eq!(
            (status, answer["errno"].as_str()),
            (507, Some("1507")),
            "{name}: {method} {path}: {answer}"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(7),
            "{name}: {method} {path} took {:?}",
            t0.elapsed()
        );
        let message = answer["errmsg"].as_str().unwrap();
        assert!(message.contains("nothing was changed"), "{message}");
        let reason = match recovery {
            Recovery::FreeSpace => "disk_full",
            Recovery::Remount => "read_only",
        };
        assert_eq!(answer["data"]["reason"], reason, "{name}: {method} {path}");
    }
    // reads keep working, with the data as it was
    for _ in 0..20 {
        let (status, now) = client
            .send("GET", "/api/v1.0/member/openid/disk-3", None)
            .await;
        assert_eq!(status, 200);
        assert_eq!(now, before, "{name}: a read during the fault");
    }
    let (status, _) = client.send("GET", "/healthz", None).await;
    assert_eq!(status, 200);

    let retried = writes(&code)[1].2.clone();
    match recovery {
        Recovery::FreeSpace => fs.unfill(),
        Recovery::Remount => {
            let _ = server.kill();
            let _ = server.wait();
            fs.remount();
            server = serve(&url, port, &[]);
            wait_ready(&client.http, &client.base).await;
        }
    }
    // the refused payment, sent again, is recorded now
    let (status, answer) = client
        .send("PATCH", "/api/v1.0/member/openid/disk-2", Some(retried))
        .await;
    assert_eq!(
        (status, answer["errno"].as_str()),
        (200, Some("1000")),
        "{name}: {answer}"
    );
    let _ = server.kill();
    let _ = server.wait();

    // nothing half-written
    let store = Store::open(&url, &StoreOptions::default()).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    assert_eq!(store.member_count().unwrap(), MEMBERS as i64);
    assert!(store
        .member(MemberKey::OpenId(&OpenId::parse("disk-new").unwrap()))
        .unwrap()
        .is_none());
    let m3 = store
        .member(MemberKey::OpenId(&OpenId::parse("disk-3").unwrap()))
        .unwrap()
        .unwrap();
    assert_eq!(
        m3.member.profile.avatar_url, "",
        "the refused update left nothing"
    );
    assert_eq!(
        crate::support::stored_pay_indexes(&store, "disk-2"),
        ["disk-fault-pay", "disk-pay-2"].map(String::from).into(),
        "{name}: recorded once, after the fault"
    );
    assert_eq!(
        store.access_event_count().unwrap(),
        events_before,
        "{name}: nothing logged, so nothing opened"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_clearly_and_keeps_reads() {
    under_fault(
        "full",
        |fs| {
            // the log is folded into the database first, so that the next
            // write needs new blocks
            zhima_storage::testing::execute(&fs.url(), "PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
            fs.fill();
        },
        Recovery::FreeSpace,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_system_gone_read_only_refuses_writes_clearly_and_keeps_reads() {
    under_fault("ro", Ext4::fail_read_only, Recovery::Remount).await;
}
