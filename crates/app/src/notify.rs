//! Notifications: the daily sweep that queues reminders and end notices in
//! the outbox, and the delivery of queued messages through a [`Mailer`].
//!
//! The sweep is idempotent: every notice has a key (see
//! `zhima_domain::notify`) and the outbox queues a key once, so a second
//! sweep, a sweep after a restart, or two servers sweeping at once queue
//! nothing more. Delivery claims each message with a lease, so two senders
//! never hold the same message; a sender that dies after the mail server
//! took a message and before it recorded that sends that one message again
//! when the lease runs out.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use zhima_domain::membership::MemberStatus;
use zhima_domain::notify::{due_on, Due, Notice, Subject};
use zhima_storage::outbox::{Delivery, Message, NewMessage};
use zhima_storage::{MemberKey, MemberSearch, Store};

use crate::members::Members;
use crate::AppError;

/// An email ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// The address.
    pub to: String,
    /// The name shown with it.
    pub to_name: String,
    /// The subject line.
    pub subject: String,
    /// The plain text.
    pub text: String,
    /// The same as HTML.
    pub html: String,
}

/// Why a mail server did not take an email.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// Try again later (a connection failure, a 4xx answer).
    #[error("temporary: {0}")]
    Transient(String),
    /// It will never work (a 5xx answer, a bad address).
    #[error("permanent: {0}")]
    Permanent(String),
}

/// Something that sends email (SMTP in the server; a recorder in tests).
pub trait Mailer: Send + Sync + std::fmt::Debug {
    /// Sends one email. Blocking.
    fn send(&self, email: &Email) -> Result<(), MailError>;
}

/// A language of the emails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Simplified Chinese.
    Zh,
    /// English.
    En,
}

impl Lang {
    /// From a member's `language` (`zh_CN`, `en`, `en-US`…), if it names one.
    pub fn from_member(text: &str) -> Option<Lang> {
        let primary = text.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

/// How notifications are made.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// Reminder days before an end (`[7]`; `[14, 3]`…).
    pub reminder_days: Vec<u32>,
    /// The language of members who have none.
    pub language: Lang,
    /// The space's name, as emails sign.
    pub space_name: String,
    /// Delivery attempts before a message is given up.
    pub max_attempts: u32,
}

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Members looked at.
    pub members: u64,
    /// Notices due today.
    pub due: u64,
    /// Of those, queued now.
    pub queued: u64,
    /// Of those, queued by an earlier sweep.
    pub already: u64,
    /// Due notices of members without an email address (not queued).
    pub no_email: u64,
    /// Due notices of members who opted out (not queued).
    pub opted_out: u64,
    /// The notices due, as `key` lines (for `--dry-run`).
    pub keys: Vec<String>,
}

/// What a delivery round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Sent.
    pub sent: u64,
    /// To try again.
    pub retried: u64,
    /// Given up.
    pub failed: u64,
}

/// How long a sender holds a claimed message.
const LEASE: chrono::Duration = chrono::Duration::minutes(5);

/// The wait before attempt `n + 1`: 1, 2, 4… minutes, at most 6 hours.
fn backoff(attempts: u32) -> chrono::Duration {
    let minutes = 1i64 << attempts.saturating_sub(1).min(9);
    chrono::Duration::minutes(minutes.min(360))
}

/// The notification use cases.
#[derive(Debug, Clone)]
pub struct Notifier {
    store: Store,
    members: Arc<Members>,
    tz: Tz,
    settings: NotifySettings,
}

impl Notifier {
    /// Notifications over `store` and `members` with `settings`.
    pub fn new(store: Store, members: Arc<Members>, settings: NotifySettings) -> Notifier {
        Notifier {
            tz: members.tz(),
            store,
            members,
            settings,
        }
    }

    /// The space's time zone.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The settings.
    pub fn settings(&self) -> &NotifySettings {
        &self.settings
    }

    /// The daily sweep for local date `today`: queues every reminder and end
    /// notice due that day (each once, ever). `dry_run` queues nothing and
    /// reports what would be. Blocking; reads every member, a page at a time.
    pub fn sweep(
        &self,
        today: NaiveDate,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<SweepReport, AppError> {
        let mut report = SweepReport::default();
        let mut after: Option<String> = None;
        loop {
            let (records, next) = self.store.find_members(&MemberSearch {
                text: "",
                deactivated: Some(false),
                after: after.clone(),
                limit: 200,
                ..MemberSearch::default()
            })?;
            for record in records {
                report.members += 1;
                let validity = self.members.validity(&record, now);
                if validity.status == MemberStatus::Invalid {
                    continue;
                }
                let mut ends = Vec::new();
                if let Some(end) = validity.membership_until {
                    ends.push((Subject::Membership, end));
                }
                if let Some(end) = record.vip.iter().map(|p| p.end).max() {
                    ends.push((Subject::Vip, end));
                }
                let due = due_on(today, &ends, &self.settings.reminder_days, self.tz);
                for notice in due {
                    report.due += 1;
                    let key = notice.key(record.member.id.0);
                    report.keys.push(key.clone());
                    if record.member.profile.email.trim().is_empty() {
                        report.no_email += 1;
                        continue;
                    }
                    if dry_run {
                        if self.store.outbox_has(&key)? {
                            report.already += 1;
                        } else {
                            report.queued += 1;
                        }
                        continue;
                    }
                    let payload = payload_of(&notice);
                    let queued = self.store.enqueue(
                        &NewMessage {
                            once_key: &key,
                            channel: "email",
                            kind: &notice.kind(),
                            member: Some(record.member.id),
                            payload: &payload,
                        },
                        now,
                    )?;
                    if queued {
                        report.queued += 1;
                    } else {
                        report.already += 1;
                    }
                }
            }
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        Ok(report)
    }

    /// Delivers the messages due at `now` (up to `limit`) through `mailer`:
    /// each is rendered in its member's language, sent, and recorded as
    /// sent, to retry (with backoff) or failed (after
    /// [`NotifySettings::max_attempts`], or at once for a permanent
    /// refusal). Blocking.
    pub fn deliver(
        &self,
        mailer: &dyn Mailer,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<DeliveryReport, AppError> {
        let mut report = DeliveryReport::default();
        for message in self.store.claim_messages(now, LEASE, limit)? {
            let delivery = match self.render(&message, now) {
                Err(reason) => Delivery::GiveUp { error: reason },
                Ok(email) => match mailer.send(&email) {
                    Ok(()) => Delivery::Sent,
                    Err(MailError::Permanent(e)) => Delivery::GiveUp { error: e },
                    Err(MailError::Transient(e))
                        if message.attempts >= self.settings.max_attempts =>
                    {
                        Delivery::GiveUp { error: e }
                    }
                    Err(MailError::Transient(e)) => Delivery::Retry {
                        error: e,
                        next_at: now + backoff(message.attempts),
                    },
                },
            };
            match &delivery {
                Delivery::Sent => report.sent += 1,
                Delivery::Retry { error, .. } => {
                    tracing::warn!(key = %message.once_key, %error, "an email will be retried");
                    report.retried += 1;
                }
                Delivery::GiveUp { error } => {
                    tracing::warn!(key = %message.once_key, %error, "an email was given up");
                    report.failed += 1;
                }
            }
            self.store.finish_message(message.id, &delivery, now)?;
        }
        Ok(report)
    }

    /// The email of a queued message, for its member as they are now.
    fn render(&self, message: &Message, now: DateTime<Utc>) -> Result<Email, String> {
        let member = message.member.ok_or("a message for no member")?;
        let record = self
            .store
            .member(MemberKey::Id(member))
            .map_err(|e| e.to_string())?
            .ok_or("the member is gone")?;
        let m = &record.member;
        let to = m.profile.email.trim().to_owned();
        if to.is_empty() {
            return Err("the member has no email address now".into());
        }
        let lang = Lang::from_member(&m.profile.language).unwrap_or(self.settings.language);
        let (subject, notice, end) =
            parse_payload(&message.payload).ok_or("an unreadable message")?;
        let date = zhima_domain::time::local_date(end, self.tz)
            .format("%Y-%m-%d")
            .to_string();
        let days_left = (zhima_domain::time::local_date(end, self.tz)
            - zhima_domain::time::local_date(now, self.tz))
        .num_days()
        .max(0);
        let words = words(lang);
        let what = match subject {
            Subject::Membership => words.membership,
            Subject::Vip => words.vip,
        };
        let (title, lines) = match notice {
            Notice::Reminder { .. } => (
                fill(
                    words.reminder_subject,
                    what,
                    &date,
                    days_left,
                    &self.settings.space_name,
                ),
                vec![
                    fill(
                        words.reminder_body,
                        what,
                        &date,
                        days_left,
                        &self.settings.space_name,
                    ),
                    words.renew.to_owned(),
                ],
            ),
            Notice::Ended => (
                fill(
                    words.ended_subject,
                    what,
                    &date,
                    days_left,
                    &self.settings.space_name,
                ),
                vec![
                    fill(
                        words.ended_body,
                        what,
                        &date,
                        days_left,
                        &self.settings.space_name,
                    ),
                    words.renew.to_owned(),
                ],
            ),
        };
        let greeting = words.greeting.replace("{name}", m.nickname.as_str());
        let sign = format!("— {}", self.settings.space_name);
        let text = format!("{greeting}\n\n{}\n\n{sign}\n", lines.join("\n\n"));
        let html = format!(
            "<!doctype html><html lang=\"{}\"><body><p>{}</p>{}<p>{}</p></body></html>",
            match lang {
                Lang::Zh => "zh-CN",
                Lang::En => "en",
            },
            escape(&greeting),
            lines
                .iter()
                .map(|l| format!("<p>{}</p>", escape(l)))
                .collect::<String>(),
            escape(&sign)
        );
        Ok(Email {
            to,
            to_name: m.nickname.as_str().to_owned(),
            subject: title,
            text,
            html,
        })
    }
}

/// The payload of a notice: its subject, notice and end.
fn payload_of(due: &Due) -> String {
    let notice = match due.notice {
        Notice::Reminder { days } => format!("reminder-{days}"),
        Notice::Ended => "ended".to_owned(),
    };
    format!(
        "{{\"subject\":\"{}\",\"notice\":\"{notice}\",\"end\":{}}}",
        due.subject.name(),
        due.end.timestamp()
    )
}

fn parse_payload(payload: &str) -> Option<(Subject, Notice, DateTime<Utc>)> {
    let field = |name: &str| -> Option<&str> {
        let start = payload.find(&format!("\"{name}\":"))? + name.len() + 3;
        let rest = &payload[start..];
        let rest = rest.strip_prefix('"').unwrap_or(rest);
        let end = rest.find(['"', ',', '}'])?;
        Some(&rest[..end])
    };
    let subject = match field("subject")? {
        "membership" => Subject::Membership,
        "vip" => Subject::Vip,
        _ => return None,
    };
    let notice = match field("notice")? {
        "ended" => Notice::Ended,
        other => Notice::Reminder {
            days: other.strip_prefix("reminder-")?.parse().ok()?,
        },
    };
    let end = DateTime::from_timestamp(field("end")?.parse().ok()?, 0)?;
    Some((subject, notice, end))
}

fn fill(template: &str, what: &str, date: &str, days: i64, space: &str) -> String {
    template
        .replace("{what}", what)
        .replace("{date}", date)
        .replace("{days}", &days.to_string())
        .replace("{space}", space)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The words of the emails, in one language.
#[derive(Debug)]
pub struct Words {
    /// `Hello {name},`
    pub greeting: &'static str,
    /// The membership line.
    pub membership: &'static str,
    /// A VIP period.
    pub vip: &'static str,
    /// The reminder's subject.
    pub reminder_subject: &'static str,
    /// The reminder's text.
    pub reminder_body: &'static str,
    /// The end notice's subject.
    pub ended_subject: &'static str,
    /// The end notice's text.
    pub ended_body: &'static str,
    /// How to renew.
    pub renew: &'static str,
}

/// English.
pub static EN: Words = Words {
    greeting: "Hello {name},",
    membership: "membership",
    vip: "VIP membership",
    reminder_subject: "Your {what} at {space} ends on {date}",
    reminder_body: "Your {what} at {space} ends on {date}, in {days} days.",
    ended_subject: "Your {what} at {space} has ended",
    ended_body: "Your {what} at {space} ended on {date}.",
    renew: "To renew, pay at the front desk or in the mini-program; the door opens for you again at once.",
};

/// Simplified Chinese.
pub static ZH: Words = Words {
    greeting: "{name}，你好：",
    membership: "会员资格",
    vip: "VIP 会员",
    reminder_subject: "你在{space}的{what}将于 {date} 到期",
    reminder_body: "你在{space}的{what}将于 {date} 到期，还有 {days} 天。",
    ended_subject: "你在{space}的{what}已到期",
    ended_body: "你在{space}的{what}已于 {date} 到期。",
    renew: "续费请到前台或在小程序中支付，门禁会立即为你重新开放。",
};

/// The words of `lang`.
pub fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::Zh => &ZH,
        Lang::En => &EN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(w: &Words) -> [&'static str; 8] {
        [
            w.greeting,
            w.membership,
            w.vip,
            w.reminder_subject,
            w.reminder_body,
            w.ended_subject,
            w.ended_body,
            w.renew,
        ]
    }

    #[test]
    fn every_email_string_exists_in_both_languages() {
        let cjk = |s: &str| s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
        for (en, zh) in all(&EN).iter().zip(all(&ZH)) {
            assert!(!en.trim().is_empty() && !zh.trim().is_empty());
            assert!(!cjk(en), "Chinese in the English: {en}");
            assert!(cjk(zh), "the Chinese is not Chinese: {zh}");
        }
    }

    #[test]
    fn a_payload_reads_back_and_backoff_grows_to_a_bound() {
        let end = DateTime::from_timestamp(1_523_532_600, 0).unwrap();
        for notice in [Notice::Ended, Notice::Reminder { days: 14 }] {
            let due = Due {
                subject: Subject::Vip,
                notice,
                end,
            };
            assert_eq!(
                parse_payload(&payload_of(&due)),
                Some((Subject::Vip, notice, end))
            );
        }
        assert_eq!(parse_payload("{}"), None);
        assert_eq!(backoff(1), chrono::Duration::minutes(1));
        assert_eq!(backoff(3), chrono::Duration::minutes(4));
        assert_eq!(backoff(40), chrono::Duration::minutes(360));
        assert_eq!(Lang::from_member("zh_CN"), Some(Lang::Zh));
        assert_eq!(Lang::from_member("en-GB"), Some(Lang::En));
        assert_eq!(Lang::from_member(""), None);
    }
}
