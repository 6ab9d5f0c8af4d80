//! `ConsumerGroup` as a [`Managed`] resource.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use tern_model::GroupName;

use super::admin::BrokerAdmin;
use super::managed::{Managed, Synced};
use super::plan::{self, Action, BrokerGroup};
use crate::crd::{ConsumerGroup, ConsumerGroupStatus};
use crate::error::Result;

/// Label value of this controller in metrics.
pub const CONTROLLER: &str = "consumergroup";

impl ConsumerGroup {
    /// The group the brokers should have.
    pub fn wanted(&self) -> BrokerGroup {
        BrokerGroup {
            name: self.group_name().to_owned(),
            fifo: self.spec.fifo,
            max_retries: self.spec.retry_policy.max_retries,
        }
    }
}

impl Managed for ConsumerGroup {
    const CONTROLLER: &'static str = CONTROLLER;
    const FINALIZER: &'static str = "tern.dev/consumer-group";

    fn cluster_name(&self) -> &str {
        &self.spec.cluster_ref.name
    }

    fn broker_name(&self) -> &str {
        self.group_name()
    }

    fn check_name(&self) -> Result<(), String> {
        GroupName::new(self.group_name())
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn conditions(&self) -> &[Condition] {
        self.status.as_ref().map_or(&[], |s| &s.conditions)
    }

    async fn sync<A: BrokerAdmin>(&self, admin: &A, endpoint: &str) -> Result<Synced> {
        let want = self.wanted();
        let have = admin.describe_group(endpoint, &want.name).await?;
        let action = plan::plan_group(&want, have.as_ref());
        match &action {
            Action::Create => admin.create_group(endpoint, &want).await?,
            Action::Update(_) => admin.update_group(endpoint, &want).await?,
            Action::InSync => {}
        }
        Ok(Synced {
            action,
            not_supported: None,
        })
    }

    async fn remove<A: BrokerAdmin>(&self, admin: &A, endpoint: &str) -> Result<()> {
        admin.delete_group(endpoint, self.group_name()).await
    }

    fn status(&self, conditions: Vec<Condition>, synced: i32) -> Result<serde_json::Value> {
        let status = ConsumerGroupStatus {
            observed_generation: self.metadata.generation,
            conditions,
            group_name: Some(self.group_name().to_owned()),
            synced_broker_groups: synced,
        };
        Ok(serde_json::to_value(status)?)
    }
}
