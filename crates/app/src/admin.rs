//! The admins' and operators' use cases: API keys, partner applications,
//! members' passwords, tags and deactivation, from the console and the CLI.
//! Each change names its [`Actor`] and leaves a row in the audit log, in
//! the transaction of the change.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use zhima_domain::ids::OpenId;
use zhima_domain::member::MemberChange;
use zhima_domain::partner::PartnerScope;
use zhima_domain::password::Password;
use zhima_domain::scope::Scopes;
use zhima_domain::tags::Tags;
use zhima_oauth::{Provider, Registered};
use zhima_storage::oauth::OAuthClient;
use zhima_storage::{ApiKey, MemberKey, Store};

use crate::audit::{member_subject, Actor};
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
        by: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(ApiKey, String), AppError> {
        let note = by.note(
            "api_key.create",
            format!("API key {}", name.trim()),
            String::new(),
            format!("scopes={scopes}"),
            now,
        );
        Ok(self.store.audited(note).create_api_key(name, scopes, now)?)
    }

    /// Every API key (never the keys themselves). Blocking.
    pub fn api_keys(&self) -> Result<Vec<ApiKey>, AppError> {
        Ok(self.store.list_api_keys()?)
    }

    /// Revokes the active key named `name`; `false` if there is none.
    /// Blocking.
    pub fn revoke_api_key(
        &self,
        name: &str,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> Result<bool, AppError> {
        let note = by.note(
            "api_key.revoke",
            format!("API key {name}"),
            "active".into(),
            "revoked".into(),
            now,
        );
        Ok(self.store.audited(note).revoke_api_key(name, now)?)
    }

    /// Registers a partner application; its secret (confidential ones) is
    /// shown once. Blocking (argon2id).
    pub fn register_partner(
        &self,
        name: &str,
        redirect_uris: &[String],
        public: bool,
        scopes: &BTreeSet<PartnerScope>,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Registered, zhima_oauth::OAuthError> {
        let registered = self
            .provider
            .register(name, redirect_uris, public, scopes, now)?;
        let client = &registered.client;
        let note = by.note(
            "partner.add",
            format!("partner {} {}", client.client_id, client.name),
            String::new(),
            format!(
                "{}\nscopes={}\nredirect_uris={}",
                if client.is_public() {
                    "public"
                } else {
                    "confidential"
                },
                PartnerScope::join(&client.scopes),
                client.redirect_uris.join(" ")
            ),
            now,
        );
        // registered by the provider in its own transaction: recorded once it
        // succeeded (a failure here is logged; the partner exists)
        if let Err(e) = self.store.record_audit(&note) {
            tracing::error!(error = %e, "a partner registration could not be audited");
        }
        Ok(registered)
    }

    /// Every partner application, removed ones included. Blocking.
    pub fn partners(&self) -> Result<Vec<OAuthClient>, AppError> {
        Ok(self.store.oauth_clients()?)
    }

    /// Removes a partner and revokes every token it holds; `false` if there
    /// is no such active partner. Blocking.
    pub fn remove_partner(
        &self,
        client_id: &str,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> Result<bool, AppError> {
        let note = by.note(
            "partner.remove",
            format!("partner {client_id}"),
            "active".into(),
            "removed, tokens revoked".into(),
            now,
        );
        Ok(self
            .store
            .audited(note)
            .remove_oauth_client(client_id, now)?)
    }

    /// Requires PKCE of a partner, or lets an old confidential one go
    /// without; `false` if there is no such active partner. Blocking.
    pub fn set_partner_pkce(
        &self,
        client_id: &str,
        required: bool,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> Result<bool, AppError> {
        let note = by.note(
            "partner.pkce",
            format!("partner {client_id}"),
            String::new(),
            format!("pkce={}", if required { "required" } else { "optional" }),
            now,
        );
        Ok(self
            .store
            .audited(note)
            .set_oauth_client_pkce(client_id, required)?)
    }

    /// Gives a member a password of their own (the only way out of the
    /// default password). Blocking (argon2id).
    pub fn set_password(
        &self,
        openid: &OpenId,
        password: &Password,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let member = self.member(openid)?;
        // the log says that a password was set, never which
        let note = by.note(
            "member.set_password",
            member_subject(&member),
            String::new(),
            "password set".into(),
            now,
        );
        Ok(self
            .store
            .audited(note)
            .set_password(openid, password.expose(), false, now)?)
    }

    /// Deactivates a member (status `INVALID`, every partner grant revoked)
    /// or reactivates one. Blocking.
    pub fn set_deactivated(
        &self,
        openid: &OpenId,
        deactivated: bool,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let member = self.member(openid)?;
        let was = if member.deactivated_at.is_some() {
            "deactivated"
        } else {
            "active"
        };
        let will = if deactivated { "deactivated" } else { "active" };
        if was == will {
            return Ok(());
        }
        let action = if deactivated {
            "member.deactivate"
        } else {
            "member.reactivate"
        };
        let note = by.note(
            action,
            member_subject(&member),
            was.into(),
            will.into(),
            now,
        );
        Ok(self
            .store
            .audited(note)
            .set_deactivated(openid, deactivated, now)?)
    }

    /// Gives a member new tags (their role follows: `STAFF`, `ADMIN`).
    /// Blocking.
    pub fn set_tags(
        &self,
        openid: &OpenId,
        tags: Tags,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let member = self.member(openid)?;
        let changes = [MemberChange::Tags(tags)];
        let Some((before, after)) = crate::audit::describe_changes(&member, &changes) else {
            return Ok(());
        };
        let note = by.note("member.tags", member_subject(&member), before, after, now);
        self.store
            .audited(note)
            .update_member(openid, &changes, now)?;
        Ok(())
    }

    /// The member with `openid`, or [`zhima_storage::StorageError::MemberNotFound`].
    fn member(&self, openid: &OpenId) -> Result<zhima_domain::member::Member, AppError> {
        Ok(self
            .store
            .member(MemberKey::OpenId(openid))?
            .ok_or(zhima_storage::StorageError::MemberNotFound)?
            .member)
    }
}
