//! The `tern` binary. All the work is done in the `tern_cli` library.
#![forbid(unsafe_code)]

use clap::Parser as _;

/// jemalloc instead of glibc's malloc: the broker allocates and frees a
/// few dozen small buffers per request from two or more threads; measured
/// in docs/benchmarks.md (about a tenth less CPU per produced message, a
/// couple of MiB more when idle).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    let cli = tern_cli::Cli::parse();
    tern_cli::run(cli)
}
