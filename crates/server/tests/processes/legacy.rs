//! `zhima import zhima-legacy` with the real binary, from a real MariaDB
//! holding the old server's schema and awkward data (Chinese and emoji
//! nicknames, a float amount, overlapping periods, an INVALID member, a log
//! row naming nobody, NULL emails), into SQLite and, in the PostgreSQL
//! runs, PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Asia::Shanghai;
use zhima_domain::access::{AccessMethod, Outcome};
use zhima_domain::ids::{MemberId, OpenId};
use zhima_domain::membership::{evaluate, History, MemberStatus};
use zhima_domain::plan::Plans;
use zhima_storage::access::EventQuery;
use zhima_storage::testing::TestDatabase;
use zhima_storage::{credentials, MemberKey, Store, StoreOptions};

use crate::support::add_member_to;
use crate::support::mariadb::LegacyDb;

/// `zhima ARGS` on `url`: exit success, stdout, stderr.
fn zhima(url: &str, args: &[&str]) -> (bool, String, String) {
    crate::support::process::try_cli(url, args)
}

/// A local date `days` from today in Shanghai, as SQL text.
fn day(days: i64) -> String {
    (Utc::now().with_timezone(&Shanghai).date_naive() + Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

/// The old database: six users, seven transactions, six log rows.
fn fixture(db: &LegacyDb) {
    db.exec(
        "INSERT INTO users (id, openid, username, passwd, avatar_url, email, status, role,
                            city, province, country, gender, language, create_time) VALUES
         (1, 'o-xiaoming', '小明', 'xcj-2016', 'https://a.example/xm.png', 'xm@example.com',
          'OK', 1, '上海', '上海', '中国', 1, 'zh_CN', '2016-05-01 10:00:00'),
         (2, 'o-fox', '🦊 狐狸', 'password123', NULL, NULL, 'NOT_OK', 0,
          NULL, NULL, NULL, 2, 'en', '2017-01-02 03:04:05'),
         (3, 'o-ada', 'Ada', '', '', '', 'OK', 10, '', '', '', 0, '', NULL),
         (4, 'o-gone', 'Gone Member', 'old-pass', NULL, NULL, 'INVALID', 1,
          NULL, NULL, NULL, 0, NULL, '2015-01-01 00:00:00'),
         (5, 'o-ovid', 'Ovid', NULL, NULL, 'ovid@example.com', 'OK', 1,
          NULL, NULL, NULL, 0, NULL, '2018-03-12 19:29:00'),
         (6, 'o-dona', 'Dona', NULL, NULL, NULL, 'OK', 1,
          NULL, NULL, NULL, 0, NULL, '0000-00-00 00:00:00')",
    );
    db.exec(&format!(
        "INSERT INTO transactions (id, member_id, type, description, amount, currency,
                                   valid_from, valid_until, created_on) VALUES
         (1, 1, '1M MEMBERSHIP', 'mini program', 199.99000000001, 'CNY', '{a}', '{b}', '{a} 18:30:00'),
         (2, 5, '6M MEMBERSHIP', '', 1000, 'CNY', '{c}', '{d}', '{c} 09:00:00'),
         (3, 5, '1M MEMBERSHIP', '', 200, 'CNY', '{e}', '{f}', '{g} 12:00:00'),
         (4, 2, '10 ENTRIES', '', 300, 'CNY', '{h}', '{i}', '{h} 20:00:00'),
         (5, 6, '1M MEMBERSHIP', '', 200, 'CNY', '{j}', '{k}', '{j} 10:00:00'),
         (6, 6, 'DONATION', 'thanks', 50, 'CNY', '{j}', '{l}', '{j} 10:05:00'),
         (7, 4, '1M MEMBERSHIP', '', 12.345, 'CNY', '{j}', '{k}', '{j} 11:00:00')",
        a = day(-16),
        b = day(13),
        c = day(-150),
        d = day(30),
        e = day(20),
        f = day(49),
        g = day(-3),
        h = day(-40),
        i = day(140),
        j = day(-400),
        k = day(-371),
        l = day(300),
    ));
    db.exec(&format!(
        "INSERT INTO tb_log (id, type, code, message, created_on) VALUES
         (1, 'OPEN', 0, 'Welcome 小明 - QR V2', '{y} 10:00:00'),
         (2, 'NOT_OK', 0, 'Welcome Gone Member - QR V2', '{y} 10:05:00'),
         (3, 'OPEN', 0, 'Welcome ghost - QR V2', '{y} 10:06:00'),
         (4, 'INFO', 0, 'door service started', '{y} 07:00:00'),
         (5, 'OPEN', 0, 'Welcome 🦊 狐狸 - QR V2', '{y} 11:00:00'),
         (6, 'ERROR', 3, 'camera not found', '{y} 12:00:00')",
        y = day(-1),
    ));
}

fn store(db: &TestDatabase) -> Store {
    let store = Store::open(db.url(), &StoreOptions::default()).unwrap();
    store.migrate().unwrap();
    store
}

/// The end of a local day's last minute: where a span to `date` ends.
fn end_of(date: &str) -> DateTime<Utc> {
    use chrono::TimeZone as _;
    let next = NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap() + Duration::days(1);
    Shanghai
        .from_local_datetime(&next.and_hms_opt(0, 0, 0).unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

fn validity(store: &Store, id: i64) -> zhima_domain::membership::Validity {
    let r = store.member(MemberKey::Id(MemberId(id))).unwrap().unwrap();
    evaluate(
        History {
            deactivated: r.member.deactivated_at.is_some(),
            payments: &r.payments,
            entries: &r.entries,
            vip: &r.vip,
        },
        &Plans::standard(),
        Shanghai,
        Utc::now(),
    )
}

fn line<'a>(out: &'a str, start: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line {start:?} in:\n{out}"))
}

#[test]
fn the_old_servers_database_comes_across_once_and_whole() {
    let Some(old) = LegacyDb::create("whole") else {
        return;
    };
    fixture(&old);
    let target = TestDatabase::new().unwrap();
    let new = store(&target);
    let from = old.url();

    // the dry run reports everything and writes nothing
    let (ok, out, err) = zhima(
        target.url(),
        &["import", "zhima-legacy", "--from", &from, "--dry-run"],
    );
    assert!(ok, "{out}\n{err}");
    assert_eq!(
        line(&out, "read"),
        "read\tusers 6\ttransactions 7\ttb_log 6"
    );
    assert!(
        line(&out, "members").starts_with("members\tnew 6\t"),
        "{out}"
    );
    assert!(out.contains("dry run: nothing was written"), "{out}");
    assert_eq!(new.member_count().unwrap(), 0, "the dry run wrote");
    assert_eq!(new.access_event_count().unwrap(), 0);

    // the import
    let (ok, out, err) = zhima(target.url(), &["import", "zhima-legacy", "--from", &from]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(
        line(&out, "members"),
        "members\tnew 6\talready here 0\tto an existing member 0\tleft out 0"
    );
    assert_eq!(
        line(&out, "payments"),
        "payments\tnew 7\talready here 0\tleft out 0"
    );
    assert_eq!(
        line(&out, "log"),
        "log\tentries 3\tnaming no member 1\tother types 2"
    );
    assert_eq!(
        line(&out, "passwords"),
        "passwords\tin clear, now hashed 2\tempty or default (no web login yet) 4"
    );
    // 12.345 was not a whole fen; the FLOAT column kept 199.99000000001 as 199.99
    assert!(
        out.contains("transactions id 7: amount 12.345 was not a whole fen; recorded as 12.35"),
        "{out}"
    );
    // the donation carried Dona's latest valid_until: the one difference
    let expiry: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("expiry\tusers"))
        .collect();
    assert_eq!(expiry.len(), 1, "{out}");
    assert!(
        expiry[0].contains("users id 6: old expiry") && expiry[0].contains("grants no door access"),
        "{}",
        expiry[0]
    );
    assert!(!out.contains("xcj-2016") && !err.contains("xcj-2016"));

    // members keep their numbers and what the old server knew
    let m1 = new
        .member(MemberKey::Id(MemberId(1)))
        .unwrap()
        .unwrap()
        .member;
    assert_eq!(
        (m1.openid.as_str(), m1.nickname.as_str()),
        ("o-xiaoming", "小明")
    );
    assert_eq!(m1.profile.email, "xm@example.com");
    assert_eq!(m1.profile.city, "上海");
    assert_eq!(m1.tags.to_stored(), "MEMBER");
    let fox = new
        .member(MemberKey::Id(MemberId(2)))
        .unwrap()
        .unwrap()
        .member;
    assert_eq!(fox.nickname.as_str(), "🦊 狐狸");
    assert_eq!(fox.profile.email, "", "a NULL email is none");
    assert_eq!(fox.tags.to_stored(), "VISITOR");
    let ada = new
        .member(MemberKey::Id(MemberId(3)))
        .unwrap()
        .unwrap()
        .member;
    assert_eq!(ada.tags.to_stored(), "ADMIN");
    let gone = new
        .member(MemberKey::Id(MemberId(4)))
        .unwrap()
        .unwrap()
        .member;
    assert!(gone.deactivated_at.is_some(), "INVALID is deactivated");

    // passwords: the real ones hashed and working, the others no web login
    let login = new.member_login("小明").unwrap().unwrap();
    assert!(login.password_hash.starts_with("$argon2id$"));
    assert!(credentials::verify_password(
        "xcj-2016",
        &login.password_hash
    ));
    assert!(!login.must_change_password);
    let fox_login = new.member_login(&fox.nickname.key()).unwrap().unwrap();
    assert!(
        fox_login.must_change_password,
        "password123 is no web login"
    );
    let ada_login = new.member_login("ada").unwrap().unwrap();
    assert!(
        ada_login.must_change_password,
        "an empty password is no web login"
    );

    // validity: the old max(valid_until), overlapping periods included
    let v1 = validity(&new, 1);
    assert_eq!(v1.status, MemberStatus::Ok);
    assert_eq!(v1.valid_until, Some(end_of(&day(13))));
    let v5 = validity(&new, 5);
    assert_eq!(
        v5.valid_until,
        Some(end_of(&day(49))),
        "overlap: the later end"
    );
    assert_eq!(validity(&new, 4).status, MemberStatus::Invalid);
    // the fox's entry yesterday spent no day of the pack
    let fox_validity = validity(&new, 2);
    assert_eq!(fox_validity.entry_days_left, Some(10));
    assert_eq!(fox_validity.status, MemberStatus::Ok);
    let record = new.member(MemberKey::Id(MemberId(1))).unwrap().unwrap();
    assert_eq!(record.payments[0].pay_index.as_str(), "legacy-1");
    assert_eq!(record.payments[0].amount.to_string(), "199.99");

    // the log rows naming a member are history, at their instants
    let events = new
        .access_events(EventQuery {
            limit: 50,
            ..EventQuery::default()
        })
        .unwrap();
    assert_eq!(events.len(), 3);
    assert!(events
        .iter()
        .all(|e| e.event.method == AccessMethod::Legacy));
    let first = events
        .iter()
        .find(|e| e.event.member == Some(MemberId(1)))
        .unwrap();
    assert_eq!(first.event.outcome, Outcome::Granted);
    assert_eq!(
        first
            .event
            .at
            .with_timezone(&Shanghai)
            .format("%Y-%m-%d %H:%M")
            .to_string(),
        format!("{} 10:00", day(-1))
    );
    let refused = events
        .iter()
        .find(|e| e.event.member == Some(MemberId(4)))
        .unwrap();
    assert_eq!(refused.event.outcome, Outcome::Refused);
    assert_eq!(
        new.outbox_counts().unwrap().pending,
        0,
        "history imported is not news for webhooks"
    );

    // a second run changes nothing, and says so
    let (ok, out, err) = zhima(target.url(), &["import", "zhima-legacy", "--from", &from]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("everything was already here: nothing changed"),
        "{out}"
    );
    assert!(
        out.contains("tb_log rows up to id 6 were read before"),
        "{out}"
    );
    assert_eq!(
        line(&out, "members"),
        "members\tnew 0\talready here 6\tto an existing member 0\tleft out 0"
    );
    assert_eq!(new.member_count().unwrap(), 6);
    assert_eq!(new.access_event_count().unwrap(), 3);

    // members made later come after the old numbers
    add_member_to(&new, "o-later", "Later", "MEMBER", None);
    let later = new
        .member(MemberKey::OpenId(&OpenId::parse("o-later").unwrap()))
        .unwrap()
        .unwrap();
    assert!(later.member.id.0 > 6, "{:?}", later.member.id);

    // what the old server logged since comes across on the next run
    old.exec(&format!(
        "INSERT INTO tb_log (id, type, code, message, created_on) VALUES
         (7, 'OPEN', 0, 'Welcome Ovid - QR V2', '{} 09:00:00')",
        day(0)
    ));
    // (the server has members of its own by then: --merge)
    let (ok, out, _) = zhima(target.url(), &["import", "zhima-legacy", "--from", &from]);
    assert!(!ok, "{out}");
    let (ok, out, err) = zhima(
        target.url(),
        &["import", "zhima-legacy", "--from", &from, "--merge"],
    );
    assert!(ok, "{out}\n{err}");
    assert_eq!(
        line(&out, "log"),
        "log\tentries 1\tnaming no member 0\tother types 0"
    );
    assert_eq!(new.access_event_count().unwrap(), 4);
}

#[test]
fn a_database_with_other_members_needs_merge_and_conflicts_are_resolved_as_told() {
    let Some(old) = LegacyDb::create("merge") else {
        return;
    };
    fixture(&old);
    let target = TestDatabase::new().unwrap();
    let new = store(&target);
    // member 1 here is someone else; "Ada" here has another openid
    add_member_to(&new, "o-someone", "Someone", "MEMBER", None);
    add_member_to(&new, "o-ada-new", "Ada", "MEMBER", None);
    let from = old.url();

    let (ok, out, _) = zhima(target.url(), &["import", "zhima-legacy", "--from", &from]);
    assert!(!ok, "{out}");
    assert!(out.contains("not from this import"), "{out}");
    let (ok, out, _) = zhima(
        target.url(),
        &["import", "zhima-legacy", "--from", &from, "--merge"],
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("conflict\tusers id 3: nickname Ada is member 2's"),
        "{out}"
    );
    assert_eq!(new.member_count().unwrap(), 2, "a refused import wrote");

    let (ok, out, err) = zhima(
        target.url(),
        &[
            "import",
            "zhima-legacy",
            "--from",
            &from,
            "--merge",
            "--conflicts",
            "existing",
        ],
    );
    assert!(ok, "{out}\n{err}");
    // five new (小明 under a new number, his being taken), Ada's to member 2
    assert_eq!(
        line(&out, "members"),
        "members\tnew 5\talready here 0\tto an existing member 1\tleft out 0"
    );
    assert!(
        out.contains("renumbered\tusers id 1 (小明): number 1"),
        "{out}"
    );
    let xm = new
        .member(MemberKey::OpenId(&OpenId::parse("o-xiaoming").unwrap()))
        .unwrap()
        .unwrap();
    assert!(xm.member.id.0 > 6, "{:?}", xm.member.id);
    assert_eq!(xm.payments.len(), 1);
    let someone = new.member(MemberKey::Id(MemberId(1))).unwrap().unwrap();
    assert_eq!(
        someone.member.openid.as_str(),
        "o-someone",
        "left as it was"
    );
    // 小明's entry went to his new number
    let events = new
        .access_events(EventQuery {
            member: Some(xm.member.id),
            limit: 10,
            ..EventQuery::default()
        })
        .unwrap();
    assert_eq!(events.len(), 1);
}

#[test]
fn a_bad_source_is_refused_clearly_and_a_password_is_never_shown() {
    let target = TestDatabase::new().unwrap();
    let new = store(&target);
    let Some(old) = LegacyDb::create("bad") else {
        return;
    };
    // a wrong password: refused, and never printed
    let wrong = old
        .url()
        .replace("mysql://root@", "mysql://root:s3cret-pw@");
    let (ok, out, err) = zhima(target.url(), &["import", "zhima-legacy", "--from", &wrong]);
    assert!(!ok);
    assert!(
        !out.contains("s3cret-pw") && !err.contains("s3cret-pw"),
        "{err}"
    );
    assert!(err.contains("***"), "{err}");
    // not the old server's database
    old.exec("DROP TABLE tb_log");
    let (ok, _, err) = zhima(
        target.url(),
        &["import", "zhima-legacy", "--from", &old.url()],
    );
    assert!(!ok);
    assert!(err.contains("there is no table tb_log"), "{err}");
    // bad flags
    let (ok, _, err) = zhima(
        target.url(),
        &[
            "import",
            "zhima-legacy",
            "--from",
            &old.url(),
            "--tz",
            "Mars/Olympus",
        ],
    );
    assert!(!ok);
    assert!(err.contains("--tz"), "{err}");
    let (ok, _, err) = zhima(
        target.url(),
        &["import", "zhima-legacy", "--from", "postgres://x"],
    );
    assert!(!ok);
    assert!(err.contains("--from"), "{err}");
    assert_eq!(new.member_count().unwrap(), 0);
}

#[test]
fn rows_that_cannot_be_imported_stop_the_import_and_are_each_named() {
    let Some(old) = LegacyDb::create("refused") else {
        return;
    };
    fixture(&old);
    old.exec(
        "INSERT INTO users (id, openid, username, status, role) VALUES
         (7, 'o-bad-role', 'Bad Role', 'OK', 99)",
    );
    old.exec(
        "INSERT INTO transactions (id, member_id, type, amount) VALUES (8, 404, '1M MEMBERSHIP', 1)",
    );
    let target = TestDatabase::new().unwrap();
    let new = store(&target);
    let (ok, out, err) = zhima(
        target.url(),
        &["import", "zhima-legacy", "--from", &old.url()],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("refused\tusers id 7: role"), "{out}");
    assert!(
        out.contains("refused\ttransactions id 8: member_id 404 is not an imported user"),
        "{out}"
    );
    assert!(err.contains("nothing was imported"), "{err}");
    assert_eq!(new.member_count().unwrap(), 0);
}
