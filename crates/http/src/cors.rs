//! CORS for browser apps registered as public partners: on the token and
//! revocation endpoints, the OAuth metadata and the Partner API, for the
//! origins in `oauth.cors_origins` only. The Member API, the door and the
//! login pages get no CORS headers at all.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::HttpResponse;

/// Whether CORS applies to this path at all.
pub fn cors_path(path: &str) -> bool {
    matches!(
        path,
        "/oauth/token" | "/oauth/revoke" | "/.well-known/oauth-authorization-server"
    ) || path.starts_with("/partner/1/")
}

/// The CORS middleware (`App::wrap(from_fn(cors))`).
pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let allowed = origin.filter(|o| {
        cors_path(req.path())
            && req
                .app_data::<actix_web::web::Data<crate::AppState>>()
                .is_some_and(|s| s.oauth.cors_origins.iter().any(|c| c == o))
    });
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight && cors_path(req.path()) {
        let response = match &allowed {
            Some(origin) => {
                let mut r = HttpResponse::NoContent();
                r.insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"))
                    .insert_header((
                        header::ACCESS_CONTROL_ALLOW_HEADERS,
                        "Authorization, Content-Type, Idempotency-Key",
                    ))
                    .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"));
                with_origin(r.finish(), origin)
            }
            // an origin not configured learns nothing and gets no grant
            None => HttpResponse::Forbidden()
                .insert_header((header::VARY, "Origin"))
                .finish(),
        };
        return Ok(req.into_response(response));
    }
    let mut res = next.call(req).await?.map_into_boxed_body();
    if let Some(origin) = allowed {
        let headers = res.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&origin) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        }
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("WWW-Authenticate, Retry-After"),
        );
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    Ok(res)
}

fn with_origin(mut response: HttpResponse, origin: &str) -> HttpResponse {
    if let Ok(v) = HeaderValue::from_str(origin) {
        response
            .headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    response
        .headers_mut()
        .append(header::VARY, HeaderValue::from_static("Origin"));
    response
}
