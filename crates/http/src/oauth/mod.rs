//! The OAuth2 endpoints: the member's login and consent pages at
//! `/oauth/authorize`, and `/oauth/token`, `/oauth/revoke`,
//! `/oauth/introspect`, `/.well-known/oauth-authorization-server`.
//!
//! The pages keep no server-side session. A login proves itself to the next
//! step with a ticket: an HMAC over the member, the client, the step, an
//! expiry and the browser's CSRF cookie, so it cannot be forged, moved to
//! another browser or replayed after 10 minutes.

mod authorize;
mod client;
mod pages;
mod tickets;

use actix_web::{web, HttpResponse};
use hmac::Hmac;
use sha2::Sha256;
use zhima_app::login::AttemptLimiter;
use zhima_oauth::Provider;

use authorize::*;
use client::*;
use pages::*;

pub(crate) use pages::error_page;
use tickets::*;

type HmacSha256 = Hmac<Sha256>;

/// How long a login ticket lasts.
const TICKET_TTL_SECS: i64 = 600;
const CSRF_COOKIE: &str = "zhima_csrf";
/// Failed client authentications allowed per address within the window.
const CLIENT_FAILURES: usize = 20;

/// The provider and what the pages need.
#[derive(Debug)]
pub struct OAuthState {
    /// The provider.
    pub provider: Provider,
    /// Key for tickets (derived from the server's secret).
    ticket_key: [u8; 32],
    /// Failed client authentications at the token, revoke and introspect
    /// endpoints, per address (each costs an argon2id verification).
    client_limiter: AttemptLimiter,
    /// The issuer URL for metadata; if `None`, taken from the request.
    pub issuer: Option<String>,
    /// Browser origins allowed by CORS (`oauth.cors_origins`).
    pub cors_origins: Vec<String>,
    /// The issuer is https: cookies are `Secure` and `__Host-` named.
    https: bool,
}

impl OAuthState {
    /// Whether the issuer is https (cookies `Secure`, `__Host-` named).
    pub fn https(&self) -> bool {
        self.https
    }

    /// A new signed CSRF token for a form (see `tickets::new_csrf`).
    pub fn new_csrf(&self) -> Option<String> {
        tickets::new_csrf(&self.ticket_key)
    }

    /// Whether `token` is a CSRF token this server signed.
    pub fn csrf_is_ours(&self, token: &str) -> bool {
        tickets::csrf_signed(&self.ticket_key, token)
    }

    /// A provider with its ticket key and issuer.
    pub fn new(
        provider: Provider,
        ticket_key: [u8; 32],
        issuer: Option<String>,
        cors_origins: Vec<String>,
    ) -> OAuthState {
        OAuthState {
            provider,
            ticket_key,
            client_limiter: AttemptLimiter::default(),
            https: issuer.as_deref().is_some_and(|i| i.starts_with("https://")),
            issuer,
            cors_origins,
        }
    }
}

/// The OAuth2 routes.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        oauth_resource("/oauth/authorize")
            .route(web::get().to(authorize_page))
            .route(web::post().to(authorize_post)),
    )
    .service(oauth_resource("/oauth/token").route(web::post().to(token)))
    .service(oauth_resource("/oauth/revoke").route(web::post().to(revoke)))
    .service(oauth_resource("/oauth/introspect").route(web::post().to(introspect)))
    .service(
        oauth_resource("/.well-known/oauth-authorization-server").route(web::get().to(metadata)),
    );
}

/// A resource whose unsupported methods answer 405 as an OAuth2 error.
fn oauth_resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .json(serde_json::json!({ "error": "invalid_request", "error_description": "Method not allowed." }))
}
