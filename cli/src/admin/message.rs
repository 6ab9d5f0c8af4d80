//! `tern message get ID` and `tern message query --topic T ...`: find
//! stored messages by id, by key and by store time.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Subcommand};
use comfy_table::Cell;
use serde::Serialize;
use serde_json::json;
use tern_client::{MessageQuery, StoredMessage, TopicName};
use tern_model::now_ms;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Conn;
use super::output::{Output, count, num, print_json, print_table, say, table};

pub(super) const LONG_ABOUT: &str = "Find stored messages by message id, by key or by the \
time the broker stored them.\n\n\
Messages are found whether or not they were consumed, as long as the broker \
still stores them (see the store's retention).\n\n\
Examples:\n  \
tern message get 01A2B3C4D5E6F708090A0B0C0D\n  \
tern message query --topic orders --key order-42\n  \
tern message query --topic orders --since 10m\n  \
tern message query --topic orders --since 2026-11-25T09:00:00Z --until 2026-11-25T10:00:00Z \
--output json";

/// Longest body shown in a table cell; `get` and `--output json` show all.
const CELL_BODY_CHARS: usize = 60;

/// The `tern message` subcommands.
#[derive(Debug, Subcommand)]
pub enum MessageCommand {
    /// Show the message stored with a message id
    #[command(
        long_about = "Show the message stored with a message id, in any topic: \
        its topic, queue, offset, store and birth times, tag, keys, properties \
        and body (as base64 if it is not UTF-8).\n\n\
        The id is the one `tern produce` prints (or any producer's message \
        id). Exits with status 1 if no message with the id is stored. With \
        --output json, prints an array (more than one message only if a \
        producer reused the id).\n\n\
        Example:\n  \
        tern message get 01A2B3C4D5E6F708090A0B0C0D"
    )]
    Get(GetArgs),

    /// Find messages of a topic by key and/or store time
    #[command(
        long_about = "Find messages of a topic by key, by the time the broker stored \
        them, or both, and list them oldest first.\n\n\
        With --key, the newest messages carrying the key; with --since and/or \
        --until (and no key), the oldest messages stored in that range; with \
        neither, the oldest messages of the topic. At most --max are shown, \
        with a note when more match.\n\n\
        TIME is RFC 3339 (2026-11-25T09:00:00Z, 2026-11-25T10:00:00+01:00), \
        a duration ago (30s, 10m, 2h, 1d, 1h30m) or `now`. --since is \
        inclusive, --until exclusive.\n\n\
        The table shortens long bodies; --output json prints them whole \
        (body, or body_base64 when not UTF-8) as {\"messages\": [...], \
        \"truncated\": bool}.\n\n\
        Examples:\n  \
        tern message query --topic orders --key order-42\n  \
        tern message query --topic orders --since 1h --until 30m --max 100"
    )]
    Query(QueryArgs),
}

/// Arguments of `tern message get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The message id
    #[arg(value_name = "ID")]
    id: String,

    #[command(flatten)]
    conn: Conn,
}

/// Arguments of `tern message query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The topic to search
    #[arg(long, short = 't', value_parser = parse_topic)]
    topic: TopicName,

    /// Only messages carrying this key
    #[arg(long, value_name = "KEY")]
    key: Option<String>,

    /// Only messages stored at or after TIME
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    since: Option<i64>,

    /// Only messages stored before TIME
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    until: Option<i64>,

    /// Most messages to show
    #[arg(long, value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    max: u32,

    #[command(flatten)]
    conn: Conn,
}

fn parse_topic(text: &str) -> Result<TopicName, String> {
    TopicName::new(text).map_err(|e| e.to_string())
}

/// A time on the command line, as milliseconds since the Unix epoch.
fn parse_time(text: &str) -> Result<i64, String> {
    parse_time_at(text, now_ms())
}

/// [`parse_time`] with `now` given: RFC 3339, `now`, or a duration ago.
fn parse_time_at(text: &str, now: i64) -> Result<i64, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
            .map_err(|_| format!("`{text}` is out of range"));
    }
    match parse_ago(text) {
        Some(ago) => Ok(now.saturating_sub(i64::try_from(ago.as_millis()).unwrap_or(i64::MAX))),
        None => Err(format!(
            "`{text}` is not a time: use RFC 3339 (2026-11-25T09:00:00Z), a \
             duration ago (30s, 10m, 2h, 1d, 1h30m) or `now`"
        )),
    }
}

/// `1h30m` and the like: numbers each followed by ms, s, m, h or d.
fn parse_ago(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let millis = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return None,
        };
        total = total.checked_add(Duration::from_millis(n.checked_mul(millis)?))?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// RFC 3339 in UTC with milliseconds, or the raw number if out of range.
fn format_time(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// A message as JSON.
#[derive(Serialize)]
struct Shown<'a> {
    message_id: &'a str,
    topic: &'a TopicName,
    queue_id: u32,
    queue_offset: u64,
    store_time: String,
    store_timestamp_ms: i64,
    born_timestamp_ms: i64,
    tag: Option<&'a str>,
    keys: &'a [String],
    properties: &'a BTreeMap<String, String>,
    commit_log_offset: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
}

fn shown(m: &StoredMessage) -> Shown<'_> {
    let text = std::str::from_utf8(&m.body).ok();
    Shown {
        message_id: &m.message_id,
        topic: &m.topic,
        queue_id: m.queue_id,
        queue_offset: m.queue_offset,
        store_time: format_time(m.store_timestamp_ms),
        store_timestamp_ms: m.store_timestamp_ms,
        born_timestamp_ms: m.born_timestamp_ms,
        tag: m.tag.as_deref(),
        keys: &m.keys,
        properties: &m.properties,
        commit_log_offset: m.commit_log_offset,
        body: text,
        body_base64: text.is_none().then(|| STANDARD.encode(&m.body)),
    }
}

fn properties_text(m: &StoredMessage) -> String {
    m.properties
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every field of `m`, for people: a header line and indented fields.
fn details(m: &StoredMessage) -> String {
    let mut lines = vec![
        format!("message {}", m.message_id),
        format!("  topic:      {}", m.topic),
        format!("  queue:      {}", m.queue_id),
        format!("  offset:     {}", m.queue_offset),
        format!("  stored:     {}", format_time(m.store_timestamp_ms)),
        format!("  born:       {}", format_time(m.born_timestamp_ms)),
    ];
    if let Some(tag) = &m.tag {
        lines.push(format!("  tag:        {tag}"));
    }
    if !m.keys.is_empty() {
        lines.push(format!("  keys:       {}", m.keys.join(", ")));
    }
    if !m.properties.is_empty() {
        lines.push(format!("  properties: {}", properties_text(m)));
    }
    lines.push(match std::str::from_utf8(&m.body) {
        Ok(text) => format!("  body:       {text}"),
        Err(_) => format!(
            "  body:       ({} bytes, not UTF-8; base64) {}",
            m.body.len(),
            STANDARD.encode(&m.body)
        ),
    });
    lines.join("\n")
}

/// A body for a table cell: one line, at most [`CELL_BODY_CHARS`].
fn cell_body(body: &[u8]) -> String {
    let Ok(text) = std::str::from_utf8(body) else {
        return format!("({} bytes, not UTF-8)", body.len());
    };
    let one_line: String = text
        .chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect();
    if one_line.chars().count() <= CELL_BODY_CHARS {
        return one_line;
    }
    let cut: String = one_line.chars().take(CELL_BODY_CHARS - 3).collect();
    format!("{cut}...")
}

async fn get(a: GetArgs) -> anyhow::Result<()> {
    let found = a.conn.admin().await?.get_message(&a.id).await?;
    match a.conn.output {
        Output::Json => print_json(&found.iter().map(shown).collect::<Vec<_>>()),
        Output::Table => say(&found.iter().map(details).collect::<Vec<_>>().join("\n\n")),
    }
}

async fn query(a: QueryArgs) -> anyhow::Result<()> {
    let mut q = MessageQuery::new(a.topic.clone());
    q.key = a.key.clone();
    q.since_ms = a.since;
    q.until_ms = a.until;
    q.max_messages = Some(a.max);
    let result = a.conn.admin().await?.query_messages(&q).await?;
    let messages = &result.messages;
    if a.conn.output == Output::Json {
        return print_json(&json!({
            "messages": messages.iter().map(shown).collect::<Vec<_>>(),
            "truncated": result.truncated,
        }));
    }
    if messages.is_empty() {
        return say(&format!("no messages found in topic {}", a.topic));
    }
    let mut t = table([
        "id",
        "queue",
        "offset",
        "stored",
        "tag",
        "keys",
        "properties",
        "body",
    ]);
    for m in messages {
        t.add_row(vec![
            Cell::new(&m.message_id),
            num(m.queue_id),
            num(m.queue_offset),
            Cell::new(format_time(m.store_timestamp_ms)),
            Cell::new(m.tag.as_deref().unwrap_or("-")),
            Cell::new(m.keys.join(",")),
            Cell::new(properties_text(m)),
            Cell::new(cell_body(&m.body)),
        ]);
    }
    print_table(t)?;
    if result.truncated {
        let which = if a.key.is_some() { "newest" } else { "oldest" };
        say(&format!(
            "more messages match; showing the {which} {} (raise --max, up to 1024, or narrow \
             the time range)",
            count(messages.len() as u64, "message")
        ))?;
    }
    Ok(())
}

pub(super) async fn run(command: MessageCommand) -> anyhow::Result<()> {
    match command {
        MessageCommand::Get(a) => get(a).await,
        MessageCommand::Query(a) => query(a).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_rfc3339_relative_or_now() {
        let now = 1_764_064_800_000; // 2025-11-25T10:00:00Z
        assert_eq!(parse_time_at("2025-11-25T10:00:00Z", 0).unwrap(), now);
        assert_eq!(
            parse_time_at("2025-11-25T11:00:00.250+01:00", 0).unwrap(),
            now + 250
        );
        assert_eq!(parse_time_at("now", now).unwrap(), now);
        assert_eq!(parse_time_at("10m", now).unwrap(), now - 600_000);
        assert_eq!(parse_time_at("1h30m", now).unwrap(), now - 5_400_000);
        assert_eq!(parse_time_at("2d", now).unwrap(), now - 172_800_000);
        assert_eq!(parse_time_at("1500ms", now).unwrap(), now - 1_500);
        for bad in ["", "10", "m", "10x", "yesterday", "2025-11-25", "-5m"] {
            let e = parse_time_at(bad, now).unwrap_err();
            assert!(e.contains("RFC 3339"), "{bad}: {e}");
        }
        assert_eq!(format_time(now + 7), "2025-11-25T10:00:00.007Z");
    }

    fn message(body: &[u8]) -> StoredMessage {
        StoredMessage {
            message_id: "01AB".into(),
            topic: TopicName::new("orders").unwrap(),
            queue_id: 2,
            queue_offset: 9,
            store_timestamp_ms: 1_764_064_800_000,
            born_timestamp_ms: 1_764_064_799_000,
            tag: Some("created".into()),
            keys: vec!["k1".into(), "k2".into()],
            properties: [("a".to_owned(), "1".to_owned())].into(),
            body: body.to_vec(),
            commit_log_offset: 4096,
        }
    }

    #[test]
    fn details_show_every_field() {
        let text = details(&message(b"hello"));
        for needle in [
            "message 01AB\n",
            "topic:      orders",
            "queue:      2",
            "offset:     9",
            "stored:     2025-11-25T10:00:00Z",
            "born:       2025-11-25T09:59:59Z",
            "tag:        created",
            "keys:       k1, k2",
            "properties: a=1",
            "body:       hello",
        ] {
            assert!(text.contains(needle), "{needle} in {text}");
        }
        let binary = details(&message(&[0xff, 0x00]));
        assert!(
            binary.contains("(2 bytes, not UTF-8; base64) /wA="),
            "{binary}"
        );
    }

    #[test]
    fn json_carries_text_or_base64_and_cells_stay_short() {
        let v = serde_json::to_value(shown(&message(b"hi"))).unwrap();
        assert_eq!(v["body"], "hi");
        assert_eq!(v["store_time"], "2025-11-25T10:00:00Z");
        assert!(v.get("body_base64").is_none());
        let v = serde_json::to_value(shown(&message(&[0xff]))).unwrap();
        assert!(v.get("body").is_none());
        assert_eq!(v["body_base64"], "/w==");

        assert_eq!(cell_body(b"a\nb"), "a\\nb");
        assert_eq!(cell_body("{\"k\": \"é\"}".as_bytes()), "{\"k\": \"é\"}");
        let long = cell_body("x".repeat(100).as_bytes());
        assert_eq!(long.chars().count(), CELL_BODY_CHARS);
        assert!(long.ends_with("..."));
        assert_eq!(cell_body(&[0xff, 0xfe]), "(2 bytes, not UTF-8)");
    }
}
