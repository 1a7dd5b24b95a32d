#![doc = include_str!("../README.md")]

pub mod backups;
pub mod doctor;
pub mod keys;
#[cfg(feature = "legacy-import")]
pub mod legacy_mysql;
pub mod mail;
pub mod pgdump;
mod scanner;
pub mod settings;
pub mod systemd;
pub mod webhook;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use chrono::{DateTime, Utc};
use zhima_domain::access::{AccessMethod, NewAccessEvent, Outcome};
use zhima_door_hardware::{DoorController, DoorDriver, DoorError, DoorEvent};
use zhima_http::oauth::OAuthState;
use zhima_http::{AppState, Clock, DoorState};
use zhima_oauth::Provider;
use zhima_storage::{StorageError, Store};

use crate::settings::Settings;

/// The system clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Storage(#[from] StorageError),
    /// The door could not be driven to locked (or its driver cannot run here).
    #[error("door: {0}")]
    Door(#[from] DoorError),
    /// The QR signing key could not be had.
    #[error("{0}")]
    Key(#[from] keys::KeyError),
    /// The SMTP settings cannot make a mailer.
    #[error("{0}")]
    Mail(String),
    /// The SQLite database's lock file could not be taken.
    #[error("{0}")]
    Lock(String),
    /// The address could not be bound.
    #[error("http.bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Opens the database named in the settings and applies pending migrations.
pub fn open_store(settings: &Settings) -> Result<Store, StorageError> {
    let store = Store::open(settings.database_url.expose(), &settings.store)?;
    let applied = store.migrate()?;
    for name in applied {
        tracing::info!(migration = %name, "applied migration");
    }
    Ok(store)
}

/// Opens the configured door driver, which drives the relay to *locked*
/// before it returns. The first thing `zhima serve` does.
pub fn open_door(settings: &Settings) -> Result<Arc<dyn DoorDriver>, DoorError> {
    let driver = zhima_door_hardware::open_driver(&settings.door.driver)?;
    tracing::info!(driver = driver.name(), door = %settings.door.name, "door locked");
    Ok(driver)
}

/// The access-log entry for something the door did on its own.
pub fn door_event(door: &str, event: &DoorEvent) -> NewAccessEvent {
    let outcome = match event {
        DoorEvent::HeldOpen { .. } => Outcome::Event,
        DoorEvent::Fault { .. } => Outcome::Fault,
    };
    NewAccessEvent::new(
        event.at(),
        door,
        AccessMethod::Door,
        outcome,
        event.reason(),
    )
    .detail(event.detail())
}

/// Starts the door controller on `driver`. Door events go through a channel
/// to a task that writes them to the access log (so the controller never
/// waits for the database).
fn start_door(
    settings: &Settings,
    driver: Arc<dyn DoorDriver>,
    clock: Arc<dyn Clock>,
    store: Store,
) -> Result<DoorController, DoorError> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<NewAccessEvent>();
    let name = settings.door.name.clone();
    let controller = DoorController::start(
        driver,
        settings.door.rules,
        clock,
        Arc::new(move |event| {
            let _ = tx.send(door_event(&name, &event));
        }),
    )?;
    tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            let store = store.clone();
            let written = tokio::task::spawn_blocking(move || store.record_access(&event)).await;
            if !matches!(written, Ok(Ok(_))) {
                tracing::error!("could not write a door event to the access log");
            }
        }
    });
    Ok(controller)
}

/// A built, bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
    door: DoorController,
    /// The SQLite database's lock, held shared until the server has stopped.
    _lock: Option<zhima_app::backup::ServingLock>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Locks the door, opens and migrates the database, binds `http.bind`
    /// (port 0 picks a free port), and builds the server. Call it inside a
    /// tokio runtime (the door's timer runs there).
    pub fn build(settings: &Settings, clock: Arc<dyn Clock>) -> Result<Application, StartError> {
        let driver = open_door(settings)?;
        Application::build_with_door(settings, clock, driver)
    }

    /// As [`Application::build`], on a door driver the caller opened (and
    /// locked) already; tests pass a simulated door they can inspect.
    pub fn build_with_door(
        settings: &Settings,
        clock: Arc<dyn Clock>,
        driver: Arc<dyn DoorDriver>,
    ) -> Result<Application, StartError> {
        driver.set_relay(zhima_door_hardware::Relay::Locked)?;
        let seed = keys::seed(&settings.qr)?;
        let qr = keys::qr_state_from_seed(&settings.qr, &seed);
        // held shared while serving: `zhima restore` refuses while it is
        let lock = match zhima_storage::Target::parse(settings.database_url.expose())? {
            zhima_storage::Target::Sqlite(path) => Some(
                zhima_app::backup::ServingLock::take(&path)
                    .map_err(|e| StartError::Lock(e.to_string()))?,
            ),
            zhima_storage::Target::Postgres(_) => None,
        };
        let store = open_store(settings)?;
        let provider = Provider::new(store.clone(), settings.oauth.clone());
        let admin = Arc::new(zhima_app::admin::Admin::new(
            store.clone(),
            provider.clone(),
        ));
        let oauth = OAuthState::new(
            provider,
            keys::ticket_key(&seed),
            settings.oauth_issuer.clone(),
            settings.cors_origins.clone(),
        );
        let door = start_door(settings, driver, clock.clone(), store.clone())?;
        let listener = TcpListener::bind(&settings.bind).map_err(|source| StartError::Bind {
            addr: settings.bind.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartError::Bind {
                addr: settings.bind.clone(),
                source,
            })?
            .port();
        let metrics = Arc::new(zhima_http::observe::Metrics::default());
        let counted = metrics.clone();
        let entrance = Arc::new(zhima_app::entrance::Entrance::new(
            store.clone(),
            settings.plans.clone(),
            settings.timezone,
            qr.keyring.clone(),
            door.clone(),
            zhima_app::entrance::EntranceSettings {
                door: settings.door.name.clone(),
                entry: settings.qr.entry,
                replay_window: settings.qr.replay_window,
            },
            Arc::new(move |event: &NewAccessEvent| {
                counted.observe_access(
                    event.method.as_str(),
                    event.outcome.as_str(),
                    &event.reason,
                );
            }),
        ));
        let members = Arc::new(zhima_app::members::Members::new(
            store.clone(),
            settings.plans.clone(),
            settings.timezone,
        ));
        let logins = Arc::new(zhima_app::login::Logins::new(store.clone()));
        let keys = Arc::new(zhima_app::keys::ApiKeys::new(store.clone()));
        let sessions = Arc::new(zhima_app::sessions::Sessions::new(
            store.clone(),
            logins.clone(),
        ));
        let mailer: Option<Arc<dyn zhima_app::notify::Mailer>> = match &settings.smtp {
            None => {
                tracing::info!(
                    "smtp.host is not set: no email is sent (reminders and receipts are off)"
                );
                None
            }
            Some(smtp) => Some(Arc::new(
                mail::SmtpMailer::new(smtp).map_err(StartError::Mail)?,
            )),
        };
        let mut notifier = zhima_app::notify::Notifier::new(
            store.clone(),
            members.clone(),
            settings.notify.notifier.clone(),
        )
        .with_qr(Arc::new(mail::SignedQr::from_seed(&settings.qr, &seed)))
        .with_webhooks(
            keys::webhook_key_from_seed(&seed),
            Arc::new(webhook::HttpPoster::new().map_err(StartError::Mail)?),
        );
        if mailer.is_none() {
            notifier = notifier.without_email();
        }
        if let Some((zh, en)) = settings.notify.words {
            notifier = notifier.with_words(zh, en);
        }
        let notifier = Arc::new(notifier);
        let state = web::Data::new(AppState {
            notifier: mailer.is_some().then(|| notifier.clone()),
            admin,
            audit: zhima_app::audit::Audit::new(store.clone()),
            logins,
            sessions,
            wallet: Arc::new(zhima_app::wallet::Wallet::new(
                store.clone(),
                settings.partner,
                settings.timezone,
            )),
            store,
            plans: settings.plans.clone(),
            tz: settings.timezone,
            clock,
            keys,
            door: DoorState {
                controller: door.clone(),
                name: settings.door.name.clone(),
                max_unlock_secs: settings.door.max_unlock_secs,
                scan_limit: zhima_http::RateLimiter::new(
                    settings.door.scan_limit,
                    zhima_http::SCAN_LIMIT_KEYS,
                ),
            },
            qr,
            oauth,
            metrics,
            entrance,
            members,
            proxies: settings.trusted_proxies.clone(),
            body_timeout: settings.body_timeout,
        });
        if settings.oauth_issuer.is_none() && !bind_is_loopback(&settings.bind) {
            tracing::warn!(
                bind = %settings.bind,
                "oauth.issuer is not set on a non-loopback address: the OAuth metadata names the \
                 Host each request gives; set oauth.issuer to the public https URL in production"
            );
        }
        if let Some(source) = &settings.door.scanner {
            scanner::start(source.clone(), state.clone());
        }
        if let Some(backup) = &settings.backup {
            tokio::spawn(backups::run(
                backups::Database::serving(&settings.database_url, &state.store),
                backup.clone(),
                settings.qr.key.file().map(std::path::Path::to_path_buf),
                settings.source_file.clone(),
                settings.timezone,
                state.clock.clone(),
                state.metrics.clone(),
            ));
        }
        tokio::spawn(mail::run(
            notifier,
            mailer,
            state.clock.clone(),
            settings.notify.sweep_at,
            settings.notify.deliver_every,
        ));
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(zhima_http::cors::cors))
                .wrap(actix_web::middleware::from_fn(
                    zhima_http::observe::request_log,
                ))
                .app_data(state.clone())
                .configure(zhima_http::configure)
                .default_service(web::to(zhima_http::not_found))
        })
        .shutdown_timeout(10)
        // SIGINT/SIGTERM are handled in run_until_stopped: the door locks
        // first, then the server drains.
        .disable_signals()
        // Blocking work (database calls) beyond the pool's connections would
        // only wait for one; more threads cost memory and thrash. The limit
        // is per worker, so the workers together have more threads than
        // connections: fewer (the pool shared out among them) kept 11 MB
        // less resident under the PostgreSQL read benchmark, but then the
        // password gate (credentials::ADMITTED) never saw a flood queue up
        // and refused nothing (tests/processes/flood.rs failed).
        .worker_max_blocking_threads(settings.store.pool_size.max(2) as usize);
        if settings.workers > 0 {
            server = server.workers(settings.workers);
        }
        let server = server
            .listen(listener)
            .map_err(|source| StartError::Bind {
                addr: settings.bind.clone(),
                source,
            })?
            .run();
        Ok(Application {
            port,
            server,
            door,
            _lock: lock,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The door controller (for `zhima door test` and tests).
    pub fn door(&self) -> &DoorController {
        &self.door
    }

    /// Serves until SIGINT or SIGTERM. On the signal the door locks at once
    /// (requests waiting on an unlock are answered), then the server stops
    /// accepting and finishes in-flight requests (up to 10 s). The door is
    /// locked again when the server has stopped.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let door = self.door.clone();
        // the door is locked, the database migrated and the port bound
        systemd::notify("READY=1\nSTATUS=serving");
        let watchdog = systemd::watchdog_interval().map(|every| {
            let door = self.door.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    if door.health().ready() {
                        systemd::notify("WATCHDOG=1");
                    } else {
                        tracing::error!("the door controller is not healthy: no watchdog ping");
                    }
                }
            })
        });
        let stopper = tokio::spawn(async move {
            wait_for_stop_signal().await;
            systemd::notify("STOPPING=1");
            tracing::info!("stop signal: locking the door, then draining requests");
            if let Err(e) = door.shutdown() {
                tracing::error!(error = %e, "the door did not lock on shutdown");
            }
            handle.stop(true).await;
        });
        let served = self.server.await;
        stopper.abort();
        if let Some(watchdog) = watchdog {
            watchdog.abort();
        }
        if let Err(e) = self.door.shutdown() {
            tracing::error!(error = %e, "the door did not lock on shutdown");
        }
        served
    }
}

async fn wait_for_stop_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// Whether the listen address is a loopback one.
fn bind_is_loopback(bind: &str) -> bool {
    bind.parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.ip().is_loopback())
}

#[cfg(test)]
mod bind_tests {
    #[test]
    fn only_loopback_binds_go_without_an_issuer_warning() {
        assert!(super::bind_is_loopback("127.0.0.1:8080"));
        assert!(super::bind_is_loopback("[::1]:8080"));
        assert!(!super::bind_is_loopback("0.0.0.0:8080"));
        assert!(!super::bind_is_loopback("192.0.2.10:8080"));
        assert!(!super::bind_is_loopback("[::]:8080"));
    }
}
