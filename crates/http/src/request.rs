//! Reading the parts of a request every front end needs, once: the bearer
//! credential and the media type. (The client's address is
//! [`crate::AppState::peer_ip`].)

use actix_web::http::header;
use actix_web::HttpRequest;

/// The longest bearer credential taken (API keys are 67 characters, OAuth
/// tokens 43).
pub const BEARER_MAX: usize = 256;

/// Why a request's `Authorization` header is not one bearer credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// The header is given more than once.
    Repeated,
    /// Not `Bearer <credential>` of at most [`BEARER_MAX`] visible characters.
    Malformed,
}

/// The request's bearer credential: `Ok(None)` without an `Authorization`
/// header.
pub fn bearer(req: &HttpRequest) -> Result<Option<String>, BearerError> {
    let mut values = req.headers().get_all(header::AUTHORIZATION);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(BearerError::Repeated);
    }
    let value = value.to_str().map_err(|_| BearerError::Malformed)?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.len() > BEARER_MAX {
        return Err(BearerError::Malformed);
    }
    Ok(Some(token.to_owned()))
}

/// The media type of the body (`application/json`), lower-case, without
/// parameters; `None` without a readable `Content-Type`.
pub fn media_type(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
}

/// The value of cookie `name`, if the request carries it (non-empty, at
/// most 128 bytes: no cookie zhima sets is longer).
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn one_bearer_credential_or_a_reason() {
        let with = |values: &[&str]| {
            let mut r = TestRequest::default();
            for v in values {
                r = r.append_header(("Authorization", *v));
            }
            bearer(&r.to_http_request())
        };
        assert_eq!(with(&[]), Ok(None));
        assert_eq!(with(&["Bearer abc"]), Ok(Some("abc".into())));
        assert_eq!(with(&["bearer  abc "]), Ok(Some("abc".into())));
        assert_eq!(with(&["Basic abc"]), Err(BearerError::Malformed));
        assert_eq!(with(&["Bearer"]), Err(BearerError::Malformed));
        assert_eq!(
            with(&[&format!("Bearer {}", "a".repeat(BEARER_MAX + 1))]),
            Err(BearerError::Malformed)
        );
        assert_eq!(with(&["Bearer a", "Bearer b"]), Err(BearerError::Repeated));
    }

    #[test]
    fn media_types_lose_their_parameters_and_case() {
        let of = |v: &str| {
            media_type(
                &TestRequest::default()
                    .insert_header(("Content-Type", v))
                    .to_http_request(),
            )
        };
        assert_eq!(
            of("Application/JSON; charset=utf-8").as_deref(),
            Some("application/json")
        );
        assert_eq!(of("").as_deref(), None);
        assert_eq!(media_type(&TestRequest::default().to_http_request()), None);
    }
}
