//! The outbox of notifications: messages waiting to be delivered, each
//! queued once under its key, claimed by one sender at a time through a
//! lease, and finished as sent, to retry, or failed.
//!
//! Exactly once, as far as the database can make it: a key is queued at
//! most once (a second queueing, by a second sweep or a second server, finds
//! it and does nothing); a message is claimed by one sender (the claim is a
//! conditional update, so of two servers racing for a row one changes it
//! and the other changes nothing). A sender that dies after the mail server
//! accepted a message and before it wrote "sent" leaves the lease to run
//! out, and that one message is sent again: at least once, at most one
//! repeat per crash.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use zhima_domain::ids::MemberId;

use crate::connection::AnyConnection;
use crate::rows::secs;
use crate::schema::{members, outbox};
use crate::{StorageError, Store};

/// A message to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage<'a> {
    /// The key that makes it happen once.
    pub once_key: &'a str,
    /// How it goes (`email`).
    pub channel: &'a str,
    /// What it is (`reminder-7`, `ended`, `receipt`…).
    pub kind: &'a str,
    /// The member it is for, if any.
    pub member: Option<MemberId>,
    /// What the message needs, as JSON.
    pub payload: &'a str,
}

/// A message claimed for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its row.
    pub id: i64,
    /// Its key.
    pub once_key: String,
    /// How it goes.
    pub channel: String,
    /// What it is.
    pub kind: String,
    /// The member it is for.
    pub member: Option<MemberId>,
    /// What it needs, as JSON.
    pub payload: String,
    /// Delivery attempts so far, this one included.
    pub attempts: u32,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Delivered.
    Sent,
    /// Not delivered; try again at `next_at`.
    Retry {
        /// Why not.
        error: String,
        /// When to try again.
        next_at: DateTime<Utc>,
    },
    /// Not delivered, and no more tries (the error is kept).
    GiveUp {
        /// Why not.
        error: String,
    },
}

/// How many messages are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Waiting (for their time, or a retry).
    pub pending: i64,
    /// Claimed by a sender now.
    pub sending: i64,
    /// Delivered.
    pub sent: i64,
    /// Given up.
    pub failed: i64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = outbox)]
struct MessageRow {
    id: i64,
    once_key: String,
    channel: String,
    kind: String,
    member_id: Option<i64>,
    payload: String,
    attempts: i32,
}

impl MessageRow {
    fn into_domain(self) -> Message {
        Message {
            id: self.id,
            once_key: self.once_key,
            channel: self.channel,
            kind: self.kind,
            member: self.member_id.map(MemberId),
            payload: self.payload,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
        }
    }
}

/// Queues `message` inside a write transaction unless its key is queued
/// already: whether it was queued.
pub(crate) fn enqueue_in(
    conn: &mut AnyConnection,
    message: &NewMessage<'_>,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let exists: Option<i64> = outbox::table
        .select(outbox::id)
        .filter(outbox::once_key.eq(message.once_key))
        .get_result(conn)
        .optional()?;
    if exists.is_some() {
        return Ok(false);
    }
    diesel::insert_into(outbox::table)
        .values((
            outbox::once_key.eq(message.once_key),
            outbox::channel.eq(message.channel),
            outbox::kind.eq(message.kind),
            outbox::member_id.eq(message.member.map(|m| m.0)),
            outbox::payload.eq(message.payload),
            outbox::created_at.eq(secs(now)),
            outbox::state.eq("pending"),
            outbox::next_at.eq(secs(now)),
        ))
        .execute(conn)?;
    Ok(true)
}

/// Queues the receipt of payment `payment` of `member` (inside the
/// payment's transaction), if the member has an email address.
pub(crate) fn queue_receipt_in(
    conn: &mut AnyConnection,
    member: i64,
    payment: i64,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let email: String = members::table
        .select(members::email)
        .filter(members::id.eq(member))
        .get_result(conn)?;
    if email.trim().is_empty() {
        return Ok(());
    }
    enqueue_in(
        conn,
        &NewMessage {
            once_key: &format!("receipt:payment:{payment}"),
            channel: "email",
            kind: "receipt",
            member: Some(MemberId(member)),
            payload: &format!("{{\"type\":\"receipt\",\"payment\":{payment}}}"),
        },
        now,
    )?;
    Ok(())
}

/// The states a sender may claim at `now`: pending and due, or claimed by a
/// sender whose lease ran out.
macro_rules! claimable {
    ($now:expr) => {
        outbox::state
            .eq("pending")
            .and(outbox::next_at.le($now))
            .or(outbox::state
                .eq("sending")
                .and(outbox::lease_until.lt($now)))
    };
}

impl Store {
    /// Queues `message` unless a message with its key exists (queued, sent
    /// or failed): whether it was queued. Two servers queueing the same key
    /// at once queue it once.
    pub fn enqueue(
        &self,
        message: &NewMessage<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        match self.write(|conn| enqueue_in(conn, message, now)) {
            // the other server's insert won between our look and our insert
            Err(StorageError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ))) => Ok(false),
            other => other,
        }
    }

    /// Whether a message with `once_key` exists, in any state.
    pub fn outbox_has(&self, once_key: &str) -> Result<bool, StorageError> {
        let mut conn = self.conn()?;
        let found: Option<i64> = outbox::table
            .select(outbox::id)
            .filter(outbox::once_key.eq(once_key))
            .get_result(&mut *conn)
            .optional()?;
        Ok(found.is_some())
    }

    /// Claims up to `limit` messages due at `now` for `lease`: each message
    /// is claimed by one caller however many senders ask at once (a claim
    /// is an update that only changes a row still claimable).
    pub fn claim_messages(
        &self,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: u32,
    ) -> Result<Vec<Message>, StorageError> {
        let t = secs(now);
        self.write(|conn| {
            let candidates: Vec<i64> = outbox::table
                .select(outbox::id)
                .filter(claimable!(t))
                .order(outbox::id.asc())
                .limit(i64::from(limit.clamp(1, 100)))
                .load(conn)?;
            let mut claimed = Vec::new();
            for id in candidates {
                let n = diesel::update(
                    outbox::table
                        .filter(outbox::id.eq(id))
                        .filter(claimable!(t)),
                )
                .set((
                    outbox::state.eq("sending"),
                    outbox::lease_until.eq(secs(now + lease)),
                    outbox::attempts.eq(outbox::attempts + 1),
                ))
                .execute(conn)?;
                if n == 1 {
                    let row: MessageRow = outbox::table
                        .select(MessageRow::as_select())
                        .filter(outbox::id.eq(id))
                        .get_result(conn)?;
                    claimed.push(row.into_domain());
                }
            }
            Ok(claimed)
        })
    }

    /// Records how the delivery of message `id` ended.
    pub fn finish_message(
        &self,
        id: i64,
        delivery: &Delivery,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let row = outbox::table.filter(outbox::id.eq(id));
        self.write(|conn| {
            match delivery {
                Delivery::Sent => diesel::update(row)
                    .set((
                        outbox::state.eq("sent"),
                        outbox::sent_at.eq(Some(secs(now))),
                        outbox::lease_until.eq(None::<i64>),
                    ))
                    .execute(conn)?,
                Delivery::Retry { error, next_at } => diesel::update(row)
                    .set((
                        outbox::state.eq("pending"),
                        outbox::next_at.eq(secs(*next_at)),
                        outbox::lease_until.eq(None::<i64>),
                        outbox::last_error.eq(truncate(error)),
                    ))
                    .execute(conn)?,
                Delivery::GiveUp { error } => diesel::update(row)
                    .set((
                        outbox::state.eq("failed"),
                        outbox::lease_until.eq(None::<i64>),
                        outbox::last_error.eq(truncate(error)),
                    ))
                    .execute(conn)?,
            };
            Ok(())
        })
    }

    /// How many messages are in each state.
    pub fn outbox_counts(&self) -> Result<OutboxCounts, StorageError> {
        let mut conn = self.conn()?;
        let rows: Vec<(String, i64)> = outbox::table
            .group_by(outbox::state)
            .select((outbox::state, diesel::dsl::count_star()))
            .load(&mut *conn)?;
        let mut counts = OutboxCounts::default();
        for (state, n) in rows {
            match state.as_str() {
                "pending" => counts.pending = n,
                "sending" => counts.sending = n,
                "sent" => counts.sent = n,
                "failed" => counts.failed = n,
                _ => {}
            }
        }
        Ok(counts)
    }
}

/// An error kept with a message: at most 500 characters.
fn truncate(error: &str) -> String {
    error.chars().take(500).collect()
}
