#![doc = include_str!("../README.md")]

pub mod auth;
pub mod body;
pub mod console;
pub mod cors;
pub mod door;
pub mod error;
pub mod i18n;
mod members;
pub mod net;
pub mod oauth;
pub mod observe;
pub mod partner;
pub mod qr;
pub mod request;
pub mod wire;

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use chrono_tz::Tz;
use zhima_domain::plan::Plans;
use zhima_domain::Errno;
use zhima_storage::Store;

use crate::error::ApiError;

pub use zhima_domain::time::Clock;

/// What every handler can reach.
#[derive(Debug)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The plan catalogue.
    pub plans: Plans,
    /// The space's time zone (for `YYYYMMDDHHMM` fields and calendar steps).
    pub tz: Tz,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// API-key checks (with a one-second cache of successes).
    pub keys: Arc<zhima_app::keys::ApiKeys>,
    /// The door this server drives.
    pub door: DoorState,
    /// Member QR codes: keys, image links, scan settings.
    pub qr: qr::QrState,
    /// The OAuth2 provider and its pages.
    pub oauth: oauth::OAuthState,
    /// Counters for `/metrics` (shared with the entrance's access hook).
    pub metrics: Arc<observe::Metrics>,
    /// Logging in (with the attempt limiter).
    pub logins: Arc<zhima_app::login::Logins>,
    /// Web sessions of the console and the member pages.
    pub sessions: Arc<zhima_app::sessions::Sessions>,
    /// The token wallets: partner profiles, VIP purchases, gifts.
    pub wallet: Arc<zhima_app::wallet::Wallet>,
    /// The members' use cases: read, create, update, record a payment.
    pub members: Arc<zhima_app::members::Members>,
    /// The door's use cases: admitting people, writing the access log.
    pub entrance: Arc<zhima_app::entrance::Entrance>,
    /// The admins' use cases: API keys, partners, passwords, tags.
    pub admin: Arc<zhima_app::admin::Admin>,
    /// The audit log of console and CLI changes.
    pub audit: zhima_app::audit::Audit,
    /// Notifications (queues a member's QR code by email); `None` when no
    /// mail server is configured.
    pub notifier: Option<Arc<zhima_app::notify::Notifier>>,
    /// Proxies whose forwarded headers are believed.
    pub proxies: net::TrustedProxies,
    /// How long a request body may take to arrive (`http.body_timeout_secs`).
    pub body_timeout: std::time::Duration,
}

impl AppState {
    /// The client's address for limiters and logs (see [`net::TrustedProxies`]).
    pub fn peer_ip(&self, req: &actix_web::HttpRequest) -> String {
        self.proxies
            .client_ip(req)
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }
}

/// The door and its settings.
#[derive(Debug)]
pub struct DoorState {
    /// The controller (timing rules over the driver).
    pub controller: zhima_door_hardware::DoorController,
    /// The door's name in the access log (`door.name`).
    pub name: String,
    /// The most seconds `POST /open/seconds` accepts (`door.max_unlock_secs`).
    pub max_unlock_secs: u32,
    /// `/door/scan` and `/door/rfid` requests per API key
    /// (`door.scan_per_sec`, `door.scan_burst`); over it they answer 1429.
    pub scan_limit: RateLimiter,
}

/// Token buckets keyed by API key id, on the process's monotonic clock.
#[derive(Debug)]
pub struct RateLimiter {
    origin: std::time::Instant,
    buckets: std::sync::Mutex<zhima_domain::limit::Buckets<i64>>,
}

impl RateLimiter {
    /// A limiter for `rate`, tracking up to `capacity` keys.
    pub fn new(rate: zhima_domain::limit::Rate, capacity: usize) -> RateLimiter {
        RateLimiter {
            origin: std::time::Instant::now(),
            buckets: std::sync::Mutex::new(zhima_domain::limit::Buckets::new(rate, capacity)),
        }
    }

    /// Counts one request of `key` now: `Ok`, or how long to wait.
    pub fn take(&self, key: i64) -> Result<(), std::time::Duration> {
        let now = self.origin.elapsed();
        zhima_domain::sync::lock(&self.buckets).take(key, now)
    }
}

/// How many API keys the door-scan limit tracks at once.
pub const SCAN_LIMIT_KEYS: usize = 1024;

/// A resource whose unsupported methods answer 405 with the envelope.
pub(crate) fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(|| async {
        Err::<HttpResponse, _>(ApiError::new(
            Errno::MethodNotAllowed,
            Errno::MethodNotAllowed.meaning(),
        ))
    }))
}

/// Every route of zhima, for `App::configure`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz").route(web::get().to(health)))
        .service(resource("/readyz").route(web::get().to(ready)))
        .service(resource("/metrics").route(web::get().to(metrics)))
        .service(resource("/openapi.json").route(web::get().to(openapi)));
    members::config(cfg);
    door::config(cfg);
    qr::config(cfg);
    oauth::config(cfg);
    partner::config(cfg);
    console::config(cfg);
}

/// The answer for a path no route matches: 404 with the envelope (errno 1404).
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        Errno::RouteNotFound,
        Errno::RouteNotFound.meaning(),
    ))
}

/// The OpenAPI 3.1 description of the Member API, the door routes and the
/// Partner API (`docs/openapi.json`, compiled in).
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// `GET /openapi.json`: [`OPENAPI`], for client generators. No credential:
/// it describes routes, never data.
async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            actix_web::http::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        ))
        .insert_header((
            actix_web::http::header::CACHE_CONTROL,
            "public, max-age=3600",
        ))
        .body(OPENAPI)
}

/// `GET /healthz`: the process is up. No database work, no authentication.
async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// `GET /metrics` (an `admin` key): Prometheus text.
async fn metrics(
    state: web::Data<AppState>,
    _admin: auth::Authorized<auth::Admin>,
) -> HttpResponse {
    let (connections, idle, max) = state.store.pool_state();
    let door = &state.door.controller;
    let st = state.clone();
    let outbox = web::block(move || st.store.outbox_counts()).await;
    let mut body = state.metrics.render(
        observe::PoolGauge {
            connections,
            idle,
            max,
        },
        door.is_unlocked(),
        door.health().ready(),
    );
    // the outbox of notifications (sent and failed count up; pending is the
    // backlog an SMTP outage leaves)
    if let Ok(Ok(c)) = outbox {
        body.push_str(
            "# HELP zhima_notifications Messages in the outbox of notifications, by state.\n\
             # TYPE zhima_notifications gauge\n",
        );
        for (name, n) in [
            ("pending", c.pending),
            ("sending", c.sending),
            ("sent", c.sent),
            ("failed", c.failed),
        ] {
            body.push_str(&format!("zhima_notifications{{state=\"{name}\"}} {n}\n"));
        }
    }
    body.push_str(&state.metrics.render_backup(state.clock.now().timestamp()));
    HttpResponse::Ok()
        .insert_header((
            actix_web::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        ))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(body)
}

/// `GET /readyz`: the database answers (within the pool's connect timeout),
/// every migration is applied, and the door can lock. 200 when all hold,
/// else 503 naming what does not; no authentication, no secret in it.
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let st = state.clone();
    let pending = web::block(move || st.store.pending_migrations()).await;
    let (database, migrations) = match pending {
        Ok(Ok(0)) => ("ok", "current"),
        Ok(Ok(_)) => ("ok", "pending"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            ("unreachable", "unknown")
        }
        Err(_) => ("unreachable", "unknown"),
    };
    let door = state.door.controller.health();
    let door_state = if door.stopped {
        "stopped"
    } else if door.lock_failing {
        "lock_failing"
    } else if door.switch_failing {
        "switch_unreadable"
    } else {
        "ok"
    };
    let ok = database == "ok" && migrations == "current" && door.ready();
    let body = serde_json::json!({
        "status": if ok { "ready" } else { "not_ready" },
        "database": database,
        "migrations": migrations,
        "door": door_state,
    });
    let mut response = if ok {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    response
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(body)
}
