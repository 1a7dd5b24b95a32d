//! The front desk: the dashboard, the member search, a member's page with
//! its forms (profile, desk payment), and visitor passes.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::Utc;
use zhima_app::members::{Lookup, MemberView, Pass, PassKind, SearchFilters};
use zhima_app::sessions::Role;
use zhima_app::AppError;
use zhima_domain::access::Outcome;
use zhima_domain::ids::{MemberId, NickName, Rfid};
use zhima_domain::member::{MemberChange, NewPayment, UpdatableField};
use zhima_domain::membership::{MemberStatus, SpanGrant};
use zhima_domain::money::Fen;
use zhima_domain::tags::Tag;
use zhima_storage::access::EventQuery;
use zhima_storage::StorageError;

use super::door::{door_tile, event_row, EventRow};
use super::{
    blocking, datetime_local, format_time, forms, gate, gate_form, latest_entries, local_day_start,
    local_midnight, member_form, member_qr, page, page_struct, path_id, qr_data_uri, query_value,
    see_other, status_text, time_or_dash, tokens_text, vip_rows, Ctx, Posted,
};
use crate::AppState;

pub(super) fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::resource("/console").route(web::get().to(dashboard)))
        .service(crate::resource("/console/members").route(web::get().to(members)))
        .service(crate::resource("/console/members/{id}").route(web::get().to(member)))
        .service(
            crate::resource("/console/members/{id}/profile").route(web::post().to(edit_profile)),
        )
        .service(
            crate::resource("/console/members/{id}/payments").route(web::post().to(record_payment)),
        )
        .service(crate::resource("/console/members/{id}/send-qr").route(web::post().to(send_qr)))
        .service(
            crate::resource("/console/passes")
                .route(web::get().to(passes))
                .route(web::post().to(issue_pass)),
        );
}

/// A member in a list.
struct MemberRow {
    id: i64,
    nickname: String,
    status: &'static str,
    status_text: &'static str,
    expires: String,
    openid: String,
}

fn member_row(v: &MemberView, ctx: &Ctx, tz: chrono_tz::Tz) -> MemberRow {
    MemberRow {
        id: v.record.member.id.0,
        nickname: v.record.member.nickname.as_str().to_owned(),
        status: v.validity.status.wire_name(),
        status_text: status_text(v.validity.status, ctx.t),
        expires: time_or_dash(v.validity.valid_until, tz, ctx.t),
        openid: v.record.member.openid.as_str().to_owned(),
    }
}

/// A payment in a list.
struct PaymentRow {
    paid_at: String,
    member: String,
    member_id: i64,
    plan: String,
    amount: String,
}

page_struct!("console/dashboard.html", DashboardPage {
    door_class: &'static str,
    door_text: &'static str,
    granted_today: String,
    refused_today: String,
    members_total: i64,
    recent: Vec<EventRow>,
    refused: Vec<EventRow>,
    expiring: Vec<MemberRow>,
    payments: Vec<PaymentRow>,
});

/// How far back the dashboard looks for payers whose membership may end
/// within [`EXPIRING_DAYS`] (a prepayment older than this is not listed).
const PAYERS_SINCE_DAYS: i64 = 400;
/// The dashboard's "ends soon" horizon.
const EXPIRING_DAYS: i64 = 14;
/// The most payers the dashboard looks at.
const PAYERS_MAX: u32 = 2000;

/// `GET /console`: the door, today's entries and refusals, memberships
/// ending within 14 days, the latest payments.
async fn dashboard(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let ctx = match gate(&state, &req, Role::Staff).await {
        Ok(ctx) => ctx,
        Err(answer) => return answer,
    };
    let now = state.clock.now();
    let midnight = local_midnight(now, state.tz);
    let st = state.clone();
    let data = blocking(move || {
        let today = st.entrance.events(EventQuery {
            since: Some(midnight),
            limit: zhima_storage::access::PAGE_MAX,
            ..Default::default()
        })?;
        let members = st.members.count()?;
        let payments = st.members.recent_payments(8)?;
        let payers = st.members.paid_since(
            now - chrono::Duration::days(PAYERS_SINCE_DAYS),
            PAYERS_MAX,
            now,
        )?;
        Ok::<_, AppError>((today, members, payments, payers))
    })
    .await;
    let Some(Ok((today, members_total, payments, payers))) = data else {
        return ctx.busy();
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
    let horizon = now + chrono::Duration::days(EXPIRING_DAYS);
    let mut expiring: Vec<&MemberView> = payers
        .iter()
        .filter(|v| {
            v.validity
                .valid_until
                .is_some_and(|u| u > now && u <= horizon)
        })
        .collect();
    expiring.sort_by_key(|v| v.validity.valid_until);
    let (door_class, door_text) = door_tile(&state, ctx.t);
    let body = DashboardPage {
        frame: ctx.frame("/console"),
        door_class,
        door_text,
        granted_today: count(Outcome::Granted),
        refused_today: count(Outcome::Refused),
        members_total,
        recent: today
            .iter()
            .take(15)
            .map(|e| event_row(e, state.tz))
            .collect(),
        refused: today
            .iter()
            .filter(|e| e.event.outcome == Outcome::Refused)
            .take(10)
            .map(|e| event_row(e, state.tz))
            .collect(),
        expiring: expiring
            .iter()
            .take(50)
            .map(|v| member_row(v, &ctx, state.tz))
            .collect(),
        payments: payments
            .into_iter()
            .map(|(id, nickname, p)| PaymentRow {
                paid_at: format_time(p.paid_at, state.tz),
                member: nickname,
                member_id: id.0,
                plan: p.pay_type,
                amount: p.amount.to_string(),
            })
            .collect(),
    }
    .render();
    page(StatusCode::OK, body)
}

page_struct!("console/members.html", MembersPage {
    query: String,
    status: String,
    tag: String,
    before: String,
    statuses: [(&'static str, &'static str); 3],
    tags: [&'static str; 6],
    rows: Vec<MemberRow>,
    next: Option<String>,
});

const SEARCH_PAGE: usize = 50;

/// `GET /console/members?q=&status=&tag=&before=&after=`: the search
/// (nickname prefix, openid, email, member number, card), filtered by
/// status, tag and "valid until before" a day, fifty a page.
async fn members(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let ctx = match gate(&state, &req, Role::Staff).await {
        Ok(ctx) => ctx,
        Err(answer) => return answer,
    };
    let t = ctx.t;
    let value = |name: &str, max: usize| -> String {
        query_value(&req, name)
            .unwrap_or_default()
            .trim()
            .chars()
            .take(max)
            .collect()
    };
    let query = value("q", 64);
    let status = match value("status", 8).as_str() {
        "OK" => Some(MemberStatus::Ok),
        "NOT_OK" => Some(MemberStatus::NotOk),
        "INVALID" => Some(MemberStatus::Invalid),
        _ => None,
    };
    let tag = Tag::from_name(&value("tag", 16)).ok();
    let before = chrono::NaiveDate::parse_from_str(&value("before", 10), "%Y-%m-%d").ok();
    let filters = SearchFilters {
        status,
        tag,
        expires_before: before.map(|d| local_day_start(d, state.tz)),
    };
    let after = Some(value("after", 256)).filter(|a| !a.is_empty());
    let (st, q, f, now) = (
        state.clone(),
        query.clone(),
        filters.clone(),
        state.clock.now(),
    );
    let found = blocking(move || st.members.find(&q, &f, after, SEARCH_PAGE, now)).await;
    let Some(Ok((found, next))) = found else {
        return ctx.failed(found, "a member search failed");
    };
    let shown = [
        ("q", query.clone()),
        (
            "status",
            status.map_or(String::new(), |s| s.wire_name().to_owned()),
        ),
        ("tag", tag.map_or(String::new(), |t| t.name().to_owned())),
        (
            "before",
            before.map_or(String::new(), |d| d.format("%Y-%m-%d").to_string()),
        ),
    ];
    let next = next.map(|cursor| {
        let mut pairs: Vec<String> = shown
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", super::door::percent(v)))
            .collect();
        pairs.push(format!("after={}", super::door::percent(&cursor)));
        format!("/console/members?{}", pairs.join("&"))
    });
    let rows = found
        .iter()
        .map(|v| member_row(v, &ctx, state.tz))
        .collect();
    let [_, (_, status), (_, tag), (_, before)] = shown;
    page(
        StatusCode::OK,
        MembersPage {
            frame: ctx.frame("/console/members"),
            query,
            status,
            tag,
            before,
            statuses: [
                ("OK", t.status_ok),
                ("NOT_OK", t.status_not_ok),
                ("INVALID", t.status_invalid),
            ],
            tags: ["VISITOR", "MEMBER", "MASTER", "GROUP", "STAFF", "ADMIN"],
            rows,
            next,
        }
        .render(),
    )
}

/// A span of the validity timeline.
struct TimelineRow {
    plan: String,
    pay_index: String,
    grant: String,
    from: String,
    until: String,
    current: bool,
}

struct MemberPayment {
    paid_at: String,
    plan: String,
    amount: String,
    pay_index: String,
}

page_struct!("console/member.html", MemberPage {
    id: i64,
    nickname: String,
    openid: String,
    status: &'static str,
    status_text: &'static str,
    deactivated: bool,
    expires: String,
    entries_left: String,
    last_entry: String,
    tags: String,
    rfid: String,
    email: String,
    city: String,
    memo: String,
    reminders: bool,
    tokens: String,
    vip: Vec<(String, String)>,
    payments: Vec<MemberPayment>,
    entries: Vec<EventRow>,
    timeline: Vec<TimelineRow>,
    notice: Option<&'static str>,
    pay_index: String,
    plans: Vec<(String, String)>,
    now_local: String,
    qr: Option<String>,
    no_password: bool,
    can_email_qr: bool,
});

/// `GET /console/members/{id}`: one member, with the desk's forms (and the
/// admins' forms for admins).
async fn member(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let ctx = match gate(&state, &req, Role::Staff).await {
        Ok(ctx) => ctx,
        Err(answer) => return answer,
    };
    let t = ctx.t;
    let now = state.clock.now();
    let found = match path_id(&req) {
        None => Ok(None),
        Some(id) => state.members.fetch(Lookup::Id(MemberId(id)), now).await,
    };
    let view = match found {
        Ok(Some(view)) => view,
        Ok(None) => return ctx.not_found(),
        Err(e) => {
            tracing::warn!(error = %e, "console: a member could not be read");
            return ctx.busy();
        }
    };
    let id = view.record.member.id;
    let entries = latest_entries(&state, id).await;
    let (m, v) = (&view.record.member, &view.validity);
    let tz = state.tz;
    let mut payments: Vec<MemberPayment> = view
        .record
        .payments
        .iter()
        .map(|p| MemberPayment {
            paid_at: format_time(p.paid_at, tz),
            plan: p.pay_type.clone(),
            amount: p.amount.to_string(),
            pay_index: p.pay_index.as_str().to_owned(),
        })
        .collect();
    payments.reverse();
    let notice = match query_value(&req, "done").as_deref() {
        Some("paid") => Some(t.payment_recorded),
        Some("again") => Some(t.payment_already),
        Some("saved") => Some(t.saved),
        Some("password") => Some(t.password_set),
        Some("qr") => Some(t.qr_emailed),
        _ => None,
    };
    let body = MemberPage {
        frame: ctx.frame(&format!("/console/members/{}", id.0)),
        id: id.0,
        nickname: m.nickname.as_str().to_owned(),
        openid: m.openid.as_str().to_owned(),
        status: v.status.wire_name(),
        status_text: status_text(v.status, t),
        deactivated: m.deactivated_at.is_some(),
        expires: time_or_dash(v.valid_until, tz, t),
        entries_left: v
            .entry_days_left
            .map_or_else(|| t.dash.to_owned(), |n| n.to_string()),
        last_entry: time_or_dash(view.record.last_entry, tz, t),
        tags: m.tags.names().join(","),
        rfid: m
            .rfid
            .as_ref()
            .map_or(String::new(), |r| r.as_str().to_owned()),
        email: m.profile.email.clone(),
        city: m.profile.city.clone(),
        memo: m.profile.memo.clone(),
        reminders: m.profile.reminders,
        tokens: tokens_text(&view.record),
        vip: vip_rows(&view.record, tz),
        payments,
        entries: entries.iter().map(|e| event_row(e, tz)).collect(),
        timeline: state
            .members
            .timeline(&view.record)
            .into_iter()
            .rev()
            .map(|span| TimelineRow {
                current: span.start <= now && now < span.end,
                plan: span.pay_type,
                pay_index: span.pay_index.as_str().to_owned(),
                grant: match span.grant {
                    SpanGrant::Membership => t.grant_membership.to_owned(),
                    SpanGrant::DayPass => t.grant_day_pass.to_owned(),
                    SpanGrant::Entries(days) => format!("{} {days}", t.grant_entries),
                    SpanGrant::ToolRoom => t.grant_tool_room.to_owned(),
                },
                from: format_time(span.start, tz),
                until: format_time(span.end, tz),
            })
            .collect(),
        notice,
        // made with the form: sending the same form again is a replay
        pay_index: zhima_storage::credentials::random_hex::<8>()
            .map(|h| format!("desk-{h}"))
            .unwrap_or_default(),
        plans: state
            .plans
            .iter()
            .map(|p| (p.name().to_owned(), p.price.to_string()))
            .collect(),
        now_local: datetime_local(now, tz),
        can_email_qr: state.notifier.is_some() && !m.profile.email.trim().is_empty(),
        qr: member_qr(&state, &view),
        no_password: m.must_change_password,
    }
    .render();
    page(StatusCode::OK, body)
}

forms! {
    /// The desk's payment form.
    PaymentForm { pay_index, plan, amount, paid_at }
    /// The profile form.
    ProfileForm { nickname, email, rfid, city, memo, reminders }
}

/// A `datetime-local` value (`2026-12-06T14:30`) in the space's zone.
fn parse_local_input(text: &str, tz: chrono_tz::Tz) -> Option<chrono::DateTime<Utc>> {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    zhima_domain::time::parse_paid_time(&digits, tz).ok()
}

/// `POST /console/members/{id}/payments`: a payment taken at the desk,
/// recorded once per form (its payIndex is made with the form).
async fn record_payment(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Posted<PaymentForm>,
) -> HttpResponse {
    let back = format!("/console/members/{}", path_id(&req).unwrap_or(0));
    let (ctx, form) = match gate_form(&state, &req, Role::Staff, form, &back).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let t = ctx.t;
    let Some(id) = path_id(&req) else {
        return ctx.not_found();
    };
    let payment = (|| {
        let plan = state.plans.get(&form.plan).ok()?;
        Some(NewPayment {
            pay_index: zhima_domain::ids::PayIndex::parse(&form.pay_index).ok()?,
            amount: Fen::parse_yuan(form.amount.trim()).ok()?,
            pay_type: plan.name().to_owned(),
            paid_at: parse_local_input(&form.paid_at, state.tz)?,
            until_days: None,
            span: None,
        })
    })();
    let Some(payment) = payment.filter(|p| p.pay_index.as_str().starts_with("desk-")) else {
        return ctx.message(
            StatusCode::BAD_REQUEST,
            t.record_payment,
            t.payment_invalid,
            &back,
            t.go_back,
        );
    };
    let (st, by, now) = (state.clone(), ctx.actor(), state.clock.now());
    let recorded =
        blocking(move || st.members.add_payment_by(MemberId(id), &payment, &by, now)).await;
    match recorded {
        Some(Ok(r)) => see_other(&format!(
            "{back}?done={}",
            if r.duplicate { "again" } else { "paid" }
        )),
        Some(Err(AppError::Storage(StorageError::MemberNotFound))) => ctx.not_found(),
        Some(Err(AppError::Storage(StorageError::PaymentConflict(_)))) => ctx.message(
            StatusCode::CONFLICT,
            t.record_payment,
            t.payment_invalid,
            &back,
            t.go_back,
        ),
        other => ctx.failed(other, "a desk payment failed"),
    }
}

forms! {
    /// The "email the QR code" button.
    QrForm {}
}

/// `POST /console/members/{id}/send-qr`: queues an email with the member's
/// QR code (the notification task sends it).
async fn send_qr(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Posted<QrForm>,
) -> HttpResponse {
    let (ctx, _, back, member) = match member_form(&state, &req, Role::Staff, form).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let t = ctx.t;
    let Some(notifier) = state.notifier.clone() else {
        return ctx.message(
            StatusCode::CONFLICT,
            t.qr_code,
            t.no_mail_server,
            &back,
            t.go_back,
        );
    };
    let now = state.clock.now();
    let sent = blocking(move || notifier.request_qr(&member.openid, now)).await;
    match sent {
        Some(Ok(())) => see_other(&format!("{back}?done=qr")),
        Some(Err(AppError::Storage(StorageError::MemberNotFound))) => ctx.not_found(),
        Some(Err(AppError::Invalid { field: "email", .. })) => ctx.message(
            StatusCode::CONFLICT,
            t.qr_code,
            t.qr_no_email,
            &back,
            t.go_back,
        ),
        Some(Err(AppError::Invalid { .. })) => {
            ctx.message(StatusCode::CONFLICT, t.qr_code, t.no_qr, &back, t.go_back)
        }
        other => ctx.failed(other, "a QR email could not be queued"),
    }
}

/// `POST /console/members/{id}/profile`: staff change a member's nickname,
/// email, card, city and notes (the audit log keeps before and after).
async fn edit_profile(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Posted<ProfileForm>,
) -> HttpResponse {
    let (ctx, form, back, member) = match member_form(&state, &req, Role::Staff, form).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let t = ctx.t;
    let changes = (|| {
        let rfid = form.rfid.trim();
        Some(vec![
            MemberChange::NickName(NickName::parse(&form.nickname).ok()?),
            MemberChange::text(UpdatableField::Email, form.email.trim()).ok()?,
            MemberChange::Rfid(if rfid.is_empty() {
                None
            } else {
                Some(Rfid::parse(rfid).ok()?)
            }),
            MemberChange::text(UpdatableField::City, form.city.trim()).ok()?,
            MemberChange::text(UpdatableField::Memo, form.memo.trim()).ok()?,
            MemberChange::Reminders(form.reminders == "on"),
        ])
    })();
    let Some(changes) = changes else {
        return ctx.message(
            StatusCode::BAD_REQUEST,
            t.edit_profile,
            t.profile_invalid,
            &back,
            t.go_back,
        );
    };
    let (st, by, now) = (state.clone(), ctx.actor(), state.clock.now());
    let saved = blocking(move || st.members.update_by(&member.openid, &changes, &by, now)).await;
    match saved {
        Some(Ok(_)) => see_other(&format!("{back}?done=saved")),
        Some(Err(AppError::Storage(StorageError::MemberNotFound))) => ctx.not_found(),
        Some(Err(AppError::Storage(StorageError::Duplicate(_)))) => ctx.message(
            StatusCode::CONFLICT,
            t.edit_profile,
            t.profile_taken,
            &back,
            t.go_back,
        ),
        other => ctx.failed(other, "a profile could not be saved"),
    }
}

page_struct!("console/passes.html", PassesPage {
    today: String,
    problem: Option<&'static str>,
    pass: Option<IssuedPass>,
});

/// A pass just issued, to print or show.
struct IssuedPass {
    id: i64,
    nickname: String,
    kind: &'static str,
    from: String,
    until: String,
    qr: String,
}

/// `GET /console/passes`: the form for a day pass or an event pass.
async fn passes(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let ctx = match gate(&state, &req, Role::Staff).await {
        Ok(ctx) => ctx,
        Err(answer) => return answer,
    };
    render_passes(&state, &ctx, StatusCode::OK, None, None)
}

fn render_passes(
    state: &AppState,
    ctx: &Ctx,
    status: StatusCode,
    problem: Option<&'static str>,
    pass: Option<IssuedPass>,
) -> HttpResponse {
    let today = zhima_domain::time::local_date(state.clock.now(), state.tz);
    page(
        status,
        PassesPage {
            frame: ctx.frame("/console/passes"),
            today: today.format("%Y-%m-%d").to_string(),
            problem,
            pass,
        }
        .render(),
    )
}

forms! {
    /// The pass form.
    PassForm { kind, visitor, amount, date }
}

/// `POST /console/passes`: issues a pass (a visitor member with a day-pass
/// payment, in the audit log under the staff member's name) and shows its
/// signed QR code. A day pass starts now; an event pass at the start of the
/// event's day (or now, on the day itself).
async fn issue_pass(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Posted<PassForm>,
) -> HttpResponse {
    let (ctx, form) = match gate_form(&state, &req, Role::Staff, form, "/console/passes").await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let t = ctx.t;
    let now = state.clock.now();
    let pass = (|| {
        let kind = match form.kind.as_str() {
            "day" => PassKind::Day,
            "event" => PassKind::Event,
            _ => return None,
        };
        let amount = match form.amount.trim() {
            "" => Fen::from_yuan(0),
            text => Fen::parse_yuan(text).ok()?,
        };
        let starts = match kind {
            PassKind::Day => now,
            PassKind::Event => {
                let date = chrono::NaiveDate::parse_from_str(form.date.trim(), "%Y-%m-%d").ok()?;
                let start = local_day_start(date, state.tz);
                if start + chrono::Duration::days(1) <= now {
                    return None; // a day already over
                }
                start.max(now)
            }
        };
        Some(Pass {
            kind,
            visitor: form.visitor.chars().take(40).collect(),
            amount,
            starts,
        })
    })();
    let Some(pass) = pass else {
        return render_passes(
            &state,
            &ctx,
            StatusCode::BAD_REQUEST,
            Some(t.pass_invalid),
            None,
        );
    };
    let (st, by, p) = (state.clone(), ctx.actor(), pass.clone());
    let issued = blocking(move || st.members.issue_pass(&p, &by, now)).await;
    let view = match issued {
        Some(Ok(view)) => view,
        Some(Err(AppError::Invalid { .. })) => {
            return render_passes(
                &state,
                &ctx,
                StatusCode::BAD_REQUEST,
                Some(t.pass_invalid),
                None,
            )
        }
        other => return ctx.failed(other, "a pass could not be issued"),
    };
    // the span the pass's payment grants, as the member's validity shows it
    // at its start
    let until = view
        .validity
        .valid_until
        .unwrap_or(pass.starts + chrono::Duration::days(1));
    let Some(qr) = qr_data_uri(&state, view.record.member.id, pass.starts, until) else {
        return ctx.busy();
    };
    let issued = IssuedPass {
        id: view.record.member.id.0,
        nickname: view.record.member.nickname.as_str().to_owned(),
        kind: match pass.kind {
            PassKind::Day => t.day_pass,
            PassKind::Event => t.event_pass,
        },
        from: format_time(pass.starts, state.tz),
        until: format_time(until, state.tz),
        qr,
    };
    render_passes(&state, &ctx, StatusCode::OK, None, Some(issued))
}
