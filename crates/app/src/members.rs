//! The members' use cases: read one, create one (with a first payment or
//! not), change one, record a payment; each answer carries the member's
//! validity at the request's instant.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::sync::Arc;

use zhima_domain::ids::{MemberId, OpenId, Rfid};
use zhima_domain::member::{MemberChange, NewMember, NewPayment, Payment};
use zhima_domain::membership::{evaluate, History, Validity};
use zhima_domain::plan::Plans;
use zhima_storage::{MemberKey, MemberRecord, StorageError, Store};

use crate::AppError;

/// A member and their validity at one instant.
#[derive(Debug, Clone)]
pub struct MemberView {
    /// Everything stored about the member.
    pub record: MemberRecord,
    /// Their standing at the request's instant.
    pub validity: Validity,
}

/// How a member is named in a request (an owned [`MemberKey`]).
#[derive(Debug, Clone)]
pub enum Lookup {
    /// By database ID.
    Id(MemberId),
    /// By openid.
    OpenId(OpenId),
    /// By RFID card.
    Rfid(Rfid),
}

impl Lookup {
    /// The storage key.
    pub fn key(&self) -> MemberKey<'_> {
        match self {
            Lookup::Id(id) => MemberKey::Id(*id),
            Lookup::OpenId(openid) => MemberKey::OpenId(openid),
            Lookup::Rfid(rfid) => MemberKey::Rfid(rfid),
        }
    }
}

/// A payment recorded (or recognised as already recorded).
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The member afterwards.
    pub view: MemberView,
    /// The stored payment (the original one for a replay).
    pub payment: Payment,
    /// Whether this was a replay of a payment already recorded.
    pub duplicate: bool,
}

/// The members' use cases over storage, the plans and the time zone.
#[derive(Debug, Clone)]
pub struct Members {
    store: Store,
    plans: Plans,
    tz: Tz,
}

impl Members {
    /// The use cases over `store` with `plans` in zone `tz`.
    pub fn new(store: Store, plans: Plans, tz: Tz) -> Members {
        Members { store, plans, tz }
    }

    /// The plan catalogue.
    pub fn plans(&self) -> &Plans {
        &self.plans
    }

    /// The space's time zone.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// A member's validity at `now`.
    pub fn validity(&self, record: &MemberRecord, now: DateTime<Utc>) -> Validity {
        let history = History {
            deactivated: record.member.deactivated_at.is_some(),
            payments: &record.payments,
            entries: &record.entries,
            vip: &record.vip,
        };
        evaluate(history, &self.plans, self.tz, now)
    }

    fn view(&self, record: MemberRecord, now: DateTime<Utc>) -> MemberView {
        let validity = self.validity(&record, now);
        MemberView { record, validity }
    }

    /// One member, if there is one. Blocking.
    pub fn read(
        &self,
        key: MemberKey<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<MemberView>, AppError> {
        Ok(self.store.member(key)?.map(|r| self.view(r, now)))
    }

    /// [`Members::read`] from async code. On SQLite the read runs on the
    /// calling thread when a connection is idle (a read of an embedded
    /// database costs less than handing it to another thread, and WAL
    /// readers never wait for writers); otherwise, and always on
    /// PostgreSQL, on tokio's blocking pool.
    pub async fn fetch(
        self: &Arc<Self>,
        lookup: Lookup,
        now: DateTime<Utc>,
    ) -> Result<Option<MemberView>, AppError> {
        if let Some(store) = self.store.without_waiting() {
            match store.member(lookup.key()) {
                Err(StorageError::WouldWait) => {}
                read => return Ok(read?.map(|r| self.view(r, now))),
            }
        }
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || me.read(lookup.key(), now))
            .await
            .map_err(|_| AppError::Stopping)?
    }

    /// Members the front desk looks for (see `Store::search_members`), at
    /// most `limit`, each with its validity at `now`. Blocking.
    pub fn search(
        &self,
        text: &str,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<MemberView>, AppError> {
        Ok(self
            .store
            .search_members(text, limit)?
            .into_iter()
            .map(|record| self.view(record, now))
            .collect())
    }

    /// How many members there are. Blocking.
    pub fn count(&self) -> Result<i64, AppError> {
        Ok(self.store.member_count()?)
    }

    /// A new member (on the default password), with their first payment if
    /// one is given, in one transaction. Blocking.
    pub fn create(
        &self,
        new: &NewMember,
        payment: Option<&NewPayment>,
        now: DateTime<Utc>,
    ) -> Result<MemberView, AppError> {
        let record = self.store.create_member(new, payment, now)?;
        Ok(self.view(record, now))
    }

    /// Changes a member's fields. Blocking.
    pub fn update(
        &self,
        openid: &OpenId,
        changes: &[MemberChange],
        now: DateTime<Utc>,
    ) -> Result<MemberView, AppError> {
        let record = self.store.update_member(openid, changes, now)?;
        Ok(self.view(record, now))
    }

    /// Records a payment once per payIndex (a replay answers the first
    /// one). Blocking.
    pub fn add_payment(
        &self,
        openid: &OpenId,
        payment: &NewPayment,
        now: DateTime<Utc>,
    ) -> Result<Recorded, AppError> {
        let receipt = self.store.add_payment(openid, payment, now)?;
        Ok(Recorded {
            view: self.view(receipt.record, now),
            payment: receipt.payment,
            duplicate: receipt.duplicate,
        })
    }
}
