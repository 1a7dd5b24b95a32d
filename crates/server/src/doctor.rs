//! `zhima doctor`: checks what a running door needs, each finding with the
//! fix to apply. Reads and probes; changes nothing. The door driver is
//! probed, not opened: a server running beside it keeps its pins as they
//! are.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::settings::{KeySource, Settings};

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What was checked.
    pub check: &'static str,
    /// `Some(true)`: fine; `Some(false)`: a problem; `None`: not checked.
    pub ok: Option<bool>,
    /// What was found.
    pub detail: String,
    /// What to do about a problem.
    pub fix: String,
}

fn fine(check: &'static str, detail: impl Into<String>) -> Finding {
    Finding {
        check,
        ok: Some(true),
        detail: detail.into(),
        fix: String::new(),
    }
}

fn problem(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding {
        check,
        ok: Some(false),
        detail: detail.into(),
        fix: fix.into(),
    }
}

fn skipped(check: &'static str, detail: impl Into<String>) -> Finding {
    Finding {
        check,
        ok: None,
        detail: detail.into(),
        fix: String::new(),
    }
}

/// The least free space that is not a problem.
const DISK_MIN_BYTES: u64 = 200 << 20;
/// The oldest a last backup may be.
const BACKUP_MAX_AGE_HOURS: i64 = 36;

/// Free bytes on the file system of `dir` (POSIX `df`).
fn free_bytes(dir: &Path) -> Option<u64> {
    let out = std::process::Command::new("df")
        .arg("-Pk")
        .arg(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let line = text.lines().nth(1)?;
    let kib: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(kib * 1024)
}

/// Runs every check. `built_at` is when this binary was built (Unix
/// seconds), `now` the wall clock.
pub fn run(settings: &Settings, built_at: i64, now: DateTime<Utc>) -> Vec<Finding> {
    let mut out = vec![fine(
        "configuration",
        match &settings.source_file {
            Some(f) => format!("read from {} and the environment", f.display()),
            None => "defaults and the environment (no --config)".to_owned(),
        },
    )];

    // the database
    let url = settings.database_url.expose();
    let shown = zhima_storage::redact_url(url);
    let sqlite_file = match zhima_storage::Target::parse(url) {
        Ok(zhima_storage::Target::Sqlite(path)) => Some(path),
        _ => None,
    };
    let opened = if sqlite_file.as_ref().is_some_and(|path| !path.exists()) {
        // opening would create an empty file
        Err(zhima_storage::StorageError::Unavailable(
            "the file does not exist".into(),
        ))
    } else {
        zhima_storage::Store::open(url, &settings.store)
    };
    match opened {
        Err(e) => out.push(problem(
            "database",
            format!("{shown}: {e}"),
            "check database.url and that the database server runs; a new SQLite database is made by zhima migrate",
        )),
        Ok(store) => match store.pending_migrations() {
            Ok(0) => out.push(fine("database", format!("{shown}: reachable, migrated"))),
            Ok(n) => out.push(problem(
                "database",
                format!("{shown}: {n} migrations pending"),
                "run zhima migrate (zhima serve applies them at start too)",
            )),
            Err(e) => out.push(problem(
                "database",
                format!("{shown}: {e}"),
                "check database.url and the database's permissions",
            )),
        },
    }

    // free space where the database or the state lives
    let dir = sqlite_file
        .as_deref()
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| Path::new(".").to_path_buf(), Path::to_path_buf);
    match free_bytes(&dir) {
        Some(free) if free >= DISK_MIN_BYTES => out.push(fine(
            "disk",
            format!("{} MiB free in {}", free >> 20, dir.display()),
        )),
        Some(free) => out.push(problem(
            "disk",
            format!("only {} MiB free in {}", free >> 20, dir.display()),
            "free space: writes are refused (errno 1507) when the disk is full",
        )),
        None => out.push(skipped(
            "disk",
            format!("df could not measure {}", dir.display()),
        )),
    }

    // the QR signing key
    match &settings.qr.key {
        KeySource::Given(_) => out.push(fine("qr key", "given in the configuration")),
        KeySource::File(path) => match std::fs::metadata(path) {
            Err(_) => out.push(problem(
                "qr key",
                format!("{} does not exist", path.display()),
                "start zhima serve once (it creates the key), or restore it from a backup: \
                 without it the members' QR codes do not open the door",
            )),
            Ok(meta) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt as _;
                    let mode = meta.permissions().mode() & 0o777;
                    if mode & 0o077 != 0 {
                        out.push(problem(
                            "qr key",
                            format!("{} has mode {mode:o}", path.display()),
                            format!("chmod 600 {}", path.display()),
                        ));
                    } else {
                        out.push(fine(
                            "qr key",
                            format!("{} (mode {mode:o})", path.display()),
                        ));
                    }
                }
                #[cfg(not(unix))]
                {
                    let _ = meta;
                    out.push(fine("qr key", path.display().to_string()));
                }
            }
        },
    }

    // the door driver
    match zhima_door_hardware::probe_driver(&settings.door.driver) {
        Ok(()) => out.push(fine(
            "door",
            format!(
                "the {} driver can be opened",
                match settings.door.driver.kind {
                    zhima_door_hardware::DriverKind::Simulated => "simulated",
                    zhima_door_hardware::DriverKind::Rppal => "rppal (GPIO)",
                }
            ),
        )),
        Err(e) => out.push(problem(
            "door",
            e.to_string(),
            "check door.driver and the pins (docs/door.md); on a Pi the service user needs the gpio group",
        )),
    }

    // the clock: QR codes are checked against it
    if now.timestamp() < built_at {
        out.push(problem(
            "clock",
            format!("{now} is before this binary was built"),
            "set the time (timedatectl set-ntp true): QR codes are refused or admitted by it",
        ));
    } else {
        out.push(fine("clock", now.to_rfc3339()));
    }

    // the mail server
    match &settings.smtp {
        None => out.push(skipped("smtp", "smtp.host is not set: no email is sent")),
        Some(smtp) => {
            let reached =
                std::net::ToSocketAddrs::to_socket_addrs(&(smtp.host.as_str(), smtp.port))
                    .ok()
                    .and_then(|mut addrs| addrs.next())
                    .map(|addr| {
                        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                    });
            match reached {
                Some(Ok(_)) => {
                    out.push(fine("smtp", format!("{}:{} answers", smtp.host, smtp.port)))
                }
                Some(Err(e)) => out.push(problem(
                    "smtp",
                    format!("{}:{}: {e}", smtp.host, smtp.port),
                    "check smtp.host and smtp.port, and the network",
                )),
                None => out.push(problem(
                    "smtp",
                    format!("{} does not resolve", smtp.host),
                    "check smtp.host and the DNS",
                )),
            }
        }
    }

    // the last backup
    match &settings.backup {
        None => out.push(skipped(
            "backup",
            "backup.dir is not set: back up with zhima backup from cron (docs/backup.md)",
        )),
        Some(backup) => {
            let newest = zhima_app::backup::newest(&backup.dir);
            match newest.map(DateTime::<Utc>::from) {
                Some(at) if now - at <= chrono::Duration::hours(BACKUP_MAX_AGE_HOURS) => {
                    out.push(fine(
                        "backup",
                        format!("the last one is {} hours old", (now - at).num_hours()),
                    ))
                }
                Some(at) => out.push(problem(
                    "backup",
                    format!("the last one is {} hours old", (now - at).num_hours()),
                    "check the log of zhima serve for \"the backup failed\", and backup.dir",
                )),
                None => out.push(problem(
                    "backup",
                    format!("no backup in {}", backup.dir.display()),
                    "start zhima serve (it makes one at start-up), or run zhima backup",
                )),
            }
        }
    }
    out
}
