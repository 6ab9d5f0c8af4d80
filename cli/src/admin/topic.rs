//! `tern topic ...`.

use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use comfy_table::Cell;
use futures::StreamExt as _;
use serde_json::json;
use tern_client::{MessageType, Permission, Topic, TopicName, TopicSpec};

use super::Conn;
use super::output::{Output, count, num, print_json, print_table, say, table};

pub(super) const LONG_ABOUT: &str = "Create, update, list, describe and delete topics.\n\n\
A topic is a named stream of messages split into queues; producers send to \
it and consumer groups receive from it. Names are 1 to 127 characters of \
letters, digits, `%`, `|`, `-` and `_`.\n\n\
Examples:\n  \
tern topic create orders --queues 4\n  \
tern topic create payments --message-type fifo\n  \
tern topic create $(seq -f 'bench-%g' 0 999) --queues 8\n  \
tern topic update orders --queues 8 --permission read\n  \
tern topic list --output json\n  \
tern topic describe orders\n  \
tern topic delete orders";

/// The `tern topic` subcommands.
#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create one topic or several
    #[command(
        long_about = "Create one topic or several, each with the same options.\n\n\
        Unset options take the broker's defaults: 8 queues, normal messages, \
        read-write. Fails if the topic exists.\n\n\
        With several names (thousands are fine: one connection, up to 16 \
        creations in flight), a line is printed as each topic is created, in \
        the order given; a topic that cannot be created (one that exists, \
        say) is reported on standard error and the others are still created; \
        the exit status is then 1. With --output json several topics print \
        as one array.\n\n\
        Examples:\n  \
        tern topic create orders\n  \
        tern topic create orders --queues 4 --message-type mixed\n  \
        tern topic create $(seq -f 'bench-%g' 0 999) --queues 8"
    )]
    Create(CreateArgs),

    /// Change a topic's queue count, message type or permission
    #[command(
        long_about = "Change a topic's queue count, message type or permission.\n\n\
        Options not given keep their current value. The queue count can grow \
        but not shrink.\n\n\
        Examples:\n  \
        tern topic update orders --queues 16\n  \
        tern topic update orders --permission read"
    )]
    Update(UpdateArgs),

    /// List every topic
    #[command(
        long_about = "List every topic, sorted by name, with its queue count, \
        message type and permission.\n\n\
        Examples:\n  \
        tern topic list\n  \
        tern topic list --output json"
    )]
    List(ListArgs),

    /// Show a topic's settings and the offsets of each queue
    #[command(
        long_about = "Show a topic's settings and, per queue, the offset of the \
        oldest message still stored (min) and the offset the next message will \
        get (max); max - min messages are stored.\n\n\
        Example:\n  \
        tern topic describe orders"
    )]
    Describe(NameArgs),

    /// Delete a topic
    #[command(long_about = "Delete a topic. Producers can no longer send to it and \
        consumers no longer receive from it.\n\n\
        Example:\n  \
        tern topic delete orders")]
    Delete(NameArgs),
}

/// A message type, as written on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TypeArg {
    /// Plain messages
    Normal,
    /// Ordered within a message group
    Fifo,
    /// Delivered at a set time
    Delay,
    /// Committed or rolled back by a transaction
    Transaction,
    /// All four kinds
    Mixed,
}

impl From<TypeArg> for MessageType {
    fn from(t: TypeArg) -> Self {
        match t {
            TypeArg::Normal => Self::Normal,
            TypeArg::Fifo => Self::Fifo,
            TypeArg::Delay => Self::Delay,
            TypeArg::Transaction => Self::Transaction,
            TypeArg::Mixed => Self::Mixed,
        }
    }
}

/// A permission, as written on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PermissionArg {
    /// Send and receive
    ReadWrite,
    /// Receive only
    Read,
    /// Send only
    Write,
}

impl From<PermissionArg> for Permission {
    fn from(p: PermissionArg) -> Self {
        match p {
            PermissionArg::ReadWrite => Self::ReadWrite,
            PermissionArg::Read => Self::Read,
            PermissionArg::Write => Self::Write,
        }
    }
}

fn parse_topic(text: &str) -> Result<TopicName, String> {
    TopicName::new(text).map_err(|e| e.to_string())
}

/// Arguments of `tern topic create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The topic's name; several create several topics alike
    #[arg(value_name = "NAME", required = true, num_args = 1.., value_parser = parse_topic)]
    names: Vec<TopicName>,

    /// Number of queues [default: 8]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65_535))]
    queues: Option<u32>,

    /// Which messages the topic accepts [default: normal]
    #[arg(long, value_enum)]
    message_type: Option<TypeArg>,

    /// Whether clients may send, receive or both [default: read-write]
    #[arg(long, value_enum)]
    permission: Option<PermissionArg>,

    #[command(flatten)]
    conn: Conn,
}

/// Arguments of `tern topic update`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("change").required(true).multiple(true)
    .args(["queues", "message_type", "permission"])))]
pub struct UpdateArgs {
    /// The topic's name
    #[arg(value_parser = parse_topic)]
    name: TopicName,

    /// New number of queues (at least the current one)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65_535))]
    queues: Option<u32>,

    /// New message type
    #[arg(long, value_enum)]
    message_type: Option<TypeArg>,

    /// New permission
    #[arg(long, value_enum)]
    permission: Option<PermissionArg>,

    #[command(flatten)]
    conn: Conn,
}

/// Arguments of `tern topic list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    conn: Conn,
}

/// Arguments naming one topic.
#[derive(Debug, Args)]
pub struct NameArgs {
    /// The topic's name
    #[arg(value_parser = parse_topic)]
    name: TopicName,

    #[command(flatten)]
    conn: Conn,
}

fn spec(
    name: TopicName,
    queues: Option<u32>,
    message_type: Option<TypeArg>,
    permission: Option<PermissionArg>,
) -> TopicSpec {
    TopicSpec {
        name,
        queues,
        message_type: message_type.map(Into::into),
        permission: permission.map(Into::into),
    }
}

/// `orders: 4 queues, normal messages, read-write`.
fn summary(t: &Topic) -> String {
    format!(
        "{}: {}, {} messages, {}",
        t.name,
        count(u64::from(t.queues), "queue"),
        t.message_type,
        t.permission
    )
}

/// Prints one topic after a create or update.
fn print_topic(output: Output, verb: &str, t: &Topic) -> anyhow::Result<()> {
    match output {
        Output::Json => print_json(t),
        Output::Table => say(&format!("{verb} topic {}", summary(t))),
    }
}

/// Creations in flight at once for `tern topic create A B C ...`.
const CREATES_IN_FLIGHT: usize = 16;

/// `tern topic create` with several names: over one connection, up to
/// [`CREATES_IN_FLIGHT`] at once, each result printed in the order given;
/// failures go to standard error and the others are still created.
async fn create_many(a: CreateArgs) -> anyhow::Result<()> {
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = a.names.iter().find(|n| !seen.insert(n.as_str())) {
        anyhow::bail!("topic {twice} is named twice; nothing was created");
    }
    let admin = a.conn.admin().await?;
    let total = a.names.len();
    let creations = a.names.iter().map(|name| {
        let admin = admin.clone();
        let spec = spec(name.clone(), a.queues, a.message_type, a.permission);
        async move { (spec.name.clone(), admin.create_topic(&spec).await) }
    });
    let mut results = futures::stream::iter(creations).buffered(CREATES_IN_FLIGHT);
    let mut created = Vec::new();
    let mut failed: Vec<TopicName> = Vec::new();
    while let Some((name, result)) = results.next().await {
        match result {
            Ok(t) => {
                if a.conn.output == Output::Table {
                    say(&format!("created topic {}", summary(&t)))?;
                }
                created.push(t);
            }
            Err(e) => {
                eprintln!("{}", tern_client::error_chain(&e));
                failed.push(name);
            }
        }
    }
    if a.conn.output == Output::Json {
        print_json(&created)?;
    }
    match failed.first() {
        None => Ok(()),
        Some(first) => anyhow::bail!(
            "{} of {total} topics not created (the first: {first}; see above why)",
            failed.len()
        ),
    }
}

pub(super) async fn run(command: TopicCommand) -> anyhow::Result<()> {
    match command {
        TopicCommand::Create(a) if a.names.len() == 1 => {
            let admin = a.conn.admin().await?;
            let name = a.names[0].clone();
            let t = admin
                .create_topic(&spec(name, a.queues, a.message_type, a.permission))
                .await?;
            print_topic(a.conn.output, "created", &t)
        }
        TopicCommand::Create(a) => create_many(a).await,
        TopicCommand::Update(a) => {
            let admin = a.conn.admin().await?;
            let t = admin
                .update_topic(&spec(a.name, a.queues, a.message_type, a.permission))
                .await?;
            print_topic(a.conn.output, "updated", &t)
        }
        TopicCommand::List(a) => {
            let topics = a.conn.admin().await?.list_topics().await?;
            match a.conn.output {
                Output::Json => print_json(&topics),
                Output::Table if topics.is_empty() => say("no topics"),
                Output::Table => {
                    let mut t = table(["name", "queues", "message type", "permission"]);
                    for topic in &topics {
                        t.add_row(vec![
                            Cell::new(&topic.name),
                            num(topic.queues),
                            Cell::new(topic.message_type),
                            Cell::new(topic.permission),
                        ]);
                    }
                    print_table(t)
                }
            }
        }
        TopicCommand::Describe(a) => {
            let d = a.conn.admin().await?.describe_topic(&a.name).await?;
            match a.conn.output {
                Output::Json => print_json(&d),
                Output::Table => {
                    say(&format!("topic {}", summary(&d.topic)))?;
                    let mut t = table(["queue", "min offset", "max offset", "messages"]);
                    for q in &d.queues {
                        t.add_row(vec![
                            num(q.queue_id),
                            num(q.min_offset),
                            num(q.max_offset),
                            num(q.max_offset.saturating_sub(q.min_offset)),
                        ]);
                    }
                    print_table(t)
                }
            }
        }
        TopicCommand::Delete(a) => {
            a.conn.admin().await?.delete_topic(&a.name).await?;
            match a.conn.output {
                Output::Json => print_json(&json!({ "deleted": a.name })),
                Output::Table => say(&format!("deleted topic {}", a.name)),
            }
        }
    }
}
