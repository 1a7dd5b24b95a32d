//! The login and consent pages and the error pages of `/oauth/authorize`.

use actix_web::http::header;
use actix_web::HttpResponse;
use zhima_oauth::{Consent, Params};

use super::*;

pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Every page: never framed, never cached, no scripts.
pub(super) fn page(status: actix_web::http::StatusCode, title: &str, body: &str) -> HttpResponse {
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
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title>\
             <style>body{{font-family:sans-serif;max-width:26em;margin:2em auto;padding:0 1em}}\
             input{{display:block;width:100%;margin:.3em 0 1em}}button{{margin-right:1em}}</style>\
             </head><body><h1>{t}</h1>{body}</body></html>",
            t = escape(title)
        ))
}

pub(crate) fn error_page(status: actix_web::http::StatusCode, message: &str) -> HttpResponse {
    page(
        status,
        "Cannot continue",
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
    consent: &Consent,
    params: &Params,
    csrf: &str,
    note: Option<&str>,
) -> HttpResponse {
    let note = note.map_or(String::new(), |n| {
        format!("<p><strong>{}</strong></p>", escape(n))
    });
    let body = format!(
        "<p>{name} asks to act for you. Log in with your member nickName and password.</p>{note}{}",
        form(
            params,
            csrf,
            "<label>NickName<input name=\"zhima_nickname\" autocomplete=\"username\" required></label>\
             <label>Password<input type=\"password\" name=\"zhima_password\" autocomplete=\"current-password\" required></label>\
             <button name=\"zhima_action\" value=\"login\">Log in</button>"
        ),
        name = escape(&consent.client_name),
    );
    with_csrf_cookie(
        oauth,
        page(actix_web::http::StatusCode::OK, "Log in", &body),
        csrf,
    )
}

pub(super) fn consent_page(
    consent: &Consent,
    params: &Params,
    csrf: &str,
    ticket: &str,
) -> HttpResponse {
    let scopes: String = consent
        .scopes
        .iter()
        .map(|s| format!("<li>{}</li>", escape(s.description())))
        .collect();
    let body = format!(
        "<p><strong>{name}</strong> asks to:</p><ul>{scopes}</ul>\
         <p>It will send you back to {uri}.</p>{}",
        form(
            params,
            csrf,
            &format!(
                "<input type=\"hidden\" name=\"zhima_ticket\" value=\"{}\">\
                 <button name=\"zhima_action\" value=\"allow\">Allow</button>\
                 <button name=\"zhima_action\" value=\"deny\">Deny</button>",
                escape(ticket)
            )
        ),
        name = escape(&consent.client_name),
        uri = escape(&consent.redirect_uri),
    );
    page(actix_web::http::StatusCode::OK, "Allow access?", &body)
}
