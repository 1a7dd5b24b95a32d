//! Shared by the benches: percentiles, and the real binary as a child
//! process (the same helpers the tests use).
#![allow(dead_code)] // each bench uses a part of it

use std::time::Duration;

#[path = "../../tests/support/oauth.rs"]
pub mod oauth;
#[path = "../../tests/support/process.rs"]
pub mod process;

/// The value at fraction `p` of a sorted sample (nearest rank).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// What a load-generating bench adds to `process::serve`'s environment:
/// every scan checked (no replay window) and no door-scan rate limit.
pub const OPEN_DOOR_LIMITS: [(&str, &str); 3] = [
    ("ZHIMA_QR__REPLAY_WINDOW_SECS", "0"),
    ("ZHIMA_DOOR__SCAN_PER_SEC", "1000000"),
    ("ZHIMA_DOOR__SCAN_BURST", "1000000"),
];
