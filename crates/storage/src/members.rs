//! Members and their payments.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use zhima_domain::ids::{MemberId, OpenId, Rfid};
use zhima_domain::member::{Member, MemberChange, NewMember, NewPayment, Payment};
use zhima_domain::partner::{tokens_credited, Balance, TokenKind, VipPeriod};

use crate::connection::{on_backend, AnyConnection};
use crate::history::{History, HistoryCache};
use crate::rows::{secs, MemberColumns, MemberRow, NewMemberRow, NewPaymentRow, PaymentRow};
use crate::schema::{members, payments};
use crate::{credentials, map_unique, EntryWindows, StorageError, Store, UniqueField};

/// How a member is looked up.
#[derive(Debug, Clone, Copy)]
pub enum MemberKey<'a> {
    /// By database ID.
    Id(MemberId),
    /// By openid.
    OpenId(&'a OpenId),
    /// By RFID card.
    Rfid(&'a Rfid),
}

/// A member with their whole payment history, oldest payment first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    /// The member.
    pub member: Member,
    /// Every payment, by `paidTime` then recording order.
    pub payments: Vec<Payment>,
    /// The instants of the granted entries at the door that can change the
    /// member's validity (inside the store's entry windows; all of them if
    /// the store has none), oldest first.
    pub entries: Vec<DateTime<Utc>>,
    /// The latest granted entry, wherever it falls.
    pub last_entry: Option<DateTime<Utc>>,
    /// VIP periods bought through partners, oldest first.
    pub vip: Vec<VipPeriod>,
    /// Their paid and free tokens.
    pub balance: Balance,
}

impl MemberRecord {
    /// The latest payment by `paidTime` (then recording order).
    pub fn latest_payment(&self) -> Option<&Payment> {
        self.payments.iter().max_by_key(|p| (p.paid_at, p.id))
    }
}

/// What logging a member in needs.
#[derive(Debug, Clone)]
pub struct MemberLogin {
    /// Database ID.
    pub id: MemberId,
    /// Their openid.
    pub openid: String,
    /// argon2id hash of their password.
    pub password_hash: String,
    /// Still on the default password.
    pub must_change_password: bool,
    /// Deactivated by staff.
    pub deactivated: bool,
}

/// The outcome of recording a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentReceipt {
    /// The stored payment (the original one for a replay).
    pub payment: Payment,
    /// Whether this was a replay of a payment already recorded.
    pub duplicate: bool,
    /// The member afterwards.
    pub record: MemberRecord,
}

/// How often a write that lost a race on PostgreSQL is tried again.
const RACE_RETRIES: usize = 3;

// Lookups here are on unique columns and use `get_result`, not `first`:
// `first` binds `LIMIT ?`, and SQLite (built with STAT4) re-prepares a
// statement whenever a bound LIMIT is bound again, which doubled the cost of
// a read.
fn find_row(
    conn: &mut AnyConnection,
    key: MemberKey<'_>,
) -> Result<Option<MemberRow>, StorageError> {
    let select = members::table.select(MemberRow::as_select());
    let row = match key {
        MemberKey::Id(id) => select
            .filter(members::id.eq(id.0))
            .get_result(conn)
            .optional()?,
        MemberKey::OpenId(openid) => select
            .filter(members::openid.eq(openid.as_str()))
            .get_result(conn)
            .optional()?,
        MemberKey::Rfid(rfid) => select
            .filter(members::rfid.eq(rfid.as_str()))
            .get_result(conn)
            .optional()?,
    };
    Ok(row)
}

/// A member: their row and history version in one statement, then their
/// history from `cache` when it holds the history at that version, else
/// read: payments, entries at the door inside `windows` (all of them
/// without), the latest entry, VIP periods, token balances. See [`crate::history`] for why
/// this never answers older than an acknowledged write; `cache` must be
/// `None` inside a write transaction.
fn load_record(
    conn: &mut AnyConnection,
    key: MemberKey<'_>,
    windows: Option<&EntryWindows>,
    cache: Option<&HistoryCache>,
) -> Result<Option<MemberRecord>, StorageError> {
    let row: Option<(MemberRow, i64)> = match key {
        MemberKey::Id(id) => on_backend!(conn, |c| members::table
            .select((MemberRow::as_select(), members::history_version))
            .filter(members::id.eq(id.0))
            .get_result(c)
            .optional())?,
        MemberKey::OpenId(openid) => on_backend!(conn, |c| members::table
            .select((MemberRow::as_select(), members::history_version))
            .filter(members::openid.eq(openid.as_str()))
            .get_result(c)
            .optional())?,
        MemberKey::Rfid(rfid) => on_backend!(conn, |c| members::table
            .select((MemberRow::as_select(), members::history_version))
            .filter(members::rfid.eq(rfid.as_str()))
            .get_result(c)
            .optional())?,
    };
    let Some((member_row, version)) = row else {
        return Ok(None);
    };
    complete_record(conn, member_row, version, windows, cache).map(Some)
}

/// A member from their row and history version: the history from `cache`
/// when it holds it at that version, else read (and kept).
pub(crate) fn complete_record(
    conn: &mut AnyConnection,
    member_row: MemberRow,
    version: i64,
    windows: Option<&EntryWindows>,
    cache: Option<&HistoryCache>,
) -> Result<MemberRecord, StorageError> {
    let (id, created_at) = (member_row.id, member_row.created_at);
    let member = member_row.into_domain()?;
    let history = match cache.and_then(|c| c.get(id, created_at, version)) {
        Some(history) => history,
        None => {
            let history = Arc::new(read_history(conn, member.id, created_at, version, windows)?);
            if let Some(cache) = cache {
                cache.put(id, Arc::clone(&history));
            }
            history
        }
    };
    Ok(MemberRecord {
        member,
        payments: history.payments.clone(),
        entries: history.entries.clone(),
        last_entry: history.last_entry,
        vip: history.vip.clone(),
        balance: history.balance,
    })
}

/// A member's history as it is now (at `version` or later).
fn read_history(
    conn: &mut AnyConnection,
    member: MemberId,
    created_at: i64,
    version: i64,
    windows: Option<&EntryWindows>,
) -> Result<History, StorageError> {
    let payments = payments::table
        .select(PaymentRow::as_select())
        .filter(payments::member_id.eq(member.0))
        .order((payments::paid_at.asc(), payments::id.asc()))
        .load::<PaymentRow>(conn)?
        .into_iter()
        .map(PaymentRow::into_domain)
        .collect::<Result<Vec<_>, _>>()?;
    let spans = match windows {
        Some(windows) => windows(&payments),
        None => vec![(DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC)],
    };
    let entries = crate::access::member_entries_within(conn, member, &spans)?;
    let last_entry = crate::access::last_entry(conn, member)?;
    let vip = crate::wallet::member_vip(conn, member)?;
    let balance = crate::wallet::balance_in(conn, member)?;
    Ok(History {
        created_at,
        version,
        payments,
        entries,
        last_entry,
        vip,
        balance,
    })
}

/// Refuses an openid, nickname or card another member (not `except`) already holds.
pub(crate) fn check_unique(
    conn: &mut AnyConnection,
    columns: &MemberColumns<'_>,
    except: Option<MemberId>,
) -> Result<(), StorageError> {
    let others = members::table
        .select(members::id)
        .filter(members::id.ne(except.map_or(-1, |id| id.0)));
    let taken: Option<i64> = others
        .filter(members::openid.eq(columns.openid))
        .get_result(conn)
        .optional()?;
    if taken.is_some() {
        return Err(StorageError::Duplicate(UniqueField::OpenId));
    }
    let taken: Option<i64> = others
        .filter(members::nickname_key.eq(&columns.nickname_key))
        .get_result(conn)
        .optional()?;
    if taken.is_some() {
        return Err(StorageError::Duplicate(UniqueField::NickName));
    }
    if let Some(rfid) = columns.rfid {
        let taken: Option<i64> = others
            .filter(members::rfid.eq(rfid))
            .get_result(conn)
            .optional()?;
        if taken.is_some() {
            return Err(StorageError::Duplicate(UniqueField::Rfid));
        }
    }
    Ok(())
}

pub(crate) fn find_payment(
    conn: &mut AnyConnection,
    pay_index: &str,
) -> Result<Option<PaymentRow>, StorageError> {
    Ok(payments::table
        .filter(payments::pay_index.eq(pay_index))
        .select(PaymentRow::as_select())
        .get_result(conn)
        .optional()?)
}

pub use zhima_domain::partner::TOKENS_PAY_TYPE;

impl Store {
    /// Credits paid tokens for a `TOKENS` payment, in the payment's transaction.
    fn credit_tokens_for(
        &self,
        conn: &mut AnyConnection,
        member: MemberId,
        payment: &NewPayment,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let Some(amount) =
            tokens_credited(payment, self.tokens_per_cny).map_err(|_| StorageError::TokenCap)?
        else {
            return Ok(());
        };
        crate::wallet::credit_in(
            conn,
            member,
            TokenKind::Paid,
            amount,
            TOKENS_PAY_TYPE,
            payment.pay_index.as_str(),
            now,
        )
    }

    /// A member's login facts, by nickName (case-insensitive key).
    pub fn member_login(&self, nickname_key: &str) -> Result<Option<MemberLogin>, StorageError> {
        let mut conn = self.conn()?;
        let row: Option<(i64, String, String, bool, Option<i64>)> = members::table
            .select((
                members::id,
                members::openid,
                members::password_hash,
                members::must_change_password,
                members::deactivated_at,
            ))
            .filter(members::nickname_key.eq(nickname_key))
            .get_result(&mut conn)
            .optional()?;
        Ok(row.map(
            |(id, openid, password_hash, must_change, deactivated)| MemberLogin {
                id: MemberId(id),
                openid,
                password_hash,
                must_change_password: must_change,
                deactivated: deactivated.is_some(),
            },
        ))
    }

    /// Creates a member with the default password (flagged must-change) and,
    /// if given, their first payment, in one transaction.
    ///
    /// Errors: [`StorageError::Duplicate`] for a taken openid, nickName or rfid;
    /// [`StorageError::PaymentConflict`] if the payIndex is already recorded.
    pub fn create_member(
        &self,
        new: &NewMember,
        payment: Option<&NewPayment>,
        now: DateTime<Utc>,
    ) -> Result<MemberRecord, StorageError> {
        let password_hash = credentials::hash_default_password()?;
        let id = self
            .write(|conn| {
                check_unique(conn, &MemberColumns::of_new(new), None)?;
                if let Some(p) = payment {
                    if find_payment(conn, p.pay_index.as_str())?.is_some() {
                        return Err(StorageError::PaymentConflict(p.pay_index.to_string()));
                    }
                }
                diesel::insert_into(members::table)
                    .values(NewMemberRow::new(new, password_hash, now))
                    .execute(conn)?;
                let id: i64 = members::table
                    .select(members::id)
                    .filter(members::openid.eq(new.openid.as_str()))
                    .get_result(conn)?;
                if let Some(p) = payment {
                    diesel::insert_into(payments::table)
                        .values(NewPaymentRow::new(MemberId(id), p, now))
                        .execute(conn)?;
                    self.credit_tokens_for(conn, MemberId(id), p, now)?;
                    let payment: i64 = payments::table
                        .select(payments::id)
                        .filter(payments::pay_index.eq(p.pay_index.as_str()))
                        .get_result(conn)?;
                    if self.receipts {
                        crate::outbox::queue_receipt_in(conn, id, payment, now)?;
                    }
                    payment_event_in(conn, id, new.openid.as_str(), payment, p, now)?;
                }
                let body = crate::webhooks::event_body(
                    "member.created",
                    now,
                    serde_json::json!({
                        "member": {"id": id, "openid": new.openid.as_str(), "nickName": new.nickname.as_str()}
                    }),
                );
                crate::webhooks::queue_event_in(conn, "member.created", &id.to_string(), &body, now)?;
                Ok(MemberId(id))
            })
            .map_err(map_unique)
            .map_err(|e| match e {
                StorageError::Duplicate(UniqueField::PayIndex) => StorageError::PaymentConflict(
                    payment.map(|p| p.pay_index.to_string()).unwrap_or_default(),
                ),
                e => e,
            })?;
        load_record(
            &mut *self.conn()?,
            MemberKey::Id(id),
            self.entry_windows.as_ref(),
            Some(&self.history),
        )?
        .ok_or(StorageError::MemberNotFound)
    }

    /// A member and their payments.
    pub fn member(&self, key: MemberKey<'_>) -> Result<Option<MemberRecord>, StorageError> {
        let mut conn = self.conn()?;
        load_record(
            &mut conn,
            key,
            self.entry_windows.as_ref(),
            Some(&self.history),
        )
    }

    /// Members a person at the front desk is looking for, with their
    /// histories (as [`Store::member`] reads them), at most `limit`
    /// (capped at 100), by nickname: the member with that database ID (all
    /// digits), that openid, that email, that RFID card, and those whose
    /// nickname starts with `text` ignoring case. Every lookup is one probe
    /// or one range of an index, so the cost does not grow with the number
    /// of members. An empty `text` lists members by nickname.
    pub fn search_members(
        &self,
        text: &str,
        limit: u32,
    ) -> Result<Vec<MemberRecord>, StorageError> {
        Ok(self
            .find_members(&MemberSearch {
                text,
                limit,
                ..MemberSearch::default()
            })?
            .0)
    }

    /// [`Store::search_members`] with filters and a cursor: members with
    /// `search.tag`, deactivated or not, whose case-folded nickname comes
    /// after `search.after` (the exact matches come on the first page
    /// only). Also the cursor of the next page: the last nickname read, when
    /// the page is full.
    pub fn find_members(
        &self,
        search: &MemberSearch<'_>,
    ) -> Result<(Vec<MemberRecord>, Option<String>), StorageError> {
        let text = search.text.trim();
        let limit = i64::from(search.limit.clamp(1, 200));
        let mut conn = self.conn()?;
        let columns = (MemberRow::as_select(), members::history_version);
        let filtered = || {
            let mut select = members::table.select(columns).into_boxed();
            if let Some(tag) = search.tag {
                // names are upper-case words none of which holds another
                select = select.filter(members::tags.like(format!("%{}%", tag.name())));
            }
            match search.deactivated {
                Some(true) => select = select.filter(members::deactivated_at.is_not_null()),
                Some(false) => select = select.filter(members::deactivated_at.is_null()),
                None => {}
            }
            select
        };
        let mut found: Vec<(MemberRow, i64)> = Vec::new();
        if !text.is_empty() && search.after.is_none() {
            let exact = filtered()
                .filter(
                    members::openid
                        .eq(text)
                        .or(members::rfid.eq(text))
                        .or(members::email.eq(text).and(members::email.ne("")))
                        .or(members::id.eq(text.parse::<i64>().unwrap_or(-1))),
                )
                .limit(5)
                .load(&mut *conn)?;
            found.extend(exact);
        }
        // a nickname prefix: the range [key, key + U+10FFFF) of the unique
        // index on the case-folded nickname, after the cursor
        let key = zhima_domain::ids::NickName::parse(text)
            .map(|n| n.key())
            .unwrap_or_else(|_| text.to_lowercase());
        let upper = format!("{key}\u{10FFFF}");
        let lower = match search.after.as_deref() {
            Some(after) if after >= key.as_str() => after.to_owned(),
            _ => key.clone(),
        };
        let mut by_name = filtered()
            .filter(members::nickname_key.lt(&upper))
            .order(members::nickname_key.asc())
            .limit(limit);
        by_name = if search.after.is_some() {
            by_name.filter(members::nickname_key.gt(lower))
        } else {
            by_name.filter(members::nickname_key.ge(lower))
        };
        let by_name: Vec<(MemberRow, i64)> = by_name.load(&mut *conn)?;
        let next = (by_name.len() as i64 == limit)
            .then(|| by_name.last().map(|(r, _)| r.nickname.to_lowercase()))
            .flatten();
        for row in by_name {
            if !found.iter().any(|(f, _)| f.id == row.0.id) {
                found.push(row);
            }
        }
        // each member's history from the cache at its version, as a read
        let records = self.complete_all(&mut conn, found)?;
        Ok((records, next))
    }

    /// Imports `members` (each created at its `created` time, on the default
    /// password) and then `payments` (by the member's openid), all in one
    /// transaction: every row goes in, or (on any error) none does. A
    /// payment whose payIndex is already recorded with the same content is
    /// skipped (a second run of the same import); with other content it is
    /// a [`StorageError::PaymentConflict`]. The counts of members and
    /// payments written.
    pub fn import_batch(
        &self,
        members: &[(NewMember, DateTime<Utc>)],
        payments: &[(OpenId, NewPayment)],
        now: DateTime<Utc>,
    ) -> Result<(u64, u64), StorageError> {
        self.write(|conn| {
            let mut written = (0, 0);
            for (new, created) in members {
                check_unique(conn, &MemberColumns::of_new(new), None)?;
                // the default password's hash with a salt of each member's own
                let password_hash = credentials::hash_default_password()?;
                diesel::insert_into(members::table)
                    .values(NewMemberRow::new(new, password_hash, *created))
                    .execute(conn)?;
                written.0 += 1;
            }
            for (openid, payment) in payments {
                let member = member_id_in(conn, openid)?;
                if let Some(existing) = find_payment(conn, payment.pay_index.as_str())? {
                    if existing.member_id == member
                        && payment.is_replay_of(&existing.into_domain()?)
                    {
                        continue;
                    }
                    return Err(StorageError::PaymentConflict(payment.pay_index.to_string()));
                }
                diesel::insert_into(payments::table)
                    .values(NewPaymentRow::new(MemberId(member), payment, now))
                    .execute(conn)?;
                self.credit_tokens_for(conn, MemberId(member), payment, now)?;
                written.1 += 1;
            }
            Ok(written)
        })
        .map_err(map_unique)
    }

    /// Members after number `after`, by number, with their histories: a
    /// page of an export.
    pub fn members_after(&self, after: i64, limit: u32) -> Result<Vec<MemberRecord>, StorageError> {
        let mut conn = self.conn()?;
        let rows: Vec<(MemberRow, i64)> = members::table
            .select((MemberRow::as_select(), members::history_version))
            .filter(members::id.gt(after))
            .order(members::id.asc())
            .limit(i64::from(limit.clamp(1, 10_000)))
            .load(&mut *conn)?;
        self.complete_all(&mut conn, rows)
    }

    /// Payments after row `after`, in recording order, paid at or after
    /// `since` if given, each with its member's openid: a page of an export.
    pub fn payments_after(
        &self,
        after: i64,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<(String, Payment)>, StorageError> {
        let mut conn = self.conn()?;
        let mut select = payments::table
            .inner_join(members::table)
            .select((members::openid, PaymentRow::as_select()))
            .filter(payments::id.gt(after))
            .order(payments::id.asc())
            .limit(i64::from(limit.clamp(1, 10_000)))
            .into_boxed();
        if let Some(since) = since {
            select = select.filter(payments::paid_at.ge(secs(since)));
        }
        let rows: Vec<(String, PaymentRow)> = select.load(&mut *conn)?;
        rows.into_iter()
            .map(|(openid, row)| Ok((openid, row.into_domain()?)))
            .collect()
    }

    /// The latest payments recorded, newest first, each with its member's
    /// number and nickname.
    pub fn recent_payments(
        &self,
        limit: u32,
    ) -> Result<Vec<(MemberId, String, Payment)>, StorageError> {
        let mut conn = self.conn()?;
        let rows: Vec<(PaymentRow, String)> = payments::table
            .inner_join(members::table)
            .select((PaymentRow::as_select(), members::nickname))
            .order(payments::id.desc())
            .limit(i64::from(limit.clamp(1, 100)))
            .load(&mut *conn)?;
        rows.into_iter()
            .map(|(row, nickname)| Ok((MemberId(row.member_id), nickname, row.into_domain()?)))
            .collect()
    }

    /// The members (at most `limit`, latest payers first) with a payment
    /// paid at or after `since`, with their histories: the candidates of
    /// "membership ends soon" (one range of the index on payment times).
    pub fn members_paid_since(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<MemberRecord>, StorageError> {
        let mut conn = self.conn()?;
        let ids: Vec<i64> = payments::table
            .select(payments::member_id)
            .filter(payments::paid_at.ge(secs(since)))
            .order(payments::paid_at.desc())
            .limit(i64::from(limit) * 4)
            .load(&mut *conn)?;
        let mut unique: Vec<i64> = Vec::new();
        for id in ids {
            if !unique.contains(&id) && unique.len() < limit as usize {
                unique.push(id);
            }
        }
        let rows: Vec<(MemberRow, i64)> = members::table
            .select((MemberRow::as_select(), members::history_version))
            .filter(members::id.eq_any(&unique))
            .load(&mut *conn)?;
        self.complete_all(&mut conn, rows)
    }

    /// Members' rows (with their history versions) completed with their
    /// histories, from the cache at their versions or read again.
    fn complete_all(
        &self,
        conn: &mut AnyConnection,
        rows: Vec<(MemberRow, i64)>,
    ) -> Result<Vec<MemberRecord>, StorageError> {
        rows.into_iter()
            .map(|(row, version)| {
                complete_record(
                    conn,
                    row,
                    version,
                    self.entry_windows.as_ref(),
                    Some(&self.history),
                )
            })
            .collect()
    }

    /// How many members there are.
    pub fn member_count(&self) -> Result<i64, StorageError> {
        let mut conn = self.conn()?;
        Ok(members::table.count().get_result(&mut conn)?)
    }

    /// Applies `changes` to the member with `openid`, all or nothing.
    ///
    /// Errors: [`StorageError::MemberNotFound`]; [`StorageError::Duplicate`] if
    /// the new openid, nickName or rfid belongs to another member.
    pub fn update_member(
        &self,
        openid: &OpenId,
        changes: &[MemberChange],
        now: DateTime<Utc>,
    ) -> Result<MemberRecord, StorageError> {
        let id = self
            .write(|conn| {
                let row = find_row(conn, MemberKey::OpenId(openid))?
                    .ok_or(StorageError::MemberNotFound)?;
                let mut member = row.into_domain()?;
                for change in changes {
                    change.apply(&mut member);
                }
                let columns = MemberColumns::of(&member);
                check_unique(conn, &columns, Some(member.id))?;
                diesel::update(members::table.filter(members::id.eq(member.id.0)))
                    .set((columns, members::updated_at.eq(secs(now))))
                    .execute(conn)?;
                Ok(member.id)
            })
            .map_err(map_unique)?;
        load_record(
            &mut *self.conn()?,
            MemberKey::Id(id),
            self.entry_windows.as_ref(),
            Some(&self.history),
        )?
        .ok_or(StorageError::MemberNotFound)
    }

    /// Records a payment for the member with `openid`. Idempotent on payIndex:
    /// the same payIndex again for the same member, amount and type returns
    /// the original payment with `duplicate: true` and changes nothing; with
    /// other content it is a [`StorageError::PaymentConflict`]. Safe under
    /// concurrent replays on both backends: exactly one row is written.
    pub fn add_payment(
        &self,
        openid: &OpenId,
        payment: &NewPayment,
        now: DateTime<Utc>,
    ) -> Result<PaymentReceipt, StorageError> {
        let mut attempt = 0;
        let (member_id, payment_id, duplicate) = loop {
            attempt += 1;
            let outcome = self
                .write_noting(
                    |conn| {
                        let row = find_row(conn, MemberKey::OpenId(openid))?
                            .ok_or(StorageError::MemberNotFound)?;
                        let member_id = row.id;
                        let openid_text = row.openid.clone();
                        if let Some(existing) = find_payment(conn, payment.pay_index.as_str())? {
                            let same_member = existing.member_id == member_id;
                            let existing_id = existing.id;
                            if same_member && payment.is_replay_of(&existing.into_domain()?) {
                                return Ok((member_id, existing_id, true));
                            }
                            return Err(StorageError::PaymentConflict(
                                payment.pay_index.to_string(),
                            ));
                        }
                        diesel::insert_into(payments::table)
                            .values(NewPaymentRow::new(MemberId(member_id), payment, now))
                            .execute(conn)?;
                        self.credit_tokens_for(conn, MemberId(member_id), payment, now)?;
                        diesel::update(members::table.filter(members::id.eq(member_id)))
                            .set(members::updated_at.eq(secs(now)))
                            .execute(conn)?;
                        let id: i64 = payments::table
                            .select(payments::id)
                            .filter(payments::pay_index.eq(payment.pay_index.as_str()))
                            .get_result(conn)?;
                        if self.receipts {
                            crate::outbox::queue_receipt_in(conn, member_id, id, now)?;
                        }
                        payment_event_in(conn, member_id, &openid_text, id, payment, now)?;
                        Ok((member_id, id, false))
                    },
                    |(_, _, replay)| !replay,
                )
                .map_err(map_unique);
            match outcome {
                // Another server inserted the same payIndex between our check and
                // our insert: look again, it is now a replay or a conflict.
                Err(StorageError::Duplicate(UniqueField::PayIndex)) if attempt < RACE_RETRIES => {
                    continue
                }
                Err(StorageError::Duplicate(UniqueField::PayIndex)) => {
                    return Err(StorageError::PaymentConflict(payment.pay_index.to_string()))
                }
                Err(e) if e.is_transient() && attempt < RACE_RETRIES => continue,
                other => break other?,
            }
        };
        let record = load_record(
            &mut *self.conn()?,
            MemberKey::Id(MemberId(member_id)),
            self.entry_windows.as_ref(),
            Some(&self.history),
        )?
        .ok_or(StorageError::MemberNotFound)?;
        let stored = record
            .payments
            .iter()
            .find(|p| p.id == payment_id)
            .cloned()
            .ok_or(StorageError::Corrupt {
                table: "payments",
                id: payment_id,
                reason: "vanished after insert".into(),
            })?;
        Ok(PaymentReceipt {
            payment: stored,
            duplicate,
            record,
        })
    }

    /// Sets a member's password (hashed with argon2id here) and ends every
    /// web session the member had.
    pub fn set_password(
        &self,
        openid: &OpenId,
        password: &str,
        must_change: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let hash = credentials::hash_password(password)?;
        self.write(|conn| {
            let id = member_id_in(conn, openid)?;
            diesel::update(members::table.filter(members::id.eq(id)))
                .set((
                    members::password_hash.eq(&hash),
                    members::must_change_password.eq(must_change),
                    members::updated_at.eq(secs(now)),
                ))
                .execute(conn)?;
            // a new password ends every web session of the member
            crate::sessions::end_sessions_in(conn, id)?;
            Ok(())
        })
    }

    /// Whether `password` is the member's password.
    pub fn check_password(&self, openid: &OpenId, password: &str) -> Result<bool, StorageError> {
        let mut conn = self.conn()?;
        let hash: Option<String> = members::table
            .select(members::password_hash)
            .filter(members::openid.eq(openid.as_str()))
            .get_result(&mut conn)
            .optional()?;
        let hash = hash.ok_or(StorageError::MemberNotFound)?;
        Ok(credentials::verify_password(password, &hash))
    }

    /// Deactivates (status `INVALID`) or reactivates a member. Members are
    /// never deleted: their history stays. Deactivation also revokes every
    /// token and unused code the member's partners hold, in the same
    /// transaction; token reads never return a deactivated member's tokens.
    pub fn set_deactivated(
        &self,
        openid: &OpenId,
        deactivated: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.write(|conn| {
            let id = member_id_in(conn, openid)?;
            diesel::update(members::table.filter(members::id.eq(id)))
                .set((
                    members::deactivated_at.eq(deactivated.then(|| secs(now))),
                    members::updated_at.eq(secs(now)),
                ))
                .execute(conn)?;
            // a deactivated member's partners lose every grant at once;
            // reactivation does not bring them back (the member consents anew)
            if deactivated {
                crate::oauth::revoke_member_grants_in(conn, id, now)?;
                crate::sessions::end_sessions_in(conn, id)?;
            }
            Ok(())
        })
    }
}

/// Queues `payment.recorded` for the webhooks that want it (inside the
/// payment's transaction).
fn payment_event_in(
    conn: &mut AnyConnection,
    member: i64,
    openid: &str,
    payment_id: i64,
    payment: &NewPayment,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let body = crate::webhooks::event_body(
        "payment.recorded",
        now,
        serde_json::json!({
            "member": {"id": member, "openid": openid},
            "payment": {
                "payIndex": payment.pay_index.as_str(),
                "payType": payment.pay_type,
                "CNYAmount": payment.amount.to_string(),
                "paidTime": payment.paid_at.to_rfc3339(),
            }
        }),
    );
    crate::webhooks::queue_event_in(
        conn,
        "payment.recorded",
        &payment_id.to_string(),
        &body,
        now,
    )?;
    Ok(())
}

/// What [`Store::find_members`] looks for.
#[derive(Debug, Clone, Default)]
pub struct MemberSearch<'a> {
    /// A nickname prefix, an openid, an email, a member number or a card.
    pub text: &'a str,
    /// Only members with this tag.
    pub tag: Option<zhima_domain::tags::Tag>,
    /// Only deactivated members (`true`) or only active ones (`false`).
    pub deactivated: Option<bool>,
    /// The cursor: the last case-folded nickname of the previous page.
    pub after: Option<String>,
    /// At most this many (capped at 200).
    pub limit: u32,
}

/// The id of the member with `openid`, inside a transaction.
pub(crate) fn member_id_in(conn: &mut AnyConnection, openid: &OpenId) -> Result<i64, StorageError> {
    members::table
        .select(members::id)
        .filter(members::openid.eq(openid.as_str()))
        .get_result(conn)
        .optional()?
        .ok_or(StorageError::MemberNotFound)
}
