//! Where consumer groups stand: the offsets in the store (UpdateOffset,
//! and POP's committed offsets as last written), overridden by POP's live
//! state, whose first offset not yet done may not be written to the
//! store yet. Lag, the admin API and the metrics read them.

use std::collections::BTreeMap;

use super::Pop;
use crate::meta::Registry;

/// queue -> the first offset not yet done, by topic.
pub type Positions = BTreeMap<String, BTreeMap<u32, u64>>;

impl Pop {
    /// Where `group` stands in each queue it consumes, by topic.
    pub fn positions(&self, group: &str) -> Positions {
        let mut out = self.inner.store.group_offsets(group);
        for (g, topic) in self.subscriptions() {
            if g != group {
                continue;
            }
            let stats = self.stats(&g, &topic);
            out.entry(topic)
                .or_default()
                .extend(stats.iter().map(|s| (s.queue_id, s.committed_offset)));
        }
        out
    }

    /// Where every group of `registry` and every group POP has state for
    /// stands, in the topics `registry` has (the store keeps the offsets
    /// of deleted topics): (group, topic) -> queue -> the first offset not yet done.
    pub fn all_positions(
        &self,
        registry: &Registry,
    ) -> BTreeMap<(String, String), BTreeMap<u32, u64>> {
        let mut out = BTreeMap::new();
        for g in registry.groups() {
            let group = g.name().as_str();
            for (topic, queues) in self.inner.store.group_offsets(group) {
                if registry.has_topic(&topic) {
                    out.insert((group.to_owned(), topic), queues);
                }
            }
        }
        for (group, topic) in self.subscriptions() {
            let stats = self.stats(&group, &topic);
            out.entry((group, topic))
                .or_default()
                .extend(stats.iter().map(|s| (s.queue_id, s.committed_offset)));
        }
        out
    }
}
