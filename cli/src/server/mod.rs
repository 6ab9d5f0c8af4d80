//! `tern nameserver` and `tern broker`: the separate processes of a
//! cluster (placeholder; being written).

use clap::{Args, Subcommand};

/// The server subcommands.
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Run a Tern name server in the foreground (not yet written)
    Nameserver(NameserverArgs),
}

/// Arguments of `tern nameserver`.
#[derive(Debug, Args)]
pub struct NameserverArgs {}

pub(crate) fn run(command: ServerCommand) -> anyhow::Result<()> {
    match command {
        ServerCommand::Nameserver(_) => anyhow::bail!("`tern nameserver` is not written yet"),
    }
}
