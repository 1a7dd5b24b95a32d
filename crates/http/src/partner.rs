//! The Partner API: `/partner/1/profile` and `/partner/1/vip`, for partner
//! companies acting for a member with an OAuth2 access token.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};
use zhima_domain::partner::{PartnerScope, VipLevel};
use zhima_domain::time::format_local_timestamp;
use zhima_oauth::AccessGrant;
use zhima_storage::wallet::VipOutcome;

use crate::body::{read_limited, BodyError};
use crate::error::PartnerError;
use crate::request::BearerError;
use crate::AppState;

/// The Partner API routes.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/partner/1/profile")
            .route(web::get().to(profile))
            .route(web::post().to(profile))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/partner/1/vip")
            .route(web::post().to(vip))
            .default_service(web::to(method_not_allowed)),
    );
}

async fn method_not_allowed() -> Result<HttpResponse, PartnerError> {
    Err(PartnerError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: "Method not allowed.".into(),
        challenge: None,
    })
}

/// The parameters of a partner request: query string, then a form or JSON body.
#[derive(Debug, Default)]
struct Request {
    token: Option<String>,
    level: Option<String>,
}

fn from_query(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

/// Reads the token (from exactly one place) and the other parameters.
async fn read(req: &HttpRequest, payload: web::Payload) -> Result<Request, PartnerError> {
    let mut places = 0;
    let mut token = None;
    let mut level = None;
    match crate::request::bearer(req) {
        Ok(Some(t)) => {
            places += 1;
            token = Some(t);
        }
        Ok(None) => {}
        Err(BearerError::Repeated) => {
            return Err(PartnerError::bad_request(
                "The access token must be sent in exactly one place (header, query, form or JSON).",
            ))
        }
        Err(BearerError::Malformed) => {
            return Err(PartnerError::from(zhima_oauth::OAuthError::InvalidToken))
        }
    }
    let mut take = |pairs: Vec<(String, String)>, places: &mut u32| -> Result<(), PartnerError> {
        let mut seen_token = false;
        for (k, v) in pairs {
            match k.as_str() {
                "access_token" => {
                    if seen_token {
                        return Err(PartnerError::bad_request("access_token is given twice."));
                    }
                    seen_token = true;
                    *places += 1;
                    token = Some(v);
                }
                "level" => {
                    // an ambiguous order is refused, never guessed
                    if level.is_some() {
                        return Err(PartnerError::bad_request("level is given twice."));
                    }
                    level = Some(v)
                }
                _ => {}
            }
        }
        Ok(())
    };
    take(from_query(req), &mut places)?;
    let body = read_limited(req, payload).await.map_err(|e| match e {
        BodyError::TooLarge => PartnerError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: "The request body is too large.".into(),
            challenge: None,
        },
        BodyError::Unreadable => PartnerError::bad_request("The request body could not be read."),
        BodyError::TimedOut => PartnerError {
            status: StatusCode::REQUEST_TIMEOUT,
            message: "The request body did not arrive in time.".into(),
            challenge: None,
        },
    })?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let content_type = crate::request::media_type(req).unwrap_or_default();
        match content_type.as_str() {
            "application/x-www-form-urlencoded" => take(
                url::form_urlencoded::parse(&body).into_owned().collect(),
                &mut places,
            )?,
            "application/json" => {
                let map: Map<String, Value> = crate::body::unique_object(&body).map_err(|e| {
                    PartnerError::bad_request(format!(
                        "The request body must be a JSON object with each key once: {e}"
                    ))
                })?;
                let mut pairs = Vec::new();
                for (k, v) in map {
                    if k == "access_token" || k == "level" {
                        let Value::String(s) = v else {
                            return Err(PartnerError::bad_request(format!(
                                "{k} must be a string."
                            )));
                        };
                        pairs.push((k, s));
                    }
                }
                take(pairs, &mut places)?
            }
            _ => {
                return Err(PartnerError {
                    status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    message: "Send a form (application/x-www-form-urlencoded) or JSON body.".into(),
                    challenge: None,
                })
            }
        }
    }
    if places > 1 {
        return Err(PartnerError::bad_request(
            "The access token must be sent in exactly one place (header, query, form or JSON).",
        ));
    }
    Ok(Request { token, level })
}

async fn authorize(
    state: &web::Data<AppState>,
    request: &Request,
    scope: PartnerScope,
) -> Result<AccessGrant, PartnerError> {
    let Some(token) = request.token.clone() else {
        return Err(PartnerError::token_missing());
    };
    let now = state.clock.now();
    let st = state.clone();
    web::block(move || st.oauth.provider.check_access(&token, scope, now))
        .await
        .map_err(|_| PartnerError::from(zhima_oauth::OAuthError::Internal))?
        .map_err(PartnerError::from)
}

fn ok(body: Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// `GET /partner/1/profile` (scope `profile`).
async fn profile(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PartnerError> {
    let request = read(&req, payload).await?;
    let Some(token) = request.token else {
        return Err(PartnerError::token_missing());
    };
    let (st, now) = (state.clone(), state.clock.now());
    // the token check and the member: one statement on one blocking thread
    let profile = web::block(move || {
        st.oauth
            .provider
            .check_access_with_member(&token, PartnerScope::Profile, now)
    })
    .await
    .map_err(|_| PartnerError::from(zhima_oauth::OAuthError::Internal))?
    .map(|(_, record)| zhima_app::wallet::Wallet::profile_of(record, now))?;
    let member = &profile.record.member;
    Ok(ok(json!({
        "success": true,
        "message": "",
        "nickname": member.nickname.as_str(),
        "email": member.profile.email,
        "gender": member.profile.gender.name(),
        "vip": profile.vip.map(VipLevel::as_str),
        "goplay_token": profile.balance.paid.as_f64(),
        "free_goplay_token": profile.balance.free.as_f64(),
    })))
}

/// A valid `Idempotency-Key`: 1 to 255 visible ASCII characters.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, PartnerError> {
    let Some(value) = req.headers().get("Idempotency-Key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            PartnerError::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters.")
        })?;
    Ok(Some(key.to_owned()))
}

/// `POST /partner/1/vip` (scope `vip`) with `level`.
async fn vip(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PartnerError> {
    let request = read(&req, payload).await?;
    let grant = authorize(&state, &request, PartnerScope::Vip).await?;
    let level = match request.level.as_deref() {
        None | Some("") => {
            return Err(PartnerError::bad_request(
                "level is required: \"standard\" or \"gold\".",
            ))
        }
        Some(text) => {
            VipLevel::parse(text).map_err(|e| PartnerError::bad_request(e.to_string()))?
        }
    };
    let key = idempotency_key(&req)?;
    let now = state.clock.now();
    let st = state.clone();
    let outcome = web::block(move || {
        st.wallet.buy_vip(
            grant.member_id,
            &grant.client_id,
            level,
            key.as_deref(),
            now,
        )
    })
    .await
    .map_err(|_| PartnerError::from(zhima_oauth::OAuthError::Internal))?
    .map_err(PartnerError::from)?;
    match outcome {
        VipOutcome::Bought(bought) => {
            let until = format_local_timestamp(bought.period.end, state.tz);
            let mut response = HttpResponse::Ok();
            response.insert_header((header::CACHE_CONTROL, "no-store"));
            if bought.replayed {
                response.insert_header(("Idempotent-Replayed", "true"));
            }
            Ok(response.json(json!({
                "success": true,
                "message": format!("VIP {} bought: valid until {until}.", level.as_str()),
                "level": level.as_str(),
                "vip_start": format_local_timestamp(bought.period.start, state.tz),
                "vip_end": until,
                "free_goplay_token_spent": bought.debit.free.as_f64(),
                "goplay_token_spent": bought.debit.paid.as_f64(),
            })))
        }
        VipOutcome::Insufficient(short) => Ok(ok(json!({
            "success": false,
            "message": format!(
                "Not enough GoPlay tokens: VIP {} costs {}, the balance is {}. Nothing was charged.",
                level.as_str(),
                short.price,
                short.available
            ),
        }))),
        VipOutcome::KeyReused => Err(PartnerError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: "This Idempotency-Key was used for another purchase.".into(),
            challenge: None,
        }),
    }
}
