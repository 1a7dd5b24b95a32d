//! The error numbers (`errno`) of the Member API envelope.
//!
//! These values are part of the wire contract with the space's existing
//! clients. They carry no HTTP status: the `http` crate decides how each one
//! travels.

use std::fmt;

/// One `errno` value of the `{"errno", "errmsg", "data"}` envelope.
///
/// Values 1000–1999 come from the original API catalogue; 14xx and 15xx are
/// zhima's additions for transport-level refusals, modelled on the HTTP status
/// they travel with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Errno {
    /// 1000: the operation succeeded.
    Success,
    /// 1001: a stored member cannot be turned into the Member JSON structure.
    MemberIncomplete,
    /// 1002: the request body is not a correct JSON object for this call.
    BadRequest,
    /// 1003: the member cannot be inserted (duplicate openid, nickName or rfid).
    MemberInsertFailed,
    /// 1004: the member record cannot be updated (the change would duplicate a unique field).
    MemberUpdateFailed,
    /// 1005: the payment (transaction) cannot be recorded (payIndex reused with different content).
    PaymentInsertFailed,
    /// 1401: no API key, or an unknown or revoked one.
    Unauthorized,
    /// 1403: the API key lacks the scope this route needs.
    Forbidden,
    /// 1404: no such route.
    RouteNotFound,
    /// 1405: the route exists but not with this method.
    MethodNotAllowed,
    /// 1408: the request body did not arrive within the body timeout.
    RequestTimeout,
    /// 1413: the request body is larger than the server accepts.
    PayloadTooLarge,
    /// 1429: too many requests from this client; retry after `Retry-After` seconds.
    TooManyRequests,
    /// 1507: the database cannot be written now (disk full, read-only or
    /// failing storage); nothing was changed, reads still work.
    NotWritable,
    /// 1500: an internal error; details are in the server log, never in the answer.
    Internal,
    /// 1503: the service (typically the database) is unavailable right now; retry later.
    Unavailable,
    /// 1601: the scanned code is not a member code.
    CodeUnreadable,
    /// 1602: the code's signature does not match: forged or altered.
    CodeForged,
    /// 1603: the code was signed with a key this server does not know.
    CodeUnknownKey,
    /// 1604: the code is not valid yet.
    CodeNotYetValid,
    /// 1605: the code has expired.
    CodeExpired,
    /// 1606: the member has no valid membership, pass or entry now.
    MemberNotOk,
    /// 1607: the member is deactivated.
    MemberDeactivated,
    /// 1608: a 10 ENTRIES visitor's entry days are used up.
    EntryDaysUsedUp,
    /// 1609: no member holds this RFID card.
    UnknownCard,
    /// 1997: the door hardware failed; the door was driven to locked.
    DoorFault,
    /// 1998: incorrect number of seconds to open the door.
    BadSeconds,
    /// 1999: member not found.
    MemberNotFound,
}

impl Errno {
    /// Every errno, in numeric order (for documentation and tests).
    pub const ALL: [Errno; 28] = [
        Errno::Success,
        Errno::MemberIncomplete,
        Errno::BadRequest,
        Errno::MemberInsertFailed,
        Errno::MemberUpdateFailed,
        Errno::PaymentInsertFailed,
        Errno::Unauthorized,
        Errno::Forbidden,
        Errno::RouteNotFound,
        Errno::MethodNotAllowed,
        Errno::RequestTimeout,
        Errno::PayloadTooLarge,
        Errno::TooManyRequests,
        Errno::Internal,
        Errno::Unavailable,
        Errno::NotWritable,
        Errno::CodeUnreadable,
        Errno::CodeForged,
        Errno::CodeUnknownKey,
        Errno::CodeNotYetValid,
        Errno::CodeExpired,
        Errno::MemberNotOk,
        Errno::MemberDeactivated,
        Errno::EntryDaysUsedUp,
        Errno::UnknownCard,
        Errno::DoorFault,
        Errno::BadSeconds,
        Errno::MemberNotFound,
    ];

    /// The numeric value.
    pub const fn code(self) -> u16 {
        match self {
            Errno::Success => 1000,
            Errno::MemberIncomplete => 1001,
            Errno::BadRequest => 1002,
            Errno::MemberInsertFailed => 1003,
            Errno::MemberUpdateFailed => 1004,
            Errno::PaymentInsertFailed => 1005,
            Errno::Unauthorized => 1401,
            Errno::Forbidden => 1403,
            Errno::RouteNotFound => 1404,
            Errno::MethodNotAllowed => 1405,
            Errno::RequestTimeout => 1408,
            Errno::PayloadTooLarge => 1413,
            Errno::TooManyRequests => 1429,
            Errno::Internal => 1500,
            Errno::Unavailable => 1503,
            Errno::NotWritable => 1507,
            Errno::CodeUnreadable => 1601,
            Errno::CodeForged => 1602,
            Errno::CodeUnknownKey => 1603,
            Errno::CodeNotYetValid => 1604,
            Errno::CodeExpired => 1605,
            Errno::MemberNotOk => 1606,
            Errno::MemberDeactivated => 1607,
            Errno::EntryDaysUsedUp => 1608,
            Errno::UnknownCard => 1609,
            Errno::DoorFault => 1997,
            Errno::BadSeconds => 1998,
            Errno::MemberNotFound => 1999,
        }
    }

    /// The errno from its numeric value, if it is one of ours.
    pub fn from_code(code: u16) -> Option<Errno> {
        Errno::ALL.into_iter().find(|e| e.code() == code)
    }

    /// A short, generic, human-readable meaning (the default `errmsg`).
    pub const fn meaning(self) -> &'static str {
        match self {
            Errno::Success => "Success",
            Errno::MemberIncomplete => "Member information is incomplete",
            Errno::BadRequest => "Request body is not correct",
            Errno::MemberInsertFailed => "Member cannot be inserted",
            Errno::MemberUpdateFailed => "Member cannot be updated",
            Errno::PaymentInsertFailed => "Payment cannot be recorded",
            Errno::Unauthorized => "Missing or invalid API key",
            Errno::Forbidden => "API key lacks the required scope",
            Errno::RouteNotFound => "No such route",
            Errno::MethodNotAllowed => "Method not allowed on this route",
            Errno::RequestTimeout => "The request body did not arrive in time",
            Errno::PayloadTooLarge => "Request body too large",
            Errno::TooManyRequests => "Too many requests; retry later",
            Errno::Internal => "Internal error",
            Errno::Unavailable => "Service temporarily unavailable",
            Errno::NotWritable => {
                "The database cannot be written now; nothing was changed; reads still work"
            }
            Errno::CodeUnreadable => "This is not a member code",
            Errno::CodeForged => "This code is not valid",
            Errno::CodeUnknownKey => "This code was signed with an unknown key",
            Errno::CodeNotYetValid => "This code is not valid yet",
            Errno::CodeExpired => "This code has expired; show a fresh one",
            Errno::MemberNotOk => "No valid membership, pass or entry today",
            Errno::MemberDeactivated => "This membership is deactivated; please see the staff",
            Errno::EntryDaysUsedUp => "All entry days are used up",
            Errno::UnknownCard => "Unknown card",
            Errno::DoorFault => "The door hardware failed; the door is locked",
            Errno::BadSeconds => "Incorrect number of seconds",
            Errno::MemberNotFound => "Member not found",
        }
    }

    /// Whether this errno reports success.
    pub const fn is_success(self) -> bool {
        matches!(self, Errno::Success)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for e in Errno::ALL {
            assert!(seen.insert(e.code()), "duplicate code {}", e.code());
            assert_eq!(Errno::from_code(e.code()), Some(e));
        }
        assert_eq!(Errno::from_code(1234), None);
    }

    #[test]
    fn seed_values_are_kept() {
        assert_eq!(Errno::Success.code(), 1000);
        assert_eq!(Errno::BadRequest.code(), 1002);
        assert_eq!(Errno::PaymentInsertFailed.code(), 1005);
        assert_eq!(Errno::BadSeconds.code(), 1998);
        assert_eq!(Errno::MemberNotFound.code(), 1999);
        assert_eq!(Errno::MemberNotFound.to_string(), "1999");
        assert!(Errno::Success.is_success());
        assert!(!Errno::MemberNotFound.is_success());
    }
}
