//! `Topic` as a [`Managed`] resource.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use tern_model::TopicName;

use super::admin::BrokerAdmin;
use super::managed::{Managed, Synced};
use super::plan::{self, Action, BrokerTopic};
use crate::crd::{Topic, TopicStatus};
use crate::error::Result;

/// Label value of this controller in metrics.
pub const CONTROLLER: &str = "topic";

impl Topic {
    /// The topic the brokers should have.
    pub fn wanted(&self) -> BrokerTopic {
        BrokerTopic {
            name: self.topic_name().to_owned(),
            queues: self.spec.queues,
            message_type: self.spec.message_type,
            permission: self.spec.permission,
        }
    }
}

impl Managed for Topic {
    const CONTROLLER: &'static str = CONTROLLER;
    const FINALIZER: &'static str = "tern.dev/topic";

    fn cluster_name(&self) -> &str {
        &self.spec.cluster_ref.name
    }

    fn broker_name(&self) -> &str {
        self.topic_name()
    }

    fn check_name(&self) -> Result<(), String> {
        TopicName::new(self.topic_name())
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn conditions(&self) -> &[Condition] {
        self.status.as_ref().map_or(&[], |s| &s.conditions)
    }

    async fn sync<A: BrokerAdmin>(&self, admin: &A, endpoint: &str) -> Result<Synced> {
        let want = self.wanted();
        let have = admin.describe_topic(endpoint, &want.name).await?;
        let p = plan::plan_topic(&want, have.as_ref());
        match &p.action {
            Action::Create => admin.create_topic(endpoint, &want).await?,
            Action::Update(_) => {
                // A refused shrink keeps the broker's queue count (0 = keep).
                let queues = if p.shrink_refused.is_some() {
                    0
                } else {
                    want.queues
                };
                admin
                    .update_topic(
                        endpoint,
                        &BrokerTopic {
                            queues,
                            ..want.clone()
                        },
                    )
                    .await?;
            }
            Action::InSync => {}
        }
        let not_supported = p.shrink_refused.map(|(have, want)| {
            format!(
                "queues cannot shrink: the brokers have {have} queues and the spec asks for {want}; \
                 removing queues would lose their messages, so the brokers keep {have}"
            )
        });
        Ok(Synced {
            action: p.action,
            not_supported,
        })
    }

    async fn remove<A: BrokerAdmin>(&self, admin: &A, endpoint: &str) -> Result<()> {
        admin.delete_topic(endpoint, self.topic_name()).await
    }

    fn status(&self, conditions: Vec<Condition>, synced: i32) -> Result<serde_json::Value> {
        let status = TopicStatus {
            observed_generation: self.metadata.generation,
            conditions,
            topic_name: Some(self.topic_name().to_owned()),
            synced_broker_groups: synced,
        };
        Ok(serde_json::to_value(status)?)
    }
}
