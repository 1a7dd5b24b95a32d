//! One log line per request: request id, method, route pattern, status and
//! latency. The route is the pattern (`/api/v1.0/member/openid/{openid}`),
//! never the path or the query string, so no openid, image-link signature,
//! access token or scanned code reaches a log line.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use std::time::Instant;
use zhima_domain::sync::lock;

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
    let method = method_label(req.method());
    let metrics = req
        .app_data::<actix_web::web::Data<crate::AppState>>()
        .cloned();
    let result = next.call(req).await;
    let elapsed = started.elapsed();
    let latency_ms = elapsed.as_secs_f64() * 1e3;
    match result {
        Ok(mut res) => {
            let route = res
                .request()
                .match_pattern()
                .unwrap_or_else(|| "(no route)".to_owned());
            let status = res.status().as_u16();
            if let Some(state) = &metrics {
                state
                    .metrics
                    .observe_request(method, &route, status, elapsed);
            }
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

/// The method as a metrics label and log field: one of the standard
/// methods, or `OTHER`, so no client-chosen text (actix accepts any token
/// as a method) becomes a label or grows `/metrics`.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::HEAD, "HEAD"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(m, _)| m == method)
        .map_or("OTHER", |(_, label)| label)
}

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default, Clone)]
struct Latency {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Counters for `/metrics`, kept in memory since the process started.
/// Labels have bounded values: route patterns (not paths), status codes,
/// access-log reasons (a fixed vocabulary).
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<HashMap<(String, String, u16), u64>>,
    latency: Mutex<HashMap<(String, String), Latency>>,
    access: Mutex<HashMap<(&'static str, &'static str, String), u64>>,
    tokens_issued: AtomicU64,
    /// When the last good scheduled backup was made (Unix seconds; 0: none
    /// since the process started).
    backup_last: std::sync::atomic::AtomicI64,
    backup_failures: AtomicU64,
}

/// The database pool at one instant.
#[derive(Debug, Clone, Copy)]
pub struct PoolGauge {
    /// Open connections.
    pub connections: u32,
    /// Of which idle.
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

/// A label value with `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Counts one answered request.
    pub fn observe_request(
        &self,
        method: &str,
        route: &str,
        status: u16,
        elapsed: std::time::Duration,
    ) {
        *lock(&self.requests)
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        let secs = elapsed.as_secs_f64();
        let mut latency = lock(&self.latency);
        let l = latency
            .entry((method.to_owned(), route.to_owned()))
            .or_default();
        l.count += 1;
        l.sum += secs;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                l.buckets[i] += 1;
            }
        }
    }

    /// Counts one access-log event (unlocks, refusals, door faults).
    pub fn observe_access(&self, method: &'static str, outcome: &'static str, reason: &str) {
        *lock(&self.access)
            .entry((method, outcome, reason.to_owned()))
            .or_default() += 1;
    }

    /// Notes a scheduled backup: made at `at` (Unix seconds), or failed.
    pub fn observe_backup(&self, made_at: Option<i64>) {
        match made_at {
            Some(at) => self.backup_last.store(at, Ordering::Relaxed),
            None => {
                self.backup_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The backup gauges at `now` (Unix seconds): the age of the last good
    /// backup (absent before the first) and the failures.
    pub fn render_backup(&self, now: i64) -> String {
        let mut out = String::new();
        let last = self.backup_last.load(Ordering::Relaxed);
        if last > 0 {
            let _ = writeln!(
                out,
                "# HELP zhima_backup_age_seconds Seconds since the last good scheduled backup.\n\
                 # TYPE zhima_backup_age_seconds gauge\n\
                 zhima_backup_age_seconds {}",
                (now - last).max(0)
            );
        }
        let _ = writeln!(
            out,
            "# HELP zhima_backup_failures_total Scheduled backups that failed.\n\
             # TYPE zhima_backup_failures_total counter\n\
             zhima_backup_failures_total {}",
            self.backup_failures.load(Ordering::Relaxed)
        );
        out
    }

    /// Counts one token response (code or refresh grant).
    pub fn observe_tokens_issued(&self) {
        self.tokens_issued.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition (version 0.0.4).
    pub fn render(&self, pool: PoolGauge, door_unlocked: bool, door_ready: bool) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP zhima_http_requests_total Answered HTTP requests."
        );
        let _ = writeln!(out, "# TYPE zhima_http_requests_total counter");
        let mut requests: Vec<_> = lock(&self.requests)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        requests.sort();
        for ((method, route, status), n) in requests {
            let _ = writeln!(
                out,
                "zhima_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                label(&method),
                label(&route)
            );
        }
        let _ = writeln!(
            out,
            "# HELP zhima_http_request_duration_seconds Time from request to response."
        );
        let _ = writeln!(out, "# TYPE zhima_http_request_duration_seconds histogram");
        let mut latency: Vec<_> = lock(&self.latency)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        latency.sort_by(|a, b| a.0.cmp(&b.0));
        for ((method, route), l) in latency {
            let labels = format!("method=\"{}\",route=\"{}\"", label(&method), label(&route));
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "zhima_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    l.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "zhima_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                l.count
            );
            let _ = writeln!(
                out,
                "zhima_http_request_duration_seconds_sum{{{labels}}} {}",
                l.sum
            );
            let _ = writeln!(
                out,
                "zhima_http_request_duration_seconds_count{{{labels}}} {}",
                l.count
            );
        }
        let _ = writeln!(out, "# HELP zhima_access_events_total Access-log events written by this process (unlocks, refusals), by method, outcome and reason.");
        let _ = writeln!(out, "# TYPE zhima_access_events_total counter");
        let mut access: Vec<_> = lock(&self.access)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        access.sort();
        for ((method, outcome, reason), n) in access {
            let _ = writeln!(
                out,
                "zhima_access_events_total{{method=\"{method}\",outcome=\"{outcome}\",reason=\"{}\"}} {n}",
                label(&reason)
            );
        }
        let _ = writeln!(out, "# HELP zhima_oauth_token_responses_total Successful token-endpoint answers (access and refresh tokens issued).");
        let _ = writeln!(out, "# TYPE zhima_oauth_token_responses_total counter");
        let _ = writeln!(
            out,
            "zhima_oauth_token_responses_total {}",
            self.tokens_issued.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP zhima_db_pool_connections Database pool connections by state."
        );
        let _ = writeln!(out, "# TYPE zhima_db_pool_connections gauge");
        let _ = writeln!(
            out,
            "zhima_db_pool_connections{{state=\"idle\"}} {}",
            pool.idle
        );
        let _ = writeln!(
            out,
            "zhima_db_pool_connections{{state=\"in_use\"}} {}",
            pool.connections.saturating_sub(pool.idle)
        );
        let _ = writeln!(
            out,
            "zhima_db_pool_connections{{state=\"max\"}} {}",
            pool.max
        );
        let _ = writeln!(
            out,
            "# HELP zhima_door_unlocked Whether the door is unlocked now."
        );
        let _ = writeln!(out, "# TYPE zhima_door_unlocked gauge");
        let _ = writeln!(out, "zhima_door_unlocked {}", u8::from(door_unlocked));
        let _ = writeln!(
            out,
            "# HELP zhima_door_ready Whether the door can lock (no lock failure, not stopped)."
        );
        let _ = writeln!(out, "# TYPE zhima_door_ready gauge");
        let _ = writeln!(out, "zhima_door_ready {}", u8::from(door_ready));
        out
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
