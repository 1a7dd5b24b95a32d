//! API keys at the door of every Member API and door route: a presented key
//! is hashed (SHA-256; the key itself is never kept) and looked up, with a
//! one-second cache of successful checks so a burst of requests with one
//! key costs one lookup. A revoked key stops working within
//! [`KEY_CACHE_TTL`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zhima_domain::expiring::ExpiringMap;
use zhima_domain::sync::lock;
use zhima_storage::credentials::hash_api_key;
use zhima_storage::{ApiKey, StorageError, Store};

use crate::AppError;

/// How long a successful key lookup is reused. A key revoked with
/// `zhima api-key revoke` stops working within this time.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(1);
const KEY_CACHE_CAPACITY: usize = 1024;

/// Checks presented API keys against storage.
#[derive(Debug)]
pub struct ApiKeys {
    store: Store,
    /// Recently verified keys, by the SHA-256 of the key (never the key).
    /// Only successes are kept; an unknown key is looked up every time.
    verified: Mutex<ExpiringMap<String, ApiKey, Instant>>,
}

impl ApiKeys {
    /// Key checks over `store`.
    pub fn new(store: Store) -> ApiKeys {
        ApiKeys {
            store,
            verified: Mutex::new(ExpiringMap::new(KEY_CACHE_CAPACITY)),
        }
    }

    /// The live key `presented` is, if any (`None` for an unknown or
    /// revoked key). From the cache of successes when it was checked less
    /// than [`KEY_CACHE_TTL`] before `now`; else looked up: on the calling
    /// thread on SQLite when a connection is idle, otherwise on tokio's
    /// blocking pool.
    pub async fn check(
        self: &Arc<Self>,
        presented: &str,
        now: Instant,
    ) -> Result<Option<ApiKey>, AppError> {
        let hash = hash_api_key(presented);
        if let Some(key) = lock(&self.verified).get(&hash, now).cloned() {
            return Ok(Some(key));
        }
        let quick = self
            .store
            .without_waiting()
            .map(|store| store.api_key_by_hash(&hash));
        let found = match quick {
            Some(Err(StorageError::WouldWait)) | None => {
                let (store, h) = (self.store.clone(), hash.clone());
                tokio::task::spawn_blocking(move || store.api_key_by_hash(&h))
                    .await
                    .map_err(|_| AppError::Stopping)??
            }
            Some(found) => found?,
        };
        if let Some(key) = &found {
            lock(&self.verified).insert(hash, key.clone(), now + KEY_CACHE_TTL, now);
        }
        Ok(found)
    }

    /// How many successes are kept.
    #[cfg(test)]
    fn cached(&self) -> usize {
        lock(&self.verified).len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

    use super::*;
    use zhima_domain::scope::Scopes;
    use zhima_storage::testing::TestDatabase;
    use zhima_storage::StoreOptions;

    fn keys() -> (TestDatabase, Arc<ApiKeys>, Store) {
        let db = TestDatabase::new().unwrap();
        let store = Store::open(db.url(), &StoreOptions::default()).unwrap();
        store.migrate().unwrap();
        (db, Arc::new(ApiKeys::new(store.clone())), store)
    }

    #[tokio::test]
    async fn a_revoked_key_stops_working_once_its_success_expires() {
        let (_db, keys, store) = keys();
        let scopes = Scopes::parse("member:read").unwrap();
        let (made, secret) = store
            .create_api_key("desk", &scopes, chrono::Utc::now())
            .unwrap();
        let t0 = Instant::now();
        assert_eq!(
            keys.check(&secret, t0).await.unwrap().map(|k| k.id),
            Some(made.id)
        );
        store.revoke_api_key("desk", chrono::Utc::now()).unwrap();
        let within = t0 + KEY_CACHE_TTL - Duration::from_millis(1);
        assert!(keys.check(&secret, within).await.unwrap().is_some());
        assert!(
            keys.check(&secret, t0 + KEY_CACHE_TTL)
                .await
                .unwrap()
                .is_none(),
            "a revoked key was still accepted after the cache time"
        );
        assert!(keys.check("not-a-key", t0).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn only_successes_are_kept_and_the_cache_stays_bounded() {
        let (_db, keys, _store) = keys();
        let t0 = Instant::now();
        for i in 0..(KEY_CACHE_CAPACITY * 2) {
            assert!(keys
                .check(&format!("stranger-{i}"), t0)
                .await
                .unwrap()
                .is_none());
        }
        assert_eq!(keys.cached(), 0, "unknown keys must not be kept");
        let mut map = lock(&keys.verified);
        for i in 0..(KEY_CACHE_CAPACITY * 3) {
            let key = ApiKey {
                id: i as i64,
                name: format!("k{i}"),
                scopes: Scopes::parse("member:read").unwrap(),
                created_at: chrono::DateTime::UNIX_EPOCH,
                revoked_at: None,
            };
            map.insert(format!("h{i}"), key, t0 + KEY_CACHE_TTL, t0);
        }
        assert!(map.len() <= KEY_CACHE_CAPACITY, "{} kept", map.len());
    }
}
