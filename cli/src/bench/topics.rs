//! The topics of a run and where their load goes: with `--topics N` the
//! run drives `<topic>-0` .. `<topic>-<N-1>`, each with its own route.
//! Here: the names, the route lookups (concurrent, bounded), and how the
//! queues of all topics are spread over the producer's connections and
//! the consumers' receive loops.

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use futures::StreamExt as _;
use tern_client::TopicName;

use super::wire::{self, Client, ReadTarget, Route};

/// QueryRoute calls in flight while looking up the routes of many topics.
const ROUTE_LOOKUPS_IN_FLIGHT: usize = 64;

/// The topics of a run: `base` alone when `n` is 1, else `base-0` ..
/// `base-<n-1>` (decimal, not zero-padded).
pub(super) fn names(base: &TopicName, n: u32) -> anyhow::Result<Vec<TopicName>> {
    if n <= 1 {
        return Ok(vec![base.clone()]);
    }
    (0..n)
        .map(|i| {
            let name = format!("{base}-{i}");
            TopicName::new(&name)
                .map_err(|e| anyhow!("--topics {n}: topic name {name:?} is not valid: {e}"))
        })
        .collect()
}

/// The routes of `topics` at `address` over `client`, in the order of
/// `topics`, looked up with up to [`ROUTE_LOOKUPS_IN_FLIGHT`] calls at
/// once; the first failure (say, a topic that does not exist) ends it.
pub(super) async fn routes(
    client: &Client,
    address: &str,
    topics: &[TopicName],
    timeout: Duration,
) -> anyhow::Result<Vec<Route>> {
    let lookups = topics.iter().map(|topic| {
        let mut client = client.clone();
        async move { wire::query_route(&mut client, address, topic, timeout).await }
    });
    let mut results = futures::stream::iter(lookups).buffered(ROUTE_LOOKUPS_IN_FLIGHT);
    let mut routes = Vec::with_capacity(topics.len());
    while let Some(route) = results.next().await {
        let route = if topics.len() > 1 {
            route.with_context(|| {
                format!(
                    "looking up the routes of {} topics ({} .. {})",
                    topics.len(),
                    topics[0],
                    topics[topics.len() - 1]
                )
            })?
        } else {
            route?
        };
        routes.push(route);
    }
    Ok(routes)
}

/// Where one SendMessage goes: a topic (its index in the run's topics)
/// and one of its queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SendTarget {
    pub topic: usize,
    pub queue: i32,
}

/// Where one receive loop receives from: a topic (its index) on a
/// broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ReceiveTarget {
    pub topic: usize,
    pub read: ReadTarget,
}

/// The routes of every topic, and what the load tasks make of them.
#[derive(Debug)]
pub(super) struct Layout {
    pub routes: Vec<Route>,
}

/// The addresses in first-seen order, each once.
fn distinct<'a>(addresses: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in addresses {
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    out
}

impl Layout {
    /// Brokers with writable queues of any topic, by address, in route
    /// order.
    pub(super) fn writable_addresses(&self) -> Vec<String> {
        distinct(
            self.routes
                .iter()
                .flat_map(|r| &r.writable)
                .map(|w| &w.address),
        )
    }

    /// Brokers with readable queues of any topic, by address.
    pub(super) fn readable_addresses(&self) -> Vec<String> {
        distinct(
            self.routes
                .iter()
                .flat_map(|r| &r.readable)
                .map(|r| &r.address),
        )
    }

    /// Readable brokers (name and address) of any topic.
    pub(super) fn readable_brokers(&self) -> usize {
        let mut seen: Vec<&ReadTarget> = Vec::new();
        for r in self.routes.iter().flat_map(|r| &r.readable) {
            if !seen.contains(&r) {
                seen.push(r);
            }
        }
        seen.len()
    }

    /// Writable queues of all topics.
    pub(super) fn writable_queues(&self) -> usize {
        self.routes.iter().map(Route::writable_queues).sum()
    }

    /// Readable queues of all topics.
    pub(super) fn readable_queues(&self) -> usize {
        self.routes.iter().map(|r| r.readable_queues).sum()
    }

    /// The writable queues of every topic on the broker at `address`, in
    /// the order the sends take them: the first queue of each topic, then
    /// the second of each, and so on, so that consecutive sends go to
    /// different topics.
    pub(super) fn send_targets(&self, address: &str) -> Vec<SendTarget> {
        let queues: Vec<&[i32]> = self
            .routes
            .iter()
            .map(|r| {
                r.writable
                    .iter()
                    .find(|w| w.address == address)
                    .map_or(&[][..], |w| &w.queues[..])
            })
            .collect();
        let rounds = queues.iter().map(|q| q.len()).max().unwrap_or(0);
        let mut out = Vec::new();
        for k in 0..rounds {
            for (topic, q) in queues.iter().enumerate() {
                if let Some(&queue) = q.get(k) {
                    out.push(SendTarget { topic, queue });
                }
            }
        }
        out
    }

    /// Every (topic, readable broker) pair, split among `receivers` loops:
    /// loop `r` gets pairs `r`, `r + receivers`, ... With fewer pairs
    /// than loops, several loops share a pair (loop `r` takes pair
    /// `r mod pairs`).
    pub(super) fn receive_shares(&self, receivers: usize) -> Vec<Vec<ReceiveTarget>> {
        let pairs: Vec<ReceiveTarget> = self
            .routes
            .iter()
            .enumerate()
            .flat_map(|(topic, r)| {
                r.readable.iter().map(move |read| ReceiveTarget {
                    topic,
                    read: read.clone(),
                })
            })
            .collect();
        let mut shares = vec![Vec::new(); receivers];
        if pairs.is_empty() || receivers == 0 {
            return shares;
        }
        for k in 0..pairs.len().max(receivers) {
            shares[k % receivers].push(pairs[k % pairs.len()].clone());
        }
        shares
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::bench::wire::WriteTarget;

    fn route(address: &str, queues: &[i32]) -> Route {
        Route {
            writable: vec![WriteTarget {
                address: address.into(),
                queues: queues.to_vec(),
            }],
            readable: vec![ReadTarget {
                address: address.into(),
                broker: format!("b-{address}"),
            }],
            readable_queues: queues.len(),
        }
    }

    #[test]
    fn names_are_numbered_from_zero() {
        let base = TopicName::new("bench").unwrap();
        let one: Vec<String> = names(&base, 1)
            .unwrap()
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(one, ["bench"]);
        let three: Vec<String> = names(&base, 3)
            .unwrap()
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(three, ["bench-0", "bench-1", "bench-2"]);
        let long = TopicName::new("x".repeat(125)).unwrap();
        assert!(names(&long, 100).is_err());
    }

    #[test]
    fn sends_alternate_between_topics() {
        let layout = Layout {
            routes: vec![route("a", &[0, 1]), route("a", &[0]), route("b", &[0, 1])],
        };
        assert_eq!(layout.writable_addresses(), ["a", "b"]);
        assert_eq!(layout.writable_queues(), 5);
        let t = |topic, queue| SendTarget { topic, queue };
        assert_eq!(layout.send_targets("a"), [t(0, 0), t(1, 0), t(0, 1)]);
        assert_eq!(layout.send_targets("b"), [t(2, 0), t(2, 1)]);
    }

    #[test]
    fn receive_loops_share_the_topics() {
        let layout = Layout {
            routes: vec![route("a", &[0]), route("a", &[0]), route("a", &[0])],
        };
        let topics = |s: &Vec<ReceiveTarget>| s.iter().map(|t| t.topic).collect::<Vec<_>>();
        let shares = layout.receive_shares(2);
        assert_eq!(topics(&shares[0]), [0, 2]);
        assert_eq!(topics(&shares[1]), [1]);
        // More loops than topics: every loop gets one, some the same.
        let shares = layout.receive_shares(4);
        let all: Vec<_> = shares.iter().map(topics).collect();
        assert_eq!(all, [vec![0], vec![1], vec![2], vec![0]]);
        assert_eq!(layout.readable_brokers(), 1);
        assert_eq!(layout.readable_queues(), 3);
    }
}
