#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod controller;
#[cfg(any(
    feature = "rppal",
    all(target_os = "linux", any(target_arch = "arm", target_arch = "aarch64"))
))]
mod pi;
pub mod simulated;

use std::fmt;
use std::sync::Arc;

pub use controller::{DoorController, DoorEvent, DoorHealth, DoorRules, Opened};
pub use simulated::SimulatedDoor;

/// The state of the lock relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relay {
    /// The strike is not released: the door cannot be pushed open.
    Locked,
    /// The strike is released.
    Unlocked,
}

/// What the door-status switch reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DoorSwitch {
    /// The door is shut.
    Closed,
    /// The door stands open.
    Open,
}

impl fmt::Display for DoorSwitch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DoorSwitch::Closed => "closed",
            DoorSwitch::Open => "open",
        })
    }
}

/// The indicator LEDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Leds {
    /// Green: come in.
    pub green: bool,
    /// Red: locked, or a fault.
    pub red: bool,
}

impl Leds {
    /// What the LEDs show while the door is locked: red.
    pub const LOCKED: Leds = Leds {
        green: false,
        red: true,
    };
    /// What the LEDs show while the door is unlocked: green.
    pub const UNLOCKED: Leds = Leds {
        green: true,
        red: false,
    };
}

/// Why the door hardware failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DoorError {
    /// A write to, or read from, the hardware failed.
    #[error("door driver {driver}: {reason}")]
    Driver {
        /// The driver's name.
        driver: &'static str,
        /// What failed.
        reason: String,
    },
    /// The driver cannot run here (e.g. the rppal driver off a Raspberry Pi,
    /// or a build without it).
    #[error("door driver {driver} is not available: {reason}")]
    NotAvailable {
        /// The driver's name.
        driver: &'static str,
        /// Why.
        reason: String,
    },
    /// The configuration of the door is wrong.
    #[error("door configuration: {0}")]
    Config(String),
    /// The controller stopped (the server is shutting down) before the
    /// unlock finished; the door was locked.
    #[error("the door controller stopped; the door is locked")]
    Stopped,
}

/// The hardware below the door controller. Implementations only move pins;
/// every timing rule (how long, extension, upper bound, held-open) lives in
/// [`DoorController`].
///
/// Every method must be cheap and must not block for long: the controller
/// calls them while holding its lock.
pub trait DoorDriver: Send + Sync + fmt::Debug {
    /// A short name for logs (`simulated`, `rppal`).
    fn name(&self) -> &'static str;
    /// Drives the relay.
    fn set_relay(&self, relay: Relay) -> Result<(), DoorError>;
    /// Reads the door-status switch.
    fn read_switch(&self) -> Result<DoorSwitch, DoorError>;
    /// Sets the indicator LEDs.
    fn set_leds(&self, leds: Leds) -> Result<(), DoorError>;
}

/// Which driver to build, and its pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverConfig {
    /// `simulated` or `rppal`.
    pub kind: DriverKind,
    /// GPIO pins (BCM numbers) and active levels, for `rppal`.
    pub pins: PinConfig,
}

/// The available drivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverKind {
    /// In memory (the default; every machine that is not the door).
    Simulated,
    /// Raspberry Pi GPIO.
    Rppal,
}

/// GPIO wiring, BCM numbering. The defaults are XinCheJian's front door.
/// It is also the `[door.pins]` table of the server's configuration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinConfig {
    /// The relay pin (default 24).
    pub relay: u8,
    /// Whether driving the relay pin high releases the strike (default true).
    pub relay_active_high: bool,
    /// The door-status switch pin, read with the internal pull-up (default 27).
    pub switch: u8,
    /// Whether the switch pin reads low when the door is open (default true).
    pub switch_open_low: bool,
    /// Green LED pins (default 14 and 15).
    #[serde(deserialize_with = "pin_list")]
    pub green: Vec<u8>,
    /// Red LED pins (default 18).
    #[serde(deserialize_with = "pin_list")]
    pub red: Vec<u8>,
}

/// A list of pins: a list, one number, or text such as `"14,15"` (from an
/// environment variable).
fn pin_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    use serde::de::Error as _;
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum List {
        Pins(Vec<u8>),
        One(u8),
        Text(String),
    }
    match <List as serde::Deserialize>::deserialize(d)? {
        List::Pins(pins) => Ok(pins),
        List::One(pin) => Ok(vec![pin]),
        List::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<u8>()
                    .map_err(|_| D::Error::custom(format!("{p:?} is not a pin number")))
            })
            .collect(),
    }
}

impl Default for PinConfig {
    fn default() -> PinConfig {
        PinConfig {
            relay: 24,
            relay_active_high: true,
            switch: 27,
            switch_open_low: true,
            green: vec![14, 15],
            red: vec![18],
        }
    }
}

impl PinConfig {
    /// Every configured pin: relay, switch, green and red LEDs.
    pub fn all(&self) -> Vec<u8> {
        let mut all = vec![self.relay, self.switch];
        all.extend(&self.green);
        all.extend(&self.red);
        all
    }

    /// Refuses a pin used twice or outside BCM 0–27.
    pub fn check(&self) -> Result<(), DoorError> {
        let all = self.all();
        if let Some(p) = all.iter().find(|p| **p > 27) {
            return Err(DoorError::Config(format!(
                "GPIO {p} is not a BCM pin of the Raspberry Pi header (0-27)"
            )));
        }
        let mut sorted = all.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(DoorError::Config(format!("GPIO {} is used twice", w[0])));
        }
        Ok(())
    }
}

/// Builds the configured driver. The relay is driven to *locked* as the
/// driver is created, before this returns.
///
/// The `rppal` driver fails with [`DoorError::NotAvailable`] off a Raspberry
/// Pi or in a build without it: a door server must not run without its lock.
pub fn open_driver(config: &DriverConfig) -> Result<Arc<dyn DoorDriver>, DoorError> {
    match config.kind {
        DriverKind::Simulated => {
            let door = SimulatedDoor::new();
            door.set_relay(Relay::Locked)?;
            Ok(Arc::new(door))
        }
        DriverKind::Rppal => open_rppal(&config.pins),
    }
}

/// Checks that the configured driver could be opened, without claiming or
/// configuring a pin: a running server's door is left as it is (`zhima
/// doctor` runs beside it). Opening the pins would change them: rppal sets
/// a configured pin back to its former mode when the checking process lets
/// it go, under the server's feet.
pub fn probe_driver(config: &DriverConfig) -> Result<(), DoorError> {
    match config.kind {
        DriverKind::Simulated => Ok(()),
        DriverKind::Rppal => probe_rppal(&config.pins),
    }
}

#[cfg(any(
    feature = "rppal",
    all(target_os = "linux", any(target_arch = "arm", target_arch = "aarch64"))
))]
fn open_rppal(pins: &PinConfig) -> Result<Arc<dyn DoorDriver>, DoorError> {
    pins.check()?;
    Ok(Arc::new(pi::PiDoor::open(pins)?))
}

#[cfg(any(
    feature = "rppal",
    all(target_os = "linux", any(target_arch = "arm", target_arch = "aarch64"))
))]
fn probe_rppal(pins: &PinConfig) -> Result<(), DoorError> {
    pins.check()?;
    pi::probe(pins)
}

#[cfg(not(any(
    feature = "rppal",
    all(target_os = "linux", any(target_arch = "arm", target_arch = "aarch64"))
)))]
fn open_rppal(pins: &PinConfig) -> Result<Arc<dyn DoorDriver>, DoorError> {
    pins.check()?;
    Err(no_gpio_support())
}

#[cfg(not(any(
    feature = "rppal",
    all(target_os = "linux", any(target_arch = "arm", target_arch = "aarch64"))
)))]
fn probe_rppal(pins: &PinConfig) -> Result<(), DoorError> {
    pins.check()?;
    Err(no_gpio_support())
}

#[cfg(not(any(
    feature = "rppal",
    all(target_os = "linux", any(target_arch = "arm", target_arch = "aarch64"))
)))]
fn no_gpio_support() -> DoorError {
    DoorError::NotAvailable {
        driver: "rppal",
        reason:
            "this build has no GPIO support (build on a Raspberry Pi, or with --features rppal)"
                .into(),
    }
}

/// Drives the relay to *locked* when dropped, including while a panic
/// unwinds. Hold one for as long as a door may be unlocked.
#[derive(Debug)]
pub struct LockOnDrop(pub Arc<dyn DoorDriver>);

impl Drop for LockOnDrop {
    fn drop(&mut self) {
        if let Err(e) = self.0.set_relay(Relay::Locked) {
            tracing::error!(error = %e, "could not lock the door while stopping");
        }
    }
}

/// Installs a panic hook that locks the door on a panic in any thread (and
/// then runs the hook that was there before).
pub fn lock_on_panic(driver: Arc<dyn DoorDriver>) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = driver.set_relay(Relay::Locked);
        previous(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_config_refuses_reuse_and_out_of_range() {
        assert!(PinConfig::default().check().is_ok());
        let twice = PinConfig {
            switch: 24,
            ..PinConfig::default()
        };
        assert!(matches!(twice.check(), Err(DoorError::Config(m)) if m.contains("24")));
        let high = PinConfig {
            red: vec![40],
            ..PinConfig::default()
        };
        assert!(matches!(high.check(), Err(DoorError::Config(m)) if m.contains("40")));
    }

    #[test]
    fn the_simulated_driver_starts_locked() {
        let cfg = DriverConfig {
            kind: DriverKind::Simulated,
            pins: PinConfig::default(),
        };
        let driver = open_driver(&cfg).unwrap();
        assert_eq!(driver.name(), "simulated");
    }

    #[cfg(not(any(
        feature = "rppal",
        all(target_os = "linux", any(target_arch = "arm", target_arch = "aarch64"))
    )))]
    #[test]
    fn a_build_without_gpio_refuses_the_rppal_driver() {
        let cfg = DriverConfig {
            kind: DriverKind::Rppal,
            pins: PinConfig::default(),
        };
        assert!(matches!(
            open_driver(&cfg),
            Err(DoorError::NotAvailable {
                driver: "rppal",
                ..
            })
        ));
        assert!(matches!(
            probe_driver(&cfg),
            Err(DoorError::NotAvailable {
                driver: "rppal",
                ..
            })
        ));
    }

    #[cfg(all(
        feature = "rppal",
        not(any(target_arch = "arm", target_arch = "aarch64"))
    ))]
    #[test]
    fn off_a_pi_the_rppal_driver_refuses_to_start() {
        let cfg = DriverConfig {
            kind: DriverKind::Rppal,
            pins: PinConfig::default(),
        };
        let err = open_driver(&cfg).unwrap_err();
        assert!(
            matches!(&err, DoorError::NotAvailable { driver: "rppal", reason } if reason.contains("not a Raspberry Pi")),
            "{err}"
        );
        let err = probe_driver(&cfg).unwrap_err();
        assert!(
            matches!(&err, DoorError::NotAvailable { driver: "rppal", reason } if reason.contains("not a Raspberry Pi")),
            "{err}"
        );
    }

    #[test]
    fn the_probe_refuses_a_bad_pin_configuration_before_any_hardware() {
        let cfg = DriverConfig {
            kind: DriverKind::Rppal,
            pins: PinConfig {
                green: vec![24],
                ..PinConfig::default()
            },
        };
        assert!(matches!(probe_driver(&cfg), Err(DoorError::Config(m)) if m.contains("24")));
        let simulated = DriverConfig {
            kind: DriverKind::Simulated,
            pins: PinConfig::default(),
        };
        assert!(probe_driver(&simulated).is_ok());
    }

    #[test]
    fn lock_on_drop_locks_while_a_panic_unwinds() {
        let door = Arc::new(SimulatedDoor::new());
        door.set_relay(Relay::Unlocked).unwrap();
        let d: Arc<dyn DoorDriver> = door.clone();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = LockOnDrop(d);
            panic!("a handler failed");
        }));
        assert!(result.is_err());
        assert_eq!(door.relay(), Relay::Locked);
    }
}
