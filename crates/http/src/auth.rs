//! API-key authentication: `Authorization: Bearer <key>` with a scope per route.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};
use zhima_domain::scope::Scope;
use zhima_domain::Errno;
use zhima_storage::ApiKey;

use crate::error::{ApiError, Operation};
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

/// An extractor that succeeds only for a live API key holding scope `S`:
/// 401 (errno 1401) without a key or with an unknown or revoked one, 403
/// (errno 1403) with a key lacking the scope.
#[derive(Debug)]
pub struct Authorized<S> {
    /// The key that was presented.
    pub key: ApiKey,
    scope: PhantomData<S>,
}

/// The bearer token of a request, if it has exactly one well-formed one.
fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let mut values = req.headers().get_all("Authorization");
    let value = values.next().ok_or_else(|| {
        ApiError::new(
            Errno::Unauthorized,
            "Authorization: Bearer <api key> is required",
        )
    })?;
    if values.next().is_some() {
        return Err(ApiError::new(
            Errno::Unauthorized,
            "more than one Authorization header",
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| ApiError::new(Errno::Unauthorized, "malformed Authorization header"))?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.len() > 256 {
        return Err(ApiError::new(
            Errno::Unauthorized,
            "Authorization: Bearer <api key> is required",
        ));
    }
    Ok(token.to_owned())
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
            let key = web::block(move || state.store.authenticate_api_key(&token))
                .await?
                .map_err(ApiError::storage(Operation::Read))?
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
