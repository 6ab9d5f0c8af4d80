//! The clock of a run and what the load tasks share: when the warm-up
//! ends and the measured window closes, which message is due when (open
//! loop), the claims that hand out message numbers, the stop signal, and
//! live counters for the progress line.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// When things happen in a run.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    /// Start of the run (and of the warm-up).
    pub t0: Instant,
    /// `t0` on the wall clock, in microseconds since the Unix epoch.
    pub wall0_us: u64,
    /// End of the warm-up: start of the measured window.
    pub window_start: Instant,
    /// End of the measured window, unless the run ends by --count only.
    pub end: Option<Instant>,
    /// Measured messages to send (produce, e2e) or receive (consume).
    pub count: Option<u64>,
    /// Messages per second, open loop; 0 for a closed loop.
    pub rate: f64,
}

impl Plan {
    pub(super) fn new(
        warmup: Duration,
        measured: Option<Duration>,
        count: Option<u64>,
        rate: f64,
    ) -> Self {
        let t0 = Instant::now();
        let wall0_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let window_start = t0 + warmup;
        Self {
            t0,
            wall0_us,
            window_start,
            end: measured.map(|d| window_start + d),
            count,
            rate,
        }
    }

    /// `t` on the wall clock, in microseconds since the Unix epoch, as
    /// this run's monotonic clock sees it.
    pub(super) fn wall_us(&self, t: Instant) -> u64 {
        let since = u64::try_from(t.saturating_duration_since(self.t0).as_micros()).unwrap_or(0);
        self.wall0_us.saturating_add(since)
    }

    /// When message `i` is due, in an open loop.
    pub(super) fn due(&self, i: u64) -> Instant {
        self.t0 + Duration::from_secs_f64(i as f64 / self.rate)
    }

    pub(super) fn open_loop(&self) -> bool {
        self.rate > 0.0
    }

    /// The send time stamped on a message meant to be sent at `intended`:
    /// kept on its side of the window's bounds, so the consumers of an
    /// e2e run, who decide by the stamp, count the same messages as the
    /// producer, who decided when it claimed them (a message claimed just
    /// before a bound and sent just after it would otherwise be counted on
    /// one side only).
    pub(super) fn stamp_time(&self, measured: bool, intended: Instant) -> Instant {
        let tick = Duration::from_micros(1);
        if measured {
            match self.end {
                Some(end) => intended.min(end - tick).max(self.window_start),
                None => intended.max(self.window_start),
            }
        } else if intended >= self.window_start {
            self.window_start.checked_sub(tick).unwrap_or(self.t0)
        } else {
            intended
        }
    }
}

/// Messages handed to one SendMessage call.
#[derive(Debug, Clone, Copy)]
pub(super) struct Claim {
    /// Number of the first message (the run counts from 0, warm-up
    /// included).
    pub first: u64,
    /// How many.
    pub n: u32,
    /// Whether they count (claimed in the measured window).
    pub measured: bool,
    /// Open loop: when the last of them is due, so the call waits for it.
    pub due: Option<Instant>,
    /// When the claim was made.
    pub at: Instant,
}

impl Claim {
    /// When message `k` of the claim was meant to be sent, given that the
    /// call started at `start`: in a closed loop, `start`; in an open
    /// loop, its due time. When the claim was made before the call was
    /// due (a slot was free in time), the sender's own lateness (its timer
    /// ticks every millisecond) is not the broker's, and shifts every due
    /// time of the claim; a claim made late (every slot was busy) keeps
    /// its due times, so waiting for a slot counts as latency.
    pub(super) fn intended(&self, plan: &Plan, k: u64, start: Instant) -> Instant {
        match self.due {
            None => start,
            Some(batch_due) => {
                let late = if self.at <= batch_due {
                    start.saturating_duration_since(batch_due)
                } else {
                    Duration::ZERO
                };
                plan.due(self.first + k) + late
            }
        }
    }
}

/// Counters the progress line reads once a second.
#[derive(Debug, Default)]
pub(super) struct Live {
    pub sent: AtomicU64,
    pub received: AtomicU64,
    pub errors: AtomicU64,
}

/// What every load task of a run shares.
#[derive(Debug)]
pub(super) struct Shared {
    pub plan: Plan,
    next: AtomicU64,
    measured_claims: AtomicU64,
    /// Measured messages received so far (consume, e2e).
    pub received_measured: AtomicU64,
    stopped: AtomicBool,
    stop_tx: watch::Sender<bool>,
    stop_at: Mutex<Option<Instant>>,
    pub live: Live,
}

impl Shared {
    pub(super) fn new(plan: Plan) -> Self {
        Self {
            plan,
            next: AtomicU64::new(0),
            measured_claims: AtomicU64::new(0),
            received_measured: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            stop_tx: watch::channel(false).0,
            stop_at: Mutex::new(None),
            live: Live::default(),
        }
    }

    /// Ends the run: no new claims, receive loops return. The first call
    /// sets the stop time.
    pub(super) fn stop(&self) {
        if !self.stopped.swap(true, Ordering::SeqCst) {
            *self.stop_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            self.stop_tx.send_replace(true);
        }
    }

    pub(super) fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// When [`Shared::stop`] was first called.
    pub(super) fn stop_at(&self) -> Option<Instant> {
        *self.stop_at.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A receiver that sees `true` once the run is stopped.
    pub(super) fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop_tx.subscribe()
    }

    /// The next `want` messages to send, or `None` once the run has no
    /// more: stopped, past the end of the window, or --count measured
    /// messages handed out (the last claim may be short).
    pub(super) fn claim(&self, want: u32) -> Option<Claim> {
        if self.stopped() {
            return None;
        }
        let first = self.next.fetch_add(u64::from(want), Ordering::Relaxed);
        let plan = &self.plan;
        let at = Instant::now();
        let (starts, due) = if plan.open_loop() {
            let last = first + u64::from(want) - 1;
            (plan.due(first), Some(plan.due(last)))
        } else {
            (at, None)
        };
        if plan.end.is_some_and(|end| starts >= end) {
            return None;
        }
        let measured = starts >= plan.window_start;
        let mut n = want;
        if measured && let Some(count) = plan.count {
            let before = self
                .measured_claims
                .fetch_add(u64::from(want), Ordering::Relaxed);
            if before >= count {
                self.stop();
                return None;
            }
            let left = count - before;
            if left <= u64::from(want) {
                n = u32::try_from(left).unwrap_or(want);
                self.stop();
            }
        }
        let due = match due {
            Some(_) if n != want => Some(plan.due(first + u64::from(n) - 1)),
            d => d,
        };
        Some(Claim {
            first,
            n,
            measured,
            due,
            at,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn shared(plan: Plan) -> Shared {
        Shared::new(plan)
    }

    #[test]
    fn counted_claims_stop_at_the_count() {
        let s = shared(Plan::new(Duration::ZERO, None, Some(5), 0.0));
        let a = s.claim(2).unwrap();
        assert_eq!((a.first, a.n, a.measured), (0, 2, true));
        let b = s.claim(2).unwrap();
        assert_eq!((b.first, b.n), (2, 2));
        let c = s.claim(2).unwrap();
        assert_eq!((c.first, c.n), (4, 1));
        assert!(s.stopped());
        assert!(s.claim(2).is_none());
    }

    #[test]
    fn open_loop_claims_are_due_on_schedule() {
        let s = shared(Plan::new(
            Duration::from_secs(1),
            Some(Duration::from_secs(1)),
            None,
            10.0,
        ));
        let t0 = s.plan.t0;
        let first = s.claim(1).unwrap();
        assert_eq!(first.due, Some(t0));
        assert!(!first.measured, "due in the warm-up");
        let mut last = first;
        let mut claims = 1;
        while let Some(c) = s.claim(1) {
            last = c;
            claims += 1;
        }
        // 1 s of warm-up and 1 s measured at 10 msg/s.
        assert_eq!(claims, 20);
        assert!(last.measured);
        let near = |a: Option<Instant>, b: Instant| {
            let a = a.unwrap();
            a.max(b) - a.min(b) < Duration::from_micros(1)
        };
        assert!(near(last.due, t0 + Duration::from_millis(1900)));
        let b = shared(Plan::new(Duration::ZERO, None, None, 10.0));
        let batch = b.claim(3).unwrap();
        assert!(near(batch.due, b.plan.t0 + Duration::from_millis(200)));
    }

    #[test]
    fn intended_times_skip_the_senders_own_lateness() {
        let plan = Plan::new(Duration::ZERO, None, None, 1000.0);
        let t0 = plan.t0;
        let ms = Duration::from_millis;
        // Claimed early, sent 0.7 ms late: the lateness is the sender's.
        let early = Claim {
            first: 10,
            n: 2,
            measured: true,
            due: Some(t0 + ms(11)),
            at: t0,
        };
        let near = |a: Instant, b: Instant| a.max(b) - a.min(b) < Duration::from_micros(1);
        let start = t0 + ms(11) + Duration::from_micros(700);
        assert!(near(early.intended(&plan, 1, start), start));
        assert!(near(early.intended(&plan, 0, start), start - ms(1)));
        // Claimed after it was due: waiting for a slot counts.
        let late = Claim {
            at: t0 + ms(50),
            ..early
        };
        let start = t0 + ms(50);
        assert!(near(late.intended(&plan, 1, start), t0 + ms(11)));
        // Closed loop: from the start of the call.
        let closed = Claim { due: None, ..early };
        assert_eq!(closed.intended(&plan, 1, start), start);
    }

    #[test]
    fn stamps_stay_on_their_side_of_the_window() {
        let plan = Plan::new(
            Duration::from_secs(1),
            Some(Duration::from_secs(1)),
            None,
            0.0,
        );
        let (start, end) = (plan.window_start, plan.end.unwrap());
        let us = Duration::from_micros;
        let t = start + us(500);
        assert_eq!(plan.stamp_time(true, t), t);
        assert!(plan.stamp_time(true, end + us(300)) < end);
        assert!(plan.stamp_time(false, start + us(300)) < start);
        let early = plan.t0 + us(10);
        assert_eq!(plan.stamp_time(false, early), early);
        let wall = |t| plan.wall_us(t);
        assert!(wall(plan.stamp_time(true, end + us(300))) < wall(end));
        assert!(wall(plan.stamp_time(false, start)) < wall(start));
    }

    #[test]
    fn closed_loop_claims_end_with_the_window() {
        let s = shared(Plan::new(Duration::ZERO, Some(Duration::ZERO), None, 0.0));
        assert!(s.claim(1).is_none());
        let s = shared(Plan::new(Duration::from_secs(60), None, None, 0.0));
        assert!(!s.claim(1).unwrap().measured);
        s.stop();
        assert!(s.claim(1).is_none());
        assert!(s.stop_at().is_some());
        assert!(*s.stop_signal().borrow());
    }
}
