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
        its disk in use, and whether the disk is full (sends refused). A \
        replica of a replicated group also shows its group: its role \
        (leader or follower), the term, the leader it knows, its log's last \
        and applied index and, on the leader, how far each replica's log \
        matches.\n\n\
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
            print_table(t)?;
            let replicas: Vec<_> = status
                .brokers
                .iter()
                .filter_map(|b| b.replica.as_ref().map(|r| (b, r)))
                .collect();
            if replicas.is_empty() {
                return Ok(());
            }
            println!();
            let mut t = table([
                "broker",
                "replica",
                "role",
                "term",
                "leader",
                "last index",
                "applied",
                "replicas (matched index)",
            ]);
            for (b, r) in replicas {
                let progress: Vec<String> = r
                    .replicas
                    .iter()
                    .map(|p| {
                        let matched = p.matched_index.map_or("-".to_owned(), |m| m.to_string());
                        format!("{} {}: {matched}", p.id, p.address)
                    })
                    .collect();
                t.add_row(vec![
                    Cell::new(&b.name),
                    num(r.id),
                    Cell::new(&r.role),
                    num(r.term),
                    Cell::new(r.leader.map_or("-".to_owned(), |l| l.to_string())),
                    num(r.last_index),
                    num(r.applied_index),
                    Cell::new(if progress.is_empty() {
                        "-".to_owned()
                    } else {
                        progress.join(", ")
                    }),
                ]);
            }
            print_table(t)
        }
    }
}
