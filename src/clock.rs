//! The only place that reads the time.
//!
//! Everything that needs "now" goes through a [`Clock`], so a test clock can be
//! substituted where one is needed.

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
