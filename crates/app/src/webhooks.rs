//! Webhooks: the admins' use cases (add, list, remove, the delivery log)
//! and how a delivery is signed.
//!
//! A delivery is a JSON `POST` with these headers:
//! - `X-Zhima-Event`: the event (`payment.recorded`…);
//! - `X-Zhima-Delivery`: the delivery's number (the same on a retry);
//! - `X-Zhima-Timestamp`: unix seconds when it was sent;
//! - `X-Zhima-Signature`: `sha256=` and the lowercase hex HMAC-SHA256, keyed
//!   with the webhook's secret (its text, as shown once when it was added),
//!   of the timestamp, a `.`, and the body's bytes.
//!
//! The secret is never stored: it is derived from the server's key and the
//! webhook's salt, so the database alone cannot sign.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zhima_storage::webhooks::{Delivered, Webhook, EVENTS};
use zhima_storage::Store;

use crate::audit::Actor;
use crate::AppError;

type HmacSha256 = Hmac<Sha256>;

/// Something that POSTs a delivery (HTTP in the server; a recorder in tests).
pub trait Poster: Send + Sync + std::fmt::Debug {
    /// POSTs `body` with `headers` to `url`: the answer's status, or why
    /// there was none. Blocking.
    fn post(&self, url: &str, headers: &[(&str, String)], body: &[u8]) -> Result<u16, String>;
}

/// The key webhook secrets are derived from.
#[derive(Clone)]
pub struct WebhookKey([u8; 32]);

impl std::fmt::Debug for WebhookKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookKey(***)")
    }
}

impl WebhookKey {
    /// The key, from 32 bytes of the server's secret material.
    pub fn new(bytes: [u8; 32]) -> WebhookKey {
        WebhookKey(bytes)
    }

    /// The signing secret of `hook` (64 hex digits).
    pub fn secret(&self, hook: &Webhook) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.0).unwrap_or_else(|_| unreachable_key());
        mac.update(format!("zhima webhook v1:{}:{}", hook.id, hook.salt).as_bytes());
        zhima_storage::credentials::hex(&mac.finalize().into_bytes())
    }
}

/// HMAC accepts keys of any length; this is never reached.
fn unreachable_key() -> HmacSha256 {
    #[allow(clippy::expect_used)]
    HmacSha256::new_from_slice(&[0u8; 32]).expect("HMAC takes any key length")
}

/// The `X-Zhima-Signature` of `body` sent at `timestamp` with `secret`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable_key());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "sha256={}",
        zhima_storage::credentials::hex(&mac.finalize().into_bytes())
    )
}

/// The admins' webhook use cases.
#[derive(Debug, Clone)]
pub struct Webhooks {
    store: Store,
    key: WebhookKey,
}

impl Webhooks {
    /// Webhooks over `store`, their secrets derived with `key`.
    pub fn new(store: Store, key: WebhookKey) -> Webhooks {
        Webhooks { store, key }
    }

    /// Adds a webhook: the webhook and its secret, shown once. `url` must be
    /// `https://`, or `http://` when `insecure_http` (a receiver on the
    /// space's own network); `events` each one of the known events.
    /// Audited. Blocking.
    pub fn add(
        &self,
        url: &str,
        events: &str,
        insecure_http: bool,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(Webhook, String), AppError> {
        let url = url.trim();
        let parsed = url::Url::parse(url).ok().filter(|u| {
            let scheme_ok = u.scheme() == "https" || (u.scheme() == "http" && insecure_http);
            scheme_ok
                && u.host_str().is_some_and(|h| !h.is_empty())
                && u.username().is_empty()
                && u.password().is_none()
        });
        if parsed.is_none() || url.len() > 2000 {
            return Err(AppError::Invalid {
                field: "url",
                reason: "must be an https:// URL with a host and no credentials \
                         (http:// only with --insecure-http), at most 2000 characters"
                    .into(),
            });
        }
        let mut wanted: Vec<String> = Vec::new();
        for event in events.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if !EVENTS.contains(&event) {
                return Err(AppError::Invalid {
                    field: "events",
                    reason: format!("unknown event {event:?}; known: {}", EVENTS.join(", ")),
                });
            }
            if !wanted.iter().any(|w| w == event) {
                wanted.push(event.to_owned());
            }
        }
        if wanted.is_empty() {
            return Err(AppError::Invalid {
                field: "events",
                reason: format!("name at least one of {}", EVENTS.join(", ")),
            });
        }
        let hook = self.store.add_webhook(url, &wanted, now)?;
        let note = by.note(
            "webhook.add",
            format!("webhook {} {}", hook.id, hook.url),
            String::new(),
            format!("events={}", wanted.join(",")),
            now,
        );
        self.store.record_audit(&note)?;
        let secret = self.key.secret(&hook);
        Ok((hook, secret))
    }

    /// Every webhook. Blocking.
    pub fn list(&self) -> Result<Vec<Webhook>, AppError> {
        Ok(self.store.webhooks()?)
    }

    /// Removes webhook `id`; `false` if there is no such active one.
    /// Audited. Blocking.
    pub fn remove(&self, id: i64, by: &Actor, now: DateTime<Utc>) -> Result<bool, AppError> {
        let note = by.note(
            "webhook.remove",
            format!("webhook {id}"),
            "active".into(),
            "removed".into(),
            now,
        );
        Ok(self.store.audited(note).remove_webhook(id, now)?)
    }

    /// The latest deliveries, newest first. Blocking.
    pub fn log(&self, limit: u32) -> Result<Vec<Delivered>, AppError> {
        Ok(self.store.webhook_log(limit)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_urls_to_a_host_without_credentials_are_taken() {
        let db = zhima_storage::testing::TestDatabase::new().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(db.url(), &Default::default()).unwrap_or_else(|e| panic!("{e}"));
        store.migrate().unwrap_or_else(|e| panic!("{e}"));
        let hooks = Webhooks::new(store, WebhookKey::new([3; 32]));
        let op = Actor::operator("t");
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        for bad in [
            "https://",
            "https://[",
            "javascript:alert(1)",
            "https://user:pass@hooks.example/",
            "http://10.0.0.5/hook",
            "ftp://hooks.example/",
        ] {
            assert!(
                matches!(
                    hooks.add(bad, "door.entry", false, &op, now),
                    Err(AppError::Invalid { field: "url", .. })
                ),
                "{bad} was taken"
            );
        }
        let (hook, secret) = hooks
            .add(
                "http://10.0.0.5/hook",
                "door.entry, door.entry",
                true,
                &op,
                now,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(hook.events, ["door.entry"]);
        assert_eq!(secret.len(), 64);
        assert_eq!(
            secret,
            WebhookKey::new([3; 32]).secret(&hook),
            "the secret is derived again"
        );
        assert_ne!(secret, WebhookKey::new([4; 32]).secret(&hook));
    }

    #[test]
    fn the_signature_is_the_documented_hmac() {
        // HMAC-SHA256(key "secret", "1700000000.{}"), computed independently
        // (printf '1700000000.{}' | openssl dgst -sha256 -hmac secret)
        assert_eq!(
            signature("secret", 1_700_000_000, b"{}"),
            "sha256=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
    }
}
