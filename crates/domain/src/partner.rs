//! The partner side: the token wallet, VIP periods and OAuth2 scopes.
//!
//! Tokens are counted in hundredths, never as floats. VIP periods are stored
//! when bought (their start depends on what was bought before) and give door
//! access like a membership while they run.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::money::Fen;
use crate::tags::Tag;
use crate::time::CalendarSpan;
use crate::Invalid;

/// An amount of tokens in hundredths (`12.34` tokens is `Tokens(1234)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Tokens(i64);

impl Tokens {
    /// Zero.
    pub const ZERO: Tokens = Tokens(0);
    /// The largest amount in one ledger line: 100,000,000.00 tokens.
    pub const MAX: Tokens = Tokens(10_000_000_000);

    /// From hundredths; refuses negative or over-large values.
    pub fn from_hundredths(n: i64) -> Result<Tokens, Invalid> {
        if n < 0 {
            return Err(Invalid::new("must not be negative"));
        }
        if n > Tokens::MAX.0 {
            return Err(Invalid::new("is larger than 100000000 tokens"));
        }
        Ok(Tokens(n))
    }

    /// From whole tokens.
    pub fn whole(n: u32) -> Tokens {
        Tokens(i64::from(n) * 100)
    }

    /// Parses a decimal amount with at most two decimals (`100`, `0.5`, `12.34`).
    ///
    /// ```
    /// use zhima_domain::partner::Tokens;
    /// assert_eq!(Tokens::parse("12.34").unwrap().hundredths(), 1234);
    /// assert!(Tokens::parse("1.001").is_err());
    /// assert!(Tokens::parse("-1").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Tokens, Invalid> {
        // the same decimal rules as money
        let fen = Fen::parse_yuan(text).map_err(|e| Invalid::new(e.reason().to_owned()))?;
        Tokens::from_hundredths(fen.as_fen())
    }

    /// `self + other`, if it stays within [`Tokens::MAX`] (a balance never
    /// holds more: a credit that would pass it is refused).
    pub fn checked_add(self, other: Tokens) -> Option<Tokens> {
        self.0
            .checked_add(other.0)
            .filter(|n| *n <= Tokens::MAX.0)
            .map(Tokens)
    }

    /// The amount in hundredths.
    pub fn hundredths(self) -> i64 {
        self.0
    }

    /// The amount as a float for the wire. Amounts stay below 2^53
    /// hundredths, so the shortest decimal that reads back as this float is
    /// the amount's own text, with at most two decimals.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 100.0
    }
}

impl fmt::Display for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// Paid tokens (bought with money) or free tokens (gifts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// Bought with a `TOKENS` payment.
    Paid,
    /// Given by staff.
    Free,
}

impl TokenKind {
    /// `paid` or `free`, as stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenKind::Paid => "paid",
            TokenKind::Free => "free",
        }
    }

    /// From the stored name.
    pub fn parse(text: &str) -> Result<TokenKind, Invalid> {
        match text {
            "paid" => Ok(TokenKind::Paid),
            "free" => Ok(TokenKind::Free),
            other => Err(Invalid::new(format!("unknown token kind {other:?}"))),
        }
    }
}

/// A member's token balances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balance {
    /// Paid tokens.
    pub paid: Tokens,
    /// Free tokens.
    pub free: Tokens,
}

/// What one purchase takes from each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Debit {
    /// Taken from free tokens.
    pub free: Tokens,
    /// Taken from paid tokens.
    pub paid: Tokens,
}

/// The balance does not cover the price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not enough tokens: the price is {price}, the balance is {available}")]
pub struct Insufficient {
    /// The price.
    pub price: Tokens,
    /// Free plus paid tokens.
    pub available: Tokens,
}

impl Balance {
    /// Free plus paid.
    pub fn total(self) -> Tokens {
        Tokens(self.paid.0.saturating_add(self.free.0))
    }

    /// Splits `price` over the balance: free tokens first, then paid ones.
    /// Never leaves either kind negative.
    pub fn spend(self, price: Tokens) -> Result<Debit, Insufficient> {
        let available = self.total();
        if price.0 > available.0 || self.free.0 < 0 || self.paid.0 < 0 {
            return Err(Insufficient { price, available });
        }
        let free = price.0.min(self.free.0);
        Ok(Debit {
            free: Tokens(free),
            paid: Tokens(price.0 - free),
        })
    }
}

/// Tokens credited for a `TOKENS` payment of `amount` at `per_cny` tokens per
/// yuan, rounded down to the hundredth; refused (never clamped) above
/// [`Tokens::MAX`].
///
/// ```
/// use zhima_domain::money::Fen;
/// use zhima_domain::partner::{tokens_for_payment, Tokens};
/// let rate = Tokens::parse("1").unwrap();
/// assert_eq!(tokens_for_payment(Fen::from_yuan(100), rate), Ok(Tokens::parse("100").unwrap()));
/// ```
pub fn tokens_for_payment(amount: Fen, per_cny: Tokens) -> Result<Tokens, Invalid> {
    let credited = i128::from(amount.as_fen()) * i128::from(per_cny.0) / 100;
    i64::try_from(credited)
        .ok()
        .filter(|n| *n <= Tokens::MAX.0)
        .map(Tokens)
        .ok_or_else(|| Invalid::new("would credit more than 100000000 tokens"))
}

/// A VIP level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VipLevel {
    /// `standard`: door access as a MEMBER.
    Standard,
    /// `gold`: door access as a MASTER.
    Gold,
}

impl VipLevel {
    /// From the wire (`standard` or `gold`, exactly).
    pub fn parse(text: &str) -> Result<VipLevel, Invalid> {
        match text {
            "standard" => Ok(VipLevel::Standard),
            "gold" => Ok(VipLevel::Gold),
            other => Err(Invalid::new(format!(
                "unknown level {other:?}: expected \"standard\" or \"gold\""
            ))),
        }
    }

    /// `standard` or `gold`.
    pub const fn as_str(self) -> &'static str {
        match self {
            VipLevel::Standard => "standard",
            VipLevel::Gold => "gold",
        }
    }

    /// The payType of the payment-history entry a purchase writes.
    pub const fn pay_type(self) -> &'static str {
        match self {
            VipLevel::Standard => "VIP STANDARD",
            VipLevel::Gold => "VIP GOLD",
        }
    }

    /// The role whose door access the level gives.
    pub const fn role(self) -> Tag {
        match self {
            VipLevel::Standard => Tag::Member,
            VipLevel::Gold => Tag::Master,
        }
    }
}

/// One bought VIP period, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VipPeriod {
    /// The level.
    pub level: VipLevel,
    /// First instant covered.
    pub start: DateTime<Utc>,
    /// First instant not covered.
    pub end: DateTime<Utc>,
}

impl VipPeriod {
    /// Whether the period covers `now`.
    pub fn covers(&self, now: DateTime<Utc>) -> bool {
        self.start <= now && now < self.end
    }
}

/// The payType whose payments buy partner tokens.
pub const TOKENS_PAY_TYPE: &str = "TOKENS";

/// The paid tokens a payment credits: `None` for any payType but `TOKENS`
/// (any case), else [`tokens_for_payment`] at `per_cny` (refused above the
/// cap, never clamped).
pub fn tokens_credited(
    payment: &crate::member::NewPayment,
    per_cny: Tokens,
) -> Result<Option<Tokens>, Invalid> {
    if !payment.pay_type.eq_ignore_ascii_case(TOKENS_PAY_TYPE) {
        return Ok(None);
    }
    tokens_for_payment(payment.amount, per_cny).map(Some)
}

/// What a VIP period costs and how long it lasts (`partner.*` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VipOffer {
    /// One period.
    pub span: CalendarSpan,
    /// Price of a standard period.
    pub standard: Tokens,
    /// Price of a gold period.
    pub gold: Tokens,
}

impl Default for VipOffer {
    /// One calendar month; 100 tokens standard, 300 gold.
    fn default() -> VipOffer {
        VipOffer {
            span: CalendarSpan::Months(1),
            standard: Tokens::whole(100),
            gold: Tokens::whole(300),
        }
    }
}

impl VipOffer {
    /// The price of one period of `level`.
    pub fn price(&self, level: VipLevel) -> Tokens {
        match level {
            VipLevel::Standard => self.standard,
            VipLevel::Gold => self.gold,
        }
    }
}

/// The VIP level at `now`: the highest level of the periods covering it.
pub fn vip_at(periods: &[VipPeriod], now: DateTime<Utc>) -> Option<VipLevel> {
    periods
        .iter()
        .filter(|p| p.covers(now))
        .map(|p| p.level)
        .max()
}

/// The next period bought at `now`: it starts at the later of `now` and the
/// end of the member's last VIP period, and lasts `span` on the wall clock of
/// `tz`, keeping the day of month of the line of stacked periods it continues
/// (as memberships do).
pub fn next_vip_period(
    periods: &[VipPeriod],
    level: VipLevel,
    span: CalendarSpan,
    tz: Tz,
    now: DateTime<Utc>,
) -> VipPeriod {
    let start = periods
        .iter()
        .map(|p| p.end)
        .max()
        .map_or(now, |end| end.max(now));
    // the line this period continues began where the chain of periods
    // ending exactly where the next starts began
    let mut anchor = start;
    while let Some(p) = periods.iter().find(|p| p.end == anchor && p.start < anchor) {
        anchor = p.start;
    }
    VipPeriod {
        level,
        start,
        end: span.after_anchored(start, anchor, tz),
    }
}

/// An OAuth2 scope a partner may be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PartnerScope {
    /// Read the member's profile and balances.
    Profile,
    /// Buy VIP periods with the member's tokens.
    Vip,
}

impl PartnerScope {
    /// Every scope.
    pub const ALL: [PartnerScope; 2] = [PartnerScope::Profile, PartnerScope::Vip];

    /// The scope's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            PartnerScope::Profile => "profile",
            PartnerScope::Vip => "vip",
        }
    }

    /// What the consent page says the scope allows.
    pub const fn description(self) -> &'static str {
        match self {
            PartnerScope::Profile => {
                "read your nickname, email, gender, VIP level and token balances"
            }
            PartnerScope::Vip => "buy VIP membership for you with your tokens",
        }
    }

    /// From its name.
    pub fn parse(text: &str) -> Result<PartnerScope, Invalid> {
        PartnerScope::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| Invalid::new(format!("unknown scope {text:?}; known: profile, vip")))
    }

    /// A set of scopes from a list separated by spaces or commas.
    pub fn parse_set(text: &str) -> Result<BTreeSet<PartnerScope>, Invalid> {
        let set = text
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(PartnerScope::parse)
            .collect::<Result<BTreeSet<_>, _>>()?;
        if set.is_empty() {
            return Err(Invalid::new("at least one scope is required"));
        }
        Ok(set)
    }

    /// A set as OAuth2 writes it: names separated by single spaces.
    pub fn join(set: &BTreeSet<PartnerScope>) -> String {
        set.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{parse_local_timestamp, DEFAULT_TIMEZONE as TZ};

    fn t(s: &str) -> DateTime<Utc> {
        parse_local_timestamp(s, TZ).unwrap()
    }

    fn tok(s: &str) -> Tokens {
        Tokens::parse(s).unwrap()
    }

    #[test]
    fn free_tokens_are_spent_first() {
        let b = Balance {
            paid: tok("500"),
            free: tok("30.5"),
        };
        assert_eq!(
            b.spend(tok("100")).unwrap(),
            Debit {
                free: tok("30.5"),
                paid: tok("69.5")
            }
        );
        assert_eq!(
            b.spend(tok("20")).unwrap(),
            Debit {
                free: tok("20"),
                paid: Tokens::ZERO
            }
        );
        // exactly the balance is affordable, a hundredth more is not
        assert!(b.spend(tok("530.5")).is_ok());
        let err = b.spend(tok("530.51")).unwrap_err();
        assert_eq!(err.available, tok("530.5"));
        assert_eq!(
            err.to_string(),
            "not enough tokens: the price is 530.51, the balance is 530.50"
        );
        assert!(Balance::default().spend(Tokens::ZERO).is_ok());
    }

    #[test]
    fn tokens_print_as_numbers_with_two_decimals_at_most() {
        for text in ["100", "12.34", "0.1", "0.07", "99999999.99", "0"] {
            assert_eq!(tok(text).as_f64().to_string(), text);
        }
        assert!(Tokens::parse("0.001").is_err());
        assert!(Tokens::from_hundredths(Tokens::MAX.hundredths() + 1).is_err());
    }

    #[test]
    fn payments_credit_tokens_at_the_rate() {
        assert_eq!(
            tokens_for_payment(Fen::from_yuan(100), tok("1")),
            Ok(tok("100"))
        );
        assert_eq!(
            tokens_for_payment(Fen::from_fen(1999).unwrap(), tok("1.5")),
            Ok(tok("29.98"))
        );
        assert!(
            tokens_for_payment(Fen::MAX, tok("1000000")).is_err(),
            "never clamped"
        );
        assert_eq!(
            tokens_for_payment(Fen::from_yuan(100_000_000), tok("1")),
            Ok(Tokens::MAX)
        );
        assert!(tokens_for_payment(Fen::from_yuan(100_000_001), tok("1")).is_err());
        assert_eq!(Tokens::MAX.checked_add(Tokens::ZERO), Some(Tokens::MAX));
        assert_eq!(Tokens::MAX.checked_add(tok("0.01")), None);
        assert_eq!(tok("1").checked_add(tok("2")), Some(tok("3")));
    }

    #[test]
    fn only_tokens_payments_credit_tokens() {
        let pay = |pay_type: &str, yuan: u32| crate::member::NewPayment {
            pay_index: crate::ids::PayIndex::parse("p1").unwrap(),
            amount: Fen::from_yuan(yuan),
            pay_type: pay_type.to_owned(),
            paid_at: t("201801010000"),
            until_days: None,
            span: None,
        };
        assert_eq!(
            tokens_credited(&pay("TOKENS", 150), tok("1")),
            Ok(Some(tok("150")))
        );
        assert_eq!(
            tokens_credited(&pay("tokens", 10), tok("2")),
            Ok(Some(tok("20")))
        );
        assert_eq!(
            tokens_credited(&pay("1M MEMBERSHIP", 200), tok("1")),
            Ok(None)
        );
        assert!(tokens_credited(&pay("TOKENS", 100_000_001), tok("1")).is_err());
    }

    #[test]
    fn the_vip_offer_prices_each_level() {
        let offer = VipOffer::default();
        assert_eq!(offer.price(VipLevel::Standard), tok("100"));
        assert_eq!(offer.price(VipLevel::Gold), tok("300"));
        let custom = VipOffer {
            gold: tok("250.5"),
            ..offer
        };
        assert_eq!(custom.price(VipLevel::Gold), tok("250.5"));
        assert_eq!(custom.span, CalendarSpan::Months(1));
    }

    #[test]
    fn vip_periods_stack_from_the_last_end() {
        let month = CalendarSpan::Months(1);
        let first = next_vip_period(&[], VipLevel::Standard, month, TZ, t("201801312000"));
        assert_eq!(first.start, t("201801312000"));
        assert_eq!(first.end, t("201802282000"), "31 Jan + 1 month = 28 Feb");
        // bought again before the first ends: starts at its end
        let second = next_vip_period(&[first], VipLevel::Gold, month, TZ, t("201802101200"));
        assert_eq!(second.start, first.end);
        assert_eq!(second.end, t("201803312000"), "the line keeps the 31st");
        // bought after a gap: starts now
        let third = next_vip_period(
            &[first, second],
            VipLevel::Standard,
            month,
            TZ,
            t("201805010900"),
        );
        assert_eq!(third.start, t("201805010900"));

        let periods = [first, second, third];
        assert_eq!(
            vip_at(&periods, t("201802011200")),
            Some(VipLevel::Standard)
        );
        assert_eq!(vip_at(&periods, t("201803011200")), Some(VipLevel::Gold));
        assert_eq!(vip_at(&periods, t("201804011200")), None, "a gap");
        assert_eq!(
            vip_at(&periods, first.end),
            Some(VipLevel::Gold),
            "end is exclusive"
        );
        assert_eq!(vip_at(&[], t("201804011200")), None);
    }

    #[test]
    fn levels_and_scopes_parse_exactly() {
        assert_eq!(VipLevel::parse("gold").unwrap(), VipLevel::Gold);
        assert_eq!(
            VipLevel::parse("standard").unwrap().pay_type(),
            "VIP STANDARD"
        );
        assert_eq!(VipLevel::Gold.role(), Tag::Master);
        for bad in ["Gold", "platinum", "", " gold"] {
            assert!(VipLevel::parse(bad).is_err(), "{bad:?}");
        }
        let set = PartnerScope::parse_set("vip profile").unwrap();
        assert_eq!(PartnerScope::join(&set), "profile vip");
        assert_eq!(PartnerScope::parse_set("profile,vip").unwrap(), set);
        assert!(PartnerScope::parse_set("profile admin").is_err());
        assert!(PartnerScope::parse_set("  ").is_err());
    }
}
