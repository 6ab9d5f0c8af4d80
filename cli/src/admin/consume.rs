//! `tern consume TOPIC --group G`: receive, print, acknowledge.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use serde::Serialize;
use tern_client::{GroupName, ReceiveOptions, ReceivedMessage, TopicName};

use super::Conn;
use super::output::{Output, count, is_broken_pipe, print_json_line};

pub(super) const LONG_ABOUT: &str = "Receive messages of a topic as a consumer group, print \
them, and acknowledge them.\n\n\
Each message is printed with its id, queue, offset, delivery attempt, tag, \
keys, properties and body, and acknowledged once printed, so the group does \
not receive it again. A message that is received but not acknowledged (the \
command was killed, say) becomes visible to the group again after \
--invisible seconds. The group is created with default settings if it does \
not exist. A new group starts at the oldest message still stored. When the \
topic lives on several brokers (--endpoint may be a broker or a name \
server), each is asked in turn.\n\n\
Stops after --max messages, or when nothing has arrived for --wait seconds. \
The broker holds each receive for at least 5 seconds while nothing arrives, \
so a shorter --wait still waits about 5 seconds.\n\n\
With --output json, prints one JSON object per message and line (JSON \
lines): message_id, topic, broker_address, queue_id, queue_offset, \
delivery_attempt, born_timestamp_ms, tag, keys, properties, and body (text) or body_base64 \
(a body that is not UTF-8).\n\n\
Examples:\n  \
tern consume orders --group billing\n  \
tern consume orders --group billing --filter 'created || paid' --max 10\n  \
tern consume orders --group audit --wait 60 --output json | jq .body";

/// Longest wait of one receive call; longer --wait values loop.
const MAX_LONG_POLLING: Duration = Duration::from_secs(20);

/// Arguments of `tern consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// The topic to receive from
    #[arg(value_parser = parse_topic)]
    topic: TopicName,

    /// The consumer group to receive as
    #[arg(long, short = 'g', value_parser = parse_group)]
    group: GroupName,

    /// Tag expression: `*` (every message), `tag`, or `tag1 || tag2`
    #[arg(long, value_name = "TAGEXPR", default_value = "*")]
    filter: String,

    /// Stop after this many messages [default: no limit]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max: Option<u64>,

    /// Stop when nothing has arrived for this many seconds (the broker
    /// waits at least 5 s per receive)
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    wait: u64,

    /// Seconds a received message stays invisible to the group unless
    /// acknowledged
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=43_200))]
    invisible: u64,

    /// Most messages per receive call
    #[arg(long, value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    batch: u32,

    #[command(flatten)]
    conn: Conn,
}

fn parse_topic(text: &str) -> Result<TopicName, String> {
    TopicName::new(text).map_err(|e| e.to_string())
}

fn parse_group(text: &str) -> Result<GroupName, String> {
    GroupName::new(text).map_err(|e| e.to_string())
}

/// A message as one JSON line.
#[derive(Serialize)]
struct Shown<'a> {
    message_id: &'a str,
    topic: &'a TopicName,
    /// `host:port` of the broker that delivered it.
    broker_address: &'a str,
    queue_id: u32,
    queue_offset: u64,
    delivery_attempt: u32,
    born_timestamp_ms: i64,
    tag: Option<&'a str>,
    keys: &'a [String],
    properties: &'a std::collections::BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
}

fn shown(m: &ReceivedMessage) -> Shown<'_> {
    let text = std::str::from_utf8(&m.body).ok();
    Shown {
        message_id: &m.message_id,
        topic: &m.topic,
        broker_address: &m.broker_address,
        queue_id: m.queue_id,
        queue_offset: m.queue_offset,
        delivery_attempt: m.delivery_attempt,
        born_timestamp_ms: m.born_timestamp_ms,
        tag: m.tag.as_deref(),
        keys: &m.keys,
        properties: &m.properties,
        body: text,
        body_base64: text.is_none().then(|| STANDARD.encode(&m.body)),
    }
}

/// Writes `m` for people: a header line and indented fields.
fn write_text(out: &mut impl std::io::Write, m: &ReceivedMessage) -> std::io::Result<()> {
    writeln!(
        out,
        "message {} (queue {}, offset {}, attempt {})",
        m.message_id, m.queue_id, m.queue_offset, m.delivery_attempt
    )?;
    if let Some(tag) = &m.tag {
        writeln!(out, "  tag:        {tag}")?;
    }
    if !m.keys.is_empty() {
        writeln!(out, "  keys:       {}", m.keys.join(", "))?;
    }
    if !m.properties.is_empty() {
        let props: Vec<String> = m
            .properties
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        writeln!(out, "  properties: {}", props.join(", "))?;
    }
    match std::str::from_utf8(&m.body) {
        Ok(text) => writeln!(out, "  body:       {text}"),
        Err(_) => writeln!(
            out,
            "  body:       ({} bytes, not UTF-8; base64) {}",
            m.body.len(),
            STANDARD.encode(&m.body)
        ),
    }
}

fn print_batch(
    out: &mut impl std::io::Write,
    output: Output,
    messages: &[ReceivedMessage],
) -> anyhow::Result<()> {
    for m in messages {
        match output {
            Output::Json => print_json_line(out, &shown(m))?,
            Output::Table => write_text(out, m)?,
        }
    }
    out.flush()?;
    Ok(())
}

pub(super) async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let client = args.conn.messaging().await?;
    let wait = Duration::from_secs(args.wait);
    let mut received = 0u64;
    let mut last_arrival = Instant::now();
    let mut out = std::io::stdout().lock();
    loop {
        let batch = match args.max {
            Some(max) if received >= max => break,
            Some(max) => u32::try_from(max - received)
                .unwrap_or(u32::MAX)
                .min(args.batch),
            None => args.batch,
        };
        let idle_left = wait.saturating_sub(last_arrival.elapsed());
        let opts = ReceiveOptions {
            group: args.group.clone(),
            topic: args.topic.clone(),
            filter: args.filter.clone(),
            batch_size: batch,
            invisible: Duration::from_secs(args.invisible),
            long_polling: idle_left.min(MAX_LONG_POLLING),
        };
        let messages = client.receive(&opts).await?;
        if messages.is_empty() {
            if last_arrival.elapsed() >= wait {
                break;
            }
            continue;
        }
        last_arrival = Instant::now();
        // Acknowledge only what has reached standard output.
        if let Err(e) = print_batch(&mut out, args.conn.output, &messages) {
            if is_broken_pipe(&e) {
                eprintln!(
                    "tern: standard output closed; {} not acknowledged will be \
                     delivered again after {} s",
                    count(messages.len() as u64, "message"),
                    args.invisible
                );
                return Ok(());
            }
            return Err(e);
        }
        client.ack(&args.group, &messages).await?;
        received += messages.len() as u64;
    }
    if args.conn.output == Output::Table {
        eprintln!(
            "tern: received {} from topic {} as group {}",
            count(received, "message"),
            args.topic,
            args.group
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &[u8]) -> ReceivedMessage {
        ReceivedMessage {
            message_id: "01AB".into(),
            topic: TopicName::new("orders").unwrap(),
            queue_id: 1,
            queue_offset: 9,
            tag: Some("created".into()),
            keys: vec!["k1".into(), "k2".into()],
            properties: [("a".to_owned(), "1".to_owned())].into(),
            body: body.to_vec(),
            delivery_attempt: 1,
            born_timestamp_ms: 5,
            receipt_handle: "h".into(),
            broker_address: "127.0.0.1:8081".into(),
        }
    }

    #[test]
    fn text_shows_every_field() {
        let mut out = Vec::new();
        write_text(&mut out, &message(b"hello")).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("message 01AB (queue 1, offset 9, attempt 1)\n"),
            "{text}"
        );
        for needle in [
            "tag:        created",
            "keys:       k1, k2",
            "properties: a=1",
            "body:       hello",
        ] {
            assert!(text.contains(needle), "{needle} in {text}");
        }
    }

    #[test]
    fn json_carries_text_or_base64() {
        let m = message(b"hi");
        let v = serde_json::to_value(shown(&m)).unwrap();
        assert_eq!(v["body"], "hi");
        assert!(v.get("body_base64").is_none());
        assert_eq!(v["topic"], "orders");
        assert_eq!(v["broker_address"], "127.0.0.1:8081");
        let m = message(&[0xff, 0x00]);
        let v = serde_json::to_value(shown(&m)).unwrap();
        assert!(v.get("body").is_none());
        assert_eq!(v["body_base64"], "/wA=");
    }
}
