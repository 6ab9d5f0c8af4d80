//! The timer's settings.

use std::time::Duration;

use crate::error::{BrokerError, Result};

/// Settings of delayed messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelayConfig {
    /// Granularity of delivery times: a message is delivered at the first
    /// multiple of this at or after its time. Default 1 s; 100 ms to 60 s.
    pub precision: Duration,
    /// Longest delay a send may ask for; longer ones get
    /// ILLEGAL_DELIVERY_TIME. Default 7 days. Parked messages hold
    /// commit-log retention, so this bounds how long a segment can be
    /// kept past the retention time.
    pub max_delay: Duration,
    /// Most bytes of delayed messages read ahead of their time (the
    /// records due within the next 2 s, staged for release); a larger
    /// burst stages this much and reads the rest when due. Default
    /// 512 MiB; 0 stages nothing.
    pub stage_max_bytes: u64,
}

impl DelayConfig {
    pub const DEFAULT_PRECISION: Duration = Duration::from_secs(1);
    pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(7 * 24 * 3600);
    pub const MIN_PRECISION: Duration = Duration::from_millis(100);
    pub const MAX_PRECISION: Duration = Duration::from_secs(60);
    pub const DEFAULT_STAGE_MAX_BYTES: u64 = 512 << 20;

    /// Refuses a precision outside 100 ms - 60 s or a zero maximum delay.
    pub fn validate(&self) -> Result<()> {
        if self.precision < Self::MIN_PRECISION || self.precision > Self::MAX_PRECISION {
            return Err(BrokerError::Invalid(format!(
                "delay precision {:?} is outside {:?}..={:?}",
                self.precision,
                Self::MIN_PRECISION,
                Self::MAX_PRECISION
            )));
        }
        if self.max_delay.is_zero() {
            return Err(BrokerError::Invalid("max delay must be positive".into()));
        }
        Ok(())
    }
}

impl Default for DelayConfig {
    fn default() -> Self {
        Self {
            precision: Self::DEFAULT_PRECISION,
            max_delay: Self::DEFAULT_MAX_DELAY,
            stage_max_bytes: Self::DEFAULT_STAGE_MAX_BYTES,
        }
    }
}
