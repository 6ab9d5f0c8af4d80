//! How far behind a consumer group is, per topic and queue.

use super::Consume;

/// Where a group stands in one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueLag {
    pub queue_id: u32,
    /// The offset the next message of the queue will get.
    pub broker_offset: u64,
    /// The group's first offset not yet done.
    pub consumer_offset: u64,
    /// Messages stored and not yet done by the group.
    pub lag: u64,
    /// Messages delivered and not yet acknowledged.
    pub in_flight: u64,
    /// FIFO messages held back behind an earlier one of their group.
    pub held: u64,
}

/// Where a group stands in the queues of one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicLag {
    pub topic: String,
    pub queues: Vec<QueueLag>,
}

impl Consume {
    /// Where `group` stands in each queue it consumes, by topic.
    pub fn lag(&self, group: &str) -> Vec<TopicLag> {
        self.pop
            .positions(group)
            .into_iter()
            .map(|(topic, offsets)| {
                let stats = self.pop.stats(group, &topic);
                let queues = offsets
                    .into_iter()
                    .map(|(q, committed)| {
                        let (_, max) = self.store.queue_range(&topic, q);
                        let (in_flight, held) = stats
                            .iter()
                            .find(|s| s.queue_id == q)
                            .map_or((0, 0), |s| (s.in_flight as u64, s.held as u64));
                        QueueLag {
                            queue_id: q,
                            broker_offset: max,
                            consumer_offset: committed,
                            lag: max.saturating_sub(committed),
                            in_flight,
                            held,
                        }
                    })
                    .collect();
                TopicLag { topic, queues }
            })
            .collect()
    }
}
