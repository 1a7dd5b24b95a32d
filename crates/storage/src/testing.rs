//! Throwaway databases for tests, on the backend the test run selects.
//!
//! With `TEST_ZHIMA_POSTGRES_URL` set (a URL to an existing database on a
//! server where the user may create databases, e.g.
//! `postgres:///postgres?host=/var/run/postgresql&user=postgres`), each
//! [`TestDatabase`] is a fresh PostgreSQL database, dropped afterwards.
//! Otherwise it is a fresh SQLite file in the temporary directory.

use std::path::PathBuf;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};

use crate::StorageError;

/// The environment variable that selects PostgreSQL for test databases.
pub const POSTGRES_ENV: &str = "TEST_ZHIMA_POSTGRES_URL";

/// A database that exists for the lifetime of this value.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    SqliteDir(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// A new, empty database (no migrations applied).
    pub fn new() -> Result<TestDatabase, StorageError> {
        let suffix = unique_suffix()?;
        match std::env::var(POSTGRES_ENV) {
            Ok(admin_url) if !admin_url.trim().is_empty() => {
                let name = format!("zhima_test_{suffix}");
                let mut admin = PgConnection::establish(&admin_url)
                    .map_err(|e| StorageError::Unavailable(format!("{POSTGRES_ENV}: {e}")))?;
                admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
                let url = with_database(&admin_url, &name).ok_or_else(|| {
                    StorageError::BadUrl(format!("{POSTGRES_ENV} has no database name to replace"))
                })?;
                Ok(TestDatabase {
                    url,
                    cleanup: Cleanup::Postgres { admin_url, name },
                })
            }
            _ => {
                let dir = std::env::temp_dir().join(format!("zhima-test-{suffix}"));
                std::fs::create_dir_all(&dir)
                    .map_err(|e| StorageError::Unavailable(e.to_string()))?;
                let url = format!("sqlite://{}", dir.join("zhima.db").display());
                Ok(TestDatabase {
                    url,
                    cleanup: Cleanup::SqliteDir(dir),
                })
            }
        }
    }

    /// The database URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether this is a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        matches!(self.cleanup, Cleanup::Postgres { .. })
    }

    /// Runs SQL on a connection of its own, outside any store (for tests
    /// that damage the database on purpose).
    pub fn execute(&self, sql: &str) -> Result<(), StorageError> {
        execute(&self.url, sql)
    }
}

impl TestDatabase {
    /// PostgreSQL only: refuses (`false`) or allows (`true`) new
    /// connections to this database; refusing also ends the open ones, as
    /// if the server had gone away. Errors on SQLite.
    pub fn set_reachable(&self, reachable: bool) -> Result<(), StorageError> {
        let Cleanup::Postgres { admin_url, name } = &self.cleanup else {
            return Err(StorageError::Unavailable(
                "set_reachable needs PostgreSQL".into(),
            ));
        };
        let mut admin = PgConnection::establish(admin_url)
            .map_err(|e| StorageError::Unavailable(e.to_string()))?;
        admin.batch_execute(&format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS {reachable}"
        ))?;
        if !reachable {
            admin.batch_execute(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            ))?;
        }
        Ok(())
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::SqliteDir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { admin_url, name } => {
                if let Ok(mut admin) = PgConnection::establish(admin_url) {
                    let _ = admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
                }
            }
        }
    }
}

/// `url` with its database name replaced by `name`:
/// `postgres://u@h:5432/old?x=y` → `postgres://u@h:5432/NAME?x=y`.
fn with_database(url: &str, name: &str) -> Option<String> {
    let scheme_end = url.find("://")? + 3;
    let rest = &url[scheme_end..];
    let path_start = scheme_end + rest.find('/')?;
    let query_start = url[path_start..]
        .find('?')
        .map_or(url.len(), |i| path_start + i);
    Some(format!(
        "{}/{}{}",
        &url[..path_start],
        name,
        &url[query_start..]
    ))
}

fn unique_suffix() -> Result<String, StorageError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|_| StorageError::Hashing)?;
    Ok(format!(
        "{}_{}",
        std::process::id(),
        u64::from_le_bytes(bytes) % 1_000_000_000_000
    ))
}

/// Runs SQL on a connection of its own to the database at `url`, outside
/// any store.
pub fn execute(url: &str, sql: &str) -> Result<(), StorageError> {
    match crate::connection::Target::parse(url)? {
        crate::connection::Target::Sqlite(path) => {
            let mut conn = diesel::SqliteConnection::establish(&path.to_string_lossy())
                .map_err(|e| StorageError::Unavailable(e.to_string()))?;
            conn.batch_execute(sql)?;
        }
        crate::connection::Target::Postgres(url) => {
            let mut conn = PgConnection::establish(&url)
                .map_err(|e| StorageError::Unavailable(e.to_string()))?;
            conn.batch_execute(sql)?;
        }
    }
    Ok(())
}

/// Applies the migrations up to and including the one named `last` (a
/// directory name such as `2026-12-06-000011_legacy_method`), in order, to
/// the database at `url`, as a released version's binary would have: the
/// upgrade test builds an old schema with it. The names applied.
pub fn migrate_through(url: &str, last: &str) -> Result<Vec<String>, StorageError> {
    use diesel_migrations::{EmbeddedMigrations, MigrationHarness};

    fn through<DB: diesel::backend::Backend>(
        conn: &mut impl MigrationHarness<DB>,
        source: EmbeddedMigrations,
        last: &str,
    ) -> Result<Vec<String>, StorageError> {
        let failed =
            |e: Box<dyn std::error::Error + Send + Sync>| StorageError::Migration(e.to_string());
        // pending_migrations also creates diesel's own table of applied ones
        let pending = conn.pending_migrations(source).map_err(failed)?;
        if !pending.iter().any(|m| m.name().to_string() == last) {
            return Err(StorageError::Migration(format!(
                "no pending migration named {last}"
            )));
        }
        let wanted: Vec<_> = pending
            .into_iter()
            .take_while(|m| m.name().to_string().as_str() <= last)
            .collect();
        let names = wanted.iter().map(|m| m.name().to_string()).collect();
        conn.run_migrations(&wanted).map_err(failed)?;
        Ok(names)
    }

    match crate::connection::Target::parse(url)? {
        crate::connection::Target::Sqlite(path) => {
            let mut conn = diesel::SqliteConnection::establish(&path.to_string_lossy())
                .map_err(|e| StorageError::Unavailable(e.to_string()))?;
            through(&mut conn, crate::SQLITE_MIGRATIONS, last)
        }
        crate::connection::Target::Postgres(url) => {
            let mut conn = PgConnection::establish(&url)
                .map_err(|e| StorageError::Unavailable(e.to_string()))?;
            through(&mut conn, crate::POSTGRES_MIGRATIONS, last)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://u@h:5432/old?x=y", "new").unwrap(),
            "postgres://u@h:5432/new?x=y"
        );
        assert_eq!(
            with_database("postgres:///postgres?host=/var/run/postgresql", "t").unwrap(),
            "postgres:///t?host=/var/run/postgresql"
        );
        assert_eq!(
            with_database("postgres://h/db", "t").unwrap(),
            "postgres://h/t"
        );
        assert_eq!(with_database("postgres://h", "t"), None);
    }
}
