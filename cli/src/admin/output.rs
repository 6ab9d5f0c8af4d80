//! Printing results: human tables or JSON.

use std::io::Write as _;

use clap::ValueEnum;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets};
use serde::Serialize;

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns and short sentences, for people.
    Table,
    /// JSON: one document per command; `produce` and `consume` print one
    /// object per line (JSON lines).
    Json,
}

/// A table with upper-case headers and no borders, like `kubectl get`.
pub(super) fn table<const N: usize>(headers: [&str; N]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.map(|h| Cell::new(h.to_uppercase())));
    t
}

/// A right-aligned cell for a number.
pub(super) fn num(value: impl std::fmt::Display) -> Cell {
    Cell::new(value).set_alignment(CellAlignment::Right)
}

/// Prints `table` to standard output, columns two spaces apart.
pub(super) fn print_table(mut table: Table) -> anyhow::Result<()> {
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    let mut out = std::io::stdout().lock();
    // comfy-table pads every line to the column widths; trim the right.
    for line in table.to_string().lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    out.flush()?;
    Ok(())
}

/// Prints `value` as one pretty JSON document.
pub(super) fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// Prints `value` as one JSON line.
pub(super) fn print_json_line<T: Serialize + ?Sized>(
    out: &mut impl std::io::Write,
    value: &T,
) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Prints a line of text to standard output.
pub(super) fn say(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(())
}

/// `1 message`, `2 messages`.
pub(super) fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Whether `e` is a write to a closed pipe (standard output piped into
/// `head`, say).
pub(super) fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}
