//! The staff's and operators' use cases: API keys, partner applications,
//! members' passwords and deactivation (the CLI today, the console next).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use zhima_domain::ids::OpenId;
use zhima_domain::partner::PartnerScope;
use zhima_domain::password::Password;
use zhima_domain::scope::Scopes;
use zhima_oauth::{Provider, Registered};
use zhima_storage::oauth::OAuthClient;
use zhima_storage::{ApiKey, Store};

use crate::AppError;

/// The administration use cases over storage and the OAuth2 provider.
#[derive(Debug, Clone)]
pub struct Admin {
    store: Store,
    provider: Provider,
}

impl Admin {
    /// Administration over `store`, registering partners with `provider`.
    pub fn new(store: Store, provider: Provider) -> Admin {
        Admin { store, provider }
    }

    /// A new API key: the stored key and the key itself, which is shown
    /// once and never stored. Blocking.
    pub fn create_api_key(
        &self,
        name: &str,
        scopes: &Scopes,
        now: DateTime<Utc>,
    ) -> Result<(ApiKey, String), AppError> {
        Ok(self.store.create_api_key(name, scopes, now)?)
    }

    /// Every API key (never the keys themselves). Blocking.
    pub fn api_keys(&self) -> Result<Vec<ApiKey>, AppError> {
        Ok(self.store.list_api_keys()?)
    }

    /// Revokes the active key named `name`; `false` if there is none.
    /// Blocking.
    pub fn revoke_api_key(&self, name: &str, now: DateTime<Utc>) -> Result<bool, AppError> {
        Ok(self.store.revoke_api_key(name, now)?)
    }

    /// Registers a partner application; its secret (confidential ones) is
    /// shown once. Blocking (argon2id).
    pub fn register_partner(
        &self,
        name: &str,
        redirect_uris: &[String],
        public: bool,
        scopes: &BTreeSet<PartnerScope>,
        now: DateTime<Utc>,
    ) -> Result<Registered, zhima_oauth::OAuthError> {
        self.provider
            .register(name, redirect_uris, public, scopes, now)
    }

    /// Every partner application, removed ones included. Blocking.
    pub fn partners(&self) -> Result<Vec<OAuthClient>, AppError> {
        Ok(self.store.oauth_clients()?)
    }

    /// Removes a partner and revokes every token it holds; `false` if there
    /// is no such active partner. Blocking.
    pub fn remove_partner(&self, client_id: &str, now: DateTime<Utc>) -> Result<bool, AppError> {
        Ok(self.store.remove_oauth_client(client_id, now)?)
    }

    /// Requires PKCE of a partner, or lets an old confidential one go
    /// without; `false` if there is no such active partner. Blocking.
    pub fn set_partner_pkce(&self, client_id: &str, required: bool) -> Result<bool, AppError> {
        Ok(self.store.set_oauth_client_pkce(client_id, required)?)
    }

    /// Gives a member a password of their own (the only way out of the
    /// default password). Blocking (argon2id).
    pub fn set_password(
        &self,
        openid: &OpenId,
        password: &Password,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        Ok(self
            .store
            .set_password(openid, password.expose(), false, now)?)
    }

    /// Deactivates a member (status `INVALID`, every partner grant revoked)
    /// or reactivates one. Blocking.
    pub fn set_deactivated(
        &self,
        openid: &OpenId,
        deactivated: bool,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        Ok(self.store.set_deactivated(openid, deactivated, now)?)
    }
}
