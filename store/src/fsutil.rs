//! Small file-system helpers shared by the store's parts.

use std::fs;
use std::path::{Path, PathBuf};

use crate::durable;
use crate::error::{Result, io_err};

/// Makes a directory entry change (create, rename, unlink) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    durable::sync_dir(dir).map_err(io_err(dir))
}

/// [`durable::write_atomic`] with owner-only read and write.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    durable::write_atomic(path, bytes, 0o600).map_err(io_err(path))
}

/// Reads `path`, or `None` if it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    durable::read_optional(path).map_err(io_err(path))
}

/// Files in `dir` whose names are 20-digit numbers, sorted by that number.
pub(crate) fn numbered_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() == 20
            && let Ok(n) = name.parse::<u64>()
        {
            out.push((n, entry.path()));
        }
    }
    out.sort_unstable_by_key(|(n, _)| *n);
    Ok(out)
}

pub(crate) fn numbered_name(n: u64) -> String {
    format!("{n:020}")
}

/// Share of the file system holding `dir` that is in use, 0.0 to 1.0.
pub(crate) fn disk_usage(dir: &Path) -> Result<f64> {
    let st = rustix::fs::statvfs(dir).map_err(|e| io_err(dir)(e.into()))?;
    if st.f_blocks == 0 {
        return Ok(0.0);
    }
    let used = st.f_blocks.saturating_sub(st.f_bfree);
    // Blocks reserved for root count as unavailable, as `df` shows them.
    let usable = used + st.f_bavail;
    Ok(used as f64 / usable.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_usage_is_a_share_or_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let used = disk_usage(dir.path()).unwrap();
        assert!((0.0..=1.0).contains(&used), "{used}");
        assert!(disk_usage(&dir.path().join("missing")).is_err());
    }
}
