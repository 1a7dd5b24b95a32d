//! The token wallet (an append-only ledger), VIP periods and their purchase.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;
use zhima_domain::ids::{MemberId, OpenId};
use zhima_domain::partner::{
    next_vip_period, Balance, Debit, Insufficient, TokenKind, Tokens, VipLevel, VipPeriod,
};
use zhima_domain::time::CalendarSpan;

use crate::connection::AnyConnection;
use crate::rows::{instant, secs};
use crate::schema::{idempotency_keys, members, payments, token_ledger, vip_periods};
use crate::{StorageError, Store};

/// A VIP purchase to make.
#[derive(Debug, Clone, Copy)]
pub struct VipPurchase<'a> {
    /// The member paying.
    pub member_id: MemberId,
    /// The partner acting for them.
    pub client_id: &'a str,
    /// The level bought.
    pub level: VipLevel,
    /// Its price.
    pub price: Tokens,
    /// How long one period lasts.
    pub span: CalendarSpan,
    /// The space's time zone (periods step its wall clock).
    pub tz: Tz,
    /// The partner's `Idempotency-Key`, if it sent one.
    pub idempotency_key: Option<&'a str>,
}

/// A completed purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipBought {
    /// The period bought.
    pub period: VipPeriod,
    /// What it took from each kind of token.
    pub debit: Debit,
    /// Whether this is the answer to an earlier request with the same key.
    pub replayed: bool,
}

/// The outcome of a purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VipOutcome {
    /// Bought (now, or by the earlier request with the same key).
    Bought(VipBought),
    /// The balance does not cover the price; nothing changed.
    Insufficient(Insufficient),
    /// The key was used before for another member or level; nothing changed.
    KeyReused,
}

#[derive(Queryable)]
struct VipRow {
    id: i64,
    level: String,
    starts_at: i64,
    ends_at: i64,
    free_spent: i64,
    paid_spent: i64,
}

impl VipRow {
    fn period(&self) -> Result<VipPeriod, StorageError> {
        let corrupt = |reason: String| StorageError::Corrupt {
            table: "vip_periods",
            id: self.id,
            reason,
        };
        Ok(VipPeriod {
            level: VipLevel::parse(&self.level).map_err(|e| corrupt(e.to_string()))?,
            start: instant("vip_periods", self.id, self.starts_at)?,
            end: instant("vip_periods", self.id, self.ends_at)?,
        })
    }

    fn debit(&self) -> Result<Debit, StorageError> {
        let corrupt = |e: zhima_domain::Invalid| StorageError::Corrupt {
            table: "vip_periods",
            id: self.id,
            reason: e.to_string(),
        };
        Ok(Debit {
            free: Tokens::from_hundredths(self.free_spent).map_err(corrupt)?,
            paid: Tokens::from_hundredths(self.paid_spent).map_err(corrupt)?,
        })
    }
}

type VipColumns = (
    vip_periods::id,
    vip_periods::level,
    vip_periods::starts_at,
    vip_periods::ends_at,
    vip_periods::free_spent,
    vip_periods::paid_spent,
);
const VIP_COLUMNS: VipColumns = (
    vip_periods::id,
    vip_periods::level,
    vip_periods::starts_at,
    vip_periods::ends_at,
    vip_periods::free_spent,
    vip_periods::paid_spent,
);

/// A member's VIP periods, oldest first.
pub(crate) fn member_vip(
    conn: &mut AnyConnection,
    member: MemberId,
) -> Result<Vec<VipPeriod>, StorageError> {
    let rows: Vec<VipRow> = vip_periods::table
        .select(VIP_COLUMNS)
        .filter(vip_periods::member_id.eq(member.0))
        .order(vip_periods::starts_at.asc())
        .load(conn)?;
    rows.iter().map(VipRow::period).collect()
}

pub(crate) fn balance_in(
    conn: &mut AnyConnection,
    member: MemberId,
) -> Result<Balance, StorageError> {
    let sums: Vec<(String, Option<i64>)> = token_ledger::table
        .filter(token_ledger::member_id.eq(member.0))
        .group_by(token_ledger::kind)
        // SUM of a BIGINT is NUMERIC on PostgreSQL: cast it back
        .select((
            token_ledger::kind,
            diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>(
                "CAST(SUM(amount) AS BIGINT)",
            ),
        ))
        .load(conn)?;
    let mut balance = Balance::default();
    for (kind, sum) in sums {
        let corrupt = |reason: String| StorageError::Corrupt {
            table: "token_ledger",
            id: member.0,
            reason,
        };
        let amount = Tokens::from_hundredths(sum.unwrap_or(0))
            .map_err(|e| corrupt(format!("{kind} balance {e}")))?;
        match TokenKind::parse(&kind).map_err(|e| corrupt(e.to_string()))? {
            TokenKind::Paid => balance.paid = amount,
            TokenKind::Free => balance.free = amount,
        }
    }
    Ok(balance)
}

pub(crate) fn credit_in(
    conn: &mut AnyConnection,
    member: MemberId,
    kind: TokenKind,
    amount: Tokens,
    reason: &str,
    reference: &str,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    if amount == Tokens::ZERO {
        return Ok(());
    }
    // a balance never passes the cap: the credit is refused, never clamped,
    // and the caller's transaction (a payment with it) rolls back
    let before = balance_in(conn, member)?;
    let current = match kind {
        TokenKind::Paid => before.paid,
        TokenKind::Free => before.free,
    };
    if current.checked_add(amount).is_none() {
        return Err(StorageError::TokenCap);
    }
    diesel::insert_into(token_ledger::table)
        .values((
            token_ledger::member_id.eq(member.0),
            token_ledger::kind.eq(kind.as_str()),
            token_ledger::amount.eq(amount.hundredths()),
            token_ledger::reason.eq(reason),
            token_ledger::reference.eq(reference),
            token_ledger::at.eq(secs(now)),
        ))
        .execute(conn)?;
    Ok(())
}

/// On PostgreSQL, locks the member's row until the transaction ends, so
/// purchases of one member run one after another (on SQLite every write
/// transaction already does).
fn lock_member(conn: &mut AnyConnection, member: MemberId) -> Result<(), StorageError> {
    if let AnyConnection::Postgresql(c) = conn {
        members::table
            .select(members::id)
            .filter(members::id.eq(member.0))
            .for_update()
            .get_result::<i64>(c)?;
    }
    Ok(())
}

fn earlier_purchase(
    conn: &mut AnyConnection,
    purchase: &VipPurchase<'_>,
    key: &str,
) -> Result<Option<VipOutcome>, StorageError> {
    let earlier: Option<(i64, String, i64)> = idempotency_keys::table
        .select((
            idempotency_keys::member_id,
            idempotency_keys::level,
            idempotency_keys::vip_period_id,
        ))
        .filter(idempotency_keys::client_id.eq(purchase.client_id))
        .filter(idempotency_keys::idem_key.eq(key))
        .get_result(conn)
        .optional()?;
    let Some((member_id, level, period_id)) = earlier else {
        return Ok(None);
    };
    if member_id != purchase.member_id.0 || level != purchase.level.as_str() {
        return Ok(Some(VipOutcome::KeyReused));
    }
    let row: VipRow = vip_periods::table
        .select(VIP_COLUMNS)
        .filter(vip_periods::id.eq(period_id))
        .get_result(conn)?;
    Ok(Some(VipOutcome::Bought(VipBought {
        period: row.period()?,
        debit: row.debit()?,
        replayed: true,
    })))
}

impl Store {
    /// A member's balances.
    /// Token ledger entries after row `after`, oldest first, at or after
    /// `since` if given, each with its member's openid: a page of an export.
    pub fn ledger_after(
        &self,
        after: i64,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<LedgerEntry>, StorageError> {
        let mut conn = self.conn()?;
        let mut select = token_ledger::table
            .inner_join(members::table.on(members::id.eq(token_ledger::member_id)))
            .select((
                token_ledger::id,
                members::openid,
                token_ledger::kind,
                token_ledger::amount,
                token_ledger::reason,
                token_ledger::reference,
                token_ledger::at,
            ))
            .filter(token_ledger::id.gt(after))
            .order(token_ledger::id.asc())
            .limit(i64::from(limit.clamp(1, 10_000)))
            .into_boxed();
        if let Some(since) = since {
            select = select.filter(token_ledger::at.ge(secs(since)));
        }
        let rows: Vec<(i64, String, String, i64, String, String, i64)> = select.load(&mut *conn)?;
        rows.into_iter()
            .map(|(id, openid, kind, amount, reason, reference, at)| {
                Ok(LedgerEntry {
                    id,
                    openid,
                    kind,
                    hundredths: amount,
                    reason,
                    reference,
                    at: instant("token_ledger", id, at)?,
                })
            })
            .collect()
    }

    /// A member's paid and free token balances.
    pub fn balance(&self, member: MemberId) -> Result<Balance, StorageError> {
        balance_in(&mut *self.conn()?, member)
    }

    /// A member's VIP periods, oldest first.
    pub fn vip_periods(&self, member: MemberId) -> Result<Vec<VipPeriod>, StorageError> {
        member_vip(&mut *self.conn()?, member)
    }

    /// Credits tokens (a staff gift, a correction); returns the new balance.
    pub fn grant_tokens(
        &self,
        openid: &OpenId,
        kind: TokenKind,
        amount: Tokens,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Balance, StorageError> {
        self.write(|conn| {
            let id = crate::members::member_id_in(conn, openid)?;
            lock_member(conn, MemberId(id))?;
            credit_in(conn, MemberId(id), kind, amount, reason, "staff", now)?;
            balance_in(conn, MemberId(id))
        })
    }

    /// Buys one VIP period in one transaction: the ledger debits (free
    /// tokens first), the period, a payment-history entry (payType
    /// `VIP STANDARD` or `VIP GOLD`, amount 0) and the idempotency key.
    /// Purchases of one member are serialised, so the balance never goes
    /// negative, on either backend and across servers.
    pub fn buy_vip(
        &self,
        purchase: &VipPurchase<'_>,
        now: DateTime<Utc>,
    ) -> Result<VipOutcome, StorageError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = self.write(|conn| self.buy_vip_in(conn, purchase, now));
            match outcome {
                // a concurrent request with the same key won: answer as it did
                Err(StorageError::Query(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                ))) if attempt < 3 => continue,
                Err(e) if e.is_transient() && attempt < 3 => continue,
                other => return other,
            }
        }
    }

    fn buy_vip_in(
        &self,
        conn: &mut AnyConnection,
        purchase: &VipPurchase<'_>,
        now: DateTime<Utc>,
    ) -> Result<VipOutcome, StorageError> {
        let member = purchase.member_id;
        lock_member(conn, member)?;
        if let Some(key) = purchase.idempotency_key {
            if let Some(earlier) = earlier_purchase(conn, purchase, key)? {
                return Ok(earlier);
            }
        }
        let balance = balance_in(conn, member)?;
        let debit = match balance.spend(purchase.price) {
            Ok(debit) => debit,
            Err(insufficient) => return Ok(VipOutcome::Insufficient(insufficient)),
        };
        let periods = member_vip(conn, member)?;
        let period = next_vip_period(&periods, purchase.level, purchase.span, purchase.tz, now);
        let pay_index = format!("vip-{}", crate::credentials::random_hex::<12>()?);
        let payment_id: i64 = diesel::insert_into(payments::table)
            .values((
                payments::member_id.eq(member.0),
                payments::pay_index.eq(&pay_index),
                payments::amount_fen.eq(0),
                payments::pay_type.eq(purchase.level.pay_type()),
                payments::paid_at.eq(secs(now)),
                payments::recorded_at.eq(secs(now)),
            ))
            .returning(payments::id)
            .get_result(conn)?;
        if self.receipts {
            crate::outbox::queue_receipt_in(conn, member.0, payment_id, now)?;
        }
        let body = crate::webhooks::event_body(
            "vip.purchased",
            now,
            serde_json::json!({
                "member": {"id": member.0},
                "vip": {
                    "level": purchase.level.as_str(),
                    "start": period.start.to_rfc3339(),
                    "end": period.end.to_rfc3339(),
                    "partner": purchase.client_id,
                }
            }),
        );
        crate::webhooks::queue_event_in(
            conn,
            "vip.purchased",
            &payment_id.to_string(),
            &body,
            now,
        )?;
        let period_id: i64 = diesel::insert_into(vip_periods::table)
            .values((
                vip_periods::member_id.eq(member.0),
                vip_periods::level.eq(purchase.level.as_str()),
                vip_periods::starts_at.eq(secs(period.start)),
                vip_periods::ends_at.eq(secs(period.end)),
                vip_periods::free_spent.eq(debit.free.hundredths()),
                vip_periods::paid_spent.eq(debit.paid.hundredths()),
                vip_periods::payment_id.eq(payment_id),
                vip_periods::client_id.eq(purchase.client_id),
                vip_periods::bought_at.eq(secs(now)),
            ))
            .returning(vip_periods::id)
            .get_result(conn)?;
        let reference = format!("vip_period:{period_id}");
        for (kind, amount) in [(TokenKind::Free, debit.free), (TokenKind::Paid, debit.paid)] {
            if amount != Tokens::ZERO {
                diesel::insert_into(token_ledger::table)
                    .values((
                        token_ledger::member_id.eq(member.0),
                        token_ledger::kind.eq(kind.as_str()),
                        token_ledger::amount.eq(-amount.hundredths()),
                        token_ledger::reason.eq(purchase.level.pay_type()),
                        token_ledger::reference.eq(&reference),
                        token_ledger::at.eq(secs(now)),
                    ))
                    .execute(conn)?;
            }
        }
        if let Some(key) = purchase.idempotency_key {
            diesel::insert_into(idempotency_keys::table)
                .values((
                    idempotency_keys::client_id.eq(purchase.client_id),
                    idempotency_keys::idem_key.eq(key),
                    idempotency_keys::member_id.eq(member.0),
                    idempotency_keys::level.eq(purchase.level.as_str()),
                    idempotency_keys::vip_period_id.eq(period_id),
                    idempotency_keys::created_at.eq(secs(now)),
                ))
                .execute(conn)?;
        }
        // belt and braces: the ledger itself must agree
        let after = balance_in(conn, member)?;
        if after.free.hundredths() < 0 || after.paid.hundredths() < 0 {
            return Err(StorageError::Corrupt {
                table: "token_ledger",
                id: member.0,
                reason: "a purchase would leave a negative balance".into(),
            });
        }
        Ok(VipOutcome::Bought(VipBought {
            period,
            debit,
            replayed: false,
        }))
    }
}

/// One entry of the token ledger (an export row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Its row.
    pub id: i64,
    /// The member's openid.
    pub openid: String,
    /// `paid` or `free`.
    pub kind: String,
    /// Hundredths of a token credited (positive) or spent (negative).
    pub hundredths: i64,
    /// Why.
    pub reason: String,
    /// What it refers to (a payment, a VIP period).
    pub reference: String,
    /// When.
    pub at: DateTime<Utc>,
}
