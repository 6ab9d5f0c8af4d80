//! Which broker groups may take their new pod template now.
//!
//! Every group is its own StatefulSet, so a change to the spec would roll
//! all groups at once if applied everywhere. Instead the controller applies
//! the new template to one group at a time and waits until that group is
//! ready before the next: at most one group is ever restarting. Groups that
//! are not ready go first (like Strimzi's roller), since they serve nothing
//! anyway. New groups are created at once; groups beyond the desired count
//! are never deleted here (see [`Plan::surplus`]).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;

use crate::build::names::{ANNOTATION_TEMPLATE_HASH, LABEL_BROKER_GROUP};

/// What the controller saw of one broker group's StatefulSet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupState {
    /// The `tern.dev/template-hash` it was last applied with.
    pub template_hash: Option<String>,
    /// All its pods run its current template and are ready.
    pub ready: bool,
}

impl GroupState {
    /// Reads the group index and state of a broker StatefulSet; `None` for
    /// a StatefulSet without a valid group label.
    pub fn from_stateful_set(sts: &StatefulSet) -> Option<(i32, Self)> {
        let group = sts
            .metadata
            .labels
            .as_ref()?
            .get(LABEL_BROKER_GROUP)?
            .parse()
            .ok()?;
        let template_hash = sts
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_TEMPLATE_HASH))
            .cloned();
        Some((
            group,
            Self {
                template_hash,
                ready: stateful_set_ready(sts),
            },
        ))
    }
}

/// The StatefulSet controller has seen the latest spec, every replica runs
/// the latest revision and is ready.
pub fn stateful_set_ready(sts: &StatefulSet) -> bool {
    let (Some(spec), Some(status)) = (sts.spec.as_ref(), sts.status.as_ref()) else {
        return false;
    };
    let want = spec.replicas.unwrap_or(1);
    let seen = status.observed_generation.unwrap_or(0) >= sts.metadata.generation.unwrap_or(0);
    let same_revision =
        status.update_revision.is_none() || status.current_revision == status.update_revision;
    seen && same_revision
        && status.replicas == want
        && status.updated_replicas.unwrap_or(0) == want
        && status.ready_replicas.unwrap_or(0) == want
}

/// The outcome of [`plan`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Groups whose objects are applied now (new ones, the ones already up
    /// to date, and at most one that starts rolling).
    pub apply: Vec<i32>,
    /// The group that starts rolling in this pass, if any.
    pub rolling: Option<i32>,
    /// Out-of-date groups waiting for their turn.
    pub waiting: Vec<i32>,
    /// Groups that exist but are beyond the desired count.
    pub surplus: Vec<i32>,
}

/// Decides which groups to apply. `desired` holds each wanted group with
/// the hash of its desired template; `observed` the existing groups.
pub fn plan(desired: &[(i32, String)], observed: &BTreeMap<i32, GroupState>) -> Plan {
    let mut out = Plan::default();
    let mut stale = Vec::new();
    let mut in_flight = false;
    for (group, hash) in desired {
        match observed.get(group) {
            None => out.apply.push(*group),
            Some(s) if s.template_hash.as_ref() == Some(hash) => {
                in_flight |= !s.ready;
                out.apply.push(*group);
            }
            Some(s) => stale.push((*group, s.ready)),
        }
    }
    if !in_flight {
        // Unready groups first, then by index.
        let next = stale
            .iter()
            .min_by_key(|(g, ready)| (*ready, *g))
            .map(|(g, _)| *g);
        if let Some(g) = next {
            out.apply.push(g);
            out.rolling = Some(g);
        }
    }
    out.waiting = stale
        .iter()
        .map(|(g, _)| *g)
        .filter(|g| Some(*g) != out.rolling)
        .collect();
    out.apply.sort_unstable();
    let count = i32::try_from(desired.len()).unwrap_or(i32::MAX);
    out.surplus = observed.keys().copied().filter(|g| *g >= count).collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(hashes: &[&str]) -> Vec<(i32, String)> {
        hashes
            .iter()
            .enumerate()
            .map(|(g, h)| (g as i32, (*h).to_owned()))
            .collect()
    }

    fn seen(states: &[(&str, bool)]) -> BTreeMap<i32, GroupState> {
        states
            .iter()
            .enumerate()
            .map(|(g, (h, ready))| {
                (
                    g as i32,
                    GroupState {
                        template_hash: Some((*h).to_owned()),
                        ready: *ready,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_new_cluster_creates_every_group_at_once() {
        let p = plan(&want(&["a", "a", "a"]), &BTreeMap::new());
        assert_eq!(p.apply, [0, 1, 2]);
        assert_eq!(p.rolling, None);
    }

    #[test]
    fn a_change_rolls_one_group_at_a_time() {
        let p = plan(
            &want(&["b", "b", "b"]),
            &seen(&[("a", true), ("a", true), ("a", true)]),
        );
        assert_eq!(
            (p.apply.clone(), p.rolling, p.waiting.clone()),
            (vec![0], Some(0), vec![1, 2])
        );
        // Group 0 took the new template but is not ready yet: nobody else moves.
        let p = plan(
            &want(&["b", "b", "b"]),
            &seen(&[("b", false), ("a", true), ("a", true)]),
        );
        assert_eq!(
            (p.apply.clone(), p.rolling, p.waiting.clone()),
            (vec![0], None, vec![1, 2])
        );
        // Group 0 is ready: group 1 goes.
        let p = plan(
            &want(&["b", "b", "b"]),
            &seen(&[("b", true), ("a", true), ("a", true)]),
        );
        assert_eq!(
            (p.apply, p.rolling, p.waiting),
            (vec![0, 1], Some(1), vec![2])
        );
    }

    #[test]
    fn unready_groups_roll_first() {
        let p = plan(
            &want(&["b", "b", "b"]),
            &seen(&[("a", true), ("a", true), ("a", false)]),
        );
        assert_eq!(p.rolling, Some(2));
        assert_eq!(p.waiting, [0, 1]);
    }

    #[test]
    fn an_up_to_date_cluster_applies_everything_and_rolls_nothing() {
        let p = plan(&want(&["a", "a"]), &seen(&[("a", true), ("a", true)]));
        assert_eq!(
            p,
            Plan {
                apply: vec![0, 1],
                ..Plan::default()
            }
        );
    }

    #[test]
    fn groups_beyond_the_count_are_surplus_and_left_alone() {
        let p = plan(
            &want(&["a"]),
            &seen(&[("a", true), ("a", true), ("a", true)]),
        );
        assert_eq!(p.apply, [0]);
        assert_eq!(p.surplus, [1, 2]);
    }

    #[test]
    fn growing_creates_new_groups_while_a_roll_is_in_flight() {
        let mut observed = seen(&[("b", false)]);
        observed.insert(
            1,
            GroupState {
                template_hash: Some("a".to_owned()),
                ready: true,
            },
        );
        let p = plan(&want(&["b", "b", "b"]), &observed);
        assert_eq!(p.apply, [0, 2]);
        assert_eq!(p.waiting, [1]);
    }
}
