//! The `zhima` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::Utc;
use clap::{Parser, Subcommand};
use zhima_domain::ids::OpenId;
use zhima_domain::partner::{PartnerScope, TokenKind, Tokens};
use zhima_domain::scope::Scopes;
use zhima_door_hardware::{lock_on_panic, LockOnDrop};
use zhima_server::settings::Settings;
use zhima_server::{open_door, open_store, Application, SystemClock};

/// zhima (芝麻开门): membership and door access for hackerspaces.
#[derive(Debug, Parser)]
#[command(name = "zhima", version = VERSION)]
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
    /// Partner applications (OAuth2 clients).
    #[command(subcommand)]
    Partner(PartnerCommand),
    /// The members' token wallets.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Export members, payments, entries or the token ledger (to stdout).
    Export {
        /// members, payments, entries or tokens.
        table: String,
        /// Only rows from this local date on (YYYY-MM-DD; payments, entries, tokens).
        #[arg(long)]
        since: Option<String>,
        /// csv (with a header; UTF-8 with BOM) or json (one object a line).
        #[arg(long, default_value = "csv")]
        format: String,
    },
    /// Import members and payments.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Back up the database (SQLite: a consistent copy while the server
    /// serves; PostgreSQL: pg_dump), the QR signing key and the
    /// configuration into one file.
    Backup {
        /// The directory of the backups (default: backup.dir).
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
        /// How many backups to keep there, the oldest going (default:
        /// backup.keep, 14).
        #[arg(long)]
        keep: Option<usize>,
    },
    /// Check what a running door needs (database, disk, QR key, door,
    /// clock, mail, backups); exit status 1 on a problem.
    Doctor,
    /// Restore a backup made by `zhima backup` (with the server stopped);
    /// what it replaces is kept beside it.
    Restore {
        /// The backup file.
        file: PathBuf,
    },
    /// Webhooks: URLs that hear of payments, members and entries.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Run the daily reminder sweep once (for cron or a systemd timer),
    /// then deliver what is queued.
    Remind {
        /// Show what is due and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Sweep as on this local date (YYYY-MM-DD) instead of today.
        #[arg(long)]
        date: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// From CSV files with the documented columns (docs/migrate.md): all or
    /// nothing, every bad row reported.
    Csv {
        /// The members file.
        #[arg(long)]
        members: Option<PathBuf>,
        /// The payments file.
        #[arg(long)]
        payments: Option<PathBuf>,
        /// Check everything, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// From the old zhima server's MariaDB/MySQL database: its members
    /// (under their old numbers), payments and door log, all or nothing
    /// (docs/migrate.md). Run it with --dry-run first.
    ZhimaLegacy {
        /// mysql://USER@HOST:PORT/DB (a password in the URL, or in the
        /// MYSQL_PWD environment variable).
        #[arg(long)]
        from: String,
        /// Read, check and report everything; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Import into a database that already has other members.
        #[arg(long)]
        merge: bool,
        /// A user whose openid or nickname another member holds: refuse
        /// (the import stops), skip (leave them out) or existing (their
        /// payments and log rows go to that member).
        #[arg(long, default_value = "refuse")]
        conflicts: String,
        /// The zone of the old server's dates and times (default: the
        /// configured timezone).
        #[arg(long)]
        tz: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum WebhookCommand {
    /// Add a webhook; its signing secret is printed once (and never stored).
    Add {
        /// Where deliveries go (https://; http:// only with --insecure-http).
        #[arg(long)]
        url: String,
        /// Comma-separated: payment.recorded, member.created, member.expiring,
        /// member.expired, door.entry, vip.purchased.
        #[arg(long)]
        events: String,
        /// Allow an http:// URL (a receiver on the space's own network).
        #[arg(long)]
        insecure_http: bool,
    },
    /// List the webhooks.
    List,
    /// Remove a webhook (its queued deliveries are given up).
    Remove {
        /// The webhook's number.
        id: i64,
    },
    /// The latest deliveries.
    Log {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
enum PartnerCommand {
    /// Register a partner application; its client_id and client_secret are
    /// printed once (the secret is stored only as an argon2id hash).
    Add {
        /// The partner's name, shown to members on the consent page.
        #[arg(long)]
        name: String,
        /// A redirect URI, matched exactly (repeat for more than one).
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// A public client (mobile or browser app): no secret, PKCE required.
        #[arg(long)]
        public: bool,
        /// Comma-separated scopes the partner may ask for: profile, vip.
        #[arg(long, default_value = "profile,vip")]
        scopes: String,
    },
    /// List partner applications (never their secrets).
    List,
    /// Require PKCE of a partner (the default), or let an old confidential
    /// partner that cannot send it go without.
    Pkce {
        /// The client_id.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        /// `required` or `optional`.
        #[arg(value_parser = ["required", "optional"])]
        rule: String,
    },
    /// Remove a partner application and revoke every token it holds.
    Remove {
        /// The client_id (one that starts with `-`, made by older versions,
        /// is read as an id too).
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

#[derive(Debug, Subcommand)]
enum TokensCommand {
    /// Credit free tokens to a member (a staff gift), and print the balances.
    Grant {
        /// The member's openid.
        #[arg(long)]
        openid: String,
        /// How many free tokens (up to two decimals).
        #[arg(long)]
        free: String,
        /// Why (kept in the ledger).
        #[arg(long, default_value = "staff gift")]
        reason: String,
    },
    /// Print a member's balances.
    Balance {
        /// The member's openid.
        #[arg(long)]
        openid: String,
    },
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
        /// The new password (8 to 200 characters, not the default one).
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
    /// Email a member their QR code (needs [smtp] and an email address).
    SendQr {
        /// The member's openid.
        #[arg(long)]
        openid: String,
    },
}

/// The version and the commit the binary was built from (build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BUILT_FROM_COMMIT"),
    ")"
);

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
    match run(cli.command, &settings, cli.config.as_deref()) {
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
    // colour only for a person at a terminal: never in the journal or a file
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    if settings.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn run(
    command: Command,
    settings: &Settings,
    config: Option<&std::path::Path>,
) -> Result<(), Box<dyn std::error::Error>> {
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
        Command::Partner(cmd) => partner(settings, cmd),
        Command::Tokens(cmd) => tokens(settings, cmd),
        Command::Webhook(cmd) => webhook(settings, cmd),
        Command::Export {
            table,
            since,
            format,
        } => export(settings, &table, since.as_deref(), &format),
        Command::Import(ImportCommand::Csv {
            members,
            payments,
            dry_run,
        }) => import_csv(settings, members.as_deref(), payments.as_deref(), dry_run),
        Command::Import(ImportCommand::ZhimaLegacy {
            from,
            dry_run,
            merge,
            conflicts,
            tz,
        }) => import_legacy(settings, &from, dry_run, merge, &conflicts, tz.as_deref()),
        Command::Remind { dry_run, date } => remind(settings, dry_run, date.as_deref()),
        Command::Backup { to, keep } => {
            let configured = settings.backup.as_ref();
            let Some(to) = to.or_else(|| configured.map(|b| b.dir.clone())) else {
                return Err("zhima backup: say where with --to DIR, or set backup.dir".into());
            };
            let keep = keep.or(configured.map(|b| b.keep)).unwrap_or(14);
            backup(settings, config, &to, keep)
        }
        Command::Restore { file } => restore(settings, &file),
        Command::Doctor => doctor(settings),
        Command::Migrate => {
            let store = open_store(settings)?;
            println!(
                "database is up to date ({} pending)",
                store.pending_migrations()?
            );
            Ok(())
        }
        Command::ApiKey(cmd) => {
            let admin = admin(settings)?;
            match cmd {
                ApiKeyCommand::Create { name, scopes } => {
                    let scopes = Scopes::parse(&scopes).map_err(|e| format!("--scopes: {e}"))?;
                    let (key, plaintext) =
                        admin.create_api_key(&name, &scopes, &operator(), Utc::now())?;
                    println!(
                        "created API key {:?} with scopes {}; it is shown only now:",
                        key.name, key.scopes
                    );
                    println!("{plaintext}");
                }
                ApiKeyCommand::List => {
                    for key in admin.api_keys()? {
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
                    if !admin.revoke_api_key(&name, &operator(), Utc::now())? {
                        return Err(format!("no active API key named {name:?}").into());
                    }
                    println!("revoked API key {name:?}");
                }
            }
            Ok(())
        }
        Command::Member(cmd) => {
            let admin = admin(settings)?;
            match cmd {
                MemberCommand::SetPassword { openid, password } => {
                    let openid = OpenId::parse(&openid).map_err(|e| format!("--openid: {e}"))?;
                    let password = zhima_domain::password::Password::parse(&password)
                        .map_err(|e| format!("--password: {e}"))?;
                    admin.set_password(&openid, &password, &operator(), Utc::now())?;
                    println!("password set for {openid}");
                }
                MemberCommand::Deactivate { openid } => {
                    let openid = OpenId::parse(&openid).map_err(|e| format!("--openid: {e}"))?;
                    admin.set_deactivated(&openid, true, &operator(), Utc::now())?;
                    println!("{openid} is deactivated (status INVALID)");
                }
                MemberCommand::Reactivate { openid } => {
                    let openid = OpenId::parse(&openid).map_err(|e| format!("--openid: {e}"))?;
                    admin.set_deactivated(&openid, false, &operator(), Utc::now())?;
                    println!("{openid} is active again");
                }
                MemberCommand::SendQr { openid } => return send_qr(settings, &openid),
            }
            Ok(())
        }
    }
}

/// The import and export use cases on the configured database.
fn transfer(
    settings: &Settings,
) -> Result<zhima_app::transfer::Transfer, Box<dyn std::error::Error>> {
    let store = open_store(settings)?;
    let members = Arc::new(zhima_app::members::Members::new(
        store.clone(),
        settings.plans.clone(),
        settings.timezone,
    ));
    Ok(zhima_app::transfer::Transfer::new(store, members))
}

/// `zhima export TABLE`.
fn export(
    settings: &Settings,
    table: &str,
    since: Option<&str>,
    format: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    use zhima_app::transfer::{Format, Table};
    let table = Table::parse(table)
        .ok_or_else(|| format!("{table:?} is not members, payments, entries or tokens"))?;
    let format = match format {
        "csv" => Format::Csv,
        "json" => Format::Json,
        other => return Err(format!("--format: {other:?} is not csv or json").into()),
    };
    let since = match since {
        None => None,
        Some(text) => {
            let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| format!("--since: {text:?} is not a date such as 2026-01-31"))?;
            Some(zhima_domain::time::local_day_start(day, settings.timezone))
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let rows = transfer(settings)?.export(table, since, format, &mut out, Utc::now())?;
    drop(out);
    eprintln!("exported {rows} rows");
    Ok(())
}

/// `zhima import csv`.
fn import_csv(
    settings: &Settings,
    members: Option<&std::path::Path>,
    payments: Option<&std::path::Path>,
    dry_run: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    if members.is_none() && payments.is_none() {
        return Err("name --members FILE, --payments FILE or both".into());
    }
    let open = |p: &std::path::Path, flag: &str| {
        std::fs::File::open(p).map_err(|e| format!("{flag} {}: {e}", p.display()))
    };
    let mut m = members.map(|p| open(p, "--members")).transpose()?;
    let mut p = payments.map(|p| open(p, "--payments")).transpose()?;
    let report = transfer(settings)?.import_csv(
        m.as_mut().map(|f| f as &mut dyn std::io::Read),
        p.as_mut().map(|f| f as &mut dyn std::io::Read),
        dry_run,
        Utc::now(),
    )?;
    println!(
        "read {} members and {} payments; {} members already here",
        report.members, report.payments, report.members_present
    );
    if !report.problems.is_empty() {
        for problem in &report.problems {
            println!("refused\t{problem}");
        }
        return Err(format!(
            "{} rows refused: nothing was imported",
            report.problems.len()
        )
        .into());
    }
    if dry_run {
        println!("dry run: every row is good; nothing was written");
    } else {
        println!(
            "imported {} members and {} payments",
            report.members_written, report.payments_written
        );
    }
    Ok(())
}

/// The SQLite file of the configured database, or why there is none.
fn sqlite_file(settings: &Settings, what: &str) -> Result<PathBuf, Box<dyn std::error::Error>> {
    match zhima_storage::Target::parse(settings.database_url.expose())? {
        zhima_storage::Target::Sqlite(path) => Ok(path),
        zhima_storage::Target::Postgres(_) => Err(format!(
            "{what} works on a SQLite database; a PostgreSQL one is backed up with pg_dump \
             and restored with pg_restore (docs/backup.md)"
        )
        .into()),
    }
}

/// `zhima backup`.
fn backup(
    settings: &Settings,
    config: Option<&std::path::Path>,
    to: &std::path::Path,
    keep: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let t0 = std::time::Instant::now();
    let database =
        zhima_server::backups::Database::of(&settings.database_url, || open_store(settings))?;
    let made = database.backup(to, settings.qr.key.file(), config, keep, Utc::now())?;
    println!(
        "backed up to {} ({} bytes, {:.1} s){}{}",
        made.file.display(),
        made.bytes,
        t0.elapsed().as_secs_f64(),
        if made.with_key {
            ", with the QR signing key"
        } else {
            ""
        },
        if made.with_config {
            ", with the configuration"
        } else {
            ""
        },
    );
    for old in &made.removed {
        println!("removed the old backup {}", old.display());
    }
    Ok(())
}

/// `zhima doctor`.
fn doctor(settings: &Settings) -> Result<(), Box<dyn std::error::Error>> {
    let built_at: i64 = env!("BUILT_AT").parse().unwrap_or(0);
    let findings = zhima_server::doctor::run(settings, built_at, Utc::now());
    let mut problems = 0;
    for f in &findings {
        let mark = match f.ok {
            Some(true) => "ok",
            Some(false) => "PROBLEM",
            None => "skipped",
        };
        println!("{mark:<8}{:<15}{}", f.check, f.detail);
        if f.ok == Some(false) {
            problems += 1;
            println!("{:<23}fix: {}", "", f.fix);
        }
    }
    match problems {
        0 => Ok(()),
        n => Err(format!("{n} problems found").into()),
    }
}

/// `zhima restore`.
fn restore(settings: &Settings, file: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let db = sqlite_file(settings, "zhima restore")?;
    let done = zhima_app::backup::restore(file, &db, settings.qr.key.file(), Utc::now())?;
    println!("restored {} from {}", db.display(), file.display());
    if let Some(kept) = &done.kept_database {
        println!("the database it replaced is kept as {}", kept.display());
    }
    if done.key_restored {
        println!("the QR signing key was restored");
    }
    if let Some(kept) = &done.kept_key {
        println!("the key it replaced is kept as {}", kept.display());
    }
    if let Some(config) = &done.config {
        println!(
            "the backup's configuration is at {} (the one in use is unchanged)",
            config.display()
        );
    }
    Ok(())
}

/// `zhima import zhima-legacy`.
fn import_legacy(
    settings: &Settings,
    from: &str,
    dry_run: bool,
    merge: bool,
    conflicts: &str,
    tz: Option<&str>,
) -> Result<(), Box<dyn std::error::Error>> {
    use zhima_app::legacy::{Conflicts, LegacyOptions};
    let conflicts = match conflicts {
        "refuse" => Conflicts::Refuse,
        "skip" => Conflicts::Skip,
        "existing" => Conflicts::Existing,
        other => {
            return Err(format!("--conflicts: {other:?} is not refuse, skip or existing").into())
        }
    };
    let tz = match tz {
        None => settings.timezone,
        Some(name) => name
            .parse::<chrono_tz::Tz>()
            .map_err(|_| format!("--tz: {name:?} is not a time zone such as Asia/Shanghai"))?,
    };
    let options = LegacyOptions {
        tz,
        door: settings.door.name.clone(),
        merge,
        conflicts,
        dry_run,
    };
    #[cfg(feature = "legacy-import")]
    {
        let mut source = zhima_server::legacy_mysql::MysqlSource::connect(from)?;
        let legacy = zhima_app::legacy::Legacy::new(open_store(settings)?, settings.plans.clone());
        let report = legacy.import(&mut source, &options, &operator(), Utc::now())?;
        print_legacy_report(&report, &options);
        if report.blocked() {
            return Err("nothing was imported: see the refused rows and conflicts above".into());
        }
        Ok(())
    }
    #[cfg(not(feature = "legacy-import"))]
    {
        let _ = (from, options);
        Err(
            "this build has no legacy import (cargo feature legacy-import): \
             run the import with a build that has it, on any machine that reaches both databases"
                .into(),
        )
    }
}

/// The report of `zhima import zhima-legacy`, on standard output.
#[cfg(feature = "legacy-import")]
fn print_legacy_report(
    r: &zhima_app::legacy::LegacyReport,
    options: &zhima_app::legacy::LegacyOptions,
) {
    println!("times of the old server taken in {}", options.tz);
    println!(
        "read\tusers {}\ttransactions {}\ttb_log {}",
        r.users, r.transactions, r.log_rows
    );
    if let Some(to) = r.log_already_to {
        println!("tb_log rows up to id {to} were read before");
    }
    println!(
        "members\tnew {}\talready here {}\tto an existing member {}\tleft out {}",
        r.members_created, r.members_present, r.members_merged, r.members_skipped
    );
    println!(
        "payments\tnew {}\talready here {}\tleft out {}",
        r.payments_recorded, r.payments_present, r.payments_skipped
    );
    println!(
        "log\tentries {}\tnaming no member {}\tother types {}",
        r.events_recorded, r.log_unidentified, r.log_skipped
    );
    println!(
        "passwords\tin clear, now hashed {}\tempty or default (no web login yet) {}",
        r.clear_passwords, r.default_passwords
    );
    for (label, lines) in [
        ("refused", &r.refused),
        ("conflict", &r.conflicts),
        ("renumbered", &r.renumbered),
        ("note", &r.notes),
        ("expiry", &r.expiry_differences),
    ] {
        for line in lines {
            println!("{label}\t{line}");
        }
    }
    println!(
        "expiry\t{} members end on another day than the old max(valid_until)",
        r.expiry_differences.len()
    );
    if r.blocked() {
        println!("nothing was written");
    } else if options.dry_run {
        println!("dry run: nothing was written");
    } else if r.changes_nothing() {
        println!("everything was already here: nothing changed");
    } else {
        println!("imported in one transaction");
    }
}

/// `zhima webhook …`.
fn webhook(settings: &Settings, cmd: WebhookCommand) -> Result<(), Box<dyn std::error::Error>> {
    let hooks = zhima_app::webhooks::Webhooks::new(
        open_store(settings)?,
        zhima_server::keys::webhook_key(&settings.qr)?,
    );
    match cmd {
        WebhookCommand::Add {
            url,
            events,
            insecure_http,
        } => {
            let (hook, secret) =
                match hooks.add(&url, &events, insecure_http, &operator(), Utc::now()) {
                    Err(zhima_app::AppError::Invalid { field, reason }) => {
                        return Err(format!("--{field}: {reason}").into())
                    }
                    other => other?,
                };
            println!(
                "added webhook {} for {} ({}); its signing secret, shown only now:",
                hook.id,
                hook.url,
                hook.events.join(",")
            );
            println!("{secret}");
        }
        WebhookCommand::List => {
            for hook in hooks.list()? {
                let state = hook.removed_at.map_or("active".to_owned(), |t| {
                    format!("removed {}", t.to_rfc3339())
                });
                println!(
                    "{}\t{}\t{}\t{}",
                    hook.id,
                    hook.url,
                    hook.events.join(","),
                    state
                );
            }
        }
        WebhookCommand::Remove { id } => {
            if !hooks.remove(id, &operator(), Utc::now())? {
                return Err(format!("no active webhook {id}").into());
            }
            println!("removed webhook {id}");
        }
        WebhookCommand::Log { limit } => {
            for d in hooks.log(limit)? {
                println!(
                    "{}\t{}\t{}\t{}\tattempts {}\t{}",
                    d.id,
                    d.created_at.to_rfc3339(),
                    d.once_key,
                    d.state,
                    d.attempts,
                    d.last_error
                );
            }
        }
    }
    Ok(())
}

/// The notifier on the configured database, and a mailer if `[smtp]` is set.
fn notifier(
    settings: &Settings,
) -> Result<
    (
        zhima_app::notify::Notifier,
        Option<zhima_server::mail::SmtpMailer>,
    ),
    Box<dyn std::error::Error>,
> {
    let mailer = match &settings.smtp {
        Some(smtp) => Some(zhima_server::mail::SmtpMailer::new(smtp)?),
        None => None,
    };
    let store = open_store(settings)?;
    let members = Arc::new(zhima_app::members::Members::new(
        store.clone(),
        settings.plans.clone(),
        settings.timezone,
    ));
    let seed = zhima_server::keys::seed(&settings.qr)?;
    let mut notifier =
        zhima_app::notify::Notifier::new(store, members, settings.notify.notifier.clone())
            .with_qr(Arc::new(zhima_server::mail::SignedQr::from_seed(
                &settings.qr,
                &seed,
            )))
            .with_webhooks(
                zhima_server::keys::webhook_key_from_seed(&seed),
                Arc::new(zhima_server::webhook::HttpPoster::new()?),
            );
    if mailer.is_none() {
        notifier = notifier.without_email();
    }
    if let Some((zh, en)) = settings.notify.words {
        notifier = notifier.with_words(zh, en);
    }
    Ok((notifier, mailer))
}

/// Delivers the outbox until nothing is due: what was done.
fn deliver_all(
    notifier: &zhima_app::notify::Notifier,
    mailer: Option<&zhima_server::mail::SmtpMailer>,
) -> Result<zhima_app::notify::DeliveryReport, Box<dyn std::error::Error>> {
    let mailer = mailer.map(|m| m as &dyn zhima_app::notify::Mailer);
    let mut total = zhima_app::notify::DeliveryReport::default();
    for _ in 0..1000 {
        let round = notifier.deliver(mailer, Utc::now(), 50)?;
        total.sent += round.sent;
        total.retried += round.retried;
        total.failed += round.failed;
        if round.sent + round.retried + round.failed == 0 {
            break;
        }
    }
    Ok(total)
}

/// `zhima member send-qr`: queues the member's QR code and delivers it.
fn send_qr(settings: &Settings, openid: &str) -> Result<(), Box<dyn std::error::Error>> {
    let openid = OpenId::parse(openid).map_err(|e| format!("--openid: {e}"))?;
    let (notifier, mailer) = notifier(settings)?;
    let Some(mailer) = mailer else {
        return Err("smtp.host is not set: no email can be sent".into());
    };
    match notifier.request_qr(&openid, Utc::now()) {
        Err(zhima_app::AppError::Invalid { reason, .. }) => {
            return Err(format!("{openid}: {reason}").into())
        }
        other => other?,
    }
    let report = deliver_all(&notifier, Some(&mailer))?;
    if report.sent == 0 {
        return Err(format!("the QR code of {openid} was queued but not sent yet: {} to retry, {} failed (see the log)", report.retried, report.failed).into());
    }
    println!("sent the QR code of {openid}");
    Ok(())
}

/// `zhima remind`: the sweep of one day, then delivery of the outbox.
fn remind(
    settings: &Settings,
    dry_run: bool,
    date: Option<&str>,
) -> Result<(), Box<dyn std::error::Error>> {
    let now = Utc::now();
    let today = match date {
        Some(text) => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| format!("--date: {text:?} is not a date such as 2026-12-31"))?,
        None => zhima_domain::time::local_date(now, settings.timezone),
    };
    if settings.smtp.is_none() {
        println!(
            "smtp.host is not set: no email is sent (webhooks still hear of expiring members)"
        );
    }
    let (notifier, mailer) = notifier(settings)?;
    let report = notifier.sweep(today, now, dry_run)?;
    if dry_run {
        for key in &report.keys {
            println!("due\t{key}");
        }
    }
    println!(
        "{today}: {} members, {} notices due: {} {}, {} queued before, {} without an email address, {} opted out",
        report.members,
        report.due,
        report.queued,
        if dry_run { "would be queued" } else { "queued" },
        report.already,
        report.no_email,
        report.opted_out
    );
    if !dry_run {
        let total = deliver_all(&notifier, mailer.as_ref())?;
        println!(
            "delivered: {} sent, {} to retry, {} failed",
            total.sent, total.retried, total.failed
        );
    }
    Ok(())
}

/// The operator at the command line, as the audit log names them: the
/// user who ran `sudo`, else the login user.
fn operator() -> zhima_app::audit::Actor {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_default();
    zhima_app::audit::Actor::operator(&user)
}

/// The administration use cases on the configured database.
fn admin(settings: &Settings) -> Result<zhima_app::admin::Admin, Box<dyn std::error::Error>> {
    let store = open_store(settings)?;
    let provider = zhima_oauth::Provider::new(store.clone(), settings.oauth.clone());
    Ok(zhima_app::admin::Admin::new(store, provider))
}

fn partner(settings: &Settings, cmd: PartnerCommand) -> Result<(), Box<dyn std::error::Error>> {
    let admin = admin(settings)?;
    match cmd {
        PartnerCommand::Add {
            name,
            redirect_uris,
            public,
            scopes,
        } => {
            let scopes = PartnerScope::parse_set(&scopes).map_err(|e| format!("--scopes: {e}"))?;
            let registered = admin.register_partner(
                &name,
                &redirect_uris,
                public,
                &scopes,
                &operator(),
                Utc::now(),
            )?;
            let client = &registered.client;
            println!(
                "registered {:?} ({}, scopes {}); shown only now:",
                client.name,
                if client.is_public() {
                    "public: PKCE required"
                } else {
                    "confidential"
                },
                PartnerScope::join(&client.scopes)
            );
            println!("client_id: {}", client.client_id);
            if let Some(secret) = &registered.secret {
                println!("client_secret: {secret}");
            }
        }
        PartnerCommand::List => {
            for client in admin.partners()? {
                let state = client.removed_at.map_or("active".to_owned(), |t| {
                    format!("removed {}", t.to_rfc3339())
                });
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    client.client_id,
                    client.name,
                    if client.is_public() {
                        "public"
                    } else {
                        "confidential"
                    },
                    if client.pkce_required {
                        "pkce-required"
                    } else {
                        "pkce-optional"
                    },
                    PartnerScope::join(&client.scopes),
                    client.redirect_uris.join(" "),
                    state
                );
            }
        }
        PartnerCommand::Pkce { client_id, rule } => {
            let required = rule == "required";
            if !admin.set_partner_pkce(&client_id, required, &operator(), Utc::now())? {
                return Err(format!("no active partner with client_id {client_id:?}").into());
            }
            println!("PKCE is now {rule} for {client_id}");
        }
        PartnerCommand::Remove { client_id } => {
            if !admin.remove_partner(&client_id, &operator(), Utc::now())? {
                return Err(format!("no active partner with client_id {client_id:?}").into());
            }
            println!("removed {client_id}; its tokens are revoked");
        }
    }
    Ok(())
}

fn tokens(settings: &Settings, cmd: TokensCommand) -> Result<(), Box<dyn std::error::Error>> {
    let wallet =
        zhima_app::wallet::Wallet::new(open_store(settings)?, settings.partner, settings.timezone);
    let (openid, balance) = match cmd {
        TokensCommand::Grant {
            openid,
            free,
            reason,
        } => {
            let openid = OpenId::parse(&openid).map_err(|e| format!("--openid: {e}"))?;
            let amount = Tokens::parse(&free).map_err(|e| format!("--free: {e}"))?;
            let balance = match wallet.grant(
                &openid,
                TokenKind::Free,
                amount,
                &reason,
                &operator(),
                Utc::now(),
            ) {
                Err(zhima_app::AppError::Invalid { field, reason }) => {
                    let flag = if field == "amount" {
                        "--free"
                    } else {
                        "--reason"
                    };
                    return Err(format!("{flag}: {reason}").into());
                }
                other => other?,
            };
            println!("granted {amount} free tokens to {openid}");
            (openid, balance)
        }
        TokensCommand::Balance { openid } => {
            let openid = OpenId::parse(&openid).map_err(|e| format!("--openid: {e}"))?;
            let balance = wallet
                .balance(&openid)?
                .ok_or_else(|| format!("no member with openid {openid}"))?;
            (openid, balance)
        }
    };
    println!(
        "{openid}: paid {} free {} (total {})",
        balance.paid,
        balance.free,
        balance.total()
    );
    Ok(())
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
            database = %zhima_storage::redact_url(settings.database_url.expose()),
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
