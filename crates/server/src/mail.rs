//! Email over SMTP (lettre's blocking transport; TLS by rustls), and the
//! notification task `zhima serve` runs: the daily sweep at `notify.sweep_at`
//! (and at start-up when today's is due and not done), and delivery of the
//! outbox every `DELIVER_EVERY`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport as _};
use zhima_app::notify::{Email, MailError, Mailer, Notifier, QrImages};
use zhima_domain::qr::{QrPayload, Signer};
use zhima_domain::time::Clock;

use crate::settings::{QrSettings, SmtpSettings, SmtpTls};

/// Sends email through the configured SMTP server.
pub struct SmtpMailer {
    transport: SmtpTransport,
    from: Mailbox,
    server: String,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for `settings` (no connection is made until the first send).
    pub fn new(settings: &SmtpSettings) -> Result<SmtpMailer, String> {
        let builder = match settings.tls {
            SmtpTls::StartTls => SmtpTransport::starttls_relay(&settings.host)
                .map_err(|e| format!("smtp.host: {e}"))?,
            SmtpTls::Tls => {
                SmtpTransport::relay(&settings.host).map_err(|e| format!("smtp.host: {e}"))?
            }
            SmtpTls::None => SmtpTransport::builder_dangerous(&settings.host),
        };
        let mut builder = builder
            .port(settings.port)
            .timeout(Some(Duration::from_secs(20)));
        if let Some((user, password)) = &settings.login {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        let from = settings
            .from
            .parse::<Mailbox>()
            .map_err(|e| format!("smtp.from: {e}"))?;
        Ok(SmtpMailer {
            transport: builder.build(),
            from,
            server: format!("{}:{}", settings.host, settings.port),
        })
    }
}

impl Mailer for SmtpMailer {
    fn send(&self, email: &Email) -> Result<(), MailError> {
        let address = email
            .to
            .parse()
            .map_err(|e| MailError::Permanent(format!("the address {:?}: {e}", email.to)))?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(Some(email.to_name.clone()), address))
            .subject(email.subject.clone());
        let body = MultiPart::alternative_plain_html(email.text.clone(), email.html.clone());
        let body = match &email.attachment {
            None => body,
            Some((name, png)) => MultiPart::mixed().multipart(body).singlepart(
                Attachment::new(name.clone()).body(
                    png.clone(),
                    ContentType::parse("image/png")
                        .map_err(|e| MailError::Permanent(e.to_string()))?,
                ),
            ),
        };
        let message = builder
            .multipart(body)
            .map_err(|e| MailError::Permanent(format!("the message: {e}")))?;
        self.transport.send(&message).map(|_| ()).map_err(|e| {
            if e.is_permanent() {
                MailError::Permanent(e.to_string())
            } else {
                MailError::Transient(e.to_string())
            }
        })
    }
}

/// Makes members' QR codes for emails: signed with the server's key,
/// rendered as the door's images are.
pub struct SignedQr {
    signer: Signer,
}

impl std::fmt::Debug for SignedQr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedQr")
            .field("key_id", &self.signer.key_id())
            .finish_non_exhaustive()
    }
}

impl SignedQr {
    /// The signer of the configured key, from its seed (`keys::seed`).
    pub fn from_seed(settings: &QrSettings, seed: &[u8; 32]) -> SignedQr {
        SignedQr {
            signer: Signer::from_seed(settings.key_id, seed),
        }
    }
}

impl QrImages for SignedQr {
    fn png(
        &self,
        member: zhima_domain::ids::MemberId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<u8>, String> {
        let code = zhima_domain::qr::encode(
            &self.signer,
            &QrPayload {
                key_id: self.signer.key_id(),
                member,
                valid_from: from,
                valid_until: until,
                issued_at: from,
            },
        );
        zhima_http::qr::qr_png(&code)
    }
}

/// The day of the last sweep, and when the next is due: the sweep of a
/// local date runs once its `sweep_at` has passed.
#[derive(Debug)]
pub struct SweepClock {
    tz: chrono_tz::Tz,
    at: chrono::NaiveTime,
    last: Option<NaiveDate>,
}

impl SweepClock {
    /// No sweep done yet.
    pub fn new(tz: chrono_tz::Tz, at: chrono::NaiveTime) -> SweepClock {
        SweepClock { tz, at, last: None }
    }

    /// The last one done on `last` (a backup found on disk).
    pub fn since(tz: chrono_tz::Tz, at: chrono::NaiveTime, last: Option<NaiveDate>) -> SweepClock {
        SweepClock { tz, at, last }
    }

    /// Forgets that the one of `day` was done (it failed: try again).
    pub fn undo(&mut self, day: NaiveDate) {
        if self.last == Some(day) {
            self.last = day.pred_opt();
        }
    }

    /// The date to sweep at `now`, if one is due (and marks it done).
    pub fn due(&mut self, now: DateTime<Utc>) -> Option<NaiveDate> {
        let local = now.with_timezone(&self.tz);
        let today = local.date_naive();
        if local.time() < self.at || self.last.is_some_and(|l| l >= today) {
            return None;
        }
        self.last = Some(today);
        Some(today)
    }
}

/// Runs the notification task until the process ends: sweeps when due,
/// delivers every `every`. Failures are logged and retried at the
/// next round; nothing here touches a request.
pub async fn run(
    notifier: Arc<Notifier>,
    mailer: Option<Arc<dyn Mailer>>,
    clock: Arc<dyn Clock>,
    sweep_at: chrono::NaiveTime,
    every: Duration,
) {
    let mut sweeps = SweepClock::new(notifier.tz(), sweep_at);
    loop {
        let now = clock.now();
        if let Some(today) = sweeps.due(now) {
            let n = notifier.clone();
            match tokio::task::spawn_blocking(move || n.sweep(today, now, false)).await {
                Ok(Ok(report)) => tracing::info!(
                    date = %today,
                    members = report.members,
                    due = report.due,
                    queued = report.queued,
                    already = report.already,
                    no_email = report.no_email,
                    opted_out = report.opted_out,
                    "notification sweep done"
                ),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, date = %today, "the notification sweep failed")
                }
                Err(_) => return,
            }
        }
        let (n, m) = (notifier.clone(), mailer.clone());
        match tokio::task::spawn_blocking(move || n.deliver(m.as_deref(), now, 50)).await {
            Ok(Ok(report)) if report.sent + report.retried + report.failed > 0 => {
                tracing::info!(
                    sent = report.sent,
                    retried = report.retried,
                    failed = report.failed,
                    "emails delivered"
                )
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the outbox could not be delivered"),
            Err(_) => return,
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_sweep_of_a_day_is_due_once_after_its_time() {
        let tz = chrono_tz::Asia::Shanghai;
        let at = chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap();
        let t = |s: &str| zhima_domain::time::parse_local_timestamp(s, tz).unwrap();
        let mut clock = SweepClock::new(tz, at);
        assert_eq!(clock.due(t("201803120859")), None);
        let day = NaiveDate::from_ymd_opt(2018, 3, 12).unwrap();
        assert_eq!(clock.due(t("201803120900")), Some(day));
        assert_eq!(clock.due(t("201803122300")), None);
        assert_eq!(clock.due(t("201803130800")), None);
        assert_eq!(clock.due(t("201803131000")), day.succ_opt());
        // a server started late in the day sweeps at once
        let mut late = SweepClock::new(tz, at);
        assert_eq!(late.due(t("201803122200")), Some(day));
    }
}
