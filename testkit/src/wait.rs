//! Waiting on real state: poll a condition until it holds or a deadline passes. A test that
//! sleeps for "long enough" is slow when the machine is fast and flaky when it is slow.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

/// A poll interval that suits loopback processes: fast enough that a test does not idle,
/// slow enough not to load a 2-core machine.
pub const POLL: Duration = Duration::from_millis(50);

/// A condition that did not hold in time.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TimedOut {
    /// How long it was polled.
    pub after: Duration,
    /// How many times.
    pub polls: u32,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timed out after {:?} ({} polls)", self.after, self.polls)
    }
}

// `expect` prints the Debug form: make it the sentence.
impl fmt::Debug for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for TimedOut {}

/// Calls `f` every `poll` until it gives `Some`, for at most `within`; `f` runs at least once,
/// and once more at the deadline, so a slow poll does not lose the last chance.
///
/// `eventually(Duration::from_secs(20), POLL, || async { ready().then_some(()) }).await
/// .expect("the fleet to be ready")`
pub async fn eventually<T, F, Fut>(
    within: Duration,
    poll: Duration,
    mut f: F,
) -> Result<T, TimedOut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    let mut polls = 0;
    loop {
        polls += 1;
        if let Some(v) = f().await {
            return Ok(v);
        }
        let elapsed = start.elapsed();
        if elapsed >= within {
            return Err(TimedOut {
                after: elapsed,
                polls,
            });
        }
        tokio::time::sleep(poll.min(within - elapsed)).await;
    }
}

/// [`eventually`] for code without an async runtime: blocks the thread between polls.
pub fn eventually_blocking<T>(
    within: Duration,
    poll: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T, TimedOut> {
    let start = Instant::now();
    let mut polls = 0;
    loop {
        polls += 1;
        if let Some(v) = f() {
            return Ok(v);
        }
        let elapsed = start.elapsed();
        if elapsed >= within {
            return Err(TimedOut {
                after: elapsed,
                polls,
            });
        }
        std::thread::sleep(poll.min(within - elapsed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn returns_the_first_value_and_polls_until_then() {
        let calls = AtomicU32::new(0);
        let v = eventually(Duration::from_secs(5), Duration::from_millis(1), || async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            (n == 3).then_some(n * 10)
        })
        .await;
        assert_eq!(v, Ok(30));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn times_out_after_the_deadline_with_a_last_poll_at_it() {
        let start = Instant::now();
        let r: Result<(), _> = eventually(
            Duration::from_millis(60),
            Duration::from_millis(25),
            || async { None },
        )
        .await;
        let e = r.expect_err("never true");
        assert!(start.elapsed() >= Duration::from_millis(60));
        assert!(e.after >= Duration::from_millis(60));
        // At 0, 25, 50 and at the deadline; fewer when a loaded machine oversleeps.
        assert!((2..=4).contains(&e.polls), "{e}");
        assert!(e.to_string().starts_with("timed out after "), "{e}");
    }

    #[test]
    fn blocking_variant_behaves_alike() {
        let mut n = 0;
        assert_eq!(
            eventually_blocking(Duration::from_secs(5), Duration::from_millis(1), || {
                n += 1;
                (n == 2).then_some("done")
            }),
            Ok("done")
        );
        let e = eventually_blocking(Duration::ZERO, POLL, || None::<()>).expect_err("never");
        assert_eq!(e.polls, 1);
    }
}
