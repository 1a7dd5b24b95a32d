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
}
