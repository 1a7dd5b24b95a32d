//! The `zhima` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::Utc;
use clap::{Parser, Subcommand};
use zhima_domain::ids::OpenId;
use zhima_domain::scope::Scopes;
use zhima_door_hardware::{lock_on_panic, LockOnDrop};
use zhima_server::settings::Settings;
use zhima_server::{open_door, open_store, Application, SystemClock};

/// zhima (芝麻开门): membership and door access for hackerspaces.
#[derive(Debug, Parser)]
#[command(name = "zhima", version)]
struct Cli {
    /// A TOML configuration file (defaults, then this file, then ZHIMA_ environment variables).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply migrations and serve the API.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage API keys.
    #[command(subcommand)]
    ApiKey(ApiKeyCommand),
    /// Manage members.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Drive the configured door (wiring checks on the Pi).
    #[command(subcommand)]
    Door(DoorCommand),
    /// Member QR codes.
    #[command(subcommand)]
    Qr(QrCommand),
}

#[derive(Debug, Subcommand)]
enum QrCommand {
    /// Print the key id and public key that verify this server's codes
    /// (creating the signing key file if it does not exist yet).
    PublicKey,
}

#[derive(Debug, Subcommand)]
enum DoorCommand {
    /// Unlock once for a few seconds through the configured driver, report
    /// the switch, lock again. The unlock is written to the access log first.
    Test {
        /// How long to unlock (at most door.max_unlock_secs).
        #[arg(long, default_value_t = 2)]
        seconds: u32,
    },
    /// Drive the relay to locked and exit (for systemd's ExecStopPost).
    Lock,
}

#[derive(Debug, Subcommand)]
enum ApiKeyCommand {
    /// Create a key; it is printed once, alone on the last line.
    Create {
        /// A unique name, e.g. mini-program.
        #[arg(long)]
        name: String,
        /// Comma-separated: member:read, member:write, door:open, admin.
        #[arg(long)]
        scopes: String,
    },
    /// List keys (never the keys themselves).
    List,
    /// Revoke a key by name.
    Revoke {
        /// The key's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum MemberCommand {
    /// Set a member's password (stored as an argon2id hash).
    SetPassword {
        /// The member's openid.
        #[arg(long)]
        openid: String,
        /// The new password (at least 8 characters).
        #[arg(long)]
        password: String,
    },
    /// Deactivate a member (status INVALID); their history is kept.
    Deactivate {
        /// The member's openid.
        #[arg(long)]
        openid: String,
    },
    /// Reactivate a deactivated member.
    Reactivate {
        /// The member's openid.
        #[arg(long)]
        openid: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("zhima: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&settings);
    match run(cli.command, &settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zhima: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if settings.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn run(command: Command, settings: &Settings) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Command::Serve => serve(settings),
        Command::Door(DoorCommand::Lock) => {
            open_door(settings)?;
            println!("door {:?} is locked", settings.door.name);
            Ok(())
        }
        Command::Door(DoorCommand::Test { seconds }) => door_test(settings, seconds),
        Command::Qr(QrCommand::PublicKey) => {
            let state = zhima_server::keys::qr_state(&settings.qr)?;
            println!(
                "{} = \"{}\"",
                state.signer.key_id(),
                state.signer.public_key_hex()
            );
            Ok(())
        }
        Command::Migrate => {
            let store = open_store(settings)?;
            println!(
                "database is up to date ({} pending)",
                store.pending_migrations()?
            );
            Ok(())
        }
        Command::ApiKey(cmd) => {
            let store = open_store(settings)?;
            match cmd {
                ApiKeyCommand::Create { name, scopes } => {
                    let scopes = Scopes::parse(&scopes).map_err(|e| format!("--scopes: {e}"))?;
                    let (key, plaintext) = store.create_api_key(&name, &scopes, Utc::now())?;
                    println!(
                        "created API key {:?} with scopes {}; it is shown only now:",
                        key.name, key.scopes
                    );
                    println!("{plaintext}");
                }
                ApiKeyCommand::List => {
                    for key in store.list_api_keys()? {
                        let state = key.revoked_at.map_or("active".to_owned(), |t| {
                            format!("revoked {}", t.to_rfc3339())
                        });
                        println!(
                            "{}\t{}\tcreated {}\t{}",
                            key.name,
                            key.scopes,
                            key.created_at.to_rfc3339(),
                            state
                        );
                    }
                }
                ApiKeyCommand::Revoke { name } => {
                    if !store.revoke_api_key(&name, Utc::now())? {
                        return Err(format!("no active API key named {name:?}").into());
                    }
                    println!("revoked API key {name:?}");
                }
            }
            Ok(())
        }
        Command::Member(cmd) => {
            let store = open_store(settings)?;
            match cmd {
                MemberCommand::SetPassword { openid, password } => {
                    let openid = OpenId::parse(&openid).map_err(|e| format!("--openid: {e}"))?;
                    if password.chars().count() < 8 {
                        return Err("--password: must be at least 8 characters".into());
                    }
                    store.set_password(&openid, &password, false, Utc::now())?;
                    println!("password set for {openid}");
                }
                MemberCommand::Deactivate { openid } => {
                    let openid = OpenId::parse(&openid).map_err(|e| format!("--openid: {e}"))?;
                    store.set_deactivated(&openid, true, Utc::now())?;
                    println!("{openid} is deactivated (status INVALID)");
                }
                MemberCommand::Reactivate { openid } => {
                    let openid = OpenId::parse(&openid).map_err(|e| format!("--openid: {e}"))?;
                    store.set_deactivated(&openid, false, Utc::now())?;
                    println!("{openid} is active again");
                }
            }
            Ok(())
        }
    }
}

fn door_test(settings: &Settings, seconds: u32) -> Result<(), Box<dyn std::error::Error>> {
    use zhima_domain::access::{unlock_seconds, AccessMethod, NewAccessEvent, Outcome};
    use zhima_door_hardware::{DoorController, DoorSwitch};

    let want = unlock_seconds(i128::from(seconds), settings.door.max_unlock_secs)
        .map_err(|e| format!("--seconds: {e}"))?;
    let driver = open_door(settings)?;
    lock_on_panic(driver.clone());
    let _guard = LockOnDrop(driver.clone());
    println!("driver {}: relay locked", driver.name());
    let switch = |d: &dyn zhima_door_hardware::DoorDriver| match d.read_switch() {
        Ok(DoorSwitch::Open) => "open".to_owned(),
        Ok(DoorSwitch::Closed) => "closed".to_owned(),
        Err(e) => format!("unreadable ({e})"),
    };
    println!("door switch: {}", switch(driver.as_ref()));
    let store = open_store(settings)?;
    let event = NewAccessEvent::new(
        Utc::now(),
        &settings.door.name,
        AccessMethod::Manual,
        Outcome::Granted,
        "door_test",
    )
    .detail(format!("zhima door test --seconds {seconds}"));
    store.record_access(&event)?;
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?
        .block_on(async {
            let controller = DoorController::start(
                driver.clone(),
                settings.door.rules,
                Arc::new(SystemClock),
                Arc::new(|e| eprintln!("door event: {}: {}", e.reason(), e.detail())),
            )?;
            println!("unlocking for {} s…", want.as_secs());
            let opened = controller.unlock(want).await?;
            println!(
                "unlocked at {}, locked at {}",
                opened.unlocked_at.to_rfc3339(),
                opened.locked_at.to_rfc3339()
            );
            println!("door switch: {}", switch(driver.as_ref()));
            Ok::<(), Box<dyn std::error::Error>>(())
        })?;
    Ok(())
}

fn serve(settings: &Settings) -> Result<(), Box<dyn std::error::Error>> {
    // The door first: locked before the database, the port or anything else,
    // and locked again if this process panics or returns.
    let driver = open_door(settings)?;
    lock_on_panic(driver.clone());
    let _guard = LockOnDrop(driver.clone());
    actix_web::rt::System::new().block_on(async {
        let app = Application::build_with_door(settings, Arc::new(SystemClock), driver)?;
        tracing::info!(
            bind = %settings.bind,
            port = app.port(),
            database = %zhima_storage::connection::redact_url(&settings.database_url),
            timezone = %settings.timezone,
            door = %settings.door.name,
            door_driver = app.door().driver_name(),
            "zhima is serving"
        );
        app.run_until_stopped().await?;
        tracing::info!("zhima stopped");
        Ok(())
    })
}
