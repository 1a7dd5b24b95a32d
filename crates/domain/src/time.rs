//! Wall-clock timestamps of the wire format (`YYYYMMDDHHMM`) in the space's
//! time zone, and calendar arithmetic in that zone.
//!
//! Everything is stored and computed in UTC; local time exists only at the
//! edges (parsing and formatting) and for calendar steps ("one month later"),
//! which are taken on the local wall clock.

use chrono::{
    DateTime, Datelike, Days, LocalResult, Months, NaiveDate, NaiveDateTime, TimeZone,
    Timelike as _, Utc,
};
use chrono_tz::Tz;

use crate::Invalid;

/// Where the current time comes from. The domain never reads a clock; the
/// layers that need "now" are given one of these (the server passes the
/// system clock, tests a clock they move by hand).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The default time zone of the space (XinCheJian, Shanghai).
pub const DEFAULT_TIMEZONE: Tz = chrono_tz::Asia::Shanghai;

/// Parses a time zone name such as `Asia/Shanghai`.
pub fn parse_timezone(name: &str) -> Result<Tz, Invalid> {
    name.parse::<Tz>()
        .map_err(|_| Invalid::new(format!("unknown time zone {name:?}")))
}

/// Parses a `YYYYMMDDHHMM` wall-clock time in zone `tz` into an instant.
///
/// Exactly twelve ASCII digits; the date and time must exist. A wall time
/// that occurs twice (clocks turned back) takes the earlier instant; one that
/// does not exist (clocks turned forward) is refused.
///
/// ```
/// use zhima_domain::time::{parse_local_timestamp, DEFAULT_TIMEZONE};
/// let t = parse_local_timestamp("201803121929", DEFAULT_TIMEZONE).unwrap();
/// assert_eq!(t.to_rfc3339(), "2018-03-12T11:29:00+00:00");
/// ```
pub fn parse_local_timestamp(text: &str, tz: Tz) -> Result<DateTime<Utc>, Invalid> {
    if text.len() != 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Invalid::new(format!(
            "expected 12 digits YYYYMMDDHHMM, got {:?}",
            truncate(text, 40)
        )));
    }
    let naive = NaiveDateTime::parse_from_str(text, "%Y%m%d%H%M")
        .map_err(|_| Invalid::new(format!("{text:?} is not a real date and time")))?;
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(early, _) => Ok(early.with_timezone(&Utc)),
        LocalResult::None => Err(Invalid::new(format!(
            "{text:?} does not exist in time zone {}",
            tz.name()
        ))),
    }
}

/// The earliest `paidTime` accepted: 1 January 2000, 00:00.
pub const EARLIEST_PAID: &str = "200001010000";
/// The latest `paidTime` accepted: 31 December 2099, 23:59.
pub const LATEST_PAID: &str = "209912312359";

/// [`parse_local_timestamp`] for a payment time: refused outside the years
/// 2000 to 2099, where no real payment of the space lies, so the computed
/// ends stay far inside what the wire format can write.
pub fn parse_paid_time(text: &str, tz: Tz) -> Result<DateTime<Utc>, Invalid> {
    let t = parse_local_timestamp(text, tz)?;
    let local = t.with_timezone(&tz).naive_local();
    if !(2000..=2099).contains(&local.year()) {
        return Err(Invalid::new(format!(
            "{text:?} is outside {EARLIEST_PAID}..{LATEST_PAID}"
        )));
    }
    Ok(t)
}

/// Formats an instant as `YYYYMMDDHHMM` on the wall clock of zone `tz`.
///
/// Seconds are dropped (truncated), as the wire format has minute precision.
/// Always 12 digits: an instant past the year 9999 is written
/// `999912312359`, one before the year 0 `000001010000`.
pub fn format_local_timestamp(t: DateTime<Utc>, tz: Tz) -> String {
    let local = t.with_timezone(&tz);
    match local.year() {
        y if y > 9999 => "999912312359".to_owned(),
        y if y < 0 => "000001010000".to_owned(),
        // written out, not `format("%Y%m%d%H%M")`, which parses its
        // pattern on every call (a member read writes up to five of these)
        y => format!(
            "{y:04}{:02}{:02}{:02}{:02}",
            local.month(),
            local.day(),
            local.hour(),
            local.minute()
        ),
    }
}

/// `t` as people read it in `tz`: `YYYY-MM-DD HH:MM` (the pages, the emails).
pub fn format_local_minute(t: DateTime<Utc>, tz: Tz) -> String {
    let s = format_local_timestamp(t, tz);
    format!(
        "{}-{}-{} {}:{}",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[8..10],
        &s[10..12]
    )
}

/// The start of `date`'s local day in `tz` (where the zone skips midnight,
/// the day's first existing instant).
pub fn local_day_start(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    local_instant(date.and_time(chrono::NaiveTime::MIN), tz)
}

/// The local calendar date of an instant in zone `tz`.
pub fn local_date(t: DateTime<Utc>, tz: Tz) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

/// A length of time measured on the local calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CalendarSpan {
    /// Calendar months: the same day of month and wall time, `n` months on,
    /// clamped to the last day of a shorter month (31 Jan + 1 month = 28/29 Feb).
    Months(u32),
    /// Calendar days: the same wall time, `n` dates on.
    Days(u32),
}

impl CalendarSpan {
    /// The instant `self` after `start`, stepping the wall clock of `tz`.
    ///
    /// Saturates at the largest representable date instead of failing. If the
    /// resulting wall time does not exist (a DST gap), the first instant after
    /// the gap is used.
    pub fn after(self, start: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        let local = start.with_timezone(&tz).naive_local();
        let stepped = match self {
            CalendarSpan::Months(n) => local.checked_add_months(Months::new(n)),
            CalendarSpan::Days(n) => local.checked_add_days(Days::new(u64::from(n))),
        };
        let Some(stepped) = stepped else {
            return DateTime::<Utc>::MAX_UTC;
        };
        local_instant(stepped, tz)
    }

    /// [`CalendarSpan::after`] for a period that continues a stacked line
    /// which began at `anchor`: a month step keeps the anchor's day of month
    /// where the month has it, so clamping in a short month does not carry
    /// over (two months stacked from 31 Jan end on 31 Mar, not 28 Mar). Day
    /// steps are plain.
    pub fn after_anchored(
        self,
        start: DateTime<Utc>,
        anchor: DateTime<Utc>,
        tz: Tz,
    ) -> DateTime<Utc> {
        let end = self.after(start, tz);
        let CalendarSpan::Months(_) = self else {
            return end;
        };
        if end == DateTime::<Utc>::MAX_UTC {
            return end;
        }
        let local = end.with_timezone(&tz).naive_local();
        let want = anchor.with_timezone(&tz).day();
        let last = last_day_of_month(local.date());
        let day = want.min(last);
        if day <= local.day() {
            return end;
        }
        match local.with_day(day) {
            Some(moved) => local_instant(moved, tz),
            None => end,
        }
    }
}

/// The number of the last day of `date`'s month.
fn last_day_of_month(date: chrono::NaiveDate) -> u32 {
    (28..=31)
        .rev()
        .find(|d| date.with_day(*d).is_some())
        .unwrap_or(28)
}

/// Turns a local wall time into an instant, taking the earlier of two
/// candidates and skipping forward over a gap.
pub fn local_instant(naive: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    let mut probe = naive;
    // A DST gap is at most a few hours; step a quarter hour at a time.
    for _ in 0..16 {
        if let Some(t) = tz.from_local_datetime(&probe).earliest() {
            return t.with_timezone(&Utc);
        }
        probe += chrono::Duration::minutes(15);
    }
    // Unreachable for real zones: fall back to reading the wall time as UTC.
    Utc.from_utc_datetime(&naive)
}

/// Whether `year` is a leap year in the Gregorian calendar.
pub fn is_leap_year(year: i32) -> bool {
    NaiveDate::from_ymd_opt(year, 2, 29).is_some_and(|d| d.year() == year)
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

#[cfg(test)]
mod paid_time_tests {
    use super::*;

    #[test]
    fn paid_times_lie_in_this_century_and_the_wire_stays_12_digits() {
        let tz = DEFAULT_TIMEZONE;
        assert!(parse_paid_time(EARLIEST_PAID, tz).is_ok());
        assert!(parse_paid_time(LATEST_PAID, tz).is_ok());
        for bad in [
            "199912312359",
            "210001010000",
            "000001010000",
            "999912312359",
        ] {
            let e = parse_paid_time(bad, tz).unwrap_err();
            assert!(e.reason().contains("outside"), "{bad}: {e}");
        }
        assert_eq!(
            format_local_timestamp(DateTime::<Utc>::MAX_UTC, tz),
            "999912312359"
        );
        assert_eq!(
            format_local_timestamp(DateTime::<Utc>::MIN_UTC, tz),
            "000001010000"
        );
        let far =
            CalendarSpan::Months(12 * 8000).after(parse_paid_time(LATEST_PAID, tz).unwrap(), tz);
        assert_eq!(format_local_timestamp(far, tz).len(), 12);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_local_day_starts_at_midnight_or_at_its_first_instant() {
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            local_day_start(day("2018-03-01"), chrono_tz::Asia::Shanghai).to_rfc3339(),
            "2018-02-28T16:00:00+00:00"
        );
        // São Paulo skipped from 00:00 to 01:00 (-02:00) on 4 November 2018
        assert_eq!(
            local_day_start(day("2018-11-04"), chrono_tz::America::Sao_Paulo).to_rfc3339(),
            "2018-11-04T03:00:00+00:00"
        );
    }

    #[test]
    fn parses_in_the_configured_zone() {
        let t = parse_local_timestamp("201505011522", DEFAULT_TIMEZONE).unwrap();
        assert_eq!(t, utc("2015-05-01T07:22:00Z"));
        let t = parse_local_timestamp("201505011522", chrono_tz::UTC).unwrap();
        assert_eq!(t, utc("2015-05-01T15:22:00Z"));
        // midnight local is the previous day in UTC
        let t = parse_local_timestamp("202401010000", DEFAULT_TIMEZONE).unwrap();
        assert_eq!(t, utc("2023-12-31T16:00:00Z"));
    }

    #[test]
    fn format_is_the_inverse_of_parse() {
        for s in [
            "201803121929",
            "202402292359",
            "199912312359",
            "203801190314",
        ] {
            let t = parse_local_timestamp(s, DEFAULT_TIMEZONE).unwrap();
            assert_eq!(format_local_timestamp(t, DEFAULT_TIMEZONE), s);
        }
    }

    #[test]
    fn refuses_malformed_text() {
        for bad in [
            "",
            "2018031219",
            "2018031219290",
            "20180312192a",
            "2018-03-12 19",
            "２０１８０３１２１９２９",
            "201802301200", // 30 February
            "201813011200", // month 13
            "201803122400", // hour 24
            "201803121960", // minute 60
            "201902291200", // 2019 is not a leap year
            " 201803121929",
        ] {
            assert!(
                parse_local_timestamp(bad, DEFAULT_TIMEZONE).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(parse_local_timestamp("202002291200", DEFAULT_TIMEZONE).is_ok());
    }

    #[test]
    fn dst_gap_is_refused_and_overlap_takes_the_earlier() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // 2024-03-10 02:30 does not exist in New York
        assert!(parse_local_timestamp("202403100230", ny).is_err());
        // 2024-11-03 01:30 happens twice; the first is EDT (UTC-4)
        let t = parse_local_timestamp("202411030130", ny).unwrap();
        assert_eq!(t, utc("2024-11-03T05:30:00Z"));
    }

    #[test]
    fn month_steps_clamp_to_month_end_and_know_leap_years() {
        let tz = DEFAULT_TIMEZONE;
        let jan31 = parse_local_timestamp("202401311000", tz).unwrap();
        let feb = CalendarSpan::Months(1).after(jan31, tz);
        assert_eq!(format_local_timestamp(feb, tz), "202402291000");
        let jan31_2023 = parse_local_timestamp("202301311000", tz).unwrap();
        assert_eq!(
            format_local_timestamp(CalendarSpan::Months(1).after(jan31_2023, tz), tz),
            "202302281000"
        );
        let aug31 = parse_local_timestamp("202308312359", tz).unwrap();
        assert_eq!(
            format_local_timestamp(CalendarSpan::Months(6).after(aug31, tz), tz),
            "202402292359"
        );
        let leap_day = parse_local_timestamp("202402291200", tz).unwrap();
        assert_eq!(
            format_local_timestamp(CalendarSpan::Months(12).after(leap_day, tz), tz),
            "202502281200"
        );
        // a month step is taken on the local calendar, not in UTC: local
        // midnight of 1 March is still 29 February in UTC
        let mar1 = parse_local_timestamp("202403010000", tz).unwrap();
        assert_eq!(
            format_local_timestamp(CalendarSpan::Months(1).after(mar1, tz), tz),
            "202404010000"
        );
    }

    #[test]
    fn day_steps_keep_the_wall_time_across_dst() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let before = parse_local_timestamp("202403091200", ny).unwrap();
        let after = CalendarSpan::Days(1).after(before, ny);
        assert_eq!(format_local_timestamp(after, ny), "202403101200");
        // only 23 hours passed in UTC
        assert_eq!((after - before).num_hours(), 23);
        let d = parse_local_timestamp("202412311800", DEFAULT_TIMEZONE).unwrap();
        assert_eq!(
            format_local_timestamp(
                CalendarSpan::Days(1).after(d, DEFAULT_TIMEZONE),
                DEFAULT_TIMEZONE
            ),
            "202501011800"
        );
    }

    #[test]
    fn huge_steps_saturate_instead_of_panicking() {
        let t = parse_local_timestamp("202401010000", DEFAULT_TIMEZONE).unwrap();
        assert_eq!(
            CalendarSpan::Months(u32::MAX).after(t, DEFAULT_TIMEZONE),
            DateTime::<Utc>::MAX_UTC
        );
        assert_eq!(
            CalendarSpan::Days(u32::MAX).after(t, DEFAULT_TIMEZONE),
            DateTime::<Utc>::MAX_UTC
        );
    }

    #[test]
    fn leap_years() {
        assert!(is_leap_year(2024));
        assert!(is_leap_year(2000));
        assert!(!is_leap_year(1900));
        assert!(!is_leap_year(2023));
    }

    #[test]
    fn time_zone_names() {
        assert_eq!(parse_timezone("Asia/Shanghai").unwrap(), DEFAULT_TIMEZONE);
        assert!(parse_timezone("Mars/Olympus").is_err());
    }
}
