//! Export and CSV import with the real binary: a round trip into an empty
//! database gives the same members, payments and validity; a second import
//! changes nothing; a bad header or bad rows are refused loudly and write
//! nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

use chrono::{Duration, Utc};
use zhima_domain::ids::{OpenId, PayIndex, Rfid};
use zhima_domain::member::{MemberChange, NewPayment, UpdatableField};
use zhima_domain::money::Fen;
use zhima_storage::testing::TestDatabase;
use zhima_storage::{MemberKey, Store, StoreOptions};

use crate::support::add_member_to;

fn db() -> (TestDatabase, Store) {
    let db = TestDatabase::new().unwrap();
    let store = Store::open(db.url(), &StoreOptions::default()).unwrap();
    store.migrate().unwrap();
    (db, store)
}

/// `zhima ARGS` on `url`: exit success, stdout, stderr.
fn zhima(url: &str, args: &[&str]) -> (bool, String, String) {
    crate::support::process::try_cli(url, args)
}

fn pay(store: &Store, openid: &str, index: &str, plan: &str, yuan: &str, days_ago: i64) {
    store
        .add_payment(
            &OpenId::parse(openid).unwrap(),
            &NewPayment {
                pay_index: PayIndex::parse(index).unwrap(),
                amount: Fen::parse_yuan(yuan).unwrap(),
                pay_type: plan.into(),
                paid_at: Utc::now() - Duration::days(days_ago),
                until_days: None,
                span: None,
            },
            Utc::now(),
        )
        .unwrap();
}

/// Rows of a CSV export without its first column (the member number).
fn without_ids(csv: &str) -> Vec<String> {
    csv.lines()
        .map(|l| l.split_once(',').map_or(l, |(_, rest)| rest).to_owned())
        .collect()
}

#[test]
fn an_export_imports_into_an_empty_database_as_the_same_members() {
    let (a_db, a) = db();
    add_member_to(&a, "zh-1", "小明 🚪", "MEMBER", None);
    add_member_to(&a, "staff-1", "=1+1 desk", "MEMBER,STAFF", None);
    add_member_to(&a, "plain-1", "Plain, \"quoted\"", "VISITOR", None);
    a.update_member(
        &OpenId::parse("staff-1").unwrap(),
        &[
            MemberChange::text(UpdatableField::Email, "desk@example.org").unwrap(),
            MemberChange::Rfid(Some(Rfid::parse("CAFE01").unwrap())),
            MemberChange::text(UpdatableField::City, "上海").unwrap(),
            MemberChange::Reminders(false),
        ],
        Utc::now(),
    )
    .unwrap();
    pay(&a, "zh-1", "p-1", "1M MEMBERSHIP", "200", 40);
    pay(&a, "zh-1", "p-2", "1M MEMBERSHIP", "199.99", 10);
    pay(&a, "staff-1", "p-3", "10 ENTRIES", "350", 3);
    pay(&a, "plain-1", "p-4", "DONATION", "8.88", 1);
    // a payment with the span the old server gave it, taken as it is
    let span = (
        Utc::now() - Duration::days(100),
        Utc::now() + Duration::days(77),
    );
    a.add_payment(
        &OpenId::parse("plain-1").unwrap(),
        &NewPayment {
            pay_index: PayIndex::parse("legacy-5").unwrap(),
            amount: Fen::parse_yuan("1000").unwrap(),
            pay_type: "6M MEMBERSHIP".into(),
            paid_at: Utc::now() - Duration::days(101),
            until_days: None,
            span: Some(span),
        },
        Utc::now(),
    )
    .unwrap();

    let (ok, members, err) = zhima(a_db.url(), &["export", "members"]);
    assert!(ok, "{err}");
    assert!(members.starts_with('\u{feff}'), "no byte-order mark");
    assert!(
        members.contains("'=1+1 desk"),
        "a formula reached the sheet: {members}"
    );
    let (ok, payments, err) = zhima(a_db.url(), &["export", "payments"]);
    assert!(ok, "{err}");
    assert_eq!(payments.lines().count(), 6, "{payments}");

    let dir = std::env::temp_dir().join(format!("zhima-transfer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (m_file, p_file) = (dir.join("members.csv"), dir.join("payments.csv"));
    std::fs::write(&m_file, &members).unwrap();
    std::fs::write(&p_file, &payments).unwrap();
    let (m_path, p_path) = (m_file.to_str().unwrap(), p_file.to_str().unwrap());

    let (b_db, b) = db();
    // a dry run writes nothing
    let (ok, out, err) = zhima(
        b_db.url(),
        &[
            "import",
            "csv",
            "--members",
            m_path,
            "--payments",
            p_path,
            "--dry-run",
        ],
    );
    assert!(ok, "{out}{err}");
    assert_eq!(b.member_count().unwrap(), 0);
    let (ok, out, err) = zhima(
        b_db.url(),
        &["import", "csv", "--members", m_path, "--payments", p_path],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("imported 3 members and 5 payments"), "{out}");

    // the same members, payments and validity
    let (ok, again, _) = zhima(b_db.url(), &["export", "members"]);
    assert!(ok);
    assert_eq!(without_ids(&again), without_ids(&members));
    let (_, again, _) = zhima(b_db.url(), &["export", "payments"]);
    let cut = |csv: &str| -> Vec<String> {
        // recordedTimeUtc (the 8th column) is when the import wrote the row
        csv.lines()
            .map(|l| {
                let mut cells: Vec<&str> = l.split(',').collect();
                cells.remove(7);
                cells.join(",")
            })
            .collect()
    };
    assert_eq!(cut(&again), cut(&payments));
    let plain = b
        .member(MemberKey::OpenId(&OpenId::parse("plain-1").unwrap()))
        .unwrap()
        .unwrap();
    let legacy = plain
        .payments
        .iter()
        .find(|p| p.pay_index.as_str() == "legacy-5")
        .unwrap();
    assert_eq!(
        legacy.span.map(|(f, u)| (f.timestamp(), u.timestamp())),
        Some((span.0.timestamp(), span.1.timestamp())),
        "the span came across"
    );
    let staff = b
        .member(MemberKey::OpenId(&OpenId::parse("staff-1").unwrap()))
        .unwrap()
        .unwrap();
    assert_eq!(staff.member.nickname.as_str(), "=1+1 desk");
    assert!(!staff.member.profile.reminders);
    assert!(
        staff.member.must_change_password,
        "an imported member has no web login yet"
    );

    // a second run changes nothing and says so
    let (ok, out, err) = zhima(
        b_db.url(),
        &["import", "csv", "--members", m_path, "--payments", p_path],
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("3 members already here") && out.contains("imported 0 members and 0 payments"),
        "{out}"
    );
    assert_eq!(b.member_count().unwrap(), 3);

    // JSON lines, entries and the ledger export too
    let (ok, json, _) = zhima(a_db.url(), &["export", "payments", "--format", "json"]);
    assert!(ok);
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["payIndex"], "p-1");
    let (ok, _, err) = zhima(a_db.url(), &["export", "entries", "--since", "2026-01-01"]);
    assert!(ok, "{err}");
    let (ok, _, err) = zhima(a_db.url(), &["export", "nothing"]);
    assert!(
        !ok && err.contains("members, payments, entries or tokens"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_header_or_bad_rows_are_refused_and_nothing_is_written() {
    let (db, store) = db();
    let dir = std::env::temp_dir().join(format!("zhima-bad-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    // a header that is not the documented one: refused loudly
    let wrong = write("wrong.csv", "open_id,name\nx,y\n");
    let (ok, out, err) = zhima(db.url(), &["import", "csv", "--members", &wrong]);
    assert!(!ok, "{out}");
    assert!(err.contains("header") && err.contains("open_id"), "{err}");

    // semicolons and a byte-order mark are fine; bad rows are each named
    let members = write(
        "members.csv",
        "\u{feff}openid;nickName;email;tags\ngood-1;Good;good@example.org;MEMBER\n;No Openid;;\nbad-2;Bad;not-an-email;\ngood-1;Twice;;\nbad-3;Tagged;;KING\n",
    );
    let payments = write(
        "payments.csv",
        "openid,payIndex,payType,amount,paidTime,untilDays,paidTimeUtc,recordedTimeUtc,spanFromUtc,spanUntilUtc\ngood-1,i-1,1M MEMBERSHIP,200,2026-01-05 10:00\ngood-1,i-2,NO PLAN,200,2026-01-05 10:00\ngood-1,i-3,1M MEMBERSHIP,abc,2026-01-05 10:00\nnobody,i-4,1M MEMBERSHIP,200,2026-01-05 10:00\ngood-1,i-5,1M MEMBERSHIP,200,yesterday\ngood-1,i-6,DONATION,5,2026-01-05 10:00,30\ngood-1,i-7,1M MEMBERSHIP,200,2026-01-05 10:00,,,,2026-01-05T00:00:00Z,\n",
    );
    let (ok, out, _) = zhima(
        db.url(),
        &[
            "import",
            "csv",
            "--members",
            &members,
            "--payments",
            &payments,
        ],
    );
    assert!(!ok, "{out}");
    for expected in [
        "members:3: openid",
        "members:4: email",
        "members:5: openid good-1 is in the file twice",
        "members:6: tags",
        "payments:3: payType",
        "payments:4: amount",
        "payments:5: no member with openid nobody",
        "payments:6: paidTime",
        "payments:7: untilDays",
        "payments:8: spanFromUtc and spanUntilUtc: give both or neither",
    ] {
        assert!(out.contains(expected), "{expected:?} not reported:\n{out}");
    }
    assert_eq!(
        store.member_count().unwrap(),
        0,
        "a refused import wrote something"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
