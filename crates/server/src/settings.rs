//! Configuration: defaults, then a TOML file, then `ZHIMA_` environment
//! variables (`__` separates levels: `ZHIMA_DATABASE__URL`), which win.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono_tz::Tz;
use serde::Deserialize;
use zhima_domain::money::Fen;
use zhima_domain::partner::Tokens;
use zhima_domain::plan::{GrantKind, PlanOverride, Plans};
use zhima_domain::qr::{parse_hex32, KeyId, Keyring};
use zhima_domain::time::{parse_timezone, CalendarSpan};
use zhima_door_hardware::{DoorRules, DriverConfig, DriverKind, PinConfig};
use zhima_storage::StoreOptions;

/// A configuration that cannot be used; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct SettingsError(pub String);

fn bad(key: &str, reason: impl std::fmt::Display) -> SettingsError {
    SettingsError(format!("{key}: {reason}"))
}

/// Everything zhima reads from configuration, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    /// `[database]`
    pub database: DatabaseSettings,
    /// `[http]`
    pub http: HttpSettings,
    /// `timezone`
    pub timezone: String,
    /// `[log]`
    pub log: LogSettings,
    /// `[door]`
    pub door: RawDoorSettings,
    /// `[qr]`
    pub qr: RawQrSettings,
    /// `[oauth]`
    pub oauth: RawOAuthSettings,
    /// `[partner]`
    pub partner: RawPartnerSettings,
    /// `[smtp]`
    pub smtp: RawSmtpSettings,
    /// `[notify]`
    pub notify: RawNotifySettings,
    /// `[backup]`
    pub backup: RawBackupSettings,
    /// `[plans."NAME"]`: overrides or additions to the standard plans.
    #[serde(default)]
    pub plans: BTreeMap<String, PlanSettings>,
}

/// Text from configuration that is a secret (a signing key, a URL with a
/// password): `Debug` never shows it.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretText(String);

impl SecretText {
    /// The text itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.trim().is_empty() {
            f.write_str("(unset)")
        } else {
            f.write_str("***")
        }
    }
}

/// A database URL: `Debug` shows it with any password replaced by `***`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL itself, password included.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&zhima_storage::redact_url(&self.0))
    }
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://…`.
    pub url: DatabaseUrl,
    /// Most open connections.
    pub pool_size: u32,
    /// Seconds a request waits for a connection.
    pub connect_timeout_secs: u64,
    /// How many members' histories member reads keep between reads (each
    /// checked against the database's history version on every read; 0 keeps none).
    pub member_cache: usize,
}

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Address and port to listen on.
    pub bind: String,
    /// Worker threads (0: one per core).
    pub workers: usize,
    /// Reverse proxies whose `X-Forwarded-For` and `Forwarded` headers are
    /// believed, comma-separated addresses or networks (`127.0.0.1, 10.0.0.0/8`).
    pub trusted_proxies: String,
    /// Seconds a request body may take to arrive once its headers have.
    pub body_timeout_secs: u64,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// A tracing filter such as `info` or `zhima=debug,info`.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

/// `[door]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDoorSettings {
    /// `simulated` (default) or `rppal`.
    pub driver: String,
    /// The door's name in the access log.
    pub name: String,
    /// The most seconds one request may unlock for.
    pub max_unlock_secs: u32,
    /// Seconds after locking before an open door is reported as held open.
    pub held_open_secs: u32,
    /// `/door/scan` and `/door/rfid` requests a second per API key, on average.
    pub scan_per_sec: u32,
    /// `/door/scan` and `/door/rfid` requests per API key at once.
    pub scan_burst: u32,
    /// Where scanned codes come from: `""` (none), `stdin`, or a device
    /// such as `/dev/ttyACM0` (one code per line).
    pub scanner: String,
    /// `[door.pins]`: BCM GPIO numbers and active levels.
    pub pins: PinConfig,
}

/// `[qr]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQrSettings {
    /// The signing key's id (one character, 0-9 or a-z).
    pub key_id: String,
    /// Where the signing key lives (created, mode 0600, if missing).
    pub key_file: String,
    /// The signing key itself (64 hex digits); wins over `key_file`.
    pub signing_key: SecretText,
    /// Older public keys still accepted at the door, by key id.
    #[serde(default)]
    pub public_keys: BTreeMap<String, String>,
    /// Seconds a scan unlocks the door.
    pub entry_secs: u32,
    /// Seconds within which the same scanned text is not handled twice.
    pub replay_window_secs: u32,
    /// Days an image link (`qrcode_url`) works.
    pub image_link_days: u32,
}

/// `[oauth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOAuthSettings {
    /// The issuer URL in the metadata document (empty: from the request).
    pub issuer: String,
    /// Browser origins of public partner apps allowed to call the token,
    /// revoke and metadata endpoints and the Partner API (CORS),
    /// comma-separated (`https://app.example, https://m.example`).
    pub cors_origins: String,
    /// Seconds an access token works.
    pub access_token_secs: u32,
    /// Days a refresh token works (each use replaces it).
    pub refresh_token_days: u32,
    /// Seconds an authorization code may be redeemed (at most 300).
    pub code_secs: u32,
}

/// `[partner]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPartnerSettings {
    /// Calendar months one VIP purchase lasts.
    pub vip_months: u32,
    /// Price of a standard period, in tokens (up to two decimals).
    pub price_standard: String,
    /// Price of a gold period, in tokens.
    pub price_gold: String,
    /// Paid tokens credited per CNY of a `TOKENS` payment.
    pub tokens_per_cny: String,
}

/// `[smtp]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtpSettings {
    /// The mail server (empty: no email is sent).
    pub host: String,
    /// Its port (587 for STARTTLS, 465 for TLS, 25…).
    pub port: u16,
    /// `starttls`, `tls`, or `none` (only to a server on loopback).
    pub tls: String,
    /// The user to log in as (empty: no login).
    pub user: String,
    /// Its password.
    pub password: SecretText,
    /// The sender, `Name <address>` or an address.
    pub from: String,
}

/// `[backup]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackupSettings {
    /// Where `zhima serve` writes its daily backup (empty: it makes none).
    pub dir: String,
    /// The local time of the daily backup (`HH:MM`).
    pub at: String,
    /// How many backups to keep in each directory.
    pub keep: u32,
    /// A second directory each backup is copied to (a USB stick, a network
    /// mount; empty: none).
    pub copy_to: String,
}

/// Scheduled backups (SQLite).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSettings {
    /// The directory of the backups.
    pub dir: std::path::PathBuf,
    /// The local time of the daily backup.
    pub at: chrono::NaiveTime,
    /// Backups kept in each directory.
    pub keep: usize,
    /// The second directory, if any.
    pub copy_to: Option<std::path::PathBuf>,
}

/// `[notify]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotifySettings {
    /// Days before an end that a reminder goes out, comma-separated (`14,3`).
    pub reminder_days: String,
    /// The local time of the daily sweep (`HH:MM`).
    pub sweep_at: String,
    /// The language of members who have none (`zh` or `en`).
    pub language: String,
    /// The space's name, as emails sign.
    pub space_name: String,
    /// Delivery attempts before an email is given up.
    pub max_attempts: u32,
    /// Seconds between two deliveries of the outbox.
    pub deliver_every_secs: u32,
    /// Seconds a sender holds a claimed email (a sender that dies leaves it
    /// to the next after this).
    pub lease_secs: u32,
    /// Seconds before the first retry of a failed delivery (doubling).
    pub retry_secs: u32,
    /// A directory of the space's own email texts (`zh/KEY.txt`,
    /// `en/KEY.txt`); empty: the built-in ones.
    pub templates_dir: String,
}

/// How email goes out. `Debug` never shows the password.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// The mail server.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// How the connection is protected.
    pub tls: SmtpTls,
    /// Login, if any.
    pub login: Option<(String, SecretText)>,
    /// The sender.
    pub from: String,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain, then upgraded with STARTTLS (required).
    StartTls,
    /// TLS from the first byte.
    Tls,
    /// None (only to a server on loopback).
    None,
}

/// Checked `[notify]` settings and when the sweep runs.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// What the notifier needs.
    pub notifier: zhima_app::notify::NotifySettings,
    /// The local time of the daily sweep.
    pub sweep_at: chrono::NaiveTime,
    /// How often the outbox is delivered.
    pub deliver_every: Duration,
    /// The space's own email texts (Chinese, English), if it has any.
    pub words: Option<(
        &'static zhima_app::notify::Words,
        &'static zhima_app::notify::Words,
    )>,
}

/// Where the QR signing key comes from. `Debug` never shows a given key.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A file, created on first start.
    File(std::path::PathBuf),
    /// Given in the configuration (hex seed).
    Given([u8; 32]),
}

impl KeySource {
    /// The key's file, when it is kept in one (backups and restores carry
    /// it).
    pub fn file(&self) -> Option<&std::path::Path> {
        match self {
            KeySource::File(path) => Some(path),
            KeySource::Given(_) => None,
        }
    }
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::File(path) => f.debug_tuple("File").field(path).finish(),
            KeySource::Given(_) => f.write_str("Given(***)"),
        }
    }
}

/// Checked QR settings.
#[derive(Clone)]
pub struct QrSettings {
    /// The signing key's id.
    pub key_id: KeyId,
    /// Where the signing key comes from.
    pub key: KeySource,
    /// Older keys still accepted at the door.
    pub public_keys: Keyring,
    /// How long a scan unlocks the door.
    pub entry: Duration,
    /// The replay window.
    pub replay_window: Duration,
    /// How long an image link works.
    pub image_link_ttl: chrono::Duration,
}

impl std::fmt::Debug for QrSettings {
    /// Never prints a given signing key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QrSettings")
            .field("key_id", &self.key_id)
            .field(
                "key",
                &match &self.key {
                    KeySource::File(p) => format!("file {}", p.display()),
                    KeySource::Given(_) => "given (hidden)".to_owned(),
                },
            )
            .field("public_keys", &self.public_keys.len())
            .field("entry", &self.entry)
            .field("replay_window", &self.replay_window)
            .finish()
    }
}

/// Checked door settings.
#[derive(Debug, Clone)]
pub struct DoorSettings {
    /// Which driver, which pins.
    pub driver: DriverConfig,
    /// The door's name in the access log.
    pub name: String,
    /// The controller's rules.
    pub rules: DoorRules,
    /// The most seconds `POST /open/seconds` accepts.
    pub max_unlock_secs: u32,
    /// The door-scan rate limit per API key.
    pub scan_limit: zhima_domain::limit::Rate,
    /// Where scanned codes come from, if anywhere.
    pub scanner: Option<Scanner>,
}

/// A line-oriented source of scanned codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scanner {
    /// Standard input.
    Stdin,
    /// A device or file, read as it grows.
    Path(std::path::PathBuf),
}

/// The hard ceiling on `door.max_unlock_secs`: five minutes.
pub const MAX_UNLOCK_CEILING: u32 = 300;

/// `[plans."NAME"]`: every key optional when overriding a standard plan.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PlanSettings {
    /// List price in CNY, e.g. `"200"` or `"199.99"`.
    pub price: Option<String>,
    /// `membership`, `day_pass`, `entries`, `tool_room` or `none`.
    pub grants: Option<String>,
    /// Length in calendar months.
    pub months: Option<u32>,
    /// Length in calendar days.
    pub days: Option<u32>,
    /// For `entries`: how many entry days.
    pub entry_days: Option<u32>,
    /// Remove this plan from the catalogue.
    #[serde(default)]
    pub disabled: bool,
}

/// Checked settings, ready to use.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Database URL.
    pub database_url: DatabaseUrl,
    /// Pool settings.
    pub store: StoreOptions,
    /// Listen address.
    pub bind: String,
    /// Worker threads (0: one per core).
    pub workers: usize,
    /// Proxies whose forwarded headers are believed.
    pub trusted_proxies: zhima_http::net::TrustedProxies,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
    /// Origins allowed by CORS on the OAuth and Partner API endpoints.
    pub cors_origins: Vec<String>,
    /// The space's time zone.
    pub timezone: Tz,
    /// Plan catalogue.
    pub plans: Plans,
    /// Log filter.
    pub log_level: String,
    /// Log as JSON lines.
    pub log_json: bool,
    /// The door.
    pub door: DoorSettings,
    /// Member QR codes.
    pub qr: QrSettings,
    /// Token, code and refresh lifetimes.
    pub oauth: zhima_oauth::Settings,
    /// The issuer URL (`None`: taken from each request).
    pub oauth_issuer: Option<String>,
    /// VIP prices and length.
    pub partner: zhima_domain::partner::VipOffer,
    /// Paid tokens per CNY of a `TOKENS` payment.
    pub tokens_per_cny: Tokens,
    /// How email goes out (`None`: no email is sent).
    pub smtp: Option<SmtpSettings>,
    /// Reminders and their sweep.
    pub notify: NotifySettings,
    /// The daily backup `zhima serve` makes (`None`: none).
    pub backup: Option<BackupSettings>,
    /// The configuration file the settings were read from, if any (it goes
    /// into backups).
    pub source_file: Option<std::path::PathBuf>,
}

const DEFAULTS: &str = r#"
timezone = "Asia/Shanghai"

[database]
url = "sqlite://zhima.db"
pool_size = 8
connect_timeout_secs = 5
member_cache = 20000

[http]
bind = "127.0.0.1:8080"
workers = 0
trusted_proxies = ""
body_timeout_secs = 10

[log]
level = "info"
format = "text"

[door]
driver = "simulated"
name = "front"
max_unlock_secs = 30
held_open_secs = 60
scan_per_sec = 5
scan_burst = 20
scanner = ""

[door.pins]
relay = 24
relay_active_high = true
switch = 27
switch_open_low = true
green = [14, 15]
red = [18]

[qr]
key_id = "1"
key_file = "zhima-qr.key"
signing_key = ""
entry_secs = 3
replay_window_secs = 5
image_link_days = 365

[oauth]
issuer = ""
cors_origins = ""
access_token_secs = 3600
refresh_token_days = 30
code_secs = 300

[partner]
vip_months = 1
price_standard = "100"
price_gold = "300"
tokens_per_cny = "1"

[smtp]
host = ""
port = 587
tls = "starttls"
user = ""
password = ""
from = ""

[notify]
reminder_days = "7"
sweep_at = "09:00"
language = "zh"
space_name = "zhima"
max_attempts = 8
deliver_every_secs = 10
lease_secs = 300
retry_secs = 60
templates_dir = ""

[backup]
dir = ""
at = "03:30"
keep = 14
copy_to = ""
"#;

impl Settings {
    /// Loads defaults, then `file` (if given; it must exist), then the
    /// `ZHIMA_` environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, SettingsError> {
        Settings::load_with_env(file, None)
    }

    /// As [`Settings::load`], with the environment given explicitly (tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: Option<std::collections::HashMap<String, String>>,
    ) -> Result<Settings, SettingsError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(SettingsError(format!(
                    "--config: no such file {}",
                    path.display()
                )));
            }
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        let environment = config::Environment::with_prefix("ZHIMA")
            .prefix_separator("_")
            .separator("__")
            // values stay text until deserialised into their field's type
            // (try_parsing would read a hex key of only digits as a number);
            // pin lists are written "14,15"
            ;
        let environment = match env {
            Some(vars) => environment.source(Some(vars)),
            None => environment,
        };
        let raw: RawSettings = builder
            .add_source(environment)
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|e| SettingsError(e.to_string()))?;
        let mut settings = Settings::check(raw)?;
        settings.source_file = file.map(Path::to_path_buf);
        Ok(settings)
    }

    fn check(raw: RawSettings) -> Result<Settings, SettingsError> {
        zhima_storage::Target::parse(raw.database.url.expose())
            .map_err(|e| bad("database.url", e))?;
        if raw.database.pool_size == 0 || raw.database.pool_size > 128 {
            return Err(bad("database.pool_size", "must be from 1 to 128"));
        }
        if raw.database.member_cache > 1_000_000 {
            return Err(bad("database.member_cache", "must be from 0 to 1000000"));
        }
        if raw.database.connect_timeout_secs == 0 || raw.database.connect_timeout_secs > 300 {
            return Err(bad(
                "database.connect_timeout_secs",
                "must be from 1 to 300",
            ));
        }
        if raw.http.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(bad(
                "http.bind",
                format!(
                    "{:?} is not an address:port such as 127.0.0.1:8080",
                    raw.http.bind
                ),
            ));
        }
        if !(1..=300).contains(&raw.http.body_timeout_secs) {
            return Err(bad("http.body_timeout_secs", "must be from 1 to 300"));
        }
        if raw.http.workers > 256 {
            return Err(bad("http.workers", "must be from 0 (one per core) to 256"));
        }
        let proxies: Vec<&str> = list(&raw.http.trusted_proxies);
        let trusted_proxies = zhima_http::net::TrustedProxies::parse(&proxies)
            .map_err(|e| bad("http.trusted_proxies", e))?;
        let cors_origins = list(&raw.oauth.cors_origins)
            .into_iter()
            .map(|o| cors_origin(o).map_err(|e| bad("oauth.cors_origins", e)))
            .collect::<Result<Vec<_>, _>>()?;
        let timezone = parse_timezone(&raw.timezone).map_err(|e| bad("timezone", e))?;
        let log_json = match raw.log.format.as_str() {
            "text" => false,
            "json" => true,
            other => {
                return Err(bad(
                    "log.format",
                    format!("{other:?} is not \"text\" or \"json\""),
                ))
            }
        };
        tracing_subscriber::EnvFilter::try_new(&raw.log.level).map_err(|e| bad("log.level", e))?;
        let door = door(&raw.door)?;
        let qr = qr(&raw.qr)?;
        let (oauth, oauth_issuer) = oauth(&raw.oauth)?;
        let (partner, tokens_per_cny) = partner(&raw.partner)?;
        let plans = plans(&raw.plans)?;
        let smtp = smtp(&raw.smtp)?;
        let raw_receipts = smtp.is_some();
        let notify = notify(&raw.notify)?;
        let backup = backup(&raw.backup)?;
        Ok(Settings {
            backup,
            source_file: None,
            smtp,
            notify,
            door,
            qr,
            oauth,
            oauth_issuer,
            partner,
            tokens_per_cny,
            store: StoreOptions {
                pool_size: raw.database.pool_size,
                connect_timeout: Duration::from_secs(raw.database.connect_timeout_secs),
                tokens_per_cny,
                entry_windows: Some(entry_windows(&plans, timezone)),
                history_cache: raw.database.member_cache,
                receipts: raw_receipts,
                ..StoreOptions::default()
            },
            database_url: raw.database.url,
            bind: raw.http.bind,
            workers: raw.http.workers,
            trusted_proxies,
            body_timeout: Duration::from_secs(raw.http.body_timeout_secs),
            cors_origins,
            timezone,
            plans,
            log_level: raw.log.level,
            log_json,
        })
    }
}

fn smtp(raw: &RawSmtpSettings) -> Result<Option<SmtpSettings>, SettingsError> {
    let host = raw.host.trim();
    if host.is_empty() {
        return Ok(None);
    }
    let tls = match raw.tls.as_str() {
        "starttls" => SmtpTls::StartTls,
        "tls" => SmtpTls::Tls,
        "none" => SmtpTls::None,
        other => {
            return Err(bad(
                "smtp.tls",
                format!("{other:?} is not \"starttls\", \"tls\" or \"none\""),
            ))
        }
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if tls == SmtpTls::None && !loopback {
        return Err(bad(
            "smtp.tls",
            "\"none\" sends passwords and mail in clear: only to a server on loopback",
        ));
    }
    if raw.port == 0 {
        return Err(bad("smtp.port", "must be from 1 to 65535"));
    }
    if raw.from.trim().parse::<lettre::message::Mailbox>().is_err() {
        return Err(bad(
            "smtp.from",
            format!(
                "{:?} is not an address such as \"Space <door@space.example>\"",
                raw.from
            ),
        ));
    }
    let user = raw.user.trim();
    Ok(Some(SmtpSettings {
        host: host.to_owned(),
        port: raw.port,
        tls,
        login: (!user.is_empty()).then(|| (user.to_owned(), raw.password.clone())),
        from: raw.from.trim().to_owned(),
    }))
}

fn notify(raw: &RawNotifySettings) -> Result<NotifySettings, SettingsError> {
    let mut days = Vec::new();
    for item in list(&raw.reminder_days) {
        match item.parse::<u32>() {
            Ok(d) if (1..=90).contains(&d) => days.push(d),
            _ => {
                return Err(bad(
                    "notify.reminder_days",
                    format!("{item:?} is not a number of days from 1 to 90"),
                ))
            }
        }
    }
    let sweep_at =
        chrono::NaiveTime::parse_from_str(raw.sweep_at.trim(), "%H:%M").map_err(|_| {
            bad(
                "notify.sweep_at",
                format!("{:?} is not a time such as 09:00", raw.sweep_at),
            )
        })?;
    let language = zhima_app::notify::Lang::from_member(&raw.language).ok_or_else(|| {
        bad(
            "notify.language",
            format!("{:?} is not \"zh\" or \"en\"", raw.language),
        )
    })?;
    let space_name = raw.space_name.trim();
    if space_name.is_empty()
        || space_name.chars().count() > 64
        || space_name.chars().any(char::is_control)
    {
        return Err(bad("notify.space_name", "must be 1 to 64 characters"));
    }
    if raw.max_attempts == 0 || raw.max_attempts > 50 {
        return Err(bad("notify.max_attempts", "must be from 1 to 50"));
    }
    if raw.deliver_every_secs == 0 || raw.deliver_every_secs > 3600 {
        return Err(bad("notify.deliver_every_secs", "must be from 1 to 3600"));
    }
    if raw.lease_secs == 0 || raw.lease_secs > 86_400 {
        return Err(bad("notify.lease_secs", "must be from 1 to 86400"));
    }
    if raw.retry_secs == 0 || raw.retry_secs > 3600 {
        return Err(bad("notify.retry_secs", "must be from 1 to 3600"));
    }
    let words = match raw.templates_dir.trim() {
        "" => None,
        dir => Some(
            zhima_app::notify::load_words(Path::new(dir))
                .map_err(|e| bad("notify.templates_dir", e))?,
        ),
    };
    Ok(NotifySettings {
        words,
        notifier: zhima_app::notify::NotifySettings {
            reminder_days: days,
            language,
            space_name: space_name.to_owned(),
            max_attempts: raw.max_attempts,
            lease: chrono::Duration::seconds(i64::from(raw.lease_secs)),
            retry: chrono::Duration::seconds(i64::from(raw.retry_secs)),
        },
        sweep_at,
        deliver_every: Duration::from_secs(u64::from(raw.deliver_every_secs)),
    })
}

fn backup(raw: &RawBackupSettings) -> Result<Option<BackupSettings>, SettingsError> {
    let at = chrono::NaiveTime::parse_from_str(raw.at.trim(), "%H:%M").map_err(|_| {
        bad(
            "backup.at",
            format!("{:?} is not a time such as 03:30", raw.at),
        )
    })?;
    if raw.keep == 0 || raw.keep > 1000 {
        return Err(bad("backup.keep", "must be from 1 to 1000"));
    }
    let dir = raw.dir.trim();
    if dir.is_empty() {
        return Ok(None);
    }
    let copy_to = match raw.copy_to.trim() {
        "" => None,
        other => Some(std::path::PathBuf::from(other)),
    };
    Ok(Some(BackupSettings {
        dir: std::path::PathBuf::from(dir),
        at,
        keep: raw.keep as usize,
        copy_to,
    }))
}

/// What a member read loads of their access history:
/// `membership::entry_windows` bound to the catalogue and the zone.
fn entry_windows(plans: &Plans, tz: Tz) -> zhima_storage::EntryWindows {
    let plans = plans.clone();
    std::sync::Arc::new(move |payments| {
        zhima_domain::membership::entry_windows(payments, &plans, tz)
    })
}

/// The non-empty items of a comma-separated list.
fn list(text: &str) -> Vec<&str> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// A browser origin: `scheme://host[:port]`, nothing else.
fn cors_origin(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|e| format!("{text:?}: {e}"))?;
    let origin = url.origin().ascii_serialization();
    if !matches!(url.scheme(), "https" | "http") || origin != text.trim_end_matches('/') {
        return Err(format!(
            "{text:?} is not an origin such as https://app.example (scheme, host and port only)"
        ));
    }
    Ok(origin)
}

fn door(raw: &RawDoorSettings) -> Result<DoorSettings, SettingsError> {
    let kind = match raw.driver.as_str() {
        "simulated" => DriverKind::Simulated,
        "rppal" => DriverKind::Rppal,
        other => {
            return Err(bad(
                "door.driver",
                format!("{other:?} is not \"simulated\" or \"rppal\""),
            ))
        }
    };
    let name_ok = !raw.name.is_empty()
        && raw.name.len() <= 40
        && raw
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !name_ok {
        return Err(bad(
            "door.name",
            "1 to 40 letters, digits, '-' or '_' (e.g. front)",
        ));
    }
    if !(1..=MAX_UNLOCK_CEILING).contains(&raw.max_unlock_secs) {
        return Err(bad(
            "door.max_unlock_secs",
            format!("must be from 1 to {MAX_UNLOCK_CEILING}"),
        ));
    }
    if !(1..=86_400).contains(&raw.held_open_secs) {
        return Err(bad("door.held_open_secs", "must be from 1 to 86400"));
    }
    if !(1..=1_000_000).contains(&raw.scan_per_sec) {
        return Err(bad("door.scan_per_sec", "must be from 1 to 1000000"));
    }
    if !(1..=1_000_000).contains(&raw.scan_burst) {
        return Err(bad("door.scan_burst", "must be from 1 to 1000000"));
    }
    let pins = raw.pins.clone();
    pins.check().map_err(|e| bad("door.pins", e))?;
    Ok(DoorSettings {
        driver: DriverConfig { kind, pins },
        name: raw.name.clone(),
        rules: DoorRules {
            max_unlock: Duration::from_secs(u64::from(raw.max_unlock_secs)),
            held_open_after: Duration::from_secs(u64::from(raw.held_open_secs)),
            ..DoorRules::default()
        },
        max_unlock_secs: raw.max_unlock_secs,
        scan_limit: zhima_domain::limit::Rate {
            per_sec: raw.scan_per_sec,
            burst: raw.scan_burst,
        },
        scanner: match raw.scanner.trim() {
            "" => None,
            "stdin" | "-" => Some(Scanner::Stdin),
            path => Some(Scanner::Path(path.into())),
        },
    })
}

fn qr(raw: &RawQrSettings) -> Result<QrSettings, SettingsError> {
    let key_id = KeyId::parse(&raw.key_id).map_err(|e| bad("qr.key_id", e))?;
    let key = if raw.signing_key.expose().trim().is_empty() {
        if raw.key_file.trim().is_empty() {
            return Err(bad("qr.key_file", "give a file, or qr.signing_key"));
        }
        KeySource::File(raw.key_file.trim().into())
    } else {
        KeySource::Given(
            parse_hex32(raw.signing_key.expose()).map_err(|e| bad("qr.signing_key", e))?,
        )
    };
    let mut public_keys = Keyring::new();
    for (id, hex) in &raw.public_keys {
        let key = format!("qr.public_keys.{id}");
        let id = KeyId::parse(id).map_err(|e| bad(&key, e))?;
        public_keys.insert_hex(id, hex).map_err(|e| bad(&key, e))?;
    }
    if !(1..=60).contains(&raw.entry_secs) {
        return Err(bad("qr.entry_secs", "must be from 1 to 60"));
    }
    if raw.replay_window_secs > 600 {
        return Err(bad("qr.replay_window_secs", "must be from 0 to 600"));
    }
    if !(1..=3650).contains(&raw.image_link_days) {
        return Err(bad("qr.image_link_days", "must be from 1 to 3650"));
    }
    Ok(QrSettings {
        key_id,
        key,
        public_keys,
        entry: Duration::from_secs(u64::from(raw.entry_secs)),
        replay_window: Duration::from_secs(u64::from(raw.replay_window_secs)),
        image_link_ttl: chrono::Duration::days(i64::from(raw.image_link_days)),
    })
}

/// The standard plans with the configured overrides, additions and removals.
fn oauth(raw: &RawOAuthSettings) -> Result<(zhima_oauth::Settings, Option<String>), SettingsError> {
    if raw.access_token_secs < 60 || raw.access_token_secs > 86_400 {
        return Err(bad("oauth.access_token_secs", "must be from 60 to 86400"));
    }
    if raw.refresh_token_days == 0 || raw.refresh_token_days > 365 {
        return Err(bad("oauth.refresh_token_days", "must be from 1 to 365"));
    }
    if raw.code_secs < 10 || raw.code_secs > 300 {
        return Err(bad("oauth.code_secs", "must be from 10 to 300"));
    }
    let issuer = raw.issuer.trim();
    let issuer = if issuer.is_empty() {
        None
    } else {
        let url = url::Url::parse(issuer).map_err(|e| bad("oauth.issuer", e))?;
        if url.scheme() != "https" && url.scheme() != "http"
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(bad(
                "oauth.issuer",
                "must be an http(s) URL without query or fragment",
            ));
        }
        Some(issuer.trim_end_matches('/').to_owned())
    };
    Ok((
        zhima_oauth::Settings {
            access_token_ttl: chrono::Duration::seconds(i64::from(raw.access_token_secs)),
            refresh_token_ttl: chrono::Duration::days(i64::from(raw.refresh_token_days)),
            code_ttl: chrono::Duration::seconds(i64::from(raw.code_secs)),
        },
        issuer,
    ))
}

fn partner(
    raw: &RawPartnerSettings,
) -> Result<(zhima_domain::partner::VipOffer, Tokens), SettingsError> {
    if raw.vip_months == 0 || raw.vip_months > 24 {
        return Err(bad("partner.vip_months", "must be from 1 to 24"));
    }
    let price = |key: &str, text: &str| -> Result<Tokens, SettingsError> {
        let tokens = Tokens::parse(text).map_err(|e| bad(key, e))?;
        if tokens == Tokens::ZERO {
            return Err(bad(key, "must be more than 0"));
        }
        Ok(tokens)
    };
    Ok((
        zhima_domain::partner::VipOffer {
            span: CalendarSpan::Months(raw.vip_months),
            standard: price("partner.price_standard", &raw.price_standard)?,
            gold: price("partner.price_gold", &raw.price_gold)?,
        },
        price("partner.tokens_per_cny", &raw.tokens_per_cny)?,
    ))
}

fn plans(configured: &BTreeMap<String, PlanSettings>) -> Result<Plans, SettingsError> {
    let mut overrides = BTreeMap::new();
    for (name, s) in configured {
        let key = format!("plans.\"{name}\"");
        let span = match (s.months, s.days) {
            (Some(_), Some(_)) => return Err(bad(&key, "give months or days, not both")),
            (Some(0), _) | (_, Some(0)) => return Err(bad(&key, "a length must be at least 1")),
            (Some(m), None) => Some(CalendarSpan::Months(m)),
            (None, Some(d)) => Some(CalendarSpan::Days(d)),
            (None, None) => None,
        };
        let change = PlanOverride {
            price: s
                .price
                .as_deref()
                .map(Fen::parse_yuan)
                .transpose()
                .map_err(|e| bad(&format!("{key}.price"), e))?,
            grants: s
                .grants
                .as_deref()
                .map(GrantKind::parse)
                .transpose()
                .map_err(|e| bad(&format!("{key}.grants"), e))?,
            span,
            entry_days: s.entry_days,
            disabled: s.disabled,
        };
        overrides.insert(name.as_str(), change);
    }
    Plans::standard()
        .with_overrides(overrides.iter().map(|(name, change)| (*name, change)))
        .map_err(|e| {
            let key = match (e.plan.is_empty(), e.part) {
                (true, _) => "plans".to_owned(),
                (false, Some(part)) => format!("plans.\"{}\".{part}", e.plan),
                (false, None) => format!("plans.\"{}\"", e.plan),
            };
            bad(&key, e.reason)
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::Write;

    use super::*;
    use zhima_domain::plan::Grant;

    fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    fn file(text: &str) -> tempfile_path::TempFile {
        tempfile_path::TempFile::new(text)
    }

    /// A tiny temp-file helper (no extra crate).
    mod tempfile_path {
        pub struct TempFile(pub std::path::PathBuf);
        impl TempFile {
            pub fn new(text: &str) -> TempFile {
                let mut n = [0u8; 8];
                getrandom::fill(&mut n).unwrap();
                let path = std::env::temp_dir()
                    .join(format!("zhima-config-{}.toml", u64::from_le_bytes(n)));
                let mut f = std::fs::File::create(&path).unwrap();
                super::Write::write_all(&mut f, text.as_bytes()).unwrap();
                TempFile(path)
            }
        }
        impl Drop for TempFile {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    /// Flattened `section.key` → value of a TOML text (nested tables
    /// walked; the plans table left out: it is a catalogue, not keys).
    fn flat_keys(toml: &str) -> std::collections::BTreeMap<String, config::ValueKind> {
        fn walk(
            prefix: &str,
            map: config::Map<String, config::Value>,
            out: &mut std::collections::BTreeMap<String, config::ValueKind>,
        ) {
            for (key, value) in map {
                let name = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                match value.kind {
                    config::ValueKind::Table(inner) => walk(&name, inner, out),
                    kind => {
                        out.insert(name, kind);
                    }
                }
            }
        }
        let map = config::Config::builder()
            .add_source(config::File::from_str(toml, config::FileFormat::Toml))
            .build()
            .unwrap()
            .try_deserialize::<config::Map<String, config::Value>>()
            .unwrap();
        let mut out = std::collections::BTreeMap::new();
        walk("", map, &mut out);
        out.retain(|k, _| !k.starts_with("plans."));
        out
    }

    /// The packages' /etc/zhima/zhima.toml (packaging/zhima.toml) shows every
    /// key: each commented `# key = value` line holds the built-in default,
    /// the few set lines (database, QR key, backups) say where a package
    /// keeps its state, and the file loads as it is and with every line
    /// uncommented.
    #[test]
    fn the_packaged_example_names_every_key_with_its_default() {
        let example = include_str!("../../../packaging/zhima.toml");
        let setting = |line: &str| {
            let line = line.trim_start();
            line.starts_with('[')
                || line.split_once(" = ").is_some_and(|(k, _)| {
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                })
        };
        let commented: Vec<&str> = example
            .lines()
            .filter_map(|l| l.strip_prefix("# ").filter(|rest| setting(rest)))
            .collect();
        let uncommented: String = example
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if setting(rest) => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let defaults = flat_keys(DEFAULTS);
        let all = flat_keys(&uncommented);
        let missing: Vec<&String> = defaults.keys().filter(|k| !all.contains_key(*k)).collect();
        let unknown: Vec<&String> = all.keys().filter(|k| !defaults.contains_key(*k)).collect();
        assert!(
            missing.is_empty(),
            "keys the example leaves out: {missing:?}"
        );
        assert!(
            unknown.is_empty(),
            "keys the example has that zhima does not: {unknown:?}"
        );

        // the set lines alone (the file as installed), then the commented
        // ones alone under their sections: these must be the defaults
        let set = flat_keys(example);
        assert_eq!(
            set.keys().map(String::as_str).collect::<Vec<_>>(),
            ["backup.dir", "database.url", "qr.key_file"],
            "the lines the package sets"
        );
        let mut only_commented = String::new();
        for line in example.lines() {
            if line.starts_with('[') {
                only_commented.push_str(line);
                only_commented.push('\n');
            } else if let Some(rest) = line.strip_prefix("# ").filter(|r| setting(r)) {
                only_commented.push_str(rest);
                only_commented.push('\n');
            }
        }
        assert!(
            commented.len() > 50,
            "{} commented settings",
            commented.len()
        );
        for (key, value) in flat_keys(&only_commented) {
            assert_eq!(
                Some(&value),
                defaults.get(&key),
                "the example's default for {key}"
            );
        }

        for text in [example, uncommented.as_str()] {
            let f = file(text);
            let s = Settings::load_with_env(Some(&f.0), env(&[])).unwrap();
            assert_eq!(s.database_url.expose(), "sqlite:///var/lib/zhima/zhima.db");
        }
    }

    #[test]
    fn defaults() {
        let s = Settings::load_with_env(None, env(&[])).unwrap();
        assert_eq!(s.database_url.expose(), "sqlite://zhima.db");
        assert_eq!(s.bind, "127.0.0.1:8080");
        assert_eq!(s.timezone, chrono_tz::Asia::Shanghai);
        assert_eq!(s.plans, Plans::standard());
        assert!(!s.log_json);
        assert_eq!(s.door.driver.kind, DriverKind::Simulated);
        assert_eq!(s.door.driver.pins, PinConfig::default());
        assert_eq!(s.door.name, "front");
        assert_eq!(s.door.max_unlock_secs, 30);
        assert_eq!(s.door.rules.max_unlock, Duration::from_secs(30));
        assert_eq!(s.door.rules.held_open_after, Duration::from_secs(60));
    }

    /// The configuration's defaults (`DEFAULTS`, the README's table) are the
    /// one place an operator reads them; each crate's own `Default` (for
    /// callers without a configuration: tests, benches) must say the same.
    #[test]
    fn every_crate_default_is_the_configuration_default() {
        let s = Settings::load_with_env(None, env(&[])).unwrap();
        let store = StoreOptions::default();
        assert_eq!(s.store.pool_size, store.pool_size);
        assert_eq!(s.store.connect_timeout, store.connect_timeout);
        assert_eq!(s.store.history_cache, store.history_cache);
        assert_eq!(s.store.tokens_per_cny, store.tokens_per_cny);
        let oauth = zhima_oauth::Settings::default();
        assert_eq!(s.oauth.access_token_ttl, oauth.access_token_ttl);
        assert_eq!(s.oauth.refresh_token_ttl, oauth.refresh_token_ttl);
        assert_eq!(s.oauth.code_ttl, oauth.code_ttl);
        assert_eq!(s.partner, zhima_domain::partner::VipOffer::default());
        assert_eq!(s.tokens_per_cny, store.tokens_per_cny);
        assert_eq!(s.door.driver.pins, PinConfig::default());
        let rules = DoorRules::default();
        assert_eq!(s.door.rules.max_unlock, rules.max_unlock);
        assert_eq!(s.door.rules.held_open_after, rules.held_open_after);
    }

    #[test]
    fn door_settings_from_file_and_environment() {
        let f = file("[door]\ndriver = \"rppal\"\nmax_unlock_secs = 10\n[door.pins]\nrelay = 17\nrelay_active_high = false\n");
        let s = Settings::load_with_env(
            Some(&f.0),
            env(&[
                ("ZHIMA_DOOR__PINS__GREEN", "5,6"),
                ("ZHIMA_DOOR__NAME", "back-door"),
            ]),
        )
        .unwrap();
        assert_eq!(s.door.driver.kind, DriverKind::Rppal);
        assert_eq!(s.door.driver.pins.relay, 17);
        assert!(!s.door.driver.pins.relay_active_high);
        assert_eq!(s.door.driver.pins.green, [5, 6]);
        assert_eq!(s.door.name, "back-door");
        assert_eq!(s.door.rules.max_unlock, Duration::from_secs(10));
    }

    #[test]
    fn file_then_environment_wins() {
        let f = file("timezone = \"UTC\"\n[http]\nbind = \"0.0.0.0:9000\"\n[database]\nurl = \"sqlite://from-file.db\"\n");
        let s = Settings::load_with_env(
            Some(&f.0),
            env(&[("ZHIMA_DATABASE__URL", "sqlite://from-env.db")]),
        )
        .unwrap();
        assert_eq!(s.database_url.expose(), "sqlite://from-env.db");
        assert_eq!(s.bind, "0.0.0.0:9000");
        assert_eq!(s.timezone, chrono_tz::UTC);
        let s = Settings::load_with_env(
            None,
            env(&[
                ("ZHIMA_HTTP__BIND", "127.0.0.1:0"),
                ("ZHIMA_DATABASE__POOL_SIZE", "3"),
            ]),
        )
        .unwrap();
        assert_eq!(s.bind, "127.0.0.1:0");
        assert_eq!(s.store.pool_size, 3);
    }

    #[test]
    fn an_email_text_for_no_string_is_refused_at_start() {
        let dir = std::env::temp_dir().join(format!("zhima-bad-words-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("zh")).unwrap();
        std::fs::write(dir.join("zh/reminder_subjekt.txt"), "x").unwrap();
        let err = Settings::load_with_env(
            None,
            env(&[("ZHIMA_NOTIFY__TEMPLATES_DIR", dir.to_str().unwrap())]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("notify.templates_dir") && err.contains("reminder_subjekt"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            (vec![("ZHIMA_TIMEZONE", "Mars/Olympus")], "timezone"),
            (vec![("ZHIMA_DATABASE__URL", "mysql://x")], "database.url"),
            (vec![("ZHIMA_HTTP__BIND", "localhost")], "http.bind"),
            (
                vec![("ZHIMA_DATABASE__POOL_SIZE", "0")],
                "database.pool_size",
            ),
            (vec![("ZHIMA_DATABASE__POOL_SIZE", "many")], "pool_size"),
            (vec![("ZHIMA_LOG__FORMAT", "xml")], "log.format"),
            (vec![("ZHIMA_DOOR__DRIVER", "gpio")], "door.driver"),
            (vec![("ZHIMA_DOOR__NAME", "front door")], "door.name"),
            (
                vec![("ZHIMA_DOOR__MAX_UNLOCK_SECS", "99998")],
                "door.max_unlock_secs",
            ),
            (
                vec![("ZHIMA_DOOR__MAX_UNLOCK_SECS", "0")],
                "door.max_unlock_secs",
            ),
            (
                vec![("ZHIMA_DOOR__HELD_OPEN_SECS", "0")],
                "door.held_open_secs",
            ),
            (vec![("ZHIMA_DOOR__SCAN_PER_SEC", "0")], "door.scan_per_sec"),
            (
                vec![("ZHIMA_DOOR__SCAN_BURST", "1000001")],
                "door.scan_burst",
            ),
            (vec![("ZHIMA_DOOR__PINS__SWITCH", "24")], "door.pins"),
            (vec![("ZHIMA_DOOR__PINS__RELAY", "99")], "door.pins"),
            (
                vec![
                    ("ZHIMA_SMTP__HOST", "mail.example"),
                    ("ZHIMA_SMTP__TLS", "none"),
                    ("ZHIMA_SMTP__FROM", "a@b.c"),
                ],
                "smtp.tls",
            ),
            (
                vec![
                    ("ZHIMA_SMTP__HOST", "127.0.0.1"),
                    ("ZHIMA_SMTP__FROM", "not an address"),
                ],
                "smtp.from",
            ),
            (
                vec![("ZHIMA_NOTIFY__REMINDER_DAYS", "7,x")],
                "notify.reminder_days",
            ),
            (vec![("ZHIMA_NOTIFY__SWEEP_AT", "9am")], "notify.sweep_at"),
            (vec![("ZHIMA_BACKUP__AT", "3.30")], "backup.at"),
            (vec![("ZHIMA_BACKUP__KEEP", "0")], "backup.keep"),
            (vec![("ZHIMA_NOTIFY__LANGUAGE", "fr")], "notify.language"),
        ];
        for (vars, key) in cases {
            let err = Settings::load_with_env(None, env(&vars))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{err} should name {key}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
        let err = Settings::load_with_env(Some(Path::new("/nonexistent/zhima.toml")), env(&[]))
            .unwrap_err();
        assert!(err.to_string().contains("--config"));
        let f = file("[http]\nbnd = \"x\"\n");
        let err = Settings::load_with_env(Some(&f.0), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bnd"), "{err}");
    }

    #[test]
    fn plans_can_be_changed_added_and_removed() {
        let f = file(
            r#"
[plans."1M MEMBERSHIP"]
price = "250"
[plans."YEAR"]
price = "2000"
grants = "membership"
months = 12
[plans."CROWD FUNDING"]
disabled = true
[plans."10 ENTRIES"]
entry_days = 12
"#,
        );
        let s = Settings::load_with_env(Some(&f.0), env(&[])).unwrap();
        let m = s.plans.get("1M MEMBERSHIP").unwrap();
        assert_eq!(m.price, Fen::from_yuan(250));
        assert_eq!(
            m.grant,
            Grant::Membership {
                span: CalendarSpan::Months(1)
            }
        );
        assert_eq!(
            s.plans.get("year").unwrap().grant,
            Grant::Membership {
                span: CalendarSpan::Months(12)
            }
        );
        assert!(s.plans.get("CROWD FUNDING").is_err());
        assert_eq!(
            s.plans.get("10 ENTRIES").unwrap().grant,
            Grant::Entries {
                days: 12,
                window: CalendarSpan::Months(6)
            }
        );

        for (text, key) in [
            ("[plans.\"NEW\"]\nprice = \"1\"\n", "plans.\"NEW\".grants"),
            (
                "[plans.\"NEW\"]\ngrants = \"membership\"\n",
                "plans.\"NEW\"",
            ),
            (
                "[plans.\"NEW\"]\ngrants = \"forever\"\nmonths = 1\n",
                "plans.\"NEW\".grants",
            ),
            ("[plans.\"TOOL\"]\nprice = \"-5\"\n", "plans.\"TOOL\".price"),
            ("[plans.\"TOOL\"]\nmonths = 1\ndays = 2\n", "plans.\"TOOL\""),
        ] {
            let f = file(text);
            let err = Settings::load_with_env(Some(&f.0), env(&[]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{err} should name {key}");
        }
    }

    #[test]
    fn debug_never_prints_a_secret() {
        let key = "ab".repeat(32);
        let s = Settings::load_with_env(
            None,
            env(&[
                (
                    "ZHIMA_DATABASE__URL",
                    "postgres://zhima:hunter2@db.example/zhima",
                ),
                ("ZHIMA_QR__SIGNING_KEY", &key),
                ("ZHIMA_SMTP__HOST", "127.0.0.1"),
                ("ZHIMA_SMTP__TLS", "none"),
                ("ZHIMA_SMTP__FROM", "door@space.example"),
                ("ZHIMA_SMTP__USER", "door"),
                ("ZHIMA_SMTP__PASSWORD", "smtp-swordfish"),
            ]),
        )
        .unwrap();
        let printed = format!("{s:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains("swordfish"), "{printed}");
        assert!(printed.contains("door@space.example"), "{printed}");
        assert!(
            !printed.contains(&key) && !printed.contains("171, 171"),
            "{printed}"
        );
        assert!(
            printed.contains("db.example"),
            "the host still shows: {printed}"
        );
        assert_eq!(format!("{:?}", KeySource::Given([1; 32])), "Given(***)");
        assert_eq!(format!("{:?}", SecretText(key.clone())), "***");
    }

    #[test]
    fn proxies_and_cors_origins_are_checked_lists() {
        let s = Settings::load_with_env(
            None,
            env(&[
                ("ZHIMA_HTTP__TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8"),
                (
                    "ZHIMA_OAUTH__CORS_ORIGINS",
                    "https://app.example, http://127.0.0.1:3000",
                ),
            ]),
        )
        .unwrap();
        assert!(s.trusted_proxies.contains("10.9.8.7".parse().unwrap()));
        assert_eq!(
            s.cors_origins,
            vec!["https://app.example", "http://127.0.0.1:3000"]
        );
        for (key, value, named) in [
            (
                "ZHIMA_HTTP__TRUSTED_PROXIES",
                "proxy.example",
                "http.trusted_proxies",
            ),
            (
                "ZHIMA_HTTP__TRUSTED_PROXIES",
                "10.0.0.0/99",
                "http.trusted_proxies",
            ),
            (
                "ZHIMA_OAUTH__CORS_ORIGINS",
                "https://app.example/path",
                "oauth.cors_origins",
            ),
            ("ZHIMA_OAUTH__CORS_ORIGINS", "*", "oauth.cors_origins"),
            (
                "ZHIMA_OAUTH__CORS_ORIGINS",
                "ftp://app.example",
                "oauth.cors_origins",
            ),
        ] {
            let e = Settings::load_with_env(None, env(&[(key, value)])).unwrap_err();
            assert!(e.to_string().contains(named), "{value}: {e}");
        }
    }
}
