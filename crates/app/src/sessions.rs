//! Web sessions of the staff console and the member pages: logging in with
//! a nickname and password (through [`Logins`]: the attempt limiter, the
//! argon2id gate, no login on the default password), and recognising the
//! session on each request.
//!
//! A session is a random token in a cookie; storage keeps only its SHA-256,
//! in the database, so every server on it knows the session and ending it
//! (logout, deactivation, a new password) ends it everywhere at once. A
//! session ends after [`IDLE`] without use and [`ABSOLUTE`] after it began,
//! whichever comes first. Its CSRF token is derived from the session token
//! ([`csrf_token`]): a page can embed it, a stranger cannot compute it.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use zhima_domain::ids::MemberId;
use zhima_domain::member::Member;
use zhima_storage::credentials::{constant_time_eq, hash_api_key, random_hex};
use zhima_storage::Store;

use crate::login::{LoginError, Logins};
use crate::AppError;

/// A session unused for this long ends.
pub const IDLE: Duration = Duration::minutes(30);
/// A session ends this long after it began, used or not.
pub const ABSOLUTE: Duration = Duration::hours(12);
/// A session's last use is written at most this often.
const TOUCH_EVERY: Duration = Duration::seconds(60);

pub use zhima_domain::tags::Role;

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The member logged in.
    pub member: Member,
    /// Their role now (tags are read on every request).
    pub role: Role,
}

/// The CSRF token of the session whose token is `session_token`: what every
/// form of that session must carry (the SHA-256 of a label and the token).
pub fn csrf_token(session_token: &str) -> String {
    hash_api_key(&format!("zhima-csrf:{session_token}"))
}

/// Whether `given` is the CSRF token of `session_token` (in constant time).
pub fn csrf_matches(session_token: &str, given: &str) -> bool {
    constant_time_eq(csrf_token(session_token).as_bytes(), given.as_bytes())
}

/// Why a login did not open a session.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The nickname and password did not log in (the login's reason).
    #[error(transparent)]
    Login(#[from] LoginError),
    /// Storage failed.
    #[error(transparent)]
    App(#[from] AppError),
}

/// Web sessions over storage and the logins.
#[derive(Debug)]
pub struct Sessions {
    store: Store,
    logins: Arc<Logins>,
}

impl Sessions {
    /// Sessions over `store`, logging in through `logins`.
    pub fn new(store: Store, logins: Arc<Logins>) -> Sessions {
        Sessions { store, logins }
    }

    /// Logs a member in and opens a session: the session token (for the
    /// cookie; not kept here) and who it belongs to. `address` and `at` are
    /// the login limiter's. Blocking (argon2id, storage).
    pub fn log_in(
        &self,
        nickname: &str,
        password: &str,
        address: &str,
        at: Instant,
        now: DateTime<Utc>,
    ) -> Result<(String, MemberId), SessionError> {
        let member = self.logins.login(nickname, password, address, at)?;
        let token = random_hex::<32>().map_err(AppError::from)?;
        self.store
            .create_session(&hash_api_key(&token), member, now, now + ABSOLUTE)
            .map_err(AppError::from)?;
        Ok((token, member))
    }

    /// The session of `token` at `now`, if it is live: not ended, its member
    /// not deactivated, used within [`IDLE`], begun within [`ABSOLUTE`]. A
    /// session found past a limit is ended. Blocking (storage).
    pub fn check(&self, token: &str, now: DateTime<Utc>) -> Result<Option<Session>, AppError> {
        let hash = hash_api_key(token);
        let Some(stored) = self.store.session(&hash)? else {
            return Ok(None);
        };
        if now >= stored.expires_at || now >= stored.last_seen_at + IDLE {
            self.store.end_session(&hash)?;
            return Ok(None);
        }
        if now >= stored.last_seen_at + TOUCH_EVERY {
            self.store.touch_session(stored.id, now)?;
        }
        Ok(Some(Session {
            role: Role::of(&stored.member.tags),
            member: stored.member,
        }))
    }

    /// A member changes their own password: the current one is checked as
    /// a login is (the limiter, argon2id), the new one replaces it (the
    /// audit log says so, never what it is), every session of the member
    /// ends, and a new session opens for this browser: its token. Blocking.
    #[allow(clippy::too_many_arguments)]
    pub fn change_password(
        &self,
        member: &Member,
        current: &str,
        new: &zhima_domain::password::Password,
        address: &str,
        at: Instant,
        now: DateTime<Utc>,
    ) -> Result<String, SessionError> {
        self.logins
            .login(member.nickname.as_str(), current, address, at)?;
        let by = crate::audit::Actor::member(member);
        let note = by.note(
            "member.change_password",
            crate::audit::member_subject(member),
            String::new(),
            "password changed by the member".into(),
            now,
        );
        self.store
            .audited(note)
            .set_password(&member.openid, new.expose(), false, now)
            .map_err(AppError::from)?;
        let token = random_hex::<32>().map_err(AppError::from)?;
        self.store
            .create_session(&hash_api_key(&token), member.id, now, now + ABSOLUTE)
            .map_err(AppError::from)?;
        Ok(token)
    }

    /// Ends the session of `token` (logout). Blocking (storage).
    pub fn log_out(&self, token: &str) -> Result<(), AppError> {
        self.store.end_session(&hash_api_key(token))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

    use super::*;
    use zhima_domain::ids::{NickName, OpenId};
    use zhima_domain::member::{NewMember, Profile};
    use zhima_domain::tags::Tags;
    use zhima_storage::testing::TestDatabase;
    use zhima_storage::StoreOptions;

    fn setup(tags: Tags) -> (TestDatabase, Store, Sessions, OpenId) {
        let db = TestDatabase::new().unwrap();
        let store = Store::open(db.url(), &StoreOptions::default()).unwrap();
        store.migrate().unwrap();
        let openid = OpenId::parse("desk1").unwrap();
        store
            .create_member(
                &NewMember {
                    openid: openid.clone(),
                    nickname: NickName::parse("Desk").unwrap(),
                    rfid: None,
                    tags,
                    profile: Profile::default(),
                },
                None,
                Utc::now(),
            )
            .unwrap();
        let sessions = Sessions::new(store.clone(), Arc::new(Logins::new(store.clone())));
        (db, store, sessions, openid)
    }

    fn staff_tags() -> Tags {
        Tags::from_stored("MEMBER,STAFF").unwrap()
    }

    #[test]
    fn the_default_password_opens_no_session_and_a_set_one_does() {
        let (_db, store, sessions, openid) = setup(staff_tags());
        let t0 = Utc::now();
        let refused = sessions.log_in(
            "Desk",
            zhima_domain::password::DEFAULT_PASSWORD,
            "a",
            Instant::now(),
            t0,
        );
        assert!(
            matches!(refused, Err(SessionError::Login(LoginError::Refused))),
            "{refused:?}"
        );
        store
            .set_password(&openid, "front-desk-2026", false, t0)
            .unwrap();
        let (token, _) = sessions
            .log_in("desk", "front-desk-2026", "a", Instant::now(), t0)
            .unwrap();
        let session = sessions.check(&token, t0).unwrap().expect("a live session");
        assert_eq!(session.role, Role::Staff);
        assert!(sessions.check("not-a-token", t0).unwrap().is_none());
    }

    #[test]
    fn a_session_ends_idle_absolute_at_logout_on_deactivation_and_on_a_new_password() {
        let (_db, store, sessions, openid) = setup(staff_tags());
        let t0 = Utc::now();
        store
            .set_password(&openid, "front-desk-2026", false, t0)
            .unwrap();
        let open = || {
            sessions
                .log_in("Desk", "front-desk-2026", "a", Instant::now(), t0)
                .unwrap()
                .0
        };
        // idle
        let token = open();
        assert!(sessions
            .check(&token, t0 + IDLE - Duration::seconds(1))
            .unwrap()
            .is_some());
        assert!(
            sessions.check(&token, t0 + IDLE * 2).unwrap().is_none(),
            "idle session lived"
        );
        // used every 20 minutes, it still ends at the absolute limit
        let token = open();
        let mut at = t0;
        while at + Duration::minutes(20) < t0 + ABSOLUTE {
            at += Duration::minutes(20);
            assert!(
                sessions.check(&token, at).unwrap().is_some(),
                "ended early at {at}"
            );
        }
        assert!(
            sessions.check(&token, t0 + ABSOLUTE).unwrap().is_none(),
            "outlived ABSOLUTE"
        );
        // logout
        let token = open();
        sessions.log_out(&token).unwrap();
        assert!(
            sessions.check(&token, t0).unwrap().is_none(),
            "lived past logout"
        );
        // a new password
        let token = open();
        store
            .set_password(&openid, "another-pass-2026", false, t0)
            .unwrap();
        assert!(
            sessions.check(&token, t0).unwrap().is_none(),
            "lived past a new password"
        );
        // deactivation
        let token = sessions
            .log_in("Desk", "another-pass-2026", "a", Instant::now(), t0)
            .unwrap()
            .0;
        store.set_deactivated(&openid, true, t0).unwrap();
        assert!(
            sessions.check(&token, t0).unwrap().is_none(),
            "lived past deactivation"
        );
    }

    #[test]
    fn the_csrf_token_belongs_to_its_session() {
        let a = csrf_token("session-a");
        assert_eq!(a.len(), 64);
        assert!(csrf_matches("session-a", &a));
        assert!(!csrf_matches("session-b", &a));
        assert!(!csrf_matches("session-a", ""));
        assert!(!csrf_matches("session-a", &a[..63]));
    }
}
