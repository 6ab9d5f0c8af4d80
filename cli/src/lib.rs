//! The library behind the `tern` binary: argument parsing ([`args`]), log
//! set-up, and one module per subcommand. `main.rs` only parses the command
//! line and calls [`run`].
#![forbid(unsafe_code)]

mod admin;
pub mod args;
mod bench;
mod logging;
mod server;
mod standalone;
#[cfg(test)]
mod tests;

pub use args::Cli;
use args::Command;

/// Runs the command that `cli` describes, after setting up logging.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Version => {
            println!("tern {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Standalone(args) => {
            logging::init(cli.log_format)?;
            standalone::run(*args)
        }
        Command::Server(command) => {
            logging::init(cli.log_format)?;
            server::run(command)
        }
        Command::Admin(command) => admin::run(command),
        Command::Bench(args) => bench::run(*args),
    }
}
