//! systemd's service notifications (`Type=notify`), spoken directly: one
//! datagram to `$NOTIFY_SOCKET` per state. Outside systemd (no
//! `NOTIFY_SOCKET`) every call does nothing.
//!
//! `zhima serve` says `READY=1` once the door is locked, the database
//! migrated and the port bound; `WATCHDOG=1` every half `WATCHDOG_USEC`
//! while the door controller is healthy (a door that cannot be driven to
//! locked stops the pings, and systemd restarts the service, whose
//! `ExecStopPost` locks the door); `STOPPING=1` on SIGTERM.

use std::time::Duration;

/// Sends `state` to systemd; whether it was sent.
pub fn notify(state: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let Ok(socket) = std::os::unix::net::UnixDatagram::unbound() else {
        return false;
    };
    let bytes = path.as_encoded_bytes();
    let sent = match bytes.first() {
        // an abstract socket: "@name"
        Some(b'@') => {
            #[cfg(target_os = "linux")]
            {
                use std::os::linux::net::SocketAddrExt as _;
                std::os::unix::net::SocketAddr::from_abstract_name(&bytes[1..])
                    .and_then(|addr| socket.send_to_addr(state.as_bytes(), &addr))
            }
            #[cfg(not(target_os = "linux"))]
            {
                Err(std::io::Error::other("abstract sockets are Linux only"))
            }
        }
        _ => socket.send_to(state.as_bytes(), &path),
    };
    sent.is_ok()
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, when it is set
/// for this process (`WATCHDOG_PID`, if given, is ours).
pub fn watchdog_interval() -> Option<Duration> {
    if let Some(pid) = std::env::var_os("WATCHDOG_PID") {
        if pid.to_str()?.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}
