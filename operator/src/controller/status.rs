//! The conditions of a `BrokerCluster`, decided from what the controller
//! saw. Pure: the controller gathers an [`Observed`] and writes the result.

use crate::crd::common::{DEGRADED, PROGRESSING, READY, Wanted};

/// Condition reasons of a `BrokerCluster`.
pub mod reason {
    /// Ready: every name server and broker group is ready.
    pub const CLUSTER_READY: &str = "ClusterReady";
    /// Ready false: name servers are missing or not ready.
    pub const NAMESERVERS_NOT_READY: &str = "NameserversNotReady";
    /// Ready false: broker groups are missing, rolling or not ready.
    pub const BROKERS_NOT_READY: &str = "BrokerGroupsNotReady";
    /// Progressing: a group is being created or rolled.
    pub const ROLLING_OUT: &str = "RollingOut";
    /// Progressing false: nothing left to do.
    pub const ROLLOUT_COMPLETE: &str = "RolloutComplete";
    /// Progressing false: the pause annotation is set.
    pub const PAUSED: &str = "ReconciliationPaused";
    /// Degraded: fewer groups were asked for than exist.
    pub const SCALE_DOWN_REFUSED: &str = "ScaleDownRefused";
    /// Degraded: the last reconcile failed.
    pub const RECONCILE_FAILED: &str = "ReconcileFailed";
    /// Degraded false.
    pub const AS_EXPECTED: &str = "AsExpected";
}

/// What the controller saw of a cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// The pause annotation is set.
    pub paused: bool,
    /// Name servers asked for.
    pub nameservers_wanted: i32,
    /// Name servers ready.
    pub nameservers_ready: i32,
    /// Broker groups asked for.
    pub groups_wanted: i32,
    /// Wanted broker groups that are ready and up to date.
    pub groups_ready: i32,
    /// Out-of-date groups waiting for their turn to roll.
    pub groups_waiting: usize,
    /// Existing groups beyond the wanted count.
    pub surplus: Vec<i32>,
    /// Why the last reconcile failed, if it did.
    pub error: Option<String>,
}

/// The `Ready`, `Progressing` and `Degraded` conditions for `o`.
pub fn conditions(o: &Observed) -> Vec<Wanted> {
    use reason::*;
    let ns_ok = o.nameservers_ready >= o.nameservers_wanted;
    let groups_ok = o.groups_ready >= o.groups_wanted;
    let ready = if !ns_ok {
        Wanted::no(
            READY,
            NAMESERVERS_NOT_READY,
            format!(
                "{} of {} name servers ready",
                o.nameservers_ready, o.nameservers_wanted
            ),
        )
    } else if !groups_ok {
        Wanted::no(
            READY,
            BROKERS_NOT_READY,
            format!(
                "{} of {} broker groups ready",
                o.groups_ready, o.groups_wanted
            ),
        )
    } else {
        Wanted::yes(
            READY,
            CLUSTER_READY,
            "every name server and broker group is ready",
        )
    };

    let progressing = if o.paused {
        Wanted::no(
            PROGRESSING,
            PAUSED,
            "the annotation tern.dev/paused is \"true\": nothing is changed",
        )
    } else if !ns_ok || !groups_ok || o.groups_waiting > 0 {
        Wanted::yes(
            PROGRESSING,
            ROLLING_OUT,
            format!(
                "{} of {} broker groups ready, {} waiting to roll one at a time",
                o.groups_ready, o.groups_wanted, o.groups_waiting
            ),
        )
    } else {
        Wanted::no(
            PROGRESSING,
            ROLLOUT_COMPLETE,
            "the cluster matches its spec",
        )
    };

    let degraded = if let Some(e) = &o.error {
        Wanted::yes(DEGRADED, RECONCILE_FAILED, e.clone())
    } else if !o.surplus.is_empty() {
        let list: Vec<String> = o.surplus.iter().map(i32::to_string).collect();
        Wanted::yes(
            DEGRADED,
            SCALE_DOWN_REFUSED,
            format!(
                "spec.broker.groups is {} but broker groups {} still exist; they are kept, because \
                 removing a group before it is drained would lose its messages and draining is not \
                 implemented yet",
                o.groups_wanted,
                list.join(", ")
            ),
        )
    } else {
        Wanted::no(DEGRADED, AS_EXPECTED, "no problem found")
    };
    vec![ready, progressing, degraded]
}

#[cfg(test)]
mod tests {
    use super::reason::*;
    use super::*;

    fn healthy() -> Observed {
        Observed {
            nameservers_wanted: 2,
            nameservers_ready: 2,
            groups_wanted: 3,
            groups_ready: 3,
            ..Observed::default()
        }
    }

    fn find(c: &[Wanted], t: &str) -> Wanted {
        c.iter()
            .find(|w| w.type_ == t)
            .cloned()
            .expect("the condition is present")
    }

    #[test]
    fn a_healthy_cluster_is_ready_and_settled() {
        let c = conditions(&healthy());
        assert_eq!(
            (find(&c, READY).status, find(&c, READY).reason),
            (true, CLUSTER_READY)
        );
        assert_eq!(find(&c, PROGRESSING).reason, ROLLOUT_COMPLETE);
        assert!(!find(&c, PROGRESSING).status);
        assert!(!find(&c, DEGRADED).status);
    }

    #[test]
    fn missing_name_servers_come_first() {
        let c = conditions(&Observed {
            nameservers_ready: 1,
            groups_ready: 0,
            ..healthy()
        });
        assert_eq!(find(&c, READY).reason, NAMESERVERS_NOT_READY);
        assert_eq!(find(&c, READY).message, "1 of 2 name servers ready");
        assert!(find(&c, PROGRESSING).status);
    }

    #[test]
    fn a_rolling_update_is_progressing_and_not_ready() {
        let c = conditions(&Observed {
            groups_ready: 2,
            groups_waiting: 1,
            ..healthy()
        });
        assert_eq!(find(&c, READY).reason, BROKERS_NOT_READY);
        let p = find(&c, PROGRESSING);
        assert_eq!((p.status, p.reason), (true, ROLLING_OUT));
        assert!(p.message.contains("1 waiting"), "{}", p.message);
    }

    #[test]
    fn a_refused_scale_down_is_degraded_but_ready() {
        let c = conditions(&Observed {
            surplus: vec![3, 4],
            ..healthy()
        });
        let d = find(&c, DEGRADED);
        assert_eq!((d.status, d.reason), (true, SCALE_DOWN_REFUSED));
        assert!(
            d.message.contains("groups 3, 4 still exist"),
            "{}",
            d.message
        );
        assert!(find(&c, READY).status);
    }

    #[test]
    fn pause_and_errors_show() {
        let c = conditions(&Observed {
            paused: true,
            error: Some("boom".to_owned()),
            ..healthy()
        });
        assert_eq!(find(&c, PROGRESSING).reason, PAUSED);
        assert_eq!(find(&c, DEGRADED).reason, RECONCILE_FAILED);
        assert_eq!(find(&c, DEGRADED).message, "boom");
    }
}
