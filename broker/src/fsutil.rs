//! Small file-system helpers.

use std::fs::{self, File};
use std::path::Path;

use tern_store::durable;

use crate::error::{BrokerError, Result, io_err};

/// Makes a directory entry change (create, rename, unlink) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    durable::sync_dir(dir).map_err(io_err(dir))
}

/// Replaces `path` with `bytes` atomically and durably, with permissions
/// `mode` (see [`durable::write_atomic`]).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    durable::write_atomic(path, bytes, mode).map_err(io_err(path))
}

/// Reads `path`, or `None` if it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    durable::read_optional(path).map_err(io_err(path))
}

/// Takes an exclusive lock on `<dir>/<name>` so only one process uses the
/// files it guards; held while the returned file is open.
pub(crate) fn lock_file(dir: &Path, name: &str) -> Result<File> {
    let path = dir.join(name);
    durable::lock_exclusive(&path)
        .map_err(io_err(&path))?
        .ok_or_else(|| {
            BrokerError::Failed(format!(
                "{} is in use by another process (lock held on {})",
                dir.display(),
                path.display()
            ))
        })
}

/// Creates `dir` and its parents if missing.
pub(crate) fn ensure_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(io_err(dir))
}
