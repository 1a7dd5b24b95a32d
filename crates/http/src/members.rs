//! The Member API (seed sections 4–8): thin handlers over `zhima_app::members`.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use zhima_app::members::{Lookup, MemberView};
use zhima_domain::ids::{MemberId, OpenId, Rfid};
use zhima_domain::Errno;

use crate::auth::{Authorized, MemberRead, MemberWrite};
use crate::error::{success, ApiError, Operation};
use crate::{body, wire, AppState};

/// Routes under `/api/v1.0/member`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::resource("/api/v1.0/member/new").route(web::post().to(create)))
        .service(
            crate::resource("/api/v1.0/member/openid/{openid}")
                .route(web::get().to(get_by_openid))
                .route(web::patch().to(patch)),
        )
        .service(crate::resource("/api/v1.0/member/rfid/{rfid}").route(web::get().to(get_by_rfid)))
        .service(crate::resource("/api/v1.0/member/{id}").route(web::get().to(get_by_id)));
}

/// GET one member: the Member JSON structure at the top level, with errno
/// and errmsg beside it.
async fn fetch(
    state: web::Data<AppState>,
    lookup: Lookup,
    asked: Value,
) -> Result<HttpResponse, ApiError> {
    let view = state
        .members
        .fetch(lookup, state.clock.now())
        .await
        .map_err(ApiError::app(Operation::Read))?
        .ok_or_else(|| ApiError::member_not_found(asked))?;
    Ok(HttpResponse::Ok().json(wire::member_answer(&view.record, &view.validity, state.tz)))
}

async fn get_by_openid(
    _auth: Authorized<MemberRead>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = path.into_inner();
    let openid = OpenId::parse(&key).map_err(|_| ApiError::member_not_found(json!(key)))?;
    fetch(state, Lookup::OpenId(openid), json!(key)).await
}

async fn get_by_rfid(
    _auth: Authorized<MemberRead>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = path.into_inner();
    let rfid = Rfid::parse(&key).map_err(|_| ApiError::member_not_found(json!(key)))?;
    fetch(state, Lookup::Rfid(rfid), json!(key)).await
}

async fn get_by_id(
    _auth: Authorized<MemberRead>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = path.into_inner();
    let id = key
        .parse::<i64>()
        .map_err(|_| ApiError::member_not_found(json!(key)))?;
    fetch(state, Lookup::Id(MemberId(id)), json!(id)).await
}

/// The `data` of every successful write: `new_id` and `qrcode_url` as in the
/// seed, plus the member's status and end of validity.
fn write_data(
    state: &AppState,
    view: &MemberView,
    now: DateTime<Utc>,
) -> serde_json::Map<String, Value> {
    let mut data = serde_json::Map::new();
    data.insert("new_id".into(), json!(view.record.member.id.0));
    data.insert(
        "qrcode_url".into(),
        json!(state.qr.image_url(view.record.member.id.0, now)),
    );
    data.insert("status".into(), json!(view.validity.status.wire_name()));
    data.insert(
        "expireTime".into(),
        json!(view.validity.valid_until.map_or(String::new(), |t| {
            zhima_domain::time::format_local_timestamp(t, state.tz)
        })),
    );
    data
}

/// POST `/api/v1.0/member/new`.
async fn create(
    _auth: Authorized<MemberWrite>,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = body::json_object(&req, payload).await?;
    let (new, payment) = wire::new_member(&body, &state.plans, state.tz)?;
    let (st, now) = (state.clone(), state.clock.now());
    let view = web::block(move || st.members.create(&new, payment.as_ref(), now))
        .await?
        .map_err(ApiError::app(Operation::CreateMember))?;
    Ok(success(
        "Success",
        Value::Object(write_data(&state, &view, now)),
    ))
}

/// PATCH `/api/v1.0/member/openid/{openid}` with `op` `update` or `add`.
async fn patch(
    _auth: Authorized<MemberWrite>,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let key = path.into_inner();
    let not_found = |e: ApiError| match e.errno {
        Errno::MemberNotFound => ApiError::member_not_found(json!(key)),
        _ => e,
    };
    let openid = OpenId::parse(&key).map_err(|_| ApiError::member_not_found(json!(key)))?;
    let body = body::json_object(&req, payload).await?;
    let op = match body.get("op") {
        None | Some(Value::Null) => {
            return Err(ApiError::bad_field(
                "op",
                "is required (\"update\" or \"add\")",
            ))
        }
        Some(Value::String(op)) if op == "update" || op == "add" => op.as_str(),
        Some(_) => return Err(ApiError::bad_field("op", "must be \"update\" or \"add\"")),
    };
    let Some(Value::Object(data)) = body.get("data") else {
        return Err(ApiError::bad_field("data", "must be an object"));
    };
    let (st, now) = (state.clone(), state.clock.now());
    if op == "update" {
        let request = wire::update_request(data)?;
        let changes = request.changes;
        let view = web::block(move || st.members.update(&openid, &changes, now))
            .await?
            .map_err(ApiError::app(Operation::UpdateMember))
            .map_err(not_found)?;
        let mut out = write_data(&state, &view, now);
        out.insert("updated".into(), json!(request.updated));
        out.insert("ignored".into(), json!(request.ignored));
        return Ok(success("Success", Value::Object(out)));
    }
    let payment = wire::payment(data, "data.", &state.plans, state.tz)?;
    let recorded = web::block(move || st.members.add_payment(&openid, &payment, now))
        .await?
        .map_err(ApiError::app(Operation::AddPayment))
        .map_err(not_found)?;
    let mut out = write_data(&state, &recorded.view, now);
    out.insert("transaction_id".into(), json!(recorded.payment.id));
    out.insert("duplicate".into(), json!(recorded.duplicate));
    Ok(success("Success", Value::Object(out)))
}
