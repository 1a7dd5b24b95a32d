//! Private row structs and their conversions to domain types.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use zhima_domain::ids::{Gender, MemberId, NickName, OpenId, PayIndex, Rfid};
use zhima_domain::member::{Member, NewMember, NewPayment, Payment, Profile};
use zhima_domain::money::Fen;
use zhima_domain::tags::Tags;

use crate::schema::{members, payments};
use crate::StorageError;

pub(crate) fn secs(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

pub(crate) fn instant(
    table: &'static str,
    id: i64,
    secs: i64,
) -> Result<DateTime<Utc>, StorageError> {
    DateTime::from_timestamp(secs, 0).ok_or_else(|| StorageError::Corrupt {
        table,
        id,
        reason: format!("timestamp {secs} out of range"),
    })
}

#[derive(Queryable, Selectable, Debug)]
#[diesel(table_name = members)]
pub(crate) struct MemberRow {
    pub id: i64,
    pub openid: String,
    pub nickname: String,
    pub avatar_url: String,
    pub email: String,
    pub city: String,
    pub country: String,
    pub province: String,
    pub language: String,
    pub gender: i32,
    pub rfid: Option<String>,
    pub tags: String,
    pub memo: String,
    pub reminders: bool,
    pub must_change_password: bool,
    pub deactivated_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl MemberRow {
    pub fn into_domain(self) -> Result<Member, StorageError> {
        let id = self.id;
        let corrupt = |reason: String| StorageError::Corrupt {
            table: "members",
            id,
            reason,
        };
        Ok(Member {
            id: MemberId(id),
            openid: OpenId::parse(&self.openid).map_err(|e| corrupt(format!("openid {e}")))?,
            nickname: NickName::parse(&self.nickname)
                .map_err(|e| corrupt(format!("nickname {e}")))?,
            rfid: self
                .rfid
                .as_deref()
                .map(Rfid::parse)
                .transpose()
                .map_err(|e| corrupt(format!("rfid {e}")))?,
            tags: Tags::from_stored(&self.tags).map_err(|e| corrupt(format!("tags {e}")))?,
            profile: Profile {
                avatar_url: self.avatar_url,
                email: self.email,
                city: self.city,
                country: self.country,
                province: self.province,
                language: self.language,
                gender: Gender::from_code(i64::from(self.gender))
                    .map_err(|e| corrupt(format!("gender {e}")))?,
                memo: self.memo,
                reminders: self.reminders,
            },
            created_at: instant("members", id, self.created_at)?,
            updated_at: instant("members", id, self.updated_at)?,
            deactivated_at: self
                .deactivated_at
                .map(|s| instant("members", id, s))
                .transpose()?,
            must_change_password: self.must_change_password,
        })
    }
}

/// The member columns a client sets: written on insert and, whole, on update.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = members, treat_none_as_null = true)]
pub(crate) struct MemberColumns<'a> {
    pub openid: &'a str,
    pub nickname: &'a str,
    pub nickname_key: String,
    pub avatar_url: &'a str,
    pub email: &'a str,
    pub city: &'a str,
    pub country: &'a str,
    pub province: &'a str,
    pub language: &'a str,
    pub gender: i32,
    pub rfid: Option<&'a str>,
    pub tags: String,
    pub memo: &'a str,
    pub reminders: bool,
}

impl<'a> MemberColumns<'a> {
    pub fn new(
        openid: &'a OpenId,
        nickname: &'a NickName,
        rfid: Option<&'a Rfid>,
        tags: &Tags,
        profile: &'a Profile,
    ) -> Self {
        MemberColumns {
            openid: openid.as_str(),
            nickname: nickname.as_str(),
            nickname_key: nickname.key(),
            avatar_url: &profile.avatar_url,
            email: &profile.email,
            city: &profile.city,
            country: &profile.country,
            province: &profile.province,
            language: &profile.language,
            gender: profile.gender.code(),
            rfid: rfid.map(Rfid::as_str),
            tags: tags.to_stored(),
            memo: &profile.memo,
            reminders: profile.reminders,
        }
    }

    pub fn of_new(m: &'a NewMember) -> Self {
        MemberColumns::new(&m.openid, &m.nickname, m.rfid.as_ref(), &m.tags, &m.profile)
    }

    pub fn of(m: &'a Member) -> Self {
        MemberColumns::new(&m.openid, &m.nickname, m.rfid.as_ref(), &m.tags, &m.profile)
    }
}

#[derive(Insertable)]
#[diesel(table_name = members)]
pub(crate) struct NewMemberRow<'a> {
    #[diesel(embed)]
    pub columns: MemberColumns<'a>,
    pub password_hash: String,
    pub must_change_password: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl<'a> NewMemberRow<'a> {
    pub fn new(m: &'a NewMember, password_hash: String, now: DateTime<Utc>) -> NewMemberRow<'a> {
        NewMemberRow {
            columns: MemberColumns::of_new(m),
            password_hash,
            must_change_password: true,
            created_at: secs(now),
            updated_at: secs(now),
        }
    }
}

#[derive(Queryable, Selectable, Debug)]
#[diesel(table_name = payments)]
pub(crate) struct PaymentRow {
    pub id: i64,
    pub member_id: i64,
    pub pay_index: String,
    pub amount_fen: i64,
    pub pay_type: String,
    pub paid_at: i64,
    pub until_days: Option<i32>,
    pub span_from: Option<i64>,
    pub span_until: Option<i64>,
    pub recorded_at: i64,
}

impl PaymentRow {
    pub fn into_domain(self) -> Result<Payment, StorageError> {
        let id = self.id;
        let corrupt = |reason: String| StorageError::Corrupt {
            table: "payments",
            id,
            reason,
        };
        Ok(Payment {
            id,
            pay_index: PayIndex::parse(&self.pay_index)
                .map_err(|e| corrupt(format!("pay_index {e}")))?,
            amount: Fen::from_fen(self.amount_fen).map_err(|e| corrupt(format!("amount {e}")))?,
            pay_type: self.pay_type,
            paid_at: instant("payments", id, self.paid_at)?,
            until_days: self
                .until_days
                .map(|d| u32::try_from(d).map_err(|_| corrupt(format!("until_days {d}"))))
                .transpose()?,
            span: match (self.span_from, self.span_until) {
                (Some(from), Some(until)) => Some((
                    instant("payments", id, from)?,
                    instant("payments", id, until)?,
                )),
                _ => None,
            },
            recorded_at: instant("payments", id, self.recorded_at)?,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = payments)]
pub(crate) struct NewPaymentRow<'a> {
    pub member_id: i64,
    pub pay_index: &'a str,
    pub amount_fen: i64,
    pub pay_type: &'a str,
    pub paid_at: i64,
    pub until_days: Option<i32>,
    pub span_from: Option<i64>,
    pub span_until: Option<i64>,
    pub recorded_at: i64,
}

impl<'a> NewPaymentRow<'a> {
    pub fn new(member_id: MemberId, p: &'a NewPayment, now: DateTime<Utc>) -> NewPaymentRow<'a> {
        NewPaymentRow {
            member_id: member_id.0,
            pay_index: p.pay_index.as_str(),
            amount_fen: p.amount.as_fen(),
            pay_type: &p.pay_type,
            paid_at: secs(p.paid_at),
            until_days: p.until_days.and_then(|d| i32::try_from(d).ok()),
            span_from: p.span.map(|(from, _)| secs(from)),
            span_until: p.span.map(|(_, until)| secs(until)),
            recorded_at: secs(now),
        }
    }
}
