//! The login and consent pages and the error pages of `/oauth/authorize`.

use actix_web::http::header;
use actix_web::HttpResponse;
use zhima_oauth::{Consent, Params};

use super::*;
use crate::error::Words;
use crate::i18n::Lang;

pub(super) use zhima_domain::text::escape_html as escape;

/// Every page: never framed, never cached, no scripts; in `lang`.
pub(super) fn page(
    status: actix_web::http::StatusCode,
    lang: Lang,
    title: &str,
    body: &str,
) -> HttpResponse {
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
            "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title>\
             <style>body{{font-family:sans-serif;max-width:26em;margin:2em auto;padding:0 1em}}\
             input{{display:block;width:100%;margin:.3em 0 1em}}button{{margin-right:1em}}</style>\
             </head><body><h1>{t}</h1>{body}</body></html>",
            t = escape(title),
            lang = lang.tag(),
        ))
}

pub(crate) fn error_page(
    status: actix_web::http::StatusCode,
    lang: Lang,
    message: &str,
) -> HttpResponse {
    page(
        status,
        lang,
        lang.texts().cannot_continue,
        &format!("<p>{}</p>", escape(message)),
    )
}

pub(super) fn hidden_params(params: &Params) -> String {
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

pub(super) fn form(params: &Params, csrf: &str, extra: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/oauth/authorize\">{}\
         <input type=\"hidden\" name=\"zhima_csrf\" value=\"{}\">{extra}</form>",
        hidden_params(params),
        escape(csrf)
    )
}

pub(super) fn login_page(
    oauth: &OAuthState,
    lang: Lang,
    consent: &Consent,
    params: &Params,
    csrf: &str,
    note: Option<Words>,
) -> HttpResponse {
    let t = lang.texts();
    let note = note.map_or(String::new(), |n| {
        format!("<p><strong>{}</strong></p>", escape(n(t)))
    });
    let intro = escape(t.oauth_login_intro).replace("{name}", &escape(&consent.client_name));
    let body = format!(
        "<p>{intro}</p>{note}{}",
        form(
            params,
            csrf,
            &format!(
                "<label>{nick}<input name=\"zhima_nickname\" autocomplete=\"username\" required></label>\
                 <label>{pass}<input type=\"password\" name=\"zhima_password\" autocomplete=\"current-password\" required></label>\
                 <button name=\"zhima_action\" value=\"login\">{login}</button>",
                nick = escape(t.nickname),
                pass = escape(t.password),
                login = escape(t.log_in),
            )
        ),
    );
    with_csrf_cookie(
        oauth,
        page(
            actix_web::http::StatusCode::OK,
            lang,
            t.oauth_login_title,
            &body,
        ),
        csrf,
    )
}

/// What a scope lets a partner do, in the page's words.
fn scope_words(
    scope: zhima_domain::partner::PartnerScope,
    t: &'static crate::i18n::Texts,
) -> &'static str {
    match scope {
        zhima_domain::partner::PartnerScope::Profile => t.scope_profile,
        zhima_domain::partner::PartnerScope::Vip => t.scope_vip,
    }
}

pub(super) fn consent_page(
    lang: Lang,
    consent: &Consent,
    params: &Params,
    csrf: &str,
    ticket: &str,
) -> HttpResponse {
    let t = lang.texts();
    let scopes: String = consent
        .scopes
        .iter()
        .map(|s| format!("<li>{}</li>", escape(scope_words(*s, t))))
        .collect();
    let asks = escape(t.consent_asks).replace(
        "{name}",
        &format!("<strong>{}</strong>", escape(&consent.client_name)),
    );
    let back = escape(t.consent_back).replace("{uri}", &escape(&consent.redirect_uri));
    let body = format!(
        "<p>{asks}</p><ul>{scopes}</ul><p>{back}</p>{}",
        form(
            params,
            csrf,
            &format!(
                "<input type=\"hidden\" name=\"zhima_ticket\" value=\"{}\">\
                 <button name=\"zhima_action\" value=\"allow\">{allow}</button>\
                 <button name=\"zhima_action\" value=\"deny\">{deny}</button>",
                escape(ticket),
                allow = escape(t.allow),
                deny = escape(t.deny),
            )
        ),
    );
    page(
        actix_web::http::StatusCode::OK,
        lang,
        t.consent_title,
        &body,
    )
}
