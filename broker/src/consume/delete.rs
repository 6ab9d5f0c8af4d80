//! Deleting a topic or a consumer group: the registry entry, and what the
//! broker kept for it in memory, which would otherwise stay until a
//! restart (and grow with every topic or group ever made): the wake-up
//! channels of its long polls (which are woken and end), the consumption
//! state of every group in it (`Pop::forget_topic`, `Pop::forget_group`)
//! and its metric series. Stored messages stay until retention removes
//! them, and committed offsets stay in the store, so a topic or group
//! made again under the same name goes on where the old one stood.

use std::sync::Arc;

use super::Consume;
use crate::error::Result;
use crate::meta::{GroupConfig, TopicConfig};
use crate::task::blocking;

impl Consume {
    /// Deletes topic `name`; returns its config.
    pub async fn delete_topic(&self, name: String) -> Result<TopicConfig> {
        let registry = Arc::clone(&self.registry);
        let topic = name.clone();
        let old = blocking(move || registry.delete_topic(&topic)).await?;
        self.wakers.forget_topic(&name);
        let subs = self.pop.forget_topic(&name);
        let groups = self.registry.groups();
        self.metrics
            .forget_topic(&name, groups.iter().map(|g| g.name().as_str()));
        tracing::debug!(topic = %name, subscriptions = subs, "topic deleted and forgotten");
        Ok(old)
    }

    /// Deletes consumer group `name`; returns its config.
    pub async fn delete_group(&self, name: String) -> Result<GroupConfig> {
        let registry = Arc::clone(&self.registry);
        let group = name.clone();
        let old = blocking(move || registry.delete_group(&group)).await?;
        self.wakers.forget_group(&name);
        let subs = self.pop.forget_group(&name);
        let topics = self.registry.topics();
        self.metrics
            .forget_group(&name, topics.iter().map(|t| t.name().as_str()));
        tracing::debug!(group = %name, subscriptions = subs, "group deleted and forgotten");
        Ok(old)
    }
}
