//! A door in memory: the default driver, and the one every test drives.
//!
//! It records every transition with the instant it happened and can be told
//! to fail: relay writes (all, or only those that unlock), switch reads, or a
//! switch stuck in one position.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use crate::{DoorDriver, DoorError, DoorSwitch, Leds, Relay};

/// How many transitions are kept (the oldest are dropped first).
pub const HISTORY: usize = 100_000;

/// One recorded change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The relay was driven.
    Relay(Relay),
    /// The LEDs were set.
    Leds(Leds),
}

/// A change and when it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// When.
    pub at: Instant,
    /// What.
    pub change: Change,
}

/// Which relay writes fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFault {
    /// Every relay write fails.
    All,
    /// Only writes that would unlock fail (locking works).
    Unlock,
    /// Only writes that would lock fail.
    Lock,
}

#[derive(Debug)]
struct State {
    relay: Relay,
    leds: Leds,
    switch: DoorSwitch,
    stuck_switch: Option<DoorSwitch>,
    write_fault: Option<(WriteFault, u32)>,
    read_fault: u32,
    history: VecDeque<Transition>,
}

/// The simulated door. The relay starts *locked*.
#[derive(Debug)]
pub struct SimulatedDoor {
    state: Mutex<State>,
    now: fn() -> Instant,
}

impl Default for SimulatedDoor {
    fn default() -> SimulatedDoor {
        SimulatedDoor::new()
    }
}

impl SimulatedDoor {
    /// A locked, closed door whose transitions are stamped with the system's
    /// monotonic clock.
    pub fn new() -> SimulatedDoor {
        SimulatedDoor::with_clock(Instant::now)
    }

    /// The same, stamping transitions with `now` (tests on a paused runtime
    /// pass tokio's clock).
    pub fn with_clock(now: fn() -> Instant) -> SimulatedDoor {
        SimulatedDoor {
            state: Mutex::new(State {
                relay: Relay::Locked,
                leds: Leds::default(),
                switch: DoorSwitch::Closed,
                stuck_switch: None,
                write_fault: None,
                read_fault: 0,
                history: VecDeque::new(),
            }),
            now,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        zhima_domain::sync::lock(&self.state)
    }

    /// The relay now.
    pub fn relay(&self) -> Relay {
        self.state().relay
    }

    /// The LEDs now.
    pub fn leds(&self) -> Leds {
        self.state().leds
    }

    /// Every recorded transition, oldest first.
    pub fn transitions(&self) -> Vec<Transition> {
        self.state().history.iter().copied().collect()
    }

    /// The relay transitions only, oldest first.
    pub fn relay_transitions(&self) -> Vec<(Instant, Relay)> {
        self.state()
            .history
            .iter()
            .filter_map(|t| match t.change {
                Change::Relay(r) => Some((t.at, r)),
                Change::Leds(_) => None,
            })
            .collect()
    }

    /// How many times the relay was driven to unlocked.
    pub fn unlock_count(&self) -> usize {
        self.relay_transitions()
            .iter()
            .filter(|(_, r)| *r == Relay::Unlocked)
            .count()
    }

    /// Forgets the recorded transitions.
    pub fn clear_history(&self) {
        self.state().history.clear();
    }

    /// Someone opens or shuts the door.
    pub fn set_switch(&self, switch: DoorSwitch) {
        self.state().switch = switch;
    }

    /// The switch reads `Some(position)` whatever the door does, until `None`.
    pub fn stick_switch(&self, position: Option<DoorSwitch>) {
        self.state().stuck_switch = position;
    }

    /// The next `times` relay writes matching `which` fail (`u32::MAX`: all
    /// of them until [`SimulatedDoor::heal`]). A failed write leaves the relay
    /// as it was.
    pub fn fail_writes(&self, which: WriteFault, times: u32) {
        self.state().write_fault = Some((which, times));
    }

    /// The next `times` switch reads fail.
    pub fn fail_reads(&self, times: u32) {
        self.state().read_fault = times;
    }

    /// Removes every injected fault.
    pub fn heal(&self) {
        let mut s = self.state();
        s.write_fault = None;
        s.read_fault = 0;
        s.stuck_switch = None;
    }

    fn record(&self, s: &mut State, change: Change) {
        if s.history.len() >= HISTORY {
            s.history.pop_front();
        }
        s.history.push_back(Transition {
            at: (self.now)(),
            change,
        });
    }
}

fn fault(reason: &str) -> DoorError {
    DoorError::Driver {
        driver: "simulated",
        reason: reason.into(),
    }
}

impl DoorDriver for SimulatedDoor {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn set_relay(&self, relay: Relay) -> Result<(), DoorError> {
        let mut s = self.state();
        if let Some((which, left)) = s.write_fault {
            let applies = match which {
                WriteFault::All => true,
                WriteFault::Unlock => relay == Relay::Unlocked,
                WriteFault::Lock => relay == Relay::Locked,
            };
            if applies && left > 0 {
                if left != u32::MAX {
                    s.write_fault = Some((which, left - 1));
                }
                return Err(fault("injected relay write failure"));
            }
        }
        s.relay = relay;
        self.record(&mut s, Change::Relay(relay));
        Ok(())
    }

    fn read_switch(&self) -> Result<DoorSwitch, DoorError> {
        let mut s = self.state();
        if s.read_fault > 0 {
            if s.read_fault != u32::MAX {
                s.read_fault -= 1;
            }
            return Err(fault("injected switch read failure"));
        }
        Ok(s.stuck_switch.unwrap_or(s.switch))
    }

    fn set_leds(&self, leds: Leds) -> Result<(), DoorError> {
        let mut s = self.state();
        if s.leds != leds {
            s.leds = leds;
            self.record(&mut s, Change::Leds(leds));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_fails_as_told() {
        let door = SimulatedDoor::new();
        assert_eq!(door.relay(), Relay::Locked);
        door.set_relay(Relay::Unlocked).unwrap();
        door.set_relay(Relay::Locked).unwrap();
        assert_eq!(door.unlock_count(), 1);

        door.fail_writes(WriteFault::Unlock, 1);
        assert!(door.set_relay(Relay::Locked).is_ok());
        assert!(door.set_relay(Relay::Unlocked).is_err());
        assert_eq!(
            door.relay(),
            Relay::Locked,
            "a failed write changes nothing"
        );
        assert!(door.set_relay(Relay::Unlocked).is_ok(), "only one failure");

        door.fail_writes(WriteFault::All, u32::MAX);
        for _ in 0..3 {
            assert!(door.set_relay(Relay::Locked).is_err());
        }
        door.heal();
        assert!(door.set_relay(Relay::Locked).is_ok());

        door.set_switch(DoorSwitch::Open);
        assert_eq!(door.read_switch().unwrap(), DoorSwitch::Open);
        door.stick_switch(Some(DoorSwitch::Closed));
        assert_eq!(door.read_switch().unwrap(), DoorSwitch::Closed);
        door.fail_reads(1);
        assert!(door.read_switch().is_err());
        assert!(door.read_switch().is_ok());
    }
}
