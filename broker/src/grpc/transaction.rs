//! Transactional messages at the edge: EndTransaction, and the
//! transaction checks pushed to producers on their Telemetry streams (the
//! decisions are in [`crate::produce`] and [`crate::txn`]).

use tern_protocol::v2::telemetry_command::Command;
use tern_protocol::v2::{
    Code, EndTransactionRequest, RecoverOrphanedTransactionCommand, Status, TelemetryCommand,
    TransactionResolution, TransactionSource,
};

use super::Messaging;
use super::convert::{stored_message_out, topic_name};
use super::status::{Client, ok};
use crate::txn::{Check, Resolution};

impl Messaging {
    /// EndTransaction: COMMIT delivers the half message to its topic,
    /// ROLLBACK discards it.
    pub(super) async fn end_transaction_status(
        &self,
        c: &Client,
        req: EndTransactionRequest,
    ) -> Status {
        let topic = match topic_name(c, req.topic.as_ref()) {
            Ok(t) => t,
            Err(s) => return s,
        };
        let resolution = match TransactionResolution::try_from(req.resolution) {
            Ok(TransactionResolution::Commit) => Resolution::Commit,
            Ok(TransactionResolution::Rollback) => Resolution::Rollback,
            _ => {
                return c.status(
                    Code::BadRequest,
                    format!(
                        "transaction resolution {} is neither COMMIT nor ROLLBACK",
                        req.resolution
                    ),
                );
            }
        };
        let id = &req.transaction_id;
        let ended = self
            .shared
            .produce
            .end_transaction(&topic, &req.message_id, id, resolution)
            .await;
        match ended {
            Ok(()) => {
                let source = TransactionSource::try_from(req.source).unwrap_or_default();
                tracing::debug!(client = %c.id, transaction_id = %id, resolution = resolution.as_str(),
                    source = source.as_str_name(), "transaction ended");
                ok()
            }
            Err(e) => c.error(&e),
        }
    }
}

/// A transaction check as the producer's Telemetry stream carries it: the
/// half message with its real topic, user properties and system
/// properties, as a delivery would show it (its queue offset is its place
/// in the park).
pub(super) fn check_command(check: Check) -> TelemetryCommand {
    let p = check.parked;
    TelemetryCommand {
        status: Some(ok()),
        command: Some(Command::RecoverOrphanedTransactionCommand(
            RecoverOrphanedTransactionCommand {
                message: Some(stored_message_out(
                    p.message,
                    p.store_timestamp_ms,
                    p.offset,
                )),
                transaction_id: check.transaction_id,
            },
        )),
    }
}
