//! Identifiers and free-text fields of a member, each parsed once.

use std::fmt;

use crate::Invalid;

macro_rules! string_newtype {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_newtype!(
    /// A member's WeChat openid: the only and unique external ID of a member.
    ///
    /// 1 to 128 printable ASCII characters, none of them white space or one of
    /// `/ ? # %` (it travels in a URL path).
    OpenId
);
string_newtype!(
    /// A member's display name: 1 to 64 characters after trimming, no control
    /// characters. Unique among members ignoring case (see [`NickName::key`]).
    NickName
);
string_newtype!(
    /// The ID of a member's RFID card: 1 to 64 ASCII letters and digits,
    /// stored upper-case so that readers differing in case agree.
    Rfid
);
string_newtype!(
    /// The unique index of a payment, given by the payment provider
    /// (WeChat Pay, Alipay) or by the front desk: 1 to 128 characters after
    /// trimming, no control characters.
    PayIndex
);

/// The database ID of a member (`new_id` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId(pub i64);

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl OpenId {
    /// Parses an openid.
    pub fn parse(text: &str) -> Result<OpenId, Invalid> {
        if text.is_empty() {
            return Err(Invalid::new("must not be empty"));
        }
        if text.len() > 128 {
            return Err(Invalid::new("must be at most 128 characters"));
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b'?' | b'#' | b'%'))
        {
            return Err(Invalid::new(
                "may only hold printable ASCII without spaces or / ? # %",
            ));
        }
        Ok(OpenId(text.to_owned()))
    }
}

impl NickName {
    /// Parses a nickname; surrounding white space is removed.
    pub fn parse(text: &str) -> Result<NickName, Invalid> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Invalid::new("must not be empty"));
        }
        if text.chars().count() > 64 {
            return Err(Invalid::new("must be at most 64 characters"));
        }
        if text.chars().any(char::is_control) {
            return Err(Invalid::new("must not contain control characters"));
        }
        Ok(NickName(text.to_owned()))
    }

    /// The case-folded form that must be unique among members.
    ///
    /// ```
    /// use zhima_domain::ids::NickName;
    /// assert_eq!(NickName::parse("JOHN:").unwrap().key(), NickName::parse("john:").unwrap().key());
    /// ```
    pub fn key(&self) -> String {
        NickName::fold(&self.0)
    }

    /// The same folding for any text, a valid nickname or not (a name
    /// typed at a login, a name in an imported log line): surrounding white
    /// space removed, case folded. For a nickname it is [`NickName::key`].
    ///
    /// ```
    /// use zhima_domain::ids::NickName;
    /// assert_eq!(NickName::fold(" JOHN: "), NickName::parse("john:").unwrap().key());
    /// ```
    pub fn fold(text: &str) -> String {
        text.trim().to_lowercase()
    }
}

impl Rfid {
    /// Parses a card ID; letters are upper-cased.
    pub fn parse(text: &str) -> Result<Rfid, Invalid> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Invalid::new("must not be empty"));
        }
        if text.len() > 64 {
            return Err(Invalid::new("must be at most 64 characters"));
        }
        if !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Invalid::new("may only hold ASCII letters and digits"));
        }
        Ok(Rfid(text.to_ascii_uppercase()))
    }
}

impl PayIndex {
    /// Parses a payment index; surrounding white space is removed.
    pub fn parse(text: &str) -> Result<PayIndex, Invalid> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Invalid::new("must not be empty"));
        }
        if text.chars().count() > 128 {
            return Err(Invalid::new("must be at most 128 characters"));
        }
        if text.chars().any(char::is_control) {
            return Err(Invalid::new("must not contain control characters"));
        }
        Ok(PayIndex(text.to_owned()))
    }
}

/// Checks a free-text profile field (city, memo, avatar URL…): at most `max`
/// characters, no control characters other than line breaks and tabs.
pub fn parse_free_text(text: &str, max: usize) -> Result<String, Invalid> {
    if text.chars().count() > max {
        return Err(Invalid::new(format!("must be at most {max} characters")));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(Invalid::new("must not contain control characters"));
    }
    Ok(text.to_owned())
}

/// A member's gender as WeChat reports it: 0 unknown, 1 male, 2 female.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Gender {
    /// 0: not told.
    #[default]
    Unknown,
    /// 1.
    Male,
    /// 2.
    Female,
}

impl Gender {
    /// From the WeChat number.
    pub fn from_code(code: i64) -> Result<Gender, Invalid> {
        match code {
            0 => Ok(Gender::Unknown),
            1 => Ok(Gender::Male),
            2 => Ok(Gender::Female),
            _ => Err(Invalid::new("must be 0 (unknown), 1 (male) or 2 (female)")),
        }
    }

    /// The WeChat number.
    pub fn code(self) -> i32 {
        match self {
            Gender::Unknown => 0,
            Gender::Male => 1,
            Gender::Female => 2,
        }
    }

    /// `"male"`, `"female"` or `"unknown"`.
    pub fn name(self) -> &'static str {
        match self {
            Gender::Unknown => "unknown",
            Gender::Male => "male",
            Gender::Female => "female",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openids() {
        assert!(OpenId::parse("ozckH0TkSadGgyeAb5Bn390qQMa8").is_ok());
        assert!(OpenId::parse("test-openid_1.x@y:z").is_ok());
        for bad in ["", "a b", "a/b", "a?b", "a#b", "a%2F", "é", "tab\there"] {
            assert!(OpenId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(OpenId::parse(&"x".repeat(128)).is_ok());
        assert!(OpenId::parse(&"x".repeat(129)).is_err());
    }

    #[test]
    fn nicknames() {
        assert_eq!(NickName::parse("  JOHN:  ").unwrap().as_str(), "JOHN:");
        assert_eq!(NickName::parse("小明").unwrap().key(), "小明");
        assert_eq!(NickName::parse("ÉMILE").unwrap().key(), "émile");
        assert!(NickName::parse("   ").is_err());
        assert!(NickName::parse("a\u{0}b").is_err());
        assert!(NickName::parse(&"字".repeat(64)).is_ok());
        assert!(NickName::parse(&"字".repeat(65)).is_err());
    }

    #[test]
    fn rfids_are_upper_cased() {
        assert_eq!(Rfid::parse("04a1b2c3").unwrap().as_str(), "04A1B2C3");
        assert!(Rfid::parse("04:a1").is_err());
        assert!(Rfid::parse("").is_err());
    }

    #[test]
    fn pay_indexes() {
        assert_eq!(
            PayIndex::parse(" this is craaaazy! ").unwrap().as_str(),
            "this is craaaazy!"
        );
        assert!(PayIndex::parse("").is_err());
        assert!(PayIndex::parse("  ").is_err());
        assert!(PayIndex::parse("a\nb").is_err());
    }

    #[test]
    fn genders() {
        assert_eq!(Gender::from_code(1).unwrap(), Gender::Male);
        assert_eq!(Gender::from_code(2).unwrap().name(), "female");
        assert!(Gender::from_code(3).is_err());
        assert!(Gender::from_code(-1).is_err());
        assert_eq!(Gender::Female.code(), 2);
    }

    #[test]
    fn free_text() {
        assert!(parse_free_text("line\nbreak", 10).is_ok());
        assert!(parse_free_text("bell\u{7}", 10).is_err());
        assert!(parse_free_text(&"a".repeat(11), 10).is_err());
    }
}
