//! The CLI's changes are in the audit log, named after the operator who ran
//! them, and a password never is.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

use std::process::Command;

use zhima_storage::testing::TestDatabase;
use zhima_storage::{Store, StoreOptions};

use crate::support::process::ZHIMA;

/// Runs `zhima ARGS` as the operator `user`; its standard output.
fn cli_as(url: &str, user: &str, args: &[&str]) -> String {
    let out = Command::new(ZHIMA)
        .args(args)
        .env("ZHIMA_DATABASE__URL", url)
        .env("USER", user)
        .env_remove("SUDO_USER")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`zhima {}`: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_cli_change_is_audited_under_the_operators_name() {
    let db = TestDatabase::new().unwrap();
    let store = Store::open(db.url(), &StoreOptions::default()).unwrap();
    store.migrate().unwrap();
    crate::support::add_member_to(&store, "cli-m", "Cli Member", "MEMBER", None);

    let url = db.url();
    cli_as(
        url,
        "mei",
        &[
            "api-key",
            "create",
            "--name",
            "kiosk",
            "--scopes",
            "door:open",
        ],
    );
    cli_as(url, "mei", &["api-key", "revoke", "kiosk"]);
    cli_as(
        url,
        "mei",
        &[
            "member",
            "set-password",
            "--openid",
            "cli-m",
            "--password",
            "secret-words-2026",
        ],
    );
    cli_as(url, "mei", &["member", "deactivate", "--openid", "cli-m"]);
    cli_as(
        url,
        "mei",
        &[
            "tokens", "grant", "--openid", "cli-m", "--free", "5", "--reason", "thanks",
        ],
    );
    // reading changes nothing and records nothing
    cli_as(url, "mei", &["api-key", "list"]);

    let log = store.audit_log(None, 50).unwrap();
    let actions: Vec<&str> = log.iter().rev().map(|e| e.note.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "api_key.create",
            "api_key.revoke",
            "member.set_password",
            "member.deactivate",
            "tokens.grant"
        ],
        "{log:?}"
    );
    for entry in &log {
        assert_eq!(entry.note.actor, "cli:mei", "{entry:?}");
        assert_eq!(entry.note.actor_id, None);
        assert!(
            !format!("{entry:?}").contains("secret-words-2026"),
            "a password reached the audit log: {entry:?}"
        );
    }
    let deactivation = log
        .iter()
        .find(|e| e.note.action == "member.deactivate")
        .unwrap();
    assert_eq!(
        (
            deactivation.note.before.as_str(),
            deactivation.note.after.as_str()
        ),
        ("active", "deactivated")
    );
}
