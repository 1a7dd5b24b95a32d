//! The old zhima server's data, mapped to zhima's: the rules of
//! `zhima import zhima-legacy`, without the database reading (which comes
//! with the MariaDB client). Pure: rows in, a plan and a report out.
//!
//! Decisions, stated once:
//! - The old server's datetimes are naive, in the space's zone (`tz`).
//! - A transaction's `valid_until` is the last day it covers: its span ends
//!   at the start of the next local day.
//! - An amount is rounded to the nearest fen (half away from zero); one
//!   that was not a whole fen (`199.99000000001`) is reported.
//! - `role` becomes the tag of the same number; `INVALID` becomes
//!   deactivated.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use zhima_domain::ids::{Gender, MemberId, NickName, OpenId, PayIndex, Rfid};
use zhima_domain::member::{parse_email, NewMember, NewPayment, Profile};
use zhima_domain::money::Fen;
use zhima_domain::plan::Plans;
use zhima_domain::tags::{Tag, Tags};

/// A row of the old `users` table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LegacyUser {
    /// `id`, kept as the member number.
    pub id: i64,
    /// `openid`.
    pub openid: String,
    /// `username` (the nickName).
    pub username: String,
    /// `passwd`, in clear on the old server.
    pub passwd: Option<String>,
    /// `avatar_url`.
    pub avatar_url: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// `status`: `OK`, `NOT_OK` or `INVALID`.
    pub status: String,
    /// `role`: 0 VISITOR, 1 MEMBER, 2 MASTER, 4 GROUP, 5 STAFF, 10 ADMIN.
    pub role: i64,
    /// `city`.
    pub city: Option<String>,
    /// `province`.
    pub province: Option<String>,
    /// `country`.
    pub country: Option<String>,
    /// `gender`: 1 male, 2 female, 0 unknown.
    pub gender: i64,
    /// `language`.
    pub language: Option<String>,
    /// `create_time`.
    pub create_time: Option<NaiveDateTime>,
    /// `rfid`, in later versions.
    pub rfid: Option<String>,
}

/// A row of the old `transactions` table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LegacyTransaction {
    /// `id`: the payment becomes `legacy-<id>`.
    pub id: i64,
    /// `member_id` (`users.id`).
    pub member_id: i64,
    /// `type`: a plan name such as `1M MEMBERSHIP`.
    pub kind: String,
    /// `amount`, a float.
    pub amount: f64,
    /// `valid_from`.
    pub valid_from: Option<NaiveDate>,
    /// `valid_until` (the last day covered).
    pub valid_until: Option<NaiveDate>,
    /// `created_on`: the payment time.
    pub created_on: Option<NaiveDateTime>,
}

/// A member to create, with what the old server knew of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyMember {
    /// The old `id`, kept.
    pub id: MemberId,
    /// The member.
    pub new: NewMember,
    /// When the old server created them.
    pub created: DateTime<Utc>,
    /// Whether they were `INVALID`.
    pub deactivated: bool,
    /// Their password, when it was a real one (to hash; never written in
    /// clear anywhere).
    pub password: Option<String>,
}

/// What an import would write, and what it found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegacyPlan {
    /// The members.
    pub members: Vec<LegacyMember>,
    /// The payments, by the old member id.
    pub payments: Vec<(MemberId, NewPayment)>,
    /// Real passwords found in clear (to hash, and to ask members to change).
    pub clear_passwords: u64,
    /// Empty or default passwords (no web login yet).
    pub default_passwords: u64,
    /// Report lines: amounts not a whole fen, types not in the catalogue,
    /// refused rows.
    pub notes: Vec<String>,
    /// Rows that cannot be imported (the import refuses while any remain).
    pub refused: Vec<String>,
}

/// The start of `date` in `tz` (the first existing instant of the day).
fn day_start(date: NaiveDate, tz: Tz) -> Option<DateTime<Utc>> {
    use chrono::TimeZone as _;
    (0..=2).find_map(|h| {
        date.and_hms_opt(h, 0, 0)
            .and_then(|t| tz.from_local_datetime(&t).earliest())
            .map(|t| t.with_timezone(&Utc))
    })
}

/// A naive datetime of the old server, in `tz`.
fn local(t: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    use chrono::TimeZone as _;
    tz.from_local_datetime(&t)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// An amount as fen, rounded half away from zero, and whether it was a
/// whole number of fen as written.
pub fn amount_to_fen(amount: f64) -> Option<(i64, bool)> {
    if !amount.is_finite() || !(0.0..=1e11).contains(&amount) {
        return None;
    }
    let fen = (amount * 100.0).round();
    let written = format!("{amount}");
    let whole = written
        .split_once('.')
        .is_none_or(|(_, decimals)| decimals.len() <= 2);
    Some((fen as i64, whole))
}

/// Maps the old server's users and transactions (the log rows come with
/// the reader). `now` stands for a missing creation time.
pub fn plan(
    users: &[LegacyUser],
    transactions: &[LegacyTransaction],
    plans: &Plans,
    tz: Tz,
    now: DateTime<Utc>,
) -> LegacyPlan {
    let mut out = LegacyPlan::default();
    let mut known: std::collections::BTreeSet<i64> = std::collections::BTreeSet::new();
    for u in users {
        let line = format!("users id {}", u.id);
        let member = (|| -> Result<LegacyMember, String> {
            let openid = OpenId::parse(&u.openid).map_err(|e| format!("openid: {e}"))?;
            let nickname = NickName::parse(&u.username).map_err(|e| format!("username: {e}"))?;
            let tag = Tag::from_role_number(u.role).map_err(|e| format!("role: {e}"))?;
            let tags = Tags::from_stored(tag.name()).map_err(|e| format!("role: {e}"))?;
            let rfid = match u.rfid.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(r) => Some(Rfid::parse(r).map_err(|e| format!("rfid: {e}"))?),
            };
            let email =
                parse_email(u.email.as_deref().unwrap_or("")).map_err(|e| format!("email: {e}"))?;
            let gender = Gender::from_code(u.gender).unwrap_or(Gender::Unknown);
            let text = |v: &Option<String>| {
                v.as_deref()
                    .unwrap_or("")
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            };
            let password = u
                .passwd
                .as_deref()
                .map(str::trim)
                .filter(|p| !p.is_empty() && *p != zhima_domain::password::DEFAULT_PASSWORD)
                .map(str::to_owned);
            Ok(LegacyMember {
                id: MemberId(u.id),
                new: NewMember {
                    openid,
                    nickname,
                    rfid,
                    tags,
                    profile: Profile {
                        avatar_url: text(&u.avatar_url),
                        email,
                        city: text(&u.city),
                        province: text(&u.province),
                        country: text(&u.country),
                        language: text(&u.language),
                        gender,
                        ..Profile::default()
                    },
                },
                created: u.create_time.and_then(|t| local(t, tz)).unwrap_or(now),
                deactivated: u.status.trim().eq_ignore_ascii_case("INVALID"),
                password,
            })
        })();
        match member {
            Ok(m) => {
                if m.password.is_some() {
                    out.clear_passwords += 1;
                } else {
                    out.default_passwords += 1;
                }
                known.insert(u.id);
                out.members.push(m);
            }
            Err(why) => out.refused.push(format!("{line}: {why}")),
        }
    }
    for t in transactions {
        let line = format!("transactions id {}", t.id);
        if !known.contains(&t.member_id) {
            out.refused.push(format!(
                "{line}: member_id {} is not an imported user",
                t.member_id
            ));
            continue;
        }
        let Some((fen, whole)) = amount_to_fen(t.amount) else {
            out.refused
                .push(format!("{line}: amount {} is not money", t.amount));
            continue;
        };
        if !whole {
            out.notes.push(format!(
                "{line}: amount {} was not a whole fen; recorded as {}.{:02}",
                t.amount,
                fen / 100,
                fen % 100
            ));
        }
        let pay_type = match plans.get(&t.kind) {
            Ok(plan) => plan.name().to_owned(),
            Err(_) => {
                out.notes.push(format!(
                    "{line}: type {:?} is not in the plan catalogue: recorded, grants nothing",
                    t.kind
                ));
                t.kind.trim().to_uppercase()
            }
        };
        let paid_at = t
            .created_on
            .and_then(|c| local(c, tz))
            .or_else(|| t.valid_from.and_then(|d| day_start(d, tz)))
            .unwrap_or(now);
        let span = match (t.valid_from, t.valid_until) {
            (Some(from), Some(until)) if from <= until => {
                match (
                    day_start(from, tz),
                    until.succ_opt().and_then(|d| day_start(d, tz)),
                ) {
                    (Some(a), Some(b)) => Some((a, b)),
                    _ => None,
                }
            }
            _ => None,
        };
        let (Ok(pay_index), Ok(amount)) = (
            PayIndex::parse(&format!("legacy-{}", t.id)),
            Fen::from_fen(fen),
        ) else {
            out.refused.push(format!("{line}: cannot be recorded"));
            continue;
        };
        out.payments.push((
            MemberId(t.member_id),
            NewPayment {
                pay_index,
                amount,
                pay_type,
                paid_at,
                until_days: None,
                span,
            },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const TZ: Tz = chrono_tz::Asia::Shanghai;

    fn user(id: i64, openid: &str, name: &str) -> LegacyUser {
        LegacyUser {
            id,
            openid: openid.into(),
            username: name.into(),
            status: "OK".into(),
            role: 1,
            ..LegacyUser::default()
        }
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn amounts_round_to_the_fen_and_odd_ones_are_reported() {
        assert_eq!(amount_to_fen(200.0), Some((20000, true)));
        assert_eq!(amount_to_fen(199.99), Some((19999, true)));
        assert_eq!(amount_to_fen(199.99000000001), Some((19999, false)));
        assert_eq!(amount_to_fen(0.005), Some((1, false)));
        assert_eq!(amount_to_fen(-1.0), None);
        assert_eq!(amount_to_fen(f64::NAN), None);
    }

    #[test]
    fn users_and_transactions_map_with_their_ids_roles_spans_and_passwords() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut admin = user(7, "o-7", "小明 🚪");
        admin.role = 10;
        admin.passwd = Some("secret-2018".into());
        let mut gone = user(9, "o-9", "Gone");
        gone.status = "INVALID".into();
        gone.passwd = Some("password123".into());
        let bad = user(11, "", "No openid");
        let transactions = [
            LegacyTransaction {
                id: 1,
                member_id: 7,
                kind: "1M MEMBERSHIP".into(),
                amount: 199.99000000001,
                valid_from: Some(day("2018-03-01")),
                valid_until: Some(day("2018-03-31")),
                created_on: Some(day("2018-03-02").and_hms_opt(10, 0, 0).unwrap()),
            },
            LegacyTransaction {
                id: 2,
                member_id: 7,
                kind: "LASER CUTTER".into(),
                amount: 30.0,
                ..LegacyTransaction::default()
            },
            LegacyTransaction {
                id: 3,
                member_id: 11,
                kind: "1M MEMBERSHIP".into(),
                amount: 200.0,
                ..LegacyTransaction::default()
            },
        ];
        let plan = plan(
            &[admin, gone, bad],
            &transactions,
            &Plans::standard(),
            TZ,
            now,
        );
        assert_eq!(plan.members.len(), 2);
        assert_eq!(plan.members[0].id, MemberId(7));
        assert_eq!(plan.members[0].new.tags.to_stored(), "ADMIN");
        assert_eq!(plan.members[0].password.as_deref(), Some("secret-2018"));
        assert!(plan.members[1].deactivated);
        assert_eq!(
            plan.members[1].password, None,
            "the default password is no web login"
        );
        assert_eq!((plan.clear_passwords, plan.default_passwords), (1, 1));
        assert_eq!(plan.refused.len(), 2, "{:?}", plan.refused);
        let (member, first) = &plan.payments[0];
        assert_eq!(*member, MemberId(7));
        assert_eq!(first.pay_index.as_str(), "legacy-1");
        assert_eq!(first.amount.to_string(), "199.99");
        // 1 March 00:00 to 1 April 00:00, Shanghai time
        let (from, until) = first.span.unwrap();
        assert_eq!(from.to_rfc3339(), "2018-02-28T16:00:00+00:00");
        assert_eq!(until.to_rfc3339(), "2018-03-31T16:00:00+00:00");
        assert_eq!(first.paid_at.to_rfc3339(), "2018-03-02T02:00:00+00:00");
        assert!(
            plan.notes.iter().any(|n| n.contains("not a whole fen")),
            "{:?}",
            plan.notes
        );
        assert!(
            plan.notes.iter().any(|n| n.contains("LASER CUTTER")),
            "{:?}",
            plan.notes
        );
    }
}
