//! CSRF tokens and consent tickets: what proves one step of the login to
//! the next, with no session kept on the server.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::Mac;
use sha2::Sha256;
use zhima_domain::ids::MemberId;
use zhima_oauth::{Consent, Params};
use zhima_storage::credentials::constant_time_eq;

use super::*;

/// The CSRF cookie's name: `__Host-` prefixed (so no subdomain or plain
/// http page can set it) when the issuer is https.
pub(super) fn csrf_cookie_name(oauth: &OAuthState) -> &'static str {
    if oauth.https {
        "__Host-zhima_csrf"
    } else {
        CSRF_COOKIE
    }
}

pub(super) fn with_csrf_cookie(
    oauth: &OAuthState,
    mut response: HttpResponse,
    csrf: &str,
) -> HttpResponse {
    let cookie = if oauth.https {
        format!("__Host-zhima_csrf={csrf}; Path=/; Secure; HttpOnly; SameSite=Strict")
    } else {
        format!("{CSRF_COOKIE}={csrf}; Path=/oauth; HttpOnly; SameSite=Strict")
    };
    if let Ok(value) = header::HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// This browser's CSRF token, if it is one this server minted.
pub(super) fn csrf_cookie(oauth: &OAuthState, req: &HttpRequest) -> Option<String> {
    crate::request::cookie(req, csrf_cookie_name(oauth))
        .filter(|v| csrf_signed(&oauth.ticket_key, v))
}

/// A new CSRF token: 128 random bits and a MAC of them under the server's
/// key. Minted for every login page, never taken from the browser, so a
/// value planted in a browser beforehand is worthless.
pub(super) fn new_csrf(key: &[u8; 32]) -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    let random = URL_SAFE_NO_PAD.encode(bytes);
    let mac = csrf_mac(key, &random)?;
    Some(format!("{random}.{mac}"))
}

pub(super) fn csrf_mac(key: &[u8; 32], random: &str) -> Option<String> {
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(b"csrf|");
    mac.update(random.as_bytes());
    Some(URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16]))
}

pub(super) fn csrf_signed(key: &[u8; 32], value: &str) -> bool {
    value.split_once('.').is_some_and(|(random, mac)| {
        random.len() == 22
            && csrf_mac(key, random)
                .is_some_and(|expected| constant_time_eq(expected.as_bytes(), mac.as_bytes()))
    })
}

/// What the consent page showed, as a digest a ticket is bound to: the
/// redirect URI, the scopes, the state and the PKCE challenge. Form fields
/// changed after the page was shown no longer fit the ticket.
pub(super) fn consent_binding(consent: &Consent, params: &Params) -> String {
    use sha2::Digest;
    // sorted: the provider hands scopes over in no fixed order
    let mut scopes: Vec<&str> = consent.scopes.iter().map(|s| s.as_str()).collect();
    scopes.sort_unstable();
    let mut digest = Sha256::new();
    for part in [
        consent.redirect_uri.as_str(),
        &scopes.join(" "),
        params.get("state").unwrap_or(""),
        params.get("code_challenge").unwrap_or(""),
    ] {
        digest.update(part.len().to_be_bytes());
        digest.update(part.as_bytes());
    }
    URL_SAFE_NO_PAD.encode(digest.finalize())
}

pub(super) fn ticket_mac(key: &[u8; 32], body: &str, csrf: &str) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(body.as_bytes());
    mac.update(b"|");
    mac.update(csrf.as_bytes());
    Some(mac)
}

/// A consent ticket: the member who logged in, for this client and what
/// the consent page shows, in this browser, for 10 minutes, once.
pub(super) fn issue_ticket(
    key: &[u8; 32],
    member: MemberId,
    client_id: &str,
    binding: &str,
    csrf: &str,
    now: DateTime<Utc>,
) -> Option<String> {
    let body = format!(
        "{}.{}.consent.{}.{binding}",
        member.0,
        URL_SAFE_NO_PAD.encode(client_id),
        now.timestamp() + TICKET_TTL_SECS
    );
    let mac = ticket_mac(key, &body, csrf)?.finalize().into_bytes();
    Some(format!("{body}.{}", URL_SAFE_NO_PAD.encode(mac)))
}

/// The member a ticket names, if it fits the client, what the page showed,
/// the browser and the time.
pub(super) fn check_ticket(
    key: &[u8; 32],
    ticket: &str,
    client_id: &str,
    binding: &str,
    csrf: &str,
    now: DateTime<Utc>,
) -> Option<MemberId> {
    let (body, sig) = ticket.rsplit_once('.')?;
    let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
    ticket_mac(key, body, csrf)?.verify_slice(&sig).ok()?;
    let mut parts = body.split('.');
    let member: i64 = parts.next()?.parse().ok()?;
    let client = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
    let step = parts.next()?;
    let exp: i64 = parts.next()?.parse().ok()?;
    let bound = parts.next()?;
    (client == client_id.as_bytes()
        && step == "consent"
        && bound == binding
        && now.timestamp() < exp)
        .then_some(MemberId(member))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_bound_to_member_client_what_was_shown_browser_and_time() {
        let key = [7u8; 32];
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let t = issue_ticket(&key, MemberId(42), "client-a", "shown1", "csrf1", now).unwrap();
        let check = |key: &[u8; 32], t: &str, client, shown, csrf, at| {
            check_ticket(key, t, client, shown, csrf, at)
        };
        assert_eq!(
            check(&key, &t, "client-a", "shown1", "csrf1", now),
            Some(MemberId(42))
        );
        assert_eq!(check(&key, &t, "client-b", "shown1", "csrf1", now), None);
        assert_eq!(check(&key, &t, "client-a", "shown2", "csrf1", now), None);
        assert_eq!(check(&key, &t, "client-a", "shown1", "csrf2", now), None);
        let later = now + chrono::Duration::seconds(TICKET_TTL_SECS);
        assert_eq!(check(&key, &t, "client-a", "shown1", "csrf1", later), None);
        assert_eq!(
            check(&[8u8; 32], &t, "client-a", "shown1", "csrf1", now),
            None
        );
        let forged = t.replacen("42.", "43.", 1);
        assert_eq!(
            check(&key, &forged, "client-a", "shown1", "csrf1", now),
            None
        );
    }

    #[test]
    fn only_tokens_this_server_minted_are_csrf_tokens() {
        let key = [7u8; 32];
        let t = new_csrf(&key).unwrap();
        assert!(csrf_signed(&key, &t));
        assert!(!csrf_signed(&[8u8; 32], &t));
        assert!(!csrf_signed(&key, "AAAAAAAAAAAAAAAAAAAAAA"), "a bare value");
        let (random, _) = t.split_once('.').unwrap();
        assert!(!csrf_signed(
            &key,
            &format!("{random}.AAAAAAAAAAAAAAAAAAAAAA")
        ));
        assert_ne!(new_csrf(&key).unwrap(), t);
    }
}
