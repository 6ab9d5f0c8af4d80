//! The values the messaging client takes and returns: messages to send,
//! what to receive, and what was sent and received. Plain Rust values,
//! checked on their way in and out by [`crate::wire`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use tern_model::{GroupName, TopicName};

/// A message to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The payload; must not be empty.
    pub body: Vec<u8>,
    /// The tag consumers filter on.
    pub tag: Option<String>,
    /// Keys the message can be looked up by.
    pub keys: Vec<String>,
    /// User properties.
    pub properties: BTreeMap<String, String>,
}

/// Where a sent message was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SendReceipt {
    /// The id the client gave the message.
    pub message_id: String,
    /// The broker it was sent to. (The broker chooses the queue, and the
    /// protocol's answer does not say which.)
    pub broker: String,
    /// Its offset in the queue the broker chose.
    pub offset: u64,
}

/// What to receive, and how.
#[derive(Debug, Clone)]
pub struct ReceiveOptions {
    /// The consumer group receiving.
    pub group: GroupName,
    /// The topic to receive from (any of its queues).
    pub topic: TopicName,
    /// A tag expression: `*`, `a`, or `a || b`.
    pub filter: String,
    /// Most messages to return.
    pub batch_size: u32,
    /// How long received messages stay invisible to the group unless
    /// acknowledged.
    pub invisible: Duration,
    /// How long the broker may wait for a message to arrive.
    pub long_polling: Duration,
}

/// A message received, with the receipt handle that acknowledges it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceivedMessage {
    /// The id its producer gave it.
    pub message_id: String,
    /// The topic.
    pub topic: TopicName,
    /// The queue it came from.
    pub queue_id: u32,
    /// Its offset in that queue.
    pub queue_offset: u64,
    /// Its tag, if any.
    pub tag: Option<String>,
    /// Its keys.
    pub keys: Vec<String>,
    /// Its user properties.
    pub properties: BTreeMap<String, String>,
    /// The payload (its MD5 checked against the broker's digest).
    pub body: Vec<u8>,
    /// 1 for the first delivery, then one more per redelivery.
    pub delivery_attempt: u32,
    /// When the producer made it, in milliseconds since the Unix epoch.
    pub born_timestamp_ms: i64,
    /// Names this delivery; [`MessagingClient::ack`](crate::MessagingClient::ack) takes it.
    #[serde(skip)]
    pub receipt_handle: String,
    /// `host:port` of the broker that delivered it, where the
    /// acknowledgement goes.
    #[serde(skip)]
    pub broker_address: String,
}
