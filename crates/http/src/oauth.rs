//! The OAuth2 endpoints: the member's login and consent pages at
//! `/oauth/authorize`, and `/oauth/token`, `/oauth/revoke`,
//! `/oauth/introspect`, `/.well-known/oauth-authorization-server`.
//!
//! The pages keep no server-side session. A login proves itself to the next
//! step with a ticket: an HMAC over the member, the client, the step, an
//! expiry and the browser's CSRF cookie, so it cannot be forged, moved to
//! another browser or replayed after 10 minutes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zhima_app::login::{AttemptLimiter, LoginError};
use zhima_domain::ids::MemberId;
use zhima_oauth::{Consent, OAuthError, Params, Provider, TokenRequest};

use crate::body::{read_limited, BodyError};
use crate::error::OAuthHttpError;
use crate::AppState;

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

// ---------------------------------------------------------------- pages

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Every page: never framed, never cached, no scripts.
fn page(status: actix_web::http::StatusCode, title: &str, body: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title>\
             <style>body{{font-family:sans-serif;max-width:26em;margin:2em auto;padding:0 1em}}\
             input{{display:block;width:100%;margin:.3em 0 1em}}button{{margin-right:1em}}</style>\
             </head><body><h1>{t}</h1>{body}</body></html>",
            t = escape(title)
        ))
}

fn error_page(status: actix_web::http::StatusCode, message: &str) -> HttpResponse {
    page(
        status,
        "Cannot continue",
        &format!("<p>{}</p>", escape(message)),
    )
}

fn hidden_params(params: &Params) -> String {
    let mut fields: Vec<(&str, &str)> = params.iter().collect();
    fields.sort();
    fields
        .into_iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect()
}

fn form(params: &Params, csrf: &str, extra: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/oauth/authorize\">{}\
         <input type=\"hidden\" name=\"zhima_csrf\" value=\"{}\">{extra}</form>",
        hidden_params(params),
        escape(csrf)
    )
}

fn login_page(
    oauth: &OAuthState,
    consent: &Consent,
    params: &Params,
    csrf: &str,
    note: Option<&str>,
) -> HttpResponse {
    let note = note.map_or(String::new(), |n| {
        format!("<p><strong>{}</strong></p>", escape(n))
    });
    let body = format!(
        "<p>{name} asks to act for you. Log in with your member nickName and password.</p>{note}{}",
        form(
            params,
            csrf,
            "<label>NickName<input name=\"zhima_nickname\" autocomplete=\"username\" required></label>\
             <label>Password<input type=\"password\" name=\"zhima_password\" autocomplete=\"current-password\" required></label>\
             <button name=\"zhima_action\" value=\"login\">Log in</button>"
        ),
        name = escape(&consent.client_name),
    );
    with_csrf_cookie(
        oauth,
        page(actix_web::http::StatusCode::OK, "Log in", &body),
        csrf,
    )
}

fn consent_page(consent: &Consent, params: &Params, csrf: &str, ticket: &str) -> HttpResponse {
    let scopes: String = consent
        .scopes
        .iter()
        .map(|s| format!("<li>{}</li>", escape(s.description())))
        .collect();
    let body = format!(
        "<p><strong>{name}</strong> asks to:</p><ul>{scopes}</ul>\
         <p>It will send you back to {uri}.</p>{}",
        form(
            params,
            csrf,
            &format!(
                "<input type=\"hidden\" name=\"zhima_ticket\" value=\"{}\">\
                 <button name=\"zhima_action\" value=\"allow\">Allow</button>\
                 <button name=\"zhima_action\" value=\"deny\">Deny</button>",
                escape(ticket)
            )
        ),
        name = escape(&consent.client_name),
        uri = escape(&consent.redirect_uri),
    );
    page(actix_web::http::StatusCode::OK, "Allow access?", &body)
}

/// The CSRF cookie's name: `__Host-` prefixed (so no subdomain or plain
/// http page can set it) when the issuer is https.
fn csrf_cookie_name(oauth: &OAuthState) -> &'static str {
    if oauth.https {
        "__Host-zhima_csrf"
    } else {
        CSRF_COOKIE
    }
}

fn with_csrf_cookie(oauth: &OAuthState, mut response: HttpResponse, csrf: &str) -> HttpResponse {
    let cookie = if oauth.https {
        format!("__Host-zhima_csrf={csrf}; Path=/; Secure; HttpOnly; SameSite=Strict")
    } else {
        format!("{CSRF_COOKIE}={csrf}; Path=/oauth; HttpOnly; SameSite=Strict")
    };
    if let Ok(value) = header::HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// This browser's CSRF token, if it is one this server minted.
fn csrf_cookie(oauth: &OAuthState, req: &HttpRequest) -> Option<String> {
    let name = csrf_cookie_name(oauth);
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.to_owned())
        .filter(|v| csrf_signed(&oauth.ticket_key, v))
}

/// A new CSRF token: 128 random bits and a MAC of them under the server's
/// key. Minted for every login page, never taken from the browser, so a
/// value planted in a browser beforehand is worthless.
fn new_csrf(key: &[u8; 32]) -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    let random = URL_SAFE_NO_PAD.encode(bytes);
    let mac = csrf_mac(key, &random)?;
    Some(format!("{random}.{mac}"))
}

fn csrf_mac(key: &[u8; 32], random: &str) -> Option<String> {
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(b"csrf|");
    mac.update(random.as_bytes());
    Some(URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16]))
}

fn csrf_signed(key: &[u8; 32], value: &str) -> bool {
    value.split_once('.').is_some_and(|(random, mac)| {
        random.len() == 22
            && csrf_mac(key, random)
                .is_some_and(|expected| constant_time_eq(expected.as_bytes(), mac.as_bytes()))
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---------------------------------------------------------------- tickets

/// What the consent page showed, as a digest a ticket is bound to: the
/// redirect URI, the scopes, the state and the PKCE challenge. Form fields
/// changed after the page was shown no longer fit the ticket.
fn consent_binding(consent: &Consent, params: &Params) -> String {
    use sha2::Digest;
    // sorted: the provider hands scopes over in no fixed order
    let mut scopes: Vec<&str> = consent.scopes.iter().map(|s| s.as_str()).collect();
    scopes.sort_unstable();
    let mut digest = Sha256::new();
    for part in [
        consent.redirect_uri.as_str(),
        &scopes.join(" "),
        params.get("state").unwrap_or(""),
        params.get("code_challenge").unwrap_or(""),
    ] {
        digest.update(part.len().to_be_bytes());
        digest.update(part.as_bytes());
    }
    URL_SAFE_NO_PAD.encode(digest.finalize())
}

fn ticket_mac(key: &[u8; 32], body: &str, csrf: &str) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(body.as_bytes());
    mac.update(b"|");
    mac.update(csrf.as_bytes());
    Some(mac)
}

/// A consent ticket: the member who logged in, for this client and what
/// the consent page shows, in this browser, for 10 minutes, once.
fn issue_ticket(
    key: &[u8; 32],
    member: MemberId,
    client_id: &str,
    binding: &str,
    csrf: &str,
    now: DateTime<Utc>,
) -> Option<String> {
    let body = format!(
        "{}.{}.consent.{}.{binding}",
        member.0,
        URL_SAFE_NO_PAD.encode(client_id),
        now.timestamp() + TICKET_TTL_SECS
    );
    let mac = ticket_mac(key, &body, csrf)?.finalize().into_bytes();
    Some(format!("{body}.{}", URL_SAFE_NO_PAD.encode(mac)))
}

/// The member a ticket names, if it fits the client, what the page showed,
/// the browser and the time.
fn check_ticket(
    key: &[u8; 32],
    ticket: &str,
    client_id: &str,
    binding: &str,
    csrf: &str,
    now: DateTime<Utc>,
) -> Option<MemberId> {
    let (body, sig) = ticket.rsplit_once('.')?;
    let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
    ticket_mac(key, body, csrf)?.verify_slice(&sig).ok()?;
    let mut parts = body.split('.');
    let member: i64 = parts.next()?.parse().ok()?;
    let client = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
    let step = parts.next()?;
    let exp: i64 = parts.next()?.parse().ok()?;
    let bound = parts.next()?;
    (client == client_id.as_bytes()
        && step == "consent"
        && bound == binding
        && now.timestamp() < exp)
        .then_some(MemberId(member))
}

// ---------------------------------------------------------------- handlers

fn query_params(req: &HttpRequest) -> Params {
    Params::from_pairs(url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned())
}

async fn check_request(
    state: &web::Data<AppState>,
    params: Params,
    now: DateTime<Utc>,
) -> Result<(Consent, Params), HttpResponse> {
    let st = state.clone();
    let outcome = web::block(move || {
        let consent = st.oauth.provider.authorization_request(&params, now);
        (consent, params)
    })
    .await;
    let (consent, params) = match outcome {
        Ok(v) => v,
        Err(_) => {
            return Err(error_page(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "The server is busy. Try again.",
            ))
        }
    };
    match consent {
        Ok(c) => Ok((c, params)),
        Err(OAuthError::BadAuthorizationRequest(_)) => Err(error_page(
            actix_web::http::StatusCode::BAD_REQUEST,
            "This link does not come from a registered partner (unknown client or redirect URI). You have not been sent anywhere.",
        )),
        Err(OAuthError::RedirectWithError(url)) => Err(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, url.as_str()))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish()),
        Err(e) => {
            tracing::error!(error = %e, "authorization request failed");
            Err(error_page(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "The server cannot check this request now. Try again shortly.",
            ))
        }
    }
}

/// `GET /oauth/authorize`: check the request, then show the login form.
async fn authorize_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let now = state.clock.now();
    let (consent, params) = match check_request(&state, query_params(&req), now).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    // a fresh token for every login page, whatever the browser sent
    let Some(csrf) = new_csrf(&state.oauth.ticket_key) else {
        return error_page(
            actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            "The server failed.",
        );
    };
    login_page(&state.oauth, &consent, &params, &csrf, None)
}

/// `POST /oauth/authorize`: the login, password and consent forms.
async fn authorize_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let now = state.clock.now();
    let body = match read_limited(&req, payload).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            return error_page(
                actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                "The form is too large.",
            )
        }
        Err(BodyError::Unreadable) => {
            return error_page(
                actix_web::http::StatusCode::BAD_REQUEST,
                "The form could not be read.",
            )
        }
        Err(BodyError::TimedOut) => {
            return error_page(
                actix_web::http::StatusCode::REQUEST_TIMEOUT,
                "The form did not arrive in time.",
            )
        }
    };
    let mut ours: HashMap<String, String> = HashMap::new();
    let mut oauth: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(&body).into_owned() {
        if k.starts_with("zhima_") {
            ours.insert(k, v);
        } else {
            oauth.push((k, v));
        }
    }
    let field = |name: &str| ours.get(name).map(String::as_str).unwrap_or("");
    // CSRF: the form's token must match this browser's cookie
    let Some(csrf) = csrf_cookie(&state.oauth, &req).filter(|c| c.as_str() == field("zhima_csrf"))
    else {
        return error_page(
            actix_web::http::StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site. Go back to the partner and start again.",
        );
    };
    let (consent, params) = match check_request(&state, Params::from_pairs(oauth), now).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let key = &state.oauth.ticket_key;
    match field("zhima_action") {
        "login" => {
            login(
                &state,
                &req,
                &consent,
                &params,
                &csrf,
                field("zhima_nickname"),
                field("zhima_password"),
                now,
            )
            .await
        }
        action @ ("allow" | "deny") => {
            let ticket = field("zhima_ticket");
            let binding = consent_binding(&consent, &params);
            let Some(member) = check_ticket(key, ticket, &consent.client_id, &binding, &csrf, now)
            else {
                return login_page(
                    &state.oauth,
                    &consent,
                    &params,
                    &csrf,
                    Some("Your login has expired, or the request changed; log in again."),
                );
            };
            let allow = action == "allow";
            let st = state.clone();
            let spent = zhima_storage::credentials::hash_api_key(ticket);
            let expires = now + chrono::Duration::seconds(TICKET_TTL_SECS);
            let decided = web::block(move || {
                // each ticket answers once, on any server of the database
                if !st.oauth.provider.spend_ticket(&spent, expires, now)? {
                    return Ok(None);
                }
                st.oauth
                    .provider
                    .decide(&params, member, allow, now)
                    .map(Some)
            })
            .await;
            match decided {
                Ok(Ok(Some(url))) => HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, url.as_str()))
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .finish(),
                Ok(Ok(None)) => error_page(
                    actix_web::http::StatusCode::CONFLICT,
                    "This request was already answered. Go back to the partner and start again.",
                ),
                Ok(Err(e)) => OAuthHttpError(e).into_page(),
                Err(_) => error_page(
                    actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                    "The server is busy. Try again.",
                ),
            }
        }
        _ => error_page(actix_web::http::StatusCode::BAD_REQUEST, "Unknown action."),
    }
}

impl OAuthHttpError {
    fn into_page(self) -> HttpResponse {
        match self.0 {
            OAuthError::RedirectWithError(url) => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, url.as_str()))
                .finish(),
            OAuthError::BadAuthorizationRequest(m) => {
                error_page(actix_web::http::StatusCode::BAD_REQUEST, m)
            }
            e => {
                tracing::error!(error = %e, "authorization failed");
                error_page(
                    actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                    "The server cannot finish this now. Try again shortly.",
                )
            }
        }
    }
}

/// What a failed login is told, whatever the reason: unknown nickName,
/// wrong password, a deactivated member, or a member still on the default
/// password (which never opens a web login).
const LOGIN_REFUSED: &str = "Wrong nickName or password. If you have never chosen a password, \
     ask the space's staff to set one for you; the default password does not open this page. \
     / 昵称或密码错误。如果您从未设置过密码，请联系空间工作人员为您设置；默认密码不能在此登录。";

fn too_many_logins(wait: Duration) -> HttpResponse {
    let mut page = error_page(
        actix_web::http::StatusCode::TOO_MANY_REQUESTS,
        "Too many failed logins. Wait a few minutes and try again.",
    );
    if let Ok(v) = header::HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
        page.headers_mut().insert(header::RETRY_AFTER, v);
    }
    page
}

#[allow(clippy::too_many_arguments)]
async fn login(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    consent: &Consent,
    params: &Params,
    csrf: &str,
    nickname: &str,
    password: &str,
    now: DateTime<Utc>,
) -> HttpResponse {
    let address = state.peer_ip(req);
    let (st, nickname, password) = (state.clone(), nickname.to_owned(), password.to_owned());
    let who = address.clone();
    let checked =
        web::block(move || st.logins.login(&nickname, &password, &who, Instant::now())).await;
    let member = match checked {
        Ok(Ok(member)) => member,
        Ok(Err(LoginError::TooMany(wait))) => {
            tracing::warn!(%address, "login refused: too many failures");
            return too_many_logins(wait);
        }
        Ok(Err(LoginError::Refused)) => {
            tracing::info!(%address, "failed login");
            return login_page(&state.oauth, consent, params, csrf, Some(LOGIN_REFUSED));
        }
        Ok(Err(LoginError::Busy)) => return busy_page(),
        Ok(Err(LoginError::Storage(_))) | Err(_) => {
            return error_page(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "The server cannot check your password now. Try again shortly.",
            )
        }
    };
    let key = &state.oauth.ticket_key;
    let binding = consent_binding(consent, params);
    let Some(ticket) = issue_ticket(key, member, &consent.client_id, &binding, csrf, now) else {
        return error_page(
            actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            "The server failed.",
        );
    };
    consent_page(consent, params, csrf, &ticket)
}

/// 503 with `Retry-After`: too many password checks are already running.
fn busy_page() -> HttpResponse {
    let mut page = error_page(
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
        "The server is busy checking other logins. Try again in a moment.",
    );
    page.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    page
}

/// Reads a token-endpoint request: a form body and optional Basic credentials.
async fn token_request(
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
fn parse_basic(value: &str) -> Option<(String, String)> {
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

fn no_store(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    builder
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, OAuthError> + Send + 'static,
) -> Result<T, OAuthHttpError> {
    web::block(f)
        .await
        .map_err(|_| OAuthHttpError(OAuthError::Internal))?
        .map_err(OAuthHttpError)
}

fn client_keys(state: &AppState, req: &HttpRequest) -> [(String, usize); 1] {
    [(format!("client:{}", state.peer_ip(req)), CLIENT_FAILURES)]
}

/// 429 once an address has failed client authentication too often.
fn client_limited(wait: Duration) -> HttpResponse {
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
async fn client_call<T: Send + 'static>(
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
async fn token(
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
async fn revoke(
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
async fn introspect(
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
async fn metadata(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
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
fn request_origin(state: &AppState, req: &HttpRequest) -> String {
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
    fn tickets_are_bound_to_member_client_what_was_shown_browser_and_time() {
        let key = [7u8; 32];
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let t = issue_ticket(&key, MemberId(42), "client-a", "shown1", "csrf1", now).unwrap();
        let check = |key: &[u8; 32], t: &str, client, shown, csrf, at| {
            check_ticket(key, t, client, shown, csrf, at)
        };
        assert_eq!(
            check(&key, &t, "client-a", "shown1", "csrf1", now),
            Some(MemberId(42))
        );
        assert_eq!(check(&key, &t, "client-b", "shown1", "csrf1", now), None);
        assert_eq!(check(&key, &t, "client-a", "shown2", "csrf1", now), None);
        assert_eq!(check(&key, &t, "client-a", "shown1", "csrf2", now), None);
        let later = now + chrono::Duration::seconds(TICKET_TTL_SECS);
        assert_eq!(check(&key, &t, "client-a", "shown1", "csrf1", later), None);
        assert_eq!(
            check(&[8u8; 32], &t, "client-a", "shown1", "csrf1", now),
            None
        );
        let forged = t.replacen("42.", "43.", 1);
        assert_eq!(
            check(&key, &forged, "client-a", "shown1", "csrf1", now),
            None
        );
    }

    #[test]
    fn only_tokens_this_server_minted_are_csrf_tokens() {
        let key = [7u8; 32];
        let t = new_csrf(&key).unwrap();
        assert!(csrf_signed(&key, &t));
        assert!(!csrf_signed(&[8u8; 32], &t));
        assert!(!csrf_signed(&key, "AAAAAAAAAAAAAAAAAAAAAA"), "a bare value");
        let (random, _) = t.split_once('.').unwrap();
        assert!(!csrf_signed(
            &key,
            &format!("{random}.AAAAAAAAAAAAAAAAAAAAAA")
        ));
        assert_ne!(new_csrf(&key).unwrap(), t);
    }

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
