//! A small SMTP server on loopback for the tests: it speaks enough SMTP for
//! a real client (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), keeps every
//! message it accepts, and can refuse the first N messages with a
//! temporary error (451) to test retries.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A message the sink accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// `MAIL FROM`.
    pub from: String,
    /// `RCPT TO`, each.
    pub to: Vec<String>,
    /// The message as sent (headers and body).
    pub data: String,
}

impl Received {
    /// The decoded `Subject` header.
    pub fn subject(&self) -> String {
        let mut value = String::new();
        let mut in_subject = false;
        for line in self.data.lines() {
            if let Some(rest) = line.strip_prefix("Subject:") {
                value.push_str(rest.trim());
                in_subject = true;
            } else if in_subject && line.starts_with([' ', '\t']) {
                value.push(' ');
                value.push_str(line.trim());
            } else if in_subject {
                break;
            }
        }
        decode_words(&value)
    }

    /// The decoded body of the part with `content_type` (`text/plain`).
    pub fn part(&self, content_type: &str) -> Option<String> {
        self.part_bytes(content_type)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// The decoded bytes of the part with `content_type` (`image/png`).
    pub fn part_bytes(&self, content_type: &str) -> Option<Vec<u8>> {
        for part in self.data.split("\r\n--") {
            let Some((head, body)) = part.split_once("\r\n\r\n") else {
                continue;
            };
            let head_lower = head.to_ascii_lowercase();
            if !head_lower.contains(&format!("content-type: {content_type}")) {
                continue;
            }
            let body = body.split("\r\n--").next().unwrap_or(body);
            return Some(
                if head_lower.contains("content-transfer-encoding: base64") {
                    let joined: String = body.split_whitespace().collect();
                    base64_decode(&joined)
                } else if head_lower.contains("content-transfer-encoding: quoted-printable") {
                    quoted_printable(body).into_bytes()
                } else {
                    body.as_bytes().to_vec()
                },
            );
        }
        None
    }
}

/// The sink.
#[derive(Debug, Clone)]
pub struct SmtpSink {
    /// Its port on 127.0.0.1.
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    refuse: Arc<AtomicUsize>,
    delay: std::time::Duration,
    stall: Arc<Mutex<Option<std::time::Duration>>>,
}

impl SmtpSink {
    /// Starts a sink that refuses the first `refuse_first` messages (451).
    pub fn start(refuse_first: usize) -> SmtpSink {
        SmtpSink::start_with(refuse_first, std::time::Duration::ZERO)
    }

    /// A sink that also takes `delay` to accept each message.
    pub fn start_with(refuse_first: usize, delay: std::time::Duration) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let sink = SmtpSink {
            port: listener.local_addr().unwrap().port(),
            received: Arc::default(),
            refuse: Arc::new(AtomicUsize::new(refuse_first)),
            delay,
            stall: Arc::default(),
        };
        let s = sink.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || s.serve(stream));
            }
        });
        sink
    }

    /// Keeps the next message, then waits `wait` before saying so (250): a
    /// client that dies meanwhile handed the message over without knowing.
    pub fn stall_next(&self, wait: std::time::Duration) {
        *self.stall.lock().unwrap() = Some(wait);
    }

    /// The messages accepted so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The settings that send to this sink (`ZHIMA_SMTP__…`).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("ZHIMA_SMTP__HOST", "127.0.0.1".to_owned()),
            ("ZHIMA_SMTP__PORT", self.port.to_string()),
            ("ZHIMA_SMTP__TLS", "none".to_owned()),
            (
                "ZHIMA_SMTP__FROM",
                "XinCheJian <door@xinchejian.example>".to_owned(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Waits (up to `secs`) until at least `n` messages arrived; all of them.
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<Received> {
        for _ in 0..secs * 20 {
            if self.received().len() >= n {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.received()
    }

    fn serve(&self, stream: TcpStream) {
        let mut out = stream.try_clone().unwrap();
        let mut lines = BufReader::new(stream);
        let mut say = |text: &str| {
            let _ = out.write_all(format!("{text}\r\n").as_bytes());
        };
        say("220 sink ESMTP");
        let (mut from, mut to) = (String::new(), Vec::new());
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let command = line.trim_end().to_owned();
            let upper = command.to_ascii_uppercase();
            if upper.starts_with("EHLO") {
                say("250-sink");
                say("250 8BITMIME");
            } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
                say("250 ok");
            } else if upper.starts_with("MAIL FROM:") {
                from = command[10..].trim().trim_matches(['<', '>']).to_owned();
                to.clear();
                say("250 ok");
            } else if upper.starts_with("RCPT TO:") {
                to.push(command[8..].trim().trim_matches(['<', '>']).to_owned());
                say("250 ok");
            } else if upper == "DATA" {
                say("354 go on");
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    data.push_str(
                        line.strip_prefix('.')
                            .filter(|_| line.starts_with(".."))
                            .unwrap_or(&line),
                    );
                }
                std::thread::sleep(self.delay);
                let refused = self
                    .refuse
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if refused {
                    say("451 try again later");
                } else {
                    self.received.lock().unwrap().push(Received {
                        from: from.clone(),
                        to: to.clone(),
                        data,
                    });
                    let stall = self.stall.lock().unwrap().take();
                    if let Some(wait) = stall {
                        std::thread::sleep(wait);
                    }
                    say("250 queued");
                }
            } else if upper.starts_with("RSET") {
                to.clear();
                say("250 ok");
            } else if upper.starts_with("QUIT") {
                say("221 bye");
                return;
            } else {
                say("502 not here");
            }
        }
    }
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`):
/// white space between two encoded words is dropped, any other kept.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let between = &rest[..start];
        if !(after_word && between.trim().is_empty()) {
            out.push_str(between);
        }
        let word = &rest[start + 2..];
        let parts: Vec<&str> = word.splitn(3, '?').collect();
        let Some(end) = parts.get(2).and_then(|p| p.find("?=")) else {
            out.push_str(&rest[start..]);
            return out;
        };
        let text = &parts[2][..end];
        let bytes = match parts[1].to_ascii_lowercase().as_str() {
            "b" => base64_decode(text),
            _ => quoted_printable(&text.replace('_', " ")).into_bytes(),
        };
        out.push_str(&String::from_utf8_lossy(&bytes));
        rest = &parts[2][end + 2..];
        after_word = true;
    }
    out.push_str(rest);
    out
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap_or_default()
}

fn quoted_printable(text: &str) -> String {
    let mut bytes = Vec::new();
    let raw = text.replace("=\r\n", "").replace("=\n", "");
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&raw[i + 1..i + 3], 16) {
                bytes.push(v);
                i += 3;
                continue;
            }
        }
        bytes.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
