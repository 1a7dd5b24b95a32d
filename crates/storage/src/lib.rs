#![doc = include_str!("../README.md")]

pub mod access;
mod api_keys;
pub mod audit;
mod connection;
pub mod credentials;
mod history;
mod import;
mod members;
pub mod oauth;
pub mod outbox;
mod rows;
mod schema;
pub mod sessions;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod wallet;
pub mod webhooks;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::prelude::*;
use diesel::r2d2::{Pool, PooledConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use api_keys::ApiKey;
pub use connection::{redact_url, Target};
use connection::{AnyConnection, Manager};
pub use import::{EventSource, Identity, ImportCounts, NumberedMember, Whom};
pub use members::{
    MemberKey, MemberLogin, MemberRecord, MemberSearch, PaymentReceipt, TOKENS_PAY_TYPE,
};

/// Migrations for SQLite, embedded in the binary.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
/// Migrations for PostgreSQL, embedded in the binary.
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// A field that must be unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueField {
    /// `openid`.
    OpenId,
    /// `nickName` (ignoring case).
    NickName,
    /// `rfid`.
    Rfid,
    /// `payIndex`.
    PayIndex,
    /// The name of an API key.
    ApiKeyName,
}

impl UniqueField {
    /// The wire name.
    pub fn wire_name(self) -> &'static str {
        match self {
            UniqueField::OpenId => "openid",
            UniqueField::NickName => "nickName",
            UniqueField::Rfid => "rfid",
            UniqueField::PayIndex => "payIndex",
            UniqueField::ApiKeyName => "name",
        }
    }
}

/// The errors of the storage crate.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database URL is not one zhima understands.
    #[error("unsupported database URL {0}: expected sqlite://PATH or postgres://…")]
    BadUrl(String),
    /// No connection could be had (database down, pool exhausted past its timeout).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A store made by [`Store::without_waiting`] found no idle connection
    /// (or, for a write, another writer ahead): run the call where it may wait.
    #[error("no connection is free without waiting")]
    WouldWait,
    /// No member matches.
    #[error("member not found")]
    MemberNotFound,
    /// The value is already used by another row.
    #[error("{} is already used", .0.wire_name())]
    Duplicate(UniqueField),
    /// The payIndex is already recorded, for another member or with other content.
    #[error("payIndex {0:?} is already recorded with different content")]
    PaymentConflict(String),
    /// A value refused by the domain rules.
    #[error(transparent)]
    Invalid(#[from] zhima_domain::DomainError),
    /// A stored row breaks the domain rules (edited by hand, or a bug).
    #[error("stored {table} row {id} is corrupt: {reason}")]
    Corrupt {
        /// Table.
        table: &'static str,
        /// Row ID.
        id: i64,
        /// What is wrong.
        reason: String,
    },
    /// A credit would take a token balance past 100,000,000 tokens; nothing
    /// was recorded.
    #[error("the credit would take the token balance past 100000000 tokens")]
    TokenCap,
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// Hashing a secret or drawing randomness failed.
    #[error("hashing a secret failed")]
    Hashing,
    /// What the backend cannot do; the text says what instead.
    #[error("{0}")]
    Unsupported(&'static str),
    /// An import names a member number that is already taken.
    #[error("member number {0} is already taken")]
    NumberTaken(i64),
    /// The source of an import failed while it was read (nothing was
    /// written).
    #[error("reading the import's source failed: {0}")]
    Source(String),
    /// A dry run's transaction, rolled back on purpose (never returned by
    /// a public call).
    #[error("dry run: rolled back")]
    RolledBack,
    /// Any other database error.
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
}

/// Why the database refused a write while it may still be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteRefusal {
    /// No space left on the device (SQLite `SQLITE_FULL`, PostgreSQL `53100`).
    DiskFull,
    /// The database or its file system is read-only, or failing to write
    /// (SQLite `SQLITE_READONLY`, `SQLITE_IOERR`; PostgreSQL read-only).
    ReadOnly,
}

impl WriteRefusal {
    /// From a database message, if it says a write was refused for lack of
    /// space or of a writable medium.
    pub fn from_message(message: &str) -> Option<WriteRefusal> {
        const FULL: [&str; 3] = [
            "database or disk is full",
            "No space left on device",
            "could not extend file",
        ];
        const READ_ONLY: [&str; 4] = [
            "attempt to write a readonly database",
            "disk I/O error",
            "Read-only file system",
            "read-only transaction",
        ];
        if FULL.iter().any(|m| message.contains(m)) {
            Some(WriteRefusal::DiskFull)
        } else if READ_ONLY.iter().any(|m| message.contains(m)) {
            Some(WriteRefusal::ReadOnly)
        } else {
            None
        }
    }
}

fn diesel_write_refusal(e: &diesel::result::Error) -> Option<WriteRefusal> {
    use diesel::result::Error;
    match e {
        // PostgreSQL's SQLSTATE 25006, named by diesel
        Error::DatabaseError(diesel::result::DatabaseErrorKind::ReadOnlyTransaction, _) => {
            Some(WriteRefusal::ReadOnly)
        }
        Error::DatabaseError(_, info) => WriteRefusal::from_message(info.message()),
        Error::RollbackErrorOnCommit {
            commit_error,
            rollback_error,
        } => diesel_write_refusal(commit_error).or_else(|| diesel_write_refusal(rollback_error)),
        _ => None,
    }
}

impl StorageError {
    /// Whether this is a write the database refused for lack of space or of
    /// a writable medium (the transaction was rolled back; reads may work).
    pub fn write_refusal(&self) -> Option<WriteRefusal> {
        match self {
            StorageError::Query(e) => diesel_write_refusal(e),
            StorageError::Unavailable(m) | StorageError::Migration(m) => {
                WriteRefusal::from_message(m)
            }
            _ => None,
        }
    }

    /// Whether retrying later may succeed (the database is unreachable or busy).
    pub fn is_transient(&self) -> bool {
        match self {
            StorageError::Unavailable(_) => true,
            StorageError::Query(diesel::result::Error::DatabaseError(kind, info)) => {
                matches!(
                    kind,
                    diesel::result::DatabaseErrorKind::SerializationFailure
                        | diesel::result::DatabaseErrorKind::ClosedConnection
                ) || info.message().contains("database is locked")
            }
            _ => false,
        }
    }
}

/// Which backend a [`Store`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// How a [`Store`] is opened: the pool, and the rules storage applies
/// (given as values, so storage itself reads no configuration).
#[derive(Clone)]
pub struct StoreOptions {
    /// Most connections kept open.
    pub pool_size: u32,
    /// How long a request waits for a connection before failing.
    pub connect_timeout: Duration,
    /// SQLite only: how long a writer waits for another writer.
    pub busy_timeout: Duration,
    /// Paid tokens a `TOKENS` payment credits per CNY (default 1).
    pub tokens_per_cny: zhima_domain::partner::Tokens,
    /// Which spans of a member's access history a member read loads
    /// (`membership::entry_windows` bound to the plans and zone). Without
    /// it every granted entry is loaded, which costs time in proportion to
    /// the member's whole access history.
    pub entry_windows: Option<EntryWindows>,
    /// How many members' histories member reads keep, each checked against
    /// the member's history version in the database on every read (0: none).
    pub history_cache: usize,
    /// Whether a payment (a desk payment, a VIP purchase) queues a receipt
    /// email in its own transaction (members with an email address).
    pub receipts: bool,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("busy_timeout", &self.busy_timeout)
            .field("tokens_per_cny", &self.tokens_per_cny)
            .field("entry_windows", &self.entry_windows.is_some())
            .field("history_cache", &self.history_cache)
            .finish()
    }
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            pool_size: 8,
            connect_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
            tokens_per_cny: zhima_domain::partner::Tokens::whole(1),
            entry_windows: None,
            history_cache: 20_000,
            receipts: false,
        }
    }
}

/// The database: a connection pool and every query zhima makes.
///
/// All methods are blocking; call them from a blocking thread.
#[derive(Clone)]
pub struct Store {
    pool: Pool<Manager>,
    backend: Backend,
    /// SQLite has one writer at a time; writers of this process queue here,
    /// in order, instead of in SQLite's sleeping busy handler.
    write_gate: Arc<Mutex<()>>,
    /// Tokens credited per CNY of a `TOKENS` payment.
    tokens_per_cny: zhima_domain::partner::Tokens,
    /// Which spans of a member's access history a member read loads.
    entry_windows: Option<EntryWindows>,
    /// Members' histories as last read, by history version.
    history: Arc<history::HistoryCache>,
    /// Whether taking a connection may wait (see [`Store::without_waiting`]).
    wait: bool,
    /// Written in the transaction of each write (see [`Store::audited`]).
    audit: Option<Arc<audit::AuditNote>>,
    /// Whether payments queue receipts ([`StoreOptions::receipts`]).
    receipts: bool,
}

/// Given a member's payments, the spans in which their granted entries
/// matter (sorted, disjoint); `zhima_domain::membership::entry_windows`
/// bound to the configured plans and time zone.
pub type EntryWindows = Arc<
    dyn Fn(
            &[zhima_domain::member::Payment],
        ) -> Vec<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)>
        + Send
        + Sync,
>;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

type Conn = PooledConnection<Manager>;

impl Store {
    /// Opens a pool on the database `url` names (`sqlite://PATH` or `postgres://…`).
    /// A SQLite file is created if missing. Fails if no connection can be made.
    pub fn open(url: &str, options: &StoreOptions) -> Result<Store, StorageError> {
        let target = Target::parse(url)?;
        let backend = match target {
            Target::Sqlite(_) => Backend::Sqlite,
            Target::Postgres(_) => Backend::Postgres,
        };
        let pool = Pool::builder()
            .max_size(options.pool_size.max(1))
            // no idle connections kept for their own sake: r2d2 makes those
            // on its own threads in the background, and a process that exits
            // while one is inside libpq's SSL/GSS negotiation (TCP) crashes in
            // krb5's or OpenSSL's exit handlers. Connections are made when a
            // caller waits for one, so none is being made when work is done.
            .min_idle(Some(0))
            .connection_timeout(options.connect_timeout)
            // a broken connection is noticed by has_broken; a ping per checkout
            // would cost a query per request
            .test_on_check_out(false)
            .build(Manager::new(target, options.busy_timeout))
            .map_err(|e| StorageError::Unavailable(e.to_string()))?;
        Ok(Store {
            pool,
            backend,
            write_gate: Arc::new(Mutex::new(())),
            tokens_per_cny: options.tokens_per_cny,
            entry_windows: options.entry_windows.clone(),
            history: Arc::new(history::HistoryCache::new(options.history_cache)),
            wait: true,
            audit: None,
            receipts: options.receipts,
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A consistent copy of a live SQLite database into the new file `path`
    /// (`VACUUM INTO`: one read transaction, so writers go on meanwhile and
    /// the copy holds exactly what was committed when it began). Refused on
    /// PostgreSQL, whose own tools (`pg_dump`) copy it.
    pub fn copy_into(&self, path: &std::path::Path) -> Result<(), StorageError> {
        let text = path
            .to_str()
            .ok_or_else(|| StorageError::Unsupported("a backup path must be UTF-8"))?;
        let mut conn = self.conn()?;
        match &mut *conn {
            AnyConnection::Sqlite(c) => {
                diesel::sql_query("VACUUM INTO ?")
                    .bind::<diesel::sql_types::Text, _>(text)
                    .execute(c)?;
                Ok(())
            }
            AnyConnection::Postgresql(_) => Err(StorageError::Unsupported(
                "a PostgreSQL database is copied with pg_dump",
            )),
        }
    }

    /// The database's own consistency check: SQLite's `PRAGMA
    /// integrity_check` (`"ok"` when sound), or on PostgreSQL a query that
    /// reads every table's row count (the server checks its own pages).
    pub fn integrity_check(&self) -> Result<String, StorageError> {
        use diesel::connection::SimpleConnection as _;
        #[derive(diesel::QueryableByName)]
        struct Line {
            #[diesel(sql_type = diesel::sql_types::Text)]
            integrity_check: String,
        }
        let mut conn = self.conn()?;
        match &mut *conn {
            AnyConnection::Sqlite(c) => {
                let lines: Vec<Line> = diesel::sql_query("PRAGMA integrity_check").load(c)?;
                Ok(lines
                    .into_iter()
                    .map(|l| l.integrity_check)
                    .collect::<Vec<_>>()
                    .join("; "))
            }
            AnyConnection::Postgresql(c) => {
                c.batch_execute(
                    "SELECT count(*) FROM members; SELECT count(*) FROM payments; \
                     SELECT count(*) FROM access_events; SELECT count(*) FROM token_ledger",
                )?;
                Ok("ok".to_owned())
            }
        }
    }

    /// The pool now: open connections, idle ones, the most it opens.
    pub fn pool_state(&self) -> (u32, u32, u32) {
        let state = self.pool.state();
        (
            state.connections,
            state.idle_connections,
            self.pool.max_size(),
        )
    }

    /// The same store, for a caller that must not block (an async worker
    /// thread): taking a connection never waits, and answers
    /// [`StorageError::WouldWait`] when none is idle; a write answers it too
    /// when another writer of this process is ahead. `Some` for SQLite only,
    /// whose reads are a few microseconds of CPU from the page cache, less
    /// than handing the call to a blocking thread; a PostgreSQL call waits
    /// on the network, so it has no such store.
    pub fn without_waiting(&self) -> Option<Store> {
        match self.backend {
            Backend::Sqlite => Some(Store {
                wait: false,
                ..self.clone()
            }),
            Backend::Postgres => None,
        }
    }

    fn conn(&self) -> Result<Conn, StorageError> {
        if !self.wait {
            return self.pool.try_get().ok_or(StorageError::WouldWait);
        }
        self.pool
            .get()
            .map_err(|e| StorageError::Unavailable(e.to_string()))
    }

    /// Applies pending migrations; returns the names of those applied.
    pub fn migrate(&self) -> Result<Vec<String>, StorageError> {
        let mut conn = self.conn()?;
        let applied = match &mut *conn {
            AnyConnection::Sqlite(c) => c
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|v| v.iter().map(ToString::to_string).collect()),
            AnyConnection::Postgresql(c) => c
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|v| v.iter().map(ToString::to_string).collect()),
        };
        applied.map_err(|e| StorageError::Migration(e.to_string()))
    }

    /// How many migrations are not applied yet.
    pub fn pending_migrations(&self) -> Result<usize, StorageError> {
        let mut conn = self.conn()?;
        let pending = match &mut *conn {
            AnyConnection::Sqlite(c) => c.pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
            AnyConnection::Postgresql(c) => {
                c.pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len())
            }
        };
        pending.map_err(|e| StorageError::Migration(e.to_string()))
    }
}

pub use credentials::DEFAULT_PASSWORD;

impl Store {
    /// Runs `f` in a transaction that writes, on a connection of its own.
    ///
    /// On SQLite, writers of this process first queue on a mutex (before
    /// taking a connection, so waiting writers never starve readers of
    /// connections), then the transaction takes SQLite's write lock before it
    /// reads anything, so two writers never deadlock upgrading read locks.
    /// Other processes on the same file wait up to the busy timeout.
    fn write<T>(
        &self,
        f: impl FnOnce(&mut AnyConnection) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        self.write_noting(f, |_| true)
    }

    /// [`Store::write`], writing the audit note (if any) only when
    /// `changed` says the transaction changed something (a replayed payment
    /// or a revocation of nothing is not a change).
    pub(crate) fn write_noting<T>(
        &self,
        f: impl FnOnce(&mut AnyConnection) -> Result<T, StorageError>,
        changed: impl FnOnce(&T) -> bool,
    ) -> Result<T, StorageError> {
        let _gate = match self.backend {
            Backend::Sqlite if !self.wait => match self.write_gate.try_lock() {
                Ok(gate) => Some(gate),
                Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => return Err(StorageError::WouldWait),
            },
            Backend::Sqlite => Some(zhima_domain::sync::lock(&self.write_gate)),
            Backend::Postgres => None,
        };
        let mut pooled = self.conn()?;
        let conn: &mut AnyConnection = &mut pooled;
        conn.transaction(|conn| {
            if let AnyConnection::Sqlite(c) = conn {
                use schema::write_lock::dsl::{n, write_lock};
                diesel::update(write_lock).set(n.eq(n + 1)).execute(c)?;
            }
            let value = f(conn)?;
            if let Some(note) = self.audit.as_deref().filter(|_| changed(&value)) {
                audit::record_in(conn, note)?;
            }
            Ok(value)
        })
    }

    /// This store without an audit note.
    fn unaudited(&self) -> Store {
        Store {
            audit: None,
            ..self.clone()
        }
    }
}

/// The unique field a constraint violation is about, if it is one.
fn violated_unique(err: &diesel::result::Error) -> Option<UniqueField> {
    let diesel::result::Error::DatabaseError(
        diesel::result::DatabaseErrorKind::UniqueViolation,
        info,
    ) = err
    else {
        return None;
    };
    let text = format!(
        "{} {}",
        info.message(),
        info.constraint_name().unwrap_or("")
    );
    [
        ("api_keys", UniqueField::ApiKeyName),
        ("nickname", UniqueField::NickName),
        ("openid", UniqueField::OpenId),
        ("rfid", UniqueField::Rfid),
        ("pay_index", UniqueField::PayIndex),
    ]
    .into_iter()
    .find(|(needle, _)| text.contains(needle))
    .map(|(_, f)| f)
}

/// Maps a constraint violation to [`StorageError::Duplicate`].
fn map_unique(err: StorageError) -> StorageError {
    match &err {
        StorageError::Query(e) => violated_unique(e).map_or(err, StorageError::Duplicate),
        _ => err,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

    use super::*;
    use crate::testing::TestDatabase;

    /// The store for async callers never waits: with every connection taken
    /// its read answers `WouldWait` at once, where the waiting store would
    /// block; with one free it reads.
    #[test]
    fn a_store_without_waiting_answers_would_wait_when_no_connection_is_idle() {
        let db = TestDatabase::new().unwrap();
        let options = StoreOptions {
            pool_size: 1,
            connect_timeout: Duration::from_millis(200),
            ..StoreOptions::default()
        };
        let store = Store::open(db.url(), &options).unwrap();
        store.migrate().unwrap();
        let Some(quick) = store.without_waiting() else {
            assert_eq!(
                store.backend(),
                Backend::Postgres,
                "only PostgreSQL has none"
            );
            return;
        };
        let openid = zhima_domain::ids::OpenId::parse("nobody").unwrap();
        assert!(quick.member(MemberKey::OpenId(&openid)).unwrap().is_none());
        let held = store.conn().unwrap();
        let started = std::time::Instant::now();
        let answer = quick.member(MemberKey::OpenId(&openid));
        assert!(matches!(answer, Err(StorageError::WouldWait)), "{answer:?}");
        assert!(started.elapsed() < Duration::from_millis(100), "it waited");
        drop(held);
        assert!(quick.member(MemberKey::OpenId(&openid)).unwrap().is_none());
    }
}
