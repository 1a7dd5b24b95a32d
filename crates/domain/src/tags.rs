//! Member tags (roles) that decide a member's privileges.

use std::collections::BTreeSet;
use std::fmt;

use crate::Invalid;

/// One tag. The numbers are the role numbers of the original system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tag {
    /// 0
    Visitor,
    /// 1
    Member,
    /// 2
    Master,
    /// 4
    Group,
    /// 5
    Staff,
    /// 10
    Admin,
}

impl Tag {
    /// All tags, in role-number order.
    pub const ALL: [Tag; 6] = [
        Tag::Visitor,
        Tag::Member,
        Tag::Master,
        Tag::Group,
        Tag::Staff,
        Tag::Admin,
    ];

    /// The upper-case wire name.
    pub const fn name(self) -> &'static str {
        match self {
            Tag::Visitor => "VISITOR",
            Tag::Member => "MEMBER",
            Tag::Master => "MASTER",
            Tag::Group => "GROUP",
            Tag::Staff => "STAFF",
            Tag::Admin => "ADMIN",
        }
    }

    /// The role number of the original system.
    pub const fn role_number(self) -> u8 {
        match self {
            Tag::Visitor => 0,
            Tag::Member => 1,
            Tag::Master => 2,
            Tag::Group => 4,
            Tag::Staff => 5,
            Tag::Admin => 10,
        }
    }

    /// A tag from its name, in any case.
    pub fn from_name(name: &str) -> Result<Tag, Invalid> {
        let name = name.trim();
        Tag::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                Invalid::new(format!(
                    "unknown tag {name:?}; known tags: {}",
                    Tag::known_list()
                ))
            })
    }

    /// A tag from its role number.
    pub fn from_role_number(n: i64) -> Result<Tag, Invalid> {
        Tag::ALL
            .into_iter()
            .find(|t| i64::from(t.role_number()) == n)
            .ok_or_else(|| {
                Invalid::new(format!(
                    "unknown role number {n}; known: 0 VISITOR, 1 MEMBER, 2 MASTER, 4 GROUP, 5 STAFF, 10 ADMIN"
                ))
            })
    }

    fn known_list() -> String {
        Tag::ALL.map(Tag::name).join(", ")
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A non-empty set of tags.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tags(BTreeSet<Tag>);

/// One element of a tag specification as it arrives on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagInput<'a> {
    /// A name (`"staff"`), or a comma-separated list of names, or a role number as text (`"5"`).
    Text(&'a str),
    /// A role number (`5`).
    Number(i64),
}

impl Tags {
    /// The default for a new member: `MEMBER`.
    pub fn default_new_member() -> Tags {
        Tags(BTreeSet::from([Tag::Member]))
    }

    /// Builds the set from wire elements: names in any case, comma-separated
    /// names, or role numbers. At least one tag is required.
    pub fn parse(inputs: &[TagInput<'_>]) -> Result<Tags, Invalid> {
        let mut set = BTreeSet::new();
        for input in inputs {
            match input {
                TagInput::Number(n) => {
                    set.insert(Tag::from_role_number(*n)?);
                }
                TagInput::Text(text) => {
                    for part in text.split(',') {
                        let part = part.trim();
                        if part.is_empty() {
                            continue;
                        }
                        let tag = match part.parse::<i64>() {
                            Ok(n) => Tag::from_role_number(n)?,
                            Err(_) => Tag::from_name(part)?,
                        };
                        set.insert(tag);
                    }
                }
            }
        }
        if set.is_empty() {
            return Err(Invalid::new("at least one tag is required"));
        }
        Ok(Tags(set))
    }

    /// Parses the stored form (comma-separated names).
    pub fn from_stored(text: &str) -> Result<Tags, Invalid> {
        Tags::parse(&[TagInput::Text(text)])
    }

    /// The stored form: comma-separated upper-case names in role order.
    pub fn to_stored(&self) -> String {
        self.names().join(",")
    }

    /// Upper-case names in role order.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|t| t.name()).collect()
    }

    /// Whether the set holds `tag`.
    pub fn contains(&self, tag: Tag) -> bool {
        self.0.contains(&tag)
    }

    /// Iterates in role order.
    pub fn iter(&self) -> impl Iterator<Item = Tag> + '_ {
        self.0.iter().copied()
    }
}

/// What a person may do on the web pages, from their tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Their own member page only.
    Member,
    /// The staff console (tag `STAFF`).
    Staff,
    /// The console and its dangerous parts (tag `ADMIN`).
    Admin,
}

impl Role {
    /// The highest role `tags` give (`ADMIN` over `STAFF` over anything).
    pub fn of(tags: &Tags) -> Role {
        if tags.contains(Tag::Admin) {
            Role::Admin
        } else if tags.contains(Tag::Staff) {
            Role::Staff
        } else {
            Role::Member
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn roles_come_from_tags() {
        let role = |t: &str| Role::of(&Tags::from_stored(t).unwrap());
        assert_eq!(role("MEMBER"), Role::Member);
        assert_eq!(role("VISITOR,MASTER"), Role::Member);
        assert_eq!(role("STAFF"), Role::Staff);
        assert_eq!(role("MEMBER,STAFF,ADMIN"), Role::Admin);
        assert_eq!(role("ADMIN"), Role::Admin);
        assert!(Role::Admin > Role::Staff && Role::Staff > Role::Member);
    }

    use super::*;

    #[test]
    fn names_in_any_case_and_lists() {
        let t = Tags::parse(&[TagInput::Text("staff")]).unwrap();
        assert_eq!(t.names(), ["STAFF"]);
        let t = Tags::parse(&[
            TagInput::Text("Member"),
            TagInput::Text("ADMIN"),
            TagInput::Text("member"),
        ])
        .unwrap();
        assert_eq!(t.names(), ["MEMBER", "ADMIN"]);
        let t = Tags::parse(&[TagInput::Text("visitor, group")]).unwrap();
        assert_eq!(t.names(), ["VISITOR", "GROUP"]);
    }

    #[test]
    fn role_numbers() {
        for (n, name) in [
            (0, "VISITOR"),
            (1, "MEMBER"),
            (2, "MASTER"),
            (4, "GROUP"),
            (5, "STAFF"),
            (10, "ADMIN"),
        ] {
            assert_eq!(Tags::parse(&[TagInput::Number(n)]).unwrap().names(), [name]);
            assert_eq!(
                Tags::parse(&[TagInput::Text(&n.to_string())])
                    .unwrap()
                    .names(),
                [name]
            );
        }
        for bad in [3, 6, -1, 11, i64::MAX] {
            assert!(Tags::parse(&[TagInput::Number(bad)]).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_and_empty_are_refused() {
        assert!(Tags::parse(&[TagInput::Text("WIZARD")]).is_err());
        assert!(Tags::parse(&[]).is_err());
        assert!(Tags::parse(&[TagInput::Text(" , ")]).is_err());
        let err = Tags::parse(&[TagInput::Text("WIZARD")]).unwrap_err();
        assert!(err.to_string().contains("VISITOR"), "{err}");
    }

    #[test]
    fn stored_form_round_trips() {
        let t = Tags::parse(&[TagInput::Number(10), TagInput::Text("visitor")]).unwrap();
        assert_eq!(t.to_stored(), "VISITOR,ADMIN");
        assert_eq!(Tags::from_stored(&t.to_stored()).unwrap(), t);
        assert!(t.contains(Tag::Admin));
        assert!(!t.contains(Tag::Staff));
        assert_eq!(Tags::default_new_member().names(), ["MEMBER"]);
    }
}
