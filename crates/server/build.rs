//! Names the commit the binary was built from (`zhima --version`):
//! `SOURCE_COMMIT` when set (a build from a source archive), or `git
//! rev-parse` on the checkout, or `unknown`. (Not a `ZHIMA_` name: cargo
//! hands a build script's variables to the tests it runs, and the server
//! reads every `ZHIMA_` variable as configuration.)

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_COMMIT");
    // a new commit moves HEAD or the branch it points to
    for path in [
        "../../.git/HEAD",
        "../../.git/refs/heads",
        "../../.git/packed-refs",
    ] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let commit = std::env::var("SOURCE_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            let text = String::from_utf8(out.stdout).ok()?;
            out.status.success().then(|| text.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=BUILT_FROM_COMMIT={commit}");
    // when this build script last ran: `zhima doctor` calls a clock before
    // it implausible (SOURCE_DATE_EPOCH for a reproducible build)
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let built_at = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs())
        })
        .unwrap_or(0);
    println!("cargo:rustc-env=BUILT_AT={built_at}");
}
