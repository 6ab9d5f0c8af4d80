//! A test harness that starts real `tern` processes.
//!
//! Integration tests use it to run the built binary the way an operator
//! would, and to stop it the ways a machine can: cleanly with SIGTERM, or
//! abruptly with SIGKILL.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! let dir = std::path::Path::new("/tmp/tern-test/data");
//! let mut tern = tern_harness::TernProcess::standalone(dir)?; // waits for `store open`
//! let status = tern.terminate()?;                             // SIGTERM, then waits
//! assert_eq!(status.code(), Some(0));
//! assert!(tern.log()?.contains(tern_harness::STORE_CLOSED));
//! # Ok(())
//! # }
//! ```
//!
//! Each process writes its standard output and standard error to files next
//! to its data directory (`<data-dir>.run-<n>.stdout.log` and
//! `<data-dir>.run-<n>.stderr.log`, with `n` counting the runs on that
//! directory), so a failing test leaves its logs behind and restarts on the
//! same directory never read an earlier run's log.
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

pub mod replicas;

/// The message `tern standalone` logs once its store has opened.
pub const STORE_OPEN: &str = "store open";

/// The message `tern standalone` logs once its store has been flushed and
/// closed.
pub const STORE_CLOSED: &str = "store closed";

/// How long [`TernProcess::standalone`] waits for [`STORE_OPEN`].
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`TernProcess::terminate`] waits for the process to exit.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// How often log files and exit status are polled.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A TCP port on 127.0.0.1 that nothing listens on right now (the OS
/// picks it; another process could take it before the test binds it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding an ephemeral port on 127.0.0.1")
        .port()
}

/// A command running the `tern` binary at `bin` as a user would from a
/// clean shell: without the test environment's `TERN_ENDPOINT`,
/// `TERN_OUTPUT`, `TERN_TIMEOUT`, credential, TLS and logging variables (RUST_BACKTRACE
/// would add a backtrace after every error line), standard input closed.
pub fn cli_command(bin: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(bin);
    for var in [
        "TERN_ENDPOINT",
        "TERN_OUTPUT",
        "TERN_TIMEOUT",
        "RUST_LOG",
        "RUST_BACKTRACE",
        "RUST_LIB_BACKTRACE",
        "TERN_ACCESS_KEY",
        "TERN_SECRET_KEY",
        "TERN_TLS",
        "TERN_CA_FILE",
        "TERN_INSECURE_SKIP_VERIFY",
    ] {
        c.env_remove(var);
    }
    c.stdin(Stdio::null());
    c
}

/// The root of the Cargo workspace this harness was built in.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.join(".."), Path::to_path_buf)
}

/// Finds the `tern` binary to run.
///
/// `TERN_BIN` wins when set. Otherwise the newest of `debug/tern` and
/// `release/tern` in the target directory (`CARGO_TARGET_DIR`, else
/// `target/` in the workspace root). Tests of the `tern-cli` crate itself
/// should pass `env!("CARGO_BIN_EXE_tern")` to
/// [`TernProcess::standalone_with`] instead.
pub fn tern_bin() -> io::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("TERN_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let root = workspace_root();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), |dir| root.join(dir));
    let candidates = ["debug", "release"].map(|profile| target_dir.join(profile).join("tern"));
    candidates
        .iter()
        .filter_map(|path| {
            let modified = path.metadata().ok()?.modified().ok()?;
            Some((modified, path))
        })
        .max()
        .map(|(_, path)| path.clone())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "no tern binary at {} or {}: build it with `cargo build -p tern-cli` \
                     or set TERN_BIN",
                    candidates[0].display(),
                    candidates[1].display()
                ),
            )
        })
}

/// A running (or finished) `tern` process. Dropping it kills the process.
#[derive(Debug)]
pub struct TernProcess {
    child: Child,
    data_dir: PathBuf,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    status: Option<ExitStatus>,
}

impl TernProcess {
    /// Starts `tern standalone --data-dir <data_dir>` with the binary from
    /// [`tern_bin`], and waits until it has logged [`STORE_OPEN`].
    pub fn standalone(data_dir: impl AsRef<Path>) -> io::Result<Self> {
        Self::standalone_with(tern_bin()?, data_dir, &[])
    }

    /// Starts `<bin> standalone --data-dir <data_dir> <extra_args>` and waits
    /// until it has logged [`STORE_OPEN`] (at most [`STARTUP_TIMEOUT`]).
    ///
    /// The child logs text at level `info` whatever `RUST_LOG` and
    /// `TERN_LOG_FORMAT` say in the test's environment. The broker binds
    /// its `--listen` address (default `127.0.0.1:8081`): pass
    /// `--listen 127.0.0.1:0` (or a free port) in `extra_args` when several
    /// may run at once.
    pub fn standalone_with(
        bin: impl AsRef<Path>,
        data_dir: impl AsRef<Path>,
        extra_args: &[&str],
    ) -> io::Result<Self> {
        let data_dir = data_dir.as_ref();
        let mut command = Command::new(bin.as_ref());
        command
            .args(["--log-format", "text", "standalone", "--data-dir"])
            .arg(data_dir)
            .args(extra_args)
            .env("RUST_LOG", "info");
        let mut process = Self::spawn(command, data_dir)?;
        process.wait_for_log(STORE_OPEN, STARTUP_TIMEOUT)?;
        Ok(process)
    }

    /// Spawns `command` with its output captured to log files beside
    /// `data_dir`, without waiting for anything.
    pub fn spawn(mut command: Command, data_dir: impl AsRef<Path>) -> io::Result<Self> {
        let data_dir = data_dir.as_ref().to_path_buf();
        let (stdout_path, stdout, stderr_path, stderr) = create_log_files(&data_dir)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|err| {
                io::Error::new(
                    err.kind(),
                    format!("starting {:?}: {err}", command.get_program()),
                )
            })?;
        Ok(Self {
            child,
            data_dir,
            stdout_path,
            stderr_path,
            status: None,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The data directory the process was started on.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The file holding the process's standard error, where its logs go.
    pub fn log_path(&self) -> &Path {
        &self.stderr_path
    }

    /// The file holding the process's standard output.
    pub fn stdout_path(&self) -> &Path {
        &self.stdout_path
    }

    /// Everything the process has logged (standard error) so far.
    pub fn log(&self) -> io::Result<String> {
        read_lossy(&self.stderr_path)
    }

    /// Everything the process has written to standard output so far.
    pub fn stdout(&self) -> io::Result<String> {
        read_lossy(&self.stdout_path)
    }

    /// Waits until the log contains `needle`. Fails if the process exits
    /// first or `timeout` passes; the error message includes the log.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log()?;
            if log.contains(needle) {
                return Ok(());
            }
            if let Some(status) = self.try_wait()? {
                // Read once more: the line may have been written just before exit.
                let log = self.log()?;
                if log.contains(needle) {
                    return Ok(());
                }
                return Err(io::Error::other(format!(
                    "tern (pid {}) exited with {status} before logging `{needle}`; log:\n{log}",
                    self.pid()
                )));
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "tern (pid {}) did not log `{needle}` within {timeout:?}; log:\n{log}",
                        self.pid()
                    ),
                ));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Returns the exit status if the process has exited, without blocking.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.child.try_wait()?;
        }
        Ok(self.status)
    }

    /// Waits up to `timeout` for the process to exit; `None` if it is still
    /// running then.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Kills the process with SIGKILL, as a crash or power cut would end
    /// it, and returns its exit status. A process that has already exited is
    /// left alone.
    pub fn kill9(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.try_wait()? {
            return Ok(status);
        }
        // `Child::kill` sends SIGKILL on Unix.
        self.child.kill()?;
        let status = self.child.wait()?;
        self.status = Some(status);
        Ok(status)
    }

    /// Freezes the process with SIGSTOP: it keeps its sockets and files
    /// but does nothing (a stalled machine, a long GC pause) until
    /// [`TernProcess::resume`].
    pub fn pause(&self) -> io::Result<()> {
        self.signal(Signal::STOP)
    }

    /// Lets a paused process go on (SIGCONT).
    pub fn resume(&self) -> io::Result<()> {
        self.signal(Signal::CONT)
    }

    fn signal(&self, signal: Signal) -> io::Result<()> {
        kill_process(Pid::from_child(&self.child), signal).map_err(io::Error::from)
    }

    /// Sends SIGTERM and waits up to [`SHUTDOWN_TIMEOUT`] for the process to
    /// exit. If it is still running then, it is killed with SIGKILL and this
    /// fails with [`io::ErrorKind::TimedOut`].
    pub fn terminate(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.try_wait()? {
            return Ok(status);
        }
        // The child has not been reaped (`try_wait` returned `None`), so its
        // pid cannot have been reused by another process.
        kill_process(Pid::from_child(&self.child), Signal::TERM)?;
        if let Some(status) = self.wait_timeout(SHUTDOWN_TIMEOUT)? {
            return Ok(status);
        }
        let status = self.kill9()?;
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "tern (pid {}) did not exit within {SHUTDOWN_TIMEOUT:?} of SIGTERM and was \
                 killed ({status}); log:\n{}",
                self.pid(),
                self.log().unwrap_or_default()
            ),
        ))
    }
}

impl Drop for TernProcess {
    fn drop(&mut self) {
        if self.status.is_none() {
            // Nothing useful can be done with a failure here: the process is
            // either gone already or beyond our reach.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Creates a fresh pair of log files beside `data_dir`:
/// `<name>.run-<n>.stdout.log` and `<name>.run-<n>.stderr.log`, with the
/// smallest `n` not taken yet.
fn create_log_files(data_dir: &Path) -> io::Result<(PathBuf, File, PathBuf, File)> {
    let parent = match data_dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        Some(_) => PathBuf::from("."),
        None => std::env::temp_dir(),
    };
    std::fs::create_dir_all(&parent)?;
    let name = data_dir
        .file_name()
        .map_or_else(|| "tern".into(), |name| name.to_string_lossy());
    for run in 0_u32.. {
        let stdout_path = parent.join(format!("{name}.run-{run}.stdout.log"));
        let stderr_path = parent.join(format!("{name}.run-{run}.stderr.log"));
        let Some(stdout) = create_new(&stdout_path)? else {
            continue;
        };
        let Some(stderr) = create_new(&stderr_path)? else {
            continue;
        };
        return Ok((stdout_path, stdout, stderr_path, stderr));
    }
    Err(io::Error::other(format!(
        "no free log file name beside {}",
        data_dir.display()
    )))
}

/// Creates `path`, or returns `None` if it already exists.
fn create_new(path: &Path) -> io::Result<Option<File>> {
    match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(file) => Ok(Some(file)),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(None),
        Err(err) => Err(err),
    }
}

fn read_lossy(path: &Path) -> io::Result<String> {
    Ok(String::from_utf8_lossy(&std::fs::read(path)?).into_owned())
}

/// Every commit-log segment file of the store in `store_dir`, by file
/// name: what two replicas' stores must hold alike, byte for byte. Panics
/// (a test failure) if the directory cannot be read.
pub fn commit_log_files(store_dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn read<T>(r: io::Result<T>, dir: &Path) -> T {
        r.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
    }
    read(std::fs::read_dir(store_dir.join("commitlog")), store_dir)
        .map(|e| read(e, store_dir).path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, read(std::fs::read(&p), store_dir))
        })
        .collect()
}

/// A storage configuration for tests: small files, so a few hundred
/// messages cross segment, consume-queue and index-file boundaries, quick
/// checkpoints, and no disk limits (the machine's disk may be nearly full
/// for reasons of its own; tests of the limits set them explicitly).
pub fn small_store_config(
    dir: impl Into<PathBuf>,
    flush: tern_store::FlushPolicy,
) -> tern_store::StoreConfig {
    let mut c = tern_store::StoreConfig::new(dir);
    c.flush = flush;
    c.segment_size = 64 * 1024;
    c.cq_entries_per_file = 64;
    c.index_slots = 97;
    c.index_entries_per_file = 256;
    c.checkpoint_interval = Duration::from_millis(50);
    c.flush_interval = Duration::from_millis(20);
    c.clean_interval = Duration::from_secs(3600);
    c.disk_high_water = 1.0;
    c.disk_hard_limit = 1.0;
    c
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;

    use super::*;

    #[test]
    fn log_files_are_fresh_per_run() {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let (out0, _, err0, _) = create_log_files(&data_dir).unwrap();
        let (out1, _, err1, _) = create_log_files(&data_dir).unwrap();
        assert_eq!(out0, tmp.path().join("data.run-0.stdout.log"));
        assert_eq!(err0, tmp.path().join("data.run-0.stderr.log"));
        assert_eq!(out1, tmp.path().join("data.run-1.stdout.log"));
        assert_eq!(err1, tmp.path().join("data.run-1.stderr.log"));
    }

    #[test]
    fn captures_output_and_kills() {
        let tmp = tempfile::tempdir().unwrap();
        let mut command = Command::new("sh");
        command.args(["-c", "echo out; echo 'store open' >&2; exec sleep 60"]);
        let mut process = TernProcess::spawn(command, tmp.path().join("data")).unwrap();
        process
            .wait_for_log(STORE_OPEN, Duration::from_secs(10))
            .unwrap();
        let status = process.kill9().unwrap();
        assert_eq!(status.signal(), Some(9));
        assert_eq!(process.stdout().unwrap(), "out\n");
    }

    #[test]
    fn terminate_sends_sigterm() {
        let tmp = tempfile::tempdir().unwrap();
        let mut command = Command::new("sh");
        command.args(["-c", "exec sleep 60"]);
        let mut process = TernProcess::spawn(command, tmp.path().join("data")).unwrap();
        let status = process.terminate().unwrap();
        assert_eq!(status.signal(), Some(15));
    }

    #[test]
    fn early_exit_is_reported_with_the_log() {
        let tmp = tempfile::tempdir().unwrap();
        let mut command = Command::new("sh");
        command.args(["-c", "echo 'bad config' >&2; exit 3"]);
        let mut process = TernProcess::spawn(command, tmp.path().join("data")).unwrap();
        let err = process
            .wait_for_log(STORE_OPEN, Duration::from_secs(10))
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("bad config"), "{message}");
        assert_eq!(process.try_wait().unwrap().and_then(|s| s.code()), Some(3));
    }
}
