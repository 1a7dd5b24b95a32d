//! The members' token wallets: what a partner reads (profile and balances)
//! and spends (VIP periods), and the staff's free-token gifts.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use zhima_domain::ids::{MemberId, OpenId};
use zhima_domain::partner::{vip_at, Balance, TokenKind, Tokens, VipLevel, VipOffer};
use zhima_storage::wallet::{VipOutcome, VipPurchase};
use zhima_storage::{MemberKey, MemberRecord, Store};

use crate::AppError;

/// What a partner with the `profile` scope reads.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The member.
    pub record: MemberRecord,
    /// Their paid and free tokens.
    pub balance: Balance,
    /// The VIP level covering the request's instant.
    pub vip: Option<VipLevel>,
}

/// The wallet's use cases over storage, the VIP offer and the time zone.
#[derive(Debug, Clone)]
pub struct Wallet {
    store: Store,
    offer: VipOffer,
    tz: Tz,
}

impl Wallet {
    /// The wallet over `store`, selling `offer`, in zone `tz`.
    pub fn new(store: Store, offer: VipOffer, tz: Tz) -> Wallet {
        Wallet { store, offer, tz }
    }

    /// A member's profile and balances at `now`; `None` if the member is
    /// gone. Blocking.
    pub fn profile(
        &self,
        member: MemberId,
        now: DateTime<Utc>,
    ) -> Result<Option<Profile>, AppError> {
        let Some(record) = self.store.member(MemberKey::Id(member))? else {
            return Ok(None);
        };
        Ok(Some(Wallet::profile_of(record, now)))
    }

    /// The profile of a member already read (with the token check, in one
    /// statement: `Provider::check_access_with_member`).
    pub fn profile_of(record: MemberRecord, now: DateTime<Utc>) -> Profile {
        Profile {
            vip: vip_at(&record.vip, now),
            balance: record.balance,
            record,
        }
    }

    /// One VIP period of `level` for `member`, bought by partner `client_id`
    /// with the member's tokens (free ones first), at the offer's price; an
    /// `idempotency_key` makes a retry answer the first purchase. Blocking.
    pub fn buy_vip(
        &self,
        member: MemberId,
        client_id: &str,
        level: VipLevel,
        idempotency_key: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<VipOutcome, AppError> {
        let purchase = VipPurchase {
            member_id: member,
            client_id,
            level,
            price: self.offer.price(level),
            span: self.offer.span,
            tz: self.tz,
            idempotency_key,
        };
        Ok(self.store.buy_vip(&purchase, now)?)
    }

    /// Credits tokens to a member (a staff gift, a correction): the new
    /// balances. The amount must be more than 0 and the reason 1 to 200
    /// characters (it stays in the ledger); the audit log names `by`.
    /// Blocking.
    pub fn grant(
        &self,
        openid: &OpenId,
        kind: TokenKind,
        amount: Tokens,
        reason: &str,
        by: &crate::audit::Actor,
        now: DateTime<Utc>,
    ) -> Result<Balance, AppError> {
        if amount == Tokens::ZERO {
            return Err(AppError::Invalid {
                field: "amount",
                reason: "must be more than 0".into(),
            });
        }
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 200 {
            return Err(AppError::Invalid {
                field: "reason",
                reason: "must be 1 to 200 characters".into(),
            });
        }
        let note = by.note(
            "tokens.grant",
            format!("member {openid}"),
            String::new(),
            format!("{kind:?} tokens +{amount}\nreason={reason}"),
            now,
        );
        Ok(self
            .store
            .audited(note)
            .grant_tokens(openid, kind, amount, reason, now)?)
    }

    /// A member's balances; `None` if there is no such member. Blocking.
    pub fn balance(&self, openid: &OpenId) -> Result<Option<Balance>, AppError> {
        let Some(record) = self.store.member(MemberKey::OpenId(openid))? else {
            return Ok(None);
        };
        Ok(Some(self.store.balance(record.member.id)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zhima_storage::testing::TestDatabase;
    use zhima_storage::StorageError;

    #[test]
    fn a_gift_needs_an_amount_and_a_reason_before_anything_is_looked_up() {
        let db = TestDatabase::new().unwrap();
        let store = Store::open(db.url(), &Default::default()).unwrap();
        store.migrate().unwrap();
        let wallet = Wallet::new(
            store,
            VipOffer::default(),
            zhima_domain::time::DEFAULT_TIMEZONE,
        );
        let nobody = OpenId::parse("nobody-0001").unwrap();
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let op = crate::audit::Actor::operator("test");
        let zero = wallet.grant(&nobody, TokenKind::Free, Tokens::ZERO, "gift", &op, now);
        assert!(
            matches!(
                zero,
                Err(AppError::Invalid {
                    field: "amount",
                    ..
                })
            ),
            "{zero:?}"
        );
        let one = Tokens::whole(1);
        for reason in ["", "  ", &"x".repeat(201)] {
            let r = wallet.grant(&nobody, TokenKind::Free, one, reason, &op, now);
            assert!(
                matches!(
                    r,
                    Err(AppError::Invalid {
                        field: "reason",
                        ..
                    })
                ),
                "{r:?}"
            );
        }
        let r = wallet.grant(&nobody, TokenKind::Free, one, "gift", &op, now);
        assert!(
            matches!(r, Err(AppError::Storage(StorageError::MemberNotFound))),
            "{r:?}"
        );
        assert!(wallet.balance(&nobody).unwrap().is_none());
    }
}
