//! The real `zhima` binary flooded by strangers at the two endpoints that
//! check a password or client secret (argon2id, 19 MiB each): from many
//! addresses at once, the process's peak resident memory stays under
//! 100 MB, the overflow is told to retry (503 + `Retry-After`) before any
//! hashing, the hashing memory goes back to the system afterwards, and
//! nothing else fails.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

use crate::support::process::{free_port, serve, wait_ready, ZHIMA};
use zhima_storage::testing::TestDatabase;

/// Peak and current resident set of a process, in KiB (Linux).
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn add_partner(url: &str) -> String {
    let out = Command::new(ZHIMA)
        .args([
            "partner",
            "add",
            "--name",
            "Flooded",
            "--redirect-uri",
            "https://partner.example/cb",
        ])
        .env("ZHIMA_DATABASE__URL", url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "partner add failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("client_id: "))
        .unwrap_or_else(|| panic!("no client_id in {stdout}"))
        .trim()
        .to_owned()
}

/// A client whose connections come from `127.0.0.N`.
fn client_from(n: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn password_and_secret_floods_from_many_addresses_stay_under_100_mb() {
    let db = TestDatabase::new().unwrap();
    let client_id = add_partner(db.url());
    let port = free_port();
    let server = serve(db.url(), port, &[]);
    let pid = server.id();
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&reqwest::Client::new(), &base).await;
    let (_, before) = rss_kib(pid);

    // a login form's cookie and hidden fields, as a browser gets them
    let authorize = format!(
        "{base}/oauth/authorize?response_type=code&client_id={client_id}\
         &redirect_uri=https%3A%2F%2Fpartner.example%2Fcb&scope=profile\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
    );
    let page = reqwest::get(&authorize).await.unwrap();
    let cookie = page
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = cookie.split_once('=').unwrap().1.to_owned();

    const ADDRESSES: u8 = 100;
    const EACH: usize = 4;
    let mut tasks = Vec::new();
    for n in 0..ADDRESSES {
        let client = client_from(n + 2);
        let (base, client_id, cookie, csrf) = (
            base.clone(),
            client_id.clone(),
            cookie.clone(),
            csrf.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..EACH {
                let res = if i % 2 == 0 {
                    client
                        .post(format!("{base}/oauth/token"))
                        .basic_auth(&client_id, Some("not-the-secret"))
                        .form(&[
                            ("grant_type", "authorization_code"),
                            ("code", "nothing"),
                            ("redirect_uri", "https://partner.example/cb"),
                        ])
                        .send()
                        .await
                } else {
                    client
                        .post(format!("{base}/oauth/authorize"))
                        .header("Cookie", &cookie)
                        .form(&[
                            ("response_type", "code"),
                            ("client_id", client_id.as_str()),
                            ("redirect_uri", "https://partner.example/cb"),
                            ("scope", "profile"),
                            (
                                "code_challenge",
                                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                            ),
                            ("code_challenge_method", "S256"),
                            ("zhima_csrf", csrf.as_str()),
                            ("zhima_nickname", &format!("nobody{n}")),
                            ("zhima_password", "guess guess"),
                            ("zhima_action", "login"),
                        ])
                        .send()
                        .await
                };
                let res = res.unwrap();
                let retry = res.headers().contains_key("retry-after");
                statuses.push((res.status().as_u16(), retry));
            }
            statuses
        }));
    }
    let mut counts: BTreeMap<u16, usize> = BTreeMap::new();
    for t in tasks {
        for (status, retry) in t.await.unwrap() {
            *counts.entry(status).or_default() += 1;
            if status == 503 || status == 429 {
                assert!(retry, "a {status} without Retry-After");
            }
        }
    }
    let (peak, after) = rss_kib(pid);
    eprintln!(
        "flood: {counts:?}; resident {} MB before, peak {} MB, {} MB after",
        before / 1024,
        peak / 1024,
        after / 1024
    );
    assert!(
        peak < 100 * 1024,
        "peak resident memory {} MB (answers {counts:?})",
        peak / 1024
    );
    // the hashing memory goes back to the system once the flood is over
    assert!(
        after < before + 20 * 1024,
        "resident {} MB after the flood, {} MB before",
        after / 1024,
        before / 1024
    );
    // wrong secrets are 401, wrong logins a page (200), the overflow 503
    for status in counts.keys() {
        assert!(
            matches!(status, 200 | 401 | 503),
            "unexpected status {status}: {counts:?}"
        );
    }
    assert!(
        counts.get(&503).copied().unwrap_or(0) > 0,
        "the flood never met the bound: {counts:?}"
    );
    // and the server still answers
    let ready = wait_ready(&reqwest::Client::new(), &base).await;
    assert_eq!(ready["status"], "ready");
}
