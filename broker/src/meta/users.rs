//! The registry's users ([`acl::User`]): read, create, change, delete,
//! each change durable in the metadata log like a topic's.

use super::Registry;
use super::acl::{self, Policy, User, UserKind};
use super::log::Op;
use crate::error::{BrokerError, Result};

impl Registry {
    /// The user named `name` (its access key).
    pub fn user(&self, name: &str) -> Option<User> {
        self.contents.read().users.get(name).cloned()
    }

    /// Every user, by name.
    pub fn users(&self) -> Vec<User> {
        self.contents.read().users.values().cloned().collect()
    }

    /// Adds `user`; [`BrokerError::Invalid`] if the name is taken.
    pub fn create_user(&self, user: User) -> Result<()> {
        self.change(|c| {
            if c.users.contains_key(user.name()) {
                return Err(BrokerError::Invalid(format!(
                    "user `{}` exists already",
                    user.name()
                )));
            }
            Ok((vec![Op::PutUser(user)], ()))
        })
    }

    /// Makes sure a super user `name` with `secret` exists (the bootstrap
    /// user given in the broker's settings): creates it, or sets its key
    /// and kind, keeping its policies. Writes nothing when already so.
    pub fn ensure_super_user(&self, name: &str, secret: &str) -> Result<()> {
        let wanted = User::new(name, secret, UserKind::Super)?;
        self.change(|c| {
            let next = match c.users.get(name) {
                Some(u) if u.secret() == secret && u.kind() == UserKind::Super => {
                    return Ok((Vec::new(), ()));
                }
                Some(u) => u.clone().with_secret(secret)?.with_kind(UserKind::Super),
                None => wanted,
            };
            Ok((vec![Op::PutUser(next)], ()))
        })
    }

    /// Changes the user `name` with `f` (its key, kind or policies);
    /// returns the user as changed.
    pub fn update_user(&self, name: &str, f: impl FnOnce(User) -> Result<User>) -> Result<User> {
        self.change(|c| {
            let user = c.users.get(name).cloned().ok_or_else(|| no_user(name))?;
            let next = f(user)?;
            if next.name() != name {
                return Err(BrokerError::Invalid("a user cannot be renamed".into()));
            }
            Ok((vec![Op::PutUser(next.clone())], next))
        })
    }

    /// Removes the user `name`.
    pub fn delete_user(&self, name: &str) -> Result<User> {
        self.change(|c| {
            let old = c.users.get(name).cloned().ok_or_else(|| no_user(name))?;
            Ok((vec![Op::DeleteUser(name.to_owned())], old))
        })
    }

    /// Adds `policy` to the user `name`.
    pub fn grant(&self, name: &str, policy: Policy) -> Result<User> {
        self.update_user(name, |mut u| {
            u.grant(policy);
            Ok(u)
        })
    }

    /// Removes `policy`'s actions from the user `name`;
    /// [`BrokerError::Invalid`] when the user has no such rule.
    pub fn revoke(&self, name: &str, policy: &Policy) -> Result<User> {
        self.update_user(name, |mut u| {
            if u.revoke(policy) {
                Ok(u)
            } else {
                Err(BrokerError::Invalid(format!(
                    "user `{name}` has no {} rule for {} `{}` to revoke",
                    match policy.decision {
                        acl::Decision::Allow => "allow",
                        acl::Decision::Deny => "deny",
                    },
                    policy.kind.as_str(),
                    policy.pattern
                )))
            }
        })
    }
}

fn no_user(name: &str) -> BrokerError {
    BrokerError::Invalid(format!("no user `{name}`"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::meta::acl::{Action, Decision, ResourceKind};

    #[test]
    fn users_and_grants_survive_reopen_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let policy = Policy {
            kind: ResourceKind::Topic,
            pattern: "orders*".parse().unwrap(),
            actions: BTreeSet::from([Action::Pub]),
            decision: Decision::Allow,
            sources: Vec::new(),
        };
        {
            let r = Registry::open(dir.path()).unwrap();
            r.create_user(User::new("app", "app-secret-1", UserKind::Normal).unwrap())
                .unwrap();
            assert!(
                r.create_user(User::new("app", "other-secret", UserKind::Normal).unwrap())
                    .is_err()
            );
            r.grant("app", policy.clone()).unwrap();
            r.ensure_super_user("root", "root-secret-1").unwrap();
            let v = r.version();
            r.ensure_super_user("root", "root-secret-1").unwrap();
            assert_eq!(r.version(), v, "an unchanged bootstrap user writes nothing");
            r.create_user(User::new("gone", "gone-secret", UserKind::Normal).unwrap())
                .unwrap();
            r.delete_user("gone").unwrap();
            assert!(r.grant("gone", policy.clone()).is_err());
        }
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("metadata.log"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o077, 0, "the log holds secrets: owner only");
        let r = Registry::open(dir.path()).unwrap();
        let app = r.user("app").unwrap();
        assert_eq!(app.secret(), "app-secret-1");
        assert!(app.may(ResourceKind::Topic, "orders-1", &[Action::Pub], None));
        assert_eq!(r.user("root").unwrap().kind(), UserKind::Super);
        assert!(r.user("gone").is_none());
        // Compaction (a snapshot) keeps them too.
        r.compact_now().unwrap();
        drop(r);
        let r = Registry::open(dir.path()).unwrap();
        assert_eq!(r.users().len(), 2);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("metadata.json"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o077, 0);
    }
}
