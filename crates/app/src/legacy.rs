//! `zhima import zhima-legacy`: the old server's members, payments and
//! door log, read from its database through a [`LegacySource`] (the
//! server's MariaDB reader, or a test's rows), mapped by
//! `zhima_domain::legacy` and written in one transaction.
//!
//! - Into an empty database by default. A second run of the same import
//!   finds every member already here (same number, openid and nickname),
//!   every payment recorded and every log row imported, writes nothing and
//!   says so.
//! - `--merge` imports into a database that has other members. A user
//!   whose openid or nickname another member holds (with other data) is a
//!   conflict: refused unless `--conflicts skip` (leave the user out, with
//!   their payments and log rows) or `--conflicts existing` (add their
//!   payments and log rows to the member already here). A user whose
//!   number another member holds gets the next free number.
//! - Real passwords are hashed with argon2id before anything is written;
//!   the clear text goes nowhere else.
//! - Log rows are read a page at a time (constant memory) inside the
//!   import's transaction; rows up to the highest one already imported are
//!   skipped, so a later run adds only what the old server logged since.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use zhima_domain::ids::{MemberId, NickName};
use zhima_domain::legacy::{
    expiry_differences, log_event, log_member_name, plan, LegacyLogRow, LegacyTransaction,
    LegacyUser, LogFate,
};
use zhima_domain::plan::Plans;
use zhima_storage::{credentials, Identity, NumberedMember, StorageError, Store, Whom};

use crate::audit::Actor;
use crate::AppError;

/// The old server's database, as rows.
pub trait LegacySource {
    /// Every row of `users`.
    fn users(&mut self) -> Result<Vec<LegacyUser>, String>;
    /// Every row of `transactions`.
    fn transactions(&mut self) -> Result<Vec<LegacyTransaction>, String>;
    /// Up to `limit` rows of `tb_log` with an id above `after`, by id.
    fn log_after(&mut self, after: i64, limit: usize) -> Result<Vec<LegacyLogRow>, String>;
}

/// What to do with a user whose openid or nickname another member holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflicts {
    /// Refuse the import (the default).
    Refuse,
    /// Leave the user out, with their payments and log rows.
    Skip,
    /// Add the user's payments and log rows to the member already here.
    Existing,
}

/// How to import.
#[derive(Debug, Clone)]
pub struct LegacyOptions {
    /// The zone of the old server's naive datetimes.
    pub tz: Tz,
    /// The door the log rows happened at.
    pub door: String,
    /// Into a database that has other members.
    pub merge: bool,
    /// What to do with conflicts.
    pub conflicts: Conflicts,
    /// Check everything, write nothing.
    pub dry_run: bool,
}

/// What an import found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegacyReport {
    /// `users` rows read.
    pub users: u64,
    /// `transactions` rows read.
    pub transactions: u64,
    /// `tb_log` rows read (above the ones already imported).
    pub log_rows: u64,
    /// Members created.
    pub members_created: u64,
    /// Users already here (same number, openid and nickname).
    pub members_present: u64,
    /// Users whose payments and log rows went to a member already here.
    pub members_merged: u64,
    /// Users left out (`--conflicts skip`).
    pub members_skipped: u64,
    /// Payments recorded.
    pub payments_recorded: u64,
    /// Payments already recorded.
    pub payments_present: u64,
    /// Payments left out with their user.
    pub payments_skipped: u64,
    /// Log rows recorded as access events.
    pub events_recorded: u64,
    /// `OPEN`/`NOT_OK` rows naming no imported member.
    pub log_unidentified: u64,
    /// Rows of other types, or without a time.
    pub log_skipped: u64,
    /// The highest `tb_log` id a previous run read.
    pub log_already_to: Option<i64>,
    /// Real passwords found in clear (hashed; ask these members to change them).
    pub clear_passwords: u64,
    /// Empty or default passwords (no web login yet).
    pub default_passwords: u64,
    /// Amounts not a whole fen, types not in the catalogue.
    pub notes: Vec<String>,
    /// Users given another number (theirs was taken).
    pub renumbered: Vec<String>,
    /// Conflicts (the import refuses while any remain unresolved).
    pub conflicts: Vec<String>,
    /// Rows that cannot be imported (the import refuses while any remain).
    pub refused: Vec<String>,
    /// Members whose expiry here differs from the old `max(valid_until)`.
    pub expiry_differences: Vec<String>,
    /// Whether the database was written.
    pub written: bool,
}

impl LegacyReport {
    /// Whether the import must stop: refused rows or unresolved conflicts.
    pub fn blocked(&self) -> bool {
        !self.refused.is_empty() || !self.conflicts.is_empty()
    }

    /// Whether the run changed (or, dry, would change) nothing.
    pub fn changes_nothing(&self) -> bool {
        self.members_created + self.payments_recorded + self.events_recorded == 0
    }
}

/// The import mark of the old server's log (`Store::import_mark`).
const LOG_MARK: &str = "zhima-legacy tb_log";

/// Log rows read at a time.
const LOG_PAGE: usize = 5_000;

/// The legacy import use case.
#[derive(Debug, Clone)]
pub struct Legacy {
    store: Store,
    plans: Plans,
}

/// Where a user goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// A new member, under this number (`None`: the next free one).
    New(Option<MemberId>),
    /// A member already here.
    Existing(MemberId),
    /// Left out.
    Skip,
}

impl Legacy {
    /// The use case over `store`, with the space's plan catalogue.
    pub fn new(store: Store, plans: Plans) -> Legacy {
        Legacy { store, plans }
    }

    /// Reads `source`, maps it and (unless a dry run, refused rows or
    /// unresolved conflicts) writes it in one transaction. Blocking.
    pub fn import(
        &self,
        source: &mut dyn LegacySource,
        options: &LegacyOptions,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> Result<LegacyReport, AppError> {
        let source_failed = |why: String| AppError::Storage(StorageError::Source(why));
        let users = source.users().map_err(source_failed)?;
        let transactions = source.transactions().map_err(source_failed)?;
        let planned = plan(&users, &transactions, &self.plans, options.tz, now);
        let mut report = LegacyReport {
            users: users.len() as u64,
            transactions: transactions.len() as u64,
            clear_passwords: planned.clear_passwords,
            default_passwords: planned.default_passwords,
            notes: planned.notes.clone(),
            refused: planned.refused.clone(),
            expiry_differences: expiry_differences(
                &planned,
                &transactions,
                &self.plans,
                options.tz,
                now,
            ),
            ..LegacyReport::default()
        };
        drop(transactions);
        if !report.refused.is_empty() {
            return Ok(report);
        }

        // where each user goes
        let here = self.store.member_identities()?;
        let targets = resolve(&planned.members, &here, options, &mut report);
        if report.blocked() {
            return Ok(report);
        }

        // the members to create, with their passwords hashed (not for a dry
        // run: a hash checks nothing, and a thousand of them take seconds)
        let mut index: HashMap<i64, Whom> = HashMap::new();
        let mut creating: Vec<(usize, Option<MemberId>)> = Vec::new();
        for (i, target) in targets.iter().enumerate() {
            let id = planned.members[i].id.0;
            match *target {
                Target::New(number) => {
                    index.insert(id, Whom::Imported(creating.len()));
                    creating.push((i, number));
                }
                Target::Existing(member) => {
                    index.insert(id, Whom::Existing(member));
                }
                Target::Skip => {}
            }
        }
        let passwords: Vec<Option<&str>> = creating
            .iter()
            .map(|&(i, _)| planned.members[i].password.as_deref())
            .collect();
        let hashes = if options.dry_run {
            vec![None; passwords.len()]
        } else {
            hash_all(&passwords)?
        };
        let members: Vec<NumberedMember> = creating
            .iter()
            .zip(hashes)
            .map(|(&(i, number), password_hash)| {
                let m = &planned.members[i];
                NumberedMember {
                    id: number,
                    new: m.new.clone(),
                    created: m.created,
                    deactivated: m.deactivated,
                    password_hash,
                }
            })
            .collect();
        let mut payments = Vec::with_capacity(planned.payments.len());
        for (member, payment) in &planned.payments {
            match index.get(&member.0) {
                Some(&whom) => payments.push((whom, payment.clone())),
                None => report.payments_skipped += 1,
            }
        }

        // the log: rows above the highest one read before, page by page
        let already = self.store.import_mark(LOG_MARK)?;
        report.log_already_to = already;
        let by_name: HashMap<String, Whom> = planned
            .members
            .iter()
            .filter_map(|m| Some((m.new.nickname.key(), *index.get(&m.id.0)?)))
            .collect();
        let mut after = already.unwrap_or(0);
        let mut finished = false;
        let mut log = LogCounts::default();
        let mut events = |ids: &[MemberId]| {
            if finished {
                return Ok(None);
            }
            let rows = source.log_after(after, LOG_PAGE)?;
            finished = rows.len() < LOG_PAGE;
            let mut batch = Vec::with_capacity(rows.len());
            for row in &rows {
                after = after.max(row.id);
                log.read += 1;
                let whom = by_name.get(&NickName::fold(log_member_name(&row.message)));
                let member = whom.map(|w| match *w {
                    Whom::Imported(i) => ids[i],
                    Whom::Existing(id) => id,
                });
                match log_event(row, member, &options.door) {
                    LogFate::Event(e) => batch.push(e),
                    LogFate::Unidentified => log.unidentified += 1,
                    LogFate::Skipped => log.skipped += 1,
                }
            }
            Ok(Some((batch, after)))
        };
        let note = by.note(
            "import.legacy",
            "the old server's database".to_owned(),
            String::new(),
            format!(
                "{} users, {} transactions",
                report.users, report.transactions
            ),
            now,
        );
        let counts = self.store.audited(note).import_numbered(
            &members,
            &payments,
            &mut events,
            LOG_MARK,
            options.dry_run,
            now,
        )?;
        report.log_rows = log.read;
        report.log_unidentified = log.unidentified;
        report.log_skipped = log.skipped;
        report.members_created = counts.members;
        report.payments_recorded = counts.payments;
        report.payments_present = counts.replayed;
        report.events_recorded = counts.events;
        report.written = !options.dry_run && !report.changes_nothing();
        Ok(report)
    }
}

#[derive(Debug, Default)]
struct LogCounts {
    read: u64,
    unidentified: u64,
    skipped: u64,
}

/// Matches each planned member against the members here.
fn resolve(
    planned: &[zhima_domain::legacy::LegacyMember],
    here: &[Identity],
    options: &LegacyOptions,
    report: &mut LegacyReport,
) -> Vec<Target> {
    let by_id: HashMap<i64, &Identity> = here.iter().map(|m| (m.id.0, m)).collect();
    let by_openid: HashMap<&str, &Identity> = here.iter().map(|m| (m.openid.as_str(), m)).collect();
    let by_nick: HashMap<&str, &Identity> =
        here.iter().map(|m| (m.nickname_key.as_str(), m)).collect();
    let by_rfid: HashMap<&str, &Identity> = here
        .iter()
        .filter_map(|m| Some((m.rfid.as_deref()?, m)))
        .collect();
    let mut matched = 0u64;
    let mut targets = Vec::with_capacity(planned.len());
    for m in planned {
        let line = format!("users id {}", m.id.0);
        let key = m.new.nickname.key();
        let same_openid = by_openid.get(m.new.openid.as_str()).copied();
        let same_nick = by_nick.get(key.as_str()).copied();
        let target = match (same_openid, same_nick) {
            (Some(a), Some(b)) if a.id == b.id => {
                // the same person
                matched += 1;
                if a.id == m.id {
                    report.members_present += 1;
                } else {
                    report.members_merged += 1;
                }
                Target::Existing(a.id)
            }
            (None, None) => {
                let card = m.new.rfid.as_ref().and_then(|r| by_rfid.get(r.as_str()));
                if let Some(holder) = card {
                    report.conflicts.push(format!(
                        "{line}: card {} is member {}'s",
                        m.new.rfid.as_ref().map_or("", |r| r.as_str()),
                        holder.id.0
                    ));
                    Target::Skip
                } else if by_id.contains_key(&m.id.0) {
                    report.renumbered.push(format!(
                        "{line} ({}): number {} is another member's; gets the next free one",
                        m.new.nickname.as_str(),
                        m.id.0
                    ));
                    Target::New(None)
                } else {
                    Target::New(Some(m.id))
                }
            }
            (a, b) => {
                let holder = a.or(b).map_or(0, |h| h.id.0);
                let what = match (a, b) {
                    (Some(_), _) => format!("openid {} is member {holder}'s", m.new.openid),
                    _ => format!("nickname {} is member {holder}'s", m.new.nickname.as_str()),
                };
                match options.conflicts {
                    Conflicts::Refuse => {
                        report.conflicts.push(format!("{line}: {what}"));
                        Target::Skip
                    }
                    Conflicts::Skip => {
                        report.members_skipped += 1;
                        report.notes.push(format!("{line}: {what}: left out"));
                        Target::Skip
                    }
                    Conflicts::Existing => {
                        report.members_merged += 1;
                        report.notes.push(format!(
                            "{line}: {what}: payments and log rows go to member {holder}"
                        ));
                        Target::Existing(MemberId(holder))
                    }
                }
            }
        };
        targets.push(target);
    }
    let others = here.len() as u64 - matched.min(here.len() as u64);
    if !options.merge && others > 0 {
        report.conflicts.push(format!(
            "the database already has {others} members that are not from this import: \
             import into an empty database, or add --merge"
        ));
    }
    targets
}

/// argon2id hashes of the real passwords, on every core (a hash takes tens
/// of milliseconds by design).
fn hash_all(passwords: &[Option<&str>]) -> Result<Vec<Option<String>>, AppError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = passwords.len().div_ceil(threads).max(1);
    let parts: Vec<Result<Vec<Option<String>>, StorageError>> = std::thread::scope(|s| {
        let handles: Vec<_> = passwords
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|p| p.map(credentials::hash_password).transpose())
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(StorageError::Hashing)))
            .collect()
    });
    let mut out = Vec::with_capacity(passwords.len());
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}
