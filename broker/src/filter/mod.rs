//! RocketMQ filter expressions: tag expressions ([`TagFilter`]) and SQL92
//! expressions over message properties ([`SqlFilter`]), together a
//! [`Filter`].
//!
//! Tag expressions:
//! `*` or an empty expression selects every message; `a || b || c`
//! selects messages whose tag is one of the listed tags (a message with no
//! tag matches only `*`). Whitespace around tags and operators is ignored.
//! Empty alternatives (`a ||`, `|| b`), a lone `|`, and `*` mixed with
//! tags are refused.

mod sql;

use std::collections::BTreeSet;
use std::fmt;

use tern_model::Message;

pub use self::sql::SqlFilter;
use crate::error::{BrokerError, Result};

/// What a consumer selects: by tag or by an SQL92 expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// A tag expression.
    Tag(TagFilter),
    /// An SQL92 expression over the message's properties.
    Sql(SqlFilter),
}

impl Filter {
    /// The filter that selects every message.
    pub const ALL: Self = Self::Tag(TagFilter::All);

    /// Whether `message` passes the filter.
    pub fn matches(&self, message: &Message) -> bool {
        match self {
            Self::Tag(f) => f.matches(message.tag.as_deref()),
            Self::Sql(f) => f.matches(message),
        }
    }

    /// Whether the filter selects every message (so none need be skipped).
    pub fn selects_all(&self) -> bool {
        matches!(self, Self::Tag(TagFilter::All))
    }
}

impl From<TagFilter> for Filter {
    fn from(f: TagFilter) -> Self {
        Self::Tag(f)
    }
}

impl From<SqlFilter> for Filter {
    fn from(f: SqlFilter) -> Self {
        Self::Sql(f)
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tag(t) => t.fmt(f),
            Self::Sql(s) => s.fmt(f),
        }
    }
}

/// A parsed tag expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagFilter {
    /// Every message.
    All,
    /// Messages whose tag is in the set.
    Tags(BTreeSet<String>),
}

impl TagFilter {
    /// Parses a tag expression, refusing malformed ones with
    /// [`BrokerError::Invalid`].
    pub fn parse(expr: &str) -> Result<Self> {
        let expr = expr.trim();
        if expr.is_empty() || expr == "*" {
            return Ok(Self::All);
        }
        let bad = |why: &str| {
            Err(BrokerError::Invalid(format!(
                "tag expression {expr:?}: {why}"
            )))
        };
        let mut tags = BTreeSet::new();
        for part in expr.split("||") {
            let tag = part.trim();
            if tag.is_empty() {
                return bad("empty alternative around '||'");
            }
            if tag.contains('|') {
                return bad("a tag cannot contain '|'; alternatives are separated by '||'");
            }
            if tag == "*" {
                return bad("'*' must stand alone");
            }
            tags.insert(tag.to_owned());
        }
        Ok(Self::Tags(tags))
    }

    /// Whether a message with `tag` passes the filter.
    pub fn matches(&self, tag: Option<&str>) -> bool {
        match self {
            Self::All => true,
            Self::Tags(set) => tag.is_some_and(|t| set.contains(t)),
        }
    }
}

impl fmt::Display for TagFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("*"),
            Self::Tags(set) => {
                for (i, t) in set.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" || ")?;
                    }
                    f.write_str(t)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        for all in ["", "*", "  *  ", "\t"] {
            let f = TagFilter::parse(all).unwrap();
            assert_eq!(f, TagFilter::All);
            assert!(f.matches(None) && f.matches(Some("x")));
        }
        let f = TagFilter::parse(" TagA||TagB ||  Tag C ").unwrap();
        assert!(f.matches(Some("TagA")) && f.matches(Some("TagB")) && f.matches(Some("Tag C")));
        assert!(!f.matches(Some("TagD")) && !f.matches(None) && !f.matches(Some("taga")));
        assert_eq!(f.to_string(), "Tag C || TagA || TagB");
        assert_eq!(TagFilter::parse("a").unwrap().to_string(), "a");
    }

    #[test]
    fn refuses_malformed() {
        for bad in ["a ||", "|| a", "a |||| b", "a | b", "a || *", "||", "a|||b"] {
            let e = TagFilter::parse(bad).unwrap_err();
            assert!(matches!(e, BrokerError::Invalid(_)), "{bad}: {e}");
        }
    }
}
