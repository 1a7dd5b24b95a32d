//! The door controller: every timing rule of the door, over any driver.
//!
//! - The relay is driven to *locked* when the controller is created, when an
//!   unlock ends, on every driver error, on [`DoorController::shutdown`], and
//!   when the last handle is dropped.
//! - One unlock at a time: a request while the door is unlocked extends the
//!   unlock to the later of the two end times; it never stacks and never
//!   shortens.
//! - No unlock lasts longer than [`DoorRules::max_unlock`] from the request
//!   that asked for it, whatever the caller asks.
//! - A door switch that still reads *open* [`DoorRules::held_open_after`]
//!   after the door locked raises [`DoorEvent::HeldOpen`], once per episode.
//!
//! The rules are synchronous methods that take the current instant as a
//! parameter ([`DoorController::request_unlock`], [`DoorController::tick`]),
//! so they are tested with instants the test chooses. [`DoorController::start`]
//! adds the timer task that calls `tick` on tokio's clock.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{watch, Notify};
use zhima_domain::time::Clock;

use crate::{DoorDriver, DoorError, DoorSwitch, Leds, Relay};

/// The timing rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoorRules {
    /// The longest any single request may keep the door unlocked (default 30 s).
    pub max_unlock: Duration,
    /// How long after locking an open door is reported as held open (default 60 s).
    pub held_open_after: Duration,
    /// How often the door switch is read, and a failed lock retried (default 500 ms).
    pub poll_every: Duration,
}

impl Default for DoorRules {
    fn default() -> DoorRules {
        DoorRules {
            max_unlock: Duration::from_secs(30),
            held_open_after: Duration::from_secs(60),
            poll_every: Duration::from_millis(500),
        }
    }
}

/// A finished unlock, as the requester sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// When the relay released (for a request that extended an unlock in
    /// progress: when that unlock began).
    pub unlocked_at: DateTime<Utc>,
    /// When the relay locked again.
    pub locked_at: DateTime<Utc>,
    /// Whether this request extended an unlock already in progress.
    pub extended: bool,
}

/// Something the door did on its own, for the access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DoorEvent {
    /// The switch still reads open this long after the door locked.
    HeldOpen {
        /// When it was noticed.
        at: DateTime<Utc>,
        /// Time since the door locked.
        after_lock: Duration,
    },
    /// The driver failed; the door was driven to locked.
    Fault {
        /// When.
        at: DateTime<Utc>,
        /// What the controller was doing (`unlocking`, `locking`, `reading the switch`).
        during: &'static str,
        /// The error.
        error: DoorError,
    },
}

impl DoorEvent {
    /// A short code for the access log (`door_held_open`, `door_fault`).
    pub fn reason(&self) -> &'static str {
        match self {
            DoorEvent::HeldOpen { .. } => "door_held_open",
            DoorEvent::Fault { .. } => "door_fault",
        }
    }

    /// When it happened.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            DoorEvent::HeldOpen { at, .. } | DoorEvent::Fault { at, .. } => *at,
        }
    }

    /// One line for people.
    pub fn detail(&self) -> String {
        match self {
            DoorEvent::HeldOpen { after_lock, .. } => {
                format!("door open {} s after it locked", after_lock.as_secs())
            }
            DoorEvent::Fault { during, error, .. } => format!("{during}: {error}"),
        }
    }
}

/// Where door events go. Called without the controller's lock held; must
/// not block (hand the event to a task or a channel).
pub type EventSink = Arc<dyn Fn(DoorEvent) + Send + Sync>;

type Outcome = Option<Result<DateTime<Utc>, DoorError>>;

/// One unlock, from the relay releasing to the relay locking; every request
/// that joins it waits for the same end.
#[derive(Debug)]
struct Session {
    unlocked_at: DateTime<Utc>,
    done: watch::Sender<Outcome>,
}

#[derive(Debug)]
enum Phase {
    Locked {
        since: Instant,
    },
    Unlocked {
        until: Instant,
        session: Arc<Session>,
    },
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// The last lock command failed; it is retried at every tick and no
    /// unlock is granted until it succeeds.
    lock_failing: bool,
    switch_failing: bool,
    held_open_reported: bool,
    stopped: bool,
}

struct Shared {
    driver: Arc<dyn DoorDriver>,
    rules: DoorRules,
    clock: Arc<dyn Clock>,
    sink: EventSink,
    state: Mutex<State>,
    wake: Arc<Notify>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Err(e) = self.driver.set_relay(Relay::Locked) {
            tracing::error!(error = %e, "could not lock the door as its controller stopped");
        }
    }
}

/// A request accepted by [`DoorController::request_unlock`].
#[derive(Debug)]
pub struct Grant {
    session: Arc<Session>,
    /// When this request's unlock ends (the session may last longer).
    pub until: Instant,
    /// Whether the request joined an unlock already in progress.
    pub extended: bool,
}

/// The door controller. Cheap to clone; all clones drive the same door.
#[derive(Clone)]
pub struct DoorController {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for DoorController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DoorController")
            .field("driver", &self.shared.driver.name())
            .field("rules", &self.shared.rules)
            .finish_non_exhaustive()
    }
}

/// What [`DoorController::health`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoorHealth {
    /// The last attempt to drive the relay to locked failed.
    pub lock_failing: bool,
    /// The door switch could not be read at the last check.
    pub switch_failing: bool,
    /// The controller has shut down (the server is stopping).
    pub stopped: bool,
}

impl DoorHealth {
    /// The door can be trusted to lock: no lock failure, not stopped. A
    /// failing switch is reported but does not make the door unsafe.
    pub fn ready(&self) -> bool {
        !self.lock_failing && !self.stopped
    }
}

/// tokio's clock as a std instant (virtual on a paused test runtime).
fn tokio_now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl DoorController {
    /// A controller without its timer task (tests drive [`DoorController::tick`]
    /// themselves). Drives the relay to locked first; fails if it cannot.
    pub fn new(
        driver: Arc<dyn DoorDriver>,
        rules: DoorRules,
        clock: Arc<dyn Clock>,
        sink: EventSink,
        now: Instant,
    ) -> Result<DoorController, DoorError> {
        driver.set_relay(Relay::Locked)?;
        driver.set_leds(Leds::LOCKED)?;
        Ok(DoorController {
            shared: Arc::new(Shared {
                driver,
                rules,
                clock,
                sink,
                state: Mutex::new(State {
                    phase: Phase::Locked { since: now },
                    lock_failing: false,
                    switch_failing: false,
                    held_open_reported: false,
                    stopped: false,
                }),
                wake: Arc::new(Notify::new()),
            }),
        })
    }

    /// A controller with its timer task on the current tokio runtime.
    pub fn start(
        driver: Arc<dyn DoorDriver>,
        rules: DoorRules,
        clock: Arc<dyn Clock>,
        sink: EventSink,
    ) -> Result<DoorController, DoorError> {
        let controller = DoorController::new(driver, rules, clock, sink, tokio_now())?;
        let weak = Arc::downgrade(&controller.shared);
        let wake = controller.shared.wake.clone();
        tokio::spawn(timer(weak, wake));
        Ok(controller)
    }

    /// The rules in force.
    pub fn rules(&self) -> DoorRules {
        self.shared.rules
    }

    /// The driver's name.
    pub fn driver_name(&self) -> &'static str {
        self.shared.driver.name()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        zhima_domain::sync::lock(&self.shared.state)
    }

    fn emit(&self, events: Vec<DoorEvent>) {
        for event in events {
            match &event {
                DoorEvent::Fault { error, during, .. } => {
                    tracing::error!(error = %error, during, "door fault; door driven to locked");
                }
                DoorEvent::HeldOpen { after_lock, .. } => {
                    tracing::warn!(
                        after_lock_secs = after_lock.as_secs(),
                        "door_held_open: the door is still open after it locked"
                    );
                }
            }
            (self.shared.sink)(event);
        }
    }

    /// The door's health for readiness checks: whether the last attempt to
    /// lock failed, whether the switch could not be read, and whether the
    /// controller has shut down.
    pub fn health(&self) -> DoorHealth {
        let st = self.state();
        DoorHealth {
            lock_failing: st.lock_failing,
            switch_failing: st.switch_failing,
            stopped: st.stopped,
        }
    }

    /// Whether the door is unlocked now.
    pub fn is_unlocked(&self) -> bool {
        matches!(self.state().phase, Phase::Unlocked { .. })
    }

    /// Accepts an unlock of `want` (at most [`DoorRules::max_unlock`]) at
    /// `now`: releases the relay if the door is locked, or extends the unlock
    /// in progress to the later end. On a driver error the door is driven to
    /// locked and the error returned.
    pub fn request_unlock(&self, want: Duration, now: Instant) -> Result<Grant, DoorError> {
        let want = want.min(self.shared.rules.max_unlock);
        let until = now + want;
        let mut events = Vec::new();
        let result = {
            let mut st = self.state();
            self.unlock_locked(&mut st, until, now, &mut events)
        };
        self.emit(events);
        if result.is_ok() {
            self.shared.wake.notify_one();
        }
        result
    }

    fn unlock_locked(
        &self,
        st: &mut State,
        until: Instant,
        now: Instant,
        events: &mut Vec<DoorEvent>,
    ) -> Result<Grant, DoorError> {
        if st.stopped {
            return Err(DoorError::Stopped);
        }
        if st.lock_failing {
            return Err(DoorError::Driver {
                driver: self.shared.driver.name(),
                reason: "the door could not be locked last time; no unlock until it locks".into(),
            });
        }
        if let Phase::Unlocked {
            until: current,
            session,
        } = &mut st.phase
        {
            *current = (*current).max(until);
            return Ok(Grant {
                session: session.clone(),
                until,
                extended: true,
            });
        }
        let driver = &self.shared.driver;
        let released = driver
            .set_relay(Relay::Unlocked)
            .and_then(|()| driver.set_leds(Leds::UNLOCKED));
        if let Err(error) = released {
            events.push(DoorEvent::Fault {
                at: self.shared.clock.now(),
                during: "unlocking",
                error: error.clone(),
            });
            self.lock_now_locked(st, now, events);
            return Err(error);
        }
        let (done, _) = watch::channel(None);
        let session = Arc::new(Session {
            unlocked_at: self.shared.clock.now(),
            done,
        });
        st.phase = Phase::Unlocked {
            until,
            session: session.clone(),
        };
        st.held_open_reported = false;
        Ok(Grant {
            session,
            until,
            extended: false,
        })
    }

    /// Drives the relay to locked and ends the session in progress, if any.
    fn lock_now_locked(&self, st: &mut State, now: Instant, events: &mut Vec<DoorEvent>) {
        let previous = std::mem::replace(&mut st.phase, Phase::Locked { since: now });
        let session = match previous {
            Phase::Unlocked { session, .. } => Some(session),
            Phase::Locked { since } => {
                // already locked: keep the time it locked, for held-open
                st.phase = Phase::Locked { since };
                None
            }
        };
        match self.shared.driver.set_relay(Relay::Locked) {
            Ok(()) => {
                st.lock_failing = false;
                let _ = self.shared.driver.set_leds(Leds::LOCKED);
                if let Some(s) = session {
                    s.done.send_replace(Some(Ok(self.shared.clock.now())));
                }
            }
            Err(error) => {
                if !st.lock_failing {
                    events.push(DoorEvent::Fault {
                        at: self.shared.clock.now(),
                        during: "locking",
                        error: error.clone(),
                    });
                }
                st.lock_failing = true;
                let _ = self.shared.driver.set_leds(Leds::LOCKED);
                if let Some(s) = session {
                    s.done.send_replace(Some(Err(error)));
                }
            }
        }
    }

    /// Locks the door now, ending any unlock in progress (its requesters get
    /// their answer now).
    pub fn lock_now(&self, now: Instant) -> Result<(), DoorError> {
        let mut events = Vec::new();
        let failing = {
            let mut st = self.state();
            self.lock_now_locked(&mut st, now, &mut events);
            st.lock_failing
        };
        self.emit(events);
        if failing {
            Err(DoorError::Driver {
                driver: self.shared.driver.name(),
                reason: "the door could not be locked".into(),
            })
        } else {
            Ok(())
        }
    }

    /// Locks the door and refuses every later unlock (server shutdown).
    pub fn shutdown(&self) -> Result<(), DoorError> {
        self.state().stopped = true;
        let result = self.lock_now(tokio_now());
        self.shared.wake.notify_one();
        result
    }

    /// Applies the rules at `now`: locks when the unlock has ended, retries a
    /// failed lock, reads the door switch. Returns when to call it next.
    pub fn tick(&self, now: Instant) -> Instant {
        let rules = self.shared.rules;
        let mut events = Vec::new();
        let next = {
            let mut st = self.state();
            let due = matches!(st.phase, Phase::Unlocked { until, .. } if now >= until);
            if due || st.lock_failing {
                self.lock_now_locked(&mut st, now, &mut events);
            }
            match self.shared.driver.read_switch() {
                Ok(switch) => {
                    st.switch_failing = false;
                    self.observe_switch(&mut st, switch, now, &mut events);
                }
                Err(error) => {
                    if !st.switch_failing {
                        events.push(DoorEvent::Fault {
                            at: self.shared.clock.now(),
                            during: "reading the switch",
                            error,
                        });
                    }
                    st.switch_failing = true;
                    if matches!(st.phase, Phase::Unlocked { .. }) {
                        self.lock_now_locked(&mut st, now, &mut events);
                    }
                }
            }
            let poll = now + rules.poll_every;
            match &st.phase {
                Phase::Unlocked { until, .. } => (*until).min(poll),
                Phase::Locked { .. } => poll,
            }
        };
        self.emit(events);
        next
    }

    fn observe_switch(
        &self,
        st: &mut State,
        switch: DoorSwitch,
        now: Instant,
        events: &mut Vec<DoorEvent>,
    ) {
        match (switch, &st.phase) {
            (DoorSwitch::Closed, _) => st.held_open_reported = false,
            (DoorSwitch::Open, Phase::Locked { since }) => {
                let after_lock = now.saturating_duration_since(*since);
                if !st.held_open_reported && after_lock >= self.shared.rules.held_open_after {
                    st.held_open_reported = true;
                    events.push(DoorEvent::HeldOpen {
                        at: self.shared.clock.now(),
                        after_lock,
                    });
                }
            }
            (DoorSwitch::Open, Phase::Unlocked { .. }) => {}
        }
    }

    /// [`DoorController::request_unlock`] now (tokio's clock): unlocks or
    /// extends, and returns at once without waiting for the door to lock.
    pub fn start_unlock(&self, want: Duration) -> Result<Grant, DoorError> {
        self.request_unlock(want, tokio_now())
    }

    /// Unlocks for `want` (bounded by the rules) and answers once the door
    /// has locked again. Needs the timer task ([`DoorController::start`]).
    pub async fn unlock(&self, want: Duration) -> Result<Opened, DoorError> {
        let grant = self.request_unlock(want, tokio_now())?;
        self.wait(grant).await
    }

    /// Waits for the end of the unlock a grant belongs to.
    pub async fn wait(&self, grant: Grant) -> Result<Opened, DoorError> {
        let mut done = grant.session.done.subscribe();
        let outcome = done
            .wait_for(Option::is_some)
            .await
            .map_err(|_| DoorError::Stopped)?
            .clone();
        match outcome {
            Some(Ok(locked_at)) => Ok(Opened {
                unlocked_at: grant.session.unlocked_at,
                locked_at,
                extended: grant.extended,
            }),
            Some(Err(e)) => Err(e),
            None => Err(DoorError::Stopped),
        }
    }
}

/// The timer: calls `tick` when an unlock ends and every `poll_every`. Holds
/// only a weak handle, so dropping the last controller locks the door.
async fn timer(controller: Weak<Shared>, wake: Arc<Notify>) {
    loop {
        let Some(shared) = controller.upgrade() else {
            return;
        };
        let handle = DoorController { shared };
        let next = handle.tick(tokio_now());
        drop(handle);
        tokio::select! {
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(next)) => {}
            () = wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulated::{SimulatedDoor, WriteFault};

    #[derive(Debug)]
    struct FixedClock;
    impl Clock for FixedClock {
        fn now(&self) -> DateTime<Utc> {
            DateTime::from_timestamp(1_520_856_000, 0).unwrap_or_default()
        }
    }

    struct Rig {
        door: Arc<SimulatedDoor>,
        events: Arc<Mutex<Vec<DoorEvent>>>,
        ctl: DoorController,
        t0: Instant,
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn rig() -> Rig {
        let door = Arc::new(SimulatedDoor::new());
        door.set_relay(Relay::Unlocked).unwrap(); // as a crashed process left it
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink_events = events.clone();
        let t0 = Instant::now();
        let ctl = DoorController::new(
            door.clone(),
            DoorRules::default(),
            Arc::new(FixedClock),
            Arc::new(move |e| sink_events.lock().unwrap().push(e)),
            t0,
        )
        .unwrap();
        Rig {
            door,
            events,
            ctl,
            t0,
        }
    }

    impl Rig {
        fn at(&self, s: f64) -> Instant {
            self.t0 + secs(s)
        }
        fn events(&self) -> Vec<&'static str> {
            self.events
                .lock()
                .unwrap()
                .iter()
                .map(|e| e.reason())
                .collect()
        }
    }

    #[test]
    fn locks_at_start_before_anything_else() {
        let r = rig();
        assert_eq!(r.door.relay(), Relay::Locked);
        assert_eq!(r.door.leds(), Leds::LOCKED);
        assert!(!r.ctl.is_unlocked());
    }

    #[test]
    fn unlocks_then_locks_when_the_time_is_up() {
        let r = rig();
        let g = r.ctl.request_unlock(secs(3.0), r.at(0.0)).unwrap();
        assert!(!g.extended);
        assert_eq!(r.door.relay(), Relay::Unlocked);
        assert_eq!(r.door.leds(), Leds::UNLOCKED);
        assert_eq!(r.ctl.tick(r.at(1.0)), r.at(1.5), "polls while unlocked");
        assert_eq!(r.ctl.tick(r.at(2.9)), r.at(3.0), "wakes exactly at the end");
        assert_eq!(r.door.relay(), Relay::Unlocked);
        r.ctl.tick(r.at(3.0));
        assert_eq!(r.door.relay(), Relay::Locked);
        assert_eq!(r.door.leds(), Leds::LOCKED);
        assert_eq!(
            r.door.unlock_count(),
            2,
            "the crash state, then this unlock"
        );
    }

    #[test]
    fn overlapping_requests_extend_to_the_later_end_and_never_shorten() {
        let r = rig();
        r.ctl.request_unlock(secs(5.0), r.at(0.0)).unwrap();
        // a shorter request later: ends at 3 s, before 5 s; no shortening
        let g = r.ctl.request_unlock(secs(1.0), r.at(2.0)).unwrap();
        assert!(g.extended);
        r.ctl.tick(r.at(3.5));
        assert_eq!(r.door.relay(), Relay::Unlocked);
        // a request that ends later extends, without stacking (4 + 3 = 7, not 5 + 3)
        r.ctl.request_unlock(secs(3.0), r.at(4.0)).unwrap();
        r.ctl.tick(r.at(6.99));
        assert_eq!(r.door.relay(), Relay::Unlocked);
        r.ctl.tick(r.at(7.0));
        assert_eq!(r.door.relay(), Relay::Locked);
        let unlocks = r.door.unlock_count();
        assert_eq!(unlocks, 2, "one relay release for three requests");
    }

    #[test]
    fn no_request_unlocks_longer_than_the_bound() {
        let r = rig();
        let g = r.ctl.request_unlock(secs(99_998.0), r.at(0.0)).unwrap();
        assert_eq!(g.until, r.at(30.0));
        r.ctl.tick(r.at(30.0));
        assert_eq!(r.door.relay(), Relay::Locked);
    }

    #[test]
    fn a_failed_unlock_leaves_the_door_locked_and_reports() {
        let r = rig();
        r.door.fail_writes(WriteFault::Unlock, 1);
        let err = r.ctl.request_unlock(secs(3.0), r.at(0.0)).unwrap_err();
        assert!(matches!(err, DoorError::Driver { .. }));
        assert_eq!(r.door.relay(), Relay::Locked);
        assert!(!r.ctl.is_unlocked());
        assert_eq!(r.events(), ["door_fault"]);
        // the next request works
        r.ctl.request_unlock(secs(1.0), r.at(1.0)).unwrap();
        assert_eq!(r.door.relay(), Relay::Unlocked);
    }

    #[test]
    fn a_failed_lock_is_retried_and_refuses_unlocks_until_it_locks() {
        let r = rig();
        assert!(r.ctl.health().ready());
        let g = r.ctl.request_unlock(secs(1.0), r.at(0.0)).unwrap();
        r.door.fail_writes(WriteFault::Lock, 3);
        r.ctl.tick(r.at(1.0));
        assert_eq!(r.door.relay(), Relay::Unlocked, "the hardware refused");
        assert!(r.ctl.health().lock_failing && !r.ctl.health().ready());
        let answer = g.session.done.borrow().clone();
        assert!(matches!(answer, Some(Err(_))), "the requester hears of it");
        assert!(r.ctl.request_unlock(secs(1.0), r.at(1.1)).is_err());
        r.ctl.tick(r.at(1.5));
        r.ctl.tick(r.at(2.0));
        assert_eq!(r.door.relay(), Relay::Unlocked);
        r.ctl.tick(r.at(2.5));
        assert_eq!(r.door.relay(), Relay::Locked, "the fourth try works");
        assert!(r.ctl.health().ready(), "ready again once it locks");
        assert_eq!(r.events(), ["door_fault"], "reported once, not per retry");
        r.ctl.request_unlock(secs(1.0), r.at(3.0)).unwrap();
    }

    #[test]
    fn a_switch_read_error_locks_an_unlocked_door() {
        let r = rig();
        let g = r.ctl.request_unlock(secs(10.0), r.at(0.0)).unwrap();
        r.door.fail_reads(u32::MAX);
        r.ctl.tick(r.at(0.5));
        assert_eq!(r.door.relay(), Relay::Locked);
        assert!(matches!(*g.session.done.borrow(), Some(Ok(_))));
        r.ctl.tick(r.at(1.0));
        assert_eq!(r.events(), ["door_fault"]);
    }

    #[test]
    fn a_door_held_open_is_reported_once_per_episode() {
        let r = rig();
        r.ctl.request_unlock(secs(3.0), r.at(0.0)).unwrap();
        r.door.set_switch(DoorSwitch::Open);
        r.ctl.tick(r.at(3.0)); // locks at 3 s
        r.ctl.tick(r.at(62.9));
        assert!(r.events().is_empty(), "59.9 s after locking: not yet");
        r.ctl.tick(r.at(63.0));
        r.ctl.tick(r.at(90.0));
        assert_eq!(r.events(), ["door_held_open"]);
        r.door.set_switch(DoorSwitch::Closed);
        r.ctl.tick(r.at(91.0));
        r.door.set_switch(DoorSwitch::Open);
        r.ctl.tick(r.at(92.0));
        assert_eq!(r.events(), ["door_held_open", "door_held_open"]);
    }

    #[test]
    fn a_stuck_switch_is_reported_once() {
        let r = rig();
        r.door.stick_switch(Some(DoorSwitch::Open));
        for s in 0..200 {
            r.ctl.tick(r.at(f64::from(s)));
        }
        assert_eq!(r.events(), ["door_held_open"]);
    }

    #[test]
    fn dropping_the_controller_locks_the_door() {
        let r = rig();
        let copy = r.ctl.clone();
        r.ctl.request_unlock(secs(10.0), r.at(0.0)).unwrap();
        drop(r.ctl);
        assert_eq!(
            r.door.relay(),
            Relay::Unlocked,
            "another handle still lives"
        );
        drop(copy);
        assert_eq!(r.door.relay(), Relay::Locked);
    }

    #[test]
    fn shutdown_locks_and_refuses_later_unlocks() {
        let r = rig();
        r.ctl.request_unlock(secs(10.0), r.at(0.0)).unwrap();
        r.ctl.shutdown().unwrap();
        assert_eq!(r.door.relay(), Relay::Locked);
        assert!(matches!(
            r.ctl.request_unlock(secs(1.0), r.at(1.0)),
            Err(DoorError::Stopped)
        ));
    }

    fn started() -> (Arc<SimulatedDoor>, DoorController) {
        let door = Arc::new(SimulatedDoor::with_clock(tokio_now));
        let ctl = DoorController::start(
            door.clone(),
            DoorRules::default(),
            Arc::new(FixedClock),
            Arc::new(|_| {}),
        )
        .unwrap();
        (door, ctl)
    }

    #[tokio::test(start_paused = true)]
    async fn the_timer_locks_on_time_and_both_requesters_hear_when() {
        let (door, ctl) = started();
        let start = tokio::time::Instant::now();
        let first = tokio::spawn({
            let ctl = ctl.clone();
            async move { ctl.unlock(secs(3.0)).await }
        });
        tokio::time::sleep(secs(1.0)).await;
        let second = ctl.unlock(secs(4.0)).await.unwrap();
        let first = first.await.unwrap().unwrap();
        assert_eq!(start.elapsed(), secs(5.0), "extended to 1 + 4 s");
        assert!(!first.extended);
        assert!(second.extended);
        assert_eq!(
            first,
            Opened {
                extended: false,
                ..second
            }
        );
        let relay = door.relay_transitions();
        let start = start.into_std();
        assert_eq!(
            relay
                .iter()
                .map(|(at, r)| (*at - start, *r))
                .collect::<Vec<_>>(),
            [
                (secs(0.0), Relay::Locked),
                (secs(0.0), Relay::Unlocked),
                (secs(5.0), Relay::Locked)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn zero_length_unlocks_release_and_lock_at_once() {
        let (door, ctl) = started();
        for _ in 0..3 {
            ctl.unlock(Duration::ZERO).await.unwrap();
            assert_eq!(door.relay(), Relay::Locked);
        }
        assert_eq!(door.unlock_count(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unlock_failing_in_hardware_answers_an_error() {
        let (door, ctl) = started();
        door.fail_writes(WriteFault::Unlock, 1);
        assert!(ctl.unlock(secs(3.0)).await.is_err());
        assert_eq!(door.relay(), Relay::Locked);
        door.fail_writes(WriteFault::Lock, 1);
        assert!(ctl.unlock(secs(1.0)).await.is_err(), "the lock failed once");
        tokio::time::sleep(secs(1.0)).await;
        assert_eq!(door.relay(), Relay::Locked, "and was retried");
    }
}
