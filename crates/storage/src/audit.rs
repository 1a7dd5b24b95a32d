//! The audit log: every change made through the staff console or the CLI,
//! who made it, when, and the values before and after.
//!
//! An audited change writes its row in the transaction of the change itself
//! ([`Store::audited`]): both commit or neither does, so no change goes
//! unrecorded and no record names a change that did not happen. Rows are
//! only ever added; the database refuses any update or delete of them
//! (triggers of migration 000008, on both backends).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use zhima_domain::ids::MemberId;

use crate::connection::AnyConnection;
use crate::rows::{instant, secs};
use crate::schema::audit_log;
use crate::{StorageError, Store};

/// What an audited change records: who, what, about what, before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditNote {
    /// When.
    pub at: DateTime<Utc>,
    /// The member who made the change (`None`: the CLI, an operator).
    pub actor_id: Option<MemberId>,
    /// Their name then (a nickname, or `cli` and the operator's user).
    pub actor: String,
    /// What was done (`member.update`, `payment.record`, `api_key.create`…).
    pub action: String,
    /// What it was done to (`member #12`, `api key desk`…).
    pub subject: String,
    /// The values before (empty for something new).
    pub before: String,
    /// The values after (empty for something removed).
    pub after: String,
}

/// A row of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its place in the log (grows with time).
    pub id: i64,
    /// What was recorded.
    pub note: AuditNote,
}

#[derive(Insertable)]
#[diesel(table_name = audit_log)]
struct NewAuditRow<'a> {
    at: i64,
    actor_id: Option<i64>,
    actor: &'a str,
    action: &'a str,
    subject: &'a str,
    before_value: &'a str,
    after_value: &'a str,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = audit_log)]
struct AuditRow {
    id: i64,
    at: i64,
    actor_id: Option<i64>,
    actor: String,
    action: String,
    subject: String,
    before_value: String,
    after_value: String,
}

/// Adds `note` to the log, inside the caller's write transaction.
pub(crate) fn record_in(conn: &mut AnyConnection, note: &AuditNote) -> Result<(), StorageError> {
    diesel::insert_into(audit_log::table)
        .values(NewAuditRow {
            at: secs(note.at),
            actor_id: note.actor_id.map(|m| m.0),
            actor: &note.actor,
            action: &note.action,
            subject: &note.subject,
            before_value: &note.before,
            after_value: &note.after,
        })
        .execute(conn)?;
    Ok(())
}

/// The most entries one read of the log returns.
pub const AUDIT_PAGE_MAX: u32 = 200;

impl Store {
    /// This store, with `note` written in the transaction of every write it
    /// makes: use it for the one change the note is about
    /// (`store.audited(note).set_deactivated(…)`).
    pub fn audited(&self, note: AuditNote) -> Store {
        Store {
            audit: Some(std::sync::Arc::new(note)),
            ..self.clone()
        }
    }

    /// Adds `note` to the log on its own (for a change made elsewhere, such
    /// as a partner registered through the OAuth2 provider, recorded once it
    /// succeeded).
    pub fn record_audit(&self, note: &AuditNote) -> Result<(), StorageError> {
        self.unaudited().write(|conn| record_in(conn, note))
    }

    /// The log, newest first: up to `limit` entries (at most
    /// [`AUDIT_PAGE_MAX`]) older than the entry `before`, if given.
    pub fn audit_log(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StorageError> {
        let mut conn = self.conn()?;
        let mut select = audit_log::table
            .select(AuditRow::as_select())
            .order(audit_log::id.desc())
            .limit(i64::from(limit.clamp(1, AUDIT_PAGE_MAX)))
            .into_boxed();
        if let Some(before) = before {
            select = select.filter(audit_log::id.lt(before));
        }
        let rows: Vec<AuditRow> = select.load(&mut *conn)?;
        rows.into_iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.id,
                    note: AuditNote {
                        at: instant("audit_log", r.id, r.at)?,
                        actor_id: r.actor_id.map(MemberId),
                        actor: r.actor,
                        action: r.action,
                        subject: r.subject,
                        before: r.before_value,
                        after: r.after_value,
                    },
                })
            })
            .collect()
    }
}
