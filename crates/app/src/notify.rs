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
    /// A PNG to attach: its file name and bytes (the member's QR code).
    pub attachment: Option<(String, Vec<u8>)>,
}

/// Makes the QR code a member shows at the door, as a PNG: signed from
/// `from` until `until` (the server's signing key and renderer).
pub trait QrImages: Send + Sync + std::fmt::Debug {
    /// The PNG, or why it cannot be made.
    fn png(
        &self,
        member: zhima_domain::ids::MemberId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<u8>, String>;
}

/// What a queued message is about (its payload, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    /// A reminder or an end notice.
    Notice {
        /// `membership` or `vip`.
        subject: String,
        /// `reminder-N` or `ended`.
        notice: String,
        /// The end, unix seconds.
        end: i64,
    },
    /// The receipt of a payment (queued with the payment).
    Receipt {
        /// The payment's row.
        payment: i64,
    },
    /// An entry pack nearly or wholly used.
    Pack {
        /// Entry days left (2 or 0).
        left: u32,
        /// The pack's payment.
        payment: i64,
    },
    /// The member's QR code, on request.
    Qr,
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
    /// How long a sender holds a claimed message: a sender that dies leaves
    /// its messages to others after this.
    pub lease: chrono::Duration,
    /// The first wait before a retry (doubling with each attempt, at most
    /// 6 hours).
    pub retry: chrono::Duration,
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

/// The notification use cases.
#[derive(Debug, Clone)]
pub struct Notifier {
    store: Store,
    members: Arc<Members>,
    tz: Tz,
    settings: NotifySettings,
    qr: Option<Arc<dyn QrImages>>,
    email: bool,
    words: [&'static Words; 2],
    webhooks: Option<(
        crate::webhooks::WebhookKey,
        Arc<dyn crate::webhooks::Poster>,
    )>,
}

impl Notifier {
    /// Notifications over `store` and `members` with `settings`.
    pub fn new(store: Store, members: Arc<Members>, settings: NotifySettings) -> Notifier {
        Notifier {
            tz: members.tz(),
            store,
            members,
            settings,
            qr: None,
            email: true,
            webhooks: None,
            words: [&ZH, &EN],
        }
    }

    /// This notifier with the words of the emails in `zh` and `en` (a
    /// space's own, see [`load_words`]).
    pub fn with_words(mut self, zh: &'static Words, en: &'static Words) -> Notifier {
        self.words = [zh, en];
        self
    }

    fn words(&self, lang: Lang) -> &'static Words {
        match lang {
            Lang::Zh => self.words[0],
            Lang::En => self.words[1],
        }
    }

    /// This notifier without email: the sweep queues webhook events only.
    pub fn without_email(mut self) -> Notifier {
        self.email = false;
        self
    }

    /// This notifier, delivering webhook events through `poster`, signed
    /// with secrets derived from `key`.
    pub fn with_webhooks(
        mut self,
        key: crate::webhooks::WebhookKey,
        poster: Arc<dyn crate::webhooks::Poster>,
    ) -> Notifier {
        self.webhooks = Some((key, poster));
        self
    }

    /// This notifier, making QR codes for the emails that carry one.
    pub fn with_qr(mut self, qr: Arc<dyn QrImages>) -> Notifier {
        self.qr = Some(qr);
        self
    }

    /// Queues an email with the member's QR code (`zhima member send-qr`):
    /// every request is a message of its own. Refused for a member without
    /// an email address or not admitted now. Blocking.
    pub fn request_qr(
        &self,
        openid: &zhima_domain::ids::OpenId,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let record = self
            .store
            .member(MemberKey::OpenId(openid))?
            .ok_or(zhima_storage::StorageError::MemberNotFound)?;
        if record.member.profile.email.trim().is_empty() {
            return Err(AppError::Invalid {
                field: "email",
                reason: "the member has no email address".into(),
            });
        }
        let validity = self.members.validity(&record, now);
        if zhima_domain::qr::admits(&validity).is_err() {
            return Err(AppError::Invalid {
                field: "status",
                reason: "the member is not admitted now: their QR code would not open the door"
                    .into(),
            });
        }
        let key = format!(
            "qr:{}:{}",
            record.member.id.0,
            now.timestamp_nanos_opt().unwrap_or_default()
        );
        self.store.enqueue(
            &NewMessage {
                once_key: &key,
                channel: "email",
                kind: "qr",
                member: Some(record.member.id),
                payload: "{\"type\":\"qr\"}",
            },
            now,
        )?;
        Ok(())
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
                let notices = due_on(today, &ends, &self.settings.reminder_days, self.tz);
                // webhooks hear of every expiring and expired member, opted
                // out of emails or not
                if !dry_run {
                    for d in &notices {
                        let event = match d.notice {
                            Notice::Reminder { .. } => "member.expiring",
                            Notice::Ended => "member.expired",
                        };
                        let data = serde_json::json!({
                            "member": {"id": record.member.id.0, "openid": record.member.openid.as_str()},
                            "subject": d.subject.name(),
                            "end": d.end.to_rfc3339(),
                        });
                        self.store
                            .queue_event(event, &d.key(record.member.id.0), data, now)?;
                    }
                }
                if !self.email {
                    continue;
                }
                let mut due: Vec<(String, String, Payload)> = notices
                    .into_iter()
                    .map(|d| (d.key(record.member.id.0), d.kind(), payload_of(&d)))
                    .collect();
                // an entry pack nearly (2 days left) or wholly used: once per pack
                if let Some(left @ (0 | 2)) = validity.entry_days_left {
                    let pack = self
                        .members
                        .timeline(&record)
                        .into_iter()
                        .filter(|s| {
                            matches!(s.grant, zhima_domain::membership::SpanGrant::Entries(_))
                                && s.start <= now
                                && now < s.end
                        })
                        .map(|s| s.payment_id)
                        .max();
                    if let Some(payment) = pack {
                        let kind = if left == 0 { "pack-used" } else { "pack-low" };
                        due.push((
                            format!("pack:{kind}:{}:{payment}", record.member.id.0),
                            kind.to_owned(),
                            Payload::Pack { left, payment },
                        ));
                    }
                }
                for (key, kind, payload) in due {
                    report.due += 1;
                    report.keys.push(key.clone());
                    if record.member.profile.email.trim().is_empty() {
                        report.no_email += 1;
                        continue;
                    }
                    if !record.member.profile.reminders {
                        report.opted_out += 1;
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
                    let payload =
                        serde_json::to_string(&payload).map_err(|e| AppError::Invalid {
                            field: "payload",
                            reason: e.to_string(),
                        })?;
                    let queued = self.store.enqueue(
                        &NewMessage {
                            once_key: &key,
                            channel: "email",
                            kind: &kind,
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
        mailer: Option<&dyn Mailer>,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<DeliveryReport, AppError> {
        let mut report = DeliveryReport::default();
        for message in self.store.claim_messages(now, self.settings.lease, limit)? {
            let outcome = match message.channel.as_str() {
                "email" => match mailer {
                    None => Err(MailError::Transient("no mail server is configured".into())),
                    Some(mailer) => match self.render(&message, now) {
                        Err(reason) => Err(MailError::Permanent(reason)),
                        Ok(email) => mailer.send(&email),
                    },
                },
                "webhook" => self.post(&message, now),
                other => Err(MailError::Permanent(format!("unknown channel {other:?}"))),
            };
            let delivery = match outcome {
                Ok(()) => Delivery::Sent,
                Err(MailError::Permanent(e)) => Delivery::GiveUp { error: e },
                Err(MailError::Transient(e)) if message.attempts >= self.settings.max_attempts => {
                    Delivery::GiveUp { error: e }
                }
                Err(MailError::Transient(e)) => Delivery::Retry {
                    error: e,
                    next_at: now
                        + zhima_domain::notify::retry_backoff(
                            self.settings.retry,
                            message.attempts,
                        ),
                },
            };
            match &delivery {
                Delivery::Sent => report.sent += 1,
                Delivery::Retry { error, .. } => {
                    tracing::warn!(key = %message.once_key, %error, "a notification will be retried");
                    report.retried += 1;
                }
                Delivery::GiveUp { error } => {
                    tracing::warn!(key = %message.once_key, %error, "a notification was given up");
                    report.failed += 1;
                }
            }
            self.store.finish_message(message.id, &delivery, now)?;
        }
        Ok(report)
    }

    /// POSTs a webhook delivery, signed (see [`crate::webhooks`]).
    fn post(&self, message: &Message, now: DateTime<Utc>) -> Result<(), MailError> {
        let (key, poster) = self
            .webhooks
            .as_ref()
            .ok_or_else(|| MailError::Transient("webhooks are not delivered here".into()))?;
        #[derive(serde::Deserialize)]
        struct Queued {
            webhook: i64,
            body: serde_json::Value,
        }
        let queued: Queued = serde_json::from_str(&message.payload)
            .map_err(|_| MailError::Permanent("an unreadable delivery".into()))?;
        let hook = self
            .store
            .webhook(queued.webhook)
            .map_err(|e| MailError::Transient(e.to_string()))?
            .filter(|h| h.removed_at.is_none())
            .ok_or_else(|| MailError::Permanent("the webhook was removed".into()))?;
        let body =
            serde_json::to_vec(&queued.body).map_err(|e| MailError::Permanent(e.to_string()))?;
        let timestamp = now.timestamp();
        let secret = key.secret(&hook);
        let headers = [
            ("Content-Type", "application/json".to_owned()),
            ("User-Agent", "zhima-webhook/1".to_owned()),
            ("X-Zhima-Event", message.kind.clone()),
            ("X-Zhima-Delivery", message.id.to_string()),
            ("X-Zhima-Timestamp", timestamp.to_string()),
            (
                "X-Zhima-Signature",
                crate::webhooks::signature(&secret, timestamp, &body),
            ),
        ];
        match poster.post(&hook.url, &headers, &body) {
            Ok(status) if (200..300).contains(&status) => Ok(()),
            // the receiver says the endpoint is gone for good
            Ok(410) => Err(MailError::Permanent("410 Gone".into())),
            Ok(status) => Err(MailError::Transient(format!(
                "the receiver answered {status}"
            ))),
            Err(e) => Err(MailError::Transient(e)),
        }
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
        let words = self.words(lang);
        let day = |t: DateTime<Utc>| {
            zhima_domain::time::local_date(t, self.tz)
                .format("%Y-%m-%d")
                .to_string()
        };
        let minute = |t: DateTime<Utc>| zhima_domain::time::format_local_minute(t, self.tz);
        let space = self.settings.space_name.as_str();
        let payload: Payload =
            serde_json::from_str(&message.payload).map_err(|_| "an unreadable message")?;
        let mut attachment = None;
        let (title, lines): (String, Vec<String>) = match payload {
            Payload::Notice {
                subject,
                notice,
                end,
            } => {
                let (subject, notice, end) =
                    notice_of(&subject, &notice, end).ok_or("an unreadable notice")?;
                let days_left = (zhima_domain::time::local_date(end, self.tz)
                    - zhima_domain::time::local_date(now, self.tz))
                .num_days()
                .max(0)
                .to_string();
                let what = match subject {
                    Subject::Membership => words.membership,
                    Subject::Vip => words.vip,
                };
                let vars = [
                    ("what", what),
                    ("date", &day(end)),
                    ("days", &days_left),
                    ("space", space),
                ];
                let (head, body) = match notice {
                    Notice::Reminder { .. } => (words.reminder_subject, words.reminder_body),
                    Notice::Ended => (words.ended_subject, words.ended_body),
                };
                (
                    fill(head, &vars),
                    vec![fill(body, &vars), words.renew.to_owned()],
                )
            }
            Payload::Receipt { payment } => {
                let paid = record
                    .payments
                    .iter()
                    .find(|p| p.id == payment)
                    .ok_or("the payment is gone")?;
                let validity = self.members.validity(&record, now);
                let until = validity
                    .valid_until
                    .map_or_else(|| words.none.to_owned(), minute);
                let amount = paid.amount.to_string();
                let vars = [
                    ("plan", paid.pay_type.as_str()),
                    ("amount", &amount),
                    ("paid", &minute(paid.paid_at)),
                    ("until", &until),
                    ("index", paid.pay_index.as_str()),
                    ("space", space),
                ];
                (
                    fill(words.receipt_subject, &vars),
                    vec![
                        fill(words.receipt_body, &vars),
                        fill(words.receipt_until, &vars),
                    ],
                )
            }
            Payload::Pack { left, .. } => {
                let vars = [("left", &left.to_string() as &str), ("space", space)];
                if left == 0 {
                    (
                        fill(words.pack_used_subject, &vars),
                        vec![fill(words.pack_used_body, &vars), words.renew.to_owned()],
                    )
                } else {
                    (
                        fill(words.pack_low_subject, &vars),
                        vec![fill(words.pack_low_body, &vars), words.renew.to_owned()],
                    )
                }
            }
            Payload::Qr => {
                let validity = self.members.validity(&record, now);
                let until = validity
                    .valid_until
                    .filter(|u| *u > now && zhima_domain::qr::admits(&validity).is_ok())
                    .ok_or("the member is not admitted now: no QR code to send")?;
                let qr = self.qr.as_ref().ok_or("no QR renderer")?;
                let png = qr.png(m.id, now, until)?;
                attachment = Some((format!("zhima-{}.png", m.id.0), png));
                let vars = [("until", &minute(until) as &str), ("space", space)];
                (
                    fill(words.qr_subject, &vars),
                    vec![fill(words.qr_body, &vars)],
                )
            }
        };
        let greeting = words.greeting.replace("{name}", m.nickname.as_str());
        let sign = format!("— {space}");
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
            attachment,
        })
    }
}

/// The payload of a notice.
fn payload_of(due: &Due) -> Payload {
    Payload::Notice {
        subject: due.subject.name().to_owned(),
        notice: due.kind(),
        end: due.end.timestamp(),
    }
}

/// A notice's subject, notice and end from its payload.
fn notice_of(subject: &str, notice: &str, end: i64) -> Option<(Subject, Notice, DateTime<Utc>)> {
    let subject = match subject {
        "membership" => Subject::Membership,
        "vip" => Subject::Vip,
        _ => return None,
    };
    let notice = match notice {
        "ended" => Notice::Ended,
        other => Notice::Reminder {
            days: other.strip_prefix("reminder-")?.parse().ok()?,
        },
    };
    Some((subject, notice, DateTime::from_timestamp(end, 0)?))
}

/// `template` with each `{name}` replaced by its value.
fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in vars {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

use zhima_domain::text::escape_html as escape;

/// Declares [`Words`], its two instances and the list the test walks.
macro_rules! email_words {
    ($($key:ident: $en:literal, $zh:literal;)*) => {
        /// The words of the emails, in one language.
        #[derive(Debug, Clone)]
        pub struct Words {
            $(#[doc = $en] pub $key: &'static str,)*
        }

        impl Words {
            /// Replaces the string `key` (a field's name); `false` if there
            /// is no such string.
            pub fn set(&mut self, key: &str, value: &'static str) -> bool {
                match key {
                    $(stringify!($key) => { self.$key = value; true })*
                    _ => false,
                }
            }
        }
        /// English.
        pub static EN: Words = Words { $($key: $en,)* };
        /// Simplified Chinese.
        pub static ZH: Words = Words { $($key: $zh,)* };
        /// `(English, Chinese)` of every string.
        #[cfg(test)]
        const ENTRIES: &[(&str, &str)] = &[$(($en, $zh),)*];
    };
}

email_words! {
    greeting: "Hello {name},", "{name}，你好：";
    membership: "membership", "会员资格";
    vip: "VIP membership", "VIP 会员";
    none: "none", "无";
    reminder_subject: "Your {what} at {space} ends on {date}", "你在{space}的{what}将于 {date} 到期";
    reminder_body: "Your {what} at {space} ends on {date}, in {days} days.", "你在{space}的{what}将于 {date} 到期，还有 {days} 天。";
    ended_subject: "Your {what} at {space} has ended", "你在{space}的{what}已到期";
    ended_body: "Your {what} at {space} ended on {date}.", "你在{space}的{what}已于 {date} 到期。";
    renew: "To renew, pay at the front desk or in the mini-program; the door opens for you again at once.", "续费请到前台或在小程序中支付，门禁会立即为你重新开放。";
    receipt_subject: "{space}: payment received, {plan} {amount} CNY", "{space}：已收到付款，{plan} {amount} 元";
    receipt_body: "We received your payment of {amount} CNY for {plan} on {paid} (reference {index}). Thank you!", "我们已于 {paid} 收到你为 {plan} 支付的 {amount} 元（编号 {index}）。谢谢！";
    receipt_until: "Your access is valid until {until}.", "你的门禁有效期至 {until}。";
    pack_low_subject: "{space}: {left} entry days left", "{space}：还剩 {left} 次入场";
    pack_low_body: "Your entry pack at {space} has {left} entry days left.", "你在{space}的次卡还剩 {left} 次入场。";
    pack_used_subject: "{space}: your entry pack is used up", "{space}：你的次卡已用完";
    pack_used_body: "Your entry pack at {space} is used up: the door will not open for you until you buy another pack or a membership.", "你在{space}的次卡已用完：在购买新的次卡或会员之前，门禁不会为你开启。";
    qr_subject: "{space}: your door QR code", "{space}：你的门禁二维码";
    qr_body: "Your QR code is attached. Show it at the door's scanner; it works until {until}.", "附件是你的二维码。在门口扫码器出示即可，有效期至 {until}。";
}

/// The words of the emails with a space's own texts: each file
/// `DIR/zh/KEY.txt` or `DIR/en/KEY.txt` replaces the string `KEY` (a
/// field of [`Words`], such as `reminder_body`; `{name}`, `{date}`… are
/// filled in as in the built-in text). A file naming no string is an
/// error, so a typo is not silently ignored. Read once, at start.
pub fn load_words(dir: &std::path::Path) -> Result<(&'static Words, &'static Words), String> {
    let mut zh = ZH.clone();
    let mut en = EN.clone();
    for (lang, words) in [("zh", &mut zh), ("en", &mut en)] {
        let sub = dir.join(lang);
        let Ok(entries) = std::fs::read_dir(&sub) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(key) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".txt"))
            else {
                continue;
            };
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let text: &'static str = Box::leak(text.trim_end().to_owned().into_boxed_str());
            if !words.set(key, text) {
                return Err(format!(
                    "{}: no email string is called {key:?}",
                    path.display()
                ));
            }
        }
    }
    Ok((Box::leak(Box::new(zh)), Box::leak(Box::new(en))))
}

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

    #[test]
    fn every_email_string_exists_in_both_languages() {
        let cjk = |s: &str| s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
        assert!(ENTRIES.len() >= 18);
        for (en, zh) in ENTRIES {
            assert!(!en.trim().is_empty() && !zh.trim().is_empty());
            assert!(!cjk(en), "Chinese in the English: {en}");
            assert!(cjk(zh), "the Chinese is not Chinese: {zh}");
        }
    }

    #[test]
    fn a_payload_reads_back_and_a_language_is_read_from_the_member() {
        let end = DateTime::from_timestamp(1_523_532_600, 0).unwrap();
        for notice in [Notice::Ended, Notice::Reminder { days: 14 }] {
            let due = Due {
                subject: Subject::Vip,
                notice,
                end,
            };
            let text = serde_json::to_string(&payload_of(&due)).unwrap();
            let Payload::Notice {
                subject,
                notice: n,
                end: e,
            } = serde_json::from_str(&text).unwrap()
            else {
                panic!("{text}")
            };
            assert_eq!(
                notice_of(&subject, &n, e),
                Some((Subject::Vip, notice, end))
            );
        }
        // the receipt storage queues reads as one
        assert_eq!(
            serde_json::from_str::<Payload>("{\"type\":\"receipt\",\"payment\":7}").unwrap(),
            Payload::Receipt { payment: 7 }
        );
        assert_eq!(Lang::from_member("zh_CN"), Some(Lang::Zh));
        assert_eq!(Lang::from_member("en-GB"), Some(Lang::En));
        assert_eq!(Lang::from_member(""), None);
    }
}
