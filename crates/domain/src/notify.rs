//! Which notices are due, and the key that makes each one happen once.
//!
//! A notice is about one thing that ends (a membership line, a VIP period,
//! an entry pack) at one instant. Its key names the member, the kind and
//! that instant, so the same notice is never queued twice, and a renewal,
//! which moves the end, makes the notices of the old end unreachable
//! rather than due.
//!
//! The daily sweep asks [`due_on`] for one local date. When sweeps were
//! missed, only the nearest reminder is due (the one whose window the date
//! falls in), so nobody gets two reminders at once; an end notice stays due
//! for [`END_GRACE_DAYS`] days after the end, then is dropped.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::time::local_date;

/// How many days after an end its notice may still be sent (a sweep missed
/// while the server was down).
pub const END_GRACE_DAYS: i64 = 2;

/// The reminder days when none are configured: a week before.
pub const DEFAULT_REMINDER_DAYS: [u32; 1] = [7];

/// The wait before delivery attempt `attempts + 1` of a message that
/// failed `attempts` times: `base`, twice that, four times…, at most 6
/// hours.
pub fn retry_backoff(base: chrono::Duration, attempts: u32) -> chrono::Duration {
    let factor = 1i32 << attempts.saturating_sub(1).min(16);
    (base * factor).min(chrono::Duration::hours(6))
}

/// What ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// The membership line (stacked memberships, passes).
    Membership,
    /// A VIP period bought through a partner.
    Vip,
}

impl Subject {
    /// `membership` or `vip`.
    pub const fn name(self) -> &'static str {
        match self {
            Subject::Membership => "membership",
            Subject::Vip => "vip",
        }
    }
}

/// What a notice says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Notice {
    /// `days` days before the end.
    Reminder {
        /// The configured day this reminder belongs to.
        days: u32,
    },
    /// On the day it ends.
    Ended,
}

/// A notice due for one end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// What ends.
    pub subject: Subject,
    /// Which notice.
    pub notice: Notice,
    /// When it ends.
    pub end: DateTime<Utc>,
}

impl Due {
    /// The kind as stored (`reminder-7`, `ended`).
    pub fn kind(&self) -> String {
        match self.notice {
            Notice::Reminder { days } => format!("reminder-{days}"),
            Notice::Ended => "ended".to_owned(),
        }
    }

    /// The key that makes this notice happen once for `member`:
    /// `<subject>:<kind>:<member>:<end, unix seconds>`.
    pub fn key(&self, member: i64) -> String {
        format!(
            "{}:{}:{member}:{}",
            self.subject.name(),
            self.kind(),
            self.end.timestamp()
        )
    }
}

/// The notices due on local date `today` for things ending at `ends`, with
/// reminders `days` days before (any order; 0 and duplicates ignored).
///
/// - A reminder for `n` days is due from `n` days before the end's local
///   date; of several whose windows have begun, only the one with the
///   fewest days (the nearest) is due.
/// - The end notice is due from the end's local date for
///   [`END_GRACE_DAYS`] days.
pub fn due_on(
    today: NaiveDate,
    ends: &[(Subject, DateTime<Utc>)],
    days: &[u32],
    tz: Tz,
) -> Vec<Due> {
    let mut days: Vec<u32> = days.iter().copied().filter(|d| *d > 0).collect();
    days.sort_unstable();
    days.dedup();
    let mut due = Vec::new();
    for &(subject, end) in ends {
        let end_date = local_date(end, tz);
        let before = (end_date - today).num_days();
        if before <= 0 {
            if -before <= END_GRACE_DAYS {
                due.push(Due {
                    subject,
                    notice: Notice::Ended,
                    end,
                });
            }
            continue;
        }
        // the nearest reminder whose window has begun
        if let Some(&n) = days.iter().find(|&&n| i64::from(n) >= before) {
            due.push(Due {
                subject,
                notice: Notice::Reminder { days: n },
                end,
            });
        }
    }
    due
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::time::parse_local_timestamp;

    const TZ: Tz = chrono_tz::Asia::Shanghai;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn notices(today: &str, end: &str, days: &[u32]) -> Vec<Notice> {
        let end = parse_local_timestamp(end, TZ).unwrap();
        due_on(day(today), &[(Subject::Membership, end)], days, TZ)
            .into_iter()
            .map(|d| d.notice)
            .collect()
    }

    #[test]
    fn retries_wait_twice_as_long_each_time_up_to_six_hours() {
        let minute = chrono::Duration::minutes(1);
        assert_eq!(retry_backoff(minute, 0), minute);
        assert_eq!(retry_backoff(minute, 1), minute);
        assert_eq!(retry_backoff(minute, 3), minute * 4);
        assert_eq!(retry_backoff(minute, 40), chrono::Duration::hours(6));
    }

    #[test]
    fn each_reminder_is_due_in_its_window_and_the_nearest_wins() {
        let end = "201804121930";
        assert_eq!(notices("2018-03-28", end, &[14, 3]), []);
        assert_eq!(
            notices("2018-03-29", end, &[14, 3]),
            [Notice::Reminder { days: 14 }]
        );
        assert_eq!(
            notices("2018-04-08", end, &[3, 14]),
            [Notice::Reminder { days: 14 }]
        );
        assert_eq!(
            notices("2018-04-09", end, &[14, 3, 3, 0]),
            [Notice::Reminder { days: 3 }]
        );
        assert_eq!(
            notices("2018-04-11", end, &[14, 3]),
            [Notice::Reminder { days: 3 }]
        );
        assert_eq!(notices("2018-04-12", end, &[14, 3]), [Notice::Ended]);
        assert_eq!(notices("2018-04-14", end, &[14, 3]), [Notice::Ended]);
        assert_eq!(notices("2018-04-15", end, &[14, 3]), []);
        assert_eq!(notices("2018-04-11", end, &[]), []);
    }

    #[test]
    fn the_key_names_member_subject_kind_and_end_so_a_renewal_moves_it() {
        let end = parse_local_timestamp("201804121930", TZ).unwrap();
        let later = parse_local_timestamp("201805121930", TZ).unwrap();
        let a = due_on(day("2018-04-09"), &[(Subject::Vip, end)], &[7], TZ);
        let b = due_on(day("2018-05-09"), &[(Subject::Vip, later)], &[7], TZ);
        assert_eq!(
            a[0].key(12),
            format!("vip:reminder-7:12:{}", end.timestamp())
        );
        assert_ne!(a[0].key(12), b[0].key(12));
        assert_ne!(a[0].key(12), a[0].key(13));
    }
}
