//! Who changes what: the actor of a console or CLI change, and the audit
//! log they leave (see `zhima_storage::audit`). Every use case called with
//! an [`Actor`] writes its audit row in the transaction of the change.

use chrono::{DateTime, Utc};
use zhima_domain::ids::MemberId;
use zhima_domain::member::{Member, MemberChange, UpdatableField};
use zhima_storage::audit::{AuditEntry, AuditNote};
use zhima_storage::Store;

use crate::AppError;

/// Who makes a change: a member through the console, or an operator through
/// the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    id: Option<MemberId>,
    name: String,
}

impl Actor {
    /// A member (staff or admin) logged in to the console.
    pub fn member(member: &Member) -> Actor {
        Actor {
            id: Some(member.id),
            name: member.nickname.as_str().to_owned(),
        }
    }

    /// An operator at the server's command line, by their user name.
    pub fn operator(user: &str) -> Actor {
        let user: String = user.chars().filter(|c| !c.is_control()).take(64).collect();
        Actor {
            id: None,
            name: format!("cli:{}", if user.is_empty() { "?" } else { &user }),
        }
    }

    /// The name the log shows.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The note of a change by this actor.
    pub(crate) fn note(
        &self,
        action: &str,
        subject: String,
        before: String,
        after: String,
        now: DateTime<Utc>,
    ) -> AuditNote {
        AuditNote {
            at: now,
            actor_id: self.id,
            actor: self.name.clone(),
            action: action.to_owned(),
            subject,
            before,
            after,
        }
    }
}

/// The subject of a change to a member.
pub(crate) fn member_subject(member: &Member) -> String {
    format!("member #{} {}", member.id.0, member.nickname.as_str())
}

/// The text of `field` on `member` as the log shows it.
fn field_value(member: &Member, field: UpdatableField) -> String {
    let p = &member.profile;
    match field {
        UpdatableField::OpenId => member.openid.as_str().to_owned(),
        UpdatableField::Rfid => member
            .rfid
            .as_ref()
            .map_or(String::new(), |r| r.as_str().to_owned()),
        UpdatableField::AvatarUrl => p.avatar_url.clone(),
        UpdatableField::NickName => member.nickname.as_str().to_owned(),
        UpdatableField::Email => p.email.clone(),
        UpdatableField::City => p.city.clone(),
        UpdatableField::Country => p.country.clone(),
        UpdatableField::Gender => p.gender.name().to_owned(),
        UpdatableField::Language => p.language.clone(),
        UpdatableField::Province => p.province.clone(),
        UpdatableField::Tags => member.tags.to_stored(),
        UpdatableField::Memo => p.memo.clone(),
        UpdatableField::Reminders => p.reminders.to_string(),
    }
}

/// The field a change is about and its new text.
fn change_value(change: &MemberChange) -> (UpdatableField, String) {
    match change {
        MemberChange::OpenId(o) => (UpdatableField::OpenId, o.as_str().to_owned()),
        MemberChange::Rfid(r) => (
            UpdatableField::Rfid,
            r.as_ref().map_or(String::new(), |r| r.as_str().to_owned()),
        ),
        MemberChange::NickName(n) => (UpdatableField::NickName, n.as_str().to_owned()),
        MemberChange::Tags(t) => (UpdatableField::Tags, t.to_stored()),
        MemberChange::Text(f, v) => (*f, v.clone()),
        MemberChange::Gender(g) => (UpdatableField::Gender, g.name().to_owned()),
        MemberChange::Reminders(on) => (UpdatableField::Reminders, on.to_string()),
    }
}

/// The changes that change something, as `before` and `after` texts
/// (`field=value` lines, one per changed field); `None` when nothing would
/// change.
pub(crate) fn describe_changes(
    member: &Member,
    changes: &[MemberChange],
) -> Option<(String, String)> {
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for change in changes {
        let (field, new) = change_value(change);
        let old = field_value(member, field);
        if old != new {
            before.push(format!("{}={old}", field.wire_name()));
            after.push(format!("{}={new}", field.wire_name()));
        }
    }
    (!after.is_empty()).then(|| (before.join("\n"), after.join("\n")))
}

/// The audit log, for the admins' page.
#[derive(Debug, Clone)]
pub struct Audit {
    store: Store,
}

impl Audit {
    /// The log of `store`.
    pub fn new(store: Store) -> Audit {
        Audit { store }
    }

    /// Newest first, up to `limit`, older than the entry `before`. Blocking.
    pub fn log(&self, before: Option<i64>, limit: u32) -> Result<Vec<AuditEntry>, AppError> {
        Ok(self.store.audit_log(before, limit)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use zhima_domain::ids::{NickName, OpenId};
    use zhima_domain::member::Profile;
    use zhima_domain::tags::Tags;

    fn member() -> Member {
        Member {
            id: MemberId(7),
            openid: OpenId::parse("o-7").unwrap(),
            nickname: NickName::parse("Seven").unwrap(),
            rfid: None,
            tags: Tags::default_new_member(),
            profile: Profile {
                email: "seven@example.org".into(),
                ..Profile::default()
            },
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
            deactivated_at: None,
            must_change_password: true,
        }
    }

    #[test]
    fn only_the_fields_that_change_are_described() {
        let m = member();
        let changes = [
            MemberChange::text(UpdatableField::Email, "seven@example.org").unwrap(),
            MemberChange::NickName(NickName::parse("Sieben").unwrap()),
        ];
        let (before, after) = describe_changes(&m, &changes).unwrap();
        assert_eq!(before, "nickName=Seven");
        assert_eq!(after, "nickName=Sieben");
        assert_eq!(describe_changes(&m, &changes[..1]), None);
    }

    #[test]
    fn an_operator_is_named_as_such_and_never_with_control_characters() {
        assert_eq!(Actor::operator("root").name(), "cli:root");
        assert_eq!(Actor::operator("a\nb").name(), "cli:ab");
        assert_eq!(Actor::operator("").name(), "cli:?");
        assert_eq!(Actor::member(&member()).name(), "Seven");
    }
}
