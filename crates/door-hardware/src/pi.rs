//! The Raspberry Pi driver: GPIO through rppal, pins claimed once at start.

use std::sync::Mutex;

use rppal::gpio::{Gpio, InputPin, Level, OutputPin};

use crate::{DoorDriver, DoorError, DoorSwitch, Leds, PinConfig, Relay};

fn gpio_error(e: rppal::gpio::Error) -> DoorError {
    match e {
        rppal::gpio::Error::UnknownModel => DoorError::NotAvailable {
            driver: "rppal",
            reason: "this machine is not a Raspberry Pi".into(),
        },
        other => DoorError::Driver {
            driver: "rppal",
            reason: other.to_string(),
        },
    }
}

/// Whether the GPIO is there and every configured pin exists, without
/// configuring a pin: an unconfigured `Pin` changes nothing when dropped
/// (only the pins converted to inputs and outputs are reset).
pub fn probe(config: &PinConfig) -> Result<(), DoorError> {
    let gpio = Gpio::new().map_err(gpio_error)?;
    for pin in config.all() {
        drop(gpio.get(pin).map_err(gpio_error)?);
    }
    Ok(())
}

/// The door on GPIO. Writes to memory-mapped GPIO cannot fail once the pins
/// are claimed; only claiming them can.
#[derive(Debug)]
pub struct PiDoor {
    relay: Mutex<OutputPin>,
    switch: InputPin,
    green: Mutex<Vec<OutputPin>>,
    red: Mutex<Vec<OutputPin>>,
    config: PinConfig,
}

fn level(high: bool) -> Level {
    if high {
        Level::High
    } else {
        Level::Low
    }
}

impl PiDoor {
    /// Claims the pins and drives the relay to *locked* first of all.
    pub fn open(config: &PinConfig) -> Result<PiDoor, DoorError> {
        let gpio = Gpio::new().map_err(gpio_error)?;
        let locked = level(!config.relay_active_high);
        let relay_pin = gpio.get(config.relay).map_err(gpio_error)?;
        let mut relay = match locked {
            Level::High => relay_pin.into_output_high(),
            Level::Low => relay_pin.into_output_low(),
        };
        // Keep driving the locked level when the process exits: a pin reset
        // to an input floats, and a floating relay input may energise.
        relay.set_reset_on_drop(false);
        let switch = gpio
            .get(config.switch)
            .map_err(gpio_error)?
            .into_input_pullup();
        let outputs = |pins: &[u8]| -> Result<Vec<OutputPin>, DoorError> {
            pins.iter()
                .map(|p| Ok(gpio.get(*p).map_err(gpio_error)?.into_output_low()))
                .collect()
        };
        Ok(PiDoor {
            relay: Mutex::new(relay),
            switch,
            green: Mutex::new(outputs(&config.green)?),
            red: Mutex::new(outputs(&config.red)?),
            config: config.clone(),
        })
    }
}

impl DoorDriver for PiDoor {
    fn name(&self) -> &'static str {
        "rppal"
    }

    fn set_relay(&self, relay: Relay) -> Result<(), DoorError> {
        let high = match relay {
            Relay::Unlocked => self.config.relay_active_high,
            Relay::Locked => !self.config.relay_active_high,
        };
        zhima_domain::sync::lock(&self.relay).write(level(high));
        Ok(())
    }

    fn read_switch(&self) -> Result<DoorSwitch, DoorError> {
        let low = self.switch.is_low();
        Ok(if low == self.config.switch_open_low {
            DoorSwitch::Open
        } else {
            DoorSwitch::Closed
        })
    }

    fn set_leds(&self, leds: Leds) -> Result<(), DoorError> {
        for (pins, on) in [(&self.green, leds.green), (&self.red, leds.red)] {
            for pin in zhima_domain::sync::lock(pins).iter_mut() {
                pin.write(level(on));
            }
        }
        Ok(())
    }
}
