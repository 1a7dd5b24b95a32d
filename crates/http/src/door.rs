//! The door API (seed section 9) and the access log.
//!
//! Order of work for an unlock: authenticate, check the body, write the
//! access event, then move the door. A crash before the event is written
//! leaves nothing; a crash after it leaves a logged grant and a door the
//! controller (or the next start) locks.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};
use zhima_app::entrance::{Admitted, Credential};
use zhima_domain::access::{unlock_seconds, AccessMethod, Outcome};
use zhima_domain::time::parse_local_timestamp;
use zhima_domain::Errno;
use zhima_storage::access::{EventQuery, PAGE_MAX};

use crate::auth::{Admin, Authorized, DoorOpen};
use crate::error::{success, ApiError, Operation};
use crate::{body, wire, AppState};

/// The events page size when `limit` is not given.
pub const DEFAULT_PAGE: u32 = 50;

/// Routes of the door and the access log.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::resource("/api/v1.0/open/seconds").route(web::post().to(open_seconds)))
        .service(crate::resource("/api/v1.0/entries").route(web::get().to(entries)))
        .service(crate::resource("/api/v1.0/door/scan").route(web::post().to(scan)))
        .service(crate::resource("/api/v1.0/door/rfid").route(web::post().to(rfid)));
}

/// Why a body does not say how long to open: the text after
/// "Incorrect call to open the door: ".
fn seconds_from(body: &Map<String, Value>, max: u32) -> Result<Duration, String> {
    let allowed = format!("seconds must be a JSON integer from 1 to {max}");
    if let Some(extra) = body.keys().find(|k| k.as_str() != "seconds") {
        return Err(format!("{allowed}; unexpected field {extra:?}"));
    }
    let got = match body.get("seconds") {
        None => return Err(format!("{allowed}; it is missing")),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i128::from(i),
            (None, Some(u)) => i128::from(u),
            (None, None) => return Err(format!("{allowed}; got {n}, not an integer")),
        },
        Some(Value::String(_)) => return Err(format!("{allowed}; got a string")),
        Some(Value::Bool(_)) => return Err(format!("{allowed}; got a boolean")),
        Some(Value::Null) => return Err(format!("{allowed}; got null")),
        Some(_) => return Err(format!("{allowed}; got a list or an object")),
    };
    unlock_seconds(got, max).map_err(|_| format!("{allowed}; got {got}"))
}

/// `POST /api/v1.0/open/seconds` `{"seconds": N}` (scope `door:open`):
/// answers once the door has locked again.
async fn open_seconds(
    auth: Authorized<DoorOpen>,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let max = state.door.max_unlock_secs;
    let asked = match body::json_object(&req, payload).await {
        Ok(body) => seconds_from(&body, max),
        Err(e) if e.errno == Errno::BadRequest => Err(format!(
            "seconds must be a JSON integer from 1 to {max}; {}",
            e.message
        )),
        Err(e) => Err(e.message),
    };
    let key = (auth.key.id, auth.key.name.as_str());
    let (seconds, opened) = state.entrance.unlock(asked, key, state.clock.now()).await?;
    Ok(success(
        "Door is now closed",
        json!({
            "seconds": seconds.as_secs(),
            "unlockedAt": wire::precise_time(opened.unlocked_at, state.tz),
            "lockedAt": wire::precise_time(opened.locked_at, state.tz),
            "extended": opened.extended,
        }),
    ))
}

/// `GET /api/v1.0/entries?since=YYYYMMDDHHMM&limit=N&before=ID` (scope
/// `admin`): the access log, newest first. `data.next` is the `before` of
/// the next page, or null on the last one.
async fn entries(
    _auth: Authorized<Admin>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let params = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map_err(|_| ApiError::new(Errno::BadRequest, "the query string is malformed"))?
        .into_inner();
    if let Some(unknown) = params
        .keys()
        .find(|k| !["since", "limit", "before"].contains(&k.as_str()))
    {
        return Err(ApiError::bad_field(
            unknown,
            "unknown parameter; use since, limit and before",
        ));
    }
    let since = params
        .get("since")
        .map(|s| parse_local_timestamp(s, state.tz))
        .transpose()
        .map_err(|e| ApiError::bad_field("since", e))?;
    let limit = match params.get("limit") {
        None => DEFAULT_PAGE,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=PAGE_MAX).contains(n))
            .ok_or_else(|| {
                ApiError::bad_field("limit", format!("a whole number from 1 to {PAGE_MAX}"))
            })?,
    };
    let before = params
        .get("before")
        .map(|b| b.parse::<i64>().ok().filter(|n| *n > 0))
        .map(|b| b.ok_or_else(|| ApiError::bad_field("before", "an event id from data.next")))
        .transpose()?;
    let query = EventQuery {
        since,
        before,
        limit,
        ..EventQuery::default()
    };
    let st = state.clone();
    let events = web::block(move || st.entrance.events(query))
        .await?
        .map_err(ApiError::app(Operation::Read))?;
    let next = (events.len() == limit as usize)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    let events: Vec<Value> = events
        .iter()
        .map(|e| wire::access_event(e, state.tz))
        .collect();
    Ok(success(
        "Success",
        json!({ "events": events, "next": next }),
    ))
}

fn welcome(admitted: &Admitted, tz: chrono_tz::Tz) -> HttpResponse {
    success(
        &format!("Welcome, {}!", admitted.nickname),
        wire::admitted(admitted, tz),
    )
}

/// One string field, the only field of the body.
fn only_string(body: &Map<String, Value>, field: &'static str) -> Result<String, ApiError> {
    if let Some(extra) = body.keys().find(|k| k.as_str() != field) {
        return Err(ApiError::bad_field(
            extra,
            format!("unexpected; send only {field}"),
        ));
    }
    match body.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Some(_) => Err(ApiError::bad_field(field, "must be a non-empty string")),
        None => Err(ApiError::bad_field(field, "is required")),
    }
}

/// What a door route reads from its body.
#[derive(Clone, Copy)]
enum Presented {
    /// `{"code": …}`
    Code,
    /// `{"uid": …}`
    Card,
}

impl Presented {
    fn method(self) -> AccessMethod {
        match self {
            Presented::Code => AccessMethod::Qr,
            Presented::Card => AccessMethod::Rfid,
        }
    }
}

/// A body of one string field, presented at the door.
async fn present(
    auth: Authorized<DoorOpen>,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    what: Presented,
) -> Result<HttpResponse, ApiError> {
    // before anything is read, checked or logged: a flood costs no database work
    if let Err(wait) = state.door.scan_limit.take(auth.key.id) {
        tracing::warn!(key = %auth.key.name, "door scans over the rate limit");
        state.metrics.observe_access(
            what.method().as_str(),
            Outcome::Refused.as_str(),
            "rate_limited",
        );
        return Err(ApiError::too_many(wait));
    }
    let body = body::json_object(&req, payload).await?;
    let field = match what {
        Presented::Code => "code",
        Presented::Card => "uid",
    };
    let text = only_string(&body, field)?;
    let now = state.clock.now();
    let st = state.clone();
    let key = auth.key.id;
    let admitted = web::block(move || {
        let credential = match what {
            Presented::Code => Credential::Code(&text),
            Presented::Card => Credential::Card(&text),
        };
        st.entrance.admit(credential, Some(key), now)
    })
    .await??;
    Ok(welcome(&admitted, state.tz))
}

/// `POST /api/v1.0/door/scan` `{"code": "<scanned text>"}` (scope `door:open`).
async fn scan(
    auth: Authorized<DoorOpen>,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    present(auth, state, req, payload, Presented::Code).await
}

/// `POST /api/v1.0/door/rfid` `{"uid": "<hex>"}` (scope `door:open`).
async fn rfid(
    auth: Authorized<DoorOpen>,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    present(auth, state, req, payload, Presented::Card).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> Map<String, Value> {
        match serde_json::from_str(text).unwrap() {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn only_a_whole_number_in_range_opens() {
        assert_eq!(
            seconds_from(&body(r#"{"seconds": 3}"#), 30),
            Ok(Duration::from_secs(3))
        );
        assert_eq!(
            seconds_from(&body(r#"{"seconds": 30}"#), 30),
            Ok(Duration::from_secs(30))
        );
        for (text, says) in [
            (r#"{"seconds": "3"}"#, "got a string"),
            (r#"{"seconds": 3.0}"#, "not an integer"),
            (r#"{"seconds": 2.5}"#, "not an integer"),
            (r#"{"seconds": true}"#, "got a boolean"),
            (r#"{"seconds": null}"#, "got null"),
            (r#"{"seconds": [3]}"#, "a list or an object"),
            (r#"{"seconds": -1}"#, "got -1"),
            (r#"{"seconds": 0}"#, "got 0"),
            (r#"{"seconds": 31}"#, "got 31"),
            (r#"{"seconds": 99998}"#, "got 99998"),
            (
                r#"{"seconds": 18446744073709551615}"#,
                "got 18446744073709551615",
            ),
            (r#"{"seconds": 1e400}"#, ""),
            (r#"{}"#, "missing"),
            (r#"{"seconds": 3, "door": "back"}"#, "unexpected field"),
        ] {
            let Ok(map) = serde_json::from_str::<Value>(text).map(|v| match v {
                Value::Object(m) => m,
                _ => Map::new(),
            }) else {
                continue; // not JSON at all: the handler refuses it before
            };
            let err = seconds_from(&map, 30).unwrap_err();
            assert!(
                err.starts_with("seconds must be a JSON integer from 1 to 30"),
                "{text}: {err}"
            );
            assert!(err.contains(says), "{text}: {err}");
        }
    }
}
