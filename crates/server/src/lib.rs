#![doc = include_str!("../README.md")]

pub mod settings;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use chrono::{DateTime, Utc};
use zhima_http::{AppState, Clock};
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
    let store = Store::open(&settings.database_url, &settings.store)?;
    let applied = store.migrate()?;
    for name in applied {
        tracing::info!(migration = %name, "applied migration");
    }
    Ok(store)
}

/// A built, bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Opens and migrates the database, binds `http.bind` (port 0 picks a free
    /// port), and builds the server.
    pub fn build(settings: &Settings, clock: Arc<dyn Clock>) -> Result<Application, StartError> {
        let store = open_store(settings)?;
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
        let state = web::Data::new(AppState {
            store,
            plans: settings.plans.clone(),
            tz: settings.timezone,
            clock,
            key_cache: Default::default(),
        });
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .configure(zhima_http::configure)
                .default_service(web::to(zhima_http::not_found))
        })
        .shutdown_timeout(10)
        // Blocking work (database calls) beyond the pool's connections would
        // only wait for one; more threads cost memory and thrash.
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
        Ok(Application { port, server })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is told to stop (SIGINT/SIGTERM).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
