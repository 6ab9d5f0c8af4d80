//! `tern produce TOPIC`: send messages from standard input or `--body`.

use std::collections::BTreeMap;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tern_client::{MessagingClient, OutgoingMessage, SendReceipt, TopicName};
use tokio::sync::mpsc;

use super::Conn;
use super::output::{Output, count, is_broken_pipe, print_json_line, say};

pub(super) const LONG_ABOUT: &str = "Send messages to a topic.\n\n\
With --body, sends one message with that body. Otherwise sends one message \
per line of standard input (without its line ending; empty lines are \
skipped), in batches, spread round-robin over every broker holding the \
topic (--endpoint may be a broker or a name server); each broker spreads \
the batches it gets over its queues. Every \
message gets the same --tag, --key and --property values.\n\n\
Output: for --body, the message id, broker and offset; for standard input, \
a summary (and a progress counter on standard error when it is a terminal). \
With --output json, one JSON object per message and line (JSON lines): \
{\"message_id\": ..., \"broker\": ..., \"offset\": ...}.\n\n\
If some messages are refused, each is reported on standard error with its \
line number and the exit status is 1.\n\n\
Examples:\n  \
tern produce orders --body '{\"id\": 1}' --tag created --key order-1\n  \
seq 1 1000 | tern produce orders --property source=seq\n  \
tern produce orders --output json < events.txt";

/// Bodies sent in one request at most (unless one line is larger): well
/// under the 4 MiB a gRPC server accepts by default.
const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// Arguments of `tern produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// The topic to send to
    #[arg(value_parser = parse_topic)]
    topic: TopicName,

    /// Send one message with this body instead of reading standard input
    #[arg(long, value_name = "TEXT")]
    body: Option<String>,

    /// Tag of every message (consumers can filter on it)
    #[arg(long, value_name = "TAG")]
    tag: Option<String>,

    /// A key of every message; repeat for several
    #[arg(long = "key", value_name = "KEY")]
    keys: Vec<String>,

    /// A user property of every message; repeat for several
    #[arg(long = "property", value_name = "NAME=VALUE", value_parser = parse_property)]
    properties: Vec<(String, String)>,

    /// Messages per request when reading standard input; the broker puts
    /// each request's messages in one of its queues, in turn
    #[arg(long, value_name = "N", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    batch: u32,

    #[command(flatten)]
    conn: Conn,
}

fn parse_topic(text: &str) -> Result<TopicName, String> {
    TopicName::new(text).map_err(|e| e.to_string())
}

fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}` is not NAME=VALUE")),
    }
}

/// A JSON line of the output.
#[derive(Serialize)]
struct Sent<'a> {
    #[serde(flatten)]
    receipt: &'a SendReceipt,
    /// 1-based line of standard input, when reading it.
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
}

/// Reads standard input on its own thread and sends each line as
/// `(1-based line number, bytes without the line ending)`.
fn read_stdin(tx: mpsc::Sender<std::io::Result<(u64, Vec<u8>)>>) {
    let mut stdin = std::io::stdin().lock();
    let mut number = 0u64;
    loop {
        let mut line = Vec::new();
        match stdin.read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) => {
                number += 1;
                if line.last() == Some(&b'\n') {
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                }
                if tx.blocking_send(Ok((number, line))).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    }
}

struct Producer<'a> {
    client: MessagingClient,
    args: &'a ProduceArgs,
    sent: u64,
    failed: u64,
    out: std::io::StdoutLock<'static>,
}

impl Producer<'_> {
    fn message(&self, body: Vec<u8>) -> OutgoingMessage {
        OutgoingMessage {
            body,
            tag: self.args.tag.clone(),
            keys: self.args.keys.clone(),
            properties: self
                .args
                .properties
                .iter()
                .cloned()
                .collect::<BTreeMap<_, _>>(),
        }
    }

    /// Sends one batch; prints each result (JSON) or counts it (table).
    async fn send(&mut self, lines: Vec<(Option<u64>, Vec<u8>)>) -> anyhow::Result<()> {
        let (numbers, bodies): (Vec<_>, Vec<_>) = lines.into_iter().unzip();
        let messages: Vec<_> = bodies.into_iter().map(|b| self.message(b)).collect();
        let results = match self.client.send(&self.args.topic, &messages).await {
            Ok(r) => r,
            Err(e) if self.sent > 0 => {
                anyhow::bail!("{e} ({} messages were sent before this)", self.sent)
            }
            Err(e) => return Err(e.into()),
        };
        for (line, result) in numbers.into_iter().zip(results) {
            match result {
                Ok(receipt) => {
                    self.sent += 1;
                    match self.args.conn.output {
                        Output::Json => print_json_line(
                            &mut self.out,
                            &Sent {
                                receipt: &receipt,
                                line,
                            },
                        )?,
                        Output::Table if self.args.body.is_some() => writeln!(
                            self.out,
                            "sent message {} to topic {}: broker {}, offset {}",
                            receipt.message_id, self.args.topic, receipt.broker, receipt.offset
                        )?,
                        Output::Table => {}
                    }
                }
                Err(e) => {
                    self.failed += 1;
                    match line {
                        Some(n) => eprintln!("tern: line {n}: {e}"),
                        None => eprintln!("tern: {e}"),
                    }
                }
            }
        }
        self.out.flush()?;
        Ok(())
    }
}

fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} sent {human_pos} messages in {elapsed}")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

pub(super) async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    match produce(&args).await {
        // Standard output was closed (piped into `head`, say): what was
        // sent is sent; stop quietly, as a pipeline expects.
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

async fn produce(args: &ProduceArgs) -> anyhow::Result<()> {
    let client = args.conn.messaging().await?;
    let mut p = Producer {
        client,
        args,
        sent: 0,
        failed: 0,
        out: std::io::stdout().lock(),
    };
    let mut skipped = 0u64;
    if let Some(body) = &args.body {
        p.send(vec![(None, body.clone().into_bytes())]).await?;
    } else {
        let (tx, mut rx) = mpsc::channel(4096);
        std::thread::Builder::new()
            .name("tern-stdin".into())
            .spawn(move || read_stdin(tx))?;
        let batch = usize::try_from(args.batch).unwrap_or(256);
        let mut bar: Option<ProgressBar> = None;
        let mut lines = Vec::with_capacity(batch);
        let mut eof = false;
        while !eof {
            // Wait for one line, then take what else is ready, up to a
            // batch or MAX_BATCH_BYTES of bodies.
            let mut bytes = 0;
            while lines.len() < batch && bytes < MAX_BATCH_BYTES {
                let next = if lines.is_empty() {
                    rx.recv().await
                } else {
                    match rx.try_recv() {
                        Ok(item) => Some(item),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => None,
                    }
                };
                match next {
                    None => {
                        eof = true;
                        break;
                    }
                    Some(Err(e)) => anyhow::bail!("reading standard input: {e}"),
                    Some(Ok((_, line))) if line.is_empty() => skipped += 1,
                    Some(Ok((n, line))) => {
                        bytes += line.len();
                        lines.push((Some(n), line));
                    }
                }
            }
            if lines.is_empty() {
                continue;
            }
            let n = lines.len() as u64;
            p.send(std::mem::take(&mut lines)).await?;
            if bar.is_none() && p.sent + p.failed >= u64::from(args.batch) {
                bar = Some(progress_bar());
            }
            if let Some(bar) = &bar {
                bar.inc(n);
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
    }
    if skipped > 0 {
        eprintln!("tern: skipped {}", count(skipped, "empty line"));
    }
    let (sent, failed) = (p.sent, p.failed);
    drop(p);
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} were not sent to topic {}",
            count(sent + failed, "message"),
            args.topic
        );
    }
    if args.body.is_none() && args.conn.output == Output::Table {
        say(&format!(
            "sent {} to topic {}",
            count(sent, "message"),
            args.topic
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_name_value() {
        assert_eq!(
            parse_property("a=b=c").unwrap(),
            ("a".to_owned(), "b=c".to_owned())
        );
        assert_eq!(
            parse_property("a=").unwrap(),
            ("a".to_owned(), String::new())
        );
        assert!(parse_property("=b").is_err());
        assert!(parse_property("ab").is_err());
    }
}
