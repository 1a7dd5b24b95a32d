//! Imports from another system (the old server): members under numbers of
//! their own, their payments and their access history, in one transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use zhima_domain::access::NewAccessEvent;
use zhima_domain::ids::MemberId;
use zhima_domain::member::{NewMember, NewPayment};

use crate::access::insert_events_in;
use crate::connection::AnyConnection;
use crate::members::check_unique;
use crate::rows::{secs, MemberColumns, NewMemberRow, NewPaymentRow, PaymentRow};
use crate::schema::{import_marks, members, payments};
use crate::{credentials, map_unique, StorageError, Store};

/// A member to import ([`Store::import_numbered`]).
#[derive(Debug, Clone)]
pub struct NumberedMember {
    /// The number to keep; `None`: the next free one.
    pub id: Option<MemberId>,
    /// The member.
    pub new: NewMember,
    /// When they were created.
    pub created: DateTime<Utc>,
    /// Whether they are deactivated.
    pub deactivated: bool,
    /// The argon2id hash of a real password (`credentials::hash_password`);
    /// `None`: the default password.
    pub password_hash: Option<String>,
}

/// Whose a payment of an import is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whom {
    /// The imported member at this index of the members given.
    Imported(usize),
    /// A member already in the database.
    Existing(MemberId),
}

/// What an import wrote (or, in a dry run, would have written).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    /// Members created.
    pub members: u64,
    /// Payments recorded.
    pub payments: u64,
    /// Payments already recorded with the same content (skipped).
    pub replayed: u64,
    /// Access events recorded.
    pub events: u64,
}

/// The source of an import's access events: called with the numbers the
/// imported members got (in the order given), it gives the next batch and
/// the id of the last source row it read, or `None` when there are no more.
pub type EventSource<'a> =
    dyn FnMut(&[MemberId]) -> Result<Option<(Vec<NewAccessEvent>, i64)>, String> + 'a;

impl Store {
    /// Imports members (under numbers of their own where given: the old
    /// server's ids, which people know), then their payments, then access
    /// history read batch by batch from `events`, in one transaction: all
    /// or nothing. How far `events` read is kept as the import mark of
    /// `source` ([`Store::import_mark`]). A number, openid, nickname or card already taken is
    /// refused; a payment already recorded with the same content is
    /// skipped. Events are written as they are (no webhook hears of them).
    /// On PostgreSQL the id sequence is moved past the highest number, so
    /// members made later get new ones. With `dry_run` everything is
    /// written and checked, then rolled back. An audit note (a store from
    /// [`Store::audited`]) is written only when something was.
    pub fn import_numbered(
        &self,
        members: &[NumberedMember],
        payments: &[(Whom, NewPayment)],
        events: &mut EventSource<'_>,
        source: &str,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<ImportCounts, StorageError> {
        let mut rolled_back = ImportCounts::default();
        let done = self.write_noting(
            |conn| {
                let mut counted = ImportCounts::default();
                let mut ids: Vec<MemberId> = vec![MemberId(0); members.len()];
                // kept numbers first, then the sequence past them, so that
                // new ones come after
                for keep_number in [true, false] {
                    for (i, m) in members.iter().enumerate() {
                        if m.id.is_some() == keep_number {
                            ids[i] = insert_member(conn, m)?;
                            counted.members += 1;
                        }
                    }
                    if keep_number {
                        move_sequence(conn)?;
                    }
                }
                // 500 at a time: one read of those already recorded, then
                // the new ones (one statement on PostgreSQL)
                for chunk in payments.chunks(500) {
                    let indexes: Vec<&str> =
                        chunk.iter().map(|(_, p)| p.pay_index.as_str()).collect();
                    let mut recorded: HashMap<String, PaymentRow> = payments::table
                        .select(PaymentRow::as_select())
                        .filter(payments::pay_index.eq_any(&indexes))
                        .load::<PaymentRow>(conn)?
                        .into_iter()
                        .map(|row| (row.pay_index.clone(), row))
                        .collect();
                    let mut rows = Vec::with_capacity(chunk.len());
                    for (whom, payment) in chunk {
                        let member = match *whom {
                            Whom::Imported(i) => *ids.get(i).ok_or(StorageError::MemberNotFound)?,
                            Whom::Existing(id) => id,
                        };
                        if let Some(existing) = recorded.remove(payment.pay_index.as_str()) {
                            if existing.member_id == member.0
                                && payment.is_replay_of(&existing.into_domain()?)
                            {
                                counted.replayed += 1;
                                continue;
                            }
                            return Err(StorageError::PaymentConflict(
                                payment.pay_index.to_string(),
                            ));
                        }
                        rows.push(NewPaymentRow::new(member, payment, now));
                    }
                    counted.payments += rows.len() as u64;
                    match conn {
                        AnyConnection::Postgresql(pg) => {
                            diesel::insert_into(payments::table)
                                .values(&rows)
                                .execute(pg)?;
                        }
                        AnyConnection::Sqlite(c) => {
                            for row in rows {
                                diesel::insert_into(payments::table)
                                    .values(row)
                                    .execute(c)?;
                            }
                        }
                    }
                }
                let mut read_to = None;
                while let Some((batch, last)) = events(&ids).map_err(StorageError::Source)? {
                    insert_events_in(conn, &batch)?;
                    counted.events += batch.len() as u64;
                    read_to = read_to.max(Some(last));
                }
                if let Some(read_to) = read_to {
                    diesel::delete(import_marks::table.filter(import_marks::source.eq(source)))
                        .execute(conn)?;
                    diesel::insert_into(import_marks::table)
                        .values((
                            import_marks::source.eq(source),
                            import_marks::read_to.eq(read_to),
                        ))
                        .execute(conn)?;
                }
                if dry_run {
                    rolled_back = counted;
                    return Err(StorageError::RolledBack);
                }
                Ok(counted)
            },
            // a run that wrote nothing leaves no audit entry
            |c| *c != ImportCounts::default(),
        );
        match done.map_err(map_unique) {
            Err(StorageError::RolledBack) => Ok(rolled_back),
            other => other,
        }
    }
}

/// Inserts one member; its number.
fn insert_member(conn: &mut AnyConnection, m: &NumberedMember) -> Result<MemberId, StorageError> {
    check_unique(conn, &MemberColumns::of_new(&m.new), None)?;
    // the default password's hash has a salt of each member's own
    let hash = match &m.password_hash {
        Some(hash) => hash.clone(),
        None => credentials::hash_default_password()?,
    };
    let mut row = NewMemberRow::new(&m.new, hash, m.created);
    row.must_change_password = m.password_hash.is_none();
    let id: i64 = match m.id {
        Some(id) => {
            let taken: Option<i64> = members::table
                .select(members::id)
                .filter(members::id.eq(id.0))
                .get_result(conn)
                .optional()?;
            if taken.is_some() {
                return Err(StorageError::NumberTaken(id.0));
            }
            diesel::insert_into(members::table)
                .values((members::id.eq(id.0), row))
                .execute(conn)?;
            id.0
        }
        None => diesel::insert_into(members::table)
            .values(row)
            .returning(members::id)
            .get_result(conn)?,
    };
    if m.deactivated {
        diesel::update(members::table.filter(members::id.eq(id)))
            .set(members::deactivated_at.eq(Some(secs(m.created))))
            .execute(conn)?;
    }
    Ok(MemberId(id))
}

/// PostgreSQL: moves the member id sequence past the highest number
/// (SQLite's rowid needs nothing).
fn move_sequence(conn: &mut AnyConnection) -> Result<(), StorageError> {
    if let AnyConnection::Postgresql(pg) = conn {
        diesel::sql_query(
            "SELECT setval(pg_get_serial_sequence('members', 'id'), \
             GREATEST((SELECT MAX(id) FROM members), 1))",
        )
        .execute(pg)?;
    }
    Ok(())
}

/// Who a member is, for matching an import against the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The number.
    pub id: MemberId,
    /// The openid.
    pub openid: String,
    /// The nickname, case-folded (`NickName::key`).
    pub nickname_key: String,
    /// The card, if any.
    pub rfid: Option<String>,
}

impl Store {
    /// How far the last import from `source` read it.
    pub fn import_mark(&self, source: &str) -> Result<Option<i64>, StorageError> {
        let mut conn = self.conn()?;
        Ok(import_marks::table
            .select(import_marks::read_to)
            .filter(import_marks::source.eq(source))
            .first(&mut *conn)
            .optional()?)
    }

    /// Every member's number, openid, folded nickname and card, by number
    /// (what an import matches its rows against: four short columns a
    /// member).
    pub fn member_identities(&self) -> Result<Vec<Identity>, StorageError> {
        let mut conn = self.conn()?;
        let rows: Vec<(i64, String, String, Option<String>)> = members::table
            .select((
                members::id,
                members::openid,
                members::nickname_key,
                members::rfid,
            ))
            .order(members::id.asc())
            .load(&mut *conn)?;
        Ok(rows
            .into_iter()
            .map(|(id, openid, nickname_key, rfid)| Identity {
                id: MemberId(id),
                openid,
                nickname_key,
                rfid,
            })
            .collect())
    }
}
