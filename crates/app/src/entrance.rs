//! A person at the door: a scanned QR code or an RFID card is checked, the
//! member's standing evaluated at this instant (counting this entry), the
//! access event written, and only then the door unlocked. The same text
//! within the replay window gets the first answer again, without a second
//! log entry or door movement.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sha2::{Digest, Sha256};
use zhima_domain::access::{AccessEvent, AccessMethod, NewAccessEvent, Outcome};
use zhima_domain::expiring::ExpiringMap;
use zhima_domain::ids::{MemberId, Rfid};
use zhima_domain::membership::{evaluate, History, MemberStatus};
use zhima_domain::plan::Plans;
use zhima_domain::qr::{self, Keyring, Refusal};
use zhima_domain::sync::lock;
use zhima_door_hardware::{DoorController, Opened};
use zhima_storage::access::EventQuery;
use zhima_storage::{MemberKey, StorageError, Store};

use crate::AppError;

/// What a person presents at the door.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// The text a QR scanner read.
    Code(&'a str),
    /// The UID an RFID reader read (hex).
    Card(&'a str),
}

impl Credential<'_> {
    /// How it came in, for the access log.
    pub fn method(self) -> AccessMethod {
        match self {
            Credential::Code(_) => AccessMethod::Qr,
            Credential::Card(_) => AccessMethod::Rfid,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Credential::Code(_) => "code",
            Credential::Card(_) => "card",
        }
    }

    /// The replay-cache key: a digest, never the text itself.
    fn digest(self) -> [u8; 32] {
        let (tag, text) = match self {
            Credential::Code(t) => (b"qr\0", t),
            Credential::Card(t) => (b"rf\0", t),
        };
        Sha256::new()
            .chain_update(tag)
            .chain_update(text.as_bytes())
            .finalize()
            .into()
    }
}

/// A person let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The member.
    pub member: MemberId,
    /// Their nickName, for the welcome.
    pub nickname: String,
    /// Their standing, this entry counted.
    pub status: MemberStatus,
    /// The end of their validity.
    pub valid_until: Option<DateTime<Utc>>,
    /// Entry days left, for a member with an entry pack.
    pub entry_days_left: Option<u32>,
    /// How long the door unlocks.
    pub seconds: u64,
    /// Whether this answer was given before for the same text (nothing was
    /// logged or opened again).
    pub replay: bool,
}

/// Called with every access event before it is written (the server counts
/// them for `/metrics`).
pub type AccessHook = Arc<dyn Fn(&NewAccessEvent) + Send + Sync>;

/// How the entrance behaves (`door.name`, `qr.entry_secs`,
/// `qr.replay_window_secs`).
#[derive(Debug, Clone)]
pub struct EntranceSettings {
    /// The door's name in the access log.
    pub door: String,
    /// How long an admitted person's unlock lasts.
    pub entry: Duration,
    /// Within this time the same text is answered from memory.
    pub replay_window: Duration,
}

/// How many recent answers are kept for replays.
const REPLAY_CAPACITY: usize = 4096;

type Answer = Result<Admitted, Refusal>;

/// The door's use cases: admit a person.
pub struct Entrance {
    store: Store,
    plans: Plans,
    tz: Tz,
    keyring: Keyring,
    controller: DoorController,
    settings: EntranceSettings,
    replays: Mutex<ExpiringMap<[u8; 32], Answer, DateTime<Utc>>>,
    on_access: AccessHook,
}

impl std::fmt::Debug for Entrance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entrance")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Entrance {
    /// The entrance of `controller`'s door.
    pub fn new(
        store: Store,
        plans: Plans,
        tz: Tz,
        keyring: Keyring,
        controller: DoorController,
        settings: EntranceSettings,
        on_access: AccessHook,
    ) -> Entrance {
        Entrance {
            store,
            plans,
            tz,
            keyring,
            controller,
            settings,
            replays: Mutex::new(ExpiringMap::new(REPLAY_CAPACITY)),
            on_access,
        }
    }

    /// How long an admitted person's unlock lasts.
    pub fn entry(&self) -> Duration {
        self.settings.entry
    }

    /// A page of the access log, newest first. Blocking.
    pub fn events(&self, query: EventQuery) -> Result<Vec<AccessEvent>, AppError> {
        Ok(self.store.access_events(query)?)
    }

    /// Writes an access event (after telling the hook). Blocking.
    pub fn record(&self, event: NewAccessEvent) -> Result<AccessEvent, StorageError> {
        (self.on_access)(&event);
        self.store.record_access(&event)
    }

    /// The front desk (an API key) opens the door for `asked` (the parsed
    /// request, or why it cannot be one): the unlock is written to the access
    /// log before the door moves, a refused request is logged with its
    /// reason, and the answer comes once the door has locked again.
    pub async fn unlock(
        self: &Arc<Self>,
        asked: Result<Duration, String>,
        key: (i64, &str),
        now: DateTime<Utc>,
    ) -> Result<(Duration, Opened), AppError> {
        let event = |outcome, reason: &str| {
            NewAccessEvent::new(now, &self.settings.door, AccessMethod::Api, outcome, reason)
                .by_key(key.0)
        };
        let seconds = match asked {
            Ok(s) => s,
            Err(reason) => {
                let refusal = event(Outcome::Refused, "bad_seconds").detail(reason.clone());
                if let Err(e) = self.record_blocking(refusal).await {
                    tracing::warn!(error = %e, "could not log a refused door request");
                }
                return Err(AppError::BadSeconds(reason));
            }
        };
        let grant = event(Outcome::Granted, "api_unlock").detail(format!(
            "{} s by API key {}",
            seconds.as_secs(),
            key.1
        ));
        // no log, no unlock
        self.record_blocking(grant).await?;
        let opened = self.controller.unlock(seconds).await?;
        Ok((seconds, opened))
    }

    /// A staff member opens the door from the console for `seconds`, with a
    /// `reason` a person wrote: the unlock is written to the access log
    /// (method `manual`, reason `console_unlock`, the staff member's
    /// nickname, number and reason in the detail; never as the staff
    /// member's own entry, which would spend their entry days) before the
    /// door moves, and the answer does not wait for it to lock again.
    pub async fn unlock_by_staff(
        self: &Arc<Self>,
        seconds: Duration,
        staff: &zhima_domain::member::Member,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Duration, AppError> {
        let reason: String = reason
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(120)
            .collect();
        if reason.is_empty() {
            return Err(AppError::Invalid {
                field: "reason",
                reason: "a reason is required".into(),
            });
        }
        let max = self.controller.rules().max_unlock;
        if seconds.is_zero() || seconds > max {
            return Err(AppError::BadSeconds(format!(
                "seconds must be from 1 to {}",
                max.as_secs()
            )));
        }
        let grant = NewAccessEvent::new(
            now,
            &self.settings.door,
            AccessMethod::Manual,
            Outcome::Granted,
            "console_unlock",
        )
        .detail(format!(
            "{} s by {} (#{}): {reason}",
            seconds.as_secs(),
            staff.nickname.as_str(),
            staff.id.0
        ));
        // no log, no unlock
        self.record_blocking(grant).await?;
        self.controller.start_unlock(seconds)?;
        Ok(seconds)
    }

    /// [`Entrance::record`] on a blocking thread.
    async fn record_blocking(
        self: &Arc<Self>,
        event: NewAccessEvent,
    ) -> Result<AccessEvent, AppError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.record(event))
            .await
            .map_err(|_| AppError::Stopping)?
            .map_err(AppError::from)
    }

    /// A person at the door at `now`: their credential and standing are
    /// checked, the access event written, then the door unlocked for the
    /// entry time; the answer does not wait for it to lock. `api_key` is the
    /// door station's key, if it came through the API. Blocking (storage).
    ///
    /// A refusal is logged with its reason and answered
    /// `AppError::Refused`; a database or door failure is not remembered,
    /// so a retry is tried afresh.
    pub fn admit(
        &self,
        credential: Credential<'_>,
        api_key: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Admitted, AppError> {
        let key = credential.digest();
        if let Some(answer) = lock(&self.replays).get(&key, now).cloned() {
            return answer
                .map(|a| Admitted { replay: true, ..a })
                .map_err(AppError::Refused);
        }
        let answer = self.admit_fresh(credential, api_key, now);
        let remembered: Option<Answer> = match &answer {
            Ok(a) => Some(Ok(a.clone())),
            Err(AppError::Refused(r)) => Some(Err(*r)),
            Err(_) => None,
        };
        if let Some(r) = remembered {
            let window = chrono::Duration::from_std(self.settings.replay_window)
                .unwrap_or_else(|_| chrono::Duration::zero());
            lock(&self.replays).insert(key, r, now + window, now);
        }
        answer
    }

    fn admit_fresh(
        &self,
        credential: Credential<'_>,
        api_key: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Admitted, AppError> {
        let method = credential.method();
        let event = |outcome, reason: &str, member: Option<MemberId>| {
            let mut e = NewAccessEvent::new(now, &self.settings.door, method, outcome, reason);
            e.member = member;
            e.api_key = api_key;
            e
        };
        let refuse = |refusal: Refusal, member: Option<MemberId>, detail: String| {
            let e = event(Outcome::Refused, refusal.reason(), member).detail(detail);
            if let Err(err) = self.record(e) {
                tracing::warn!(error = %err, "could not log a refused entry");
            }
            AppError::Refused(refusal)
        };
        let (record, nobody) = match credential {
            Credential::Code(text) => match qr::verify(text.as_bytes(), &self.keyring, now) {
                Ok(payload) => (
                    self.store.member(MemberKey::Id(payload.member))?,
                    format!("member {}", payload.member.0),
                ),
                Err(r) => {
                    // a code that fails its checks names no one we can trust
                    let detail = format!("QR code refused ({})", r.reason().replace('_', " "));
                    return Err(refuse(r, None, detail));
                }
            },
            Credential::Card(uid) => match Rfid::parse(uid) {
                Ok(card) => (
                    self.store.member(MemberKey::Rfid(&card))?,
                    format!("card {card}"),
                ),
                Err(_) => return Err(refuse(Refusal::UnknownCard, None, "unreadable card".into())),
            },
        };
        let Some(record) = record else {
            let refusal = match credential {
                Credential::Card(_) => Refusal::UnknownCard,
                Credential::Code(_) => Refusal::UnknownMember,
            };
            return Err(refuse(refusal, None, nobody));
        };
        let member = record.member.id;
        // standing at this instant, counting this entry (it may spend an entry day)
        let mut entries = record.entries;
        entries.push(now);
        let history = History {
            deactivated: record.member.deactivated_at.is_some(),
            payments: &record.payments,
            entries: &entries,
            vip: &record.vip,
        };
        let validity = evaluate(history, &self.plans, self.tz, now);
        if let Err(r) = qr::admits(&validity) {
            return Err(refuse(
                r,
                Some(member),
                format!("{} refused", credential.noun()),
            ));
        }
        let method = credential.method();
        let grant = event(
            Outcome::Granted,
            &format!("{}_ok", method.as_str()),
            Some(member),
        )
        .detail(format!("{} entry", credential.noun()));
        // no log, no unlock
        self.record(grant)?;
        if let Err(e) = self.controller.start_unlock(self.settings.entry) {
            tracing::error!(error = %e, "door unlock failed");
            return Err(AppError::Door(e));
        }
        Ok(Admitted {
            member,
            nickname: record.member.nickname.as_str().to_owned(),
            status: validity.status,
            valid_until: validity.valid_until,
            entry_days_left: validity.entry_days_left,
            seconds: self.settings.entry.as_secs(),
            replay: false,
        })
    }
}
