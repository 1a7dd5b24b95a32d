//! Members, their payments, and the parsing of what clients send about them.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::ids::{parse_free_text, Gender, MemberId, NickName, OpenId, PayIndex, Rfid};
use crate::money::Fen;
use crate::plan::Plans;
use crate::tags::Tags;
use crate::time::parse_paid_time;
use crate::{DomainError, Invalid};

/// Longest accepted avatar URL.
pub const MAX_URL_LEN: usize = 2048;
/// Longest accepted memo.
pub const MAX_MEMO_LEN: usize = 4000;
/// Longest accepted short profile field (city, country, province, language).
pub const MAX_SHORT_TEXT: usize = 100;
/// Longest accepted `until_days` override: ten years.
pub const MAX_UNTIL_DAYS: i64 = 3660;

/// The profile fields a member and staff may edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Picture URL.
    pub avatar_url: String,
    /// E-mail address (may be empty).
    pub email: String,
    /// City.
    pub city: String,
    /// Country.
    pub country: String,
    /// Province.
    pub province: String,
    /// Language code such as `zh_CN`.
    pub language: String,
    /// Gender.
    pub gender: Gender,
    /// Staff notes.
    pub memo: String,
    /// Whether reminder emails go to the member (receipts always do).
    pub reminders: bool,
}

impl Default for Profile {
    /// Empty, with reminders on.
    fn default() -> Profile {
        Profile {
            avatar_url: String::new(),
            email: String::new(),
            city: String::new(),
            country: String::new(),
            province: String::new(),
            language: String::new(),
            gender: Gender::default(),
            memo: String::new(),
            reminders: true,
        }
    }
}

/// A member as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Database ID.
    pub id: MemberId,
    /// WeChat openid.
    pub openid: OpenId,
    /// Display name.
    pub nickname: NickName,
    /// RFID card, if any.
    pub rfid: Option<Rfid>,
    /// Privileges.
    pub tags: Tags,
    /// Editable profile.
    pub profile: Profile,
    /// When the member was created.
    pub created_at: DateTime<Utc>,
    /// When the member's record last changed.
    pub updated_at: DateTime<Utc>,
    /// When staff deactivated the member (status `INVALID`), if they did.
    pub deactivated_at: Option<DateTime<Utc>>,
    /// Whether the member still has the default password and must change it.
    pub must_change_password: bool,
}

/// A member to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMember {
    /// WeChat openid.
    pub openid: OpenId,
    /// Display name.
    pub nickname: NickName,
    /// RFID card, if any.
    pub rfid: Option<Rfid>,
    /// Privileges (default `MEMBER`).
    pub tags: Tags,
    /// Profile.
    pub profile: Profile,
}

/// The fields `PATCH op:update` may change, by wire name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpdatableField {
    /// `openid`
    OpenId,
    /// `rfid`
    Rfid,
    /// `avatarUrl`
    AvatarUrl,
    /// `nickName`
    NickName,
    /// `email`
    Email,
    /// `city`
    City,
    /// `country`
    Country,
    /// `gender`
    Gender,
    /// `language`
    Language,
    /// `province`
    Province,
    /// `tags`
    Tags,
    /// `memo`
    Memo,
    /// `reminders` (an extension of the contract: `true` or `false`)
    Reminders,
}

impl UpdatableField {
    /// Every updatable field.
    pub const ALL: [UpdatableField; 13] = [
        UpdatableField::OpenId,
        UpdatableField::Rfid,
        UpdatableField::AvatarUrl,
        UpdatableField::NickName,
        UpdatableField::Email,
        UpdatableField::City,
        UpdatableField::Country,
        UpdatableField::Gender,
        UpdatableField::Language,
        UpdatableField::Province,
        UpdatableField::Tags,
        UpdatableField::Memo,
        UpdatableField::Reminders,
    ];

    /// The wire name.
    pub const fn wire_name(self) -> &'static str {
        match self {
            UpdatableField::OpenId => "openid",
            UpdatableField::Rfid => "rfid",
            UpdatableField::AvatarUrl => "avatarUrl",
            UpdatableField::NickName => "nickName",
            UpdatableField::Email => "email",
            UpdatableField::City => "city",
            UpdatableField::Country => "country",
            UpdatableField::Gender => "gender",
            UpdatableField::Language => "language",
            UpdatableField::Province => "province",
            UpdatableField::Tags => "tags",
            UpdatableField::Memo => "memo",
            UpdatableField::Reminders => "reminders",
        }
    }

    /// The field of a wire name (exact spelling), if it is updatable.
    pub fn from_wire_name(name: &str) -> Option<UpdatableField> {
        UpdatableField::ALL
            .into_iter()
            .find(|f| f.wire_name() == name)
    }
}

/// One accepted change of `PATCH op:update`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// New openid.
    OpenId(OpenId),
    /// New card, or none.
    Rfid(Option<Rfid>),
    /// New nickname.
    NickName(NickName),
    /// New tags.
    Tags(Tags),
    /// A profile text field (not gender) and its new value.
    Text(UpdatableField, String),
    /// New gender.
    Gender(Gender),
    /// Reminders on or off.
    Reminders(bool),
}

impl MemberChange {
    /// Parses the text value of a text field (`avatarUrl`, `email`, `city`,
    /// `country`, `language`, `province`, `memo`).
    pub fn text(field: UpdatableField, value: &str) -> Result<MemberChange, DomainError> {
        let checked = match field {
            UpdatableField::AvatarUrl => parse_free_text(value, MAX_URL_LEN),
            UpdatableField::Memo => parse_free_text(value, MAX_MEMO_LEN),
            UpdatableField::Email => parse_email(value),
            UpdatableField::City
            | UpdatableField::Country
            | UpdatableField::Language
            | UpdatableField::Province => parse_free_text(value, MAX_SHORT_TEXT),
            _ => Err(Invalid::new("is not a text field")),
        };
        checked
            .map(|v| MemberChange::Text(field, v))
            .map_err(|e| e.field(field.wire_name()))
    }

    /// Applies the change to a member.
    pub fn apply(&self, member: &mut Member) {
        match self {
            MemberChange::OpenId(v) => member.openid = v.clone(),
            MemberChange::Rfid(v) => member.rfid = v.clone(),
            MemberChange::NickName(v) => member.nickname = v.clone(),
            MemberChange::Tags(v) => member.tags = v.clone(),
            MemberChange::Gender(v) => member.profile.gender = *v,
            MemberChange::Reminders(v) => member.profile.reminders = *v,
            MemberChange::Text(field, v) => {
                let slot = match field {
                    UpdatableField::AvatarUrl => &mut member.profile.avatar_url,
                    UpdatableField::Email => &mut member.profile.email,
                    UpdatableField::City => &mut member.profile.city,
                    UpdatableField::Country => &mut member.profile.country,
                    UpdatableField::Language => &mut member.profile.language,
                    UpdatableField::Province => &mut member.profile.province,
                    UpdatableField::Memo => &mut member.profile.memo,
                    _ => return,
                };
                slot.clone_from(v);
            }
        }
    }
}

/// Checks an e-mail address loosely: empty, or one `@` with text on both
/// sides, no white space, at most 254 characters.
pub fn parse_email(text: &str) -> Result<String, Invalid> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(String::new());
    }
    let ok = text.len() <= 254
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(text.split_once('@'), Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if ok {
        Ok(text.to_owned())
    } else {
        Err(Invalid::new(format!("{text:?} is not an e-mail address")))
    }
}

/// A recorded payment (transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Database ID (`transaction_id` on the wire).
    pub id: i64,
    /// Unique payment index.
    pub pay_index: PayIndex,
    /// Amount paid.
    pub amount: Fen,
    /// Canonical plan name.
    pub pay_type: String,
    /// When it was paid.
    pub paid_at: DateTime<Utc>,
    /// Override of the plan's length, in days.
    pub until_days: Option<u32>,
    /// The span it grants, when given explicitly (an imported payment of
    /// the old server): taken as it is, not derived from `paid_at`.
    pub span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// When the server recorded it.
    pub recorded_at: DateTime<Utc>,
}

/// How far ahead an event pass may start.
pub const PASS_HORIZON_DAYS: i64 = 366;

/// Why a visitor pass may not start at `starts`, seen at `now`: it may
/// start at most a day ago (a day pass bought late) and at most
/// [`PASS_HORIZON_DAYS`] ahead. `None`: it may.
pub fn pass_start_refusal(starts: DateTime<Utc>, now: DateTime<Utc>) -> Option<String> {
    if starts < now - chrono::Duration::days(1) {
        Some("a pass cannot start in the past".into())
    } else if starts > now + chrono::Duration::days(PASS_HORIZON_DAYS) {
        Some(format!("a pass starts within {PASS_HORIZON_DAYS} days"))
    } else {
        None
    }
}

/// A payment to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    /// Unique payment index.
    pub pay_index: PayIndex,
    /// Amount paid.
    pub amount: Fen,
    /// Canonical plan name.
    pub pay_type: String,
    /// When it was paid.
    pub paid_at: DateTime<Utc>,
    /// Override of the plan's length, in days.
    pub until_days: Option<u32>,
    /// The span it grants, when given explicitly (see [`Payment::span`]).
    pub span: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl NewPayment {
    /// Whether `existing` records this same payment: the rule that makes a
    /// retried payment idempotent. Same payIndex, same amount and same type;
    /// the payment time is not compared (a retry may carry a new one).
    pub fn is_replay_of(&self, existing: &Payment) -> bool {
        self.pay_index == existing.pay_index
            && self.amount == existing.amount
            && self.pay_type == existing.pay_type
    }
}

/// The fields of a payment as they arrive, before parsing.
#[derive(Debug, Clone, Default)]
pub struct PaymentInput<'a> {
    /// `paidTime`, `YYYYMMDDHHMM`.
    pub paid_time: Option<&'a str>,
    /// `payIndex`.
    pub pay_index: Option<&'a str>,
    /// `CNYAmount`, as the text of a number.
    pub amount: Option<&'a str>,
    /// `payType`; defaults to `1M MEMBERSHIP`.
    pub pay_type: Option<&'a str>,
    /// `until_days`.
    pub until_days: Option<i64>,
}

/// The plan a payment without `payType` is for.
pub const DEFAULT_PAY_TYPE: &str = "1M MEMBERSHIP";

impl PaymentInput<'_> {
    /// Parses and checks a payment against the plan catalogue, naming the
    /// first faulty field.
    pub fn parse(&self, plans: &Plans, tz: Tz) -> Result<NewPayment, DomainError> {
        let paid_time = self
            .paid_time
            .ok_or_else(|| DomainError::missing("paidTime"))?;
        let paid_at = parse_paid_time(paid_time.trim(), tz).map_err(|e| e.field("paidTime"))?;
        let pay_index = PayIndex::parse(
            self.pay_index
                .ok_or_else(|| DomainError::missing("payIndex"))?,
        )
        .map_err(|e| e.field("payIndex"))?;
        let amount = Fen::parse_yuan(
            self.amount
                .ok_or_else(|| DomainError::missing("CNYAmount"))?,
        )
        .map_err(|e| e.field("CNYAmount"))?;
        let plan = plans
            .get(self.pay_type.unwrap_or(DEFAULT_PAY_TYPE))
            .map_err(|e| e.field("payType"))?;
        let until_days = match self.until_days {
            None => None,
            Some(d) if !(1..=MAX_UNTIL_DAYS).contains(&d) => {
                return Err(
                    Invalid::new(format!("must be an integer from 1 to {MAX_UNTIL_DAYS}"))
                        .field("until_days"),
                )
            }
            Some(_) if !plan.grant.has_length() => {
                return Err(Invalid::new(format!(
                    "payType {} grants no access period to override",
                    plan.name()
                ))
                .field("until_days"))
            }
            Some(d) => u32::try_from(d).ok(),
        };
        Ok(NewPayment {
            pay_index,
            amount,
            pay_type: plan.name().to_owned(),
            paid_at,
            until_days,
            span: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::DEFAULT_TIMEZONE;

    fn input<'a>() -> PaymentInput<'a> {
        PaymentInput {
            paid_time: Some("201803121929"),
            pay_index: Some("this is craaaazy!"),
            amount: Some("123.45"),
            pay_type: Some("DONATION"),
            until_days: None,
        }
    }

    #[test]
    fn a_pass_starts_from_yesterday_to_a_year_ahead() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let day = chrono::Duration::days(1);
        assert_eq!(pass_start_refusal(now, now), None);
        assert_eq!(pass_start_refusal(now - day, now), None);
        assert!(pass_start_refusal(now - day * 2, now).is_some());
        assert_eq!(
            pass_start_refusal(now + day * PASS_HORIZON_DAYS as i32, now),
            None
        );
        assert!(pass_start_refusal(now + day * 367, now).is_some());
    }

    #[test]
    fn parses_the_seed_payment() {
        let p = input().parse(&Plans::standard(), DEFAULT_TIMEZONE).unwrap();
        assert_eq!(p.amount.as_fen(), 12345);
        assert_eq!(p.pay_type, "DONATION");
        assert_eq!(p.pay_index.as_str(), "this is craaaazy!");
    }

    #[test]
    fn defaults_to_one_month() {
        let p = PaymentInput {
            pay_type: None,
            ..input()
        }
        .parse(&Plans::standard(), DEFAULT_TIMEZONE)
        .unwrap();
        assert_eq!(p.pay_type, "1M MEMBERSHIP");
    }

    #[test]
    fn names_the_faulty_field() {
        let plans = Plans::standard();
        let cases: [(PaymentInput<'_>, &str); 9] = [
            (
                PaymentInput {
                    paid_time: None,
                    ..input()
                },
                "paidTime",
            ),
            (
                PaymentInput {
                    paid_time: Some("2018"),
                    ..input()
                },
                "paidTime",
            ),
            (
                PaymentInput {
                    pay_index: None,
                    ..input()
                },
                "payIndex",
            ),
            (
                PaymentInput {
                    pay_index: Some(" "),
                    ..input()
                },
                "payIndex",
            ),
            (
                PaymentInput {
                    amount: Some("-1"),
                    ..input()
                },
                "CNYAmount",
            ),
            (
                PaymentInput {
                    amount: None,
                    ..input()
                },
                "CNYAmount",
            ),
            (
                PaymentInput {
                    pay_type: Some("BITCOIN"),
                    ..input()
                },
                "payType",
            ),
            (
                PaymentInput {
                    pay_type: Some("1M MEMBERSHIP"),
                    until_days: Some(0),
                    ..input()
                },
                "until_days",
            ),
            (
                PaymentInput {
                    until_days: Some(30),
                    ..input()
                },
                "until_days",
            ), // DONATION has no length
        ];
        for (case, field) in cases {
            match case.parse(&plans, DEFAULT_TIMEZONE) {
                Err(DomainError::InvalidField { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{case:?} gave {other:?}"),
            }
        }
        let ok = PaymentInput {
            pay_type: Some("6m membership"),
            until_days: Some(90),
            ..input()
        }
        .parse(&plans, DEFAULT_TIMEZONE)
        .unwrap();
        assert_eq!(ok.until_days, Some(90));
        assert_eq!(ok.pay_type, "6M MEMBERSHIP");
    }

    #[test]
    fn replay_compares_index_amount_and_type() {
        let p = input().parse(&Plans::standard(), DEFAULT_TIMEZONE).unwrap();
        let stored = Payment {
            id: 7,
            pay_index: p.pay_index.clone(),
            amount: p.amount,
            pay_type: p.pay_type.clone(),
            paid_at: p.paid_at + chrono::Duration::minutes(5),
            until_days: None,
            span: None,
            recorded_at: p.paid_at,
        };
        assert!(p.is_replay_of(&stored));
        assert!(!NewPayment {
            amount: Fen::from_yuan(1),
            ..p.clone()
        }
        .is_replay_of(&stored));
        assert!(!NewPayment {
            pay_type: "EVENT".into(),
            ..p.clone()
        }
        .is_replay_of(&stored));
    }

    #[test]
    fn updatable_fields() {
        assert_eq!(
            UpdatableField::from_wire_name("nickName"),
            Some(UpdatableField::NickName)
        );
        assert_eq!(UpdatableField::from_wire_name("nickname"), None);
        assert_eq!(UpdatableField::from_wire_name("expireTime"), None);
        for f in UpdatableField::ALL {
            assert_eq!(UpdatableField::from_wire_name(f.wire_name()), Some(f));
        }
        assert!(MemberChange::text(UpdatableField::Email, "not-an-email").is_err());
        assert!(MemberChange::text(UpdatableField::Email, "").is_ok());
        assert!(MemberChange::text(UpdatableField::City, &"x".repeat(101)).is_err());
        assert!(MemberChange::text(UpdatableField::Tags, "x").is_err());
    }

    #[test]
    fn emails() {
        assert_eq!(parse_email(" a@b.c ").unwrap(), "a@b.c");
        for bad in ["a", "@b", "a@", "a b@c", "a@b@c"] {
            assert!(parse_email(bad).is_err(), "{bad}");
        }
    }
}
