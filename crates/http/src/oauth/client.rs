//! The client-authenticated endpoints (`/oauth/token`, `/oauth/revoke`,
//! `/oauth/introspect`) and the metadata document.

use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use zhima_oauth::{OAuthError, Params, Provider, TokenRequest};

use crate::body::read_limited;
use crate::error::OAuthHttpError;
use crate::AppState;

use super::*;

/// Reads a token-endpoint request: a form body and optional Basic credentials.
pub(super) async fn token_request(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<TokenRequest, OAuthHttpError> {
    let invalid = |basic| {
        OAuthHttpError(OAuthError::Token {
            kind: zhima_oauth::TokenErrorKind::InvalidRequest,
            basic,
        })
    };
    let mut request = TokenRequest::default();
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        match value.to_str().ok().and_then(parse_basic) {
            Some(creds) => request.basic = Some(creds),
            None => request.bad_authorization = true,
        }
    }
    let form =
        crate::request::media_type(req).as_deref() == Some("application/x-www-form-urlencoded");
    if !form {
        return Err(invalid(request.used_basic()));
    }
    let body = read_limited(req, payload)
        .await
        .map_err(|_| invalid(request.used_basic()))?;
    request.params = Params::from_pairs(url::form_urlencoded::parse(&body).into_owned());
    Ok(request)
}

/// `Basic base64(urlencoded id ":" urlencoded secret)` (RFC 6749 §2.3.1).
pub(super) fn parse_basic(value: &str) -> Option<(String, String)> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(rest.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| -> Option<String> {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

pub(super) fn no_store(
    mut builder: actix_web::HttpResponseBuilder,
) -> actix_web::HttpResponseBuilder {
    builder
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    builder
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, OAuthError> + Send + 'static,
) -> Result<T, OAuthHttpError> {
    web::block(f)
        .await
        .map_err(|_| OAuthHttpError(OAuthError::Internal))?
        .map_err(OAuthHttpError)
}

pub(super) fn client_keys(state: &AppState, req: &HttpRequest) -> [(String, usize); 1] {
    [(format!("client:{}", state.peer_ip(req)), CLIENT_FAILURES)]
}

/// 429 once an address has failed client authentication too often.
pub(super) fn client_limited(wait: Duration) -> HttpResponse {
    tracing::warn!("client authentication refused: too many failures from one address");
    no_store(HttpResponse::TooManyRequests())
        .insert_header((header::RETRY_AFTER, wait.as_secs().max(1).to_string()))
        .json(serde_json::json!({
            "error": "invalid_request",
            "error_description": "Too many failed client authentications; retry later."
        }))
}

/// A client-authenticated endpoint's common steps: the attempt is reserved
/// against the address's failure limit before anything is checked (an
/// address over it gets the 429, `Ok(Err(response))`); the request is read,
/// `call` runs on a blocking thread at the request's instant, and the
/// reservation stays counted only if the client failed to authenticate.
pub(super) async fn client_call<T: Send + 'static>(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    payload: web::Payload,
    call: impl FnOnce(&Provider, &TokenRequest, DateTime<Utc>) -> Result<T, OAuthError> + Send + 'static,
) -> Result<Result<T, HttpResponse>, OAuthHttpError> {
    let keys = client_keys(state, req);
    let limiter = &state.oauth.client_limiter;
    let at = Instant::now();
    if let Err(wait) = limiter.attempt(&keys, at) {
        return Ok(Err(client_limited(wait)));
    }
    let result = async {
        let request = token_request(req, payload).await?;
        let now = state.clock.now();
        let st = state.clone();
        blocking(move || call(&st.oauth.provider, &request, now)).await
    }
    .await;
    let failed_authentication = matches!(
        result,
        Err(OAuthHttpError(OAuthError::Token {
            kind: zhima_oauth::TokenErrorKind::InvalidClient,
            ..
        }))
    );
    if !failed_authentication {
        limiter.give_back(&keys, at);
    }
    result.map(Ok)
}

/// `POST /oauth/token`.
pub(super) async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthHttpError> {
    match client_call(&state, &req, payload, |p, r, now| p.token(r, now)).await? {
        Ok(answer) => {
            state.metrics.observe_tokens_issued();
            Ok(no_store(HttpResponse::Ok()).json(answer))
        }
        Err(limited) => Ok(limited),
    }
}

/// `POST /oauth/revoke` (RFC 7009): 200 whether or not the token existed.
pub(super) async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthHttpError> {
    match client_call(&state, &req, payload, |p, r, now| p.revoke(r, now)).await? {
        Ok(()) => Ok(no_store(HttpResponse::Ok()).finish()),
        Err(limited) => Ok(limited),
    }
}

/// `POST /oauth/introspect` (RFC 7662).
pub(super) async fn introspect(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthHttpError> {
    match client_call(&state, &req, payload, |p, r, now| p.introspect(r, now)).await? {
        Ok(answer) => Ok(no_store(HttpResponse::Ok()).json(answer)),
        Err(limited) => Ok(limited),
    }
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414).
///
/// With `oauth.issuer` set the document names it and may be cached. Without
/// it the issuer comes from the request's `Host` (or, from a trusted proxy
/// only, its forwarded host and scheme), and the answer is never stored by
/// a cache, so one client's `Host` cannot be served to another.
pub(super) async fn metadata(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let (issuer, cache) = match state.oauth.issuer.clone() {
        Some(issuer) => (issuer, "public, max-age=3600"),
        None => (request_origin(&state, &req), "no-store"),
    };
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, cache))
        .json(state.oauth.provider.metadata(&issuer))
}

/// `scheme://host` of the request as the client addressed it: forwarded
/// headers count only when the peer is a trusted proxy.
pub(super) fn request_origin(state: &AppState, req: &HttpRequest) -> String {
    if state.proxies.from_proxy(req) {
        let info = req.connection_info();
        return format!("{}://{}", info.scheme(), info.host());
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .map_or_else(|| req.app_config().host().to_owned(), str::to_owned);
    format!("http://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let value = format!("Basic {}", STANDARD.encode("my%20id:s%3Acret"));
        assert_eq!(parse_basic(&value), Some(("my id".into(), "s:cret".into())));
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
        assert_eq!(
            parse_basic(&format!("Basic {}", STANDARD.encode("nocolon"))),
            None
        );
    }
}
