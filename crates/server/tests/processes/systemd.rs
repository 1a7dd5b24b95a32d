//! `zhima serve` under systemd's `Type=notify` with a watchdog, with a
//! socket standing in for systemd: `READY=1` comes once the server answers,
//! `WATCHDOG=1` keeps coming while it runs, `STOPPING=1` on SIGTERM. The
//! unit in `packaging/zhima.service` passes `systemd-analyze verify`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::support::process::{free_port, serve, ZHIMA};

/// The next message on `socket` within `wait`.
fn next(socket: &UnixDatagram, wait: Duration) -> Option<String> {
    socket.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn the_server_tells_systemd_it_is_ready_pings_the_watchdog_and_says_when_it_stops() {
    let db = zhima_storage::testing::TestDatabase::new().unwrap();
    let dir = std::env::temp_dir().join(format!("zhima-notify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let port = free_port();
    let started = Instant::now();
    let mut server = serve(
        db.url(),
        port,
        &[
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let ready = next(&socket, Duration::from_secs(20)).expect("no READY=1 within 20 s");
    assert!(ready.starts_with("READY=1"), "{ready:?}");
    // ready means answering
    let answer = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(answer.is_ok(), "READY=1 before the port answers");
    let mut pings = 0;
    while pings < 3 {
        let message = next(&socket, Duration::from_secs(2)).expect("the watchdog pings stopped");
        assert_eq!(message, "WATCHDOG=1");
        pings += 1;
    }
    assert!(started.elapsed() < Duration::from_secs(25));
    let pid = server.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut stopping = false;
    while let Some(message) = next(&socket, Duration::from_secs(5)) {
        if message == "STOPPING=1" {
            stopping = true;
            break;
        }
        assert_eq!(message, "WATCHDOG=1", "unexpected {message:?}");
    }
    assert!(stopping, "no STOPPING=1 after SIGTERM");
    let status = server.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_unit_file_passes_systemd_analyze_verify() {
    let Ok(found) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        eprintln!("skipped: no systemd-analyze");
        return;
    };
    assert!(found.status.success());
    let unit =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/zhima.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "ExecStopPost=/usr/bin/zhima --config /etc/zhima/zhima.toml door lock",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "ReadWritePaths=/var/lib/zhima",
        "CapabilityBoundingSet=\n",
        "LimitNOFILE=",
        "DevicePolicy=closed",
    ] {
        assert!(text.contains(line), "the unit lacks {line:?}");
    }
    // a group named there that the machine lacks (gpio off a Pi) stops the
    // service from starting: the package puts the user in the groups instead
    assert!(
        !text.contains("\nSupplementaryGroups="),
        "the unit names supplementary groups"
    );
    // verify wants the programs it names to exist: this build's binary
    let dir = std::env::temp_dir().join(format!("zhima-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("zhima.service");
    std::fs::write(&copy, text.replace("/usr/bin/zhima", ZHIMA)).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}
