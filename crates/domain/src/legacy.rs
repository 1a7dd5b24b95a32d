//! The old zhima server's data, mapped to zhima's: the rules of
//! `zhima import zhima-legacy`, without the reading of its database (which
//! is the server's) or the writing (the application layer's). Pure: rows
//! in, a plan and a report out.
//!
//! Decisions, stated once:
//! - The old server's `DATETIME` and `DATE` values are naive, in the
//!   space's zone (`tz`; the import's `--tz`, by default `timezone` of the
//!   configuration). Its `TIMESTAMP` columns (`tb_log.created_on`) are
//!   instants and are read as UTC by the reader.
//! - A transaction's `valid_until` is the last day it covers: its span ends
//!   at the start of the next local day.
//! - An amount is taken from the decimal text the database gives (what the
//!   old server's Python saw) and rounded to the nearest fen, half away from
//!   zero; one that was not a whole fen (`199.99000000001`) is reported.
//! - `role` becomes the tag of the same number; `INVALID` becomes
//!   deactivated.
//! - A log row names its member by the text before ` - ` in its message,
//!   after an optional `Welcome ` (`Welcome 小明 - QR V2`); `OPEN` rows
//!   become granted events, `NOT_OK` rows refused ones, both with method
//!   `legacy`, which never spends an entry day (see `access`).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;

use crate::access::{AccessMethod, NewAccessEvent, Outcome};
use crate::ids::{Gender, MemberId, NickName, OpenId, PayIndex, Rfid};
use crate::member::{parse_email, NewMember, NewPayment, Payment, Profile};
use crate::membership::{evaluate, History};
use crate::money::Fen;
use crate::plan::{Grant, Plans};
use crate::tags::{Tag, Tags};
use crate::time::{local_date, local_day_start, local_instant};

/// A row of the old `users` table (`Debug` hides the password).
#[derive(Clone, Default, PartialEq)]
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
    /// `amount`, a float, as the database writes it (`199.99`).
    pub amount: String,
    /// `valid_from`.
    pub valid_from: Option<NaiveDate>,
    /// `valid_until` (the last day covered).
    pub valid_until: Option<NaiveDate>,
    /// `created_on`: the payment time.
    pub created_on: Option<NaiveDateTime>,
}

/// A row of the old `tb_log` table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegacyLogRow {
    /// `id`.
    pub id: i64,
    /// `type`: `OPEN`, `NOT_OK`, `ERROR`, `WARNING`, `INFO`.
    pub kind: String,
    /// `code`.
    pub code: Option<i64>,
    /// `message`, such as `Welcome NAME - QR V2`.
    pub message: String,
    /// `created_on` (a `TIMESTAMP`: an instant).
    pub at: Option<DateTime<Utc>>,
}

/// A member to create, with what the old server knew of them (`Debug`
/// hides the password).
#[derive(Clone, PartialEq, Eq)]
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

impl std::fmt::Debug for LegacyUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacyUser")
            .field("id", &self.id)
            .field("openid", &self.openid)
            .field("username", &self.username)
            .field("passwd", &self.passwd.as_ref().map(|_| "***"))
            .field("status", &self.status)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for LegacyMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacyMember")
            .field("id", &self.id)
            .field("new", &self.new)
            .field("created", &self.created)
            .field("deactivated", &self.deactivated)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
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
    /// Report lines: amounts not a whole fen, types not in the catalogue.
    pub notes: Vec<String>,
    /// Rows that cannot be imported (the import refuses while any remain).
    pub refused: Vec<String>,
}

/// The most an amount may be: 1,000,000,000 yuan.
const AMOUNT_MAX_FEN: i64 = 100_000_000_000;

/// An amount, as the database writes it, in fen: rounded to the nearest fen
/// (half away from zero) on its decimal digits, and whether it was a whole
/// number of fen. `None` for text that is not a non-negative amount.
pub fn amount_to_fen(text: &str) -> Option<(i64, bool)> {
    let text = text.trim();
    let plain = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let (fen, whole) = if plain {
        // exact, digit by digit: 1.005 is 1.01, not the 1.00 of a binary float
        let (int, frac) = text.split_once('.').unwrap_or((text, ""));
        if frac.contains('.') || (int.is_empty() && frac.is_empty()) || int.len() > 12 {
            return None;
        }
        let int: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
        let digit = |i: usize| {
            frac.as_bytes()
                .get(i)
                .map_or(0, |b| i64::from(b.saturating_sub(b'0')))
        };
        let mut fen = int * 100 + digit(0) * 10 + digit(1);
        if digit(2) >= 5 {
            fen += 1;
        }
        (fen, frac.trim_end_matches('0').len() <= 2)
    } else {
        // exponent notation (`1e+20`): the float is all there is
        let value: f64 = text.parse().ok()?;
        if !value.is_finite() || value < 0.0 || value > AMOUNT_MAX_FEN as f64 / 100.0 {
            return None;
        }
        let fen = (value * 100.0).round();
        (fen as i64, (value * 100.0 - fen).abs() < 1e-6)
    };
    (fen <= AMOUNT_MAX_FEN).then_some((fen, whole))
}

/// Maps the old server's users and transactions (the log rows are mapped
/// one at a time by [`log_event`]). `now` stands for a missing creation
/// time.
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
        match member(u, tz, now) {
            Ok(m) => {
                if m.password.is_some() {
                    out.clear_passwords += 1;
                } else {
                    out.default_passwords += 1;
                }
                known.insert(u.id);
                out.members.push(m);
            }
            Err(why) => out.refused.push(format!("users id {}: {why}", u.id)),
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
        let Some((fen, whole)) = amount_to_fen(&t.amount) else {
            out.refused
                .push(format!("{line}: amount {:?} is not money", t.amount));
            continue;
        };
        if !whole {
            out.notes.push(format!(
                "{line}: amount {} was not a whole fen; recorded as {}.{:02}",
                t.amount.trim(),
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
            .map(|c| local_instant(c, tz))
            .or_else(|| t.valid_from.map(|d| local_day_start(d, tz)))
            .unwrap_or(now);
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
                span: span(t, tz),
            },
        ));
    }
    out
}

/// A transaction's span: from the start of `valid_from` to the end of
/// `valid_until`, in `tz`.
fn span(t: &LegacyTransaction, tz: Tz) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    match (t.valid_from, t.valid_until) {
        (Some(from), Some(until)) if from <= until => Some((
            local_day_start(from, tz),
            local_day_start(until.succ_opt()?, tz),
        )),
        _ => None,
    }
}

/// One user, or why not.
fn member(u: &LegacyUser, tz: Tz, now: DateTime<Utc>) -> Result<LegacyMember, String> {
    let openid = OpenId::parse(&u.openid).map_err(|e| format!("openid: {e}"))?;
    let nickname = NickName::parse(&u.username).map_err(|e| format!("username: {e}"))?;
    let tag = Tag::from_role_number(u.role).map_err(|e| format!("role: {e}"))?;
    let tags = Tags::from_stored(tag.name()).map_err(|e| format!("role: {e}"))?;
    let rfid = match u.rfid.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(r) => Some(Rfid::parse(r).map_err(|e| format!("rfid: {e}"))?),
    };
    let email = parse_email(u.email.as_deref().unwrap_or("")).map_err(|e| format!("email: {e}"))?;
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
        .filter(|p| !p.is_empty() && *p != crate::password::DEFAULT_PASSWORD)
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
        created: u.create_time.map_or(now, |t| local_instant(t, tz)),
        deactivated: u.status.trim().eq_ignore_ascii_case("INVALID"),
        password,
    })
}

/// The name a log message gives: the text before ` - `, after an optional
/// `Welcome ` (`Welcome 小明 - QR V2` names `小明`).
pub fn log_member_name(message: &str) -> &str {
    let m = message.trim();
    let m = match m.get(..8) {
        Some(p) if p.eq_ignore_ascii_case("welcome ") => &m[8..],
        _ => m,
    };
    m.split(" - ").next().unwrap_or("").trim()
}

/// What becomes of a log row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFate {
    /// A historical access event.
    Event(NewAccessEvent),
    /// An `OPEN` or `NOT_OK` row whose message names no imported member.
    Unidentified,
    /// Another type (`ERROR`, `WARNING`, `INFO`…), or a row without a time.
    Skipped,
}

/// The access event for a log row at `door`; `member` is the member its
/// message names ([`log_member_name`]), if one was imported.
pub fn log_event(row: &LegacyLogRow, member: Option<MemberId>, door: &str) -> LogFate {
    let (outcome, reason) = match row.kind.trim().to_ascii_uppercase().as_str() {
        "OPEN" => (Outcome::Granted, "legacy_open"),
        "NOT_OK" => (Outcome::Refused, "legacy_not_ok"),
        _ => return LogFate::Skipped,
    };
    let Some(at) = row.at else {
        return LogFate::Skipped;
    };
    let Some(member) = member else {
        return LogFate::Unidentified;
    };
    LogFate::Event(
        NewAccessEvent::new(at, door, AccessMethod::Legacy, outcome, reason)
            .for_member(member)
            .detail(format!("{}{}: {}", LOG_DETAIL, row.id, row.message.trim())),
    )
}

/// How an imported event's detail begins: `tb_log 1234: Welcome …`.
const LOG_DETAIL: &str = "tb_log ";

/// Members whose expiry here would differ from the old server's
/// `max(valid_until)`, each with why: one line per member. Validity is
/// computed from the planned payments alone (no entries: imported history
/// spends no entry day).
pub fn expiry_differences(
    plan: &LegacyPlan,
    transactions: &[LegacyTransaction],
    plans: &Plans,
    tz: Tz,
    now: DateTime<Utc>,
) -> Vec<String> {
    let mut paid: HashMap<i64, Vec<Payment>> = HashMap::new();
    for (i, (member, p)) in plan.payments.iter().enumerate() {
        paid.entry(member.0).or_default().push(Payment {
            id: i as i64 + 1,
            pay_index: p.pay_index.clone(),
            amount: p.amount,
            pay_type: p.pay_type.clone(),
            paid_at: p.paid_at,
            until_days: p.until_days,
            span: p.span,
            recorded_at: p.paid_at,
        });
    }
    // the old expiry, and the transaction that set it
    let mut old: BTreeMap<i64, &LegacyTransaction> = BTreeMap::new();
    for t in transactions {
        if let Some(until) = t.valid_until {
            let best = old.entry(t.member_id).or_insert(t);
            if best.valid_until.is_none_or(|b| until > b) {
                *best = t;
            }
        }
    }
    let mut out = Vec::new();
    for m in &plan.members {
        let payments = paid.get(&m.id.0).map(Vec::as_slice).unwrap_or(&[]);
        let history = History {
            deactivated: false,
            payments,
            entries: &[],
            vip: &[],
        };
        let here = evaluate(history, plans, tz, now)
            .valid_until
            .map(|end| local_date(end - chrono::Duration::seconds(1), tz));
        let before = old.get(&m.id.0).copied();
        let there = before.and_then(|t| t.valid_until);
        if here == there {
            continue;
        }
        let day = |d: Option<NaiveDate>| d.map_or_else(|| "none".to_owned(), |d| d.to_string());
        let why = match before {
            None => "the old server had no valid_until for them; here their payments \
                     without dates run from their payment time"
                .to_owned(),
            Some(t) => {
                let recorded = payments
                    .iter()
                    .any(|p| p.pay_index.as_str() == format!("legacy-{}", t.id));
                match plans.get(&t.kind).map(|p| p.grant) {
                    _ if !recorded => {
                        format!("transactions id {} (which set it) was refused", t.id)
                    }
                    Err(_) => format!(
                        "transactions id {} (which set it) has type {:?}, not in the plan \
                         catalogue: it grants nothing here",
                        t.id, t.kind
                    ),
                    Ok(Grant::Nothing) => format!(
                        "transactions id {} (which set it) is a {}, which grants no door access",
                        t.id, t.kind
                    ),
                    Ok(Grant::ToolRoom { .. }) => format!(
                        "transactions id {} (which set it) is a {}: the tool room, not the door",
                        t.id, t.kind
                    ),
                    Ok(_) if t.valid_from.is_none_or(|f| Some(f) > t.valid_until) => format!(
                        "transactions id {} (which set it) has no usable valid_from",
                        t.id
                    ),
                    Ok(_) => "payments without dates run from their payment time \
                              and stack after the dated ones"
                        .to_owned(),
                }
            }
        };
        out.push(format!(
            "users id {}: old expiry {}, here {}: {why}",
            m.id.0,
            day(there),
            day(here)
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

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    #[test]
    fn amounts_round_to_the_fen_on_their_digits_and_odd_ones_are_reported() {
        assert_eq!(amount_to_fen("200"), Some((20000, true)));
        assert_eq!(amount_to_fen("200.000"), Some((20000, true)));
        assert_eq!(amount_to_fen(" 199.99 "), Some((19999, true)));
        assert_eq!(amount_to_fen("199.99000000001"), Some((19999, false)));
        assert_eq!(amount_to_fen("0.005"), Some((1, false)));
        // a binary float would make this 1.00
        assert_eq!(amount_to_fen("1.005"), Some((101, false)));
        assert_eq!(amount_to_fen(".5"), Some((50, true)));
        assert_eq!(amount_to_fen("1e+02"), Some((10000, true)));
        assert_eq!(amount_to_fen("1.2345e+02"), Some((12345, true)));
        for bad in [
            "-1",
            "",
            ".",
            "1.2.3",
            "abc",
            "NaN",
            "inf",
            "1e+20",
            "9999999999999",
        ] {
            assert_eq!(amount_to_fen(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn users_and_transactions_map_with_their_ids_roles_spans_and_passwords() {
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
                amount: "199.99000000001".into(),
                valid_from: Some(day("2018-03-01")),
                valid_until: Some(day("2018-03-31")),
                created_on: Some(day("2018-03-02").and_hms_opt(10, 0, 0).unwrap()),
            },
            LegacyTransaction {
                id: 2,
                member_id: 7,
                kind: "LASER CUTTER".into(),
                amount: "30".into(),
                ..LegacyTransaction::default()
            },
            LegacyTransaction {
                id: 3,
                member_id: 11,
                kind: "1M MEMBERSHIP".into(),
                amount: "200".into(),
                ..LegacyTransaction::default()
            },
        ];
        let plan = plan(
            &[admin, gone, bad],
            &transactions,
            &Plans::standard(),
            TZ,
            now(),
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

    #[test]
    fn a_clear_password_never_shows_in_debug_output() {
        let mut u = user(1, "o-1", "One");
        u.passwd = Some("xcj-secret-2016".into());
        assert!(!format!("{u:?}").contains("xcj-secret-2016"));
        let plan = plan(&[u], &[], &Plans::standard(), TZ, now());
        assert_eq!(plan.members[0].password.as_deref(), Some("xcj-secret-2016"));
        assert!(!format!("{plan:?}").contains("xcj-secret-2016"), "{plan:?}");
    }

    #[test]
    fn log_rows_name_their_member_and_become_legacy_events() {
        assert_eq!(log_member_name("Welcome 小明 🚪 - QR V2"), "小明 🚪");
        assert_eq!(log_member_name("welcome Bob"), "Bob");
        assert_eq!(log_member_name("Bob - expired"), "Bob");
        assert_eq!(log_member_name("  "), "");
        let at = Some(now());
        let row = |kind: &str| LegacyLogRow {
            id: 42,
            kind: kind.into(),
            code: Some(0),
            message: "Welcome Bob - QR V2".into(),
            at,
        };
        let LogFate::Event(open) = log_event(&row("OPEN"), Some(MemberId(3)), "front") else {
            panic!("an OPEN row naming a member is an event");
        };
        assert_eq!(
            (open.method, open.outcome, open.member, open.door.as_str()),
            (
                AccessMethod::Legacy,
                Outcome::Granted,
                Some(MemberId(3)),
                "front"
            )
        );
        assert!(
            open.detail.starts_with("tb_log 42: Welcome"),
            "{}",
            open.detail
        );
        let LogFate::Event(refused) = log_event(&row("not_ok"), Some(MemberId(3)), "front") else {
            panic!("a NOT_OK row naming a member is an event");
        };
        assert_eq!(refused.outcome, Outcome::Refused);
        assert_eq!(
            log_event(&row("OPEN"), None, "front"),
            LogFate::Unidentified
        );
        assert_eq!(
            log_event(&row("INFO"), Some(MemberId(3)), "front"),
            LogFate::Skipped
        );
        let timeless = LegacyLogRow {
            at: None,
            ..row("OPEN")
        };
        assert_eq!(
            log_event(&timeless, Some(MemberId(3)), "f"),
            LogFate::Skipped
        );
    }

    #[test]
    fn the_expiry_here_is_the_old_max_valid_until_and_differences_say_why() {
        let t = |id, member, kind: &str, from: &str, until: &str| LegacyTransaction {
            id,
            member_id: member,
            kind: kind.into(),
            amount: "100".into(),
            valid_from: Some(day(from)),
            valid_until: Some(day(until)),
            created_on: Some(day(from).and_hms_opt(12, 0, 0).unwrap()),
        };
        let transactions = [
            // overlapping periods: the later end wins
            t(1, 1, "6M MEMBERSHIP", "2018-01-01", "2018-06-30"),
            t(2, 1, "1M MEMBERSHIP", "2018-03-01", "2018-03-31"),
            t(3, 1, "1M MEMBERSHIP", "2018-06-15", "2018-07-14"),
            // a donation that carried the latest valid_until
            t(4, 2, "1M MEMBERSHIP", "2018-01-01", "2018-01-31"),
            t(5, 2, "DONATION", "2018-01-01", "2018-12-31"),
        ];
        let users = [user(1, "o-1", "One"), user(2, "o-2", "Two")];
        let plans = Plans::standard();
        let plan = plan(&users, &transactions, &plans, TZ, now());
        let diffs = expiry_differences(&plan, &transactions, &plans, TZ, now());
        assert_eq!(diffs.len(), 1, "{diffs:?}");
        assert!(
            diffs[0].starts_with("users id 2: old expiry 2018-12-31, here 2018-01-31")
                && diffs[0].contains("grants no door access"),
            "{}",
            diffs[0]
        );
    }
}
