//! The one place where errors become HTTP responses.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Value};
use zhima_domain::{DomainError, Errno};
use zhima_storage::{StorageError, UniqueField};

/// An answer that is not a success: an errno, a message for people, extra
/// `data`, and the HTTP status it travels with.
#[derive(Debug)]
pub struct ApiError {
    /// The errno.
    pub errno: Errno,
    /// The `errmsg`.
    pub message: String,
    /// The `data` object.
    pub data: Value,
}

/// What a request was doing when storage failed; decides the errno of a
/// duplicate (1003 on create, 1004 on update, 1005 on a payment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Reading.
    Read,
    /// `POST member/new`.
    CreateMember,
    /// `PATCH op:update`.
    UpdateMember,
    /// `PATCH op:add`.
    AddPayment,
}

impl ApiError {
    /// An error with a message and empty `data`.
    pub fn new(errno: Errno, message: impl Into<String>) -> ApiError {
        ApiError {
            errno,
            message: message.into(),
            data: json!({}),
        }
    }

    /// Replaces `data`.
    pub fn with_data(mut self, data: Value) -> ApiError {
        self.data = data;
        self
    }

    /// 1002 naming the faulty field.
    pub fn bad_field(field: &str, reason: impl std::fmt::Display) -> ApiError {
        ApiError::new(Errno::BadRequest, format!("{field}: {reason}"))
            .with_data(json!({ "field": field }))
    }

    /// 1429 with the seconds to wait in `data.retryAfter` (and in the
    /// `Retry-After` header).
    pub fn too_many(wait: std::time::Duration) -> ApiError {
        let secs = zhima_domain::limit::retry_after_secs(wait);
        ApiError::new(
            Errno::TooManyRequests,
            format!("Too many requests; retry after {secs} s"),
        )
        .with_data(json!({ "retryAfter": secs }))
    }

    /// 1507: the database refused a write (`data.reason`: `disk_full` or
    /// `read_only`).
    pub fn not_writable(why: zhima_storage::WriteRefusal) -> ApiError {
        let (reason, message) = match why {
            zhima_storage::WriteRefusal::DiskFull => (
                "disk_full",
                "The server's disk is full: nothing was changed; reads still work. Free space on the server and try again",
            ),
            zhima_storage::WriteRefusal::ReadOnly => (
                "read_only",
                "The database cannot be written (read-only or failing storage): nothing was changed; reads still work",
            ),
        };
        ApiError::new(Errno::NotWritable, message).with_data(json!({ "reason": reason }))
    }

    /// 1999 with the key asked for in `data.id`.
    pub fn member_not_found(key: Value) -> ApiError {
        ApiError::new(Errno::MemberNotFound, Errno::MemberNotFound.meaning())
            .with_data(json!({ "id": key }))
    }

    /// Maps a storage error in the context of `op`.
    pub fn storage(op: Operation) -> impl Fn(StorageError) -> ApiError {
        move |err| {
            if let Some(why) = err.write_refusal() {
                tracing::error!(error = %err, ?op, "the database refused a write");
                return ApiError::not_writable(why);
            }
            match err {
                StorageError::MemberNotFound => {
                    ApiError::new(Errno::MemberNotFound, Errno::MemberNotFound.meaning())
                }
                StorageError::Duplicate(UniqueField::PayIndex)
                | StorageError::PaymentConflict(_) => ApiError::new(
                    Errno::PaymentInsertFailed,
                    "payIndex is already recorded with a different member, amount or payType",
                )
                .with_data(json!({ "field": "payIndex" })),
                StorageError::TokenCap => ApiError::new(
                    Errno::PaymentInsertFailed,
                    "the payment would take the member's tokens past 100000000; nothing was recorded",
                )
                .with_data(json!({ "field": "amount", "reason": "token_cap" })),
                StorageError::Duplicate(field) => {
                    let errno = match op {
                        Operation::UpdateMember => Errno::MemberUpdateFailed,
                        _ => Errno::MemberInsertFailed,
                    };
                    ApiError::new(
                        errno,
                        format!("{} is already used by another member", field.wire_name()),
                    )
                    .with_data(json!({ "field": field.wire_name() }))
                }
                StorageError::Invalid(e) => ApiError::from(e),
                StorageError::Corrupt { .. } => {
                    tracing::error!(error = %err, "stored data breaks the rules");
                    ApiError::new(Errno::MemberIncomplete, Errno::MemberIncomplete.meaning())
                }
                err if err.is_transient() => {
                    tracing::warn!(error = %err, "database unavailable");
                    ApiError::new(Errno::Unavailable, Errno::Unavailable.meaning())
                }
                err => {
                    tracing::error!(error = %err, ?op, "storage failed");
                    ApiError::new(Errno::Internal, Errno::Internal.meaning())
                }
            }
        }
    }

    /// The envelope body.
    pub fn body(&self) -> Value {
        json!({ "errno": self.errno.to_string(), "errmsg": self.message, "data": self.data })
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> ApiError {
        match &err {
            DomainError::InvalidField { field, reason } => ApiError::bad_field(field, reason),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> ApiError {
        tracing::error!("blocking task failed");
        ApiError::new(Errno::Internal, Errno::Internal.meaning())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.errno, self.message)
    }
}

/// The HTTP status an errno travels with. Domain outcomes (1000–1999) are 200,
/// as the existing clients expect; transport refusals carry their own status.
pub fn http_status(errno: Errno) -> StatusCode {
    match errno {
        Errno::Unauthorized => StatusCode::UNAUTHORIZED,
        Errno::Forbidden => StatusCode::FORBIDDEN,
        Errno::RouteNotFound => StatusCode::NOT_FOUND,
        Errno::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Errno::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Errno::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        Errno::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        Errno::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        Errno::Unavailable | Errno::DoorFault => StatusCode::SERVICE_UNAVAILABLE,
        Errno::NotWritable => StatusCode::INSUFFICIENT_STORAGE,
        Errno::Success
        | Errno::MemberIncomplete
        | Errno::BadRequest
        | Errno::MemberInsertFailed
        | Errno::MemberUpdateFailed
        | Errno::PaymentInsertFailed
        | Errno::BadSeconds
        | Errno::CodeUnreadable
        | Errno::CodeForged
        | Errno::CodeUnknownKey
        | Errno::CodeNotYetValid
        | Errno::CodeExpired
        | Errno::MemberNotOk
        | Errno::MemberDeactivated
        | Errno::EntryDaysUsedUp
        | Errno::UnknownCard
        | Errno::MemberNotFound => StatusCode::OK,
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        http_status(self.errno)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if self.errno == Errno::Unauthorized {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if self.errno == Errno::Unavailable {
            response.insert_header(("Retry-After", "5"));
        }
        if self.errno == Errno::TooManyRequests {
            let secs = self.data["retryAfter"].as_u64().unwrap_or(1);
            response.insert_header(("Retry-After", secs.to_string()));
        }
        response.json(self.body())
    }
}

/// An OAuth2 endpoint's error (RFC 6749 §5.2, RFC 6750 §3), or an
/// authorization-page error.
#[derive(Debug)]
pub struct OAuthHttpError(pub zhima_oauth::OAuthError);

impl From<zhima_oauth::OAuthError> for OAuthHttpError {
    fn from(e: zhima_oauth::OAuthError) -> Self {
        OAuthHttpError(e)
    }
}

impl std::fmt::Display for OAuthHttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for OAuthHttpError {
    fn status_code(&self) -> StatusCode {
        use zhima_oauth::{OAuthError, TokenErrorKind};
        match &self.0 {
            OAuthError::Token {
                kind: TokenErrorKind::InvalidClient,
                ..
            } => StatusCode::UNAUTHORIZED,
            OAuthError::Token { .. } | OAuthError::BadClient(_) => StatusCode::BAD_REQUEST,
            OAuthError::BadAuthorizationRequest(_) => StatusCode::BAD_REQUEST,
            OAuthError::RedirectWithError(_) => StatusCode::SEE_OTHER,
            OAuthError::InvalidToken => StatusCode::UNAUTHORIZED,
            OAuthError::InsufficientScope(_) => StatusCode::FORBIDDEN,
            OAuthError::Storage(e) if e.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            OAuthError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            OAuthError::Storage(_) | OAuthError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        use zhima_oauth::OAuthError;
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header(("Cache-Control", "no-store"));
        response.insert_header(("Pragma", "no-cache"));
        let (error, description) = match &self.0 {
            OAuthError::Token { kind, basic } => {
                if *basic && self.status_code() == StatusCode::UNAUTHORIZED {
                    response.insert_header(("WWW-Authenticate", "Basic realm=\"zhima\""));
                }
                (kind.code(), kind.description())
            }
            OAuthError::RedirectWithError(url) => {
                return response.insert_header(("Location", url.as_str())).finish();
            }
            OAuthError::BadClient(_) | OAuthError::BadAuthorizationRequest(_) => {
                ("invalid_request", "The request is invalid.")
            }
            OAuthError::InvalidToken => ("invalid_token", "The access token is invalid."),
            OAuthError::InsufficientScope(_) => {
                ("insufficient_scope", "The access token lacks the scope.")
            }
            OAuthError::Storage(e) => {
                tracing::error!(error = %e, "OAuth2 request failed in storage");
                if e.is_transient() {
                    response.insert_header(("Retry-After", "5"));
                    ("temporarily_unavailable", "Try again shortly.")
                } else {
                    ("server_error", "The server failed.")
                }
            }
            OAuthError::Busy => {
                response.insert_header(("Retry-After", "1"));
                (
                    "temporarily_unavailable",
                    "Too many requests at once; retry shortly.",
                )
            }
            OAuthError::Internal => ("server_error", "The server failed."),
        };
        response.json(json!({ "error": error, "error_description": description }))
    }
}

impl ApiError {
    /// Maps a use case's error in the context of `op` (a storage error's
    /// errno depends on the operation: 1003, 1004 or 1005 for a duplicate).
    pub fn app(op: Operation) -> impl Fn(zhima_app::AppError) -> ApiError {
        move |e| match e {
            zhima_app::AppError::Storage(e) => ApiError::storage(op)(e),
            other => ApiError::from(other),
        }
    }
}

impl From<zhima_app::AppError> for ApiError {
    fn from(e: zhima_app::AppError) -> ApiError {
        match e {
            zhima_app::AppError::Refused(r) => ApiError::new(r.errno(), r.message()),
            zhima_app::AppError::Storage(e) => ApiError::storage(Operation::Read)(e),
            zhima_app::AppError::Door(zhima_door_hardware::DoorError::Stopped)
            | zhima_app::AppError::Stopping => ApiError::new(
                Errno::Unavailable,
                "the server is stopping; the door is locked",
            ),
            zhima_app::AppError::Door(e) => {
                tracing::error!(error = %e, "the door failed");
                ApiError::new(Errno::DoorFault, Errno::DoorFault.meaning())
            }
            zhima_app::AppError::Invalid { field, reason } => ApiError::bad_field(field, reason),
            zhima_app::AppError::BadSeconds(reason) => ApiError::new(
                Errno::BadSeconds,
                format!("Incorrect call to open the door: {reason}"),
            ),
        }
    }
}

/// Words of the pages, picked from a language's catalogue
/// (`|t| t.server_failed`).
pub type Words = fn(&'static crate::i18n::Texts) -> &'static str;

/// An error of the OAuth login and consent pages: an HTML page with its
/// status (and `Retry-After` when coming back later helps), or, for an
/// authorization request the client must hear about, a redirect to its
/// checked redirect URI. Never a redirect to an unchecked URI.
#[derive(Debug)]
pub enum PageError {
    /// An error page.
    Page {
        /// The HTTP status.
        status: StatusCode,
        /// What the person is told.
        message: Words,
        /// Seconds after which to try again.
        retry_after: Option<u64>,
        /// The language of the page (the handler sets the request's).
        lang: crate::i18n::Lang,
    },
    /// Back to the partner with `error` and `state` (RFC 6749 §4.1.2.1).
    Redirect(zhima_oauth::Url),
}

impl PageError {
    /// An error page.
    pub fn page(status: StatusCode, message: Words) -> PageError {
        PageError::Page {
            status,
            message,
            retry_after: None,
            lang: crate::i18n::Lang::Zh,
        }
    }

    /// The same, with `Retry-After`.
    pub fn retry_after(status: StatusCode, message: Words, secs: u64) -> PageError {
        PageError::Page {
            status,
            message,
            retry_after: Some(secs.max(1)),
            lang: crate::i18n::Lang::Zh,
        }
    }

    /// 500: the cause is in the log, never on the page.
    pub fn internal() -> PageError {
        PageError::page(StatusCode::INTERNAL_SERVER_ERROR, |t| t.server_failed)
    }

    /// The same error, on a page in `lang`.
    pub fn in_lang(self, lang: crate::i18n::Lang) -> PageError {
        match self {
            PageError::Page {
                status,
                message,
                retry_after,
                ..
            } => PageError::Page {
                status,
                message,
                retry_after,
                lang,
            },
            redirect => redirect,
        }
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::Page { message, .. } => f.write_str(message(&crate::i18n::EN)),
            PageError::Redirect(_) => f.write_str("redirect back to the partner with an error"),
        }
    }
}

impl From<zhima_oauth::OAuthError> for PageError {
    fn from(e: zhima_oauth::OAuthError) -> PageError {
        use zhima_oauth::OAuthError;
        match e {
            OAuthError::RedirectWithError(url) => PageError::Redirect(url),
            OAuthError::BadAuthorizationRequest(_) => {
                PageError::page(StatusCode::BAD_REQUEST, |t| t.unknown_partner)
            }
            e => {
                tracing::error!(error = %e, "authorization failed");
                PageError::page(StatusCode::SERVICE_UNAVAILABLE, |t| t.cannot_finish)
            }
        }
    }
}

impl From<actix_web::error::BlockingError> for PageError {
    fn from(_: actix_web::error::BlockingError) -> PageError {
        PageError::page(StatusCode::SERVICE_UNAVAILABLE, |t| t.server_busy)
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::Page { status, .. } => *status,
            PageError::Redirect(_) => StatusCode::SEE_OTHER,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            PageError::Page {
                status,
                message,
                retry_after,
                lang,
            } => {
                let mut page = crate::oauth::error_page(*status, *lang, message(lang.texts()));
                if let Some(secs) = retry_after {
                    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&secs.to_string())
                    {
                        page.headers_mut()
                            .insert(actix_web::http::header::RETRY_AFTER, v);
                    }
                }
                page
            }
            PageError::Redirect(url) => HttpResponse::SeeOther()
                .insert_header(("Location", url.as_str()))
                .insert_header(("Cache-Control", "no-store"))
                .finish(),
        }
    }
}

/// A Partner API error: `{"success": false, "message": …}` with its status.
#[derive(Debug)]
pub struct PartnerError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The message.
    pub message: String,
    /// A `WWW-Authenticate` value (401 and 403).
    pub challenge: Option<String>,
}

impl PartnerError {
    /// 401 for a request that carries no token at all: the challenge names
    /// no error (RFC 6750 §3.1).
    pub fn token_missing() -> PartnerError {
        PartnerError {
            status: StatusCode::UNAUTHORIZED,
            message: "An access token is required.".into(),
            challenge: Some("Bearer realm=\"zhima\"".into()),
        }
    }

    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> PartnerError {
        PartnerError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            challenge: None,
        }
    }
}

impl PartnerError {
    /// 500: the cause goes to the log, never to the partner.
    fn internal(cause: &dyn std::fmt::Display) -> PartnerError {
        tracing::error!(error = %cause, "partner request failed");
        PartnerError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "The server failed.".into(),
            challenge: None,
        }
    }
}

impl From<zhima_app::AppError> for PartnerError {
    fn from(e: zhima_app::AppError) -> PartnerError {
        match e {
            zhima_app::AppError::Storage(e) => PartnerError::from(e),
            other => PartnerError::internal(&other),
        }
    }
}

impl From<zhima_oauth::OAuthError> for PartnerError {
    fn from(e: zhima_oauth::OAuthError) -> PartnerError {
        use zhima_oauth::OAuthError;
        match e {
            OAuthError::InvalidToken => PartnerError {
                status: StatusCode::UNAUTHORIZED,
                message: "The access token is missing, unknown, expired or revoked.".into(),
                challenge: Some("Bearer realm=\"zhima\", error=\"invalid_token\"".into()),
            },
            OAuthError::InsufficientScope(scope) => PartnerError {
                status: StatusCode::FORBIDDEN,
                message: format!(
                    "The access token does not grant the scope {:?}.",
                    scope.as_str()
                ),
                challenge: Some(format!(
                    "Bearer realm=\"zhima\", error=\"insufficient_scope\", scope=\"{}\"",
                    scope.as_str()
                )),
            },
            OAuthError::Storage(e) => PartnerError::from(e),
            other => PartnerError::internal(&other),
        }
    }
}

impl From<StorageError> for PartnerError {
    fn from(e: StorageError) -> PartnerError {
        tracing::error!(error = %e, "partner request failed in storage");
        if e.write_refusal().is_some() {
            PartnerError {
                status: StatusCode::INSUFFICIENT_STORAGE,
                message: "The database cannot be written now; nothing was changed.".into(),
                challenge: None,
            }
        } else if e.is_transient() {
            PartnerError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "The database is unavailable; try again shortly.".into(),
                challenge: None,
            }
        } else {
            PartnerError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: "The server failed.".into(),
                challenge: None,
            }
        }
    }
}

impl std::fmt::Display for PartnerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl ResponseError for PartnerError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.insert_header(("Cache-Control", "no-store"));
        if let Some(c) = &self.challenge {
            response.insert_header(("WWW-Authenticate", c.as_str()));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header(("Retry-After", "5"));
        }
        response.json(json!({ "success": false, "message": self.message }))
    }
}

/// A success envelope: errno 1000, a message and `data`.
pub fn success(message: &str, data: Value) -> HttpResponse {
    HttpResponse::Ok()
        .json(json!({ "errno": Errno::Success.to_string(), "errmsg": message, "data": data }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(http_status(Errno::BadRequest), StatusCode::OK);
        assert_eq!(http_status(Errno::MemberNotFound), StatusCode::OK);
        assert_eq!(http_status(Errno::Unauthorized), StatusCode::UNAUTHORIZED);
        assert_eq!(http_status(Errno::Forbidden), StatusCode::FORBIDDEN);
        assert_eq!(
            http_status(Errno::PayloadTooLarge),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            http_status(Errno::Unavailable),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn duplicates_depend_on_the_operation() {
        let dup = || StorageError::Duplicate(UniqueField::NickName);
        assert_eq!(
            ApiError::storage(Operation::CreateMember)(dup()).errno,
            Errno::MemberInsertFailed
        );
        assert_eq!(
            ApiError::storage(Operation::UpdateMember)(dup()).errno,
            Errno::MemberUpdateFailed
        );
        let pay = StorageError::PaymentConflict("x".into());
        assert_eq!(
            ApiError::storage(Operation::AddPayment)(pay).errno,
            Errno::PaymentInsertFailed
        );
        let pay = StorageError::Duplicate(UniqueField::PayIndex);
        assert_eq!(
            ApiError::storage(Operation::CreateMember)(pay).errno,
            Errno::PaymentInsertFailed
        );
        let down = StorageError::Unavailable("x".into());
        assert_eq!(
            ApiError::storage(Operation::Read)(down).errno,
            Errno::Unavailable
        );
    }

    #[test]
    fn envelope_has_string_errno() {
        let e = ApiError::bad_field("basicInfo.nickName", "is required");
        let body = e.body();
        assert_eq!(body["errno"], "1002");
        assert_eq!(body["errmsg"], "basicInfo.nickName: is required");
        assert_eq!(body["data"]["field"], "basicInfo.nickName");
    }
}
