//! How long a receive or pull may wait for messages (long polling), and
//! how long received messages stay invisible by default.

use std::time::Duration;

use crate::error::{BrokerError, Result};

/// Longest long-polling wait of one receive or pull.
pub const MAX_LONG_POLLING: Duration = Duration::from_secs(20);
/// Shortest long-polling wait of one receive; a client whose deadline
/// leaves less is refused (ILLEGAL_POLLING_TIME).
pub const MIN_LONG_POLLING: Duration = Duration::from_secs(5);
/// Invisibility of messages received with no duration and no `auto_renew`.
pub const DEFAULT_INVISIBLE: Duration = Duration::from_secs(60);
/// Part of the client's deadline kept for the answer to reach it.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// The long-polling time of a receive, as the reference server has it:
/// the `asked` time (20 s if none) clamped to 5..=20 s, then cut to the
/// client's remaining `deadline` less [`DEADLINE_MARGIN`];
/// [`BrokerError::PollingTime`] if that leaves less than 5 s.
pub fn polling_time(asked: Option<Duration>, deadline: Option<Duration>) -> Result<Duration> {
    let poll = asked
        .unwrap_or(MAX_LONG_POLLING)
        .clamp(MIN_LONG_POLLING, MAX_LONG_POLLING);
    let Some(left) = deadline.map(|d| d.saturating_sub(DEADLINE_MARGIN)) else {
        return Ok(poll);
    };
    if left >= poll {
        Ok(poll)
    } else if left >= MIN_LONG_POLLING {
        Ok(left)
    } else {
        Err(BrokerError::PollingTime(format!(
            "the call's deadline leaves {} ms for long polling; at least {} ms are needed",
            left.as_millis(),
            MIN_LONG_POLLING.as_millis()
        )))
    }
}

/// The long-polling time of a pull: the `asked` time (none: no wait) up
/// to 20 s, cut to the client's remaining `deadline` less
/// [`DEADLINE_MARGIN`].
pub fn pull_polling_time(asked: Option<Duration>, deadline: Option<Duration>) -> Duration {
    let poll = asked.unwrap_or(Duration::ZERO).min(MAX_LONG_POLLING);
    match deadline {
        Some(d) => poll.min(d.saturating_sub(DEADLINE_MARGIN)),
        None => poll,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_time_is_clamped() {
        let s = Duration::from_secs;
        let poll =
            |asked: Option<u64>, deadline: Option<u64>| polling_time(asked.map(s), deadline.map(s));
        assert_eq!(poll(None, None).ok(), Some(s(20)));
        assert_eq!(poll(Some(1), None).ok(), Some(s(5)));
        assert_eq!(poll(Some(30), None).ok(), Some(s(20)));
        assert_eq!(poll(Some(10), Some(40)).ok(), Some(s(10)));
        // Cut to the deadline less the margin.
        assert_eq!(poll(Some(20), Some(8)).ok(), Some(s(8) - DEADLINE_MARGIN));
        assert!(matches!(
            poll(Some(20), Some(5)),
            Err(BrokerError::PollingTime(_))
        ));
        assert!(matches!(
            poll(None, Some(1)),
            Err(BrokerError::PollingTime(_))
        ));
    }

    #[test]
    fn pull_polling_time_is_cut() {
        let s = Duration::from_secs;
        assert_eq!(pull_polling_time(None, None), Duration::ZERO);
        assert_eq!(pull_polling_time(Some(s(60)), None), s(20));
        assert_eq!(
            pull_polling_time(Some(s(10)), Some(s(4))),
            s(4) - DEADLINE_MARGIN
        );
        assert_eq!(pull_polling_time(Some(s(10)), Some(s(0))), Duration::ZERO);
    }
}
