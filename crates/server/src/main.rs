//! The `zhima` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::Utc;
use clap::{Parser, Subcommand};
use zhima_domain::ids::OpenId;
use zhima_domain::scope::Scopes;
use zhima_server::settings::Settings;
use zhima_server::{open_store, Application, SystemClock};

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

fn serve(settings: &Settings) -> Result<(), Box<dyn std::error::Error>> {
    actix_web::rt::System::new().block_on(async {
        let app = Application::build(settings, Arc::new(SystemClock))?;
        tracing::info!(
            bind = %settings.bind,
            port = app.port(),
            database = %zhima_storage::connection::redact_url(&settings.database_url),
            timezone = %settings.timezone,
            "zhima is serving"
        );
        app.run_until_stopped().await?;
        tracing::info!("zhima stopped");
        Ok(())
    })
}
