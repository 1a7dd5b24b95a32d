//! Web sessions (staff console, member pages): a row per session, found by
//! the SHA-256 of its token; the token itself is never stored.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use zhima_domain::ids::MemberId;
use zhima_domain::member::Member;

use crate::rows::{instant, secs, MemberRow};
use crate::schema::{members, sessions};
use crate::{StorageError, Store};

/// A live session and its member.
#[derive(Debug, Clone)]
pub struct StoredSession {
    /// Database ID.
    pub id: i64,
    /// The member it belongs to (never a deactivated one).
    pub member: Member,
    /// When it began.
    pub created_at: DateTime<Utc>,
    /// When it was last used (updated at most once a minute).
    pub last_seen_at: DateTime<Utc>,
    /// When it ends whatever happens.
    pub expires_at: DateTime<Utc>,
}

#[derive(Insertable)]
#[diesel(table_name = sessions)]
struct NewSessionRow<'a> {
    token_hash: &'a str,
    member_id: i64,
    created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = sessions)]
struct SessionRow {
    id: i64,
    created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
}

/// Ends every session of `member` (inside a write transaction).
pub(crate) fn end_sessions_in(
    conn: &mut crate::connection::AnyConnection,
    member: i64,
) -> Result<usize, StorageError> {
    Ok(diesel::delete(sessions::table.filter(sessions::member_id.eq(member))).execute(conn)?)
}

impl Store {
    /// Records a new session of `member` under the SHA-256 of its token.
    pub fn create_session(
        &self,
        token_hash: &str,
        member: MemberId,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.write(|conn| {
            // sessions past their end go when a new one begins
            diesel::delete(sessions::table.filter(sessions::expires_at.le(secs(now))))
                .execute(conn)?;
            diesel::insert_into(sessions::table)
                .values(NewSessionRow {
                    token_hash,
                    member_id: member.0,
                    created_at: secs(now),
                    last_seen_at: secs(now),
                    expires_at: secs(expires_at),
                })
                .execute(conn)?;
            Ok(())
        })
    }

    /// The session whose token hashes to `token_hash`, with its member;
    /// `None` if there is none or the member is deactivated. Expiry is the
    /// caller's to judge (it knows the idle limit).
    pub fn session(&self, token_hash: &str) -> Result<Option<StoredSession>, StorageError> {
        let mut conn = self.conn()?;
        let row: Option<(SessionRow, MemberRow)> = sessions::table
            .inner_join(members::table)
            .select((SessionRow::as_select(), MemberRow::as_select()))
            .filter(sessions::token_hash.eq(token_hash))
            .filter(members::deactivated_at.is_null())
            .get_result(&mut *conn)
            .optional()?;
        let Some((session, member)) = row else {
            return Ok(None);
        };
        let at = |s: i64| instant("sessions", session.id, s);
        Ok(Some(StoredSession {
            id: session.id,
            member: member.into_domain()?,
            created_at: at(session.created_at)?,
            last_seen_at: at(session.last_seen_at)?,
            expires_at: at(session.expires_at)?,
        }))
    }

    /// Marks a session used at `now`.
    pub fn touch_session(&self, id: i64, now: DateTime<Utc>) -> Result<(), StorageError> {
        self.write(|conn| {
            diesel::update(sessions::table.filter(sessions::id.eq(id)))
                .set(sessions::last_seen_at.eq(secs(now)))
                .execute(conn)?;
            Ok(())
        })
    }

    /// Ends the session whose token hashes to `token_hash` (logout); `false`
    /// if there was none.
    pub fn end_session(&self, token_hash: &str) -> Result<bool, StorageError> {
        self.write(|conn| {
            let n = diesel::delete(sessions::table.filter(sessions::token_hash.eq(token_hash)))
                .execute(conn)?;
            Ok(n > 0)
        })
    }
}
