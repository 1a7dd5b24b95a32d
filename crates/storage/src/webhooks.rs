//! Webhooks: URLs an admin configured and the events each wants. An event
//! is queued in the outbox, once per webhook, in the transaction of the
//! change that caused it (a payment, a new member, a VIP purchase, a door
//! entry), or by the daily sweep (a membership expiring or expired).

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::connection::AnyConnection;
use crate::outbox::{enqueue_in, NewMessage};
use crate::rows::{instant, secs};
use crate::schema::{outbox, webhooks};
use crate::{StorageError, Store};

/// The events a webhook may want.
pub const EVENTS: [&str; 6] = [
    "payment.recorded",
    "member.created",
    "member.expiring",
    "member.expired",
    "door.entry",
    "vip.purchased",
];

/// A configured webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Its number.
    pub id: i64,
    /// Where deliveries go.
    pub url: String,
    /// The events it wants.
    pub events: Vec<String>,
    /// What its signing secret is derived from (with the server's key).
    pub salt: String,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// When it was removed, if it was.
    pub removed_at: Option<DateTime<Utc>>,
}

/// A delivery of the log (`zhima webhook log`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The outbox row.
    pub id: i64,
    /// The event.
    pub event: String,
    /// `pending`, `sending`, `sent` or `failed`.
    pub state: String,
    /// Attempts so far.
    pub attempts: i32,
    /// The last error, if any.
    pub last_error: String,
    /// When the event was queued.
    pub created_at: DateTime<Utc>,
    /// Its key (`webhook:<id>:<event>:<reference>`).
    pub once_key: String,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = webhooks)]
struct WebhookRow {
    id: i64,
    url: String,
    events: String,
    salt: String,
    created_at: i64,
    removed_at: Option<i64>,
}

impl WebhookRow {
    fn into_domain(self) -> Result<Webhook, StorageError> {
        Ok(Webhook {
            id: self.id,
            url: self.url,
            events: self
                .events
                .split(',')
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
            salt: self.salt,
            created_at: instant("webhooks", self.id, self.created_at)?,
            removed_at: self
                .removed_at
                .map(|t| instant("webhooks", self.id, t))
                .transpose()?,
        })
    }
}

/// Queues `event` for every active webhook that wants it, inside the
/// caller's write transaction: `body` is the event's JSON, `reference` what
/// makes it unique (a payment's row, an entry's row).
pub(crate) fn queue_event_in(
    conn: &mut AnyConnection,
    event: &str,
    reference: &str,
    body: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<u32, StorageError> {
    let hooks: Vec<(i64, String)> = webhooks::table
        .select((webhooks::id, webhooks::events))
        .filter(webhooks::removed_at.is_null())
        .load(conn)?;
    let mut queued = 0;
    for (id, events) in hooks {
        if !events.split(',').any(|e| e == event) {
            continue;
        }
        let payload = serde_json::json!({ "webhook": id, "body": body }).to_string();
        let key = format!("webhook:{id}:{event}:{reference}");
        if enqueue_in(
            conn,
            &NewMessage {
                once_key: &key,
                channel: "webhook",
                kind: event,
                member: None,
                payload: &payload,
            },
            now,
        )? {
            queued += 1;
        }
    }
    Ok(queued)
}

/// The JSON body of an event: its name, time and `data`.
pub(crate) fn event_body(
    event: &str,
    now: DateTime<Utc>,
    data: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({ "event": event, "at": now.to_rfc3339(), "data": data })
}

impl Store {
    /// Adds a webhook for `events` (each one of [`EVENTS`]).
    pub fn add_webhook(
        &self,
        url: &str,
        events: &[String],
        now: DateTime<Utc>,
    ) -> Result<Webhook, StorageError> {
        let salt = crate::credentials::random_hex::<16>()?;
        let id: i64 = self.write(|conn| {
            Ok(diesel::insert_into(webhooks::table)
                .values((
                    webhooks::url.eq(url),
                    webhooks::events.eq(events.join(",")),
                    webhooks::salt.eq(&salt),
                    webhooks::created_at.eq(secs(now)),
                ))
                .returning(webhooks::id)
                .get_result(conn)?)
        })?;
        self.webhook(id)?.ok_or(StorageError::MemberNotFound)
    }

    /// Every webhook, removed ones included.
    pub fn webhooks(&self) -> Result<Vec<Webhook>, StorageError> {
        let mut conn = self.conn()?;
        let rows: Vec<WebhookRow> = webhooks::table
            .select(WebhookRow::as_select())
            .order(webhooks::id.asc())
            .load(&mut *conn)?;
        rows.into_iter().map(WebhookRow::into_domain).collect()
    }

    /// Webhook `id`, if there is one.
    pub fn webhook(&self, id: i64) -> Result<Option<Webhook>, StorageError> {
        let mut conn = self.conn()?;
        let row: Option<WebhookRow> = webhooks::table
            .select(WebhookRow::as_select())
            .filter(webhooks::id.eq(id))
            .get_result(&mut *conn)
            .optional()?;
        row.map(WebhookRow::into_domain).transpose()
    }

    /// Removes webhook `id` (its queued deliveries are given up when they
    /// come up); `false` if there is no such active webhook.
    pub fn remove_webhook(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StorageError> {
        self.write_noting(
            |conn| {
                let n = diesel::update(
                    webhooks::table
                        .filter(webhooks::id.eq(id))
                        .filter(webhooks::removed_at.is_null()),
                )
                .set(webhooks::removed_at.eq(Some(secs(now))))
                .execute(conn)?;
                Ok(n > 0)
            },
            |removed| *removed,
        )
    }

    /// Queues `event` (with `data`) for the webhooks that want it, in a
    /// transaction of its own: how many deliveries were queued.
    pub fn queue_event(
        &self,
        event: &str,
        reference: &str,
        data: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<u32, StorageError> {
        let body = event_body(event, now, data);
        self.write(|conn| queue_event_in(conn, event, reference, &body, now))
    }

    /// The latest webhook deliveries, newest first.
    pub fn webhook_log(&self, limit: u32) -> Result<Vec<Delivered>, StorageError> {
        let mut conn = self.conn()?;
        let rows: Vec<(i64, String, String, i32, String, i64, String)> = outbox::table
            .select((
                outbox::id,
                outbox::kind,
                outbox::state,
                outbox::attempts,
                outbox::last_error,
                outbox::created_at,
                outbox::once_key,
            ))
            .filter(outbox::channel.eq("webhook"))
            .order(outbox::id.desc())
            .limit(i64::from(limit.clamp(1, 500)))
            .load(&mut *conn)?;
        rows.into_iter()
            .map(
                |(id, event, state, attempts, last_error, created, once_key)| {
                    Ok(Delivered {
                        id,
                        event,
                        state,
                        attempts,
                        last_error,
                        created_at: instant("outbox", id, created)?,
                        once_key,
                    })
                },
            )
            .collect()
    }
}
