//! A QR scanner on the Pi: a line-oriented source (standard input, or a
//! serial device such as `/dev/ttyACM0`) whose every line is handled exactly
//! like `POST /api/v1.0/door/scan`.
//!
//! USB scanners in keyboard or serial (CDC) mode send one code per line. A
//! device or file is read as it grows; if it fails (unplugged), it is opened
//! again every few seconds. Log lines name the outcome and the member, never
//! the code.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use actix_web::web;
use zhima_app::entrance::Credential;
use zhima_app::AppError;
use zhima_http::AppState;

use crate::settings::Scanner;

/// The longest line taken from a scanner; longer ones are dropped.
const LINE_LIMIT: usize = 1024;
const REOPEN_AFTER: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(100);

/// Starts reading `source` on a thread of its own; lines are handled on the
/// current tokio runtime.
pub(crate) fn start(source: Scanner, state: web::Data<AppState>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(64);
    tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            let (entrance, now) = (state.entrance.clone(), state.clock.now());
            let answer = tokio::task::spawn_blocking(move || {
                entrance.admit(Credential::Code(&line), None, now)
            })
            .await;
            match answer {
                Ok(Ok(admitted)) => tracing::info!(
                    member = admitted.member.0,
                    replay = admitted.replay,
                    "scanner: welcome"
                ),
                Ok(Err(AppError::Refused(r))) => {
                    tracing::info!(reason = r.reason(), "scanner: refused")
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "scanner: could not admit"),
                Err(e) => tracing::error!(error = %e, "scanner: the admission task failed"),
            }
        }
    });
    let spawned = std::thread::Builder::new()
        .name("zhima-scanner".into())
        .spawn(move || match source {
            Scanner::Stdin => {
                tracing::info!("scanner: reading codes from standard input");
                read_lines(std::io::stdin().lock(), &tx, false);
                tracing::warn!("scanner: standard input closed");
            }
            Scanner::Path(path) => loop {
                match std::fs::File::open(&path) {
                    Ok(file) => {
                        tracing::info!(device = %path.display(), "scanner: reading codes");
                        read_lines(BufReader::new(file), &tx, true);
                    }
                    Err(e) => {
                        tracing::warn!(device = %path.display(), error = %e, "scanner: cannot open");
                    }
                }
                if tx.is_closed() {
                    return;
                }
                std::thread::sleep(REOPEN_AFTER);
            },
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "scanner: could not start its thread");
    }
}

/// Sends each non-empty line; at the end of the data, waits for more when
/// `follow` (a device, or a file that grows), else returns. Returns on a read
/// error or when the receiver is gone.
fn read_lines(mut reader: impl BufRead, tx: &tokio::sync::mpsc::Sender<String>, follow: bool) {
    let mut buf = Vec::new();
    loop {
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) if follow => std::thread::sleep(POLL),
            Ok(0) => return,
            Ok(_) if !buf.ends_with(b"\n") && follow => {
                // a partial line: wait for its end (a runaway one is dropped)
                if buf.len() > LINE_LIMIT {
                    buf.clear();
                }
                std::thread::sleep(POLL);
                continue;
            }
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf).trim().to_owned();
                buf.clear();
                if line.is_empty() || line.len() > LINE_LIMIT {
                    continue;
                }
                if tx.blocking_send(line).is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "scanner: read failed");
                return;
            }
        }
        if buf.len() > LINE_LIMIT {
            buf.clear();
        }
    }
}
