//! The real `zhima` binary as a child process, for tests that kill, stop or
//! starve it.

use std::ops::{Deref, DerefMut};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
pub const ZHIMA: &str = env!("CARGO_BIN_EXE_zhima");

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `zhima api-key create --name NAME --scopes SCOPES` on `url`: the key it
/// prints (once, on its last line).
pub fn create_api_key(url: &str, name: &str, scopes: &str) -> String {
    cli(
        url,
        &["api-key", "create", "--name", name, "--scopes", scopes],
    )
    .lines()
    .last()
    .unwrap()
    .to_owned()
}

/// `zhima ARGS` on the database `url`: its standard output. A command that
/// fails, or is killed by a signal, fails the test with its exit status and
/// everything it wrote to stderr.
pub fn cli(url: &str, args: &[&str]) -> String {
    let out = Command::new(ZHIMA)
        .args(args)
        .env("ZHIMA_DATABASE__URL", url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`zhima {}` ended with {}; stderr:\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `zhima ARGS` on the database `url` (the test signing key, warnings
/// only), whether it succeeds or not: whether it did, its standard output
/// and its standard error.
pub fn try_cli(url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(ZHIMA)
        .args(args)
        .env("ZHIMA_DATABASE__URL", url)
        .env("ZHIMA_QR__SIGNING_KEY", "07".repeat(32))
        .env("ZHIMA_LOG__LEVEL", "warn")
        .env_remove("MYSQL_PWD")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running server, killed when dropped (also when a test panics, so no
/// server outlives its test).
pub struct Server(pub Child);

impl Deref for Server {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `zhima serve` on `127.0.0.1:port` over `url` (2 workers, the test signing
/// key, warnings only), with `extra` environment on top. Its output is
/// discarded, or shown when `TEST_ZHIMA_SERVER_OUTPUT` is set (to see why a
/// server went away).
pub fn serve(url: &str, port: u16, extra: &[(&str, &str)]) -> Server {
    let output = || match std::env::var_os("TEST_ZHIMA_SERVER_OUTPUT") {
        Some(_) => Stdio::inherit(),
        None => Stdio::null(),
    };
    let mut cmd = Command::new(ZHIMA);
    cmd.arg("serve")
        .env("ZHIMA_DATABASE__URL", url)
        .env("ZHIMA_HTTP__BIND", format!("127.0.0.1:{port}"))
        .env("ZHIMA_HTTP__WORKERS", "2")
        .env("ZHIMA_QR__SIGNING_KEY", "07".repeat(32))
        .env("ZHIMA_LOG__LEVEL", "warn")
        .stdout(output())
        .stderr(output());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    Server(cmd.spawn().unwrap())
}

/// Waits (up to 20 s) until `GET /readyz` answers 200, and returns its body.
pub async fn wait_ready(client: &reqwest::Client, base: &str) -> Value {
    let up = Instant::now();
    loop {
        if let Ok(res) = client.get(format!("{base}/readyz")).send().await {
            if res.status().is_success() {
                return res.json().await.unwrap();
            }
        }
        assert!(up.elapsed() < Duration::from_secs(20), "{base} not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `METHOD url` with the API key and a JSON body: the JSON answer (any
/// status). A failed send or a body that is not JSON fails the test.
pub async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    key: &str,
    body: &Value,
) -> Value {
    client
        .request(method, url)
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("{url}: the answer is not JSON: {e}"))
}
