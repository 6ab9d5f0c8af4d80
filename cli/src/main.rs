//! The `tern` binary. All the work is done in the `tern_cli` library.
#![forbid(unsafe_code)]

use clap::Parser as _;

fn main() -> anyhow::Result<()> {
    let cli = tern_cli::Cli::parse();
    tern_cli::run(cli)
}
