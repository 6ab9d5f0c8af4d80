//! Synchronisation primitives the store's threads share.
//!
//! Locks are `parking_lot`'s: they are not poisoned by a panic. A panic
//! while holding one of the store's locks cannot leave the data on disk
//! inconsistent (the disk is the truth), so the store carries on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// A counter with a condition variable: waiters sleep until it moves.
/// `notify` costs two atomic operations when nobody waits, so hot paths
/// may call it on every append.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    generation: AtomicU64,
    waiters: AtomicU64,
    mu: Mutex<()>,
    cv: Condvar,
}

impl Signal {
    pub fn notify(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _g = self.mu.lock();
            self.cv.notify_all();
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Waits until the generation differs from `seen` or `timeout` passes.
    pub fn wait(&self, seen: u64, timeout: Duration) {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let mut g = self.mu.lock();
        self.cv.wait_while_for(
            &mut g,
            |_| self.generation.load(Ordering::SeqCst) == seen,
            timeout,
        );
        drop(g);
        self.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;

    #[test]
    fn wait_returns_on_notify_or_timeout() {
        let s = Arc::new(Signal::default());
        // Nothing moves: the wait times out.
        let started = Instant::now();
        s.wait(s.generation(), Duration::from_millis(20));
        assert!(started.elapsed() >= Duration::from_millis(20));
        // Moved already: no wait at all.
        let seen = s.generation();
        s.notify();
        let started = Instant::now();
        s.wait(seen, Duration::from_secs(10));
        assert!(started.elapsed() < Duration::from_secs(5));
        // Moved by another thread while waiting.
        let seen = s.generation();
        let t = {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                s.notify();
            })
        };
        let started = Instant::now();
        s.wait(seen, Duration::from_secs(10));
        assert!(started.elapsed() < Duration::from_secs(5));
        t.join().unwrap();
    }
}
