//! The storage contract, run on whichever backend the environment selects:
//! SQLite by default, PostgreSQL when `TEST_ZHIMA_POSTGRES_URL` is set
//! (`scripts/test.sh` runs it both ways).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

use std::sync::{Arc, Barrier};

use chrono::{DateTime, Duration, Utc};
use zhima_domain::ids::{Gender, NickName, OpenId, PayIndex, Rfid};
use zhima_domain::member::{MemberChange, NewMember, NewPayment, Profile, UpdatableField};
use zhima_domain::money::Fen;
use zhima_domain::scope::{Scope, Scopes};
use zhima_domain::tags::{TagInput, Tags};
use zhima_storage::testing::TestDatabase;
use zhima_storage::{MemberKey, StorageError, Store, StoreOptions, UniqueField};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-03-01T04:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn store() -> (TestDatabase, Store) {
    let db = TestDatabase::new().unwrap();
    let store = Store::open(db.url(), &StoreOptions::default()).unwrap();
    let applied = store.migrate().unwrap();
    assert!(!applied.is_empty());
    (db, store)
}

fn new_member(openid: &str, nick: &str) -> NewMember {
    NewMember {
        openid: OpenId::parse(openid).unwrap(),
        nickname: NickName::parse(nick).unwrap(),
        rfid: None,
        tags: Tags::default_new_member(),
        profile: Profile {
            country: "South Korea".into(),
            gender: Gender::Male,
            ..Profile::default()
        },
    }
}

fn payment(index: &str, yuan: &str, pay_type: &str) -> NewPayment {
    NewPayment {
        pay_index: PayIndex::parse(index).unwrap(),
        amount: Fen::parse_yuan(yuan).unwrap(),
        pay_type: pay_type.into(),
        paid_at: now() - Duration::days(1),
        until_days: None,
        span: None,
    }
}

#[test]
fn the_front_desk_finds_members_by_id_openid_card_and_nickname_prefix() {
    let (_db, store) = store();
    for (openid, nick) in [
        ("s-ann", "Ann"),
        ("s-anna", "ANNABEL"),
        ("s-bob", "Bob"),
        ("s-zed", "Zed"),
    ] {
        store
            .create_member(&new_member(openid, nick), None, now())
            .unwrap();
    }
    let bob = store
        .member(MemberKey::OpenId(&OpenId::parse("s-bob").unwrap()))
        .unwrap()
        .unwrap();
    store
        .update_member(
            &OpenId::parse("s-zed").unwrap(),
            &[MemberChange::Rfid(Some(Rfid::parse("CAFE01").unwrap()))],
            now(),
        )
        .unwrap();
    let names = |text: &str, limit: u32| -> Vec<String> {
        store
            .search_members(text, limit)
            .unwrap()
            .into_iter()
            .map(|r| r.member.nickname.as_str().to_owned())
            .collect()
    };
    assert_eq!(
        names("an", 10),
        ["Ann", "ANNABEL"],
        "a case-insensitive prefix"
    );
    assert_eq!(names("ANNA", 10), ["ANNABEL"]);
    assert_eq!(names("s-bob", 10), ["Bob"], "by openid");
    assert_eq!(
        names(&bob.member.id.0.to_string(), 10),
        ["Bob"],
        "by member id"
    );
    assert_eq!(names("CAFE01", 10), ["Zed"], "by card");
    assert_eq!(
        names("", 2),
        ["Ann", "ANNABEL"],
        "everyone by nickname, limited"
    );
    assert!(names("nobody", 10).is_empty());
    assert!(names("%", 10).is_empty(), "LIKE patterns mean nothing here");
}

#[test]
fn migrations_apply_once() {
    let (_db, store) = store();
    assert_eq!(store.pending_migrations().unwrap(), 0);
    assert!(store.migrate().unwrap().is_empty());
}

#[test]
fn creates_and_reads_a_member_by_every_key() {
    let (_db, store) = store();
    let mut new = new_member("oid-1", "John");
    new.rfid = Some(Rfid::parse("04a1").unwrap());
    let record = store.create_member(&new, None, now()).unwrap();
    let m = &record.member;
    assert_eq!(m.openid.as_str(), "oid-1");
    assert_eq!(m.profile.country, "South Korea");
    assert_eq!(m.profile.gender, Gender::Male);
    assert_eq!(m.created_at, now());
    assert!(m.must_change_password);
    assert!(record.payments.is_empty());

    let by_id = store.member(MemberKey::Id(m.id)).unwrap().unwrap();
    let by_openid = store.member(MemberKey::OpenId(&m.openid)).unwrap().unwrap();
    let by_rfid = store
        .member(MemberKey::Rfid(&Rfid::parse("04A1").unwrap()))
        .unwrap()
        .unwrap();
    assert_eq!(by_id, record);
    assert_eq!(by_openid, record);
    assert_eq!(by_rfid, record);
    assert!(store
        .member(MemberKey::OpenId(&OpenId::parse("nobody").unwrap()))
        .unwrap()
        .is_none());
    assert_eq!(store.member_count().unwrap(), 1);
}

#[test]
fn the_default_password_is_hashed_and_checks() {
    let (_db, store) = store();
    let r = store
        .create_member(&new_member("oid-1", "John"), None, now())
        .unwrap();
    assert!(store
        .check_password(&r.member.openid, "password123")
        .unwrap());
    assert!(!store
        .check_password(&r.member.openid, "password124")
        .unwrap());
    store
        .set_password(&r.member.openid, "s3cret-enough", false, now())
        .unwrap();
    assert!(store
        .check_password(&r.member.openid, "s3cret-enough")
        .unwrap());
    assert!(!store
        .check_password(&r.member.openid, "password123")
        .unwrap());
    let after = store.member(MemberKey::Id(r.member.id)).unwrap().unwrap();
    assert!(!after.member.must_change_password);
    let ghost = OpenId::parse("ghost").unwrap();
    assert!(matches!(
        store.set_password(&ghost, "x", false, now()),
        Err(StorageError::MemberNotFound)
    ));
}

#[test]
fn duplicates_are_refused_ignoring_nickname_case() {
    let (_db, store) = store();
    let mut first = new_member("oid-1", "John");
    first.rfid = Some(Rfid::parse("AA11").unwrap());
    store.create_member(&first, None, now()).unwrap();
    let cases = [
        (new_member("oid-1", "Other"), UniqueField::OpenId),
        (new_member("oid-2", "JOHN"), UniqueField::NickName),
        (new_member("oid-3", "john"), UniqueField::NickName),
        (
            NewMember {
                rfid: Some(Rfid::parse("aa11").unwrap()),
                ..new_member("oid-4", "Zed")
            },
            UniqueField::Rfid,
        ),
    ];
    for (m, field) in cases {
        match store.create_member(&m, None, now()) {
            Err(StorageError::Duplicate(f)) => assert_eq!(f, field),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(store.member_count().unwrap(), 1);
}

#[test]
fn a_member_with_payment_is_one_transaction() {
    let (_db, store) = store();
    let r = store
        .create_member(
            &new_member("oid-1", "John"),
            Some(&payment("wx-1", "200", "1M MEMBERSHIP")),
            now(),
        )
        .unwrap();
    assert_eq!(r.payments.len(), 1);
    assert_eq!(r.payments[0].amount.as_fen(), 20000);
    assert_eq!(r.payments[0].recorded_at, now());
    // a second member with the same payIndex: refused, and not created
    let err = store
        .create_member(
            &new_member("oid-2", "Jane"),
            Some(&payment("wx-1", "200", "1M MEMBERSHIP")),
            now(),
        )
        .unwrap_err();
    assert!(matches!(err, StorageError::PaymentConflict(_)), "{err:?}");
    assert!(store
        .member(MemberKey::OpenId(&OpenId::parse("oid-2").unwrap()))
        .unwrap()
        .is_none());
    assert_eq!(store.member_count().unwrap(), 1);
}

#[test]
fn payments_are_idempotent_on_pay_index() {
    let (_db, store) = store();
    let r = store
        .create_member(&new_member("oid-1", "John"), None, now())
        .unwrap();
    let openid = r.member.openid.clone();
    let first = store
        .add_payment(&openid, &payment("wx-9", "123.45", "DONATION"), now())
        .unwrap();
    assert!(!first.duplicate);
    assert_eq!(first.record.payments.len(), 1);

    // a retry, even with another paidTime, is the same payment
    let mut retry = payment("wx-9", "123.45", "DONATION");
    retry.paid_at = now();
    let again = store
        .add_payment(&openid, &retry, now() + Duration::minutes(1))
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.payment.id, first.payment.id);
    assert_eq!(again.record.payments.len(), 1);

    // the same index with other content is a conflict and changes nothing
    for other in [
        payment("wx-9", "123.46", "DONATION"),
        payment("wx-9", "123.45", "EVENT"),
    ] {
        assert!(matches!(
            store.add_payment(&openid, &other, now()),
            Err(StorageError::PaymentConflict(_))
        ));
    }
    // the same index for another member is a conflict too
    let jane = store
        .create_member(&new_member("oid-2", "Jane"), None, now())
        .unwrap();
    assert!(matches!(
        store.add_payment(
            &jane.member.openid,
            &payment("wx-9", "123.45", "DONATION"),
            now()
        ),
        Err(StorageError::PaymentConflict(_))
    ));
    let after = store.member(MemberKey::OpenId(&openid)).unwrap().unwrap();
    assert_eq!(after.payments.len(), 1);
    let ghost = OpenId::parse("ghost").unwrap();
    assert!(matches!(
        store.add_payment(&ghost, &payment("wx-10", "1", "DONATION"), now()),
        Err(StorageError::MemberNotFound)
    ));
}

#[test]
fn concurrent_replays_record_exactly_one_payment() {
    let (_db, store) = store();
    let r = store
        .create_member(&new_member("oid-1", "John"), None, now())
        .unwrap();
    let openid = r.member.openid.clone();
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (store, openid, barrier) = (store.clone(), openid.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                store.add_payment(&openid, &payment("wx-race", "200", "1M MEMBERSHIP"), now())
            })
        })
        .collect();
    let results: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    assert_eq!(results.iter().filter(|r| !r.duplicate).count(), 1);
    let ids: std::collections::HashSet<i64> = results.iter().map(|r| r.payment.id).collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(
        store
            .member(MemberKey::OpenId(&openid))
            .unwrap()
            .unwrap()
            .payments
            .len(),
        1
    );
}

#[test]
fn updates_apply_all_or_nothing() {
    let (_db, store) = store();
    store
        .create_member(&new_member("oid-1", "John"), None, now())
        .unwrap();
    let mut jane = new_member("oid-2", "Jane");
    jane.rfid = Some(Rfid::parse("CAFE").unwrap());
    store.create_member(&jane, None, now()).unwrap();
    let openid = OpenId::parse("oid-1").unwrap();
    let later = now() + Duration::hours(1);

    let changes = vec![
        MemberChange::NickName(NickName::parse("Johnny").unwrap()),
        MemberChange::text(UpdatableField::AvatarUrl, "https://new/link").unwrap(),
        MemberChange::Tags(Tags::parse(&[TagInput::Number(5)]).unwrap()),
        MemberChange::Rfid(Some(Rfid::parse("beef").unwrap())),
    ];
    let r = store.update_member(&openid, &changes, later).unwrap();
    assert_eq!(r.member.nickname.as_str(), "Johnny");
    assert_eq!(r.member.profile.avatar_url, "https://new/link");
    assert_eq!(r.member.tags.names(), ["STAFF"]);
    assert_eq!(r.member.rfid.as_ref().unwrap().as_str(), "BEEF");
    assert_eq!(r.member.updated_at, later);
    assert_eq!(r.member.created_at, now());

    // a change that would duplicate Jane's nickname, openid or card changes nothing
    for (bad, field) in [
        (
            MemberChange::NickName(NickName::parse("JANE").unwrap()),
            UniqueField::NickName,
        ),
        (
            MemberChange::OpenId(OpenId::parse("oid-2").unwrap()),
            UniqueField::OpenId,
        ),
        (
            MemberChange::Rfid(Some(Rfid::parse("cafe").unwrap())),
            UniqueField::Rfid,
        ),
    ] {
        let changes = vec![
            MemberChange::text(UpdatableField::City, "Shanghai").unwrap(),
            bad,
        ];
        match store.update_member(&openid, &changes, later) {
            Err(StorageError::Duplicate(f)) => assert_eq!(f, field),
            other => panic!("{other:?}"),
        }
    }
    let unchanged = store.member(MemberKey::OpenId(&openid)).unwrap().unwrap();
    assert_eq!(unchanged.member.profile.city, "");

    // changing one's own nickname's case is fine; clearing the card too
    let r = store
        .update_member(
            &openid,
            &[
                MemberChange::NickName(NickName::parse("JOHNNY").unwrap()),
                MemberChange::Rfid(None),
            ],
            later,
        )
        .unwrap();
    assert_eq!(r.member.nickname.as_str(), "JOHNNY");
    assert_eq!(r.member.rfid, None);

    // a new openid moves the member
    let r = store
        .update_member(
            &openid,
            &[MemberChange::OpenId(OpenId::parse("oid-1b").unwrap())],
            later,
        )
        .unwrap();
    assert_eq!(r.member.openid.as_str(), "oid-1b");
    assert!(store.member(MemberKey::OpenId(&openid)).unwrap().is_none());
    assert!(matches!(
        store.update_member(&openid, &[], later),
        Err(StorageError::MemberNotFound)
    ));
}

#[test]
fn deactivation_keeps_the_member() {
    let (_db, store) = store();
    let r = store
        .create_member(&new_member("oid-1", "John"), None, now())
        .unwrap();
    store
        .set_deactivated(&r.member.openid, true, now())
        .unwrap();
    let m = store
        .member(MemberKey::Id(r.member.id))
        .unwrap()
        .unwrap()
        .member;
    assert_eq!(m.deactivated_at, Some(now()));
    store
        .set_deactivated(&r.member.openid, false, now())
        .unwrap();
    let m = store
        .member(MemberKey::Id(r.member.id))
        .unwrap()
        .unwrap()
        .member;
    assert_eq!(m.deactivated_at, None);
}

#[test]
fn api_keys_store_only_a_hash_and_can_be_revoked() {
    let (_db, store) = store();
    let scopes = Scopes::parse("member:read,door:open").unwrap();
    let (key, plaintext) = store.create_api_key("front-desk", &scopes, now()).unwrap();
    assert_eq!(key.name, "front-desk");
    let found = store.authenticate_api_key(&plaintext).unwrap().unwrap();
    assert_eq!(found.id, key.id);
    assert!(found.scopes.allows(Scope::DoorOpen));
    assert!(!found.scopes.allows(Scope::MemberWrite));
    assert!(store.authenticate_api_key("zk_wrong").unwrap().is_none());
    assert!(store.authenticate_api_key("").unwrap().is_none());
    assert!(matches!(
        store.create_api_key("front-desk", &scopes, now()),
        Err(StorageError::Duplicate(UniqueField::ApiKeyName))
    ));
    assert!(store.create_api_key("bad name", &scopes, now()).is_err());
    assert!(store.revoke_api_key("front-desk", now()).unwrap());
    assert!(!store.revoke_api_key("front-desk", now()).unwrap());
    assert!(store.authenticate_api_key(&plaintext).unwrap().is_none());
    let listed = store.list_api_keys().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].revoked_at, Some(now()));
}

#[test]
fn a_bad_url_is_refused_clearly() {
    let err = Store::open("mysql://u:pw@h/db", &StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StorageError::BadUrl(_)));
    assert!(!err.to_string().contains("pw@"));
}

#[test]
fn the_access_log_pages_newest_first_and_feeds_member_entries() {
    use zhima_domain::access::{AccessMethod, NewAccessEvent, Outcome};
    use zhima_storage::access::EventQuery;

    let (_db, store) = store();
    let id = store
        .create_member(&new_member("o-door", "Door"), None, now())
        .unwrap()
        .member
        .id;
    let (key, _) = store
        .create_api_key("door-station", &Scopes::parse("door:open").unwrap(), now())
        .unwrap();
    let at = |minutes: i64| now() + Duration::minutes(minutes);
    let mut recorded = Vec::new();
    for i in 0..7 {
        let event =
            NewAccessEvent::new(at(i), "front", AccessMethod::Qr, Outcome::Granted, "qr_ok")
                .for_member(id)
                .detail(format!("entry {i}"));
        recorded.push(store.record_access(&event).unwrap());
    }
    let refused = NewAccessEvent::new(
        at(8),
        "front",
        AccessMethod::Api,
        Outcome::Refused,
        "bad_seconds",
    )
    .by_key(key.id);
    let refused = store.record_access(&refused).unwrap();
    let held = NewAccessEvent::new(
        at(9),
        "front",
        AccessMethod::Door,
        Outcome::Event,
        "door_held_open",
    );
    store.record_access(&held).unwrap();
    assert_eq!(store.access_event_count().unwrap(), 9);

    // newest first, in pages
    let page = |since, before, limit| {
        store
            .access_events(EventQuery {
                since,
                before,
                limit,
                ..EventQuery::default()
            })
            .unwrap()
    };
    let first = page(None, None, 4);
    assert_eq!(
        first
            .iter()
            .map(|e| e.event.reason.as_str())
            .collect::<Vec<_>>(),
        ["door_held_open", "bad_seconds", "qr_ok", "qr_ok"]
    );
    assert_eq!(first[1], refused, "read back as written");
    let second = page(None, Some(first[3].id), 4);
    assert_eq!(
        second
            .iter()
            .map(|e| e.event.detail.as_str())
            .collect::<Vec<_>>(),
        ["entry 4", "entry 3", "entry 2", "entry 1"]
    );
    let third = page(None, Some(second[3].id), 4);
    assert_eq!(third.len(), 1);
    assert_eq!(third[0], recorded[0]);
    // since is inclusive, in whole seconds
    let recent = page(Some(at(6)), None, 100);
    assert_eq!(recent.len(), 3);
    assert!(page(Some(at(10)), None, 100).is_empty());

    // the member's granted entries come with the member
    let record = store.member(MemberKey::Id(id)).unwrap().unwrap();
    assert_eq!(record.entries, (0..7).map(at).collect::<Vec<_>>());

    // an event naming a member or key that does not exist is refused
    let ghost = NewAccessEvent::new(at(1), "front", AccessMethod::Rfid, Outcome::Granted, "x")
        .for_member(zhima_domain::ids::MemberId(987_654));
    assert!(store.record_access(&ghost).is_err());
    assert_eq!(store.access_event_count().unwrap(), 9);
}

#[test]
fn a_member_read_loads_only_the_entries_inside_the_windows() {
    use zhima_domain::access::{AccessMethod, NewAccessEvent, Outcome};

    let (db, store) = store();
    let id = store
        .create_member(&new_member("o-win", "Windows"), None, now())
        .unwrap()
        .member
        .id;
    let at = |hours: i64| now() + Duration::hours(hours);
    for h in 0..48 {
        let outcome = if h % 5 == 4 {
            Outcome::Refused
        } else {
            Outcome::Granted
        };
        let event =
            NewAccessEvent::new(at(h), "front", AccessMethod::Qr, outcome, "qr").for_member(id);
        store.record_access(&event).unwrap();
    }
    let granted = |h: &i64| h % 5 != 4;
    // no windows: every granted entry
    let all = store.member(MemberKey::Id(id)).unwrap().unwrap();
    assert_eq!(
        all.entries,
        (0..48).filter(granted).map(at).collect::<Vec<_>>()
    );
    assert_eq!(all.last_entry, Some(at(47)));

    // two windows, given the payments (none here): [10 h, 20 h) and [30 h, 31 h)
    let windowed = |windows: zhima_storage::EntryWindows| {
        let options = StoreOptions {
            entry_windows: Some(windows),
            ..StoreOptions::default()
        };
        Store::open(db.url(), &options).unwrap()
    };
    let store = windowed(std::sync::Arc::new(move |payments| {
        assert!(payments.is_empty());
        vec![(at(10), at(20)), (at(30), at(31))]
    }));
    let within = store.member(MemberKey::Id(id)).unwrap().unwrap();
    let expected: Vec<_> = (10..20).chain(30..31).filter(granted).map(at).collect();
    assert_eq!(within.entries, expected, "inclusive start, exclusive end");
    assert_eq!(
        within.last_entry,
        Some(at(47)),
        "the latest entry, outside every window"
    );
    assert_eq!(within.member, all.member);

    // no windows at all: no entries, still the latest one (refused ones never count)
    let store = windowed(std::sync::Arc::new(|_| Vec::new()));
    let none = store.member(MemberKey::Id(id)).unwrap().unwrap();
    assert!(none.entries.is_empty());
    assert_eq!(none.last_entry, Some(at(47)));
    let refused = NewAccessEvent::new(at(60), "front", AccessMethod::Qr, Outcome::Refused, "qr")
        .for_member(id);
    store.record_access(&refused).unwrap();
    let after = store.member(MemberKey::Id(id)).unwrap().unwrap();
    assert_eq!(after.last_entry, Some(at(47)));
}

// ------------------------------------------------------------ partners

mod partners {
    use super::*;
    use std::collections::BTreeSet;
    use zhima_domain::partner::{PartnerScope, TokenKind, Tokens, VipLevel};
    use zhima_domain::time::CalendarSpan;
    use zhima_storage::oauth::{NewCode, NewOAuthClient, NewTokens, Redeemed};
    use zhima_storage::wallet::{VipOutcome, VipPurchase};

    fn client(store: &Store) -> String {
        let scopes: BTreeSet<PartnerScope> = PartnerScope::ALL.into_iter().collect();
        store
            .create_oauth_client(
                &NewOAuthClient {
                    client_id: "client-1",
                    name: "GoPlay",
                    secret_hash: None,
                    redirect_uris: &["https://goplay.example/cb".to_owned()],
                    scopes: &scopes,
                    pkce_required: true,
                },
                now(),
            )
            .unwrap()
            .client_id
    }

    fn purchase<'a>(member: zhima_domain::ids::MemberId, key: Option<&'a str>) -> VipPurchase<'a> {
        VipPurchase {
            member_id: member,
            client_id: "client-1",
            level: VipLevel::Standard,
            price: Tokens::whole(100),
            span: CalendarSpan::Months(1),
            tz: zhima_domain::time::DEFAULT_TIMEZONE,
            idempotency_key: key,
        }
    }

    fn run_concurrently<T: Send + 'static>(
        n: usize,
        f: impl Fn(usize) -> T + Send + Sync + 'static,
    ) -> Vec<T> {
        let barrier = Arc::new(Barrier::new(n));
        let f = Arc::new(f);
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let barrier = barrier.clone();
                let f = f.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }

    /// Two servers on one database: whatever the second writes about a
    /// member (a payment, an entry at the door, tokens, a VIP period), the
    /// first's next read of that member answers it, though the first keeps
    /// the member's history between reads; and a write that rolls back
    /// leaves no trace in either.
    #[test]
    fn a_member_read_answers_every_acknowledged_write_of_another_server() {
        use zhima_domain::access::{AccessMethod, NewAccessEvent, Outcome};
        let (db, a) = store();
        let b = Store::open(db.url(), &StoreOptions::default()).unwrap();
        client(&a);
        let m = a
            .create_member(&new_member("two1", "TwoServers"), None, now())
            .unwrap();
        let (id, openid) = (m.member.id, OpenId::parse("two1").unwrap());
        let read = |s: &Store| s.member(MemberKey::Id(id)).unwrap().unwrap();
        assert_eq!(read(&a), read(&a), "two reads with no write between");
        assert!(read(&a).payments.is_empty());

        b.add_payment(&openid, &payment("two-p1", "10", "DAY"), now())
            .unwrap();
        let seen = read(&a);
        assert_eq!(seen.payments.len(), 1, "a missed b's payment: {seen:?}");

        let mut entry =
            NewAccessEvent::new(now(), "front", AccessMethod::Qr, Outcome::Granted, "qr_ok");
        entry.member = Some(id);
        b.record_access(&entry).unwrap();
        let seen = read(&a);
        assert_eq!(seen.last_entry, Some(now()), "a missed b's entry: {seen:?}");
        // a refusal changes no validity and need not be seen
        let mut refused = entry.clone();
        refused.outcome = Outcome::Refused;
        refused.at = now() + Duration::seconds(5);
        b.record_access(&refused).unwrap();
        assert_eq!(read(&a).last_entry, Some(now()));

        b.grant_tokens(
            &openid,
            TokenKind::Paid,
            Tokens::whole(150),
            "bought",
            now(),
        )
        .unwrap();
        let seen = read(&a);
        assert_eq!(
            seen.balance.paid,
            Tokens::whole(150),
            "a missed b's tokens: {seen:?}"
        );

        assert!(matches!(
            b.buy_vip(&purchase(id, None), now()).unwrap(),
            VipOutcome::Bought(_)
        ));
        let seen = read(&a);
        assert_eq!(seen.vip.len(), 1, "a missed b's VIP period: {seen:?}");
        assert_eq!(seen.balance.paid, Tokens::whole(50));

        // a payment whose token credit fails rolls back whole: the payment
        // row was written, then undone, and no read shows it
        let before = read(&a);
        let over_cap = payment("two-p2", "99999999", zhima_storage::TOKENS_PAY_TYPE);
        let refused = b.add_payment(&openid, &over_cap, now());
        assert!(
            matches!(refused, Err(StorageError::TokenCap)),
            "{refused:?}"
        );
        assert_eq!(read(&a), before);
        assert_eq!(read(&b), before);
        b.add_payment(&openid, &payment("two-p3", "10", "DAY"), now())
            .unwrap();
        assert_eq!(
            read(&a).payments.len(),
            before.payments.len() + 1,
            "the write after a rollback was missed"
        );
    }

    #[test]
    fn concurrent_purchases_spend_exactly_the_balance() {
        let (_db, store) = store();
        client(&store);
        let m = store
            .create_member(&new_member("w1", "Wallet"), None, now())
            .unwrap();
        let openid = OpenId::parse("w1").unwrap();
        store
            .grant_tokens(&openid, TokenKind::Free, Tokens::whole(120), "gift", now())
            .unwrap();
        store
            .grant_tokens(
                &openid,
                TokenKind::Paid,
                Tokens::whole(200),
                "bought",
                now(),
            )
            .unwrap();
        let id = m.member.id;
        let s = store.clone();
        let outcomes = run_concurrently(8, move |_| s.buy_vip(&purchase(id, None), now()).unwrap());
        let bought = outcomes
            .iter()
            .filter(|o| matches!(o, VipOutcome::Bought(_)))
            .count();
        assert_eq!(bought, 3, "{outcomes:?}");
        let balance = store.balance(id).unwrap();
        assert_eq!(balance.free, Tokens::ZERO, "free tokens go first");
        assert_eq!(balance.paid, Tokens::whole(20));
        let periods = store.vip_periods(id).unwrap();
        assert_eq!(periods.len(), 3);
        assert!(
            periods.windows(2).all(|w| w[0].end == w[1].start),
            "{periods:?}"
        );
    }

    #[test]
    fn concurrent_retries_with_one_key_debit_once() {
        let (_db, store) = store();
        client(&store);
        let m = store
            .create_member(&new_member("w2", "Retry"), None, now())
            .unwrap();
        store
            .grant_tokens(
                &OpenId::parse("w2").unwrap(),
                TokenKind::Free,
                Tokens::whole(1000),
                "gift",
                now(),
            )
            .unwrap();
        let id = m.member.id;
        let s = store.clone();
        let outcomes = run_concurrently(6, move |_| {
            s.buy_vip(&purchase(id, Some("order-1")), now()).unwrap()
        });
        let fresh = outcomes
            .iter()
            .filter(|o| matches!(o, VipOutcome::Bought(b) if !b.replayed))
            .count();
        let replayed = outcomes
            .iter()
            .filter(|o| matches!(o, VipOutcome::Bought(b) if b.replayed))
            .count();
        assert_eq!((fresh, replayed), (1, 5), "{outcomes:?}");
        assert_eq!(store.balance(id).unwrap().free, Tokens::whole(900));
        assert_eq!(store.vip_periods(id).unwrap().len(), 1);
        let mut gold = purchase(id, Some("order-1"));
        gold.level = VipLevel::Gold;
        assert_eq!(store.buy_vip(&gold, now()).unwrap(), VipOutcome::KeyReused);
        assert_eq!(store.balance(id).unwrap().free, Tokens::whole(900));
    }

    /// A code of `client_id` for `member`, issued and redeemed once: the
    /// family its tokens belong to.
    fn redeemed_code(
        store: &Store,
        client_id: &str,
        member: zhima_domain::ids::MemberId,
        code_hash: &str,
    ) -> zhima_storage::oauth::StoredCode {
        let code = NewCode {
            code_hash,
            client_id,
            member_id: member,
            redirect_uri: "https://goplay.example/cb",
            scope: "profile",
            pkce: None,
            redirect_uri_sent: true,
            expires_at: now() + Duration::minutes(5),
        };
        store.insert_oauth_code(&code, now()).unwrap();
        let Redeemed::Fresh(stored) = store
            .redeem_oauth_code(code_hash, client_id, now(), |_| true)
            .unwrap()
        else {
            panic!("a fresh code")
        };
        stored
    }

    /// The token and its member in one statement: the member as a member
    /// read answers it (with another server's latest write), and nothing
    /// once the member is deactivated.
    #[test]
    fn a_token_is_read_with_its_member_until_the_member_is_deactivated() {
        let (db, store) = store();
        let other = Store::open(db.url(), &StoreOptions::default()).unwrap();
        let client_id = client(&store);
        let m = store
            .create_member(&new_member("tm1", "TokenMember"), None, now())
            .unwrap();
        let stored = redeemed_code(&store, &client_id, m.member.id, "code-tm");
        let tokens = NewTokens {
            family: stored.id,
            client_id: &client_id,
            member_id: m.member.id,
            scope: "profile",
            refresh_scope: "profile",
            access_hash: "access-tm",
            access_expires: now() + Duration::hours(1),
            refresh_hash: "refresh-tm",
            refresh_expires: now() + Duration::days(30),
        };
        store.issue_oauth_tokens(&tokens, now()).unwrap();
        assert!(store.oauth_token_with_member("nothing").unwrap().is_none());

        let (token, record) = store.oauth_token_with_member("access-tm").unwrap().unwrap();
        assert_eq!(token.member_id, m.member.id);
        assert_eq!(
            record,
            store.member(MemberKey::Id(m.member.id)).unwrap().unwrap()
        );

        let openid = OpenId::parse("tm1").unwrap();
        other
            .grant_tokens(&openid, TokenKind::Free, Tokens::whole(7), "gift", now())
            .unwrap();
        let (_, record) = store.oauth_token_with_member("access-tm").unwrap().unwrap();
        assert_eq!(
            record.balance.free,
            Tokens::whole(7),
            "another server's gift was missed"
        );

        other.set_deactivated(&openid, true, now()).unwrap();
        assert!(
            store
                .oauth_token_with_member("access-tm")
                .unwrap()
                .is_none(),
            "a deactivated member's token still answered"
        );
    }

    #[test]
    fn a_refresh_token_rotates_once_and_a_race_revokes_the_family() {
        let (_db, store) = store();
        let client_id = client(&store);
        let m = store
            .create_member(&new_member("w3", "Race"), None, now())
            .unwrap();
        let stored = redeemed_code(&store, &client_id, m.member.id, "code-hash");
        assert!(matches!(
            store
                .redeem_oauth_code("code-hash", &client_id, now(), |_| true)
                .unwrap(),
            Redeemed::Replayed
        ));
        let family = stored.id;
        let member_id = m.member.id;
        let tokens = move |n: &'static str| NewTokens {
            family,
            client_id: "client-1",
            member_id,
            scope: "profile",
            refresh_scope: "profile",
            access_hash: Box::leak(format!("access-{n}").into_boxed_str()),
            access_expires: now() + Duration::hours(1),
            refresh_hash: Box::leak(format!("refresh-{n}").into_boxed_str()),
            refresh_expires: now() + Duration::days(30),
        };
        store.issue_oauth_tokens(&tokens("0"), now()).unwrap();
        let first = store.oauth_token("refresh-0").unwrap().unwrap();
        let s = store.clone();
        let id = first.id;
        let won = run_concurrently(4, move |i| {
            let name: &'static str = ["a", "b", "c", "d"][i];
            s.rotate_refresh_token(id, &tokens(name), now()).unwrap()
        });
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
        // the losers saw a reuse: the whole family, winner's tokens too, is revoked
        for name in [
            "access-0",
            "refresh-0",
            "access-a",
            "refresh-a",
            "access-b",
            "refresh-b",
            "access-c",
            "refresh-c",
            "access-d",
            "refresh-d",
        ] {
            if let Some(t) = store.oauth_token(name).unwrap() {
                assert!(!t.is_active(now()), "{name} should be revoked");
            }
        }
    }

    #[test]
    fn a_code_is_spent_only_by_its_client_with_a_matching_request() {
        let (_db, store) = store();
        let client_id = client(&store);
        let m = store
            .create_member(&new_member("c4", "Coder"), None, now())
            .unwrap();
        let code = NewCode {
            code_hash: "code-4",
            client_id: &client_id,
            member_id: m.member.id,
            redirect_uri: "https://goplay.example/cb",
            scope: "profile",
            pkce: Some("challenge"),
            redirect_uri_sent: false,
            expires_at: now() + Duration::minutes(5),
        };
        store.insert_oauth_code(&code, now()).unwrap();
        // another client: refused, nothing spent
        assert_eq!(
            store
                .redeem_oauth_code("code-4", "client-2", now(), |_| true)
                .unwrap(),
            Redeemed::Mismatch
        );
        // its client with a request that does not match: refused, nothing spent
        let mut seen = None;
        assert_eq!(
            store
                .redeem_oauth_code("code-4", &client_id, now(), |c| {
                    seen = Some(c.clone());
                    false
                })
                .unwrap(),
            Redeemed::Mismatch
        );
        let seen = seen.expect("the check saw the code");
        assert_eq!(seen.pkce.as_deref(), Some("challenge"));
        assert!(!seen.redirect_uri_sent);
        // then the real request gets it
        assert!(matches!(
            store
                .redeem_oauth_code("code-4", &client_id, now(), |_| true)
                .unwrap(),
            Redeemed::Fresh(_)
        ));
        // a replay by another client revokes nothing and is told nothing
        assert_eq!(
            store
                .redeem_oauth_code("code-4", "client-2", now(), |_| true)
                .unwrap(),
            Redeemed::Mismatch
        );
        assert_eq!(
            store
                .redeem_oauth_code("unknown", &client_id, now(), |_| true)
                .unwrap(),
            Redeemed::Unknown
        );
    }

    #[test]
    fn a_consent_ticket_is_spent_once() {
        let (_db, store) = store();
        let later = now() + Duration::minutes(10);
        assert!(store.spend_ticket("t1", later, now()).unwrap());
        assert!(!store.spend_ticket("t1", later, now()).unwrap());
        assert!(store.spend_ticket("t2", later, now()).unwrap());
        // expired rows are forgotten (a ticket is refused by its own expiry
        // long before; its row need not stay)
        assert!(store
            .spend_ticket("t3", later, later + Duration::minutes(1))
            .unwrap());
        assert!(store
            .spend_ticket(
                "t1",
                later + Duration::hours(1),
                later + Duration::minutes(1)
            )
            .unwrap());
    }
}

/// An audited change and its audit row commit together; a change that fails
/// leaves no row; the log refuses every update and delete, even in SQL.
#[test]
fn the_audit_log_records_each_change_with_it_and_cannot_be_changed() {
    use zhima_storage::audit::AuditNote;
    let (db, store) = store();
    let m = store
        .create_member(&new_member("audit-1", "Audited"), None, now())
        .unwrap();
    let note = |action: &str| AuditNote {
        at: now(),
        actor_id: Some(m.member.id),
        actor: "Audited".into(),
        action: action.into(),
        subject: format!("member #{}", m.member.id.0),
        before: "status=OK".into(),
        after: "status=INVALID".into(),
    };
    store
        .audited(note("member.deactivate"))
        .set_deactivated(&m.member.openid, true, now())
        .unwrap();
    // a change that fails (no such member) records nothing
    let missing = OpenId::parse("nobody-here").unwrap();
    assert!(store
        .audited(note("member.reactivate"))
        .set_deactivated(&missing, false, now())
        .is_err());
    let log = store.audit_log(None, 50).unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].note, note("member.deactivate"));
    // an unaudited store records nothing
    store
        .set_deactivated(&m.member.openid, false, now())
        .unwrap();
    assert_eq!(store.audit_log(None, 50).unwrap().len(), 1);

    for sql in [
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
    ] {
        let refused = db.execute(sql);
        assert!(refused.is_err(), "{sql} was allowed");
    }
    if db.is_postgres() {
        assert!(
            db.execute("TRUNCATE audit_log").is_err(),
            "TRUNCATE was allowed"
        );
    }
    let log = store.audit_log(None, 50).unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].note.actor, "Audited");
}

/// The outbox queues a key once, hands each message to one of several
/// racing senders, takes back a message whose sender's lease ran out, and
/// retries or gives up as told.
#[test]
fn the_outbox_queues_once_and_hands_each_message_to_one_sender() {
    use zhima_storage::outbox::{Delivery, NewMessage};
    let (_db, store) = store();
    let message = |key: &'static str| NewMessage {
        once_key: key,
        channel: "email",
        kind: "reminder-7",
        member: None,
        payload: "{}",
    };
    for i in 0..40 {
        let key: &'static str = Box::leak(format!("k-{i}").into_boxed_str());
        assert!(store.enqueue(&message(key), now()).unwrap());
        assert!(
            !store.enqueue(&message(key), now()).unwrap(),
            "queued twice"
        );
    }
    assert!(store.outbox_has("k-0").unwrap());
    assert!(!store.outbox_has("k-x").unwrap());

    // four senders race: every message is claimed exactly once
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut mine = Vec::new();
                loop {
                    let got = store
                        .claim_messages(now(), Duration::minutes(5), 7)
                        .unwrap();
                    if got.is_empty() {
                        break mine;
                    }
                    mine.extend(got.into_iter().map(|m| m.once_key));
                }
            })
        })
        .collect();
    let mut all: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, 40, "claimed {before} times for 40 messages");
    assert_eq!(all.len(), 40);
    let counts = store.outbox_counts().unwrap();
    assert_eq!((counts.pending, counts.sending), (0, 40), "{counts:?}");

    // within the lease nobody else gets them; after it, they come back
    assert!(store
        .claim_messages(now() + Duration::minutes(4), Duration::minutes(5), 100)
        .unwrap()
        .is_empty());
    let back = store
        .claim_messages(now() + Duration::minutes(6), Duration::minutes(5), 100)
        .unwrap();
    assert_eq!(back.len(), 40);
    assert!(back.iter().all(|m| m.attempts == 2), "{back:?}");

    let t = now() + Duration::minutes(6);
    store
        .finish_message(back[0].id, &Delivery::Sent, t)
        .unwrap();
    store
        .finish_message(
            back[1].id,
            &Delivery::Retry {
                error: "421 try later".into(),
                next_at: t + Duration::minutes(10),
            },
            t,
        )
        .unwrap();
    store
        .finish_message(
            back[2].id,
            &Delivery::GiveUp {
                error: "550 no such user".into(),
            },
            t,
        )
        .unwrap();
    let counts = store.outbox_counts().unwrap();
    assert_eq!(
        (counts.pending, counts.sending, counts.sent, counts.failed),
        (1, 37, 1, 1),
        "{counts:?}"
    );
    for m in &back[3..] {
        store.finish_message(m.id, &Delivery::Sent, t).unwrap();
    }
    // the retry is not due before its time, then it is
    assert!(store
        .claim_messages(t + Duration::minutes(9), Duration::minutes(5), 100)
        .unwrap()
        .is_empty());
    let retried = store
        .claim_messages(t + Duration::minutes(10), Duration::minutes(5), 100)
        .unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].id, back[1].id);
    // a sent key is never queued again
    assert!(!store.enqueue(&message("k-0"), t).unwrap());
}

/// A payment's explicit span is stored and read back to the second.
#[test]
fn an_explicit_payment_span_is_stored_as_given() {
    let (_db, store) = store();
    let m = store
        .create_member(&new_member("span-1", "Span"), None, now())
        .unwrap();
    let span = (now() - Duration::days(40), now() + Duration::days(5));
    store
        .add_payment(
            &m.member.openid,
            &NewPayment {
                pay_index: PayIndex::parse("legacy-7").unwrap(),
                amount: Fen::parse_yuan("199.99").unwrap(),
                pay_type: "1M MEMBERSHIP".into(),
                paid_at: now() - Duration::days(41),
                until_days: None,
                span: Some(span),
            },
            now(),
        )
        .unwrap();
    let record = store
        .member(MemberKey::OpenId(&m.member.openid))
        .unwrap()
        .unwrap();
    assert_eq!(record.payments[0].span, Some(span));
}

/// Members imported under numbers of their own keep them, and members made
/// afterwards get numbers after the highest (the sequence moved on
/// PostgreSQL); all of it in one transaction.
#[test]
fn numbered_members_keep_their_numbers_and_new_ones_come_after() {
    use zhima_domain::ids::MemberId;
    use zhima_storage::{NumberedMember, Whom};
    let no_events = || |_: &[MemberId]| Ok(None);
    let (_db, store) = store();
    let hash = zhima_storage::credentials::hash_password("kept-secret-2018").unwrap();
    let numbered = |id: i64, openid: &str, nick: &str| NumberedMember {
        id: Some(MemberId(id)),
        new: new_member(openid, nick),
        created: now() - Duration::days(900),
        deactivated: false,
        password_hash: None,
    };
    let mut gone = numbered(7, "old-7", "Old Seven");
    gone.deactivated = true;
    let mut keeper = numbered(100, "old-100", "Old Hundred");
    keeper.password_hash = Some(hash);
    let span = (now() - Duration::days(10), now() + Duration::days(20));
    let payment = NewPayment {
        pay_index: PayIndex::parse("legacy-1").unwrap(),
        amount: Fen::parse_yuan("200").unwrap(),
        pay_type: "1M MEMBERSHIP".into(),
        paid_at: now() - Duration::days(11),
        until_days: None,
        span: Some(span),
    };
    let written = store
        .import_numbered(
            &[gone, keeper],
            &[(Whom::Imported(1), payment.clone())],
            &mut no_events(),
            "test",
            false,
            now(),
        )
        .unwrap();
    assert_eq!((written.members, written.payments), (2, 1));
    let seven = store.member(MemberKey::Id(MemberId(7))).unwrap().unwrap();
    assert!(seven.member.deactivated_at.is_some());
    assert!(seven.member.must_change_password);
    let hundred = store.member(MemberKey::Id(MemberId(100))).unwrap().unwrap();
    assert!(
        !hundred.member.must_change_password,
        "a kept password opens the web login"
    );
    assert_eq!(hundred.payments[0].span, Some(span));
    assert_eq!(hundred.member.created_at, now() - Duration::days(900));
    // a member made now comes after the highest number
    let later = store
        .create_member(&new_member("new-1", "Newcomer"), None, now())
        .unwrap();
    assert!(later.member.id.0 > 100, "{:?}", later.member.id);
    // the same number again: refused, nothing written
    let again = store.import_numbered(
        &[numbered(7, "other-7", "Other")],
        &[],
        &mut no_events(),
        "test",
        false,
        now(),
    );
    assert!(
        matches!(again, Err(zhima_storage::StorageError::NumberTaken(7))),
        "{again:?}"
    );
    assert!(store
        .member(MemberKey::OpenId(&OpenId::parse("other-7").unwrap()))
        .unwrap()
        .is_none());
    // a second run of the payments is a replay: nothing more
    let replay = store
        .import_numbered(
            &[],
            &[(Whom::Existing(MemberId(100)), payment)],
            &mut no_events(),
            "test",
            false,
            now(),
        )
        .unwrap();
    assert_eq!((replay.payments, replay.replayed), (0, 1));
}

/// An import's dry run checks everything and writes nothing; a real one
/// writes members, payments, events and its mark together; a source that
/// fails midway leaves nothing.
#[test]
fn an_import_is_all_or_nothing_and_a_dry_run_writes_nothing() {
    use zhima_domain::access::{AccessMethod, NewAccessEvent, Outcome};
    use zhima_domain::ids::MemberId;
    use zhima_storage::{NumberedMember, StorageError, Whom};
    let (_db, store) = store();
    let member = NumberedMember {
        id: None,
        new: new_member("imp-1", "Imported"),
        created: now(),
        deactivated: false,
        password_hash: None,
    };
    let payment = NewPayment {
        pay_index: PayIndex::parse("legacy-9").unwrap(),
        amount: Fen::parse_yuan("200").unwrap(),
        pay_type: "1M MEMBERSHIP".into(),
        paid_at: now(),
        until_days: None,
        span: None,
    };
    let run = |dry: bool, fail_after: Option<usize>| {
        let mut batches = 0;
        let mut events = |ids: &[MemberId]| {
            batches += 1;
            if fail_after == Some(batches) {
                return Err("the old database went away".to_owned());
            }
            if batches > 2 {
                return Ok(None);
            }
            let e = NewAccessEvent::new(
                now(),
                "front",
                AccessMethod::Legacy,
                Outcome::Granted,
                "legacy_open",
            )
            .for_member(ids[0]);
            Ok(Some((vec![e], batches as i64 * 10)))
        };
        store.import_numbered(
            std::slice::from_ref(&member),
            &[(Whom::Imported(0), payment.clone())],
            &mut events,
            "test-log",
            dry,
            now(),
        )
    };
    let dry = run(true, None).unwrap();
    assert_eq!((dry.members, dry.payments, dry.events), (1, 1, 2));
    assert_eq!(store.member_count().unwrap(), 0, "a dry run wrote");
    assert_eq!(store.import_mark("test-log").unwrap(), None);
    let failed = run(false, Some(2));
    assert!(matches!(failed, Err(StorageError::Source(_))), "{failed:?}");
    assert_eq!(store.member_count().unwrap(), 0, "a failed import wrote");
    assert_eq!(store.access_event_count().unwrap(), 0);
    let done = run(false, None).unwrap();
    assert_eq!((done.members, done.payments, done.events), (1, 1, 2));
    assert_eq!(store.access_event_count().unwrap(), 2);
    assert_eq!(store.import_mark("test-log").unwrap(), Some(20));
    // imported history spends no entry day: it is not among the entries
    let record = store
        .member(MemberKey::OpenId(&OpenId::parse("imp-1").unwrap()))
        .unwrap()
        .unwrap();
    assert!(record.entries.is_empty(), "{:?}", record.entries);
}

/// Members imported from a spreadsheet start on the default password, each
/// with a hash salted for them alone (no two members share a stored hash).
#[test]
fn imported_members_do_not_share_a_default_password_hash() {
    let (_db, store) = store();
    let members = [
        (new_member("csv-1", "Csv One"), now()),
        (new_member("csv-2", "Csv Two"), now()),
    ];
    assert_eq!(store.import_batch(&members, &[], now()).unwrap(), (2, 0));
    let one = store.member_login("csv one").unwrap().unwrap();
    let two = store.member_login("csv two").unwrap().unwrap();
    assert!(one.must_change_password && two.must_change_password);
    assert_ne!(one.password_hash, two.password_hash, "one hash shared");
    assert!(zhima_storage::credentials::verify_password(
        zhima_storage::DEFAULT_PASSWORD,
        &one.password_hash
    ));
}
