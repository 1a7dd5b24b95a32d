//! The member page (`/me`): a member's own status, QR code, payments,
//! entries, tokens and VIP periods, and the form to change their password.

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use zhima_app::members::Lookup;
use zhima_app::sessions::{Role, SessionError};
use zhima_domain::access::AccessMethod;

use super::door::{event_row, EventRow};
use super::{
    blocking, format_time, forms, gate, gate_form, latest_entries, member_qr, page, page_struct,
    query_value, see_other, session_cookie_name, set_cookie, status_text, time_or_dash,
    tokens_text, vip_rows, Ctx, Posted,
};
use crate::AppState;

pub(super) fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::resource("/me").route(web::get().to(me)))
        .service(crate::resource("/me/password").route(web::post().to(change_password)));
}

page_struct!("console/me.html", MePage {
    nickname: String,
    id: i64,
    status: &'static str,
    status_text: &'static str,
    expires: String,
    entries_left: String,
    tokens: String,
    vip: Vec<(String, String)>,
    payments: Vec<(String, String, String)>,
    entries: Vec<EventRow>,
    qr: Option<String>,
    notice: Option<&'static str>,
    problem: Option<&'static str>,
});

/// `GET /me`: the logged-in member's own page.
async fn me(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let ctx = match gate(&state, &req, Role::Member).await {
        Ok(ctx) => ctx,
        Err(answer) => return answer,
    };
    let notice = (query_value(&req, "done").as_deref() == Some("password"))
        .then_some(ctx.t.password_changed);
    render_me(&state, &ctx, StatusCode::OK, notice, None).await
}

async fn render_me(
    state: &web::Data<AppState>,
    ctx: &Ctx,
    status: StatusCode,
    notice: Option<&'static str>,
    problem: Option<&'static str>,
) -> HttpResponse {
    let t = ctx.t;
    let now = state.clock.now();
    let id = ctx.session.member.id;
    let view = match state.members.fetch(Lookup::Id(id), now).await {
        Ok(Some(view)) => view,
        _ => return ctx.busy(),
    };
    let entries = latest_entries(state, id).await;
    let tz = state.tz;
    let v = &view.validity;
    let body = MePage {
        frame: ctx.frame("/me"),
        nickname: view.record.member.nickname.as_str().to_owned(),
        id: id.0,
        status: v.status.wire_name(),
        status_text: status_text(v.status, t),
        expires: time_or_dash(v.valid_until, tz, t),
        entries_left: v
            .entry_days_left
            .map_or_else(|| t.dash.to_owned(), |n| n.to_string()),
        tokens: tokens_text(&view.record),
        vip: vip_rows(&view.record, tz),
        payments: view
            .record
            .payments
            .iter()
            .rev()
            .map(|p| {
                (
                    format_time(p.paid_at, tz),
                    p.pay_type.clone(),
                    p.amount.to_string(),
                )
            })
            .collect(),
        entries: entries
            .iter()
            .filter(|e| e.event.method != AccessMethod::Manual)
            .map(|e| event_row(e, tz))
            .collect(),
        qr: member_qr(state, &view),
        notice,
        problem,
    }
    .render();
    page(status, body)
}

forms! {
    /// The password change.
    ChangeForm { current, new, again }
}

/// `POST /me/password`: the member's current password, then the new one
/// twice. Every other session of theirs ends; this browser stays logged in
/// with a new session.
async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Posted<ChangeForm>,
) -> HttpResponse {
    let (ctx, form) = match gate_form(&state, &req, Role::Member, form, "/me").await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let t = ctx.t;
    if form.new != form.again {
        return render_me(
            &state,
            &ctx,
            StatusCode::BAD_REQUEST,
            None,
            Some(t.passwords_differ),
        )
        .await;
    }
    let Ok(new) = zhima_domain::password::Password::parse(&form.new) else {
        return render_me(
            &state,
            &ctx,
            StatusCode::BAD_REQUEST,
            None,
            Some(t.password_invalid),
        )
        .await;
    };
    if form.current.len() > 200 {
        return render_me(
            &state,
            &ctx,
            StatusCode::BAD_REQUEST,
            None,
            Some(t.current_wrong),
        )
        .await;
    }
    let (st, member, who, now) = (
        state.clone(),
        ctx.session.member.clone(),
        state.peer_ip(&req),
        state.clock.now(),
    );
    let current = form.current;
    let changed = blocking(move || {
        st.sessions
            .change_password(&member, &current, &new, &who, Instant::now(), now)
    })
    .await;
    use zhima_app::login::LoginError;
    match changed {
        Some(Ok(token)) => {
            let mut response = see_other("/me?done=password");
            set_cookie(
                &state,
                &mut response,
                session_cookie_name(&state),
                &token,
                None,
            );
            response
        }
        Some(Err(SessionError::Login(LoginError::Refused))) => {
            render_me(&state, &ctx, StatusCode::OK, None, Some(t.current_wrong)).await
        }
        Some(Err(SessionError::Login(_))) => {
            render_me(
                &state,
                &ctx,
                StatusCode::TOO_MANY_REQUESTS,
                None,
                Some(t.login_busy),
            )
            .await
        }
        other => ctx.failed(other, "a password could not be changed"),
    }
}
