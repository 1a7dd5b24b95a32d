//! The staff console (first pages): log in, log out, the dashboard, the
//! language switch and the stylesheet. Server-rendered from askama
//! templates compiled into the binary (`templates/console/`), in Chinese
//! and English ([`crate::i18n`]), with no script at all.
//!
//! Security: a session cookie (`HttpOnly`, `SameSite=Strict`; `Secure` and
//! `__Host-` named when the issuer is https) naming a session stored in the
//! database; the role is checked on the server on every request; every form
//! carries a CSRF token (the login form the signed cookie token of the OAuth
//! pages, a session's forms the token derived from the session); every page
//! has a Content-Security-Policy without script and `frame-ancestors 'none'`.

use std::time::Instant;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use askama::Template;
use chrono::{DateTime, Utc};
use zhima_app::sessions::{csrf_matches, csrf_token, Role, Session, SessionError};
use zhima_domain::access::Outcome;
use zhima_domain::time::format_local_timestamp;
use zhima_storage::access::EventQuery;

use crate::i18n::{Lang, Texts, LANG_COOKIE};
use crate::request::cookie;
use crate::AppState;

/// Routes of the console.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::resource("/console").route(web::get().to(dashboard)))
        .service(crate::resource("/console/members").route(web::get().to(members)))
        .service(crate::resource("/console/members/{id}").route(web::get().to(member)))
        .service(
            crate::resource("/console/members/{id}/payments").route(web::post().to(record_payment)),
        )
        .service(crate::resource("/console/log").route(web::get().to(access_log)))
        .service(crate::resource("/console/log.csv").route(web::get().to(access_log_csv)))
        .service(
            crate::resource("/console/door")
                .route(web::get().to(door_page))
                .route(web::post().to(unlock)),
        )
        .service(
            crate::resource("/console/login")
                .route(web::get().to(login_page))
                .route(web::post().to(login)),
        )
        .service(crate::resource("/console/logout").route(web::post().to(logout)))
        .service(crate::resource("/lang/{tag}").route(web::get().to(switch_language)))
        .service(crate::resource("/static/console.css").route(web::get().to(stylesheet)));
}

/// The policy of every console page: our stylesheet, no script, no frames.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLESHEET: &str = include_str!("../static/console.css");
const LOGIN_CSRF_COOKIE: &str = "zhima_console_csrf";

/// Who is logged in, as the header shows them.
struct UserView {
    nickname: String,
    role: &'static str,
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage<'a> {
    t: &'static Texts,
    lang: Lang,
    langs: [Lang; 2],
    back: &'a str,
    user: Option<UserView>,
    csrf: String,
    message: Option<&'static str>,
    nickname: &'a str,
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct MessagePage<'a> {
    t: &'static Texts,
    lang: Lang,
    langs: [Lang; 2],
    back: &'a str,
    user: Option<UserView>,
    csrf: String,
    heading: &'static str,
    message: &'static str,
    link: &'static str,
    link_text: &'static str,
}

/// An access event as a row of a table.
fn event_row(e: &zhima_domain::access::AccessEvent, tz: chrono_tz::Tz) -> EventRow {
    EventRow {
        at: format_time(e.event.at, tz),
        member: e
            .event
            .member
            .map_or(String::new(), |m| format!("#{}", m.0)),
        method: e.event.method.as_str(),
        outcome: e.event.outcome.as_str(),
        reason: e.event.reason.clone(),
    }
}

struct EventRow {
    at: String,
    member: String,
    method: &'static str,
    outcome: &'static str,
    reason: String,
}

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct DashboardPage<'a> {
    t: &'static Texts,
    lang: Lang,
    langs: [Lang; 2],
    back: &'a str,
    user: Option<UserView>,
    csrf: String,
    door_class: &'static str,
    door_text: &'static str,
    granted_today: String,
    refused_today: String,
    members_total: i64,
    recent: Vec<EventRow>,
}

/// A page with the console's headers.
fn page(status: StatusCode, body: Result<String, askama::Error>) -> HttpResponse {
    match body {
        Ok(html) => with_page_headers(HttpResponseBuilder::new(status))
            .content_type("text/html; charset=utf-8")
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "a console template failed");
            with_page_headers(HttpResponse::InternalServerError())
                .content_type("text/plain; charset=utf-8")
                .body("500")
        }
    }
}

fn with_page_headers(mut builder: HttpResponseBuilder) -> HttpResponseBuilder {
    builder
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
    builder
}

fn see_other(to: &str) -> HttpResponseBuilder {
    let mut builder = with_page_headers(HttpResponse::SeeOther());
    builder.insert_header((header::LOCATION, to));
    builder
}

/// The session cookie's name: `__Host-` prefixed under an https issuer.
fn session_cookie_name(state: &AppState) -> &'static str {
    if state.oauth.https() {
        "__Host-zhima_session"
    } else {
        "zhima_session"
    }
}

fn set_cookie(
    state: &AppState,
    builder: &mut HttpResponseBuilder,
    name: &str,
    value: &str,
    max_age: Option<i64>,
) {
    let secure = if state.oauth.https() { "; Secure" } else { "" };
    let age = max_age.map_or(String::new(), |s| format!("; Max-Age={s}"));
    let text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict{secure}{age}");
    if let Ok(v) = header::HeaderValue::from_str(&text) {
        builder.append_header((header::SET_COOKIE, v));
    }
}

/// The live session of the request, with its token, if any.
async fn session(state: &web::Data<AppState>, req: &HttpRequest) -> Option<(Session, String)> {
    let token = cookie(req, session_cookie_name(state))?;
    let (st, t, now) = (state.clone(), token.clone(), state.clock.now());
    match web::block(move || st.sessions.check(&t, now)).await {
        Ok(Ok(Some(session))) => Some((session, token)),
        Ok(Ok(None)) => None,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "console: a session could not be checked");
            None
        }
        Err(_) => None,
    }
}

fn user_view(session: &Session, t: &'static Texts) -> UserView {
    UserView {
        nickname: session.member.nickname.as_str().to_owned(),
        role: match session.role {
            Role::Admin => t.admin,
            Role::Staff => t.staff,
            Role::Member => t.member,
        },
    }
}

/// A page that says one thing, with a link onwards.
#[allow(clippy::too_many_arguments)]
fn message_page(
    status: StatusCode,
    lang: Lang,
    session: Option<(&Session, &str)>,
    heading: &'static str,
    message: &'static str,
    link: &'static str,
    link_text: &'static str,
) -> HttpResponse {
    let t = lang.texts();
    page(
        status,
        MessagePage {
            t,
            lang,
            langs: Lang::ALL,
            back: link,
            user: session.map(|(s, _)| user_view(s, t)),
            csrf: session
                .map(|(_, token)| token)
                .filter(|token| !token.is_empty())
                .map(csrf_token)
                .unwrap_or_default(),
            heading,
            message,
            link,
            link_text,
        }
        .render(),
    )
}

/// The answer for a page that needs staff: to the login page without a
/// session, a refusal (403) for a member who is not staff.
fn not_allowed(lang: Lang, session: Option<&Session>, token: Option<&str>) -> HttpResponse {
    let t = lang.texts();
    match session {
        None => see_other("/console/login").finish(),
        Some(s) => message_page(
            StatusCode::FORBIDDEN,
            lang,
            Some((s, token.unwrap_or_default())),
            t.console,
            t.not_staff,
            "/console/login",
            t.log_in,
        ),
    }
}

async fn login_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if let Some((s, _)) = session(&state, &req).await {
        if s.role >= Role::Staff {
            return see_other("/console").finish();
        }
    }
    render_login(&state, Lang::of(&req), StatusCode::OK, None, "")
}

fn render_login(
    state: &AppState,
    lang: Lang,
    status: StatusCode,
    message: Option<&'static str>,
    nickname: &str,
) -> HttpResponse {
    let Some(csrf) = state.oauth.new_csrf() else {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            Ok(lang.texts().login_busy.to_owned()),
        );
    };
    let body = LoginPage {
        t: lang.texts(),
        lang,
        langs: Lang::ALL,
        back: "/console/login",
        user: None,
        csrf: csrf.clone(),
        message,
        nickname,
    }
    .render();
    let mut response = page(status, body);
    let secure = if state.oauth.https() { "; Secure" } else { "" };
    if let Ok(v) = header::HeaderValue::from_str(&format!(
        "{LOGIN_CSRF_COOKIE}={csrf}; Path=/console; HttpOnly; SameSite=Strict{secure}"
    )) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// The login form.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct LoginForm {
    nickname: String,
    password: String,
    csrf: String,
}

async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Result<web::Form<LoginForm>, actix_web::Error>,
) -> HttpResponse {
    let lang = Lang::of(&req);
    let t = lang.texts();
    let form = match form {
        Ok(f) => f.into_inner(),
        Err(_) => {
            return render_login(
                &state,
                lang,
                StatusCode::BAD_REQUEST,
                Some(t.form_expired),
                "",
            )
        }
    };
    let planted = cookie(&req, LOGIN_CSRF_COOKIE);
    let csrf_ok =
        planted.as_deref() == Some(form.csrf.as_str()) && state.oauth.csrf_is_ours(&form.csrf);
    if !csrf_ok {
        return render_login(
            &state,
            lang,
            StatusCode::FORBIDDEN,
            Some(t.form_expired),
            "",
        );
    }
    if form.nickname.len() > 64 || form.password.len() > 200 {
        return render_login(&state, lang, StatusCode::OK, Some(t.login_refused), "");
    }
    let who = state.peer_ip(&req);
    let (st, now) = (state.clone(), state.clock.now());
    let (nickname, password) = (form.nickname.clone(), form.password);
    let opened = web::block(move || {
        let (token, _) = st
            .sessions
            .log_in(&nickname, &password, &who, Instant::now(), now)?;
        let session = st.sessions.check(&token, now).map_err(SessionError::from)?;
        Ok::<_, SessionError>((token, session))
    })
    .await;
    let (token, session) = match opened {
        Ok(Ok((token, Some(session)))) => (token, session),
        Ok(Err(SessionError::Login(zhima_app::login::LoginError::Refused))) | Ok(Ok((_, None))) => {
            return render_login(
                &state,
                lang,
                StatusCode::OK,
                Some(t.login_refused),
                &form.nickname,
            )
        }
        Ok(Err(SessionError::Login(
            zhima_app::login::LoginError::TooMany(_) | zhima_app::login::LoginError::Busy,
        ))) => {
            return render_login(
                &state,
                lang,
                StatusCode::TOO_MANY_REQUESTS,
                Some(t.login_busy),
                &form.nickname,
            )
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "console login failed");
            return render_login(
                &state,
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                Some(t.login_busy),
                &form.nickname,
            );
        }
        Err(_) => {
            return render_login(
                &state,
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                Some(t.login_busy),
                &form.nickname,
            )
        }
    };
    if session.role < Role::Staff {
        // the member pages come later; a member's session opens nothing here
        let st = state.clone();
        let _ = web::block(move || st.sessions.log_out(&token)).await;
        return not_allowed(lang, Some(&session), None);
    }
    let mut response = see_other("/console");
    set_cookie(
        &state,
        &mut response,
        session_cookie_name(&state),
        &token,
        None,
    );
    response.finish()
}

/// A form that carries only its CSRF token.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Result<web::Form<CsrfForm>, actix_web::Error>,
) -> HttpResponse {
    let lang = Lang::of(&req);
    let Some(token) = cookie(&req, session_cookie_name(&state)) else {
        return see_other("/console/login").finish();
    };
    let given = form.map(|f| f.into_inner().csrf).unwrap_or_default();
    if !csrf_matches(&token, &given) {
        let t = lang.texts();
        return message_page(
            StatusCode::FORBIDDEN,
            lang,
            None,
            t.console,
            t.form_expired,
            "/console",
            t.dashboard,
        );
    }
    let st = state.clone();
    if let Ok(Err(e)) = web::block(move || st.sessions.log_out(&token)).await {
        tracing::warn!(error = %e, "console logout failed");
    }
    let mut response = see_other("/console/login");
    set_cookie(
        &state,
        &mut response,
        session_cookie_name(&state),
        "",
        Some(0),
    );
    response.finish()
}

async fn dashboard(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let lang = Lang::of(&req);
    let t = lang.texts();
    let found = session(&state, &req).await;
    let (session, token) = match found {
        Some((s, token)) if s.role >= Role::Staff => (s, token),
        other => {
            return not_allowed(
                lang,
                other.as_ref().map(|(s, _)| s),
                other.as_ref().map(|(_, t)| t.as_str()),
            )
        }
    };
    let now = state.clock.now();
    let midnight = local_midnight(now, state.tz);
    let st = state.clone();
    let data = web::block(move || {
        let today = st.entrance.events(EventQuery {
            since: Some(midnight),
            before: None,
            limit: zhima_storage::access::PAGE_MAX,
            ..Default::default()
        })?;
        let members = st.members.count()?;
        Ok::<_, zhima_app::AppError>((today, members))
    })
    .await;
    let (today, members_total) = match data {
        Ok(Ok(d)) => d,
        _ => return page(StatusCode::SERVICE_UNAVAILABLE, Ok(t.login_busy.to_owned())),
    };
    let full = today.len() >= zhima_storage::access::PAGE_MAX as usize;
    let count = |o: Outcome| {
        let n = today.iter().filter(|e| e.event.outcome == o).count();
        if full {
            format!("{n}+")
        } else {
            n.to_string()
        }
    };
    let (door_class, door_text) = door_tile(&state, t);
    let recent = today
        .iter()
        .take(20)
        .map(|e| EventRow {
            at: format_time(e.event.at, state.tz),
            member: e
                .event
                .member
                .map_or(String::new(), |m| format!("#{}", m.0)),
            method: e.event.method.as_str(),
            outcome: e.event.outcome.as_str(),
            reason: e.event.reason.clone(),
        })
        .collect();
    page(
        StatusCode::OK,
        DashboardPage {
            t,
            lang,
            langs: Lang::ALL,
            back: "/console",
            user: Some(user_view(&session, t)),
            csrf: csrf_token(&token),
            door_class,
            door_text,
            granted_today: count(Outcome::Granted),
            refused_today: count(Outcome::Refused),
            members_total,
            recent,
        }
        .render(),
    )
}

struct MemberRow {
    id: i64,
    nickname: String,
    status: &'static str,
    status_text: &'static str,
    expires: String,
    openid: String,
}

#[derive(Template)]
#[template(path = "console/members.html")]
struct MembersPage<'a> {
    t: &'static Texts,
    lang: Lang,
    langs: [Lang; 2],
    back: &'a str,
    user: Option<UserView>,
    csrf: String,
    query: String,
    rows: Vec<MemberRow>,
}

struct PaymentRow {
    paid_at: String,
    plan: String,
    amount: String,
    pay_index: String,
}

#[derive(Template)]
#[template(path = "console/member.html")]
struct MemberPage<'a> {
    t: &'static Texts,
    lang: Lang,
    langs: [Lang; 2],
    back: &'a str,
    user: Option<UserView>,
    csrf: String,
    id: i64,
    nickname: String,
    openid: String,
    status: &'static str,
    status_text: &'static str,
    expires: String,
    entries_left: String,
    last_entry: String,
    tags: String,
    rfid: String,
    email: String,
    tokens: String,
    payments: Vec<PaymentRow>,
    notice: Option<&'static str>,
    pay_index: String,
    plans: Vec<(String, String)>,
    now_local: String,
}

fn status_text(status: zhima_domain::membership::MemberStatus, t: &'static Texts) -> &'static str {
    use zhima_domain::membership::MemberStatus;
    match status {
        MemberStatus::Ok => t.status_ok,
        MemberStatus::NotOk => t.status_not_ok,
        MemberStatus::Invalid => t.status_invalid,
    }
}

/// The staff session of a console page, or the answer for one without.
async fn staff(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    lang: Lang,
) -> Result<(Session, String), HttpResponse> {
    match session(state, req).await {
        Some((s, token)) if s.role >= Role::Staff => Ok((s, token)),
        other => Err(not_allowed(
            lang,
            other.as_ref().map(|(s, _)| s),
            other.as_ref().map(|(_, t)| t.as_str()),
        )),
    }
}

/// The staff session of a form post and the form, when the form carries
/// that session's CSRF token; else the answer (the login page, the refusal
/// for a member who is not staff, or "this form has expired" with a link
/// back to `back`, a path and its words). Nothing else happens for a
/// refused form.
async fn staff_form<F>(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    lang: Lang,
    form: Result<web::Form<F>, actix_web::Error>,
    csrf: fn(&F) -> &String,
    back: (&'static str, crate::error::Words),
) -> Result<(Session, String, F), HttpResponse> {
    let (session, token) = staff(state, req, lang).await?;
    match form.map(web::Form::into_inner) {
        Ok(form) if csrf_matches(&token, csrf(&form)) => Ok((session, token, form)),
        _ => {
            let t = lang.texts();
            Err(message_page(
                StatusCode::FORBIDDEN,
                lang,
                Some((&session, &token)),
                t.console,
                t.form_expired,
                back.0,
                back.1(t),
            ))
        }
    }
}

/// `GET /console/members?q=`: the search.
async fn members(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let lang = Lang::of(&req);
    let t = lang.texts();
    let (session, token) = match staff(&state, &req, lang).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let query: String =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get("q").cloned())
            .unwrap_or_default()
            .chars()
            .take(64)
            .collect();
    let (st, q, now) = (state.clone(), query.clone(), state.clock.now());
    let found = match web::block(move || st.members.search(&q, 50, now)).await {
        Ok(Ok(found)) => found,
        _ => {
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                Ok(t.server_busy.to_owned()),
            )
        }
    };
    let rows = found
        .iter()
        .map(|v| MemberRow {
            id: v.record.member.id.0,
            nickname: v.record.member.nickname.as_str().to_owned(),
            status: v.validity.status.wire_name(),
            status_text: status_text(v.validity.status, t),
            expires: v
                .validity
                .valid_until
                .map_or_else(|| t.dash.to_owned(), |u| format_time(u, state.tz)),
            openid: v.record.member.openid.as_str().to_owned(),
        })
        .collect();
    page(
        StatusCode::OK,
        MembersPage {
            t,
            lang,
            langs: Lang::ALL,
            back: "/console/members",
            user: Some(user_view(&session, t)),
            csrf: csrf_token(&token),
            query,
            rows,
        }
        .render(),
    )
}

/// `GET /console/members/{id}`: one member, read-only for now.
async fn member(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let lang = Lang::of(&req);
    let t = lang.texts();
    let (session, token) = match staff(&state, &req, lang).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let id = req
        .match_info()
        .get("id")
        .and_then(|i| i.parse::<i64>().ok())
        .filter(|i| *i > 0);
    let found = match id {
        None => None,
        Some(id) => {
            let lookup = zhima_app::members::Lookup::Id(zhima_domain::ids::MemberId(id));
            match state.members.fetch(lookup, state.clock.now()).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(error = %e, "console: a member could not be read");
                    return page(
                        StatusCode::SERVICE_UNAVAILABLE,
                        Ok(t.server_busy.to_owned()),
                    );
                }
            }
        }
    };
    let Some(view) = found else {
        return message_page(
            StatusCode::NOT_FOUND,
            lang,
            Some((&session, &token)),
            t.members,
            t.not_found,
            "/console/members",
            t.members,
        );
    };
    let (m, v) = (&view.record.member, &view.validity);
    let time_or_dash = |at: Option<DateTime<Utc>>| {
        at.map_or_else(|| t.dash.to_owned(), |u| format_time(u, state.tz))
    };
    let mut payments: Vec<PaymentRow> = view
        .record
        .payments
        .iter()
        .map(|p| PaymentRow {
            paid_at: format_time(p.paid_at, state.tz),
            plan: p.pay_type.clone(),
            amount: p.amount.to_string(),
            pay_index: p.pay_index.as_str().to_owned(),
        })
        .collect();
    payments.reverse();
    page(
        StatusCode::OK,
        MemberPage {
            t,
            lang,
            langs: Lang::ALL,
            back: "/console/members",
            user: Some(user_view(&session, t)),
            csrf: csrf_token(&token),
            id: m.id.0,
            nickname: m.nickname.as_str().to_owned(),
            openid: m.openid.as_str().to_owned(),
            status: v.status.wire_name(),
            status_text: status_text(v.status, t),
            expires: time_or_dash(v.valid_until),
            entries_left: v
                .entry_days_left
                .map_or_else(|| t.dash.to_owned(), |n| n.to_string()),
            last_entry: time_or_dash(view.record.last_entry),
            tags: m.tags.names().join(", "),
            rfid: m
                .rfid
                .as_ref()
                .map_or_else(|| t.dash.to_owned(), |r| r.as_str().to_owned()),
            email: if m.profile.email.is_empty() {
                t.dash.to_owned()
            } else {
                m.profile.email.clone()
            },
            tokens: format!(
                "{} / {}",
                view.record.balance.paid.as_f64(),
                view.record.balance.free.as_f64()
            ),
            payments,
            notice: match query_value(&req, "paid").as_deref() {
                Some("new") => Some(t.payment_recorded),
                Some("again") => Some(t.payment_already),
                _ => None,
            },
            // made with the form: sending the same form again is a replay
            pay_index: zhima_storage::credentials::random_hex::<8>()
                .map(|h| format!("desk-{h}"))
                .unwrap_or_default(),
            plans: state
                .plans
                .iter()
                .map(|p| (p.name().to_owned(), p.price.to_string()))
                .collect(),
            now_local: {
                let s = format_local_timestamp(state.clock.now(), state.tz);
                format!(
                    "{}-{}-{}T{}:{}",
                    &s[0..4],
                    &s[4..6],
                    &s[6..8],
                    &s[8..10],
                    &s[10..12]
                )
            },
        }
        .render(),
    )
}

#[derive(Template)]
#[template(path = "console/door.html")]
struct DoorPage<'a> {
    t: &'static Texts,
    lang: Lang,
    langs: [Lang; 2],
    back: &'a str,
    user: Option<UserView>,
    csrf: String,
    door_class: &'static str,
    door_text: &'static str,
    max_secs: u32,
    notice: Option<&'static str>,
    problem: Option<&'static str>,
}

/// The door's state as a tile: its class and words.
fn door_tile(state: &AppState, t: &'static Texts) -> (&'static str, &'static str) {
    let health = state.door.controller.health();
    if health.stopped || health.lock_failing {
        ("bad", t.door_fault)
    } else if state.door.controller.is_unlocked() {
        ("warn", t.door_unlocked)
    } else {
        ("ok", t.door_locked)
    }
}

fn render_door(
    state: &AppState,
    lang: Lang,
    session: &Session,
    token: &str,
    status: StatusCode,
    notice: Option<&'static str>,
    problem: Option<&'static str>,
) -> HttpResponse {
    let t = lang.texts();
    let (door_class, door_text) = door_tile(state, t);
    page(
        status,
        DoorPage {
            t,
            lang,
            langs: Lang::ALL,
            back: "/console/door",
            user: Some(user_view(session, t)),
            csrf: csrf_token(token),
            door_class,
            door_text,
            max_secs: state.door.max_unlock_secs,
            notice,
            problem,
        }
        .render(),
    )
}

/// `GET /console/door`: the door's state and the unlock form.
async fn door_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let lang = Lang::of(&req);
    let (session, token) = match staff(&state, &req, lang).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let notice =
        (query_value(&req, "opened").as_deref() == Some("1")).then_some(lang.texts().door_opened);
    render_door(&state, lang, &session, &token, StatusCode::OK, notice, None)
}

/// The unlock form.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct UnlockForm {
    csrf: String,
    seconds: String,
    reason: String,
}

/// `POST /console/door`: a staff member unlocks the door with a reason,
/// written to the access log with their name before the door moves.
async fn unlock(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Result<web::Form<UnlockForm>, actix_web::Error>,
) -> HttpResponse {
    let lang = Lang::of(&req);
    let t = lang.texts();
    let (session, token, form) = match staff_form(
        &state,
        &req,
        lang,
        form,
        |f: &UnlockForm| &f.csrf,
        ("/console/door", |t| t.door),
    )
    .await
    {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let seconds = form
        .seconds
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|s| (1..=u64::from(state.door.max_unlock_secs)).contains(s));
    let Some(seconds) = seconds else {
        return render_door(
            &state,
            lang,
            &session,
            &token,
            StatusCode::BAD_REQUEST,
            None,
            Some(t.unlock_refused),
        );
    };
    let opened = state
        .entrance
        .unlock_by_staff(
            std::time::Duration::from_secs(seconds),
            &session.member,
            &form.reason,
            state.clock.now(),
        )
        .await;
    match opened {
        Ok(_) => see_other("/console/door?opened=1").finish(),
        Err(zhima_app::AppError::Invalid { .. } | zhima_app::AppError::BadSeconds(_)) => {
            render_door(
                &state,
                lang,
                &session,
                &token,
                StatusCode::BAD_REQUEST,
                None,
                Some(t.unlock_refused),
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "console: the door could not be unlocked");
            render_door(
                &state,
                lang,
                &session,
                &token,
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                Some(t.door_fault),
            )
        }
    }
}

#[derive(Template)]
#[template(path = "console/log.html")]
struct LogPage<'a> {
    t: &'static Texts,
    lang: Lang,
    langs: [Lang; 2],
    back: &'a str,
    user: Option<UserView>,
    csrf: String,
    outcomes: [&'static str; 4],
    outcome: String,
    member: String,
    rows: Vec<EventRow>,
    next: Option<String>,
    csv_link: String,
}

const LOG_PAGE: u32 = 50;

/// The log's filters from the query string: outcome, member number, cursor.
fn log_query(req: &HttpRequest, limit: u32) -> (EventQuery, String, String) {
    let outcome_text = query_value(req, "outcome").unwrap_or_default();
    let member_text: String = query_value(req, "member")
        .unwrap_or_default()
        .trim()
        .chars()
        .take(18)
        .collect();
    let query = EventQuery {
        outcome: Outcome::parse(&outcome_text).ok(),
        member: member_text
            .parse::<i64>()
            .ok()
            .filter(|m| *m > 0)
            .map(zhima_domain::ids::MemberId),
        before: query_value(req, "before")
            .and_then(|b| b.parse::<i64>().ok())
            .filter(|b| *b > 0),
        limit,
        ..EventQuery::default()
    };
    let outcome = query
        .outcome
        .map_or(String::new(), |o| o.as_str().to_owned());
    (query, outcome, member_text)
}

/// `GET /console/log`: the access log, newest first, 50 a page, filtered.
async fn access_log(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let lang = Lang::of(&req);
    let t = lang.texts();
    let (session, token) = match staff(&state, &req, lang).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let (query, outcome, member) = log_query(&req, LOG_PAGE);
    let st = state.clone();
    let events = match web::block(move || st.entrance.events(query)).await {
        Ok(Ok(events)) => events,
        _ => {
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                Ok(t.server_busy.to_owned()),
            )
        }
    };
    let filters = format!("outcome={outcome}&member={member}");
    let next = (events.len() == LOG_PAGE as usize)
        .then(|| {
            events
                .last()
                .map(|e| format!("/console/log?{filters}&before={}", e.id))
        })
        .flatten();
    let rows = events.iter().map(|e| event_row(e, state.tz)).collect();
    page(
        StatusCode::OK,
        LogPage {
            t,
            lang,
            langs: Lang::ALL,
            back: "/console/log",
            user: Some(user_view(&session, t)),
            csrf: csrf_token(&token),
            outcomes: ["granted", "refused", "event", "fault"],
            outcome,
            member,
            rows,
            next,
            csv_link: format!("/console/log.csv?{filters}"),
        }
        .render(),
    )
}

/// A CSV cell: quoted, and never read as a formula by a spreadsheet (a
/// leading `=`, `+`, `-`, `@`, tab or carriage return gets a `'`).
fn csv_cell(text: &str) -> String {
    let guarded = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    format!("\"{}\"", guarded.replace('"', "\"\""))
}

/// `GET /console/log.csv`: the same filters, up to 500 events, as CSV for
/// a spreadsheet (UTF-8 with a byte-order mark, times in the space's zone).
async fn access_log_csv(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let lang = Lang::of(&req);
    if let Err(answer) = staff(&state, &req, lang).await {
        return answer;
    }
    let (query, _, _) = log_query(&req, zhima_storage::access::PAGE_MAX);
    let st = state.clone();
    let events = match web::block(move || st.entrance.events(query)).await {
        Ok(Ok(events)) => events,
        _ => {
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                Ok(lang.texts().server_busy.to_owned()),
            )
        }
    };
    let mut csv = String::from("\u{feff}id,time,door,method,outcome,reason,member,detail\r\n");
    for e in &events {
        let cells = [
            e.id.to_string(),
            format_time(e.event.at, state.tz),
            e.event.door.clone(),
            e.event.method.as_str().to_owned(),
            e.event.outcome.as_str().to_owned(),
            e.event.reason.clone(),
            e.event.member.map_or(String::new(), |m| m.0.to_string()),
            e.event.detail.clone(),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        csv.push_str(&line.join(","));
        csv.push_str("\r\n");
    }
    with_page_headers(HttpResponse::Ok())
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"access-log.csv\"",
        ))
        .body(csv)
}

/// One value of the query string.
fn query_value(req: &HttpRequest, name: &str) -> Option<String> {
    web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get(name).cloned())
}

/// The desk's payment form.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct PaymentForm {
    csrf: String,
    pay_index: String,
    plan: String,
    amount: String,
    paid_at: String,
}

/// `POST /console/members/{id}/payments`: a payment taken at the desk,
/// recorded once per form (its payIndex is made with the form).
async fn record_payment(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Result<web::Form<PaymentForm>, actix_web::Error>,
) -> HttpResponse {
    let lang = Lang::of(&req);
    let t = lang.texts();
    let (session, token, form) = match staff_form(
        &state,
        &req,
        lang,
        form,
        |f: &PaymentForm| &f.csrf,
        ("/console/members", |t| t.members),
    )
    .await
    {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let Some(id) = req
        .match_info()
        .get("id")
        .and_then(|i| i.parse::<i64>().ok())
        .filter(|i| *i > 0)
    else {
        return message_page(
            StatusCode::NOT_FOUND,
            lang,
            Some((&session, &token)),
            t.members,
            t.not_found,
            "/console/members",
            t.members,
        );
    };
    let back = format!("/console/members/{id}");
    let digits: String = form.paid_at.chars().filter(char::is_ascii_digit).collect();
    let payment = (|| {
        let plan = state.plans.get(&form.plan).ok()?;
        Some(zhima_domain::member::NewPayment {
            pay_index: zhima_domain::ids::PayIndex::parse(&form.pay_index).ok()?,
            amount: zhima_domain::money::Fen::parse_yuan(form.amount.trim()).ok()?,
            pay_type: plan.name().to_owned(),
            paid_at: zhima_domain::time::parse_paid_time(&digits, state.tz).ok()?,
            until_days: None,
        })
    })();
    let Some(payment) = payment.filter(|p| p.pay_index.as_str().starts_with("desk-")) else {
        return message_page(
            StatusCode::BAD_REQUEST,
            lang,
            Some((&session, &token)),
            t.record_payment,
            t.payment_invalid,
            "/console/members",
            t.members,
        );
    };
    let (st, now) = (state.clone(), state.clock.now());
    let recorded = web::block(move || {
        let found = st.members.read(
            zhima_storage::MemberKey::Id(zhima_domain::ids::MemberId(id)),
            now,
        )?;
        match found {
            Some(view) => st
                .members
                .add_payment(&view.record.member.openid, &payment, now)
                .map(Some),
            None => Ok(None),
        }
    })
    .await;
    match recorded {
        Ok(Ok(Some(r))) => {
            let to = format!("{back}?paid={}", if r.duplicate { "again" } else { "new" });
            see_other(&to).finish()
        }
        Ok(Ok(None)) => message_page(
            StatusCode::NOT_FOUND,
            lang,
            Some((&session, &token)),
            t.members,
            t.not_found,
            "/console/members",
            t.members,
        ),
        Ok(Err(zhima_app::AppError::Storage(zhima_storage::StorageError::PaymentConflict(_)))) => {
            message_page(
                StatusCode::CONFLICT,
                lang,
                Some((&session, &token)),
                t.record_payment,
                t.payment_invalid,
                "/console/members",
                t.members,
            )
        }
        other => {
            if let Ok(Err(e)) = other {
                tracing::warn!(error = %e, "console: a desk payment failed");
            }
            message_page(
                StatusCode::SERVICE_UNAVAILABLE,
                lang,
                Some((&session, &token)),
                t.record_payment,
                t.server_busy,
                "/console/members",
                t.members,
            )
        }
    }
}

/// `HH:MM` today, else `YYYY-MM-DD HH:MM`, in the space's zone.
fn format_time(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    let s = format_local_timestamp(t, tz);
    format!(
        "{}-{}-{} {}:{}",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[8..10],
        &s[10..12]
    )
}

/// The start of `now`'s local day in `tz` (24 hours back where the zone
/// skips midnight).
fn local_midnight(now: DateTime<Utc>, tz: chrono_tz::Tz) -> DateTime<Utc> {
    use chrono::TimeZone as _;
    let date = zhima_domain::time::local_date(now, tz);
    date.and_hms_opt(0, 0, 0)
        .and_then(|midnight| tz.from_local_datetime(&midnight).earliest())
        .map_or(now - chrono::Duration::hours(24), |t| t.with_timezone(&Utc))
}

async fn switch_language(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let lang = req
        .match_info()
        .get("tag")
        .and_then(Lang::from_tag)
        .unwrap_or(Lang::Zh);
    let back =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get("back").cloned())
            .filter(|b| local_path(b))
            .unwrap_or_else(|| "/console".to_owned());
    let mut response = see_other(&back);
    set_cookie(
        &state,
        &mut response,
        LANG_COOKIE,
        lang.tag(),
        Some(365 * 24 * 3600),
    );
    response.finish()
}

/// A path on this server (`/console`), never another site (`//evil`, `/\evil`).
fn local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && path.len() <= 200
        && path.bytes().all(|b| b.is_ascii_graphic())
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/css; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(STYLESHEET)
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_are_followed_back() {
        assert!(local_path("/console"));
        assert!(local_path("/console/login"));
        assert!(!local_path("//evil.example/"));
        assert!(!local_path("/\\evil.example"));
        assert!(!local_path("https://evil.example/"));
        assert!(!local_path("/a b"));
        assert!(!local_path(""));
    }
}
