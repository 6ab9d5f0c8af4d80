//! Administration and everyday use against a running Tern: topics,
//! groups, produce and consume (placeholder; being written).

use clap::{Args, Subcommand};

/// The admin subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Manage topics (not yet written)
    Topic(TopicArgs),
}

/// Arguments of `tern topic`.
#[derive(Debug, Args)]
pub struct TopicArgs {}

pub(crate) fn run(command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Topic(_) => anyhow::bail!("`tern topic` is not written yet"),
    }
}
