//! Validity: whether a member may enter now, computed from their payments.
//!
//! Nothing here is stored: validity is derived from the payment history every
//! time, so a payment recorded late (with an earlier `paidTime`) or twice by
//! two servers can never leave a stale end date behind.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::member::Payment;
use crate::partner::VipPeriod;
use crate::plan::{Grant, Plans};
use crate::time::local_date;

/// A member's status as the wire shows it in `basicInfo.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberStatus {
    /// Valid now: some paid period covers this instant.
    Ok,
    /// Not valid now (never paid, expired, or entry days used up).
    NotOk,
    /// Deactivated by staff; kept for history.
    Invalid,
}

impl MemberStatus {
    /// `OK`, `NOT_OK` or `INVALID`.
    pub const fn wire_name(self) -> &'static str {
        match self {
            MemberStatus::Ok => "OK",
            MemberStatus::NotOk => "NOT_OK",
            MemberStatus::Invalid => "INVALID",
        }
    }
}

/// What a member's history says at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validity {
    /// The status.
    pub status: MemberStatus,
    /// End of validity: the latest end of any period granting door access
    /// (memberships, passes, entry packs with days left). `None` if the member
    /// never had one. May lie in the past (expired) or future.
    pub valid_until: Option<DateTime<Utc>>,
    /// End of the stacked membership line, if any.
    pub membership_until: Option<DateTime<Utc>>,
    /// End of the stacked tool-room line, if any.
    pub tool_room_until: Option<DateTime<Utc>>,
    /// Entry days left in the packs usable now, if the member has any such pack.
    pub entry_days_left: Option<u32>,
}

/// The facts validity depends on.
#[derive(Debug, Clone, Copy)]
pub struct History<'a> {
    /// Whether staff deactivated the member.
    pub deactivated: bool,
    /// Every payment of the member, in any order.
    pub payments: &'a [Payment],
    /// The instants of the member's granted entries, in any order (spends
    /// entry days of entry packs).
    pub entries: &'a [DateTime<Utc>],
    /// The member's VIP periods (bought with tokens through a partner): each
    /// gives door access while it runs, like a membership period.
    pub vip: &'a [VipPeriod],
}

/// A line of stacked periods (memberships; the tool room): a period paid
/// before the line ends starts where it ends, and month steps keep the day
/// of month of the payment that began the line.
#[derive(Debug, Default)]
struct Line {
    /// (where the line began, where it ends now)
    state: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Line {
    /// Adds a period paid at `paid_at`: its start and end.
    fn stack(
        &mut self,
        paid_at: DateTime<Utc>,
        span: crate::time::CalendarSpan,
        tz: Tz,
    ) -> (DateTime<Utc>, DateTime<Utc>) {
        let (anchor, start) = match self.state {
            Some((anchor, end)) if paid_at <= end => (anchor, end),
            _ => (paid_at, paid_at),
        };
        let end = span.after_anchored(start, anchor, tz);
        self.state = Some((anchor, end));
        (start, end)
    }

    /// Adds a period with an explicit span (an imported payment): it covers
    /// `from`..`until` as it is, and the line ends at the later of its end
    /// and `until`, so periods paid later stack after both.
    fn place(
        &mut self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> (DateTime<Utc>, DateTime<Utc>) {
        self.state = Some(match self.state {
            Some((anchor, end)) if from <= end => (anchor, end.max(until)),
            _ => (from, until),
        });
        (from, until)
    }
}

#[derive(Debug)]
struct Pack {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    left: u32,
}

/// Computes a member's validity at `now`.
///
/// Rules:
/// - payments are taken in order of `paidTime` (then of recording);
/// - a membership period starts at the later of its payment time and the
///   current end of the membership line, and lasts its plan's calendar span
///   (or `until_days` days) on the wall clock of `tz`; month steps of a
///   stacked line keep the day of month the line began on (two months from
///   31 Jan end on 31 Mar: the first on 29 Feb or 28 Feb, the second on 31 Mar);
/// - a day pass covers its span from its payment time;
/// - an entry pack may be used on `days` distinct local days within its
///   window; each distinct day of entry spends one day from the usable pack
///   that ends first; further entries on an already spent day are free, and
///   so is an entry that a membership, pass or VIP period covers;
/// - tool-room periods stack on their own line and do not open the door;
/// - VIP periods open the door while they run (they do not move the end of
///   the membership line);
/// - payments for plans no longer configured grant nothing;
/// - a deactivated member is `INVALID` whatever they paid.
pub fn evaluate(history: History<'_>, plans: &Plans, tz: Tz, now: DateTime<Utc>) -> Validity {
    let mut access: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    let mut membership_until: Option<DateTime<Utc>> = None;
    let mut tool_room_until: Option<DateTime<Utc>> = None;
    let mut packs: Vec<Pack> = Vec::new();

    for span in timeline(history.payments, plans, tz) {
        match span.grant {
            SpanGrant::Membership => {
                access.push((span.start, span.end));
                membership_until = Some(span.end);
            }
            SpanGrant::DayPass => access.push((span.start, span.end)),
            SpanGrant::Entries(days) => packs.push(Pack {
                start: span.start,
                end: span.end,
                left: days,
            }),
            SpanGrant::ToolRoom => tool_room_until = Some(span.end),
        }
    }

    access.extend(history.vip.iter().map(|p| (p.start, p.end)));

    // Spend entry days: the first entry of each distinct local day.
    let today = local_date(now, tz);
    let mut spent_days: BTreeSet<NaiveDate> = BTreeSet::new();
    let mut entries: Vec<DateTime<Utc>> = history.entries.to_vec();
    entries.sort();
    for entry in entries {
        let day = local_date(entry, tz);
        if spent_days.contains(&day) {
            continue;
        }
        // an entry a membership, pass or VIP period already covers spends
        // nothing from a pack
        if access.iter().any(|&(s, e)| s <= entry && entry < e) {
            continue;
        }
        let pack = packs
            .iter_mut()
            .filter(|p| p.start <= entry && entry < p.end && p.left > 0)
            .min_by_key(|p| p.end);
        if let Some(pack) = pack {
            pack.left -= 1;
            spent_days.insert(day);
        }
    }
    let spent_today = spent_days.contains(&today);

    let covers = |start: DateTime<Utc>, end: DateTime<Utc>| start <= now && now < end;
    let usable_packs: Vec<&Pack> = packs.iter().filter(|p| covers(p.start, p.end)).collect();
    let pack_admits =
        usable_packs.iter().any(|p| p.left > 0) || (spent_today && !usable_packs.is_empty());
    let covered = access.iter().any(|&(s, e)| covers(s, e)) || pack_admits;

    let valid_until = access
        .iter()
        .map(|&(_, e)| e)
        .chain(
            packs
                .iter()
                .filter(|p| p.left > 0 || (spent_today && covers(p.start, p.end)))
                .map(|p| p.end),
        )
        .max();

    let status = if history.deactivated {
        MemberStatus::Invalid
    } else if covered {
        MemberStatus::Ok
    } else {
        MemberStatus::NotOk
    };

    Validity {
        status,
        valid_until,
        membership_until,
        tool_room_until,
        entry_days_left: if usable_packs.is_empty() {
            None
        } else {
            Some(usable_packs.iter().map(|p| p.left).sum())
        },
    }
}

/// What a span of the timeline grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanGrant {
    /// Door access, on the stacked membership line.
    Membership,
    /// Door access for a pass's span.
    DayPass,
    /// An entry pack: this many entry days usable within the span.
    Entries(u32),
    /// The tool room, on its own stacked line (not the door).
    ToolRoom,
}

/// A span one payment grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The payment's database id.
    pub payment_id: i64,
    /// Its payIndex.
    pub pay_index: crate::ids::PayIndex,
    /// Its plan.
    pub pay_type: String,
    /// What it grants.
    pub grant: SpanGrant,
    /// From (a stacked period starts where the line ended).
    pub start: DateTime<Utc>,
    /// Until.
    pub end: DateTime<Utc>,
}

/// Which payment grants which span, in the order [`evaluate`] takes them
/// (by payment time, then recording): the validity timeline the member pages
/// show. Payments that grant nothing (donations, plans no longer
/// configured) have no span.
pub fn timeline(payments: &[Payment], plans: &Plans, tz: Tz) -> Vec<Span> {
    let mut payments: Vec<&Payment> = payments.iter().collect();
    payments.sort_by_key(|p| (p.paid_at, p.id));
    let (mut membership, mut tool_room) = (Line::default(), Line::default());
    let mut spans = Vec::new();
    for payment in payments {
        let Ok(plan) = plans.get(&payment.pay_type) else {
            continue;
        };
        let grant = match payment.until_days {
            Some(days) => plan.grant.with_days(days),
            None => plan.grant,
        };
        // a span given explicitly is taken as it is
        let explicit = payment.span.filter(|(from, until)| from < until);
        let (grant, start, end) = match (grant, explicit) {
            (Grant::Nothing, _) => continue,
            (Grant::Membership { .. }, Some((from, until))) => {
                let (start, end) = membership.place(from, until);
                (SpanGrant::Membership, start, end)
            }
            (Grant::Membership { span }, None) => {
                let (start, end) = membership.stack(payment.paid_at, span, tz);
                (SpanGrant::Membership, start, end)
            }
            (Grant::ToolRoom { .. }, Some((from, until))) => {
                let (start, end) = tool_room.place(from, until);
                (SpanGrant::ToolRoom, start, end)
            }
            (Grant::ToolRoom { span }, None) => {
                let (start, end) = tool_room.stack(payment.paid_at, span, tz);
                (SpanGrant::ToolRoom, start, end)
            }
            (Grant::DayPass { .. }, Some((from, until))) => (SpanGrant::DayPass, from, until),
            (Grant::DayPass { span }, None) => (
                SpanGrant::DayPass,
                payment.paid_at,
                span.after(payment.paid_at, tz),
            ),
            (Grant::Entries { days, .. }, Some((from, until))) => {
                (SpanGrant::Entries(days), from, until)
            }
            (Grant::Entries { days, window }, None) => (
                SpanGrant::Entries(days),
                payment.paid_at,
                window.after(payment.paid_at, tz),
            ),
        };
        spans.push(Span {
            payment_id: payment.id,
            pay_index: payment.pay_index.clone(),
            pay_type: payment.pay_type.clone(),
            grant,
            start,
            end,
        });
    }
    spans
}

/// The windows of the member's entry packs, sorted and merged: the only
/// spans in which a granted entry can change [`evaluate`]'s answer (an entry
/// spends a day only from a pack whose window holds it, and only a spent day
/// makes a later entry that day free). Storage uses this to read a member's
/// entries inside these windows instead of their whole access history.
pub fn entry_windows(
    payments: &[Payment],
    plans: &Plans,
    tz: Tz,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut windows: Vec<(DateTime<Utc>, DateTime<Utc>)> = payments
        .iter()
        .filter_map(|payment| {
            let plan = plans.get(&payment.pay_type).ok()?;
            let grant = match payment.until_days {
                Some(days) => plan.grant.with_days(days),
                None => plan.grant,
            };
            match grant {
                Grant::Entries { window, .. } => Some(
                    payment
                        .span
                        .filter(|(from, until)| from < until)
                        .unwrap_or((payment.paid_at, window.after(payment.paid_at, tz))),
                ),
                _ => None,
            }
        })
        .collect();
    windows.sort();
    let mut merged: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::with_capacity(windows.len());
    for (start, end) in windows {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::PayIndex;
    use crate::money::Fen;
    use crate::time::{format_local_timestamp, parse_local_timestamp, DEFAULT_TIMEZONE as TZ};

    fn t(s: &str) -> DateTime<Utc> {
        parse_local_timestamp(s, TZ).unwrap()
    }

    fn pay(id: i64, pay_type: &str, paid: &str) -> Payment {
        Payment {
            id,
            pay_index: PayIndex::parse(&format!("p{id}")).unwrap(),
            amount: Fen::from_yuan(200),
            pay_type: pay_type.to_owned(),
            paid_at: t(paid),
            until_days: None,
            span: None,
            recorded_at: t(paid),
        }
    }

    /// The timeline says which payment grants which span: a month paid
    /// before the line ends starts where it ends, a pack spans its window,
    /// a donation has no span, and the spans agree with the validity.
    #[test]
    fn the_timeline_shows_which_payment_grants_which_span() {
        let payments = [
            pay(3, "1M MEMBERSHIP", "201803200000"),
            pay(1, "1M MEMBERSHIP", "201803010000"),
            pay(2, "DONATION", "201803050000"),
            pay(4, "10 ENTRIES", "201806010000"),
        ];
        let spans = timeline(&payments, &Plans::standard(), TZ);
        let shown: Vec<(i64, SpanGrant, DateTime<Utc>, DateTime<Utc>)> = spans
            .iter()
            .map(|s| (s.payment_id, s.grant, s.start, s.end))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    1,
                    SpanGrant::Membership,
                    t("201803010000"),
                    t("201804010000")
                ),
                (
                    3,
                    SpanGrant::Membership,
                    t("201804010000"),
                    t("201805010000")
                ),
                (
                    4,
                    SpanGrant::Entries(10),
                    t("201806010000"),
                    t("201812010000")
                ),
            ]
        );
        let v = eval(&payments, &[], "201804150000");
        assert_eq!(v.membership_until, Some(spans[1].end));
    }

    /// A payment with an explicit span (an imported one) covers that span as
    /// it is: two that overlap end at the later end (not stacked), and a
    /// payment made later stacks after both.
    #[test]
    fn an_explicit_span_is_taken_as_it_is_and_later_payments_stack_after_it() {
        let mut a = pay(1, "1M MEMBERSHIP", "201801010000");
        a.span = Some((t("201801010000"), t("201803010000")));
        let mut b = pay(2, "1M MEMBERSHIP", "201802010000");
        b.span = Some((t("201802010000"), t("201803150000")));
        let v = eval(&[a.clone(), b.clone()], &[], "201803100000");
        assert_eq!(v.status, MemberStatus::Ok);
        assert_eq!(
            v.valid_until,
            Some(t("201803150000")),
            "the later end, not stacked"
        );
        // a month paid on 1 March stacks after the line's end (15 March)
        let c = pay(3, "1M MEMBERSHIP", "201803010000");
        let v = eval(&[a, b, c], &[], "201804100000");
        assert_eq!(v.valid_until, Some(t("201804150000")));
        // an empty or backwards span is ignored (the plan's length counts)
        let mut d = pay(4, "1M MEMBERSHIP", "201805010000");
        d.span = Some((t("201805010000"), t("201805010000")));
        assert_eq!(
            eval(&[d], &[], "201805020000").valid_until,
            Some(t("201806010000"))
        );
    }

    fn eval(payments: &[Payment], entries: &[DateTime<Utc>], now: &str) -> Validity {
        evaluate(
            History {
                deactivated: false,
                payments,
                entries,
                vip: &[],
            },
            &Plans::standard(),
            TZ,
            t(now),
        )
    }

    fn until(v: &Validity) -> String {
        format_local_timestamp(v.valid_until.unwrap(), TZ)
    }

    #[test]
    fn no_payments_is_not_ok() {
        let v = eval(&[], &[], "202401011200");
        assert_eq!(v.status, MemberStatus::NotOk);
        assert_eq!(v.valid_until, None);
        assert_eq!(v.entry_days_left, None);
    }

    #[test]
    fn one_month_is_valid_until_the_same_wall_time_next_month() {
        let p = [pay(1, "1M MEMBERSHIP", "202401151000")];
        let v = eval(&p, &[], "202401201200");
        assert_eq!(v.status, MemberStatus::Ok);
        assert_eq!(until(&v), "202402151000");
        // the end instant itself is no longer valid; one minute before it is
        assert_eq!(eval(&p, &[], "202402151000").status, MemberStatus::NotOk);
        assert_eq!(eval(&p, &[], "202402150959").status, MemberStatus::Ok);
        // before the payment time it is not valid either
        assert_eq!(eval(&p, &[], "202401150959").status, MemberStatus::NotOk);
    }

    #[test]
    fn month_end_and_leap_years() {
        let p = [pay(1, "1M MEMBERSHIP", "202401311800")];
        assert_eq!(until(&eval(&p, &[], "202402011200")), "202402291800");
        let p = [pay(1, "1M MEMBERSHIP", "202301311800")];
        assert_eq!(until(&eval(&p, &[], "202302011200")), "202302281800");
        let p = [pay(1, "6M MEMBERSHIP", "202308310900")];
        assert_eq!(until(&eval(&p, &[], "202309011200")), "202402290900");
        let p = [pay(1, "6M MEMBERSHIP", "202208310900")];
        assert_eq!(until(&eval(&p, &[], "202209011200")), "202302280900");
    }

    #[test]
    fn payments_stack_from_the_current_end() {
        // paid twice in January: the second month starts where the first ends
        let p = [
            pay(1, "1M MEMBERSHIP", "202401101000"),
            pay(2, "1M MEMBERSHIP", "202401201000"),
        ];
        let v = eval(&p, &[], "202401251200");
        assert_eq!(until(&v), "202403101000");
        assert_eq!(v.membership_until, v.valid_until);
        // 1M then 6M
        let p = [
            pay(1, "1M MEMBERSHIP", "202401101000"),
            pay(2, "6M MEMBERSHIP", "202401111000"),
        ];
        assert_eq!(until(&eval(&p, &[], "202401251200")), "202408101000");
        // order of the slice does not matter, paidTime does
        let p = [
            pay(2, "1M MEMBERSHIP", "202401201000"),
            pay(1, "1M MEMBERSHIP", "202401101000"),
        ];
        assert_eq!(until(&eval(&p, &[], "202401251200")), "202403101000");
    }

    #[test]
    fn a_lapsed_membership_restarts_at_the_payment() {
        let p = [
            pay(1, "1M MEMBERSHIP", "202401101000"),
            pay(2, "1M MEMBERSHIP", "202405051500"),
        ];
        let v = eval(&p, &[], "202405101200");
        assert_eq!(v.status, MemberStatus::Ok);
        assert_eq!(until(&v), "202406051500");
        // in the gap between the two the member was not valid
        assert_eq!(eval(&p, &[], "202403011200").status, MemberStatus::NotOk);
    }

    #[test]
    fn until_days_overrides_the_plan_length() {
        let mut p = pay(1, "1M MEMBERSHIP", "202401101000");
        p.until_days = Some(7);
        assert_eq!(until(&eval(&[p], &[], "202401111200")), "202401171000");
    }

    #[test]
    fn donations_and_unknown_plans_grant_nothing() {
        let p = [
            pay(1, "DONATION", "202401101000"),
            pay(2, "CROWD FUNDING", "202401101000"),
            pay(3, "GONE PLAN", "202401101000"),
        ];
        let v = eval(&p, &[], "202401101200");
        assert_eq!(v.status, MemberStatus::NotOk);
        assert_eq!(v.valid_until, None);
    }

    #[test]
    fn tool_room_does_not_open_the_door() {
        let p = [pay(1, "TOOL", "202401101000")];
        let v = eval(&p, &[], "202401101200");
        assert_eq!(v.status, MemberStatus::NotOk);
        assert_eq!(
            format_local_timestamp(v.tool_room_until.unwrap(), TZ),
            "202407101000"
        );
    }

    #[test]
    fn event_is_a_one_day_pass_that_does_not_stack() {
        let p = [
            pay(1, "1M MEMBERSHIP", "202401101000"),
            pay(2, "EVENT", "202401151900"),
        ];
        let v = eval(&p, &[], "202401151930");
        assert_eq!(v.status, MemberStatus::Ok);
        assert_eq!(until(&v), "202402101000"); // membership end unchanged
        let p = [pay(2, "EVENT", "202401151900")];
        assert_eq!(eval(&p, &[], "202401161859").status, MemberStatus::Ok);
        assert_eq!(eval(&p, &[], "202401161900").status, MemberStatus::NotOk);
    }

    #[test]
    fn ten_entries_count_distinct_local_days() {
        let p = [pay(1, "10 ENTRIES", "202401010900")];
        assert_eq!(eval(&p, &[], "202401011000").entry_days_left, Some(10));
        // ten entries on ten different days; two entries on day 1
        let mut entries: Vec<DateTime<Utc>> =
            (1..=10).map(|d| t(&format!("202401{d:02}1000"))).collect();
        entries.push(t("202401011800"));
        let v = eval(&p, &entries, "202401101500");
        assert_eq!(v.entry_days_left, Some(0));
        // same day as the tenth entry: still admitted (entries on a spent day are free)
        assert_eq!(v.status, MemberStatus::Ok);
        // the eleventh day is refused
        let v = eval(&p, &entries, "202401110900");
        assert_eq!(v.status, MemberStatus::NotOk);
        // nine days used: the eleventh calendar day is fine
        let v = eval(&p, &entries[..9], "202401110900");
        assert_eq!(v.status, MemberStatus::Ok);
        assert_eq!(v.entry_days_left, Some(1));
    }

    #[test]
    fn entry_days_follow_the_local_calendar() {
        let p = [pay(1, "10 ENTRIES", "202401010900")];
        // 23:30 and 00:30 local are two days, though the same UTC date
        let entries = [t("202401022330"), t("202401030030")];
        assert_eq!(eval(&p, &entries, "202401031200").entry_days_left, Some(8));
        // 07:30 and 09:00 local are one day, though two UTC dates
        let entries = [t("202401040730"), t("202401040900")];
        assert_eq!(eval(&p, &entries, "202401041200").entry_days_left, Some(9));
    }

    #[test]
    fn stacked_months_keep_the_day_the_line_began_on() {
        let p = [
            pay(1, "1M MEMBERSHIP", "202301311000"),
            pay(2, "1M MEMBERSHIP", "202301311000"),
        ];
        let v = eval(&p, &[], "202302011000");
        assert_eq!(v.membership_until, Some(t("202303311000")));
        // the first period alone ends on the last day of February
        let v = eval(&p[..1], &[], "202302011000");
        assert_eq!(v.membership_until, Some(t("202302281000")));
        // three: 30 Apr (April has no 31st); one paid later, during the line
        let p = [
            pay(1, "1M MEMBERSHIP", "202301311000"),
            pay(2, "1M MEMBERSHIP", "202302101000"),
            pay(3, "1M MEMBERSHIP", "202303151000"),
        ];
        let v = eval(&p, &[], "202303161000");
        assert_eq!(v.membership_until, Some(t("202304301000")));
        // a leap year: 31 Jan, 29 Feb, 31 Mar
        let p = [
            pay(1, "1M MEMBERSHIP", "202401311000"),
            pay(2, "1M MEMBERSHIP", "202401311000"),
        ];
        assert_eq!(
            eval(&p[..1], &[], "202402011000").membership_until,
            Some(t("202402291000"))
        );
        assert_eq!(
            eval(&p, &[], "202402011000").membership_until,
            Some(t("202403311000"))
        );
        // after a gap a new line begins on its own day
        let p = [
            pay(1, "1M MEMBERSHIP", "202301311000"),
            pay(2, "1M MEMBERSHIP", "202303151000"),
        ];
        let v = eval(&p, &[], "202303161000");
        assert_eq!(v.membership_until, Some(t("202304151000")));
    }

    #[test]
    fn entries_covered_by_another_grant_spend_no_pack_day() {
        // a pack, and a month of membership from Jan 10 to Feb 10
        let p = [
            pay(1, "10 ENTRIES", "202401011000"),
            pay(2, "1M MEMBERSHIP", "202401101000"),
        ];
        // two entries in the membership, one before it, one after it
        let entries = [
            t("202401051000"),
            t("202401151000"),
            t("202401201000"),
            t("202402151000"),
        ];
        let v = eval(&p, &entries, "202402161000");
        assert_eq!(v.entry_days_left, Some(8), "{v:?}");
        // a VIP period covers like a membership
        let vip = [VipPeriod {
            start: t("202403011000"),
            end: t("202403311000"),
            level: crate::partner::VipLevel::Standard,
        }];
        let entries = [t("202403051000"), t("202403061000")];
        let v = evaluate(
            History {
                deactivated: false,
                payments: &p[..1],
                entries: &entries,
                vip: &vip,
            },
            &Plans::standard(),
            TZ,
            t("202403071000"),
        );
        assert_eq!(v.entry_days_left, Some(10), "{v:?}");
    }

    #[test]
    fn entry_packs_expire_after_six_months() {
        let p = [pay(1, "10 ENTRIES", "202401010900")];
        let v = eval(&p, &[], "202407010859");
        assert_eq!(v.status, MemberStatus::Ok);
        assert_eq!(until(&v), "202407010900");
        let v = eval(&p, &[], "202407010900");
        assert_eq!(v.status, MemberStatus::NotOk);
        assert_eq!(v.entry_days_left, None);
    }

    #[test]
    fn entries_spend_the_pack_that_ends_first() {
        let p = [
            pay(1, "10 ENTRIES", "202401010900"),
            pay(2, "10 ENTRIES", "202403010900"),
        ];
        let entries: Vec<DateTime<Utc>> =
            (1..=5).map(|d| t(&format!("202403{d:02}1000"))).collect();
        let v = eval(&p, &entries, "202403101200");
        assert_eq!(v.entry_days_left, Some(15));
        // after the first pack's window, only the second pack's ten remain
        let v = eval(&p, &entries, "202407021200");
        assert_eq!(v.entry_days_left, Some(10));
    }

    #[test]
    fn entries_outside_any_pack_spend_nothing() {
        let p = [pay(1, "10 ENTRIES", "202401010900")];
        let entries = [t("202312311000")];
        assert_eq!(eval(&p, &entries, "202401021200").entry_days_left, Some(10));
    }

    #[test]
    fn deactivated_is_invalid_whatever_was_paid() {
        let p = [pay(1, "6M MEMBERSHIP", "202401010900")];
        let v = evaluate(
            History {
                deactivated: true,
                payments: &p,
                entries: &[],
                vip: &[],
            },
            &Plans::standard(),
            TZ,
            t("202401021200"),
        );
        assert_eq!(v.status, MemberStatus::Invalid);
        assert_eq!(until(&v), "202407010900");
    }

    #[test]
    fn a_vip_period_opens_the_door_while_it_runs() {
        use crate::partner::{VipLevel, VipPeriod};
        let vip = [VipPeriod {
            level: VipLevel::Gold,
            start: t("202402010900"),
            end: t("202403010900"),
        }];
        let p = [pay(1, "1M MEMBERSHIP", "202312010900")];
        let at = |now: &str| {
            evaluate(
                History {
                    deactivated: false,
                    payments: &p,
                    entries: &[],
                    vip: &vip,
                },
                &Plans::standard(),
                TZ,
                t(now),
            )
        };
        assert_eq!(
            at("202401150900").status,
            MemberStatus::NotOk,
            "membership over, VIP not begun"
        );
        let during = at("202402150900");
        assert_eq!(during.status, MemberStatus::Ok);
        assert_eq!(until(&during), "202403010900");
        assert_eq!(
            format_local_timestamp(during.membership_until.unwrap(), TZ),
            "202401010900",
            "VIP does not move the membership line"
        );
        assert_eq!(
            at("202403010900").status,
            MemberStatus::NotOk,
            "the end is exclusive"
        );
    }

    #[test]
    fn wire_names() {
        assert_eq!(MemberStatus::Ok.wire_name(), "OK");
        assert_eq!(MemberStatus::NotOk.wire_name(), "NOT_OK");
        assert_eq!(MemberStatus::Invalid.wire_name(), "INVALID");
    }

    #[test]
    fn entries_outside_the_entry_windows_never_change_validity() {
        // two overlapping packs, one later pack, memberships around them
        let p = [
            pay(1, "1M MEMBERSHIP", "202301010900"),
            pay(2, "10 ENTRIES", "202303010900"),
            pay(3, "10 ENTRIES", "202304150900"),
            pay(4, "10 ENTRIES", "202311010900"),
            pay(5, "1M MEMBERSHIP", "202312010900"),
        ];
        let windows = entry_windows(&p, &Plans::standard(), TZ);
        assert_eq!(windows.len(), 2, "the first two packs overlap: {windows:?}");
        assert!(
            windows.windows(2).all(|w| w[0].1 < w[1].0),
            "sorted, disjoint"
        );
        // an entry every 19 hours for two years, so every day and hour mix
        let mut all = Vec::new();
        let mut at = t("202212010000");
        while at < t("202501010000") {
            all.push(at);
            at += chrono::Duration::hours(19);
        }
        let inside: Vec<DateTime<Utc>> = all
            .iter()
            .copied()
            .filter(|e| windows.iter().any(|&(s, end)| s <= *e && *e < end))
            .collect();
        assert!(
            inside.len() * 4 < all.len() * 3 && !inside.is_empty(),
            "the windows leave a quarter of the entries out"
        );
        let mut now = t("202301010000");
        while now < t("202502010000") {
            assert_eq!(
                eval(&p, &all, &format_local_timestamp(now, TZ)),
                eval(&p, &inside, &format_local_timestamp(now, TZ)),
                "at {now}"
            );
            now += chrono::Duration::hours(37);
        }
        assert!(entry_windows(&p[..1], &Plans::standard(), TZ).is_empty());
    }
}
