//! What an API key may do.

use std::collections::BTreeSet;
use std::fmt;

use crate::Invalid;

/// One permission of an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// `member:read`: read members.
    MemberRead,
    /// `member:write`: create and change members, record payments.
    MemberWrite,
    /// `door:open`: open the door.
    DoorOpen,
    /// `admin`: everything, including the access log.
    Admin,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 4] = [
        Scope::MemberRead,
        Scope::MemberWrite,
        Scope::DoorOpen,
        Scope::Admin,
    ];

    /// The name used on the command line and in storage.
    pub const fn name(self) -> &'static str {
        match self {
            Scope::MemberRead => "member:read",
            Scope::MemberWrite => "member:write",
            Scope::DoorOpen => "door:open",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The non-empty set of scopes of one API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    /// Parses a comma-separated list such as `member:read,door:open`.
    pub fn parse(text: &str) -> Result<Scopes, Invalid> {
        let mut set = BTreeSet::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let scope = Scope::ALL
                .into_iter()
                .find(|s| s.name() == part)
                .ok_or_else(|| {
                    Invalid::new(format!(
                        "unknown scope {part:?}; known: {}",
                        Scope::ALL.map(Scope::name).join(", ")
                    ))
                })?;
            set.insert(scope);
        }
        if set.is_empty() {
            return Err(Invalid::new("at least one scope is required"));
        }
        Ok(Scopes(set))
    }

    /// Whether a key with these scopes may act where `required` is needed.
    /// `admin` allows everything.
    pub fn allows(&self, required: Scope) -> bool {
        self.0.contains(&required) || self.0.contains(&Scope::Admin)
    }
}

impl fmt::Display for Scopes {
    /// The comma-separated form [`Scopes::parse`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|s| s.name()).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let s = Scopes::parse("member:read, door:open,member:read").unwrap();
        assert_eq!(s.to_string(), "member:read,door:open");
        assert_eq!(Scopes::parse(&s.to_string()).unwrap(), s);
        assert!(Scopes::parse("").is_err());
        assert!(Scopes::parse("member:delete").is_err());
        assert!(Scopes::parse("MEMBER:READ").is_err());
    }

    #[test]
    fn allows_only_what_was_granted_and_admin_everything() {
        let s = Scopes::parse("member:read").unwrap();
        assert!(s.allows(Scope::MemberRead));
        assert!(!s.allows(Scope::MemberWrite));
        assert!(!s.allows(Scope::DoorOpen));
        assert!(!s.allows(Scope::Admin));
        let admin = Scopes::parse("admin").unwrap();
        for scope in Scope::ALL {
            assert!(admin.allows(scope));
        }
    }
}

/// Checks the name of an API key: 1 to 64 ASCII letters, digits, `-`, `_` or `.`.
pub fn parse_api_key_name(name: &str) -> Result<String, Invalid> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(Invalid::new(
            "an API key name is 1 to 64 ASCII letters, digits, '-', '_' or '.'",
        ));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn key_names() {
        assert!(parse_api_key_name("front-desk_1.pi").is_ok());
        assert!(parse_api_key_name("").is_err());
        assert!(parse_api_key_name("has space").is_err());
        assert!(parse_api_key_name(&"a".repeat(65)).is_err());
    }
}
