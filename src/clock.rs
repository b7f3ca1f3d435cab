//! The only place that reads the time.
//!
//! Everything that needs "now" takes a [`Clock`], so tests can drive time by hand.

use std::sync::atomic::{AtomicU64, Ordering};

/// A source of UNIX time in seconds.
pub trait Clock: Send + Sync + 'static {
    /// Seconds since the UNIX epoch.
    fn now_secs(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_secs(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock standing at `secs`.
    pub fn new(secs: u64) -> Self {
        ManualClock(AtomicU64::new(secs))
    }

    /// Moves the clock forward by `secs`.
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_secs(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
