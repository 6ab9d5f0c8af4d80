//! Where a sent message goes: checks against its topic, the queue, and
//! the park for messages that wait.

use tern_model::{Message, MessageKind};

use crate::dedup::ParkKind;
use crate::error::{BrokerError, Result};
use crate::meta::TopicConfig;

/// Routes `msg` (whose topic looked up to `topic`) on `turn` of the round
/// robin at `now` (ms): the message with its queue set, and the park it
/// waits in (`None`: written to its topic now). Refused if the topic does
/// not exist, is not writable or does not take the message's kind, or if
/// it is a half message and transactions are off.
pub(super) fn route(
    topic: &Result<TopicConfig>,
    mut msg: Message,
    turn: usize,
    now: i64,
    transactions: bool,
) -> Result<(Message, Option<ParkKind>)> {
    let topic = match topic {
        Ok(t) => t,
        Err(BrokerError::TopicNotFound(t)) => return Err(BrokerError::TopicNotFound(t.clone())),
        Err(e) => {
            return Err(BrokerError::Failed(format!(
                "cannot look up topic {}: {e}",
                msg.topic
            )));
        }
    };
    if !topic.permission().writable() {
        return Err(BrokerError::Forbidden(format!(
            "topic {} is not writable",
            msg.topic
        )));
    }
    if !topic.message_type().accepts(msg.kind()) {
        return Err(BrokerError::WrongMessageType(format!(
            "topic {} is a {} topic; it does not accept {} messages",
            msg.topic,
            format!("{:?}", topic.message_type()).to_uppercase(),
            kind_name(msg.kind())
        )));
    }
    // A message group always maps to the same queue, so its messages
    // keep their order in one queue. Otherwise the broker chooses, as the
    // reference proxy does: Go and Python clients leave `queue_id` unset,
    // so it cannot be trusted to spread load.
    msg.queue_id = match msg.message_group() {
        Some(g) => topic.queue_of(g),
        None => pick_queue(turn, topic.queues()),
    };
    // Delayed and half messages are parked until due or committed.
    let park = match msg.kind() {
        MessageKind::Delay if msg.deliver_at_ms().is_some_and(|at| at > now) => {
            Some(ParkKind::Timer)
        }
        MessageKind::Transaction if !transactions => return Err(transactions_off()),
        MessageKind::Transaction => Some(ParkKind::Half),
        _ => None,
    };
    Ok((msg, park))
}

/// The refusal of a half message, or of ending a transaction, on a broker
/// without transactions.
pub(super) fn transactions_off() -> BrokerError {
    BrokerError::Unsupported("transaction messages are not enabled on this broker".into())
}

/// The queue a request's messages go to on its `turn` of the round robin.
pub(super) fn pick_queue(turn: usize, queues: u32) -> u32 {
    let queues = usize::try_from(queues.max(1)).unwrap_or(usize::MAX);
    u32::try_from(turn % queues).unwrap_or(0)
}

/// The protocol's name of a message kind.
fn kind_name(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Normal => "NORMAL",
        MessageKind::Fifo => "FIFO",
        MessageKind::Delay => "DELAY",
        MessageKind::Transaction => "TRANSACTION",
    }
}
