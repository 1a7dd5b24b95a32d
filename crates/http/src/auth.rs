//! API-key authentication: `Authorization: Bearer <key>` with a scope per route.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Instant;

use actix_web::{web, FromRequest, HttpRequest};
use zhima_domain::scope::Scope;
use zhima_domain::Errno;
use zhima_storage::ApiKey;

use crate::error::{ApiError, Operation};
use crate::request::BearerError;
use crate::AppState;

/// A scope a route requires, as a type.
pub trait RequiredScope {
    /// The scope.
    const SCOPE: Scope;
}

/// `member:read`.
#[derive(Debug)]
pub struct MemberRead;
impl RequiredScope for MemberRead {
    const SCOPE: Scope = Scope::MemberRead;
}

/// `member:write`.
#[derive(Debug)]
pub struct MemberWrite;
impl RequiredScope for MemberWrite {
    const SCOPE: Scope = Scope::MemberWrite;
}

/// `door:open`.
#[derive(Debug)]
pub struct DoorOpen;
impl RequiredScope for DoorOpen {
    const SCOPE: Scope = Scope::DoorOpen;
}

/// `admin`.
#[derive(Debug)]
pub struct Admin;
impl RequiredScope for Admin {
    const SCOPE: Scope = Scope::Admin;
}

/// An extractor that succeeds only for a live API key holding scope `S`:
/// 401 (errno 1401) without a key or with an unknown or revoked one, 403
/// (errno 1403) with a key lacking the scope.
#[derive(Debug)]
pub struct Authorized<S> {
    /// The key that was presented.
    pub key: ApiKey,
    scope: PhantomData<S>,
}

/// The API key of a request, if it has exactly one well-formed one.
fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let required = || {
        ApiError::new(
            Errno::Unauthorized,
            "Authorization: Bearer <api key> is required",
        )
    };
    match crate::request::bearer(req) {
        Ok(Some(key)) => Ok(key),
        Ok(None) | Err(BearerError::Malformed) => Err(required()),
        Err(BearerError::Repeated) => Err(ApiError::new(
            Errno::Unauthorized,
            "more than one Authorization header",
        )),
    }
}

impl<S: RequiredScope + 'static> FromRequest for Authorized<S> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let token = bearer(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let token = token?;
            let state =
                state.ok_or_else(|| ApiError::new(Errno::Internal, Errno::Internal.meaning()))?;
            let key = state
                .keys
                .check(&token, Instant::now())
                .await
                .map_err(ApiError::app(Operation::Read))?
                .ok_or_else(|| ApiError::new(Errno::Unauthorized, "unknown or revoked API key"))?;
            if !key.scopes.allows(S::SCOPE) {
                return Err(ApiError::new(
                    Errno::Forbidden,
                    format!("this API key lacks the scope {}", S::SCOPE),
                ));
            }
            Ok(Authorized {
                key,
                scope: PhantomData,
            })
        })
    }
}
