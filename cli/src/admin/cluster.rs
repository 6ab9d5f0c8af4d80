//! `tern cluster status`.

use clap::{Args, Subcommand};
use comfy_table::Cell;

use super::Conn;
use super::output::{Output, num, print_json, print_table, table};

/// The `tern cluster` subcommands.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Show each broker: its endpoints, topics and storage
    #[command(long_about = "Show each broker behind the endpoint: its name, the \
        addresses clients reach it at, how many topics it serves, and its \
        storage: bytes of commit log stored and not yet flushed, the share of \
        its disk in use, and whether the disk is full (sends refused).\n\n\
        Examples:\n  \
        tern cluster status\n  \
        tern cluster status --endpoint broker-0.tern:8081 --output json")]
    Status(StatusArgs),
}

/// Arguments of `tern cluster status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    conn: Conn,
}

pub(super) async fn run(command: ClusterCommand) -> anyhow::Result<()> {
    let ClusterCommand::Status(a) = command;
    let status = a.conn.admin().await?.cluster_status().await?;
    match a.conn.output {
        Output::Json => print_json(&status),
        Output::Table => {
            let mut t = table([
                "broker",
                "endpoints",
                "topics",
                "stored bytes",
                "unflushed bytes",
                "disk used",
                "disk full",
            ]);
            for b in &status.brokers {
                let mut row = vec![
                    Cell::new(&b.name),
                    Cell::new(b.endpoints.join(",")),
                    num(b.topic_count),
                ];
                match &b.store {
                    Some(s) => row.extend([
                        num(s.max_offset.saturating_sub(s.min_offset)),
                        num(s.max_offset.saturating_sub(s.flushed_offset)),
                        num(format!("{:.1}%", s.disk_usage * 100.0)),
                        Cell::new(if s.disk_full { "yes" } else { "no" }),
                    ]),
                    None => row.extend(["-", "-", "-", "-"].map(Cell::new)),
                }
                t.add_row(row);
            }
            print_table(t)
        }
    }
}
