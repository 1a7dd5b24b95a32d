//! One connection type for both backends, and the pool manager that picks
//! the backend from the database URL.

use std::path::PathBuf;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ManageConnection, R2D2Connection};
use diesel::{PgConnection, SqliteConnection};

use crate::StorageError;

/// A connection to either backend; queries are written once against it.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    /// PostgreSQL.
    Postgresql(PgConnection),
    /// SQLite.
    Sqlite(SqliteConnection),
}

/// Runs one query expression, written once, on the backend's own
/// connection rather than through [`AnyConnection`]: the body is compiled
/// for each backend. For the hot reads (a member by key, a token by hash):
/// through the multi-connection, diesel serialises the whole statement to
/// text on every call to find its prepared statement, which cost more than
/// SQLite's own execution of the read; on the backend's connection a query
/// of a fixed shape is found by its type.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::connection::AnyConnection::Sqlite($c) => $body,
            $crate::connection::AnyConnection::Postgresql($c) => $body,
        }
    };
}
pub(crate) use on_backend;

impl std::fmt::Debug for AnyConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AnyConnection::Postgresql(_) => "AnyConnection::Postgresql",
            AnyConnection::Sqlite(_) => "AnyConnection::Sqlite",
        })
    }
}

/// Which database a URL names.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// `sqlite://PATH`: a file (created on first use).
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`.
    Postgres(String),
}

impl std::fmt::Debug for Target {
    /// Never prints a PostgreSQL password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Target::Postgres(url) => write!(f, "{}", redact_url(url)),
        }
    }
}

/// The URL with any password replaced by `***`, for logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                format!("{scheme}://{user}@{host}{tail}")
            }
        }
        None => url.to_owned(),
    }
}

impl Target {
    /// Parses a database URL: `sqlite://PATH` (relative or absolute; `sqlite:PATH`
    /// also works) or `postgres://…` / `postgresql://…`.
    pub fn parse(url: &str) -> Result<Target, StorageError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Target::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StorageError::BadUrl(redact_url(url)))?;
        if path.is_empty() || path == ":memory:" || path.starts_with("file:") {
            return Err(StorageError::BadUrl(format!(
                "{url} (a SQLite database must be a file path)"
            )));
        }
        Ok(Target::Sqlite(PathBuf::from(path)))
    }
}

/// An r2d2 manager for [`AnyConnection`].
#[derive(Debug)]
pub struct Manager {
    target: Target,
    busy_timeout: Duration,
}

impl Manager {
    /// A manager connecting to `target`. For SQLite, `busy_timeout` is how long
    /// a writer waits for another writer before failing.
    pub fn new(target: Target, busy_timeout: Duration) -> Manager {
        Manager {
            target,
            busy_timeout,
        }
    }
}

impl ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, Self::Error> {
        match &self.target {
            Target::Postgres(url) => PgConnection::establish(url)
                .map(AnyConnection::Postgresql)
                .map_err(diesel::r2d2::Error::ConnectionError),
            Target::Sqlite(path) => {
                let path = path.to_string_lossy();
                let mut conn = SqliteConnection::establish(&path)
                    .map_err(diesel::r2d2::Error::ConnectionError)?;
                // WAL lets readers run beside the writer; synchronous=FULL makes
                // an acknowledged commit survive a power cut.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
                    self.busy_timeout.as_millis()
                ))
                .map_err(diesel::r2d2::Error::QueryError)?;
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        conn.is_broken()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_backend() {
        assert_eq!(
            Target::parse("sqlite://zhima.db").unwrap(),
            Target::Sqlite("zhima.db".into())
        );
        assert_eq!(
            Target::parse("sqlite:///var/lib/zhima/z.db").unwrap(),
            Target::Sqlite("/var/lib/zhima/z.db".into())
        );
        assert_eq!(
            Target::parse("sqlite:z.db").unwrap(),
            Target::Sqlite("z.db".into())
        );
        assert!(matches!(
            Target::parse("postgres://u@h/db").unwrap(),
            Target::Postgres(_)
        ));
        assert!(matches!(
            Target::parse("postgresql://u@h/db").unwrap(),
            Target::Postgres(_)
        ));
        for bad in ["", "mysql://x", "zhima.db", "sqlite://", "sqlite::memory:"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_never_print() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("postgres:///db?host=/var/run/postgresql"),
            "postgres:///db?host=/var/run/postgresql"
        );
        let t = Target::parse("postgres://u:secret@h/db").unwrap();
        assert!(!format!("{t:?}").contains("secret"));
        let err = Target::parse("mysql://u:secret@h/db").unwrap_err();
        assert!(!err.to_string().contains("secret"));
    }
}
