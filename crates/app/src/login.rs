//! Logging in with a nickName and password (the OAuth pages today, the
//! staff console and the member pages next), and the attempt limiter that
//! slows guessing down.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use zhima_domain::expiring::ExpiringMap;
use zhima_domain::ids::{MemberId, NickName};
use zhima_domain::sync::lock;
use zhima_storage::credentials::{verify_password_admitted, Busy};
use zhima_storage::{StorageError, Store};

/// Failed logins allowed per account within the window.
pub const ACCOUNT_FAILURES: usize = 5;
/// Failed logins allowed per address within the window.
pub const ADDRESS_FAILURES: usize = 20;
/// The window failures are counted in.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Counts failed attempts (logins, client authentications) per key, such
/// as an account or an address, within [`FAILURE_WINDOW`]; at most [`LIMITER_KEYS`] keys are tracked, so invented account
/// names cannot grow it without bound.
#[derive(Debug)]
pub struct AttemptLimiter {
    failures: Mutex<ExpiringMap<String, Vec<Instant>, Instant>>,
}

/// How many accounts and addresses a limiter tracks at once.
pub const LIMITER_KEYS: usize = 65_536;

impl Default for AttemptLimiter {
    fn default() -> AttemptLimiter {
        AttemptLimiter::with_capacity(LIMITER_KEYS)
    }
}

impl AttemptLimiter {
    /// A limiter tracking at most `keys` accounts and addresses.
    pub fn with_capacity(keys: usize) -> AttemptLimiter {
        AttemptLimiter {
            failures: Mutex::new(ExpiringMap::new(keys)),
        }
    }

    /// Reserves one attempt under every key at once, before any password is
    /// checked: `Err(wait)` when a key is already at its limit. The
    /// reservation counts as a failure until [`AttemptLimiter::give_back`]
    /// returns it, so a concurrent burst cannot pass more guesses than the
    /// limit.
    pub fn attempt(&self, keys: &[(String, usize)], now: Instant) -> Result<(), Duration> {
        let mut map = lock(&self.failures);
        let mut wait = None;
        for (key, limit) in keys {
            if let Some(v) = map.get_mut(key, now) {
                v.retain(|t| now.duration_since(*t) < FAILURE_WINDOW);
                if v.len() >= *limit {
                    let w = FAILURE_WINDOW - now.duration_since(v[0]);
                    wait = Some(wait.map_or(w, |x: Duration| x.max(w)));
                }
            }
        }
        if let Some(wait) = wait {
            return Err(wait);
        }
        for (key, _) in keys {
            // a key lives as long as its newest attempt counts
            match map.get_mut(key, now) {
                Some(v) => {
                    v.push(now);
                    map.extend(key, now + FAILURE_WINDOW);
                }
                None => map.insert(key.clone(), vec![now], now + FAILURE_WINDOW, now),
            }
        }
        Ok(())
    }

    /// The attempt reserved at `at` did not fail: each key gets its place back.
    pub fn give_back(&self, keys: &[(String, usize)], at: Instant) {
        let mut map = lock(&self.failures);
        for (key, _) in keys {
            if let Some(v) = map.get_mut(key, at) {
                if let Some(pos) = v.iter().position(|t| *t == at) {
                    v.remove(pos);
                }
            }
        }
    }

    /// Forgets every failure of `key` (an account that logged in).
    pub fn forget(&self, key: &str) {
        lock(&self.failures).remove(&key.to_owned());
    }
}

/// Why a login did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Too many failures for the account or the address: retry after this.
    #[error("too many failed logins")]
    TooMany(Duration),
    /// Unknown nickName, wrong password, a deactivated member, or a member
    /// still on the default password (which never logs in): one answer for
    /// all, so a stranger learns nothing.
    #[error("wrong nickName or password")]
    Refused,
    /// Too many password checks are running; retry in a moment.
    #[error("too many password checks at once")]
    Busy,
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The login use case.
#[derive(Debug)]
pub struct Logins {
    store: Store,
    limiter: AttemptLimiter,
}

impl Logins {
    /// Logins over `store`, with a fresh limiter.
    pub fn new(store: Store) -> Logins {
        Logins {
            store,
            limiter: AttemptLimiter::default(),
        }
    }

    /// Checks `nickname` and `password` from `address` at `at`: the member
    /// who logged in. The attempt is counted against the account and the
    /// address before the password is checked (given back if it succeeds);
    /// an account that is not there, not active or still on the default
    /// password is checked against a dummy hash of the same cost, so the
    /// answer takes as long and says the same. Blocking (argon2id).
    pub fn login(
        &self,
        nickname: &str,
        password: &str,
        address: &str,
        at: Instant,
    ) -> Result<MemberId, LoginError> {
        let account = NickName::fold(nickname);
        let keys = [
            (format!("account:{account}"), ACCOUNT_FAILURES),
            (format!("address:{address}"), ADDRESS_FAILURES),
        ];
        self.limiter
            .attempt(&keys, at)
            .map_err(LoginError::TooMany)?;
        let login = match self.store.member_login(&account) {
            Ok(l) => l,
            Err(e) => {
                self.limiter.give_back(&keys, at);
                return Err(e.into());
            }
        };
        let usable = login.filter(|l| !l.deactivated && !l.must_change_password);
        let stored = usable.as_ref().map(|l| l.password_hash.as_str());
        match verify_password_admitted(password, stored) {
            Err(Busy) => {
                self.limiter.give_back(&keys, at);
                Err(LoginError::Busy)
            }
            Ok(true) => {
                self.limiter.give_back(&keys, at);
                self.limiter.forget(&keys[0].0);
                usable.map(|l| l.id).ok_or(LoginError::Refused)
            }
            Ok(false) => Err(LoginError::Refused),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_reserves_attempts_before_they_are_checked() {
        let l = AttemptLimiter::default();
        let t0 = Instant::now();
        let keys = [("account:a".to_owned(), 2), ("address:x".to_owned(), 3)];
        // two attempts in flight at once fill the account's limit: a third
        // concurrent one is refused before any password is checked
        assert!(l.attempt(&keys, t0).is_ok());
        assert!(l.attempt(&keys, t0).is_ok());
        assert!(l.attempt(&keys, t0).is_err(), "account limit reached");
        // one of them succeeded: its place comes back, the account is forgotten
        l.give_back(&keys, t0);
        l.forget("account:a");
        // account 1 of 2, address 2 of 3
        assert!(l.attempt(&keys, t0).is_ok());
        l.forget("account:a");
        // account 1 of 2, address 3 of 3
        assert!(l.attempt(&keys, t0).is_ok());
        assert!(l.attempt(&keys, t0).is_err(), "address limit reached");
        assert!(
            l.attempt(&keys, t0 + FAILURE_WINDOW).is_ok(),
            "forgotten after the window"
        );
    }

    #[test]
    fn invented_accounts_cannot_grow_the_limiter_without_bound() {
        let l = AttemptLimiter::with_capacity(100);
        let t0 = Instant::now();
        for i in 0..1000 {
            let keys = [(format!("account:nobody{i}"), ACCOUNT_FAILURES)];
            assert!(l.attempt(&keys, t0).is_ok());
        }
        assert_eq!(l.failures.lock().unwrap().len(), 100);
    }

    #[test]
    fn a_burst_of_concurrent_attempts_passes_no_more_than_the_limit() {
        let l = std::sync::Arc::new(AttemptLimiter::default());
        let t0 = Instant::now();
        let passed: usize = (0..50)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || {
                    let keys = [("account:a".to_owned(), ACCOUNT_FAILURES)];
                    usize::from(l.attempt(&keys, t0).is_ok())
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(passed, ACCOUNT_FAILURES);
    }
}
