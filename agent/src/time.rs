//! Time for the loop: a [`Clock`] it reads and sleeps on, the system's in production and a
//! manual one in the loop's tests (so slots are tested without waiting), and the time helpers.

use std::time::Duration;

/// Where the loop gets the time and how it waits.
#[allow(async_fn_in_trait)]
pub trait Clock {
    /// Now, in unix milliseconds.
    fn now_ms(&self) -> i64;
    /// Returns once `now_ms() >= at_ms` (at once if it already is).
    async fn sleep_until(&self, at_ms: i64);
}

/// The wall clock and tokio's timer.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        unix_now_ms()
    }

    async fn sleep_until(&self, at_ms: i64) {
        let wait = (at_ms - unix_now_ms()).max(0) as u64;
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}

/// Now, in unix seconds.
pub fn unix_now() -> i64 {
    unix_now_ms().div_euclid(1000)
}

/// Now, in unix milliseconds.
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Unix seconds as RFC 3339 (Alertmanager's times); empty when out of range.
pub fn rfc3339(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.to_string())
        .unwrap_or_default()
}
