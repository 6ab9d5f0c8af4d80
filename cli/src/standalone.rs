//! `tern standalone`: a single-node Tern broker in the foreground.
//!
//! Opens the broker's data directory (the storage engine runs crash
//! recovery), binds `--listen`, serves the RocketMQ 5 gRPC messaging
//! service and Tern's admin service until SIGTERM or Ctrl-C, then shuts
//! down gracefully: no new connections, calls in flight finish, and the
//! consumption state and the store are flushed and closed. It takes the
//! settings of `tern broker` (flags, `TERN_*` variables, `--config` file)
//! but the cluster ones: routes name this broker only (it registers with
//! no name server).
//!
//! Integration tests and operators rely on three log messages: `store open`
//! once the data directory has been opened, `listening` (with the bound
//! address) once clients can connect, and `store closed` once everything
//! has been flushed and closed. The serving loop is `tern broker`'s.

use crate::args::StandaloneArgs;

/// Runs `tern standalone` to completion: returns once the broker has been
/// closed after a shutdown signal.
pub(crate) fn run(args: StandaloneArgs) -> anyhow::Result<()> {
    let (cfg, listen) = args.node.resolve_standalone()?;
    crate::server::block_on(crate::server::broker::serve(cfg, listen))
}
