//! The access log: who opened the door, who was refused, what the door did.
//!
//! An event is written *before* the door moves, so a crash between the two
//! leaves a logged grant and a locked door, never an unlogged opening.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::ids::MemberId;
use crate::member::Payment;
use crate::Invalid;

/// How an event came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessMethod {
    /// `POST /api/v1.0/open/seconds` with an API key.
    Api,
    /// A member's QR code at the door.
    Qr,
    /// A member's RFID card at the door.
    Rfid,
    /// Staff, from the command line (`zhima door test`).
    Manual,
    /// The door itself (held open, hardware faults).
    Door,
    /// History imported from the old server's log (`zhima import
    /// zhima-legacy`): shown in the log, never spends an entry day.
    Legacy,
}

impl AccessMethod {
    /// Every method.
    pub const ALL: [AccessMethod; 6] = [
        AccessMethod::Api,
        AccessMethod::Qr,
        AccessMethod::Rfid,
        AccessMethod::Manual,
        AccessMethod::Door,
        AccessMethod::Legacy,
    ];

    /// The stored and wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AccessMethod::Api => "api",
            AccessMethod::Qr => "qr",
            AccessMethod::Rfid => "rfid",
            AccessMethod::Manual => "manual",
            AccessMethod::Door => "door",
            AccessMethod::Legacy => "legacy",
        }
    }

    /// The method from its name.
    pub fn parse(text: &str) -> Result<AccessMethod, Invalid> {
        AccessMethod::ALL
            .into_iter()
            .find(|m| m.as_str() == text)
            .ok_or_else(|| Invalid::new(format!("unknown access method {text:?}")))
    }
}

impl fmt::Display for AccessMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What came of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The door was told to unlock.
    Granted,
    /// The request was refused; the door did not move.
    Refused,
    /// Something the door reported (held open).
    Event,
    /// The hardware failed; the door was driven to locked.
    Fault,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 4] = [
        Outcome::Granted,
        Outcome::Refused,
        Outcome::Event,
        Outcome::Fault,
    ];

    /// The stored and wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Granted => "granted",
            Outcome::Refused => "refused",
            Outcome::Event => "event",
            Outcome::Fault => "fault",
        }
    }

    /// The outcome from its name.
    pub fn parse(text: &str) -> Result<Outcome, Invalid> {
        Outcome::ALL
            .into_iter()
            .find(|m| m.as_str() == text)
            .ok_or_else(|| Invalid::new(format!("unknown outcome {text:?}")))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest `detail` kept (longer text is cut at a character boundary).
pub const DETAIL_MAX: usize = 200;

/// An event to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccessEvent {
    /// When.
    pub at: DateTime<Utc>,
    /// Which door (`door.name` in the configuration).
    pub door: String,
    /// How.
    pub method: AccessMethod,
    /// What came of it.
    pub outcome: Outcome,
    /// A short code: `api_unlock`, `bad_seconds`, `door_held_open`, `door_fault`…
    pub reason: String,
    /// The member concerned, if any.
    pub member: Option<MemberId>,
    /// The API key that asked, if any.
    pub api_key: Option<i64>,
    /// Free text for people (never a secret), at most [`DETAIL_MAX`] bytes.
    pub detail: String,
}

impl NewAccessEvent {
    /// An event with no member, key or detail.
    pub fn new(
        at: DateTime<Utc>,
        door: &str,
        method: AccessMethod,
        outcome: Outcome,
        reason: &str,
    ) -> NewAccessEvent {
        NewAccessEvent {
            at,
            door: door.to_owned(),
            method,
            outcome,
            reason: reason.to_owned(),
            member: None,
            api_key: None,
            detail: String::new(),
        }
    }

    /// Sets the API key.
    pub fn by_key(mut self, key: i64) -> NewAccessEvent {
        self.api_key = Some(key);
        self
    }

    /// Sets the member.
    pub fn for_member(mut self, member: MemberId) -> NewAccessEvent {
        self.member = Some(member);
        self
    }

    /// Sets the detail, cut to [`DETAIL_MAX`] bytes.
    pub fn detail(mut self, detail: impl Into<String>) -> NewAccessEvent {
        let mut detail: String = detail.into();
        if detail.len() > DETAIL_MAX {
            let mut end = DETAIL_MAX;
            while !detail.is_char_boundary(end) {
                end -= 1;
            }
            detail.truncate(end);
        }
        self.detail = detail;
        self
    }

    /// Whether this event is a member coming in (it counts as activity and
    /// spends entry days).
    pub fn is_member_entry(&self) -> bool {
        self.member.is_some() && self.outcome == Outcome::Granted
    }
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEvent {
    /// Database ID, increasing with time of recording.
    pub id: i64,
    /// The event.
    pub event: NewAccessEvent,
}

/// What a member did last: their latest granted entry or payment, whichever
/// is later, with the `lastActiveType` text of the Member JSON.
pub fn last_active(
    payments: &[Payment],
    entries: &[DateTime<Utc>],
) -> Option<(DateTime<Utc>, String)> {
    let payment = payments
        .iter()
        .max_by_key(|p| (p.paid_at, p.id))
        .map(|p| (p.paid_at, format!("Paid {}", p.pay_type)));
    let entry = entries
        .iter()
        .max()
        .map(|at| (*at, "Open the door".to_owned()));
    match (payment, entry) {
        (Some(p), Some(e)) => Some(if e.0 > p.0 { e } else { p }),
        (p, e) => p.or(e),
    }
}

/// The door API's rule for the seconds asked: a whole number from 1 to
/// `max`.
pub fn unlock_seconds(asked: i128, max: u32) -> Result<Duration, Invalid> {
    match u32::try_from(asked) {
        Ok(n) if (1..=max).contains(&n) => Ok(Duration::from_secs(u64::from(n))),
        _ => Err(Invalid::new(format!(
            "seconds must be a whole number from 1 to {max}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::PayIndex;
    use crate::money::Fen;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).unwrap()
    }

    fn payment(id: i64, at: i64) -> Payment {
        Payment {
            id,
            pay_index: PayIndex::parse(&format!("P{id}")).unwrap(),
            amount: Fen::from_fen(100).unwrap(),
            pay_type: "1M MEMBERSHIP".into(),
            paid_at: t(at),
            until_days: None,
            span: None,
            recorded_at: t(at),
        }
    }

    #[test]
    fn names_round_trip() {
        for m in AccessMethod::ALL {
            assert_eq!(AccessMethod::parse(m.as_str()), Ok(m));
        }
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Ok(o));
        }
        assert!(AccessMethod::parse("API").is_err());
        assert!(Outcome::parse("").is_err());
    }

    #[test]
    fn last_active_is_the_later_of_entry_and_payment() {
        assert_eq!(last_active(&[], &[]), None);
        let p = [payment(1, 100), payment(2, 300)];
        assert_eq!(
            last_active(&p, &[]),
            Some((t(300), "Paid 1M MEMBERSHIP".into()))
        );
        assert_eq!(
            last_active(&p, &[t(200), t(400), t(50)]),
            Some((t(400), "Open the door".into()))
        );
        assert_eq!(
            last_active(&p, &[t(200)]),
            Some((t(300), "Paid 1M MEMBERSHIP".into()))
        );
        assert_eq!(
            last_active(&[], &[t(7)]),
            Some((t(7), "Open the door".into()))
        );
    }

    #[test]
    fn seconds_are_whole_and_bounded() {
        assert_eq!(unlock_seconds(1, 30), Ok(Duration::from_secs(1)));
        assert_eq!(unlock_seconds(30, 30), Ok(Duration::from_secs(30)));
        for bad in [0, -1, 31, 99_998, i128::from(u64::MAX) + 1] {
            let err = unlock_seconds(bad, 30).unwrap_err();
            assert_eq!(err.reason(), "seconds must be a whole number from 1 to 30");
        }
    }

    #[test]
    fn detail_is_cut_at_a_character_boundary() {
        let e = NewAccessEvent::new(t(0), "front", AccessMethod::Api, Outcome::Granted, "x")
            .detail("门".repeat(100));
        assert!(e.detail.len() <= DETAIL_MAX);
        assert!(e.detail.chars().all(|c| c == '门'));
        assert_eq!(e.detail.chars().count(), DETAIL_MAX / 3);
    }
}
