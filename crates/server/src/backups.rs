//! The daily backup `zhima serve` makes when `backup.dir` is set (SQLite):
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
use crate::settings::BackupSettings;

/// The local date of the newest backup in `dir`, if any.
fn newest_backup_day(dir: &Path, tz: Tz) -> Option<NaiveDate> {
    zhima_app::backup::newest(dir).map(|t| DateTime::<Utc>::from(t).with_timezone(&tz).date_naive())
}

/// Runs until the process ends.
pub async fn run(
    store: Store,
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
                let (s, st, k, c) = (
                    settings.clone(),
                    store.clone(),
                    key.clone().filter(|k| k.is_file()),
                    config.clone(),
                );
                let made = tokio::task::spawn_blocking(move || {
                    zhima_app::backup::create(&st, &s.dir, k.as_deref(), c.as_deref(), s.keep, now)
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
