//! The password rules: what a member may choose, and the default password
//! every member created through the Member API starts with.

use std::fmt;

use crate::Invalid;

/// The password a member created through the Member API starts with (the
/// contract says so). It never opens a web login: a member on it must get a
/// password from staff.
pub const DEFAULT_PASSWORD: &str = "password123";

/// The fewest characters a chosen password has.
pub const MIN_CHARS: usize = 8;
/// The most characters a chosen password has (argon2 hashes any length; a
/// bound keeps a form from carrying a megabyte into the hash).
pub const MAX_CHARS: usize = 200;

/// A password a member may choose. Never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Refuses fewer than [`MIN_CHARS`] or more than [`MAX_CHARS`]
    /// characters, control characters, and the default password.
    ///
    /// ```
    /// use zhima_domain::password::Password;
    /// assert!(Password::parse("correct horse").is_ok());
    /// assert!(Password::parse("short").is_err());
    /// assert!(Password::parse("password123").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Password, Invalid> {
        let n = text.chars().count();
        if n < MIN_CHARS {
            return Err(Invalid::new(format!(
                "must have at least {MIN_CHARS} characters"
            )));
        }
        if n > MAX_CHARS {
            return Err(Invalid::new(format!(
                "must have at most {MAX_CHARS} characters"
            )));
        }
        if text.chars().any(char::is_control) {
            return Err(Invalid::new("must not contain control characters"));
        }
        if text == DEFAULT_PASSWORD {
            return Err(Invalid::new("must not be the default password"));
        }
        Ok(Password(text.to_owned()))
    }

    /// The password itself, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_holds_at_its_edges() {
        assert!(Password::parse(&"a".repeat(MIN_CHARS)).is_ok());
        assert!(Password::parse(&"a".repeat(MIN_CHARS - 1)).is_err());
        assert!(
            Password::parse(&"密".repeat(MAX_CHARS)).is_ok(),
            "characters, not bytes"
        );
        assert!(Password::parse(&"a".repeat(MAX_CHARS + 1)).is_err());
        assert!(Password::parse("tab\there!").is_err());
        let e = Password::parse(DEFAULT_PASSWORD).unwrap_err();
        assert!(e.reason().contains("default"), "{e}");
    }

    #[test]
    fn debug_never_shows_it() {
        let p = Password::parse("correct horse").unwrap();
        assert_eq!(format!("{p:?}"), "Password(***)");
        assert_eq!(p.expose(), "correct horse");
    }
}
