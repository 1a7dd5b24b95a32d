//! The daily backup `zhima serve` makes when `backup.dir` is set (SQLite
//! copied while it serves, PostgreSQL through `pg_dump`):
//! at `backup.at` local time, or at start-up when the day's backup is due
//! and none is in the directory yet; copied to `backup.copy_to` when set.
//! A failure is logged and counted (`/metrics`), retried ten minutes later,
//! and never touches a request or `/readyz`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use zhima_http::observe::Metrics;
use zhima_http::Clock;
use zhima_storage::Store;

use crate::mail::SweepClock;
use crate::settings::{BackupSettings, DatabaseUrl};

/// The database a backup is taken of.
#[derive(Debug, Clone)]
pub enum Database {
    /// A SQLite store: copied while it serves.
    Sqlite(Store),
    /// A PostgreSQL database URL: dumped with `pg_dump`.
    Postgres(DatabaseUrl),
}

impl Database {
    /// The database `url` names; `open` opens the store on a SQLite one (a
    /// PostgreSQL one is dumped by its URL, with no store).
    pub fn of<E>(
        url: &DatabaseUrl,
        open: impl FnOnce() -> Result<Store, E>,
    ) -> Result<Database, E> {
        match zhima_storage::Target::parse(url.expose()) {
            Ok(zhima_storage::Target::Postgres(_)) => Ok(Database::Postgres(url.clone())),
            _ => open().map(Database::Sqlite),
        }
    }

    /// As [`Database::of`], for a server with its store open already.
    pub fn serving(url: &DatabaseUrl, store: &Store) -> Database {
        let Ok(database) = Database::of(url, || Ok::<_, std::convert::Infallible>(store.clone()));
        database
    }

    /// One backup into `dir` (with the key file when it exists yet, and
    /// the configuration file when given), keeping the newest `keep`
    /// there. Blocking.
    pub fn backup(
        &self,
        dir: &Path,
        key: Option<&Path>,
        config: Option<&Path>,
        keep: usize,
        now: DateTime<Utc>,
    ) -> Result<zhima_app::backup::BackupMade, zhima_app::AppError> {
        use zhima_app::backup::{create, Source};
        let key = key.filter(|k| k.is_file());
        match self {
            Database::Sqlite(store) => create(Source::Sqlite(store), dir, key, config, keep, now),
            Database::Postgres(url) => {
                let dump = |to: &Path| crate::pgdump::dump(url.expose(), to);
                create(Source::Dump(&dump), dir, key, config, keep, now)
            }
        }
    }
}

/// The local date of the newest backup in `dir`, if any.
fn newest_backup_day(dir: &Path, tz: Tz) -> Option<NaiveDate> {
    zhima_app::backup::newest(dir).map(|t| DateTime::<Utc>::from(t).with_timezone(&tz).date_naive())
}

/// Runs until the process ends.
pub async fn run(
    database: Database,
    settings: BackupSettings,
    key: Option<PathBuf>,
    config: Option<PathBuf>,
    tz: Tz,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
) {
    let mut due = SweepClock::since(tz, settings.at, newest_backup_day(&settings.dir, tz));
    let mut not_before: Option<DateTime<Utc>> = None;
    loop {
        let now = clock.now();
        if not_before.is_none_or(|t| now >= t) {
            if let Some(day) = due.due(now) {
                let (s, db, k, c) = (
                    settings.clone(),
                    database.clone(),
                    key.clone(),
                    config.clone(),
                );
                let made = tokio::task::spawn_blocking(move || {
                    db.backup(&s.dir, k.as_deref(), c.as_deref(), s.keep, now)
                })
                .await;
                match made {
                    Ok(Ok(made)) => {
                        metrics.observe_backup(Some(now.timestamp()));
                        tracing::info!(file = %made.file.display(), bytes = made.bytes, "backup made");
                        if let Some(second) = &settings.copy_to {
                            let (file, second, keep) =
                                (made.file.clone(), second.clone(), settings.keep);
                            match tokio::task::spawn_blocking(move || {
                                zhima_app::backup::copy(&file, &second, keep)
                            })
                            .await
                            {
                                Ok(Ok(copy)) => {
                                    tracing::info!(file = %copy.display(), "backup copied")
                                }
                                Ok(Err(e)) => {
                                    metrics.observe_backup(None);
                                    tracing::error!(error = %e, "the backup could not be copied to backup.copy_to");
                                }
                                Err(_) => return,
                            }
                        }
                        not_before = None;
                    }
                    Ok(Err(e)) => {
                        metrics.observe_backup(None);
                        tracing::error!(error = %e, dir = %settings.dir.display(), "the backup failed; trying again in 10 minutes");
                        due.undo(day);
                        not_before = Some(now + chrono::Duration::minutes(10));
                    }
                    Err(_) => return,
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
}
