//! oxide-auth's Registrar, Authorizer and Issuer, backed by zhima-storage.
//!
//! One [`Primitives`] lives for one request. It remembers what the flow
//! found (the code it redeemed, the refresh token it rotated, why it said
//! no) so the provider can answer precisely where oxide-auth only says
//! "invalid" or "primitive error".
//!
//! oxide-auth checks grant lifetimes against the system clock; zhima checks
//! them here against the request's `now`, and gives oxide-auth grants that
//! never expire on its own clock.

use std::borrow::Cow;
use std::cell::RefCell;

use chrono::{DateTime, Utc};
use oxide_auth::code_grant::extensions::Pkce;
use oxide_auth::code_grant::{accesstoken, authorization, refresh};
use oxide_auth::primitives::grant::{Extensions, Grant, Value};
use oxide_auth::primitives::issuer::{IssuedToken, RefreshedToken, TokenType};
use oxide_auth::primitives::prelude::{Authorizer, Issuer, Registrar, Scope};
use oxide_auth::primitives::registrar::{
    BoundClient, ClientUrl, ExactUrl, PreGrant, RegisteredUrl, RegistrarError,
};
use zhima_domain::expiring::ExpiringMap;
use zhima_domain::ids::MemberId;
use zhima_domain::partner::PartnerScope;
use zhima_domain::sync::lock;
use zhima_storage::credentials::verify_password_admitted;
use zhima_storage::oauth::{NewCode, NewTokens, OAuthClient, StoredCode, StoredToken, TokenKind};
use zhima_storage::{StorageError, Store};

use crate::{hash_token, random_token, Settings};

/// Why a flow said no, beyond what oxide-auth reports.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The database failed.
    Storage(StorageError),
    /// Too many secret checks are running: the client should retry shortly.
    Busy,
    /// A code or refresh token was presented again; its family is revoked.
    Replayed,
    /// A code or token that is expired, revoked or unknown.
    BadGrant,
}

pub(crate) struct Primitives<'a> {
    store: &'a Store,
    settings: &'a Settings,
    secrets: &'a SecretCache,
    now: DateTime<Utc>,
    client: RefCell<Option<OAuthClient>>,
    redeemed: Option<i64>,
    refreshing: RefCell<Option<StoredToken>>,
    pub(crate) failure: RefCell<Option<Failure>>,
    pub(crate) issued: Option<(IssuedToken, String)>,
    /// The client that passed authentication in this request.
    authenticated: RefCell<Option<String>>,
    /// The code this token request redeemed before oxide-auth's flow ran
    /// (the client, redirect URI and PKCE verifier were checked first).
    pub(crate) redeemed_code: Option<StoredCode>,
    /// Whether the authorization request being decided named its redirect URI.
    pub(crate) redirect_uri_sent: bool,
}

/// Client secrets verified lately. A partner's server authenticates on
/// every token request, and an argon2id verification costs tens of
/// milliseconds and 19 MiB; a secret that verified against the stored hash
/// is remembered, as its SHA-256, for a few minutes. The client is still
/// read from storage on every request, so a removed partner is refused at
/// once, and a changed hash forgets the entry.
#[derive(Debug)]
pub(crate) struct SecretCache {
    entries: std::sync::Mutex<ExpiringMap<String, CachedSecret, DateTime<Utc>>>,
}

impl Default for SecretCache {
    fn default() -> SecretCache {
        SecretCache {
            entries: std::sync::Mutex::new(ExpiringMap::new(SECRET_CACHE_CAPACITY)),
        }
    }
}

#[derive(Debug)]
struct CachedSecret {
    stored_hash: String,
    given_sha256: String,
}

const SECRET_CACHE_TTL_MINUTES: i64 = 10;
const SECRET_CACHE_CAPACITY: usize = 1024;

impl SecretCache {
    pub(crate) fn verified(
        &self,
        client_id: &str,
        stored_hash: &str,
        given: &str,
        now: DateTime<Utc>,
    ) -> bool {
        lock(&self.entries)
            .get(&client_id.to_owned(), now)
            .is_some_and(|c| c.stored_hash == stored_hash && c.given_sha256 == hash_token(given))
    }

    pub(crate) fn remember(
        &self,
        client_id: &str,
        stored_hash: &str,
        given: &str,
        now: DateTime<Utc>,
    ) {
        lock(&self.entries).insert(
            client_id.to_owned(),
            CachedSecret {
                stored_hash: stored_hash.to_owned(),
                given_sha256: hash_token(given),
            },
            now + chrono::Duration::minutes(SECRET_CACHE_TTL_MINUTES),
            now,
        );
    }
}

fn far_future() -> DateTime<Utc> {
    DateTime::<Utc>::MAX_UTC
}

fn pkce_id() -> Pkce {
    Pkce::optional()
}

impl<'a> Primitives<'a> {
    pub(crate) fn new(
        store: &'a Store,
        settings: &'a Settings,
        secrets: &'a SecretCache,
        now: DateTime<Utc>,
    ) -> Self {
        Primitives {
            store,
            settings,
            secrets,
            now,
            client: RefCell::new(None),
            redeemed: None,
            refreshing: RefCell::new(None),
            failure: RefCell::new(None),
            issued: None,
            authenticated: RefCell::new(None),
            redeemed_code: None,
            redirect_uri_sent: true,
        }
    }

    fn fail(&self, failure: Failure) {
        let mut slot = self.failure.borrow_mut();
        // the first reason is the one that counts
        if slot.is_none() {
            *slot = Some(failure);
        }
    }

    /// The client, looked up once per request.
    pub(crate) fn client(&self, client_id: &str) -> Result<Option<OAuthClient>, ()> {
        if let Some(c) = self.client.borrow().as_ref() {
            if c.client_id == client_id {
                return Ok(Some(c.clone()));
            }
        }
        match self.store.oauth_client(client_id) {
            Ok(found) => {
                self.client.borrow_mut().clone_from(&found);
                Ok(found)
            }
            Err(e) => {
                self.fail(Failure::Storage(e));
                Err(())
            }
        }
    }

    fn grant_of(&self, token: &StoredToken) -> Option<Grant> {
        let redirect_uri = "urn:zhima:token".parse().ok()?;
        Some(Grant {
            owner_id: token.member_id.0.to_string(),
            client_id: token.client_id.clone(),
            scope: token.scope.parse().ok()?,
            redirect_uri,
            until: far_future(),
            extensions: Extensions::new(),
        })
    }

    fn new_pair(&self) -> Result<(IssuedToken, [String; 2]), ()> {
        let access = random_token().map_err(|_| ())?;
        let refresh = random_token().map_err(|_| ())?;
        let access_hash = hash_token(&access);
        let refresh_hash = hash_token(&refresh);
        let until = self.now + self.settings.access_token_ttl;
        Ok((
            IssuedToken {
                token: access,
                refresh: Some(refresh),
                until,
                token_type: TokenType::Bearer,
            },
            [access_hash, refresh_hash],
        ))
    }

    fn new_tokens<'h>(
        &self,
        family: i64,
        grant: &'h Grant,
        (scope, refresh_scope): (&'h str, &'h str),
        hashes: &'h [String; 2],
    ) -> Result<NewTokens<'h>, ()> {
        Ok(NewTokens {
            family,
            client_id: &grant.client_id,
            member_id: MemberId(grant.owner_id.parse::<i64>().map_err(|_| ())?),
            scope,
            refresh_scope,
            access_hash: &hashes[0],
            access_expires: self.now + self.settings.access_token_ttl,
            refresh_hash: &hashes[1],
            refresh_expires: self.now + self.settings.refresh_token_ttl,
        })
    }
}

impl Registrar for Primitives<'_> {
    fn bound_redirect<'b>(&self, bound: ClientUrl<'b>) -> Result<BoundClient<'b>, RegistrarError> {
        let client = self
            .client(&bound.client_id)
            .map_err(|()| RegistrarError::PrimitiveError)?
            .ok_or(RegistrarError::Unspecified)?;
        // exact string matching: no prefixes, no normalisation, no wildcards
        let registered = match &bound.redirect_uri {
            Some(asked) => client
                .redirect_uris
                .iter()
                .find(|r| r.as_str() == asked.as_str())
                .ok_or(RegistrarError::Unspecified)?,
            None if client.redirect_uris.len() == 1 => &client.redirect_uris[0],
            None => return Err(RegistrarError::Unspecified),
        };
        let url = ExactUrl::new(registered.clone()).map_err(|_| RegistrarError::Unspecified)?;
        Ok(BoundClient {
            client_id: bound.client_id,
            redirect_uri: Cow::Owned(RegisteredUrl::Exact(url)),
        })
    }

    fn negotiate(
        &self,
        bound: BoundClient,
        scope: Option<Scope>,
    ) -> Result<PreGrant, RegistrarError> {
        let client = self
            .client(&bound.client_id)
            .map_err(|()| RegistrarError::PrimitiveError)?
            .ok_or(RegistrarError::Unspecified)?;
        let granted = match scope {
            None => client.scopes.clone(),
            Some(asked) => {
                let mut set = std::collections::BTreeSet::new();
                for name in asked.iter() {
                    let s = PartnerScope::parse(name).map_err(|_| RegistrarError::Unspecified)?;
                    if !client.scopes.contains(&s) {
                        return Err(RegistrarError::Unspecified);
                    }
                    set.insert(s);
                }
                if set.is_empty() {
                    client.scopes.clone()
                } else {
                    set
                }
            }
        };
        Ok(PreGrant {
            client_id: bound.client_id.into_owned(),
            redirect_uri: bound.redirect_uri.into_owned(),
            scope: PartnerScope::join(&granted)
                .parse()
                .map_err(|_| RegistrarError::Unspecified)?,
        })
    }

    fn check(&self, client_id: &str, passphrase: Option<&[u8]>) -> Result<(), RegistrarError> {
        let checked = self.check_secret(client_id, passphrase);
        if checked.is_ok() {
            *self.authenticated.borrow_mut() = Some(client_id.to_owned());
        }
        checked
    }
}

impl Primitives<'_> {
    fn check_secret(
        &self,
        client_id: &str,
        passphrase: Option<&[u8]>,
    ) -> Result<(), RegistrarError> {
        let client = self
            .client(client_id)
            .map_err(|()| RegistrarError::PrimitiveError)?
            .ok_or(RegistrarError::Unspecified)?;
        match (&client.secret_hash, passphrase) {
            (Some(hash), Some(given)) => {
                let given = std::str::from_utf8(given).map_err(|_| RegistrarError::Unspecified)?;
                if self.secrets.verified(client_id, hash, given, self.now) {
                    return Ok(());
                }
                match verify_password_admitted(given, Some(hash)) {
                    Ok(true) => {
                        self.secrets.remember(client_id, hash, given, self.now);
                        Ok(())
                    }
                    Ok(false) => Err(RegistrarError::Unspecified),
                    Err(_busy) => {
                        *self.failure.borrow_mut() = Some(Failure::Busy);
                        Err(RegistrarError::PrimitiveError)
                    }
                }
            }
            (Some(_), None) => Err(RegistrarError::Unspecified),
            // a public client may name itself, but has no secret to give
            (None, None) => Ok(()),
            (None, Some([])) => Ok(()),
            (None, Some(_)) => Err(RegistrarError::Unspecified),
        }
    }
}

impl Authorizer for Primitives<'_> {
    fn authorize(&mut self, mut grant: Grant) -> Result<String, ()> {
        let code = random_token().map_err(|_| ())?;
        let member_id = MemberId(grant.owner_id.parse::<i64>().map_err(|_| ())?);
        let pkce = grant
            .extensions
            .remove(&pkce_id())
            .and_then(|v| v.into_private_value().ok().flatten());
        let scope = grant.scope.to_string();
        let new = NewCode {
            code_hash: &hash_token(&code),
            client_id: &grant.client_id,
            member_id,
            redirect_uri: grant.redirect_uri.as_str(),
            scope: &scope,
            pkce: pkce.as_deref(),
            redirect_uri_sent: self.redirect_uri_sent,
            expires_at: self.now + self.settings.code_ttl,
        };
        match self.store.insert_oauth_code(&new, self.now) {
            Ok(_) => Ok(code),
            Err(e) => {
                self.fail(Failure::Storage(e));
                Err(())
            }
        }
    }

    fn extract(&mut self, _code: &str) -> Result<Option<Grant>, ()> {
        // Provider::token redeemed the code already, after authenticating
        // the client and checking the redirect URI and PKCE verifier, so a
        // request that fails those never spends or revokes anything
        let Some(stored) = self.redeemed_code.take() else {
            self.fail(Failure::BadGrant);
            return Ok(None);
        };
        self.redeemed = Some(stored.id);
        Ok(Some(Grant {
            owner_id: stored.member_id.0.to_string(),
            client_id: stored.client_id,
            scope: stored.scope.parse().map_err(|_| ())?,
            redirect_uri: stored.redirect_uri.parse().map_err(|_| ())?,
            until: far_future(),
            extensions: Extensions::new(),
        }))
    }
}

impl Issuer for Primitives<'_> {
    fn issue(&mut self, grant: Grant) -> Result<IssuedToken, ()> {
        let family = self.redeemed.ok_or(())?;
        let (issued, hashes) = self.new_pair()?;
        let scope = grant.scope.to_string();
        let new = self.new_tokens(family, &grant, (&scope, &scope), &hashes)?;
        if let Err(e) = self.store.issue_oauth_tokens(&new, self.now) {
            self.fail(Failure::Storage(e));
            return Err(());
        }
        self.issued = Some((issued.clone(), scope));
        Ok(issued)
    }

    fn refresh(&mut self, _refresh: &str, grant: Grant) -> Result<RefreshedToken, ()> {
        let old = self.refreshing.borrow().clone().ok_or(())?;
        let (issued, hashes) = self.new_pair()?;
        // the access token may be narrower; the refresh token keeps the
        // scope of the grant it continues (RFC 6749 §6)
        let scope = grant.scope.to_string();
        let new = self.new_tokens(old.family, &grant, (&scope, &old.scope), &hashes)?;
        match self.store.rotate_refresh_token(old.id, &new, self.now) {
            Ok(true) => {}
            Ok(false) => {
                self.fail(Failure::Replayed);
                return Err(());
            }
            Err(e) => {
                self.fail(Failure::Storage(e));
                return Err(());
            }
        }
        self.issued = Some((issued.clone(), scope));
        Ok(RefreshedToken {
            token: issued.token,
            refresh: issued.refresh,
            until: issued.until,
            token_type: TokenType::Bearer,
        })
    }

    fn recover_token<'t>(&'t self, token: &'t str) -> Result<Option<Grant>, ()> {
        let found = match self.store.oauth_token(&hash_token(token)) {
            Ok(found) => found,
            Err(e) => {
                self.fail(Failure::Storage(e));
                return Err(());
            }
        };
        Ok(found
            .filter(|t| t.kind == TokenKind::Access && t.is_active(self.now))
            .and_then(|t| self.grant_of(&t)))
    }

    fn recover_refresh<'t>(&'t self, token: &'t str) -> Result<Option<Grant>, ()> {
        let found = match self.store.oauth_token(&hash_token(token)) {
            Ok(found) => found,
            Err(e) => {
                self.fail(Failure::Storage(e));
                return Err(());
            }
        };
        let Some(found) = found.filter(|t| t.kind == TokenKind::Refresh) else {
            self.fail(Failure::BadGrant);
            return Ok(None);
        };
        let by_its_client =
            self.authenticated.borrow().as_deref() == Some(found.client_id.as_str());
        if !by_its_client {
            // another client's token revokes nothing and tells nothing
            self.fail(Failure::BadGrant);
            return Ok(None);
        }
        if found.used_at.is_some() && found.revoked_at.is_none() {
            // a rotated refresh token came back: someone holds a copy
            tracing::warn!(
                family = found.family,
                "a rotated refresh token was reused; revoking its family"
            );
            if let Err(e) = self.store.revoke_oauth_family(found.family, self.now) {
                self.fail(Failure::Storage(e));
                return Err(());
            }
            self.fail(Failure::Replayed);
            return Ok(None);
        }
        if !found.is_active(self.now) {
            self.fail(Failure::BadGrant);
            return Ok(None);
        }
        let grant = self.grant_of(&found);
        *self.refreshing.borrow_mut() = Some(found);
        Ok(grant)
    }
}

/// PKCE at the authorization request: S256 only, required unless the
/// client was opted out (confidential clients only). The verifier is checked
/// when the code is redeemed (`Provider::token`).
impl authorization::Extension for Primitives<'_> {
    fn extend(&mut self, request: &dyn authorization::Request) -> Result<Extensions, ()> {
        let required = request
            .client_id()
            .and_then(|id| self.client(&id).ok().flatten())
            .is_none_or(|c| c.pkce_required || c.is_public());
        let challenge = crate::pkce::challenge(
            required,
            request.extension("code_challenge_method").as_deref(),
            request.extension("code_challenge").as_deref(),
        )?;
        let mut extensions = Extensions::new();
        if let Some(challenge) = challenge {
            extensions.set(&pkce_id(), Value::private(Some(challenge)));
        }
        Ok(extensions)
    }
}

impl accesstoken::Extension for Primitives<'_> {
    fn extend(
        &mut self,
        _request: &dyn accesstoken::Request,
        _data: Extensions,
    ) -> Result<Extensions, ()> {
        Ok(Extensions::new())
    }
}

impl authorization::Endpoint for Primitives<'_> {
    fn registrar(&self) -> &dyn Registrar {
        self
    }
    fn authorizer(&mut self) -> &mut dyn Authorizer {
        self
    }
    fn extension(&mut self) -> &mut dyn authorization::Extension {
        self
    }
}

impl accesstoken::Endpoint for Primitives<'_> {
    fn registrar(&self) -> &dyn Registrar {
        self
    }
    fn authorizer(&mut self) -> &mut dyn Authorizer {
        self
    }
    fn issuer(&mut self) -> &mut dyn Issuer {
        self
    }
    fn extension(&mut self) -> &mut dyn accesstoken::Extension {
        self
    }
}

impl refresh::Endpoint for Primitives<'_> {
    fn registrar(&self) -> &dyn Registrar {
        self
    }
    fn issuer(&mut self) -> &mut dyn Issuer {
        self
    }
}

#[cfg(test)]
mod secret_cache_tests {
    use super::*;

    #[test]
    fn remembers_only_the_same_secret_for_the_same_hash_for_a_while() {
        let cache = SecretCache::default();
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert!(!cache.verified("c1", "$argon2id$h1", "s3cret", t0));
        cache.remember("c1", "$argon2id$h1", "s3cret", t0);
        assert!(cache.verified("c1", "$argon2id$h1", "s3cret", t0));
        assert!(
            !cache.verified("c1", "$argon2id$h1", "s3cret!", t0),
            "another secret"
        );
        assert!(
            !cache.verified("c2", "$argon2id$h1", "s3cret", t0),
            "another client"
        );
        assert!(
            !cache.verified("c1", "$argon2id$h2", "s3cret", t0),
            "a new hash"
        );
        let later = t0 + chrono::Duration::minutes(SECRET_CACHE_TTL_MINUTES);
        assert!(
            !cache.verified("c1", "$argon2id$h1", "s3cret", later),
            "expired"
        );
    }
}
