//! The staff console (`/console`) and the member page (`/me`):
//! server-rendered from askama templates compiled into the binary
//! (`templates/console/`), in Chinese and English ([`crate::i18n`]), with
//! no script at all. Every action calls the same use case as the JSON API
//! or the CLI; changes name their actor in the audit log.
//!
//! Security: a session cookie (`HttpOnly`, `SameSite=Strict`; `Secure` and
//! `__Host-` named when the issuer is https) naming a session stored in the
//! database; the role is checked on the server on every request ([`gate`]);
//! every form carries a CSRF token (the login form the signed cookie token
//! of the OAuth pages, a session's forms the token derived from the
//! session, checked by [`gate_form`]); every page has a
//! Content-Security-Policy without script and `frame-ancestors 'none'`.

mod admin;
mod desk;
mod door;
mod me;

use std::time::Instant;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use askama::Template;
use chrono::{DateTime, Utc};
use zhima_app::audit::Actor;
use zhima_app::sessions::{csrf_matches, csrf_token, Role, Session, SessionError};

use crate::body::{read_limited, BodyError};
use crate::i18n::{Lang, Texts, LANG_COOKIE};
use crate::request::cookie;
use crate::AppState;

/// Routes of the console and the member page.
pub fn config(cfg: &mut web::ServiceConfig) {
    desk::config(cfg);
    door::config(cfg);
    admin::config(cfg);
    me::config(cfg);
    cfg.service(
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

const STYLESHEET: &str = include_str!("../../static/console.css");
const LOGIN_CSRF_COOKIE: &str = "zhima_console_csrf";

/// Who is logged in, as the header shows them.
struct UserView {
    nickname: String,
    role: &'static str,
    /// Whether the console's navigation shows (staff and admins).
    staff: bool,
    /// Whether the admin pages show.
    admin: bool,
}

/// What every page's frame (`base.html`) shows: the words, the language
/// switch, who is logged in and the CSRF token of their forms.
struct Frame {
    t: &'static Texts,
    lang: Lang,
    langs: [Lang; 2],
    /// Where the language switch comes back to.
    back: String,
    user: Option<UserView>,
    csrf: String,
}

impl Frame {
    /// The frame of a page nobody is logged in to.
    fn anonymous(lang: Lang, back: &str) -> Frame {
        Frame {
            t: lang.texts(),
            lang,
            langs: Lang::ALL,
            back: back.to_owned(),
            user: None,
            csrf: String::new(),
        }
    }
}

/// A page template: its own fields and the [`Frame`], which the templates
/// read as if they were the page's (`t`, `lang`, `user`, `csrf`…).
macro_rules! page_struct {
    ($path:literal, $name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        #[derive(askama::Template)]
        #[template(path = $path)]
        struct $name {
            frame: $crate::console::Frame,
            $($field: $ty,)*
        }

        impl std::ops::Deref for $name {
            type Target = $crate::console::Frame;
            fn deref(&self) -> &$crate::console::Frame {
                &self.frame
            }
        }
    };
}
pub(crate) use page_struct;

page_struct!("console/login.html", LoginPage {
    message: Option<&'static str>,
    nickname: String,
});

page_struct!("console/message.html", MessagePage {
    heading: &'static str,
    message: &'static str,
    link: String,
    link_text: &'static str,
});

/// A request's language and, behind a gate, its session.
struct Ctx {
    lang: Lang,
    t: &'static Texts,
    session: Session,
    token: String,
}

impl Ctx {
    /// The frame of a page of this session.
    fn frame(&self, back: &str) -> Frame {
        Frame {
            t: self.t,
            lang: self.lang,
            langs: Lang::ALL,
            back: back.to_owned(),
            user: Some(user_view(&self.session, self.t)),
            csrf: csrf_token(&self.token),
        }
    }

    /// Who the audit log names for this session's changes.
    fn actor(&self) -> Actor {
        Actor::member(&self.session.member)
    }

    /// A page that says one thing, with a link onwards.
    fn message(
        &self,
        status: StatusCode,
        heading: &'static str,
        message: &'static str,
        link: &str,
        link_text: &'static str,
    ) -> HttpResponse {
        message_page(status, self.frame(link), heading, message, link, link_text)
    }

    /// "No such member": a page, 404, with a link to the search.
    fn not_found(&self) -> HttpResponse {
        let t = self.t;
        self.message(
            StatusCode::NOT_FOUND,
            t.members,
            t.not_found,
            "/console/members",
            t.members,
        )
    }

    /// "The server is busy" after a use case that failed (logged with
    /// `what`) or could not run.
    fn failed<T, E: std::fmt::Display>(
        &self,
        outcome: Option<Result<T, E>>,
        what: &str,
    ) -> HttpResponse {
        if let Some(Err(e)) = outcome {
            tracing::warn!(error = %e, "console: {what}");
        }
        self.busy()
    }

    /// "The server is busy": a page, 503.
    fn busy(&self) -> HttpResponse {
        let t = self.t;
        self.message(
            StatusCode::SERVICE_UNAVAILABLE,
            t.console,
            t.server_busy,
            "/console",
            t.dashboard,
        )
    }
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

fn see_other(to: &str) -> HttpResponse {
    let mut builder = with_page_headers(HttpResponse::SeeOther());
    builder.insert_header((header::LOCATION, to));
    builder.finish()
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
    response: &mut HttpResponse,
    name: &str,
    value: &str,
    max_age: Option<i64>,
) {
    let secure = if state.oauth.https() { "; Secure" } else { "" };
    let age = max_age.map_or(String::new(), |s| format!("; Max-Age={s}"));
    let text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict{secure}{age}");
    if let Ok(v) = header::HeaderValue::from_str(&text) {
        response.headers_mut().append(header::SET_COOKIE, v);
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
        staff: session.role >= Role::Staff,
        admin: session.role >= Role::Admin,
    }
}

fn message_page(
    status: StatusCode,
    frame: Frame,
    heading: &'static str,
    message: &'static str,
    link: &str,
    link_text: &'static str,
) -> HttpResponse {
    page(
        status,
        MessagePage {
            frame,
            heading,
            message,
            link: link.to_owned(),
            link_text,
        }
        .render(),
    )
}

/// The session of a page that needs `role`: without a session, to the
/// login page; with too small a role, a refusal (403) that changes nothing.
async fn gate(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    role: Role,
) -> Result<Ctx, HttpResponse> {
    let lang = Lang::of(req);
    let t = lang.texts();
    let Some((session, token)) = session(state, req).await else {
        return Err(see_other("/console/login"));
    };
    let ctx = Ctx {
        lang,
        t,
        session,
        token,
    };
    if ctx.session.role >= role {
        return Ok(ctx);
    }
    let (message, link, words) = match (role, ctx.session.role) {
        (Role::Admin, Role::Staff) => (t.not_admin, "/console", t.dashboard),
        _ => (t.not_staff, "/me", t.my_page),
    };
    Err(ctx.message(StatusCode::FORBIDDEN, t.console, message, link, words))
}

/// The session and form of a form post that needs `role`, when the form
/// carries that session's CSRF token; else the answer ([`gate`]'s; 413 for
/// a form over 64 KiB, 408 for one that did not arrive in time; or "this
/// form has expired" with a link back to `back`). Nothing else happens for
/// a refused form.
async fn gate_form<F: CsrfField>(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    role: Role,
    form: Posted<F>,
    back: &str,
) -> Result<(Ctx, F), HttpResponse> {
    let ctx = gate(state, req, role).await?;
    let t = ctx.t;
    match form.0 {
        Ok(form) if csrf_matches(&ctx.token, form.csrf()) => Ok((ctx, form)),
        Err(BodyError::TooLarge) => Err(ctx.message(
            StatusCode::PAYLOAD_TOO_LARGE,
            t.console,
            t.form_too_large,
            back,
            t.go_back,
        )),
        Err(BodyError::TimedOut) => Err(ctx.message(
            StatusCode::REQUEST_TIMEOUT,
            t.console,
            t.form_too_slow,
            back,
            t.go_back,
        )),
        _ => Err(ctx.message(
            StatusCode::FORBIDDEN,
            t.console,
            t.form_expired,
            back,
            t.go_back,
        )),
    }
}

/// A posted form, read as the JSON API reads bodies
/// ([`crate::body::read_limited`]: at most 64 KiB, within the body
/// timeout), then decoded (`application/x-www-form-urlencoded`, every
/// field a string). Extracting never fails: the handler decides the answer.
struct Posted<F>(Result<F, BodyError>);

impl<F: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for Posted<F> {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        let payload = web::Payload::from_request(&req, payload);
        Box::pin(async move {
            let payload = payload.await?;
            let body = match read_limited(&req, payload).await {
                Ok(body) => body,
                Err(e) => return Ok(Posted(Err(e))),
            };
            let fields: serde_json::Map<String, serde_json::Value> =
                url::form_urlencoded::parse(&body)
                    .into_owned()
                    .map(|(k, v)| (k, serde_json::Value::String(v)))
                    .collect();
            Ok(Posted(
                serde_json::from_value(serde_json::Value::Object(fields))
                    .map_err(|_| BodyError::Unreadable),
            ))
        })
    }
}

/// A form posted to `/console/members/{id}/…` that needs `role`: the
/// session, the form, the member's page (where the answer leads back) and
/// the member; else the answer ([`gate_form`]'s, or "no such member").
async fn member_form<F: CsrfField>(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    role: Role,
    form: Posted<F>,
) -> Result<(Ctx, F, String, zhima_domain::member::Member), HttpResponse> {
    let back = format!("/console/members/{}", path_id(req).unwrap_or(0));
    let (ctx, form) = gate_form(state, req, role, form, &back).await?;
    let Some(id) = path_id(req) else {
        return Err(ctx.not_found());
    };
    let lookup = zhima_app::members::Lookup::Id(zhima_domain::ids::MemberId(id));
    match state.members.fetch(lookup, state.clock.now()).await {
        Ok(Some(view)) => Ok((ctx, form, back, view.record.member)),
        Ok(None) => Err(ctx.not_found()),
        Err(e) => Err(ctx.failed(Some(Err::<(), _>(e)), "a member could not be read")),
    }
}

/// A form with a CSRF token.
trait CsrfField: serde::de::DeserializeOwned + 'static {
    /// The token the form carried.
    fn csrf(&self) -> &str;
}

/// Declares form structs (every field a string, defaulting to empty) that
/// carry a `csrf` field.
macro_rules! forms {
    ($($(#[$m:meta])* $name:ident { $($field:ident),* $(,)? })*) => {$(
        $(#[$m])*
        #[derive(Debug, Default, serde::Deserialize)]
        #[serde(default)]
        struct $name {
            csrf: String,
            $($field: String,)*
        }
        impl $crate::console::CsrfField for $name {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        }
    )*};
}
pub(crate) use forms;

forms! {
    /// A form that carries only its CSRF token.
    CsrfForm {}
}

/// Runs a blocking use case; `None` when the runtime refused it.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    web::block(f).await.ok()
}

async fn login_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if let Some((s, _)) = session(&state, &req).await {
        return see_other(if s.role >= Role::Staff {
            "/console"
        } else {
            "/me"
        });
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
    let mut frame = Frame::anonymous(lang, "/console/login");
    frame.csrf = csrf.clone();
    let body = LoginPage {
        frame,
        message,
        nickname: nickname.to_owned(),
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

forms! {
    /// The login form.
    LoginForm { nickname, password }
}

/// `POST /console/login`: staff go to the console, members to their page.
async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Posted<LoginForm>,
) -> HttpResponse {
    let lang = Lang::of(&req);
    let t = lang.texts();
    let (status, problem) = match form.0 {
        Ok(form) => return log_in(state, req, form).await,
        Err(BodyError::TooLarge) => (StatusCode::PAYLOAD_TOO_LARGE, t.form_too_large),
        Err(BodyError::TimedOut) => (StatusCode::REQUEST_TIMEOUT, t.form_too_slow),
        Err(BodyError::Unreadable) => (StatusCode::BAD_REQUEST, t.form_expired),
    };
    render_login(&state, lang, status, Some(problem), "")
}

/// The login form, read: its CSRF token, then the login.
async fn log_in(state: web::Data<AppState>, req: HttpRequest, form: LoginForm) -> HttpResponse {
    let lang = Lang::of(&req);
    let t = lang.texts();
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
    let opened = blocking(move || {
        let (token, _) = st
            .sessions
            .log_in(&nickname, &password, &who, Instant::now(), now)?;
        let session = st.sessions.check(&token, now).map_err(SessionError::from)?;
        Ok::<_, SessionError>((token, session))
    })
    .await;
    use zhima_app::login::LoginError;
    let (status, message) = match opened {
        Some(Ok((token, Some(session)))) => {
            let mut response = see_other(if session.role >= Role::Staff {
                "/console"
            } else {
                "/me"
            });
            set_cookie(
                &state,
                &mut response,
                session_cookie_name(&state),
                &token,
                None,
            );
            return response;
        }
        Some(Err(SessionError::Login(LoginError::Refused))) | Some(Ok((_, None))) => {
            (StatusCode::OK, t.login_refused)
        }
        Some(Err(SessionError::Login(LoginError::TooMany(_) | LoginError::Busy))) => {
            (StatusCode::TOO_MANY_REQUESTS, t.login_busy)
        }
        Some(Err(e)) => {
            tracing::error!(error = %e, "console login failed");
            (StatusCode::SERVICE_UNAVAILABLE, t.login_busy)
        }
        None => (StatusCode::SERVICE_UNAVAILABLE, t.login_busy),
    };
    render_login(&state, lang, status, Some(message), &form.nickname)
}

/// `POST /console/logout`: ends the session everywhere.
async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Posted<CsrfForm>,
) -> HttpResponse {
    let lang = Lang::of(&req);
    let Some(token) = cookie(&req, session_cookie_name(&state)) else {
        return see_other("/console/login");
    };
    let given = form.0.map(|f| f.csrf).unwrap_or_default();
    if !csrf_matches(&token, &given) {
        let t = lang.texts();
        return message_page(
            StatusCode::FORBIDDEN,
            Frame::anonymous(lang, "/console"),
            t.console,
            t.form_expired,
            "/console",
            t.go_back,
        );
    }
    let st = state.clone();
    if let Some(Err(e)) = blocking(move || st.sessions.log_out(&token)).await {
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
    response
}

/// One value of the query string.
fn query_value(req: &HttpRequest, name: &str) -> Option<String> {
    web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get(name).cloned())
}

/// The member number in the path (`{id}`), if it is one.
fn path_id(req: &HttpRequest) -> Option<i64> {
    req.match_info()
        .get("id")
        .and_then(|i| i.parse::<i64>().ok())
        .filter(|i| *i > 0)
}

/// `YYYY-MM-DD HH:MM` in the space's zone.
fn format_time(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    zhima_domain::time::format_local_minute(t, tz)
}

/// `time` or the word for none.
fn time_or_dash(at: Option<DateTime<Utc>>, tz: chrono_tz::Tz, t: &Texts) -> String {
    at.map_or_else(|| t.dash.to_owned(), |u| format_time(u, tz))
}

/// The value of a `datetime-local` input for `t` in the space's zone.
fn datetime_local(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    format_time(t, tz).replace(' ', "T")
}

pub(crate) use zhima_domain::time::local_day_start;

/// The start of `now`'s local day in `tz`.
fn local_midnight(now: DateTime<Utc>, tz: chrono_tz::Tz) -> DateTime<Utc> {
    local_day_start(zhima_domain::time::local_date(now, tz), tz)
}

/// The status words and class of a member's status.
fn status_text(status: zhima_domain::membership::MemberStatus, t: &'static Texts) -> &'static str {
    use zhima_domain::membership::MemberStatus;
    match status {
        MemberStatus::Ok => t.status_ok,
        MemberStatus::NotOk => t.status_not_ok,
        MemberStatus::Invalid => t.status_invalid,
    }
}

/// The member's QR code as a PNG `data:` URI (the CSP allows `data:`
/// images), signed for `from`..`until`; `None` when it cannot be made.
fn qr_data_uri(
    state: &AppState,
    member: zhima_domain::ids::MemberId,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Option<String> {
    use base64::Engine as _;
    let code = zhima_domain::qr::encode(
        &state.qr.signer,
        &zhima_domain::qr::QrPayload {
            key_id: state.qr.signer.key_id(),
            member,
            valid_from: from,
            valid_until: until,
            issued_at: state.clock.now(),
        },
    );
    let png = crate::qr::qr_png(&code)
        .map_err(|e| tracing::error!(error = %e, "QR rendering failed"))
        .ok()?;
    Some(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    ))
}

/// A member's latest access events (ten), newest first; none when they
/// cannot be read (the page shows the rest).
async fn latest_entries(
    state: &web::Data<AppState>,
    member: zhima_domain::ids::MemberId,
) -> Vec<zhima_domain::access::AccessEvent> {
    let st = state.clone();
    blocking(move || {
        st.entrance.events(zhima_storage::access::EventQuery {
            member: Some(member),
            limit: 10,
            ..Default::default()
        })
    })
    .await
    .and_then(Result::ok)
    .unwrap_or_default()
}

/// A member's token balances as the pages show them (`paid / free`).
fn tokens_text(record: &zhima_storage::MemberRecord) -> String {
    format!(
        "{} / {}",
        record.balance.paid.as_f64(),
        record.balance.free.as_f64()
    )
}

/// A member's VIP periods as `(start, end)` in the space's zone.
fn vip_rows(record: &zhima_storage::MemberRecord, tz: chrono_tz::Tz) -> Vec<(String, String)> {
    record
        .vip
        .iter()
        .map(|p| (format_time(p.start, tz), format_time(p.end, tz)))
        .collect()
}

/// A member's current QR code: signed from now until their validity ends,
/// when they are admitted now.
fn member_qr(state: &AppState, view: &zhima_app::members::MemberView) -> Option<String> {
    let now = state.clock.now();
    let until = view.validity.valid_until.filter(|u| *u > now)?;
    zhima_domain::qr::admits(&view.validity).ok()?;
    qr_data_uri(state, view.record.member.id, now, until)
}

async fn switch_language(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let lang = req
        .match_info()
        .get("tag")
        .and_then(Lang::from_tag)
        .unwrap_or(Lang::Zh);
    let back = query_value(&req, "back")
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
    response
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
