//! Backups and their restore (`zhima backup`, `zhima restore`).
//!
//! A backup is one tar file, `zhima-backup-YYYYMMDD-HHMMSS.tar`, holding
//! `zhima.db` (a consistent copy taken with `VACUUM INTO` while the server
//! goes on serving, checked with `PRAGMA integrity_check` before it is
//! archived), the QR signing key (`qr-signing.key`) and the configuration
//! (`zhima.toml`) when they are files, and `MANIFEST`. It is written under a
//! `.partial` name, synced, then renamed: a file with a backup's name is
//! always whole. A `.partial` left by a killed run is removed by the next.
//!
//! On PostgreSQL the archive holds `zhima.pgdump` instead of `zhima.db`:
//! a dump in `pg_dump`'s custom format, made by the caller (the server runs
//! `pg_dump`), restored with `pg_restore`.
//!
//! A restore refuses while a server holds the database's lock file (every
//! `zhima serve` on SQLite holds it shared), checks the archive's database
//! first, and keeps what it replaces beside it (`….before-restore-STAMP`).

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use zhima_storage::{Store, StoreOptions};

use crate::AppError;

/// The database file's name in an archive.
const DB: &str = "zhima.db";
/// A PostgreSQL dump's name in an archive.
const PGDUMP: &str = "zhima.pgdump";
/// The signing key's name in an archive.
const KEY: &str = "qr-signing.key";
/// The configuration's name in an archive.
const CONFIG: &str = "zhima.toml";
/// The manifest's name in an archive.
const MANIFEST: &str = "MANIFEST";
/// How a backup's name begins.
const PREFIX: &str = "zhima-backup-";

fn io(what: &str, path: &Path, e: std::io::Error) -> AppError {
    AppError::Invalid {
        field: "backup",
        reason: format!("{what} {}: {e}", path.display()),
    }
}

fn refuse(reason: String) -> AppError {
    AppError::Invalid {
        field: "backup",
        reason,
    }
}

/// The lock file next to a SQLite database: held shared by every server
/// on it, taken exclusively by a restore.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Held by a server for as long as it serves the database at `db`.
#[derive(Debug)]
pub struct ServingLock(#[allow(dead_code)] File);

impl ServingLock {
    /// Takes the database's lock shared (other servers may hold it too).
    pub fn take(db: &Path) -> Result<ServingLock, AppError> {
        let path = lock_path(db);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io("cannot open", &path, e))?;
        file.lock_shared()
            .map_err(|e| io("cannot lock", &path, e))?;
        Ok(ServingLock(file))
    }
}

/// What went into a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupMade {
    /// The archive.
    pub file: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Whether the signing key is in it.
    pub with_key: bool,
    /// Whether the configuration is in it.
    pub with_config: bool,
    /// Older backups removed by the retention.
    pub removed: Vec<PathBuf>,
}

/// Where a backup's database comes from.
pub enum Source<'a> {
    /// The SQLite database of a store: copied with `VACUUM INTO` while it
    /// serves, then checked with `PRAGMA integrity_check`.
    Sqlite(&'a Store),
    /// A PostgreSQL database: `dump` writes it to the path it is given in
    /// `pg_dump`'s custom format; the file must begin as such a dump does.
    Dump(&'a dyn Fn(&Path) -> Result<(), AppError>),
}

impl std::fmt::Debug for Source<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Sqlite(_) => "Source::Sqlite",
            Source::Dump(_) => "Source::Dump",
        })
    }
}

/// Backs up the database `source` names into `dir`, with the signing key
/// and configuration files when given, and keeps the newest `keep`
/// backups there. Blocking.
pub fn create(
    source: Source<'_>,
    dir: &Path,
    key: Option<&Path>,
    config: Option<&Path>,
    keep: usize,
    now: DateTime<Utc>,
) -> Result<BackupMade, AppError> {
    fs::create_dir_all(dir).map_err(|e| io("cannot create", dir, e))?;
    // what a killed run left
    for entry in fs::read_dir(dir)
        .map_err(|e| io("cannot read", dir, e))?
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".partial") && name.contains(PREFIX) {
            let _ = fs::remove_file(entry.path());
        }
    }
    let stamp = now.format("%Y%m%d-%H%M%S").to_string();
    let (copy, as_name) = match source {
        Source::Sqlite(_) => (dir.join(format!(".{PREFIX}{stamp}.db.partial")), DB),
        Source::Dump(_) => (dir.join(format!(".{PREFIX}{stamp}.pgdump.partial")), PGDUMP),
    };
    let _ = fs::remove_file(&copy);
    let checked = match source {
        Source::Sqlite(store) => store
            .copy_into(&copy)
            .map_err(AppError::from)
            .and_then(|()| check_database(&copy)),
        Source::Dump(dump) => dump(&copy).and_then(|()| check_dump(&copy)),
    };
    if let Err(e) = checked {
        let _ = fs::remove_file(&copy);
        return Err(e);
    }
    // two backups in one second: the second gets a suffix
    let name = (1..)
        .map(|n| match n {
            1 => format!("{PREFIX}{stamp}.tar"),
            n => format!("{PREFIX}{stamp}-{n}.tar"),
        })
        .find(|name| !dir.join(name).exists())
        .unwrap_or_else(|| format!("{PREFIX}{stamp}.tar"));
    let partial = dir.join(format!("{name}.partial"));
    let written = (|| -> Result<(), AppError> {
        let file = File::create(&partial).map_err(|e| io("cannot create", &partial, e))?;
        let mut tar = tar::Builder::new(file);
        let add = |tar: &mut tar::Builder<File>, path: &Path, as_name: &str| {
            tar.append_path_with_name(path, as_name)
                .map_err(|e| io("cannot archive", path, e))
        };
        add(&mut tar, &copy, as_name)?;
        if let Some(key) = key {
            add(&mut tar, key, KEY)?;
        }
        if let Some(config) = config {
            add(&mut tar, config, CONFIG)?;
        }
        let manifest = format!(
            "zhima backup\nversion {}\ncreated {}\nfiles {as_name}{}{}\n",
            env!("CARGO_PKG_VERSION"),
            now.to_rfc3339(),
            if key.is_some() { " qr-signing.key" } else { "" },
            if config.is_some() { " zhima.toml" } else { "" },
        );
        let mut header = tar::Header::new_gnu();
        header.set_size(manifest.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(now.timestamp().max(0) as u64);
        header.set_cksum();
        tar.append_data(&mut header, MANIFEST, manifest.as_bytes())
            .map_err(|e| io("cannot archive", &partial, e))?;
        let mut file = tar
            .into_inner()
            .map_err(|e| io("cannot write", &partial, e))?;
        file.flush().map_err(|e| io("cannot write", &partial, e))?;
        file.sync_all()
            .map_err(|e| io("cannot sync", &partial, e))?;
        Ok(())
    })();
    let _ = fs::remove_file(&copy);
    if let Err(e) = written {
        let _ = fs::remove_file(&partial);
        return Err(e);
    }
    // the archive may hold the signing key: owner only
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = fs::set_permissions(&partial, fs::Permissions::from_mode(0o600));
    }
    let file = dir.join(&name);
    fs::rename(&partial, &file).map_err(|e| io("cannot rename", &partial, e))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    let bytes = fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let removed = prune(dir, keep)?;
    Ok(BackupMade {
        file,
        bytes,
        with_key: key.is_some(),
        with_config: config.is_some(),
        removed,
    })
}

/// Copies the backup `file` into `dir` (a second place: a USB stick, a
/// network mount) under a `.partial` name, synced, then renamed, and keeps
/// the newest `keep` there; the copy.
pub fn copy(file: &Path, dir: &Path, keep: usize) -> Result<PathBuf, AppError> {
    fs::create_dir_all(dir).map_err(|e| io("cannot create", dir, e))?;
    let name = file
        .file_name()
        .ok_or_else(|| refuse(format!("{} names no file", file.display())))?;
    let target = dir.join(name);
    let mut partial = target.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    fs::copy(file, &partial).map_err(|e| io("cannot copy to", &partial, e))?;
    File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(|e| io("cannot sync", &partial, e))?;
    fs::rename(&partial, &target).map_err(|e| io("cannot rename", &partial, e))?;
    prune(dir, keep)?;
    Ok(target)
}

/// When the newest backup in `dir` was written, if there is one.
pub fn newest(dir: &Path) -> Option<std::time::SystemTime> {
    fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(PREFIX) && name.ends_with(".tar")
        })
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max()
}

/// Removes all but the newest `keep` backups in `dir` (never the last one).
pub fn prune(dir: &Path, keep: usize) -> Result<Vec<PathBuf>, AppError> {
    let mut backups: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| io("cannot read", dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(".tar"))
        })
        .collect();
    // oldest first: by when written, then by name (the stamp)
    backups.sort_by_key(|p| {
        let written = fs::metadata(p).and_then(|m| m.modified()).ok();
        (written, p.clone())
    });
    let excess = backups.len().saturating_sub(keep.max(1));
    let mut removed = Vec::new();
    for old in backups.into_iter().take(excess) {
        fs::remove_file(&old).map_err(|e| io("cannot remove", &old, e))?;
        removed.push(old);
    }
    Ok(removed)
}

/// Checks a PostgreSQL dump: a custom-format dump begins with `PGDMP`.
fn check_dump(path: &Path) -> Result<(), AppError> {
    let mut head = [0u8; 5];
    let read = File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head));
    match read {
        Ok(()) if &head == b"PGDMP" => Ok(()),
        Ok(()) => Err(refuse(format!(
            "{} is not a pg_dump custom-format dump",
            path.display()
        ))),
        Err(e) => Err(io("cannot read the dump", path, e)),
    }
}

/// Checks a database file: it opens, and SQLite finds it sound.
fn check_database(path: &Path) -> Result<(), AppError> {
    let url = format!("sqlite://{}", path.display());
    let store = Store::open(&url, &StoreOptions::default())?;
    let verdict = store.integrity_check()?;
    if verdict != "ok" {
        return Err(refuse(format!(
            "{} is not sound: {verdict}",
            path.display()
        )));
    }
    Ok(())
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// Where the database that was replaced went (if there was one).
    pub kept_database: Option<PathBuf>,
    /// Where the key that was replaced went (if the archive had one).
    pub kept_key: Option<PathBuf>,
    /// Whether the signing key was restored.
    pub key_restored: bool,
    /// Where the archive's configuration was put (never over the one in
    /// use), if it had one.
    pub config: Option<PathBuf>,
}

/// Restores `archive` as the SQLite database `db` (and the signing key at
/// `key`, when the archive has one and a key file is configured). Refuses
/// while a server holds the database; checks the archive's database before
/// anything is replaced; keeps what it replaces. Blocking.
pub fn restore(
    archive: &Path,
    db: &Path,
    key: Option<&Path>,
    now: DateTime<Utc>,
) -> Result<Restored, AppError> {
    let lock = lock_path(db);
    let held = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(|e| io("cannot open", &lock, e))?;
    if held.try_lock().is_err() {
        return Err(refuse(format!(
            "a server is using {}: stop it first (systemctl stop zhima)",
            db.display()
        )));
    }
    let stamp = now.format("%Y%m%d-%H%M%S").to_string();
    let parent = db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let staging = parent.join(format!(".zhima-restore-{stamp}"));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).map_err(|e| io("cannot create", &staging, e))?;
    let result = restore_from(archive, db, key, &staging, &stamp);
    let _ = fs::remove_dir_all(&staging);
    drop(held);
    result
}

fn restore_from(
    archive: &Path,
    db: &Path,
    key: Option<&Path>,
    staging: &Path,
    stamp: &str,
) -> Result<Restored, AppError> {
    let file = File::open(archive).map_err(|e| io("cannot open", archive, e))?;
    let mut tar = tar::Archive::new(file);
    let mut found = Vec::new();
    for entry in tar.entries().map_err(|e| io("cannot read", archive, e))? {
        let mut entry = entry.map_err(|e| io("cannot read", archive, e))?;
        let name = entry
            .path()
            .map_err(|e| io("cannot read", archive, e))?
            .to_string_lossy()
            .into_owned();
        if name == PGDUMP {
            return Err(refuse(format!(
                "{} holds a PostgreSQL dump, which zhima restore does not put back: unpack it \
                 (tar -xf FILE {PGDUMP}) and run pg_restore --clean --if-exists --no-owner \
                 --dbname URL {PGDUMP} with the server stopped (docs/backup.md)",
                archive.display()
            )));
        }
        // only the names a backup writes; nothing is unpacked by the
        // archive's own paths
        let Some(known) = [DB, KEY, CONFIG, MANIFEST].into_iter().find(|k| *k == name) else {
            return Err(refuse(format!(
                "{}: {name:?} is not part of a zhima backup",
                archive.display()
            )));
        };
        let target = staging.join(known);
        let mut out = File::create(&target).map_err(|e| io("cannot create", &target, e))?;
        std::io::copy(&mut entry, &mut out).map_err(|e| io("cannot unpack", archive, e))?;
        out.sync_all().map_err(|e| io("cannot sync", &target, e))?;
        found.push(known);
    }
    if !found.contains(&MANIFEST) || !found.contains(&DB) {
        return Err(refuse(format!(
            "{} is not a zhima backup (no {MANIFEST} or no {DB})",
            archive.display()
        )));
    }
    check_database(&staging.join(DB))?;

    // keep what is replaced: the database with its write-ahead log
    let before = |path: &Path| {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".before-restore-{stamp}"));
        PathBuf::from(name)
    };
    let kept_database = if db.exists() {
        let kept = before(db);
        for suffix in ["-wal", "-shm"] {
            let mut from = db.as_os_str().to_owned();
            from.push(suffix);
            let mut to = kept.as_os_str().to_owned();
            to.push(suffix);
            if Path::new(&from).exists() {
                fs::rename(&from, &to).map_err(|e| io("cannot keep", Path::new(&from), e))?;
            }
        }
        fs::rename(db, &kept).map_err(|e| io("cannot keep", db, e))?;
        Some(kept)
    } else {
        None
    };
    fs::rename(staging.join(DB), db).map_err(|e| io("cannot place", db, e))?;

    let mut kept_key = None;
    let mut key_restored = false;
    if let (Some(key), true) = (key, found.contains(&KEY)) {
        if key.exists() {
            let kept = before(key);
            fs::rename(key, &kept).map_err(|e| io("cannot keep", key, e))?;
            kept_key = Some(kept);
        }
        fs::rename(staging.join(KEY), key).map_err(|e| io("cannot place", key, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            fs::set_permissions(key, fs::Permissions::from_mode(0o600))
                .map_err(|e| io("cannot protect", key, e))?;
        }
        key_restored = true;
    }
    let config = if found.contains(&CONFIG) {
        let mut name = db.as_os_str().to_owned();
        name.push(format!(".restored-{stamp}.toml"));
        let path = PathBuf::from(name);
        fs::rename(staging.join(CONFIG), &path).map_err(|e| io("cannot place", &path, e))?;
        Some(path)
    } else {
        None
    };
    Ok(Restored {
        kept_database,
        kept_key,
        key_restored,
        config,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failure is a test failure

    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("zhima-app-backup-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-06T03:30:00Z")
            .unwrap()
            .into()
    }

    #[test]
    fn a_dump_goes_into_the_archive_as_zhima_pgdump() {
        let dir = scratch("dump");
        let dump =
            |to: &Path| fs::write(to, b"PGDMP\x01\x0f\x00 a dump").map_err(|e| io("write", to, e));
        let made = create(Source::Dump(&dump), &dir, None, None, 14, now()).unwrap();
        assert_eq!(names(&dir), ["zhima-backup-20261206-033000.tar"]);
        let mut archive = tar::Archive::new(File::open(&made.file).unwrap());
        let inside: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(inside, [PGDUMP, MANIFEST]);
        // and zhima restore will not put it into a SQLite file
        let refused = restore(&made.file, &dir.join("z.db"), None, now()).unwrap_err();
        assert!(refused.to_string().contains("pg_restore"), "{refused}");
        assert!(!dir.join("z.db").exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_dump_that_is_not_one_or_that_failed_leaves_nothing() {
        let dir = scratch("bad-dump");
        let not_a_dump = |to: &Path| fs::write(to, b"SELECT 1;").map_err(|e| io("write", to, e));
        let refused = create(Source::Dump(&not_a_dump), &dir, None, None, 14, now()).unwrap_err();
        assert!(refused.to_string().contains("not a pg_dump"), "{refused}");
        let failed = |_: &Path| {
            Err(AppError::Invalid {
                field: "backup",
                reason: "pg_dump ended with exit status: 1".into(),
            })
        };
        let refused = create(Source::Dump(&failed), &dir, None, None, 14, now()).unwrap_err();
        assert!(refused.to_string().contains("exit status: 1"), "{refused}");
        assert!(names(&dir).is_empty(), "left behind: {:?}", names(&dir));
        let _ = fs::remove_dir_all(&dir);
    }
}
