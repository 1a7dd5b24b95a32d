//! The members' use cases: read one, create one (with a first payment or
//! not), change one, record a payment; each answer carries the member's
//! validity at the request's instant.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::sync::Arc;

use zhima_domain::ids::{MemberId, NickName, OpenId, PayIndex, Rfid};
use zhima_domain::member::{MemberChange, NewMember, NewPayment, Payment, Profile};
use zhima_domain::membership::{evaluate, History, MemberStatus, Validity};
use zhima_domain::money::Fen;
use zhima_domain::plan::Grant;
use zhima_domain::plan::Plans;
use zhima_domain::tags::{Tag, Tags};
use zhima_storage::{MemberKey, MemberRecord, MemberSearch, StorageError, Store};

use crate::audit::{describe_changes, member_subject, Actor};
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

    /// [`Members::search`] with filters, a page at a time: up to `limit`
    /// members matching `filters`, from the nickname after the cursor
    /// `after`, and the cursor of the next page. A page reads at most
    /// [`SEARCH_SCAN`] members, so a filter few members pass still answers
    /// quickly (with fewer rows and a next page). Blocking.
    pub fn find(
        &self,
        text: &str,
        filters: &SearchFilters,
        after: Option<String>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<(Vec<MemberView>, Option<String>), AppError> {
        let deactivated = match filters.status {
            Some(MemberStatus::Invalid) => Some(true),
            Some(_) => Some(false),
            None => None,
        };
        let window = 100;
        let mut found = Vec::new();
        let mut cursor = after;
        for _ in 0..SEARCH_SCAN / window {
            let (records, next) = self.store.find_members(&MemberSearch {
                text,
                tag: filters.tag,
                deactivated,
                after: cursor.clone(),
                limit: window as u32,
            })?;
            for record in records {
                let view = self.view(record, now);
                if filters.admit(&view.validity) {
                    found.push(view);
                    if found.len() == limit {
                        let last = found.last().map(|v| v.record.member.nickname.key());
                        return Ok((found, last));
                    }
                }
            }
            match next {
                Some(next) => cursor = Some(next),
                None => return Ok((found, None)),
            }
        }
        Ok((found, cursor))
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

    /// The members with a payment paid at or after `since` (at most
    /// `limit`, latest payers first), with their validity at `now`: the
    /// candidates of "membership ends soon". Blocking.
    pub fn paid_since(
        &self,
        since: DateTime<Utc>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<MemberView>, AppError> {
        Ok(self
            .store
            .members_paid_since(since, limit)?
            .into_iter()
            .map(|record| self.view(record, now))
            .collect())
    }

    /// Which of the member's payments grants which span (the validity
    /// timeline), under the configured plans and zone.
    pub fn timeline(&self, record: &MemberRecord) -> Vec<zhima_domain::membership::Span> {
        zhima_domain::membership::timeline(&record.payments, &self.plans, self.tz)
    }

    /// The latest payments recorded, newest first, with their member's
    /// number and nickname. Blocking.
    pub fn recent_payments(
        &self,
        limit: u32,
    ) -> Result<Vec<(MemberId, String, Payment)>, AppError> {
        Ok(self.store.recent_payments(limit)?)
    }

    /// The member `lookup` names, or [`StorageError::MemberNotFound`].
    fn existing(&self, key: MemberKey<'_>) -> Result<MemberRecord, AppError> {
        Ok(self
            .store
            .member(key)?
            .ok_or(StorageError::MemberNotFound)?)
    }

    /// Changes a member's fields from the console or the CLI; the audit log
    /// keeps the changed fields before and after. Nothing is written when
    /// nothing would change. Blocking.
    pub fn update_by(
        &self,
        openid: &OpenId,
        changes: &[MemberChange],
        by: &Actor,
        now: DateTime<Utc>,
    ) -> Result<MemberView, AppError> {
        let record = self.existing(MemberKey::OpenId(openid))?;
        let Some((before, after)) = describe_changes(&record.member, changes) else {
            return Ok(self.view(record, now));
        };
        let note = by.note(
            "member.update",
            member_subject(&record.member),
            before,
            after,
            now,
        );
        let record = self
            .store
            .audited(note)
            .update_member(openid, changes, now)?;
        Ok(self.view(record, now))
    }

    /// [`Members::add_payment`] from the console: the audit log keeps the
    /// payment (a replay records nothing, there or in the log). Blocking.
    pub fn add_payment_by(
        &self,
        id: MemberId,
        payment: &NewPayment,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Recorded, AppError> {
        let record = self.existing(MemberKey::Id(id))?;
        let note = by.note(
            "payment.record",
            member_subject(&record.member),
            String::new(),
            format!(
                "payIndex={}\npayType={}\namount={}\npaidTime={}",
                payment.pay_index,
                payment.pay_type,
                payment.amount,
                payment.paid_at.to_rfc3339()
            ),
            now,
        );
        let receipt = self
            .store
            .audited(note)
            .add_payment(&record.member.openid, payment, now)?;
        Ok(Recorded {
            view: self.view(receipt.record, now),
            payment: receipt.payment,
            duplicate: receipt.duplicate,
        })
    }

    /// Issues a pass for a visitor: a new member (tag `VISITOR`, openid and
    /// nickname made for the pass) with a payment of the day-pass plan
    /// (`EVENT` in the standard catalogue) that starts at `starts` (now for
    /// a day pass, the event day for an event pass) and lasts the plan's
    /// span. The audit log names who issued it; the pass's QR code is signed
    /// by the caller for the span the answer's validity shows. Blocking.
    pub fn issue_pass(
        &self,
        pass: &Pass,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> Result<MemberView, AppError> {
        let plan = self
            .plans
            .get("EVENT")
            .ok()
            .filter(|p| matches!(p.grant, Grant::DayPass { .. }))
            .or_else(|| {
                self.plans
                    .iter()
                    .find(|p| matches!(p.grant, Grant::DayPass { .. }))
            })
            .ok_or_else(|| AppError::Invalid {
                field: "plan",
                reason: "no plan of the catalogue is a day pass".into(),
            })?;
        if let Some(reason) = zhima_domain::member::pass_start_refusal(pass.starts, now) {
            return Err(AppError::Invalid {
                field: "starts",
                reason,
            });
        }
        let visitor = pass.visitor.trim();
        let visitor = if visitor.is_empty() {
            "Visitor"
        } else {
            visitor
        };
        let tag = zhima_storage::credentials::random_hex::<6>()?;
        let nickname = NickName::parse(&format!(
            "{} · {}",
            visitor.chars().take(40).collect::<String>(),
            &tag[..6]
        ))
        .map_err(|e| AppError::Invalid {
            field: "visitor",
            reason: e.to_string(),
        })?;
        let new = NewMember {
            openid: OpenId::parse(&format!("pass-{tag}")).map_err(|e| AppError::Invalid {
                field: "openid",
                reason: e.to_string(),
            })?,
            nickname,
            rfid: None,
            tags: Tags::from_stored(Tag::Visitor.name()).map_err(|e| AppError::Invalid {
                field: "tags",
                reason: e.to_string(),
            })?,
            profile: Profile {
                memo: format!("{} pass issued by {}", pass.kind.name(), by.name()),
                ..Profile::default()
            },
        };
        let payment = NewPayment {
            pay_index: PayIndex::parse(&format!("pass-{tag}")).map_err(|e| AppError::Invalid {
                field: "payIndex",
                reason: e.to_string(),
            })?,
            amount: pass.amount,
            pay_type: plan.name().to_owned(),
            paid_at: pass.starts,
            until_days: None,
            span: None,
        };
        let note = by.note(
            "pass.issue",
            format!("{} pass {}", pass.kind.name(), new.nickname.as_str()),
            String::new(),
            format!(
                "openid={}\namount={}\nstarts={}",
                new.openid,
                pass.amount,
                pass.starts.to_rfc3339()
            ),
            now,
        );
        let record = self
            .store
            .audited(note)
            .create_member(&new, Some(&payment), now)?;
        Ok(self.view(record, now))
    }
}

/// The most members one page of [`Members::find`] reads.
pub const SEARCH_SCAN: usize = 1000;

/// The filters of the member search.
#[derive(Debug, Clone, Default)]
pub struct SearchFilters {
    /// Only members with this status now.
    pub status: Option<MemberStatus>,
    /// Only members with this tag.
    pub tag: Option<zhima_domain::tags::Tag>,
    /// Only members whose validity ends before this instant (already
    /// expired ones included; with `status: OK`, those still valid).
    pub expires_before: Option<DateTime<Utc>>,
}

impl SearchFilters {
    /// Whether a member with `validity` passes (the tag is filtered by
    /// storage).
    fn admit(&self, validity: &Validity) -> bool {
        self.status.is_none_or(|s| s == validity.status)
            && self
                .expires_before
                .is_none_or(|d| validity.valid_until.is_some_and(|u| u < d))
    }
}

pub use zhima_domain::member::PASS_HORIZON_DAYS;

/// A day pass or an event pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassKind {
    /// For today, from now.
    Day,
    /// For an event on a given day.
    Event,
}

impl PassKind {
    /// `day` or `event`.
    pub fn name(self) -> &'static str {
        match self {
            PassKind::Day => "day",
            PassKind::Event => "event",
        }
    }
}

/// What a pass is for.
#[derive(Debug, Clone)]
pub struct Pass {
    /// Day or event.
    pub kind: PassKind,
    /// The visitor's name as they give it (may be empty).
    pub visitor: String,
    /// What they paid (may be 0).
    pub amount: Fen,
    /// When it starts admitting.
    pub starts: DateTime<Utc>,
}
