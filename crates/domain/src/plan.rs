//! Membership plans: what a payment type buys.

use std::collections::BTreeMap;

use crate::money::Fen;
use crate::time::CalendarSpan;
use crate::Invalid;

/// What a plan grants when paid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Door access for `span`; consecutive memberships stack: a new period
    /// starts at the later of the payment time and the current end of validity.
    Membership {
        /// Length of one period.
        span: CalendarSpan,
    },
    /// Door access from the payment time for `span` (an event ticket); does
    /// not stack and does not move the end of a membership.
    DayPass {
        /// Length of the pass.
        span: CalendarSpan,
    },
    /// A pack of entry days: `days` distinct local calendar days of entry,
    /// usable within `window` of the payment time.
    Entries {
        /// How many distinct entry days the pack holds.
        days: u32,
        /// How long the pack can be used.
        window: CalendarSpan,
    },
    /// Tool-room access for `span` (stacks like a membership, on its own line);
    /// not door access by itself.
    ToolRoom {
        /// Length of one period.
        span: CalendarSpan,
    },
    /// Nothing but gratitude (donations, crowd funding).
    Nothing,
}

impl Grant {
    /// Whether `until_days` may override this grant's length.
    pub fn has_length(self) -> bool {
        !matches!(self, Grant::Nothing)
    }

    /// This grant with its length replaced by `days` calendar days.
    pub fn with_days(self, days: u32) -> Grant {
        let span = CalendarSpan::Days(days);
        match self {
            Grant::Membership { .. } => Grant::Membership { span },
            Grant::DayPass { .. } => Grant::DayPass { span },
            Grant::Entries { days: n, .. } => Grant::Entries {
                days: n,
                window: span,
            },
            Grant::ToolRoom { .. } => Grant::ToolRoom { span },
            Grant::Nothing => Grant::Nothing,
        }
    }
}

/// A plan: a payment type (`payType`), its list price, and what it grants.
///
/// The price is the list price shown to members; a recorded payment keeps the
/// amount actually paid (discounts happen at the front desk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    name: String,
    /// List price.
    pub price: Fen,
    /// What paying for it grants.
    pub grant: Grant,
}

impl Plan {
    /// A plan; the name is upper-cased and must be 1 to 40 characters of
    /// letters, digits, spaces, `-` or `_`.
    pub fn new(name: &str, price: Fen, grant: Grant) -> Result<Plan, Invalid> {
        let name = name.trim().to_uppercase();
        if name.is_empty() || name.chars().count() > 40 {
            return Err(Invalid::new("a plan name must be 1 to 40 characters"));
        }
        if !name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        {
            return Err(Invalid::new(format!(
                "plan name {name:?} may only hold letters, digits, spaces, - and _"
            )));
        }
        if let Grant::Entries { days: 0, .. } = grant {
            return Err(Invalid::new(format!(
                "plan {name:?} must grant at least one entry day"
            )));
        }
        Ok(Plan { name, price, grant })
    }

    /// The canonical (upper-case) name, as stored in payments.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The catalogue of plans, looked up by name in any case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plans {
    by_name: BTreeMap<String, Plan>,
}

impl Plans {
    /// A catalogue from a list; names must be unique.
    pub fn new(plans: Vec<Plan>) -> Result<Plans, Invalid> {
        let mut by_name = BTreeMap::new();
        for plan in plans {
            let name = plan.name.clone();
            if by_name.insert(name.clone(), plan).is_some() {
                return Err(Invalid::new(format!("plan {name:?} is defined twice")));
            }
        }
        if by_name.is_empty() {
            return Err(Invalid::new("at least one plan is required"));
        }
        Ok(Plans { by_name })
    }

    /// The plans of the original system with their usual prices: `1M MEMBERSHIP`
    /// (200 CNY, one month), `6M MEMBERSHIP` (900 CNY, six months), `10 ENTRIES`
    /// (350 CNY, ten entry days within six months), `TOOL` (50 CNY, six months
    /// of tool room), `EVENT` (one day), `DONATION` and `CROWD FUNDING` (no access).
    pub fn standard() -> Plans {
        let plans = [
            (
                "1M MEMBERSHIP",
                200,
                Grant::Membership {
                    span: CalendarSpan::Months(1),
                },
            ),
            (
                "6M MEMBERSHIP",
                900,
                Grant::Membership {
                    span: CalendarSpan::Months(6),
                },
            ),
            (
                "10 ENTRIES",
                350,
                Grant::Entries {
                    days: 10,
                    window: CalendarSpan::Months(6),
                },
            ),
            (
                "TOOL",
                50,
                Grant::ToolRoom {
                    span: CalendarSpan::Months(6),
                },
            ),
            (
                "EVENT",
                0,
                Grant::DayPass {
                    span: CalendarSpan::Days(1),
                },
            ),
            ("DONATION", 0, Grant::Nothing),
            ("CROWD FUNDING", 0, Grant::Nothing),
            // buys tokens for the partner services (credited at partner.tokens_per_cny)
            ("TOKENS", 0, Grant::Nothing),
        ];
        let by_name = plans
            .into_iter()
            .map(|(name, yuan, grant)| {
                (
                    name.to_owned(),
                    Plan {
                        name: name.to_owned(),
                        price: Fen::from_yuan(yuan),
                        grant,
                    },
                )
            })
            .collect();
        Plans { by_name }
    }

    /// The plan named `name` (any case, surrounding spaces ignored).
    pub fn get(&self, name: &str) -> Result<&Plan, Invalid> {
        self.by_name
            .get(&name.trim().to_uppercase())
            .ok_or_else(|| {
                Invalid::new(format!(
                    "unknown payType {:?}; known: {}",
                    name,
                    self.by_name.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })
    }

    /// All plans, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Plan> {
        self.by_name.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_plans_match_the_original_system() {
        let plans = Plans::standard();
        let m = plans.get("1m membership").unwrap();
        assert_eq!(m.name(), "1M MEMBERSHIP");
        assert_eq!(m.price, Fen::from_yuan(200));
        assert_eq!(
            m.grant,
            Grant::Membership {
                span: CalendarSpan::Months(1)
            }
        );
        assert_eq!(
            plans.get("6M MEMBERSHIP").unwrap().price,
            Fen::from_yuan(900)
        );
        assert_eq!(
            plans.get("10 ENTRIES").unwrap().grant,
            Grant::Entries {
                days: 10,
                window: CalendarSpan::Months(6)
            }
        );
        assert_eq!(plans.get("TOOL").unwrap().price, Fen::from_yuan(50));
        assert_eq!(
            plans.get(" event ").unwrap().grant,
            Grant::DayPass {
                span: CalendarSpan::Days(1)
            }
        );
        assert_eq!(plans.get("DONATION").unwrap().grant, Grant::Nothing);
        assert_eq!(plans.get("Crowd Funding").unwrap().grant, Grant::Nothing);
        assert_eq!(plans.get("tokens").unwrap().grant, Grant::Nothing);
        assert_eq!(plans.iter().count(), 8);
    }

    #[test]
    fn unknown_plan_lists_the_known_ones() {
        let err = Plans::standard().get("LIFETIME").unwrap_err();
        assert!(err.to_string().contains("1M MEMBERSHIP"), "{err}");
    }

    #[test]
    fn custom_catalogues_are_checked() {
        let a = Plan::new(
            "year",
            Fen::from_yuan(2000),
            Grant::Membership {
                span: CalendarSpan::Months(12),
            },
        )
        .unwrap();
        assert_eq!(a.name(), "YEAR");
        let b = Plan::new("YEAR", Fen::ZERO, Grant::Nothing).unwrap();
        assert!(Plans::new(vec![a.clone(), b]).is_err());
        assert!(Plans::new(vec![]).is_err());
        assert!(Plans::new(vec![a]).is_ok());
        assert!(Plan::new("", Fen::ZERO, Grant::Nothing).is_err());
        assert!(Plan::new("a;b", Fen::ZERO, Grant::Nothing).is_err());
        assert!(Plan::new(
            "X",
            Fen::ZERO,
            Grant::Entries {
                days: 0,
                window: CalendarSpan::Days(1)
            }
        )
        .is_err());
    }

    #[test]
    fn day_override_keeps_the_kind() {
        let g = Grant::Entries {
            days: 10,
            window: CalendarSpan::Months(6),
        }
        .with_days(30);
        assert_eq!(
            g,
            Grant::Entries {
                days: 10,
                window: CalendarSpan::Days(30)
            }
        );
        assert_eq!(Grant::Nothing.with_days(3), Grant::Nothing);
        assert!(!Grant::Nothing.has_length());
    }
}
