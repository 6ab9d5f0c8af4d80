//! A full disk: a real small file system (a size-limited tmpfs mounted for
//! the test), so writes hit ENOSPC for real. Needs root to mount; CI runs as
//! root. Without it the test says so and stops.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{body_for, msg, small_config};
use tern_store::{FlushPolicy, Store, StoreConfig, StoreError};

struct Tmpfs {
    at: PathBuf,
    _holder: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let holder = tempfile::tempdir().unwrap();
        let at = holder.path().join("fs");
        fs::create_dir(&at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("cannot mount a tmpfs here (needs root): disk-full test not run");
            return None;
        }
        Some(Self {
            at,
            _holder: holder,
        })
    }
    fn path(&self) -> &Path {
        &self.at
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.at).status();
    }
}

/// Writes to `path` until the file system is full.
fn fill_up(path: &Path) {
    use std::io::Write;
    let mut f = fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
}

fn config(dir: &Path) -> StoreConfig {
    let mut c = small_config(dir, FlushPolicy::Sync);
    c.segment_size = 256 * 1024;
    // Only the real ENOSPC stops appends in the first part.
    c.disk_high_water = 1.0;
    c.disk_hard_limit = 1.0;
    c
}

#[test]
fn enospc_is_typed_loses_nothing_and_recovers_when_space_is_freed() {
    let Some(fs_) = Tmpfs::mount("4m") else {
        return;
    };
    let dir = fs_.path().join("store");
    let ballast = fs_.path().join("ballast");
    fs::write(&ballast, vec![0u8; 1024 * 1024]).unwrap();

    let store = Store::open(config(&dir)).unwrap();
    let mut acked = Vec::new();
    let err = loop {
        let i = acked.len() as u64;
        match store.append(&[msg("full", 0, &format!("f{i}"), &body_for(i, 2000))]) {
            Ok(a) => acked.push(a[0]),
            Err(e) => break e,
        }
        assert!(acked.len() < 10_000, "a 4 MiB file system never filled");
    };
    assert!(matches!(err, StoreError::DiskFull { .. }), "got {err:?}");
    assert!(acked.len() > 100);
    // Reads go on; every acknowledged message is intact.
    for (i, a) in acked.iter().enumerate() {
        let m = store.read(a.position).unwrap();
        assert_eq!(m.message.body, body_for(i as u64, 2000));
    }
    // Refused again while the disk stays full, with nothing half-written.
    assert!(matches!(
        store.append(&[msg("full", 0, "again", &body_for(0, 2000))]),
        Err(StoreError::DiskFull { .. })
    ));
    // Free space: appends resume without a restart, offsets continue.
    fs::remove_file(&ballast).unwrap();
    let a = store
        .append(&[msg("full", 0, "after", &body_for(7, 2000))])
        .unwrap();
    assert_eq!(a[0].queue_offset, acked.len() as u64);
    store.close().unwrap();

    let store = Store::open(config(&dir)).unwrap();
    assert_eq!(store.queue_range("full", 0), (0, acked.len() as u64 + 1));
    for (i, a) in acked.iter().enumerate() {
        assert_eq!(
            store.read(a.position).unwrap().message.body,
            body_for(i as u64, 2000)
        );
    }
    store.close().unwrap();
}

#[test]
fn high_water_deletes_old_segments_and_hard_limit_refuses_appends() {
    let Some(fs_) = Tmpfs::mount("8m") else {
        return;
    };
    let dir = fs_.path().join("store");
    let mut cfg = config(&dir);
    cfg.disk_high_water = 0.5;
    cfg.disk_hard_limit = 0.9;
    let store = Store::open(cfg.clone()).unwrap();
    for i in 0..1500u64 {
        store
            .append(&[msg("hw", 0, &format!("h{i}"), &body_for(i, 2000))])
            .unwrap();
    }
    assert!(store.wait_dispatched(store.max_offset(), std::time::Duration::from_secs(5)));
    let segments_before = store.stats().segments;
    assert!(segments_before > 8);

    // Someone else fills half the disk: past the high-water mark, the
    // oldest segments go, young as they are.
    fs::write(fs_.path().join("ballast1"), vec![0u8; 4 << 20]).unwrap();
    let report = store.enforce_retention().unwrap();
    assert!(report.segments_deleted > 0, "{report:?}");
    assert!(!report.disk_full, "{report:?}");
    let (min, max) = store.queue_range("hw", 0);
    assert!(min > 0 && max == 1500, "{min}..{max}");
    assert_eq!(
        store.get("hw", 0, 1499).unwrap().message.body,
        body_for(1499, 2000)
    );
    store.append(&[msg("hw", 0, "still", b"ok")]).unwrap();

    // More foreign data: above the hard limit, appends are refused, reads go on.
    fill_up(&fs_.path().join("ballast2"));
    let report = store.enforce_retention().unwrap();
    assert!(report.disk_full, "{report:?}");
    assert!(store.disk_usage() >= 0.9, "{}", store.disk_usage());
    assert!(matches!(
        store.append(&[msg("hw", 0, "refused", b"x")]),
        Err(StoreError::DiskFull { .. })
    ));
    assert!(store.wait_dispatched(store.max_offset(), std::time::Duration::from_secs(5)));
    assert_eq!(
        store.get("hw", 0, 1500).unwrap().message.body,
        b"ok".to_vec()
    );

    // Space freed: appends resume without a restart.
    fs::remove_file(fs_.path().join("ballast2")).unwrap();
    let report = store.enforce_retention().unwrap();
    assert!(!report.disk_full, "{report:?}");
    assert!(store.disk_usage() < 0.9, "{}", store.disk_usage());
    let a = store.append(&[msg("hw", 0, "resumed", b"ok")]).unwrap();
    assert_eq!(a[0].queue_offset, 1501);
    store.close().unwrap();
}
