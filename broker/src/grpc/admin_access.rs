//! Who may call each `TernAdmin` RPC, and the audit line of each change.
//!
//! With checks on ([`crate::auth::Access`]), a topic or group RPC needs the
//! action it is named after on the resource it names: create, update,
//! delete; describe (with a group's lag) needs get. Listing, and the
//! cluster status (which counts every topic), need the list action on
//! the pattern `*`: the need is for the name `*`, which only a rule with
//! the pattern `*` covers (`orders*` does not list every topic). Message
//! lookups need get on the topic of the messages. Users and access rules
//! need a super user ([`Access::check_super`]).
//!
//! Refusals are gRPC statuses: UNAUTHENTICATED, PERMISSION_DENIED.

use std::net::IpAddr;
use std::time::SystemTime;

use tonic::{Request, Status};

use super::access::{caller, grpc_status};
use super::admin::Admin;
use crate::auth::Need;
use crate::meta::acl::Action;

pub(super) const CREATE: &[Action] = &[Action::Create];
pub(super) const UPDATE: &[Action] = &[Action::Update];
pub(super) const DELETE: &[Action] = &[Action::Delete];
pub(super) const GET: &[Action] = &[Action::Get];
pub(super) const LIST: &[Action] = &[Action::List];

/// The name a list needs its action on: only the pattern `*` covers it.
pub(super) const EVERY: &str = "*";

/// A caller let through: who (none when checks are off) and from where.
#[derive(Debug, Clone)]
pub(super) struct Admitted {
    pub user: Option<String>,
    pub source: Option<IpAddr>,
    pub rpc: &'static str,
}

impl Admitted {
    /// Logs a change the caller made to `target` (target `tern::audit`).
    pub(super) fn audit(&self, target: &str) {
        tracing::info!(
            target: "tern::audit",
            user = self.user.as_deref().unwrap_or(""),
            source = ?self.source,
            rpc = self.rpc,
            target,
            "admin change"
        );
    }
}

impl Admin {
    /// Checks `req`'s caller against `needs`.
    pub(super) fn admit<T>(
        &self,
        req: &Request<T>,
        rpc: &'static str,
        needs: &[Need],
    ) -> Result<Admitted, Status> {
        let caller = caller(req, rpc);
        let user = self
            .access
            .check(&caller, needs, SystemTime::now())
            .map_err(|d| grpc_status(&d))?;
        Ok(Admitted {
            user,
            source: caller.source,
            rpc,
        })
    }

    /// Checks that `req`'s caller is a super user (when checks are on).
    pub(super) fn admit_super<T>(
        &self,
        req: &Request<T>,
        rpc: &'static str,
    ) -> Result<Admitted, Status> {
        let caller = caller(req, rpc);
        let user = self
            .access
            .check_super(&caller, SystemTime::now())
            .map_err(|d| grpc_status(&d))?;
        Ok(Admitted {
            user,
            source: caller.source,
            rpc,
        })
    }
}

/// `actions` on the topic `name`.
pub(super) fn topic(name: &str, actions: &'static [Action]) -> Vec<Need> {
    vec![Need::topic(name, actions)]
}

/// `actions` on the group `name`.
pub(super) fn group(name: &str, actions: &'static [Action]) -> Vec<Need> {
    vec![Need::group(name, actions)]
}
