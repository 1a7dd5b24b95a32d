#![doc = include_str!("../README.md")]

mod pkce;
mod primitives;
pub mod request;

use std::collections::BTreeSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use oxide_auth::code_grant::error::AccessTokenErrorType;
use oxide_auth::code_grant::{accesstoken, authorization, refresh};
use serde::Serialize;
use zhima_domain::ids::MemberId;
use zhima_domain::partner::PartnerScope;
use zhima_storage::credentials::{hash_api_key, hash_password};
use zhima_storage::oauth::{NewOAuthClient, OAuthClient, Redeemed, StoredCode, StoredToken};
use zhima_storage::{MemberRecord, StorageError, Store};

use primitives::{Failure, Primitives};
pub use request::{Params, TokenRequest};
pub use url::Url;

/// Lifetimes of what the provider issues.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long an access token works (default 1 hour).
    pub access_token_ttl: Duration,
    /// How long a refresh token works (default 30 days); each use replaces it.
    pub refresh_token_ttl: Duration,
    /// How long an authorization code may be redeemed (at most 5 minutes).
    pub code_ttl: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            access_token_ttl: Duration::hours(1),
            refresh_token_ttl: Duration::days(30),
            code_ttl: Duration::minutes(5),
        }
    }
}

/// An error of the token, revocation or introspection endpoint (RFC 6749 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenErrorKind {
    /// A parameter is missing, repeated or malformed.
    InvalidRequest,
    /// The client could not be authenticated.
    InvalidClient,
    /// The code or refresh token is invalid, expired, revoked, spent, or was
    /// issued to another client or redirect URI; or PKCE failed.
    InvalidGrant,
    /// The client may not use this grant type.
    UnauthorizedClient,
    /// Not `authorization_code` or `refresh_token`.
    UnsupportedGrantType,
    /// The scope is unknown or wider than granted.
    InvalidScope,
}

impl TokenErrorKind {
    /// The `error` value.
    pub const fn code(self) -> &'static str {
        match self {
            TokenErrorKind::InvalidRequest => "invalid_request",
            TokenErrorKind::InvalidClient => "invalid_client",
            TokenErrorKind::InvalidGrant => "invalid_grant",
            TokenErrorKind::UnauthorizedClient => "unauthorized_client",
            TokenErrorKind::UnsupportedGrantType => "unsupported_grant_type",
            TokenErrorKind::InvalidScope => "invalid_scope",
        }
    }

    /// A generic `error_description`: it names the rule, never which secret
    /// or which token failed.
    pub const fn description(self) -> &'static str {
        match self {
            TokenErrorKind::InvalidRequest => {
                "The request is missing a parameter, repeats one, or is malformed."
            }
            TokenErrorKind::InvalidClient => "Client authentication failed.",
            TokenErrorKind::InvalidGrant => {
                "The grant is invalid, expired, revoked, or was issued to another client."
            }
            TokenErrorKind::UnauthorizedClient => "The client may not use this grant type.",
            TokenErrorKind::UnsupportedGrantType => "The grant type is not supported.",
            TokenErrorKind::InvalidScope => "The requested scope is invalid or exceeds the grant.",
        }
    }

    fn of(kind: AccessTokenErrorType) -> TokenErrorKind {
        match kind {
            AccessTokenErrorType::InvalidRequest => TokenErrorKind::InvalidRequest,
            AccessTokenErrorType::InvalidClient => TokenErrorKind::InvalidClient,
            AccessTokenErrorType::InvalidGrant => TokenErrorKind::InvalidGrant,
            AccessTokenErrorType::UnauthorizedClient => TokenErrorKind::UnauthorizedClient,
            AccessTokenErrorType::UnsupportedGrantType => TokenErrorKind::UnsupportedGrantType,
            AccessTokenErrorType::InvalidScope => TokenErrorKind::InvalidScope,
        }
    }
}

/// The errors of the OAuth2 provider.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// A token-endpoint error for the client (RFC 6749 §5.2).
    #[error("{}", .kind.code())]
    Token {
        /// Which.
        kind: TokenErrorKind,
        /// The client used HTTP Basic (a 401 then carries `WWW-Authenticate: Basic`).
        basic: bool,
    },
    /// The authorization request names no registered client or redirect
    /// URI: show an error page, never redirect.
    #[error("{0}")]
    BadAuthorizationRequest(&'static str),
    /// The authorization request is wrong in a way the client must hear
    /// about: redirect the browser to this URL (it carries `error` and `state`).
    #[error("redirect the user agent back with an error")]
    RedirectWithError(Url),
    /// A bearer token is missing, unknown, expired or revoked.
    #[error("invalid_token")]
    InvalidToken,
    /// The token lacks the scope the resource needs.
    #[error("insufficient_scope")]
    InsufficientScope(PartnerScope),
    /// A client registration is refused.
    #[error("{0}")]
    BadClient(String),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Too many client secrets are being checked at once; retry shortly
    /// (decided before any hashing).
    #[error("too many client authentications at once")]
    Busy,
    /// Randomness or hashing failed, or oxide-auth reported an internal error.
    #[error("internal error in the OAuth2 provider")]
    Internal,
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The refresh token (a new one on every refresh).
    pub refresh_token: Option<String>,
    /// The granted scopes.
    pub scope: String,
}

/// What the consent page shows.
#[derive(Debug, Clone)]
pub struct Consent {
    /// The partner's name.
    pub client_name: String,
    /// The client ID.
    pub client_id: String,
    /// The scopes asked for.
    pub scopes: Vec<PartnerScope>,
    /// Where the answer goes.
    pub redirect_uri: String,
}

/// What an access token allows (after checking it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessGrant {
    /// The member the partner acts for.
    pub member_id: MemberId,
    /// The partner.
    pub client_id: String,
    /// The granted scopes.
    pub scopes: BTreeSet<PartnerScope>,
}

/// An RFC 7662 introspection answer.
#[derive(Debug, Clone, Serialize)]
pub struct Introspection {
    /// Whether the token is active.
    pub active: bool,
    /// The rest, for an active token only.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub details: Option<IntrospectionDetails>,
}

/// The details of an active token.
#[derive(Debug, Clone, Serialize)]
pub struct IntrospectionDetails {
    /// Scopes.
    pub scope: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The member (their openid).
    pub sub: String,
    /// `Bearer` for an access token; absent for a refresh token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
}

/// A newly registered client with its secret, shown once.
#[derive(Debug, Clone)]
pub struct Registered {
    /// The stored client.
    pub client: OAuthClient,
    /// The secret (confidential clients only).
    pub secret: Option<String>,
}

/// 256 random bits, base64url without padding (43 unreserved characters).
pub(crate) fn random_token() -> Result<String, OAuthError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| OAuthError::Internal)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// A client ID: 128 random bits, base64url, never starting with `-` or `_`
/// (a leading `-` reads as an option on a command line: `zhima partner
/// remove -6Ek…` failed, about one partner in 32).
pub(crate) fn new_client_id() -> Result<String, OAuthError> {
    loop {
        let mut id_bytes = [0u8; 16];
        getrandom::fill(&mut id_bytes).map_err(|_| OAuthError::Internal)?;
        let id = URL_SAFE_NO_PAD.encode(id_bytes);
        if id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Ok(id);
        }
    }
}

/// The stored form of a code or token: SHA-256, hex.
pub(crate) fn hash_token(token: &str) -> String {
    hash_api_key(token)
}

/// What the stored token `stored` allows a request that needs `scope` at
/// `now`: the one rule of the Partner API's resource checks. Only an
/// access token that is not expired, revoked or exchanged counts (else
/// `InvalidToken`); it must hold `scope` (else `InsufficientScope`). Tokens
/// of deactivated members never reach here: storage does not return them.
fn access_grant(
    stored: &StoredToken,
    scope: PartnerScope,
    now: DateTime<Utc>,
) -> Result<AccessGrant, OAuthError> {
    if stored.kind != zhima_storage::oauth::TokenKind::Access || !stored.is_active(now) {
        return Err(OAuthError::InvalidToken);
    }
    let scopes: BTreeSet<PartnerScope> = stored
        .scope
        .split_whitespace()
        .filter_map(|s| PartnerScope::parse(s).ok())
        .collect();
    if !scopes.contains(&scope) {
        return Err(OAuthError::InsufficientScope(scope));
    }
    Ok(AccessGrant {
        member_id: stored.member_id,
        client_id: stored.client_id.clone(),
        scopes,
    })
}

/// The OAuth2 provider.
#[derive(Debug, Clone)]
pub struct Provider {
    store: Store,
    settings: Settings,
    secrets: std::sync::Arc<primitives::SecretCache>,
}

impl Provider {
    /// A provider on `store`.
    pub fn new(store: Store, settings: Settings) -> Provider {
        Provider {
            store,
            settings,
            secrets: Default::default(),
        }
    }

    /// The lifetimes in use.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Registers a partner application. Redirect URIs must be absolute
    /// `https` URLs (or `http` on a loopback host, for development) without a
    /// fragment.
    pub fn register(
        &self,
        name: &str,
        redirect_uris: &[String],
        public: bool,
        scopes: &BTreeSet<PartnerScope>,
        now: DateTime<Utc>,
    ) -> Result<Registered, OAuthError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(OAuthError::BadClient(
                "the name must be 1 to 100 printable characters".into(),
            ));
        }
        if redirect_uris.is_empty() {
            return Err(OAuthError::BadClient(
                "at least one redirect URI is required".into(),
            ));
        }
        for uri in redirect_uris {
            check_redirect_uri(uri).map_err(OAuthError::BadClient)?;
        }
        if scopes.is_empty() {
            return Err(OAuthError::BadClient(
                "at least one scope is required".into(),
            ));
        }
        let client_id = new_client_id()?;
        let secret = if public { None } else { Some(random_token()?) };
        let secret_hash = secret.as_deref().map(hash_password).transpose()?;
        let client = self.store.create_oauth_client(
            &NewOAuthClient {
                client_id: &client_id,
                name,
                secret_hash,
                redirect_uris,
                scopes,
                // every client, confidential ones included (RFC 9700);
                // `zhima partner pkce` opts an old partner out
                pkce_required: true,
            },
            now,
        )?;
        Ok(Registered { client, secret })
    }

    /// Checks an authorization request (`GET /oauth/authorize`): the
    /// client, the redirect URI, the response type, the scope and PKCE.
    pub fn authorization_request(
        &self,
        params: &Params,
        now: DateTime<Utc>,
    ) -> Result<Consent, OAuthError> {
        let mut primitives = Primitives::new(&self.store, &self.settings, &self.secrets, now);
        let pending = authorization::authorization_code(&mut primitives, params);
        let pending = self.authorization_outcome(pending, &primitives)?;
        let pre = pending.pre_grant();
        let client = primitives
            .client(&pre.client_id)
            .map_err(|()| self.failure_or_internal(&primitives))?
            .ok_or(OAuthError::BadAuthorizationRequest("unknown client"))?;
        Ok(Consent {
            client_name: client.name,
            client_id: client.client_id,
            scopes: pre
                .scope
                .iter()
                .filter_map(|s| PartnerScope::parse(s).ok())
                .collect(),
            redirect_uri: pre.redirect_uri.to_string(),
        })
    }

    /// The member's decision on the consent page: the URL to send the
    /// browser to (with `code` and `state`, or with `error=access_denied`).
    pub fn decide(
        &self,
        params: &Params,
        member: MemberId,
        allow: bool,
        now: DateTime<Utc>,
    ) -> Result<Url, OAuthError> {
        let mut primitives = Primitives::new(&self.store, &self.settings, &self.secrets, now);
        primitives.redirect_uri_sent = params.get("redirect_uri").is_some();
        let pending = authorization::authorization_code(&mut primitives, params);
        let pending = self.authorization_outcome(pending, &primitives)?;
        let outcome = if allow {
            pending.authorize(&mut primitives, member.0.to_string().into())
        } else {
            pending.deny()
        };
        match outcome {
            Ok(url) => Ok(url),
            Err(authorization::Error::Redirect(url)) => Ok(url.into()),
            Err(authorization::Error::Ignore) => Err(OAuthError::BadAuthorizationRequest(
                "unknown client or redirect URI",
            )),
            Err(authorization::Error::PrimitiveError) => Err(self.failure_or_internal(&primitives)),
        }
    }

    fn authorization_outcome(
        &self,
        pending: Result<authorization::Pending, authorization::Error>,
        primitives: &Primitives<'_>,
    ) -> Result<authorization::Pending, OAuthError> {
        match pending {
            Ok(p) => Ok(p),
            // oxide-auth's frontends turn these into a 500; here they are an
            // error page that never redirects to an unchecked URI
            Err(authorization::Error::Ignore) => Err(OAuthError::BadAuthorizationRequest(
                "unknown client or redirect URI",
            )),
            Err(authorization::Error::Redirect(url)) => {
                Err(OAuthError::RedirectWithError(url.into()))
            }
            Err(authorization::Error::PrimitiveError) => Err(self.failure_or_internal(primitives)),
        }
    }

    fn failure_or_internal(&self, primitives: &Primitives<'_>) -> OAuthError {
        match primitives.failure.borrow_mut().take() {
            Some(Failure::Storage(e)) => OAuthError::Storage(e),
            Some(Failure::Busy) => OAuthError::Busy,
            _ => OAuthError::Internal,
        }
    }

    /// The token endpoint: `authorization_code` and `refresh_token` grants.
    pub fn token(
        &self,
        request: &TokenRequest,
        now: DateTime<Utc>,
    ) -> Result<TokenResponse, OAuthError> {
        let basic = request.used_basic();
        let token_error = |kind| OAuthError::Token { kind, basic };
        if request.params.has_duplicates() || request.bad_authorization {
            return Err(token_error(TokenErrorKind::InvalidRequest));
        }
        let grant_type = request.params.get("grant_type");
        match grant_type {
            Some("authorization_code" | "refresh_token") => {}
            Some(_) => return Err(token_error(TokenErrorKind::UnsupportedGrantType)),
            None => return Err(token_error(TokenErrorKind::InvalidRequest)),
        }
        // the client first: nothing is read, spent or revoked for a request
        // whose client does not authenticate
        let client = self.authenticate(request, now)?;
        let mut primitives = Primitives::new(&self.store, &self.settings, &self.secrets, now);
        let mut filled;
        let mut request = request;
        if grant_type == Some("authorization_code") {
            let stored = self.redeem(request, &client, now)?;
            if request.params.get("redirect_uri").is_none() {
                // not sent at authorization, so not required now; oxide-auth
                // compares it, so it gets the one the code was bound to
                filled = request.clone();
                filled.params = filled.params.with("redirect_uri", &stored.redirect_uri);
                request = &filled;
            }
            primitives.redeemed_code = Some(stored);
        }
        let outcome = match grant_type {
            Some("authorization_code") => accesstoken::access_token(&mut primitives, request)
                .map(|_| ())
                .map_err(|mut e| e.description().map(|d| TokenErrorKind::of(d.kind()))),
            Some("refresh_token") => refresh::refresh(&mut primitives, request)
                .map(|_| ())
                .map_err(|mut e| e.description().map(|d| TokenErrorKind::of(d.kind()))),
            _ => return Err(token_error(TokenErrorKind::UnsupportedGrantType)),
        };
        let failure = primitives.failure.borrow_mut().take();
        match (outcome, failure) {
            (Ok(()), _) => {
                let (issued, scope) = primitives.issued.take().ok_or(OAuthError::Internal)?;
                Ok(TokenResponse {
                    access_token: issued.token,
                    token_type: "Bearer",
                    expires_in: (issued.until - now).num_seconds(),
                    refresh_token: issued.refresh,
                    scope,
                })
            }
            (Err(_), Some(Failure::Storage(e))) => Err(OAuthError::Storage(e)),
            (Err(_), Some(Failure::Busy)) => Err(OAuthError::Busy),
            (Err(_), Some(Failure::Replayed | Failure::BadGrant)) => {
                Err(token_error(TokenErrorKind::InvalidGrant))
            }
            // oxide-auth answers a code for another client with invalid_request
            (Err(Some(kind)), None) => Err(token_error(kind)),
            (Err(None), None) => Err(OAuthError::Internal),
        }
    }

    /// Spends the request's code for `client`, if the code was issued to it,
    /// the redirect URI is the one the authorization request named (or
    /// absent when it named none), and the PKCE verifier fits.
    fn redeem(
        &self,
        request: &TokenRequest,
        client: &OAuthClient,
        now: DateTime<Utc>,
    ) -> Result<StoredCode, OAuthError> {
        let basic = request.used_basic();
        let token_error = |kind| OAuthError::Token { kind, basic };
        let code = request
            .params
            .get("code")
            .ok_or(token_error(TokenErrorKind::InvalidRequest))?;
        let sent_redirect = request.params.get("redirect_uri");
        let verifier = request.params.get("code_verifier");
        let redeemed =
            self.store
                .redeem_oauth_code(&hash_token(code), &client.client_id, now, |stored| {
                    let redirect_ok = match sent_redirect {
                        Some(uri) => uri == stored.redirect_uri,
                        None => !stored.redirect_uri_sent,
                    };
                    redirect_ok && pkce::verify(stored.pkce.as_deref(), verifier)
                })?;
        match redeemed {
            Redeemed::Fresh(stored) => Ok(stored),
            Redeemed::Replayed => {
                tracing::warn!("an authorization code was replayed; its tokens are revoked");
                Err(token_error(TokenErrorKind::InvalidGrant))
            }
            Redeemed::Mismatch | Redeemed::Expired | Redeemed::Unknown => {
                Err(token_error(TokenErrorKind::InvalidGrant))
            }
        }
    }

    /// Authenticates the client of a revocation or introspection request.
    fn authenticate(
        &self,
        request: &TokenRequest,
        now: DateTime<Utc>,
    ) -> Result<OAuthClient, OAuthError> {
        use oxide_auth::primitives::registrar::Registrar as _;
        let basic = request.used_basic();
        if request.params.has_duplicates() || request.bad_authorization {
            return Err(OAuthError::Token {
                kind: TokenErrorKind::InvalidRequest,
                basic,
            });
        }
        let invalid_client = OAuthError::Token {
            kind: TokenErrorKind::InvalidClient,
            basic,
        };
        let (id, secret) = match request.credentials() {
            Some(request::Credentials::Secret(id, secret)) => (id, Some(secret)),
            Some(request::Credentials::Id(id)) => (id, None),
            Some(request::Credentials::None) => return Err(invalid_client),
            None => {
                return Err(OAuthError::Token {
                    kind: TokenErrorKind::InvalidRequest,
                    basic,
                })
            }
        };
        let primitives = Primitives::new(&self.store, &self.settings, &self.secrets, now);
        match primitives.check(id, secret.map(str::as_bytes)) {
            Ok(()) => primitives
                .client(id)
                .map_err(|()| self.failure_or_internal(&primitives))?
                .ok_or(invalid_client),
            Err(oxide_auth::primitives::registrar::RegistrarError::PrimitiveError) => {
                Err(self.failure_or_internal(&primitives))
            }
            Err(_) => Err(invalid_client),
        }
    }

    fn find_token(&self, request: &TokenRequest) -> Result<Option<StoredToken>, OAuthError> {
        let Some(token) = request.params.get("token") else {
            return Err(OAuthError::Token {
                kind: TokenErrorKind::InvalidRequest,
                basic: request.used_basic(),
            });
        };
        Ok(self.store.oauth_token(&hash_token(token))?)
    }

    /// RFC 7009 revocation. Answers the same whether or not the token
    /// existed; touches only tokens of the calling client. Revoking a
    /// refresh token revokes its whole family.
    pub fn revoke(&self, request: &TokenRequest, now: DateTime<Utc>) -> Result<(), OAuthError> {
        let client = self.authenticate(request, now)?;
        let Some(token) = self.find_token(request)? else {
            return Ok(());
        };
        if token.client_id != client.client_id {
            return Ok(());
        }
        match token.kind {
            zhima_storage::oauth::TokenKind::Refresh => {
                self.store.revoke_oauth_family(token.family, now)?;
            }
            zhima_storage::oauth::TokenKind::Access => {
                self.store.revoke_oauth_token(token.id, now)?
            }
        }
        Ok(())
    }

    /// RFC 7662 introspection, for the client the token was issued to.
    /// Anything else is `{"active": false}` and nothing more.
    pub fn introspect(
        &self,
        request: &TokenRequest,
        now: DateTime<Utc>,
    ) -> Result<Introspection, OAuthError> {
        let client = self.authenticate(request, now)?;
        let inactive = Introspection {
            active: false,
            details: None,
        };
        let Some(token) = self.find_token(request)? else {
            return Ok(inactive);
        };
        if token.client_id != client.client_id || !token.is_active(now) {
            return Ok(inactive);
        }
        let Some(record) = self
            .store
            .member(zhima_storage::MemberKey::Id(token.member_id))?
        else {
            return Ok(inactive);
        };
        Ok(Introspection {
            active: true,
            details: Some(IntrospectionDetails {
                scope: token.scope,
                client_id: token.client_id,
                sub: record.member.openid.to_string(),
                // the RFC 6749 §7.1 type, which only access tokens have
                token_type: match token.kind {
                    zhima_storage::oauth::TokenKind::Access => Some("Bearer"),
                    zhima_storage::oauth::TokenKind::Refresh => None,
                },
                exp: token.expires_at.timestamp(),
                iat: token.created_at.timestamp(),
            }),
        })
    }

    /// Checks a bearer token for a resource that needs `scope`: one lookup
    /// of its SHA-256, then [`access_grant`].
    pub fn check_access(
        &self,
        token: &str,
        scope: PartnerScope,
        now: DateTime<Utc>,
    ) -> Result<AccessGrant, OAuthError> {
        let stored = self
            .store
            .oauth_token(&hash_token(token))?
            .ok_or(OAuthError::InvalidToken)?;
        access_grant(&stored, scope, now)
    }

    /// [`Provider::check_access`] and the member the token acts for, in
    /// one statement (the member's history from storage's cache when it
    /// is unchanged): a Partner API read in one round trip.
    pub fn check_access_with_member(
        &self,
        token: &str,
        scope: PartnerScope,
        now: DateTime<Utc>,
    ) -> Result<(AccessGrant, MemberRecord), OAuthError> {
        let (stored, record) = self
            .store
            .oauth_token_with_member(&hash_token(token))?
            .ok_or(OAuthError::InvalidToken)?;
        Ok((access_grant(&stored, scope, now)?, record))
    }

    /// Marks a consent ticket (its SHA-256) answered: `true` the first time
    /// on any server of the database, `false` after.
    pub fn spend_ticket(
        &self,
        ticket_hash: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, OAuthError> {
        Ok(self.store.spend_ticket(ticket_hash, expires_at, now)?)
    }

    /// RFC 8414 metadata for an issuer at `issuer` (e.g. `https://door.example.org`).
    pub fn metadata(&self, issuer: &str) -> serde_json::Value {
        let issuer = issuer.trim_end_matches('/');
        serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/oauth/authorize"),
            "token_endpoint": format!("{issuer}/oauth/token"),
            "revocation_endpoint": format!("{issuer}/oauth/revoke"),
            "introspection_endpoint": format!("{issuer}/oauth/introspect"),
            "scopes_supported": PartnerScope::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
        })
    }
}

/// Whether `uri` may be registered as a redirect URI.
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let url = Url::parse(uri).map_err(|e| format!("redirect URI {uri:?} is not a URL: {e}"))?;
    if url.fragment().is_some() {
        return Err(format!("redirect URI {uri:?} must not have a fragment"));
    }
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        // a native app's private-use scheme (RFC 8252 §7.1), e.g. com.example.app:/cb
        s if s.contains('.') => Ok(()),
        _ => Err(format!(
            "redirect URI {uri:?} must use https (http only on localhost, or an app's reverse-domain scheme)"
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn client_ids_never_start_with_a_dash_or_underscore() {
        for _ in 0..2000 {
            let id = super::new_client_id().unwrap();
            assert!(id.starts_with(|c: char| c.is_ascii_alphanumeric()), "{id}");
            assert_eq!(id.len(), 22);
        }
    }
}
