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

/// What a plan grants, by name (`grants` in a `[plans."NAME"]` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantKind {
    /// `membership`
    Membership,
    /// `day_pass`
    DayPass,
    /// `entries`
    Entries,
    /// `tool_room`
    ToolRoom,
    /// `none`
    Nothing,
}

impl GrantKind {
    /// From its configuration name.
    pub fn parse(text: &str) -> Result<GrantKind, Invalid> {
        match text {
            "membership" => Ok(GrantKind::Membership),
            "day_pass" => Ok(GrantKind::DayPass),
            "entries" => Ok(GrantKind::Entries),
            "tool_room" => Ok(GrantKind::ToolRoom),
            "none" => Ok(GrantKind::Nothing),
            other => Err(Invalid::new(format!(
                "{other:?} is not membership, day_pass, entries, tool_room or none"
            ))),
        }
    }

    fn of(grant: Grant) -> GrantKind {
        match grant {
            Grant::Membership { .. } => GrantKind::Membership,
            Grant::DayPass { .. } => GrantKind::DayPass,
            Grant::Entries { .. } => GrantKind::Entries,
            Grant::ToolRoom { .. } => GrantKind::ToolRoom,
            Grant::Nothing => GrantKind::Nothing,
        }
    }
}

/// A change to one plan of the catalogue (a `[plans."NAME"]` table, parsed):
/// what is left out keeps the standard plan's value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOverride {
    /// List price.
    pub price: Option<Fen>,
    /// What it grants.
    pub grants: Option<GrantKind>,
    /// Its length (months or days).
    pub span: Option<CalendarSpan>,
    /// For an entries plan: how many entry days.
    pub entry_days: Option<u32>,
    /// Remove the plan.
    pub disabled: bool,
}

/// Why an override cannot apply: which part of which plan, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideError {
    /// The plan's name as configured.
    pub plan: String,
    /// The part at fault (`grants`, `entry_days`), or `None` for the plan.
    pub part: Option<&'static str>,
    /// Why.
    pub reason: Invalid,
}

impl Plans {
    /// This catalogue changed by `overrides` (name → change): a plan is
    /// changed where named (keys left out keep their value), added where new
    /// (it must then say what it grants), removed where `disabled`.
    pub fn with_overrides<'a>(
        &self,
        overrides: impl IntoIterator<Item = (&'a str, &'a PlanOverride)>,
    ) -> Result<Plans, OverrideError> {
        let mut catalogue: std::collections::BTreeMap<String, Plan> = self
            .iter()
            .map(|p| (p.name().to_owned(), p.clone()))
            .collect();
        for (name, change) in overrides {
            let fail = |part, reason: Invalid| OverrideError {
                plan: name.to_owned(),
                part,
                reason,
            };
            let upper = name.trim().to_uppercase();
            if change.disabled {
                catalogue.remove(&upper);
                continue;
            }
            let base = catalogue.get(&upper);
            let base_grant = base.map(|b| b.grant);
            let price = change.price.or(base.map(|b| b.price)).unwrap_or(Fen::ZERO);
            let base_span = base_grant.and_then(|g| match g {
                Grant::Membership { span } | Grant::DayPass { span } | Grant::ToolRoom { span } => {
                    Some(span)
                }
                Grant::Entries { window, .. } => Some(window),
                Grant::Nothing => None,
            });
            let kind = change
                .grants
                .or(base_grant.map(GrantKind::of))
                .ok_or_else(|| fail(Some("grants"), Invalid::new("is required for a new plan")))?;
            let span = |what: &str| {
                change.span.or(base_span).ok_or_else(|| {
                    fail(
                        None,
                        Invalid::new(format!("a {what} plan needs months or days")),
                    )
                })
            };
            let grant = match kind {
                GrantKind::Membership => Grant::Membership {
                    span: span("membership")?,
                },
                GrantKind::DayPass => Grant::DayPass {
                    span: span("day_pass")?,
                },
                GrantKind::ToolRoom => Grant::ToolRoom {
                    span: span("tool_room")?,
                },
                GrantKind::Entries => {
                    let days = change
                        .entry_days
                        .or(match base_grant {
                            Some(Grant::Entries { days, .. }) => Some(days),
                            _ => None,
                        })
                        .ok_or_else(|| {
                            fail(
                                Some("entry_days"),
                                Invalid::new("is required for an entries plan"),
                            )
                        })?;
                    Grant::Entries {
                        days,
                        window: span("entries")?,
                    }
                }
                GrantKind::Nothing => Grant::Nothing,
            };
            let plan = Plan::new(name, price, grant).map_err(|e| fail(None, e))?;
            catalogue.insert(upper, plan);
        }
        Plans::new(catalogue.into_values().collect()).map_err(|e| OverrideError {
            plan: String::new(),
            part: None,
            reason: e,
        })
    }
}

#[cfg(test)]
mod override_tests {
    use super::*;

    #[test]
    fn overrides_change_add_and_remove_plans() {
        let change = |f: fn(&mut PlanOverride)| {
            let mut o = PlanOverride::default();
            f(&mut o);
            o
        };
        let price = change(|o| o.price = Some(Fen::from_yuan(250)));
        let year = change(|o| {
            o.price = Some(Fen::from_yuan(2000));
            o.grants = Some(GrantKind::Membership);
            o.span = Some(CalendarSpan::Months(12));
        });
        let gone = change(|o| o.disabled = true);
        let more_days = change(|o| o.entry_days = Some(12));
        let plans = Plans::standard()
            .with_overrides([
                ("1M MEMBERSHIP", &price),
                ("Year", &year),
                ("CROWD FUNDING", &gone),
                ("10 ENTRIES", &more_days),
            ])
            .unwrap();
        assert_eq!(
            plans.get("1M MEMBERSHIP").unwrap().price,
            Fen::from_yuan(250)
        );
        assert_eq!(
            plans.get("YEAR").unwrap().grant,
            Grant::Membership {
                span: CalendarSpan::Months(12)
            }
        );
        assert!(plans.get("CROWD FUNDING").is_err());
        assert!(matches!(
            plans.get("10 ENTRIES").unwrap().grant,
            Grant::Entries { days: 12, .. }
        ));
        // a new plan must say what it grants, and an entries plan how many days
        let bare = PlanOverride::default();
        let e = Plans::standard()
            .with_overrides([("NEW", &bare)])
            .unwrap_err();
        assert_eq!((e.plan.as_str(), e.part), ("NEW", Some("grants")));
        let entries = change(|o| {
            o.grants = Some(GrantKind::Entries);
            o.span = Some(CalendarSpan::Days(30));
        });
        let e = Plans::standard()
            .with_overrides([("PACK", &entries)])
            .unwrap_err();
        assert_eq!(e.part, Some("entry_days"));
        assert!(GrantKind::parse("membership").is_ok());
        assert!(GrantKind::parse("gym").is_err());
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
