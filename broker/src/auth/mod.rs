//! Authentication and authorization of requests: who is calling (the
//! SDKs' signed `authorization` header, checked against the users in the
//! registry) and whether that user may do what the request does (the
//! user's policies, [`crate::meta::acl`]).
//!
//! Off by default ([`AuthConfig::enabled`]): every request is then let
//! through unchecked, as before. On, a request must be signed by a known
//! user with a date within [`AuthConfig::max_skew`] of the broker's clock
//! (so a captured request cannot be replayed later), and each resource
//! it touches must be allowed to that user. The gRPC edge says what a
//! request touches ([`Need`]s) and turns a [`Denied`] into the status the
//! SDKs expect.

pub mod sign;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::Result;
use crate::meta::Registry;
use crate::meta::acl::{Action, ResourceKind, UserKind};
use crate::metrics::Metrics;

/// Settings of request checks.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// Check requests at all. Default false.
    pub enabled: bool,
    /// Largest difference between a request's `x-mq-date-time` and the
    /// broker's clock. Default 15 minutes.
    pub max_skew: Duration,
    /// A super user made (or whose key is set) at start: access key and
    /// secret key. Default none.
    pub bootstrap: Option<(String, String)>,
}

impl AuthConfig {
    pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(15 * 60);
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            max_skew: Self::DEFAULT_MAX_SKEW,
            bootstrap: None,
        }
    }
}

/// Never prints the bootstrap secret key.
impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("enabled", &self.enabled)
            .field("max_skew", &self.max_skew)
            .field("bootstrap", &self.bootstrap.as_ref().map(|(k, _)| k))
            .finish()
    }
}

/// One thing a request does: one of `any_of` on a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub kind: ResourceKind,
    pub name: String,
    pub any_of: &'static [Action],
}

impl Need {
    pub fn topic(name: impl Into<String>, any_of: &'static [Action]) -> Self {
        Self {
            kind: ResourceKind::Topic,
            name: name.into(),
            any_of,
        }
    }

    pub fn group(name: impl Into<String>, any_of: &'static [Action]) -> Self {
        Self {
            kind: ResourceKind::Group,
            name: name.into(),
            any_of,
        }
    }
}

/// What a request says about its caller.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caller<'a> {
    /// The RPC called, for the audit log.
    pub rpc: &'static str,
    /// The `authorization` header.
    pub authorization: Option<&'a str>,
    /// The `x-mq-date-time` header.
    pub date_time: Option<&'a str>,
    /// The connection's peer address.
    pub source: Option<IpAddr>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No valid signature of a known user (UNAUTHORIZED).
    #[error("{0}")]
    Unauthenticated(String),
    /// A known user not allowed to do this (FORBIDDEN).
    #[error("user `{user}` may not {action} {kind} `{name}`")]
    Forbidden {
        user: String,
        kind: &'static str,
        name: String,
        action: String,
    },
}

impl Denied {
    /// A short label for metrics.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Forbidden { .. } => "forbidden",
        }
    }
}

/// Checks requests against the users in the registry; counts and logs
/// (target `tern::audit`) every refusal.
#[derive(Debug)]
pub struct Access {
    cfg: AuthConfig,
    registry: Arc<Registry>,
    metrics: Option<Arc<Metrics>>,
}

impl Access {
    /// Checks as `cfg` says against `registry`'s users; makes the
    /// bootstrap super user first, if one is given.
    pub fn new(
        cfg: AuthConfig,
        registry: Arc<Registry>,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Self> {
        if let Some((key, secret)) = &cfg.bootstrap {
            registry.ensure_super_user(key, secret)?;
        }
        if cfg.enabled && registry.users().is_empty() {
            tracing::warn!(
                "authentication is on but no user exists: every request will be refused; \
                 set a bootstrap user"
            );
        }
        Ok(Self {
            cfg,
            registry,
            metrics,
        })
    }

    pub fn enabled(&self) -> bool {
        self.cfg.enabled
    }

    /// The user calling, if checks are on: `Ok(None)` when they are off.
    pub fn authenticate(
        &self,
        caller: &Caller<'_>,
        now: SystemTime,
    ) -> Result<Option<String>, Denied> {
        if !self.cfg.enabled {
            return Ok(None);
        }
        let unauthenticated = |why: String| Err(Denied::Unauthenticated(why));
        let Some(header) = caller.authorization else {
            return unauthenticated(
                "no credentials: the request is not signed (set an access key and secret key)"
                    .into(),
            );
        };
        let signed = match sign::parse(header) {
            Ok(Some(s)) => s,
            Ok(None) => {
                return unauthenticated("no credentials: the request names no access key".into());
            }
            Err(why) => return unauthenticated(why.into()),
        };
        let Some(date_time) = caller.date_time else {
            return unauthenticated("the signed request has no x-mq-date-time".into());
        };
        let Some(signed_at) = sign::parse_date_time(date_time) else {
            return unauthenticated(format!("x-mq-date-time `{date_time}` is not a date"));
        };
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let skew = self.cfg.max_skew.as_secs() as i64;
        if (now - signed_at).abs() > skew {
            return unauthenticated(format!(
                "x-mq-date-time `{date_time}` is more than {skew} s from the broker's clock: \
                 an old (replayed) request or a wrong clock"
            ));
        }
        let Some(user) = self.registry.user(signed.access_key) else {
            return unauthenticated(format!("unknown access key `{}`", signed.access_key));
        };
        if !sign::verify(user.secret(), date_time, &signed.signature) {
            return unauthenticated(format!(
                "the signature of access key `{}` does not match (wrong secret key)",
                signed.access_key
            ));
        }
        Ok(Some(user.name().to_owned()))
    }

    /// Authenticates the caller and checks each of `needs`: the user's
    /// name when checks are on.
    pub fn check(
        &self,
        caller: &Caller<'_>,
        needs: &[Need],
        now: SystemTime,
    ) -> Result<Option<String>, Denied> {
        let checked = self.decide(caller, needs, now);
        self.audit(caller, checked)
    }

    /// Authenticates the caller and requires a super user (managing users
    /// and policies).
    pub fn check_super(
        &self,
        caller: &Caller<'_>,
        now: SystemTime,
    ) -> Result<Option<String>, Denied> {
        let checked = self.decide_super(caller, now);
        self.audit(caller, checked)
    }

    /// Counts and logs a refusal.
    fn audit(
        &self,
        caller: &Caller<'_>,
        checked: Result<Option<String>, Denied>,
    ) -> Result<Option<String>, Denied> {
        if let Err(denied) = &checked {
            if let Some(m) = &self.metrics {
                m.denied(denied.reason());
            }
            let user = match denied {
                Denied::Forbidden { user, .. } => user.as_str(),
                Denied::Unauthenticated(_) => "",
            };
            tracing::warn!(
                target: "tern::audit",
                rpc = caller.rpc,
                user,
                source = ?caller.source,
                reason = denied.reason(),
                detail = %denied,
                "request refused"
            );
        }
        checked
    }

    fn decide(
        &self,
        caller: &Caller<'_>,
        needs: &[Need],
        now: SystemTime,
    ) -> Result<Option<String>, Denied> {
        let Some(name) = self.authenticate(caller, now)? else {
            return Ok(None);
        };
        // Read again: the user may have been changed since.
        let Some(user) = self.registry.user(&name) else {
            return Err(Denied::Unauthenticated(format!(
                "unknown access key `{name}`"
            )));
        };
        for need in needs {
            if !user.may(need.kind, &need.name, need.any_of, caller.source) {
                return Err(Denied::Forbidden {
                    user: name,
                    kind: need.kind.as_str(),
                    name: need.name.clone(),
                    action: need
                        .any_of
                        .iter()
                        .map(|a| a.as_str())
                        .collect::<Vec<_>>()
                        .join(" or "),
                });
            }
        }
        Ok(Some(name))
    }

    /// Authenticates the caller and requires a super user (managing users
    /// and policies).
    fn decide_super(&self, caller: &Caller<'_>, now: SystemTime) -> Result<Option<String>, Denied> {
        let Some(name) = self.authenticate(caller, now)? else {
            return Ok(None);
        };
        match self.registry.user(&name) {
            Some(u) if u.kind() == UserKind::Super => Ok(Some(name)),
            _ => Err(Denied::Forbidden {
                user: name,
                kind: "users and policies",
                name: "*".into(),
                action: "manage".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::meta::acl::{Decision, Policy, User};

    fn access(enabled: bool) -> (tempfile::TempDir, Access) {
        let dir = tempfile::tempdir().unwrap();
        let registry = Arc::new(Registry::open(dir.path()).unwrap());
        registry
            .create_user(User::new("app", "app-secret", UserKind::Normal).unwrap())
            .unwrap();
        registry
            .grant(
                "app",
                Policy {
                    kind: ResourceKind::Topic,
                    pattern: "orders".parse().unwrap(),
                    actions: BTreeSet::from([Action::Pub]),
                    decision: Decision::Allow,
                    sources: Vec::new(),
                },
            )
            .unwrap();
        let cfg = AuthConfig {
            enabled,
            bootstrap: Some(("root".into(), "root-secret".into())),
            ..AuthConfig::default()
        };
        (dir, Access::new(cfg, registry, None).unwrap())
    }

    const DATE: &str = "20261203T211530Z";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn header(key: &str, secret: &str) -> String {
        format!(
            "MQv2-HMAC-SHA1 Credential={key}, SignedHeaders=x-mq-date-time, Signature={}",
            sign::signature(secret, DATE)
        )
    }

    #[test]
    fn signed_requests_of_known_users_within_the_skew_pass() {
        let (_d, a) = access(true);
        let now = at(1_796_332_530);
        let h = header("app", "app-secret");
        let caller = Caller {
            rpc: "test",
            authorization: Some(&h),
            date_time: Some(DATE),
            source: None,
        };
        let pub_orders = [Need::topic("orders", &[Action::Pub])];
        assert_eq!(a.check(&caller, &pub_orders, now), Ok(Some("app".into())));
        let sub = [Need::topic("orders", &[Action::Sub])];
        assert!(matches!(
            a.check(&caller, &sub, now),
            Err(Denied::Forbidden { .. })
        ));
        assert!(matches!(
            a.check_super(&caller, now),
            Err(Denied::Forbidden { .. })
        ));
        // Outside the skew, either way.
        for off in [at(1_796_332_530 + 901), at(1_796_332_530 - 901)] {
            assert!(matches!(
                a.check(&caller, &pub_orders, off),
                Err(Denied::Unauthenticated(_))
            ));
        }
        let wrong = header("app", "not-the-secret");
        let unknown = header("nobody", "app-secret");
        for h in [wrong.as_str(), unknown.as_str()] {
            let c = Caller {
                authorization: Some(h),
                ..caller
            };
            assert!(matches!(
                a.check(&c, &pub_orders, now),
                Err(Denied::Unauthenticated(_))
            ));
        }
        let missing = Caller::default();
        assert!(matches!(
            a.check(&missing, &pub_orders, now),
            Err(Denied::Unauthenticated(_))
        ));
        // The bootstrap super user may do anything.
        let root = header("root", "root-secret");
        let c = Caller {
            authorization: Some(&root),
            ..caller
        };
        assert_eq!(a.check(&c, &sub, now), Ok(Some("root".into())));
        assert_eq!(a.check_super(&c, now), Ok(Some("root".into())));
    }

    #[test]
    fn off_lets_everything_through() {
        let (_d, a) = access(false);
        let missing = Caller::default();
        let needs = [Need::group("g", &[Action::Sub])];
        assert_eq!(a.check(&missing, &needs, SystemTime::now()), Ok(None));
        assert_eq!(a.check_super(&missing, SystemTime::now()), Ok(None));
    }
}
