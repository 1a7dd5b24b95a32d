//! Moving data in and out: exports of members, payments, entries and the
//! token ledger (CSV for spreadsheets, or JSON lines), streamed a page at a
//! time so a million rows export in constant memory; and the import of
//! members and payments from CSV files, every row checked with the API's
//! rules, all or nothing.
//!
//! CSV: UTF-8 with a byte-order mark (Excel shows Chinese correctly), a
//! header row, times in the space's zone (`2026-12-06 09:30`) and in UTC
//! (ISO 8601), amounts as decimal CNY. A cell that a spreadsheet would run
//! as a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage
//! return) is written with a leading `'`; the import takes it off again.

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use zhima_domain::access::AccessEvent;
use zhima_domain::ids::{Gender, NickName, OpenId, Rfid};
use zhima_domain::member::{MemberChange, NewMember, NewPayment, Profile, UpdatableField};
use zhima_domain::tags::{TagInput, Tags};
use zhima_domain::time::format_local_minute;
use zhima_storage::{MemberKey, StorageError, Store};

use crate::members::Members;
use crate::AppError;

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Members with their status and validity.
    Members,
    /// Payments.
    Payments,
    /// The access log.
    Entries,
    /// The token ledger.
    Tokens,
}

impl Table {
    /// From its name (`members`, `payments`, `entries`, `tokens`).
    pub fn parse(text: &str) -> Option<Table> {
        match text {
            "members" => Some(Table::Members),
            "payments" => Some(Table::Payments),
            "entries" => Some(Table::Entries),
            "tokens" => Some(Table::Tokens),
            _ => None,
        }
    }

    /// The columns, in order (the CSV header, the JSON keys).
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Table::Members => &MEMBER_COLUMNS,
            Table::Payments => &PAYMENT_COLUMNS,
            Table::Entries => &ENTRY_COLUMNS,
            Table::Tokens => &[
                "id",
                "openid",
                "kind",
                "amount",
                "reason",
                "reference",
                "time",
                "timeUtc",
            ],
        }
    }
}

/// The columns of a members export (and of a members import, which reads
/// the editable ones and ignores `id`, `status`, `expireTime`…).
pub const MEMBER_COLUMNS: [&str; 19] = [
    "id",
    "openid",
    "nickName",
    "status",
    "expireTime",
    "expireTimeUtc",
    "email",
    "rfid",
    "tags",
    "gender",
    "language",
    "city",
    "province",
    "country",
    "avatarUrl",
    "memo",
    "reminders",
    "createTime",
    "createTimeUtc",
];

/// The columns of a payments export and import.
pub const PAYMENT_COLUMNS: [&str; 10] = [
    "openid",
    "payIndex",
    "payType",
    "amount",
    "paidTime",
    "paidTimeUtc",
    "untilDays",
    "recordedTimeUtc",
    // the span a payment imported from the old server grants as it is
    // (empty for the others, whose span follows from paidTime)
    "spanFromUtc",
    "spanUntilUtc",
];

/// The columns of an access-log export (the console's CSV too).
pub const ENTRY_COLUMNS: [&str; 9] = [
    "id", "time", "timeUtc", "door", "method", "outcome", "reason", "member", "detail",
];

/// The columns a members import needs, and those it may read.
const MEMBER_REQUIRED: [&str; 2] = ["openid", "nickName"];
/// The columns a payments import needs.
const PAYMENT_REQUIRED: [&str; 5] = ["openid", "payIndex", "payType", "amount", "paidTime"];

/// How an export is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV with a header row.
    Csv,
    /// One JSON object a line.
    Json,
}

/// A CSV cell a spreadsheet never runs as a formula.
pub fn guard_cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// The cell as written before [`guard_cell`].
fn unguard_cell(text: &str) -> &str {
    match text.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => text,
    }
}

fn utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An access event as an export row ([`ENTRY_COLUMNS`]).
pub fn entry_row(e: &AccessEvent, tz: Tz) -> Vec<String> {
    vec![
        e.id.to_string(),
        format_local_minute(e.event.at, tz),
        utc(e.event.at),
        e.event.door.clone(),
        e.event.method.as_str().to_owned(),
        e.event.outcome.as_str().to_owned(),
        e.event.reason.clone(),
        e.event.member.map_or(String::new(), |m| m.0.to_string()),
        e.event.detail.clone(),
    ]
}

/// Writes rows as CSV (with the byte-order mark and the header) or JSON
/// lines.
struct Sink<'a> {
    format: Format,
    columns: &'static [&'static str],
    csv: Option<csv::Writer<&'a mut dyn Write>>,
    out: Option<&'a mut dyn Write>,
    rows: u64,
}

impl<'a> Sink<'a> {
    fn new(
        out: &'a mut dyn Write,
        format: Format,
        columns: &'static [&'static str],
    ) -> Result<Sink<'a>, AppError> {
        let mut sink = Sink {
            format,
            columns,
            csv: None,
            out: None,
            rows: 0,
        };
        match format {
            Format::Csv => {
                out.write_all("\u{feff}".as_bytes()).map_err(io)?;
                let mut writer = csv::WriterBuilder::new()
                    .terminator(csv::Terminator::CRLF)
                    .from_writer(out);
                writer.write_record(columns).map_err(io)?;
                sink.csv = Some(writer);
            }
            Format::Json => sink.out = Some(out),
        }
        Ok(sink)
    }

    fn row(&mut self, cells: &[String]) -> Result<(), AppError> {
        self.rows += 1;
        match self.format {
            Format::Csv => {
                let guarded: Vec<String> = cells.iter().map(|c| guard_cell(c)).collect();
                self.csv
                    .as_mut()
                    .map_or(Ok(()), |w| w.write_record(&guarded).map_err(io))
            }
            Format::Json => {
                let object: serde_json::Map<String, serde_json::Value> = self
                    .columns
                    .iter()
                    .zip(cells)
                    .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone())))
                    .collect();
                let out = self.out.as_mut().ok_or_else(|| io("no output"))?;
                serde_json::to_writer(&mut **out, &object).map_err(io)?;
                out.write_all(b"\n").map_err(io)
            }
        }
    }

    fn finish(mut self) -> Result<u64, AppError> {
        if let Some(w) = self.csv.as_mut() {
            w.flush().map_err(io)?;
        }
        if let Some(o) = self.out.as_mut() {
            o.flush().map_err(io)?;
        }
        Ok(self.rows)
    }
}

fn io(e: impl std::fmt::Display) -> AppError {
    AppError::Invalid {
        field: "output",
        reason: e.to_string(),
    }
}

/// Why an import was refused: every bad row, by file and line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Members in the file(s).
    pub members: u64,
    /// Payments in the file(s).
    pub payments: u64,
    /// Members written (0 on a dry run or a refusal).
    pub members_written: u64,
    /// Payments written.
    pub payments_written: u64,
    /// Members already there, identical (a second run): skipped.
    pub members_present: u64,
    /// `file:line: why` for every refused row; non-empty means nothing was
    /// written.
    pub problems: Vec<String>,
}

/// The import and export use cases.
#[derive(Debug, Clone)]
pub struct Transfer {
    store: Store,
    members: Arc<Members>,
    tz: Tz,
}

/// Rows read a page at a time.
const PAGE: u32 = 1000;

impl Transfer {
    /// Over `store`, with `members` for validity.
    pub fn new(store: Store, members: Arc<Members>) -> Transfer {
        Transfer {
            tz: members.tz(),
            store,
            members,
        }
    }

    /// Writes `table` (rows at or after `since`, when it applies) to `out`:
    /// how many rows. Blocking; constant memory.
    pub fn export(
        &self,
        table: Table,
        since: Option<DateTime<Utc>>,
        format: Format,
        out: &mut dyn Write,
        now: DateTime<Utc>,
    ) -> Result<u64, AppError> {
        let tz = self.tz;
        let mut sink = Sink::new(out, format, table.columns())?;
        let mut after = 0i64;
        loop {
            let read = match table {
                Table::Members => {
                    let page = self.store.members_after(after, PAGE)?;
                    for record in &page {
                        let v = self.members.validity(record, now);
                        let m = &record.member;
                        let p = &m.profile;
                        sink.row(&[
                            m.id.0.to_string(),
                            m.openid.as_str().to_owned(),
                            m.nickname.as_str().to_owned(),
                            v.status.wire_name().to_owned(),
                            v.valid_until
                                .map_or(String::new(), |t| format_local_minute(t, tz)),
                            v.valid_until.map_or(String::new(), utc),
                            p.email.clone(),
                            m.rfid
                                .as_ref()
                                .map_or(String::new(), |r| r.as_str().to_owned()),
                            m.tags.to_stored(),
                            p.gender.code().to_string(),
                            p.language.clone(),
                            p.city.clone(),
                            p.province.clone(),
                            p.country.clone(),
                            p.avatar_url.clone(),
                            p.memo.clone(),
                            p.reminders.to_string(),
                            format_local_minute(m.created_at, tz),
                            utc(m.created_at),
                        ])?;
                    }
                    page.last().map(|r| r.member.id.0)
                }
                Table::Payments => {
                    let page = self.store.payments_after(after, since, PAGE)?;
                    for (openid, p) in &page {
                        sink.row(&[
                            openid.clone(),
                            p.pay_index.as_str().to_owned(),
                            p.pay_type.clone(),
                            p.amount.to_string(),
                            format_local_minute(p.paid_at, tz),
                            utc(p.paid_at),
                            p.until_days.map_or(String::new(), |d| d.to_string()),
                            utc(p.recorded_at),
                            p.span.map_or(String::new(), |(from, _)| utc(from)),
                            p.span.map_or(String::new(), |(_, until)| utc(until)),
                        ])?;
                    }
                    page.last().map(|(_, p)| p.id)
                }
                Table::Entries => {
                    let page = self.store.access_events_after(after, since, PAGE)?;
                    for e in &page {
                        sink.row(&entry_row(e, tz))?;
                    }
                    page.last().map(|e| e.id)
                }
                Table::Tokens => {
                    let page = self.store.ledger_after(after, since, PAGE)?;
                    for t in &page {
                        let sign = if t.hundredths < 0 { "-" } else { "" };
                        let abs = t.hundredths.unsigned_abs();
                        sink.row(&[
                            t.id.to_string(),
                            t.openid.clone(),
                            t.kind.clone(),
                            format!("{sign}{}.{:02}", abs / 100, abs % 100),
                            t.reason.clone(),
                            t.reference.clone(),
                            format_local_minute(t.at, tz),
                            utc(t.at),
                        ])?;
                    }
                    page.last().map(|t| t.id)
                }
            };
            match read {
                Some(last) => after = last,
                None => break,
            }
        }
        sink.finish()
    }

    /// Imports members and payments from CSV (UTF-8, with or without a
    /// byte-order mark, comma or semicolon separated, a header row naming
    /// the documented columns). Every row is checked with the API's rules;
    /// any problem refuses the whole import and the report names every bad
    /// row. `dry_run` checks everything and writes nothing. Blocking.
    pub fn import_csv(
        &self,
        members: Option<&mut dyn Read>,
        payments: Option<&mut dyn Read>,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<ImportReport, AppError> {
        let mut report = ImportReport::default();
        let mut new_members: Vec<(NewMember, DateTime<Utc>)> = Vec::new();
        let mut in_file: BTreeSet<String> = BTreeSet::new();
        if let Some(file) = members {
            let (header, rows) = read_csv(file, "members")?;
            check_header("members", &header, &MEMBER_REQUIRED, &MEMBER_COLUMNS)?;
            for (line, row) in rows {
                report.members += 1;
                let cells = Row {
                    header: &header,
                    cells: &row,
                };
                match self.member_row(&cells, now) {
                    Err(why) => report.problems.push(format!("members:{line}: {why}")),
                    Ok((new, created)) => {
                        if !in_file.insert(new.openid.as_str().to_owned()) {
                            report.problems.push(format!(
                                "members:{line}: openid {} is in the file twice",
                                new.openid
                            ));
                            continue;
                        }
                        match self.store.member(MemberKey::OpenId(&new.openid))? {
                            Some(existing) if existing.member.nickname == new.nickname => {
                                report.members_present += 1;
                            }
                            Some(_) => report.problems.push(format!(
                                "members:{line}: openid {} belongs to another member already",
                                new.openid
                            )),
                            None => new_members.push((new, created)),
                        }
                    }
                }
            }
        }
        let mut new_payments: Vec<(OpenId, NewPayment)> = Vec::new();
        if let Some(file) = payments {
            let (header, rows) = read_csv(file, "payments")?;
            check_header("payments", &header, &PAYMENT_REQUIRED, &PAYMENT_COLUMNS)?;
            let mut indexes: BTreeSet<String> = BTreeSet::new();
            for (line, row) in rows {
                report.payments += 1;
                let cells = Row {
                    header: &header,
                    cells: &row,
                };
                match self.payment_row(&cells) {
                    Err(why) => report.problems.push(format!("payments:{line}: {why}")),
                    Ok((openid, payment)) => {
                        let known = in_file.contains(openid.as_str())
                            || self.store.member(MemberKey::OpenId(&openid))?.is_some();
                        if !known {
                            report
                                .problems
                                .push(format!("payments:{line}: no member with openid {openid}"));
                        } else if !indexes.insert(payment.pay_index.as_str().to_owned()) {
                            report.problems.push(format!(
                                "payments:{line}: payIndex {} is in the file twice",
                                payment.pay_index
                            ));
                        } else {
                            new_payments.push((openid, payment));
                        }
                    }
                }
            }
        }
        if !report.problems.is_empty() || dry_run {
            return Ok(report);
        }
        match self.store.import_batch(&new_members, &new_payments, now) {
            Ok((m, p)) => {
                report.members_written = m;
                report.payments_written = p;
            }
            Err(StorageError::PaymentConflict(index)) => report.problems.push(format!(
                "payments: payIndex {index} is recorded already with other content"
            )),
            Err(StorageError::Duplicate(field)) => report.problems.push(format!(
                "members: a {} in the file belongs to another member already",
                field.wire_name()
            )),
            Err(e) => return Err(e.into()),
        }
        Ok(report)
    }

    /// A member of a members file, checked as the API checks one.
    fn member_row(
        &self,
        row: &Row<'_>,
        now: DateTime<Utc>,
    ) -> Result<(NewMember, DateTime<Utc>), String> {
        let cell = |name: &str| row.get(name);
        let openid = OpenId::parse(cell("openid")).map_err(|e| format!("openid: {e}"))?;
        let nickname = NickName::parse(cell("nickName")).map_err(|e| format!("nickName: {e}"))?;
        let rfid = match cell("rfid") {
            "" => None,
            r => Some(Rfid::parse(r).map_err(|e| format!("rfid: {e}"))?),
        };
        let tags = match cell("tags") {
            "" => Tags::default_new_member(),
            t => Tags::parse(&[TagInput::Text(t)]).map_err(|e| format!("tags: {e}"))?,
        };
        let gender = match cell("gender") {
            "" => Gender::Unknown,
            g => g
                .parse::<i64>()
                .ok()
                .and_then(|n| Gender::from_code(n).ok())
                .ok_or("gender: must be 0, 1 or 2")?,
        };
        // the Member API's rules for each text field (`MemberChange::text`)
        let text = |field: UpdatableField| -> Result<String, String> {
            match MemberChange::text(field, cell(field.wire_name())) {
                Ok(MemberChange::Text(_, value)) => Ok(value),
                Ok(_) => Ok(String::new()),
                Err(e) => Err(e.to_string()),
            }
        };
        let reminders = match cell("reminders") {
            "" | "true" => true,
            "false" => false,
            _ => return Err("reminders: must be true or false".into()),
        };
        let created = match cell("createTimeUtc") {
            "" => now,
            t => DateTime::parse_from_rfc3339(t)
                .map_err(|_| "createTimeUtc: not an ISO 8601 time")?
                .with_timezone(&Utc),
        };
        Ok((
            NewMember {
                openid,
                nickname,
                rfid,
                tags,
                profile: Profile {
                    email: text(UpdatableField::Email)?,
                    avatar_url: text(UpdatableField::AvatarUrl)?,
                    city: text(UpdatableField::City)?,
                    province: text(UpdatableField::Province)?,
                    country: text(UpdatableField::Country)?,
                    language: text(UpdatableField::Language)?,
                    memo: text(UpdatableField::Memo)?,
                    gender,
                    reminders,
                },
            },
            created,
        ))
    }

    /// A payment of a payments file, checked as the API checks one.
    fn payment_row(&self, row: &Row<'_>) -> Result<(OpenId, NewPayment), String> {
        let cell = |name: &str| row.get(name);
        let openid = OpenId::parse(cell("openid")).map_err(|e| format!("openid: {e}"))?;
        // an exact UTC time, when given, wins over the local minute
        let utc_paid = match cell("paidTimeUtc") {
            "" => None,
            t => Some(
                DateTime::parse_from_rfc3339(t)
                    .map_err(|_| "paidTimeUtc: not an ISO 8601 time")?
                    .with_timezone(&Utc),
            ),
        };
        let paid_time: String = match utc_paid {
            Some(t) => zhima_domain::time::format_local_timestamp(t, self.tz),
            None => cell("paidTime")
                .chars()
                .filter(char::is_ascii_digit)
                .collect(),
        };
        let until_days = match cell("untilDays") {
            "" => None,
            d => Some(
                d.parse::<i64>()
                    .map_err(|_| "untilDays: must be a number of days")?,
            ),
        };
        // the Member API's rules, field for field (`PaymentInput::parse`)
        let input = zhima_domain::member::PaymentInput {
            paid_time: Some(&paid_time),
            pay_index: Some(cell("payIndex")),
            amount: Some(cell("amount")),
            pay_type: Some(cell("payType")),
            until_days,
        };
        let mut payment = input.parse(self.members.plans(), self.tz).map_err(
            |zhima_domain::DomainError::InvalidField { field, reason }| {
                let column = match field {
                    "CNYAmount" => "amount",
                    "until_days" => "untilDays",
                    other => other,
                };
                format!("{column}: {reason}")
            },
        )?;
        if let Some(t) = utc_paid {
            payment.paid_at = t;
        }
        let instant = |column: &str| match cell(column) {
            "" => Ok(None),
            t => DateTime::parse_from_rfc3339(t)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|_| format!("{column}: not an ISO 8601 time")),
        };
        payment.span = match (instant("spanFromUtc")?, instant("spanUntilUtc")?) {
            (None, None) => None,
            (Some(from), Some(until)) if from < until => Some((from, until)),
            (Some(_), Some(_)) => return Err("spanUntilUtc: must come after spanFromUtc".into()),
            _ => return Err("spanFromUtc and spanUntilUtc: give both or neither".into()),
        };
        Ok((openid, payment))
    }
}

/// A row of a CSV file, read by column name.
struct Row<'a> {
    header: &'a [String],
    cells: &'a [String],
}

impl<'a> Row<'a> {
    /// The cell of column `name` (trimmed, its formula guard taken off),
    /// or empty.
    fn get(&self, name: &str) -> &'a str {
        self.header
            .iter()
            .position(|h| h == name)
            .and_then(|i| self.cells.get(i))
            .map_or("", |c| unguard_cell(c.trim()))
    }
}

/// A row of a file and its line number.
type NumberedRow = (u64, Vec<String>);

/// A CSV file's header and rows (with their line numbers): UTF-8 with or
/// without a byte-order mark, comma or semicolon separated (whichever the
/// header line holds more of).
fn read_csv(file: &mut dyn Read, name: &str) -> Result<(Vec<String>, Vec<NumberedRow>), AppError> {
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io)?;
    let text = String::from_utf8(bytes).map_err(|_| AppError::Invalid {
        field: "file",
        reason: format!("{name}: not UTF-8 text (save the sheet as CSV UTF-8)"),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let first = text.lines().next().unwrap_or("");
    let delimiter = if first.matches(';').count() > first.matches(',').count() {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| AppError::Invalid {
            field: "file",
            reason: format!("{name}: {e}"),
        })?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| AppError::Invalid {
            field: "file",
            reason: format!("{name}: {e}"),
        })?;
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        rows.push((line, record.iter().map(str::to_owned).collect()));
    }
    Ok((header, rows))
}

/// Refuses a header that lacks a required column or names an unknown one.
fn check_header(
    name: &str,
    header: &[String],
    required: &[&str],
    known: &[&str],
) -> Result<(), AppError> {
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|r| !header.iter().any(|h| h == r))
        .collect();
    let unknown: Vec<&String> = header
        .iter()
        .filter(|h| !known.contains(&h.as_str()))
        .collect();
    let mut seen: HashMap<&str, u32> = HashMap::new();
    for h in header {
        *seen.entry(h.as_str()).or_default() += 1;
    }
    let twice: Vec<&&str> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(h, _)| h)
        .collect();
    if missing.is_empty() && unknown.is_empty() && twice.is_empty() {
        return Ok(());
    }
    Err(AppError::Invalid {
        field: "file",
        reason: format!(
            "{name}: the header does not match the documented columns (missing: {:?}; unknown: {:?}; twice: {:?}); the columns are {}",
            missing,
            unknown,
            twice,
            known.join(",")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guarded_cell_reads_back_as_written() {
        for text in [
            "=HYPERLINK(\"x\")",
            "+1",
            "-5",
            "@me",
            "plain",
            "'quoted",
            "",
        ] {
            assert_eq!(unguard_cell(&guard_cell(text)), text);
        }
        assert_eq!(guard_cell("=1+1"), "'=1+1");
    }

    #[test]
    fn a_header_that_does_not_match_is_refused_loudly() {
        let h = |cols: &[&str]| cols.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>();
        assert!(check_header(
            "members",
            &h(&["openid", "nickName"]),
            &MEMBER_REQUIRED,
            &MEMBER_COLUMNS
        )
        .is_ok());
        let err = check_header(
            "members",
            &h(&["open_id", "nickName"]),
            &MEMBER_REQUIRED,
            &MEMBER_COLUMNS,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("missing") && err.contains("open_id"), "{err}");
        assert!(check_header(
            "payments",
            &h(&["openid", "payIndex", "payType", "amount", "paidTime", "amount"]),
            &PAYMENT_REQUIRED,
            &PAYMENT_COLUMNS
        )
        .is_err());
    }
}
