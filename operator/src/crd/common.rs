//! Types shared by the three custom resources.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// A reference to the `BrokerCluster` a `Topic` or `ConsumerGroup` belongs
/// to. The cluster lives in the same namespace as the referring resource.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRef {
    /// Name of the `BrokerCluster`, in the same namespace.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
}

/// Condition type: the resource is in the state its spec asks for.
pub const READY: &str = "Ready";
/// Condition type: the operator is moving the resource towards its spec.
pub const PROGRESSING: &str = "Progressing";
/// Condition type: something the operator cannot fix by itself is wrong.
pub const DEGRADED: &str = "Degraded";

/// A condition as the operator wants it; [`merge_condition`] turns it into
/// a `metav1.Condition`, keeping the transition time when nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// `Ready`, `Progressing` or `Degraded`.
    pub type_: &'static str,
    /// Whether the condition holds.
    pub status: bool,
    /// A CamelCase reason, stable for tooling.
    pub reason: &'static str,
    /// A sentence for people.
    pub message: String,
}

impl Wanted {
    /// A condition that holds.
    pub fn yes(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status: true,
            reason,
            message: message.into(),
        }
    }

    /// A condition that does not hold.
    pub fn no(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status: false,
            reason,
            message: message.into(),
        }
    }
}

/// Builds the new condition list: each wanted condition replaces the one
/// of its type, keeping `lastTransitionTime` when its status did not
/// change; conditions of other types are kept as they are.
pub fn merge_conditions(
    old: &[Condition],
    wanted: &[Wanted],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = old
        .iter()
        .filter(|c| !wanted.iter().any(|w| w.type_ == c.type_))
        .cloned()
        .collect();
    for w in wanted {
        let status = if w.status { "True" } else { "False" };
        let since = old
            .iter()
            .find(|c| c.type_ == w.type_ && c.status == status)
            .map_or(Time(now), |c| c.last_transition_time.clone());
        out.push(Condition {
            type_: w.type_.to_owned(),
            status: status.to_owned(),
            reason: w.reason.to_owned(),
            message: w.message.clone(),
            observed_generation: generation,
            last_transition_time: since,
        });
    }
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

/// The status of the condition of `type_`, if present.
pub fn condition_status<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).expect("a valid timestamp")
    }

    #[test]
    fn transition_time_moves_only_when_the_status_changes() {
        let first = merge_conditions(&[], &[Wanted::no(READY, "Creating", "x")], Some(1), at(10));
        assert_eq!(first[0].last_transition_time, Time(at(10)));
        let same = merge_conditions(
            &first,
            &[Wanted::no(READY, "Waiting", "y")],
            Some(2),
            at(20),
        );
        assert_eq!(same[0].last_transition_time, Time(at(10)));
        assert_eq!(same[0].reason, "Waiting");
        assert_eq!(same[0].observed_generation, Some(2));
        let flipped = merge_conditions(&same, &[Wanted::yes(READY, "Ready", "z")], Some(2), at(30));
        assert_eq!(flipped[0].last_transition_time, Time(at(30)));
        assert_eq!(flipped[0].status, "True");
    }

    #[test]
    fn other_condition_types_are_kept_and_the_list_is_sorted() {
        let old = merge_conditions(&[], &[Wanted::yes(DEGRADED, "X", "")], None, at(1));
        let new = merge_conditions(&old, &[Wanted::yes(READY, "Ready", "")], None, at(2));
        let types: Vec<_> = new.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Degraded", "Ready"]);
    }
}
