use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a topic or group name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    #[error("{kind} name is empty")]
    Empty { kind: &'static str },
    #[error("{kind} name is {len} characters long; the limit is {max}")]
    TooLong {
        kind: &'static str,
        len: usize,
        max: usize,
    },
    #[error(
        "{kind} name {name:?} contains {ch:?}; allowed are ASCII letters, digits, '%', '|', '-' and '_'"
    )]
    BadChar {
        kind: &'static str,
        name: String,
        ch: char,
    },
}

fn validate(kind: &'static str, name: &str, max: usize) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { kind });
    }
    if name.len() > max {
        return Err(NameError::TooLong {
            kind,
            len: name.len(),
            max,
        });
    }
    if let Some(ch) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '%' | '|' | '-' | '_')))
    {
        return Err(NameError::BadChar {
            kind,
            name: name.to_owned(),
            ch,
        });
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $ty(String);

        impl $ty {
            /// Longest name accepted.
            pub const MAX_LEN: usize = $max;

            /// Validates `name` and wraps it.
            pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
                let name = name.into();
                validate($kind, &name, Self::MAX_LEN)?;
                Ok(Self(name))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl From<$ty> for String {
            fn from(n: $ty) -> String {
                n.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// A topic name: 1 to 127 characters of `[A-Za-z0-9%|_-]` (RocketMQ's rule).
    TopicName,
    "topic",
    127
);
name_type!(
    /// A consumer or producer group name: 1 to 255 characters of `[A-Za-z0-9%|_-]`.
    GroupName,
    "group",
    255
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_rocketmq_names() {
        for n in ["orders", "%RETRY%g1", "%DLQ%g-1", "a_b|c", "T1"] {
            assert_eq!(TopicName::new(n).unwrap().as_str(), n);
        }
    }

    #[test]
    fn refuses_bad_names() {
        assert_eq!(TopicName::new(""), Err(NameError::Empty { kind: "topic" }));
        assert!(matches!(
            TopicName::new("has space"),
            Err(NameError::BadChar { ch: ' ', .. })
        ));
        assert!(matches!(
            TopicName::new("x".repeat(128)),
            Err(NameError::TooLong {
                len: 128,
                max: 127,
                ..
            })
        ));
        assert!(GroupName::new("x".repeat(255)).is_ok());
        assert!(matches!(
            GroupName::new("ä"),
            Err(NameError::BadChar { .. })
        ));
    }
}
