//! PostgreSQL backups: `pg_dump` in its custom format, for
//! `zhima backup` and the daily backup of `zhima serve`
//! (`zhima_app::backup::Source::Dump`).
//!
//! The password never goes on `pg_dump`'s command line (where `ps` shows
//! it): it is taken out of the URL and given in `PGPASSWORD`.

use std::path::Path;
use std::process::{Command, Stdio};

use zhima_app::AppError;

fn failed(reason: String) -> AppError {
    AppError::Invalid {
        field: "backup",
        reason,
    }
}

/// `%XX` escapes decoded (a `+` stays a `+`, as in a URL's user info).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The URL without its password, and the password (from the user info or
/// a `password=` query parameter), if it has one.
fn split_password(url: &str) -> Result<(String, Option<String>), AppError> {
    let mut parsed = url::Url::parse(url)
        .map_err(|e| failed(format!("database.url is not a URL pg_dump can use: {e}")))?;
    let mut password = parsed
        .password()
        .map(percent_decode)
        .filter(|p| !p.is_empty());
    let _ = parsed.set_password(None);
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if pairs.iter().any(|(k, _)| k == "password") {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &pairs {
            if k == "password" {
                password = Some(v.clone());
            } else {
                query.append_pair(k, v);
            }
        }
        let query = query.finish();
        parsed.set_query((!query.is_empty()).then_some(query.as_str()));
    }
    Ok((parsed.to_string(), password))
}

/// Runs `pg_dump --format=custom` of the database at `url` into `to`.
/// Says clearly when `pg_dump` is not installed.
pub fn dump(url: &str, to: &Path) -> Result<(), AppError> {
    let (url, password) = split_password(url)?;
    let mut cmd = Command::new("pg_dump");
    cmd.arg("--format=custom")
        .arg("--no-owner")
        .arg("--no-privileges")
        .arg("--file")
        .arg(to)
        .arg("--dbname")
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match password {
        Some(p) => cmd.env("PGPASSWORD", p),
        None => cmd.env_remove("PGPASSWORD"),
    };
    // a server that does not answer fails the backup (counted, retried)
    // instead of holding the daily backup forever
    if std::env::var_os("PGCONNECT_TIMEOUT").is_none() {
        cmd.env("PGCONNECT_TIMEOUT", "15");
    }
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            failed(
                "a PostgreSQL database is backed up with pg_dump, which is not installed \
                 here (Debian: apt install postgresql-client, of the server's major version \
                 or newer)"
                    .to_owned(),
            )
        } else {
            failed(format!("cannot run pg_dump: {e}"))
        }
    })?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        let said: String = said.trim().chars().take(2000).collect();
        return Err(failed(format!("pg_dump ended with {}: {said}", out.status)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url() {
        let (url, pw) = split_password("postgres://zhima:s%40c+ret@127.0.0.1:5432/zhima").unwrap();
        assert_eq!(url, "postgres://zhima@127.0.0.1:5432/zhima");
        assert_eq!(pw.as_deref(), Some("s@c+ret"));

        let (url, pw) =
            split_password("postgres:///zhima?host=/var/run/postgresql&password=p%26w&user=z")
                .unwrap();
        assert_eq!(
            url,
            "postgres:///zhima?host=%2Fvar%2Frun%2Fpostgresql&user=z"
        );
        assert_eq!(pw.as_deref(), Some("p&w"));

        let (url, pw) =
            split_password("postgres:///postgres?host=/var/run/postgresql&user=postgres").unwrap();
        assert_eq!(
            url,
            "postgres:///postgres?host=/var/run/postgresql&user=postgres"
        );
        assert_eq!(pw, None);
    }
}
