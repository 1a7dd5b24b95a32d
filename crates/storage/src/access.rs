//! The access log.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use zhima_domain::access::{AccessEvent, AccessMethod, NewAccessEvent, Outcome};
use zhima_domain::ids::MemberId;

use crate::connection::AnyConnection;
use crate::rows::{instant, secs};
use crate::schema::access_events;
use crate::{StorageError, Store};

/// The most events one page may hold.
pub const PAGE_MAX: u32 = 500;

/// Which events to list: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventQuery {
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events older than this ID (the cursor of the previous page).
    pub before: Option<i64>,
    /// At most this many (capped at [`PAGE_MAX`]).
    pub limit: u32,
    /// Only events with this outcome.
    pub outcome: Option<Outcome>,
    /// Only events of this member.
    pub member: Option<MemberId>,
    /// Only events before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only events of this method.
    pub method: Option<zhima_domain::access::AccessMethod>,
    /// Only events at this door.
    pub door: Option<String>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = access_events)]
struct EventRow {
    id: i64,
    at: i64,
    door: String,
    method: String,
    outcome: String,
    reason: String,
    member_id: Option<i64>,
    api_key_id: Option<i64>,
    detail: String,
}

#[derive(Insertable)]
#[diesel(table_name = access_events)]
struct NewEventRow<'a> {
    at: i64,
    door: &'a str,
    method: &'static str,
    outcome: &'static str,
    reason: &'a str,
    member_id: Option<i64>,
    api_key_id: Option<i64>,
    detail: &'a str,
}

impl EventRow {
    fn into_domain(self) -> Result<AccessEvent, StorageError> {
        let id = self.id;
        let corrupt = |e: zhima_domain::Invalid| StorageError::Corrupt {
            table: "access_events",
            id,
            reason: e.to_string(),
        };
        Ok(AccessEvent {
            id,
            event: NewAccessEvent {
                at: instant("access_events", id, self.at)?,
                door: self.door,
                method: AccessMethod::parse(&self.method).map_err(corrupt)?,
                outcome: Outcome::parse(&self.outcome).map_err(corrupt)?,
                reason: self.reason,
                member: self.member_id.map(MemberId),
                api_key: self.api_key_id,
                detail: self.detail,
            },
        })
    }
}

/// A member's granted entries inside `windows` (sorted, disjoint), oldest
/// first: one range read of the `(member_id, outcome, at)` index per window.
/// History imported from the old server (method `legacy`) is not among
/// them: it never spends an entry day, so an import cannot change what a
/// member's packs hold today.
pub(crate) fn member_entries_within(
    conn: &mut AnyConnection,
    member: MemberId,
    windows: &[(DateTime<Utc>, DateTime<Utc>)],
) -> Result<Vec<DateTime<Utc>>, StorageError> {
    let mut out = Vec::new();
    for &(start, end) in windows {
        let at: Vec<i64> = access_events::table
            .select(access_events::at)
            .filter(access_events::member_id.eq(member.0))
            .filter(access_events::outcome.eq(Outcome::Granted.as_str()))
            .filter(access_events::at.ge(secs(start)))
            .filter(access_events::at.lt(secs(end)))
            .filter(access_events::method.ne(AccessMethod::Legacy.as_str()))
            .order(access_events::at.asc())
            .load(conn)?;
        for s in at {
            out.push(instant("access_events", member.0, s)?);
        }
    }
    Ok(out)
}

/// A member's latest granted entry (`MAX(at)` on the `(member_id, outcome,
/// at)` index: one index probe, whatever the member's history).
pub(crate) fn last_entry(
    conn: &mut AnyConnection,
    member: MemberId,
) -> Result<Option<DateTime<Utc>>, StorageError> {
    let at: Option<i64> = access_events::table
        .select(diesel::dsl::max(access_events::at))
        .filter(access_events::member_id.eq(member.0))
        .filter(access_events::outcome.eq(Outcome::Granted.as_str()))
        .get_result(conn)?;
    at.map(|s| instant("access_events", member.0, s))
        .transpose()
}

impl<'a> NewEventRow<'a> {
    fn of(event: &'a NewAccessEvent) -> NewEventRow<'a> {
        NewEventRow {
            at: secs(event.at),
            door: &event.door,
            method: event.method.as_str(),
            outcome: event.outcome.as_str(),
            reason: &event.reason,
            member_id: event.member.map(|m| m.0),
            api_key_id: event.api_key,
            detail: &event.detail,
        }
    }
}

/// Inserts an event in the transaction of `conn`; its id.
pub(crate) fn insert_event_in(
    conn: &mut AnyConnection,
    event: &NewAccessEvent,
) -> Result<i64, StorageError> {
    Ok(diesel::insert_into(access_events::table)
        .values(&NewEventRow::of(event))
        .returning(access_events::id)
        .get_result(conn)?)
}

/// Inserts many events in the transaction of `conn` (an import's history):
/// on PostgreSQL 500 rows a statement, since a round trip a row made a
/// million rows take minutes; on SQLite, in process, a row a statement.
pub(crate) fn insert_events_in(
    conn: &mut AnyConnection,
    events: &[NewAccessEvent],
) -> Result<(), StorageError> {
    match conn {
        AnyConnection::Postgresql(pg) => {
            for chunk in events.chunks(500) {
                let rows: Vec<NewEventRow<'_>> = chunk.iter().map(NewEventRow::of).collect();
                diesel::insert_into(access_events::table)
                    .values(&rows)
                    .execute(pg)?;
            }
        }
        AnyConnection::Sqlite(c) => {
            for event in events {
                diesel::insert_into(access_events::table)
                    .values(&NewEventRow::of(event))
                    .execute(c)?;
            }
        }
    }
    Ok(())
}

impl Store {
    /// Appends an event to the access log (in its own transaction, committed
    /// before this returns: call it before the door moves).
    pub fn record_access(&self, event: &NewAccessEvent) -> Result<AccessEvent, StorageError> {
        self.write(|conn| {
            let id = insert_event_in(conn, event)?;
            if event.outcome == zhima_domain::access::Outcome::Granted {
                let body = crate::webhooks::event_body(
                    "door.entry",
                    event.at,
                    serde_json::json!({
                        "door": event.door,
                        "method": event.method.as_str(),
                        "member": event.member.map(|m| m.0),
                    }),
                );
                crate::webhooks::queue_event_in(
                    conn,
                    "door.entry",
                    &id.to_string(),
                    &body,
                    event.at,
                )?;
            }
            Ok(AccessEvent {
                id,
                event: event.clone(),
            })
        })
    }

    /// Events, newest first (by recording order).
    pub fn access_events(&self, query: EventQuery) -> Result<Vec<AccessEvent>, StorageError> {
        let mut conn = self.conn()?;
        let mut select = access_events::table
            .select(EventRow::as_select())
            .order(access_events::id.desc())
            .limit(i64::from(query.limit.clamp(1, PAGE_MAX)))
            .into_boxed();
        if let Some(since) = query.since {
            select = select.filter(access_events::at.ge(secs(since)));
        }
        if let Some(before) = query.before {
            select = select.filter(access_events::id.lt(before));
        }
        if let Some(outcome) = query.outcome {
            select = select.filter(access_events::outcome.eq(outcome.as_str()));
        }
        if let Some(member) = query.member {
            select = select.filter(access_events::member_id.eq(member.0));
        }
        if let Some(until) = query.until {
            select = select.filter(access_events::at.lt(secs(until)));
        }
        if let Some(method) = query.method {
            select = select.filter(access_events::method.eq(method.as_str()));
        }
        if let Some(door) = query.door {
            select = select.filter(access_events::door.eq(door));
        }
        let rows: Vec<EventRow> = select.load(&mut *conn)?;
        rows.into_iter().map(EventRow::into_domain).collect()
    }

    /// Events after the one numbered `after`, oldest first, at or after
    /// `since` if given: a page of an export.
    pub fn access_events_after(
        &self,
        after: i64,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<AccessEvent>, StorageError> {
        let mut conn = self.conn()?;
        let mut select = access_events::table
            .select(EventRow::as_select())
            .filter(access_events::id.gt(after))
            .order(access_events::id.asc())
            .limit(i64::from(limit.clamp(1, 10_000)))
            .into_boxed();
        if let Some(since) = since {
            select = select.filter(access_events::at.ge(secs(since)));
        }
        let rows: Vec<EventRow> = select.load(&mut *conn)?;
        rows.into_iter().map(EventRow::into_domain).collect()
    }

    /// How many events the log holds.
    pub fn access_event_count(&self) -> Result<i64, StorageError> {
        let mut conn = self.conn()?;
        Ok(access_events::table.count().get_result(&mut *conn)?)
    }
}
