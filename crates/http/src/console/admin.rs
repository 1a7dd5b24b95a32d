//! The admins' pages: API keys, partners, free token grants, the plan
//! catalogue, the audit log, and the dangerous forms of a member's page
//! (tags, deactivation, a password). Every change here is in the audit log.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use zhima_app::sessions::Role;
use zhima_app::AppError;
use zhima_domain::ids::{MemberId, OpenId};
use zhima_domain::partner::{PartnerScope, TokenKind, Tokens};
use zhima_domain::plan::Grant;
use zhima_domain::scope::Scopes;
use zhima_domain::tags::{TagInput, Tags};
use zhima_domain::time::CalendarSpan;
use zhima_storage::{MemberKey, StorageError};

use super::{
    blocking, format_time, forms, gate, gate_form, member_form, page, page_struct, query_value,
    see_other, Ctx, Posted,
};
use crate::i18n::Texts;
use crate::AppState;

pub(super) fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::resource("/console/admin").route(web::get().to(admin_page)))
        .service(crate::resource("/console/admin/keys").route(web::post().to(create_key)))
        .service(crate::resource("/console/admin/keys/revoke").route(web::post().to(revoke_key)))
        .service(crate::resource("/console/admin/partners").route(web::post().to(add_partner)))
        .service(
            crate::resource("/console/admin/partners/remove").route(web::post().to(remove_partner)),
        )
        .service(crate::resource("/console/admin/tokens").route(web::post().to(grant_tokens)))
        .service(crate::resource("/console/audit").route(web::get().to(audit_log)))
        .service(crate::resource("/console/members/{id}/tags").route(web::post().to(set_tags)))
        .service(crate::resource("/console/members/{id}/status").route(web::post().to(set_status)))
        .service(
            crate::resource("/console/members/{id}/password").route(web::post().to(set_password)),
        );
}

struct KeyRow {
    name: String,
    scopes: String,
    created: String,
    revoked: String,
    active: bool,
}

struct PartnerRow {
    client_id: String,
    name: String,
    kind: &'static str,
    scopes: String,
    redirect_uris: String,
    removed: String,
    active: bool,
}

struct PlanRow {
    name: String,
    price: String,
    grant: String,
}

page_struct!("console/admin.html", AdminPage {
    notice: Option<&'static str>,
    keys: Vec<KeyRow>,
    partners: Vec<PartnerRow>,
    plans: Vec<PlanRow>,
});

fn span_text(span: CalendarSpan, t: &Texts) -> String {
    match span {
        CalendarSpan::Months(n) => format!("{n} {}", t.unit_months),
        CalendarSpan::Days(n) => format!("{n} {}", t.unit_days),
    }
}

fn grant_text(grant: Grant, t: &Texts) -> String {
    match grant {
        Grant::Membership { span } => format!("{}: {}", t.grant_membership, span_text(span, t)),
        Grant::DayPass { span } => format!("{}: {}", t.grant_day_pass, span_text(span, t)),
        Grant::Entries { days, window } => {
            format!("{}: {days} / {}", t.grant_entries, span_text(window, t))
        }
        Grant::ToolRoom { span } => format!("{}: {}", t.grant_tool_room, span_text(span, t)),
        Grant::Nothing => t.grant_nothing.to_owned(),
    }
}

/// `GET /console/admin`: API keys, partners, token grants and the plans.
async fn admin_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let ctx = match gate(&state, &req, Role::Admin).await {
        Ok(ctx) => ctx,
        Err(answer) => return answer,
    };
    let t = ctx.t;
    let st = state.clone();
    let Some(Ok((keys, partners))) =
        blocking(move || Ok::<_, AppError>((st.admin.api_keys()?, st.admin.partners()?))).await
    else {
        return ctx.busy();
    };
    let tz = state.tz;
    let notice = match query_value(&req, "done").as_deref() {
        Some("revoked") => Some(t.key_revoked),
        Some("removed") => Some(t.partner_removed),
        Some("granted") => Some(t.tokens_granted),
        _ => None,
    };
    let body = AdminPage {
        frame: ctx.frame("/console/admin"),
        notice,
        keys: keys
            .into_iter()
            .map(|k| KeyRow {
                active: k.revoked_at.is_none(),
                revoked: k.revoked_at.map_or(String::new(), |r| format_time(r, tz)),
                name: k.name,
                scopes: k.scopes.to_string(),
                created: format_time(k.created_at, tz),
            })
            .collect(),
        partners: partners
            .into_iter()
            .map(|c| PartnerRow {
                kind: if c.is_public() {
                    t.public_client
                } else {
                    t.confidential_client
                },
                scopes: PartnerScope::join(&c.scopes),
                redirect_uris: c.redirect_uris.join(" "),
                removed: c.removed_at.map_or(String::new(), |r| format_time(r, tz)),
                active: c.removed_at.is_none(),
                client_id: c.client_id,
                name: c.name,
            })
            .collect(),
        plans: state
            .plans
            .iter()
            .map(|p| PlanRow {
                name: p.name().to_owned(),
                price: p.price.to_string(),
                grant: grant_text(p.grant, t),
            })
            .collect(),
    }
    .render();
    page(StatusCode::OK, body)
}

page_struct!("console/secret.html", SecretPage {
    heading: &'static str,
    what: String,
    lines: Vec<(&'static str, String)>,
});

/// A secret shown once, never again.
fn secret_page(
    ctx: &Ctx,
    heading: &'static str,
    what: String,
    lines: Vec<(&'static str, String)>,
) -> HttpResponse {
    page(
        StatusCode::OK,
        SecretPage {
            frame: ctx.frame("/console/admin"),
            heading,
            what,
            lines,
        }
        .render(),
    )
}

fn refused(ctx: &Ctx, heading: &'static str, message: &'static str) -> HttpResponse {
    ctx.message(
        StatusCode::BAD_REQUEST,
        heading,
        message,
        "/console/admin",
        ctx.t.go_back,
    )
}

forms! {
    /// A new API key.
    KeyForm { name, scopes }
    /// A key to revoke.
    RevokeForm { name }
    /// A new partner.
    PartnerForm { name, redirect_uris, kind, scopes }
    /// A partner to remove.
    RemoveForm { client_id }
    /// Free tokens for a member.
    TokensForm { member, amount, reason }
}

/// `POST /console/admin/keys`: a new API key, shown once.
async fn create_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Posted<KeyForm>,
) -> HttpResponse {
    let (ctx, form) = match gate_form(&state, &req, Role::Admin, form, "/console/admin").await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let t = ctx.t;
    let Ok(scopes) = Scopes::parse(&form.scopes) else {
        return refused(&ctx, t.api_keys, t.key_invalid);
    };
    let (st, by, now) = (state.clone(), ctx.actor(), state.clock.now());
    let name = form.name.clone();
    match blocking(move || st.admin.create_api_key(&name, &scopes, &by, now)).await {
        Some(Ok((key, plaintext))) => secret_page(
            &ctx,
            t.key_created,
            format!("{} ({})", key.name, key.scopes),
            vec![(t.api_key, plaintext)],
        ),
        Some(Err(AppError::Storage(StorageError::Invalid(_) | StorageError::Duplicate(_)))) => {
            refused(&ctx, t.api_keys, t.key_invalid)
        }
        other => ctx.failed(other, "an API key could not be created"),
    }
}

/// `POST /console/admin/keys/revoke`.
async fn revoke_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Posted<RevokeForm>,
) -> HttpResponse {
    let (ctx, form) = match gate_form(&state, &req, Role::Admin, form, "/console/admin").await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let (st, by, now) = (state.clone(), ctx.actor(), state.clock.now());
    match blocking(move || st.admin.revoke_api_key(&form.name, &by, now)).await {
        Some(Ok(true)) => see_other("/console/admin?done=revoked"),
        Some(Ok(false)) => refused(&ctx, ctx.t.api_keys, ctx.t.nothing_to_do),
        _ => ctx.busy(),
    }
}

/// `POST /console/admin/partners`: a new partner, its secret shown once.
async fn add_partner(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Posted<PartnerForm>,
) -> HttpResponse {
    let (ctx, form) = match gate_form(&state, &req, Role::Admin, form, "/console/admin").await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let t = ctx.t;
    let Ok(scopes) = PartnerScope::parse_set(&form.scopes) else {
        return refused(&ctx, t.partners, t.partner_invalid);
    };
    let uris: Vec<String> = form
        .redirect_uris
        .split_whitespace()
        .take(10)
        .map(str::to_owned)
        .collect();
    let public = form.kind == "public";
    let (st, by, now) = (state.clone(), ctx.actor(), state.clock.now());
    let name = form.name.clone();
    let added = blocking(move || {
        st.admin
            .register_partner(&name, &uris, public, &scopes, &by, now)
    })
    .await;
    match added {
        Some(Ok(registered)) => {
            let mut lines = vec![(t.client_id, registered.client.client_id.clone())];
            if let Some(secret) = registered.secret {
                lines.push((t.client_secret, secret));
            }
            secret_page(&ctx, t.partner_added, registered.client.name.clone(), lines)
        }
        Some(Err(zhima_oauth::OAuthError::BadClient(_))) => {
            refused(&ctx, t.partners, t.partner_invalid)
        }
        other => ctx.failed(other, "a partner could not be added"),
    }
}

/// `POST /console/admin/partners/remove`: the partner goes, its tokens too.
async fn remove_partner(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Posted<RemoveForm>,
) -> HttpResponse {
    let (ctx, form) = match gate_form(&state, &req, Role::Admin, form, "/console/admin").await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let (st, by, now) = (state.clone(), ctx.actor(), state.clock.now());
    match blocking(move || st.admin.remove_partner(&form.client_id, &by, now)).await {
        Some(Ok(true)) => see_other("/console/admin?done=removed"),
        Some(Ok(false)) => refused(&ctx, ctx.t.partners, ctx.t.nothing_to_do),
        _ => ctx.busy(),
    }
}

/// The openid of the member a form names by number, openid or `#number`.
fn member_openid(state: &AppState, text: &str) -> Result<Option<OpenId>, AppError> {
    let text = text.trim().trim_start_matches('#');
    let now = state.clock.now();
    let view = match text.parse::<i64>() {
        Ok(id) if id > 0 => state.members.read(MemberKey::Id(MemberId(id)), now)?,
        _ => match OpenId::parse(text) {
            Ok(openid) => state.members.read(MemberKey::OpenId(&openid), now)?,
            Err(_) => None,
        },
    };
    Ok(view.map(|v| v.record.member.openid))
}

/// `POST /console/admin/tokens`: free tokens for a member, with a reason.
async fn grant_tokens(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Posted<TokensForm>,
) -> HttpResponse {
    let (ctx, form) = match gate_form(&state, &req, Role::Admin, form, "/console/admin").await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let t = ctx.t;
    let Ok(amount) = Tokens::parse(form.amount.trim()) else {
        return refused(&ctx, t.grant_tokens, t.tokens_invalid);
    };
    let (st, by, now) = (state.clone(), ctx.actor(), state.clock.now());
    let granted = blocking(move || {
        let Some(openid) = member_openid(&st, &form.member)? else {
            return Err(AppError::Storage(StorageError::MemberNotFound));
        };
        st.wallet
            .grant(&openid, TokenKind::Free, amount, &form.reason, &by, now)
    })
    .await;
    match granted {
        Some(Ok(_)) => see_other("/console/admin?done=granted"),
        Some(Err(AppError::Invalid { .. } | AppError::Storage(StorageError::MemberNotFound))) => {
            refused(&ctx, t.grant_tokens, t.tokens_invalid)
        }
        other => ctx.failed(other, "tokens could not be granted"),
    }
}

struct AuditRow {
    at: String,
    actor: String,
    action: String,
    subject: String,
    before: String,
    after: String,
}

page_struct!("console/audit.html", AuditPage {
    rows: Vec<AuditRow>,
    next: Option<String>,
});

const AUDIT_PAGE: u32 = 50;

/// `GET /console/audit`: who changed what, newest first (admins only).
async fn audit_log(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let ctx = match gate(&state, &req, Role::Admin).await {
        Ok(ctx) => ctx,
        Err(answer) => return answer,
    };
    let before = query_value(&req, "before")
        .and_then(|b| b.parse::<i64>().ok())
        .filter(|b| *b > 0);
    let st = state.clone();
    let Some(Ok(entries)) = blocking(move || st.audit.log(before, AUDIT_PAGE)).await else {
        return ctx.busy();
    };
    let next = (entries.len() == AUDIT_PAGE as usize)
        .then(|| {
            entries
                .last()
                .map(|e| format!("/console/audit?before={}", e.id))
        })
        .flatten();
    let rows = entries
        .into_iter()
        .map(|e| AuditRow {
            at: format_time(e.note.at, state.tz),
            actor: e.note.actor,
            action: e.note.action,
            subject: e.note.subject,
            before: e.note.before,
            after: e.note.after,
        })
        .collect();
    page(
        StatusCode::OK,
        AuditPage {
            frame: ctx.frame("/console/audit"),
            rows,
            next,
        }
        .render(),
    )
}

forms! {
    /// New tags for a member.
    TagsForm { tags }
    /// Deactivate or reactivate.
    StatusForm { action }
    /// A password for a member.
    PasswordForm { password }
}

/// Maps the outcome of a member change to the member's page or a message.
fn after_member_change(
    ctx: &Ctx,
    back: &str,
    done: &str,
    outcome: Option<Result<(), AppError>>,
    invalid: &'static str,
) -> HttpResponse {
    let t = ctx.t;
    match outcome {
        Some(Ok(())) => see_other(&format!("{back}?done={done}")),
        Some(Err(AppError::Invalid { .. } | AppError::Storage(StorageError::Invalid(_)))) => {
            ctx.message(StatusCode::BAD_REQUEST, t.members, invalid, back, t.go_back)
        }
        other => ctx.failed(other, "a member change failed"),
    }
}

/// `POST /console/members/{id}/tags` (admins).
async fn set_tags(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Posted<TagsForm>,
) -> HttpResponse {
    let (ctx, form, back, member) = match member_form(&state, &req, Role::Admin, form).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let openid = member.openid;
    let Ok(tags) = Tags::parse(&[TagInput::Text(&form.tags)]) else {
        return ctx.message(
            StatusCode::BAD_REQUEST,
            ctx.t.tags,
            ctx.t.tags_invalid,
            &back,
            ctx.t.go_back,
        );
    };
    let (st, by, now) = (state.clone(), ctx.actor(), state.clock.now());
    let outcome = blocking(move || st.admin.set_tags(&openid, tags, &by, now)).await;
    after_member_change(&ctx, &back, "saved", outcome, ctx.t.tags_invalid)
}

/// `POST /console/members/{id}/status` (admins): deactivate or reactivate.
async fn set_status(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Posted<StatusForm>,
) -> HttpResponse {
    let (ctx, form, back, member) = match member_form(&state, &req, Role::Admin, form).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let openid = member.openid;
    let deactivate = match form.action.as_str() {
        "deactivate" => true,
        "reactivate" => false,
        _ => {
            return ctx.message(
                StatusCode::BAD_REQUEST,
                ctx.t.members,
                ctx.t.unknown_action,
                &back,
                ctx.t.go_back,
            )
        }
    };
    if deactivate && openid == ctx.session.member.openid {
        // an admin cannot lock themselves out
        return ctx.message(
            StatusCode::BAD_REQUEST,
            ctx.t.members,
            ctx.t.not_yourself,
            &back,
            ctx.t.go_back,
        );
    }
    let (st, by, now) = (state.clone(), ctx.actor(), state.clock.now());
    let outcome = blocking(move || st.admin.set_deactivated(&openid, deactivate, &by, now)).await;
    after_member_change(&ctx, &back, "saved", outcome, ctx.t.unknown_action)
}

/// `POST /console/members/{id}/password` (admins): a password for a member
/// who has none yet or forgot theirs; their sessions end.
async fn set_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Posted<PasswordForm>,
) -> HttpResponse {
    let (ctx, form, back, member) = match member_form(&state, &req, Role::Admin, form).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let openid = member.openid;
    let Ok(password) = zhima_domain::password::Password::parse(&form.password) else {
        return ctx.message(
            StatusCode::BAD_REQUEST,
            ctx.t.password,
            ctx.t.password_invalid,
            &back,
            ctx.t.go_back,
        );
    };
    let (st, by, now) = (state.clone(), ctx.actor(), state.clock.now());
    let outcome = blocking(move || st.admin.set_password(&openid, &password, &by, now)).await;
    after_member_change(&ctx, &back, "password", outcome, ctx.t.password_invalid)
}
