#![doc = include_str!("../README.md")]

pub mod admin;
pub mod audit;
pub mod backup;
pub mod entrance;
pub mod keys;
pub mod legacy;
pub mod login;
pub mod members;
pub mod notify;
pub mod sessions;
pub mod transfer;
pub mod wallet;
pub mod webhooks;

use zhima_domain::qr::Refusal;
use zhima_door_hardware::DoorError;
use zhima_storage::StorageError;

/// Why a use case did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The door refused the person (the reason is in the access log).
    #[error("refused at the door: {}", .0.reason())]
    Refused(Refusal),
    /// The database failed or refused.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The door hardware failed (the door was driven to locked), or the
    /// door is stopping with the server.
    #[error("the door failed: {0}")]
    Door(#[from] DoorError),
    /// An unlock asked for an impossible time; the text says why.
    #[error("incorrect call to open the door: {0}")]
    BadSeconds(String),
    /// A value the use case refuses.
    #[error("{field}: {reason}")]
    Invalid {
        /// Which value (`amount`, `reason`…).
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A blocking task could not run (the runtime is shutting down).
    #[error("the server is stopping")]
    Stopping,
}
