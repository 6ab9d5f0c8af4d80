//! `tern group ...`.

use clap::{ArgGroup, Args, Subcommand};
use comfy_table::Cell;
use serde::Serialize;
use serde_json::json;
use tern_client::{Group, GroupName, GroupSpec, TopicLag};

use super::Conn;
use super::output::{Output, num, print_json, print_table, say, table};

pub(super) const LONG_ABOUT: &str = "Create, update, list, describe and delete consumer groups.\n\n\
A consumer group is a set of consumers sharing the work: each message of a \
topic goes to one member of each group. Receiving creates a group with the \
default settings if it does not exist. Names are 1 to 255 characters of \
letters, digits, `%`, `|`, `-` and `_`.\n\n\
Examples:\n  \
tern group create billing --max-retries 5\n  \
tern group create ledger --fifo\n  \
tern group describe billing        # lag per topic and queue\n  \
tern group update billing --max-retries 10\n  \
tern group list --output json\n  \
tern group delete billing";

/// The `tern group` subcommands.
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a consumer group
    #[command(long_about = "Create a consumer group.\n\n\
        By default a group is not FIFO and a message is redelivered up to 16 \
        times before it moves to the group's dead-letter topic %DLQ%<group>. \
        Fails if the group exists.\n\n\
        Examples:\n  \
        tern group create billing\n  \
        tern group create ledger --fifo --max-retries 3")]
    Create(CreateArgs),

    /// Change a group's FIFO flag or retry count
    #[command(long_about = "Change a group's FIFO flag or retry count; options not \
        given keep their current value.\n\n\
        Examples:\n  \
        tern group update billing --max-retries 10\n  \
        tern group update ledger --no-fifo")]
    Update(UpdateArgs),

    /// List every consumer group
    #[command(long_about = "List every consumer group, sorted by name.\n\n\
        Examples:\n  \
        tern group list\n  \
        tern group list --output json")]
    List(ListArgs),

    /// Show a group's settings and its lag per topic and queue
    #[command(
        long_about = "Show a group's settings and, for every queue it consumes: \
        the broker offset (where the next message will be stored), the \
        consumer offset (the group's committed position), the lag (messages \
        stored but not yet consumed), the messages in flight (received, not \
        yet acknowledged) and, for a FIFO group, the messages held (read but \
        held back until the earlier messages of their message group are \
        acknowledged). A queue appears once the group has committed an \
        offset in it.\n\n\
        Example:\n  \
        tern group describe billing"
    )]
    Describe(NameArgs),

    /// Delete a consumer group
    #[command(long_about = "Delete a consumer group.\n\n\
        Example:\n  \
        tern group delete billing")]
    Delete(NameArgs),
}

fn parse_group(text: &str) -> Result<GroupName, String> {
    GroupName::new(text).map_err(|e| e.to_string())
}

/// Arguments of `tern group create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The group's name
    #[arg(value_parser = parse_group)]
    name: GroupName,

    /// Deliver the messages of one message group in order, one at a time
    #[arg(long)]
    fifo: bool,

    /// Redeliveries before a message goes to the dead-letter topic
    /// [default: 16]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    max_retries: Option<u32>,

    #[command(flatten)]
    conn: Conn,
}

/// Arguments of `tern group update`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("change").required(true).multiple(true)
    .args(["fifo", "no_fifo", "max_retries"])))]
pub struct UpdateArgs {
    /// The group's name
    #[arg(value_parser = parse_group)]
    name: GroupName,

    /// Make the group FIFO
    #[arg(long, conflicts_with = "no_fifo")]
    fifo: bool,

    /// Make the group not FIFO
    #[arg(long)]
    no_fifo: bool,

    /// New number of redeliveries before dead-lettering
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    max_retries: Option<u32>,

    #[command(flatten)]
    conn: Conn,
}

/// Arguments of `tern group list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    conn: Conn,
}

/// Arguments naming one group.
#[derive(Debug, Args)]
pub struct NameArgs {
    /// The group's name
    #[arg(value_parser = parse_group)]
    name: GroupName,

    #[command(flatten)]
    conn: Conn,
}

/// `tern group describe --output json`.
#[derive(Serialize)]
struct Described<'a> {
    group: &'a Group,
    /// Lag summed over every topic and queue.
    total_lag: u64,
    topics: &'a [TopicLag],
}

/// `billing: not FIFO, 16 retries`.
fn summary(g: &Group) -> String {
    format!(
        "{}: {}, {} retries",
        g.name,
        if g.fifo { "FIFO" } else { "not FIFO" },
        g.max_retries
    )
}

fn print_group(output: Output, verb: &str, g: &Group) -> anyhow::Result<()> {
    match output {
        Output::Json => print_json(g),
        Output::Table => say(&format!("{verb} group {}", summary(g))),
    }
}

pub(super) async fn run(command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::Create(a) => {
            let spec = GroupSpec {
                name: a.name,
                fifo: Some(a.fifo),
                max_retries: a.max_retries,
            };
            let g = a.conn.admin().await?.create_group(&spec).await?;
            print_group(a.conn.output, "created", &g)
        }
        GroupCommand::Update(a) => {
            let fifo = match (a.fifo, a.no_fifo) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            let spec = GroupSpec {
                name: a.name,
                fifo,
                max_retries: a.max_retries,
            };
            let g = a.conn.admin().await?.update_group(&spec).await?;
            print_group(a.conn.output, "updated", &g)
        }
        GroupCommand::List(a) => {
            let groups = a.conn.admin().await?.list_groups().await?;
            match a.conn.output {
                Output::Json => print_json(&groups),
                Output::Table if groups.is_empty() => say("no consumer groups"),
                Output::Table => {
                    let mut t = table(["name", "fifo", "max retries"]);
                    for g in &groups {
                        t.add_row(vec![
                            Cell::new(&g.name),
                            Cell::new(if g.fifo { "yes" } else { "no" }),
                            num(g.max_retries),
                        ]);
                    }
                    print_table(t)
                }
            }
        }
        GroupCommand::Describe(a) => {
            let d = a.conn.admin().await?.describe_group(&a.name).await?;
            match a.conn.output {
                Output::Json => print_json(&Described {
                    group: &d.group,
                    total_lag: d.total_lag(),
                    topics: &d.topics,
                }),
                Output::Table => {
                    say(&format!("group {}", summary(&d.group)))?;
                    if d.topics.is_empty() {
                        return say("no consumption yet: the group has committed no offset");
                    }
                    let mut t = table([
                        "topic",
                        "queue",
                        "broker offset",
                        "consumer offset",
                        "lag",
                        "inflight",
                        "held",
                    ]);
                    for topic in &d.topics {
                        for q in &topic.queues {
                            t.add_row(vec![
                                Cell::new(&topic.topic),
                                num(q.queue_id),
                                num(q.broker_offset),
                                q.consumer_offset.map_or_else(|| num("-"), num),
                                num(q.lag),
                                num(q.inflight),
                                num(q.held),
                            ]);
                        }
                    }
                    print_table(t)?;
                    say(&format!("total lag: {}", d.total_lag()))
                }
            }
        }
        GroupCommand::Delete(a) => {
            a.conn.admin().await?.delete_group(&a.name).await?;
            match a.conn.output {
                Output::Json => print_json(&json!({ "deleted": a.name })),
                Output::Table => say(&format!("deleted group {}", a.name)),
            }
        }
    }
}
