//! `/oauth/authorize`: checking the request, logging in, consenting.

use std::collections::HashMap;
use std::time::Instant;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use zhima_app::login::LoginError;
use zhima_oauth::{Consent, Params};

use crate::body::{read_limited, BodyError};
use crate::error::PageError;
use crate::AppState;

use super::*;
use crate::i18n::Lang;

pub(super) fn query_params(req: &HttpRequest) -> Params {
    Params::from_pairs(url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned())
}

pub(super) async fn check_request(
    state: &web::Data<AppState>,
    params: Params,
    now: DateTime<Utc>,
) -> Result<(Consent, Params), PageError> {
    let st = state.clone();
    let (consent, params) = web::block(move || {
        let consent = st.oauth.provider.authorization_request(&params, now);
        (consent, params)
    })
    .await?;
    Ok((consent?, params))
}

/// `GET /oauth/authorize`: check the request, then show the login form,
/// in the request's language (errors too).
pub(super) async fn authorize_page(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, PageError> {
    let lang = Lang::of(&req);
    show_login(state, req, lang)
        .await
        .map_err(|e| e.in_lang(lang))
}

async fn show_login(
    state: web::Data<AppState>,
    req: HttpRequest,
    lang: Lang,
) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let (consent, params) = check_request(&state, query_params(&req), now).await?;
    // a fresh token for every login page, whatever the browser sent
    let csrf = new_csrf(&state.oauth.ticket_key).ok_or_else(PageError::internal)?;
    Ok(login_page(
        &state.oauth,
        lang,
        &consent,
        &params,
        &csrf,
        None,
    ))
}

/// `POST /oauth/authorize`: the login and consent forms, in the request's
/// language (errors too).
pub(super) async fn authorize_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let lang = Lang::of(&req);
    answer_form(state, req, payload, lang)
        .await
        .map_err(|e| e.in_lang(lang))
}

async fn answer_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    lang: Lang,
) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let body = read_limited(&req, payload).await.map_err(|e| match e {
        BodyError::TooLarge => {
            PageError::page(actix_web::http::StatusCode::PAYLOAD_TOO_LARGE, |t| {
                t.form_too_large
            })
        }
        BodyError::Unreadable => PageError::page(actix_web::http::StatusCode::BAD_REQUEST, |t| {
            t.form_unreadable
        }),
        BodyError::TimedOut => PageError::page(actix_web::http::StatusCode::REQUEST_TIMEOUT, |t| {
            t.form_too_slow
        }),
    })?;
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
        return Err(PageError::page(
            actix_web::http::StatusCode::FORBIDDEN,
            |t| t.oauth_form_expired,
        ));
    };
    let (consent, params) = check_request(&state, Params::from_pairs(oauth), now).await?;
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
                return Ok(login_page(
                    &state.oauth,
                    lang,
                    &consent,
                    &params,
                    &csrf,
                    Some(|t| t.oauth_login_expired),
                ));
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
            .await??;
            match decided {
                Some(url) => Ok(HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, url.as_str()))
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .finish()),
                None => Err(PageError::page(
                    actix_web::http::StatusCode::CONFLICT,
                    |t| t.already_answered,
                )),
            }
        }
        _ => Err(PageError::page(
            actix_web::http::StatusCode::BAD_REQUEST,
            |t| t.unknown_action,
        )),
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn login(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    consent: &Consent,
    params: &Params,
    csrf: &str,
    nickname: &str,
    password: &str,
    now: DateTime<Utc>,
) -> Result<HttpResponse, PageError> {
    let address = state.peer_ip(req);
    let (st, nickname, password) = (state.clone(), nickname.to_owned(), password.to_owned());
    let who = address.clone();
    let checked =
        web::block(move || st.logins.login(&nickname, &password, &who, Instant::now())).await;
    let member = match checked? {
        Ok(member) => member,
        Err(LoginError::TooMany(wait)) => {
            tracing::warn!(%address, "login refused: too many failures");
            return Err(PageError::retry_after(
                actix_web::http::StatusCode::TOO_MANY_REQUESTS,
                |t| t.too_many_logins,
                wait.as_secs(),
            ));
        }
        Err(LoginError::Refused) => {
            tracing::info!(%address, "failed login");
            let again = login_page(
                &state.oauth,
                Lang::of(req),
                consent,
                params,
                csrf,
                Some(|t| t.oauth_login_refused),
            );
            return Ok(again);
        }
        Err(LoginError::Busy) => {
            return Err(PageError::retry_after(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                |t| t.logins_busy,
                1,
            ))
        }
        Err(LoginError::Storage(_)) => {
            return Err(PageError::page(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                |t| t.cannot_check_password,
            ))
        }
    };
    let key = &state.oauth.ticket_key;
    let binding = consent_binding(consent, params);
    let ticket = issue_ticket(key, member, &consent.client_id, &binding, csrf, now)
        .ok_or_else(PageError::internal)?;
    Ok(consent_page(Lang::of(req), consent, params, csrf, &ticket))
}
