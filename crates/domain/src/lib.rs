#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod access;
pub mod errno;
pub mod expiring;
pub mod ids;
pub mod legacy;
pub mod limit;
pub mod member;
pub mod membership;
pub mod money;
pub mod notify;
pub mod partner;
pub mod password;
pub mod plan;
pub mod qr;
pub mod scope;
pub mod sync;
pub mod tags;
pub mod text;
pub mod time;

pub use errno::Errno;

/// Why a value was refused, without the name of the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Invalid {
    reason: String,
}

impl Invalid {
    /// A refusal with its reason.
    pub fn new(reason: impl Into<String>) -> Invalid {
        Invalid {
            reason: reason.into(),
        }
    }

    /// The reason.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Attaches the wire name of the field the value came from.
    pub fn field(self, field: &'static str) -> DomainError {
        DomainError::InvalidField {
            field,
            reason: self.reason,
        }
    }
}

/// The errors of the domain crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A field holds a value the rules refuse.
    #[error("{field}: {reason}")]
    InvalidField {
        /// Wire name of the field, e.g. `paidTime` or `basicInfo.nickName`.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

impl DomainError {
    /// A required field is absent.
    pub fn missing(field: &'static str) -> DomainError {
        DomainError::InvalidField {
            field,
            reason: "is required".to_owned(),
        }
    }

    /// The errno this error answers with.
    pub fn errno(&self) -> Errno {
        match self {
            DomainError::InvalidField { .. } => Errno::BadRequest,
        }
    }
}
