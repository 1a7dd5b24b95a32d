//! API-key authentication: `Authorization: Bearer <key>` with a scope per route.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{web, FromRequest, HttpRequest};
use zhima_domain::expiring::ExpiringMap;
use zhima_domain::scope::Scope;
use zhima_domain::sync::lock;
use zhima_domain::Errno;
use zhima_storage::credentials::hash_api_key;
use zhima_storage::ApiKey;

use crate::error::{ApiError, Operation};
use crate::request::BearerError;
use crate::AppState;

/// How long a successful key lookup is reused. A key revoked with
/// `zhima api-key revoke` stops working within this time.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(1);
const KEY_CACHE_CAPACITY: usize = 1024;

/// Recently verified API keys, by the SHA-256 of the key (never the key).
/// Only successes are kept; an unknown key is looked up every time.
#[derive(Debug)]
pub struct KeyCache {
    entries: Mutex<ExpiringMap<String, ApiKey, Instant>>,
}

impl Default for KeyCache {
    fn default() -> KeyCache {
        KeyCache {
            entries: Mutex::new(ExpiringMap::new(KEY_CACHE_CAPACITY)),
        }
    }
}

impl KeyCache {
    fn get(&self, hash: &str, now: Instant) -> Option<ApiKey> {
        lock(&self.entries).get(&hash.to_owned(), now).cloned()
    }

    fn put(&self, hash: String, key: ApiKey, now: Instant) {
        lock(&self.entries).insert(hash, key, now + KEY_CACHE_TTL, now);
    }
}

/// A scope a route requires, as a type.
pub trait RequiredScope {
    /// The scope.
    const SCOPE: Scope;
}

/// `member:read`.
#[derive(Debug)]
pub struct MemberRead;
impl RequiredScope for MemberRead {
    const SCOPE: Scope = Scope::MemberRead;
}

/// `member:write`.
#[derive(Debug)]
pub struct MemberWrite;
impl RequiredScope for MemberWrite {
    const SCOPE: Scope = Scope::MemberWrite;
}

/// `door:open`.
#[derive(Debug)]
pub struct DoorOpen;
impl RequiredScope for DoorOpen {
    const SCOPE: Scope = Scope::DoorOpen;
}

/// `admin`.
#[derive(Debug)]
pub struct Admin;
impl RequiredScope for Admin {
    const SCOPE: Scope = Scope::Admin;
}

/// An extractor that succeeds only for a live API key holding scope `S`:
/// 401 (errno 1401) without a key or with an unknown or revoked one, 403
/// (errno 1403) with a key lacking the scope.
#[derive(Debug)]
pub struct Authorized<S> {
    /// The key that was presented.
    pub key: ApiKey,
    scope: PhantomData<S>,
}

/// The API key of a request, if it has exactly one well-formed one.
fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let required = || {
        ApiError::new(
            Errno::Unauthorized,
            "Authorization: Bearer <api key> is required",
        )
    };
    match crate::request::bearer(req) {
        Ok(Some(key)) => Ok(key),
        Ok(None) | Err(BearerError::Malformed) => Err(required()),
        Err(BearerError::Repeated) => Err(ApiError::new(
            Errno::Unauthorized,
            "more than one Authorization header",
        )),
    }
}

impl<S: RequiredScope + 'static> FromRequest for Authorized<S> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let token = bearer(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let hash = hash_api_key(&token?);
            let state =
                state.ok_or_else(|| ApiError::new(Errno::Internal, Errno::Internal.meaning()))?;
            let key = match state.key_cache.get(&hash, Instant::now()) {
                Some(key) => key,
                None => {
                    let (st, h) = (state.clone(), hash.clone());
                    let key = web::block(move || st.store.api_key_by_hash(&h))
                        .await?
                        .map_err(ApiError::storage(Operation::Read))?
                        .ok_or_else(|| {
                            ApiError::new(Errno::Unauthorized, "unknown or revoked API key")
                        })?;
                    state.key_cache.put(hash, key.clone(), Instant::now());
                    key
                }
            };
            if !key.scopes.allows(S::SCOPE) {
                return Err(ApiError::new(
                    Errno::Forbidden,
                    format!("this API key lacks the scope {}", S::SCOPE),
                ));
            }
            Ok(Authorized {
                key,
                scope: PhantomData,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zhima_domain::scope::Scopes;

    fn key(id: i64) -> ApiKey {
        ApiKey {
            id,
            name: format!("k{id}"),
            scopes: Scopes::parse("member:read").unwrap(),
            created_at: chrono::DateTime::UNIX_EPOCH,
            revoked_at: None,
        }
    }

    #[test]
    fn cached_keys_expire_after_the_ttl() {
        let cache = KeyCache::default();
        let t0 = Instant::now();
        cache.put("h".into(), key(1), t0);
        assert_eq!(cache.get("h", t0).map(|k| k.id), Some(1));
        assert_eq!(
            cache
                .get("h", t0 + KEY_CACHE_TTL - Duration::from_millis(1))
                .map(|k| k.id),
            Some(1)
        );
        assert!(cache.get("h", t0 + KEY_CACHE_TTL).is_none());
        assert!(cache.get("other", t0).is_none());
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = KeyCache::default();
        let t0 = Instant::now();
        for i in 0..(KEY_CACHE_CAPACITY as i64 * 3) {
            cache.put(format!("h{i}"), key(i), t0);
        }
        assert!(cache.entries.lock().unwrap().len() <= KEY_CACHE_CAPACITY);
        // the newest are kept
        assert!(cache
            .get(&format!("h{}", KEY_CACHE_CAPACITY as i64 * 3 - 1), t0)
            .is_some());
    }
}
