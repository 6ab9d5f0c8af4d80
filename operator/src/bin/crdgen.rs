//! Prints the CRDs of the Tern operator, generated from its Rust types.
//!
//! `crdgen` writes every CRD to stdout as one multi-document YAML stream;
//! `crdgen DIR...` writes one file per CRD into each DIR instead. The
//! repository's copies are refreshed with
//! `cargo run -p tern-operator --bin crdgen -- crds charts/tern-operator/crds`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let dirs: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let crds = tern_operator::crd::all();
    if dirs.is_empty() {
        let mut out = std::io::stdout().lock();
        for (_, crd) in &crds {
            writeln!(out, "---")?;
            out.write_all(tern_operator::crd::to_yaml(crd)?.as_bytes())?;
        }
        return Ok(());
    }
    for dir in dirs {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for (file, crd) in &crds {
            let path = dir.join(file);
            std::fs::write(&path, tern_operator::crd::to_yaml(crd)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}
