//! One log line per request: request id, method, route pattern, status and
//! latency. The route is the pattern (`/api/v1.0/member/openid/{openid}`),
//! never the path or the query string, so no openid, image-link signature,
//! access token or scanned code reaches a log line.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;

/// The header that carries the request id, in and out.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A caller's `X-Request-Id` if it is 1–64 of `[A-Za-z0-9._-]`, else a new
/// random one (16 hex digits).
fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let mut bytes = [0u8; 8];
            if getrandom::fill(&mut bytes).is_err() {
                return "unknown".to_owned();
            }
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        })
}

/// The request-log middleware (`App::wrap(from_fn(request_log))`).
pub async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = request_id(&req);
    let method = req.method().clone();
    let result = next.call(req).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    match result {
        Ok(mut res) => {
            let route = res
                .request()
                .match_pattern()
                .unwrap_or_else(|| "(no route)".to_owned());
            let status = res.status().as_u16();
            if let Ok(v) = HeaderValue::from_str(&id) {
                res.headers_mut().insert(REQUEST_ID, v);
            }
            tracing::info!(
                target: "zhima::request",
                request_id = %id,
                %method,
                %route,
                status,
                latency_ms = format_args!("{latency_ms:.2}"),
                "request"
            );
            Ok(res)
        }
        Err(e) => {
            let status = e.as_response_error().status_code().as_u16();
            tracing::info!(
                target: "zhima::request",
                request_id = %id,
                %method,
                route = "(error)",
                status,
                latency_ms = format_args!("{latency_ms:.2}"),
                "request"
            );
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use actix_web::middleware::from_fn;
    use actix_web::test as atest;
    use actix_web::{web, App, HttpResponse};
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[actix_web::test]
    async fn one_line_per_request_with_the_pattern_and_never_the_secrets() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = atest::init_service(App::new().wrap(from_fn(request_log)).route(
            "/member/openid/{openid}",
            web::get().to(|| async { HttpResponse::Ok().finish() }),
        ))
        .await;
        let req = atest::TestRequest::get()
            .uri("/member/openid/oSECRETOPENID?access_token=TOKEN123&sig=SIG456")
            .insert_header(("Authorization", "Bearer BEARER789"))
            .to_request();
        let res = atest::call_service(&app, req).await;
        let id = res
            .headers()
            .get(&REQUEST_ID)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(id.len(), 16);
        let req = atest::TestRequest::get()
            .uri("/nowhere")
            .insert_header(("X-Request-Id", "desk-42"))
            .to_request();
        let res = atest::call_service(&app, req).await;
        assert_eq!(res.headers().get(&REQUEST_ID).unwrap(), "desk-42");

        let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 2, "{log}");
        assert!(lines[0].contains("route=/member/openid/{openid}"), "{log}");
        assert!(
            lines[0].contains("status=200") && lines[0].contains(&id),
            "{log}"
        );
        assert!(
            lines[1].contains("status=404") && lines[1].contains("desk-42"),
            "{log}"
        );
        for secret in ["oSECRETOPENID", "TOKEN123", "SIG456", "BEARER789"] {
            assert!(!log.contains(secret), "{secret} leaked: {log}");
        }
    }
}
