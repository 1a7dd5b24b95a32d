//! A real browser for the page tests: Debian's Chromium, headless, driven
//! through its WebDriver (`chromedriver`) over the W3C WebDriver protocol,
//! spoken here with the test suite's own HTTP client (a few JSON calls; no
//! extra crate).
//!
//! Without `chromedriver` on the PATH the browser tests skip, unless
//! `REQUIRE_BROWSER=1` (as in CI), which makes that a failure.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// The key of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium session; the driver is killed on drop.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
    _profile: TempDir,
}

/// A directory removed on drop (the browser's profile).
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Browser {
    /// Ends the session first (chromedriver then closes Chromium; killing
    /// chromedriver alone leaves Chromium running), then the driver.
    fn drop(&mut self) {
        use std::io::{Read as _, Write as _};
        // `http://127.0.0.1:PORT/session/ID`: a DELETE by hand, as drop
        // cannot wait for the async client
        if let Some(rest) = self.session.strip_prefix("http://") {
            if let Some((host, path)) = rest.split_once('/') {
                if let Ok(mut stream) = std::net::TcpStream::connect(host) {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let request = format!(
                        "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    if stream.write_all(request.as_bytes()).is_ok() {
                        // the answer comes once the browser is closed; the
                        // driver may keep the connection open after it
                        let mut answer = [0u8; 512];
                        let _ = stream.read(&mut answer);
                    }
                }
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Browser {
    /// A browser with a window of `width` × `height` CSS pixels, or `None`
    /// (the test skips) when chromedriver is not installed and not required.
    pub async fn start(width: u32, height: u32) -> Option<Browser> {
        let Some(chromedriver) = which("chromedriver") else {
            assert!(
                std::env::var("REQUIRE_BROWSER").as_deref() != Ok("1"),
                "chromedriver is required (REQUIRE_BROWSER=1) but not installed: apt-get install chromium chromium-driver"
            );
            eprintln!("skipping: chromedriver not installed");
            return None;
        };
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("a client");
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = std::env::temp_dir().join(format!("zhima-chromium-{port}"));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": which("chromium").map(|p| p.display().to_string()).unwrap_or_default(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-extensions", "--lang=en-US",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("JSON from chromedriver");
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {answer}"))
            .to_owned();
        Some(Browser {
            driver,
            http,
            session: format!("{base}/session/{session}"),
            _profile: TempDir(profile),
        })
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        self.try_call(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    /// A WebDriver call, its error as text.
    async fn try_call(&self, method: &str, path: &str, body: Value) -> Result<Value, String> {
        let url = format!("{}{path}", self.session);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let answer: Value = req
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("JSON from chromedriver");
        if answer["value"]["error"].is_string() {
            return Err(answer["value"].to_string());
        }
        Ok(answer["value"].clone())
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url })).await;
    }

    /// The address shown now.
    pub async fn url(&self) -> String {
        self.call("GET", "/url", Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits (up to 10 s) until the address ends with `suffix`, and says
    /// whether it did: a click's navigation may still be under way when the
    /// click answers (a slow database behind the form).
    pub async fn reaches(&self, suffix: &str) -> bool {
        self.within_10s(|b| async move { b.url().await.ends_with(suffix) })
            .await
    }

    /// Waits (up to 10 s) until the page's text holds `needle`.
    pub async fn shows(&self, needle: &str) -> bool {
        self.within_10s(|b| async move { b.text().await.contains(needle) })
            .await
    }

    async fn within_10s<'a, F, Fut>(&'a self, check: F) -> bool
    where
        F: Fn(&'a Browser) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        for _ in 0..200 {
            if check(self).await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// The page's text as a person sees it. The page may be replaced
    /// between finding its body and reading it (a navigation finishing): then
    /// it is read again.
    pub async fn text(&self) -> String {
        let mut last = String::new();
        for _ in 0..50 {
            let body = self
                .try_call(
                    "POST",
                    "/element",
                    json!({ "using": "css selector", "value": "body" }),
                )
                .await;
            let read = match body {
                Ok(found) => match found[ELEMENT].as_str() {
                    Some(el) => {
                        self.try_call("GET", &format!("/element/{el}/text"), Value::Null)
                            .await
                    }
                    None => Err(format!("no body: {found}")),
                },
                Err(e) => Err(e),
            };
            match read {
                Ok(text) => return text.as_str().unwrap_or_default().to_owned(),
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the page's text could not be read: {last}")
    }

    /// The first element matching the CSS `selector` (panics if none).
    pub async fn find(&self, selector: &str) -> String {
        let found = self
            .call(
                "POST",
                "/element",
                json!({ "using": "css selector", "value": selector }),
            )
            .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {selector}: {found}"))
            .to_owned()
    }

    /// Types `text` into the field matching `selector`.
    pub async fn fill(&self, selector: &str, text: &str) {
        let el = self.find(selector).await;
        self.call("POST", &format!("/element/{el}/clear"), json!({}))
            .await;
        self.call(
            "POST",
            &format!("/element/{el}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    /// Clicks the element matching `selector` (and waits for a navigation
    /// it starts).
    pub async fn click(&self, selector: &str) {
        let el = self.find(selector).await;
        self.call("POST", &format!("/element/{el}/click"), json!({}))
            .await;
    }

    /// Clicks the element matching `selector` twice in quick succession
    /// (a double click, through the W3C actions: the second press may
    /// arrive before the first one's navigation is done).
    pub async fn double_click(&self, selector: &str) {
        let el = self.find(selector).await;
        let mut origin = serde_json::Map::new();
        origin.insert(ELEMENT.to_owned(), Value::String(el));
        let press = json!([
            { "type": "pointerMove", "origin": origin, "x": 0, "y": 0 },
            { "type": "pointerDown", "button": 0 },
            { "type": "pointerUp", "button": 0 },
            { "type": "pointerDown", "button": 0 },
            { "type": "pointerUp", "button": 0 }
        ]);
        self.call(
            "POST",
            "/actions",
            json!({ "actions": [{
                "type": "pointer", "id": "mouse",
                "parameters": { "pointerType": "mouse" },
                "actions": press
            }] }),
        )
        .await;
        self.call("DELETE", "/actions", Value::Null).await;
    }

    /// The value of attribute `name` of the element matching `selector`.
    pub async fn attribute(&self, selector: &str, name: &str) -> String {
        let el = self.find(selector).await;
        self.call(
            "GET",
            &format!("/element/{el}/attribute/{name}"),
            Value::Null,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// The visible text of the element matching `selector`.
    pub async fn text_of(&self, selector: &str) -> String {
        let el = self.find(selector).await;
        self.call("GET", &format!("/element/{el}/text"), Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The value of the browser's cookie `name` for the current page.
    pub async fn cookie(&self, name: &str) -> Option<String> {
        self.try_call("GET", &format!("/cookie/{name}"), Value::Null)
            .await
            .ok()
            .and_then(|c| c["value"].as_str().map(str::to_owned))
    }

    /// Sets cookie `name` for the current page's site.
    pub async fn set_cookie(&self, name: &str, value: &str) {
        self.call(
            "POST",
            "/cookie",
            json!({ "cookie": { "name": name, "value": value, "path": "/" } }),
        )
        .await;
    }

    /// Resizes the window (to show a long page whole in a screenshot).
    pub async fn resize(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            json!({ "width": width, "height": height }),
        )
        .await;
    }

    /// Saves a PNG of the window to `path`.
    pub async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine as _;
        let data = self.call("GET", "/screenshot", Value::Null).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .expect("a base64 screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("a screenshot directory");
        }
        std::fs::write(path, png).expect("the screenshot is written");
    }
}

/// Where the page tests leave their screenshots: `TEST_ZHIMA_SCREENSHOTS` if set
/// (CI keeps them as artefacts outside the clone), else the temporary
/// directory.
pub fn screenshot_dir() -> std::path::PathBuf {
    std::env::var_os("TEST_ZHIMA_SCREENSHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("zhima-screenshots"))
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| std::path::Path::new(dir).join(program))
        .find(|p| p.is_file())
}
