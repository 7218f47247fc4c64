//! Writing the history from the loop: a failed write (a full disk, a read-only volume) never
//! stops judging. The history stays in memory, the failure is counted and shown on `/healthz`
//! as a warning, and the write is retried with backoff (1 s doubling to 60 s) until it succeeds.

use std::path::Path;

use upsoak_common::ops::Health;

use crate::events::{AgentMetrics, StateWriteFailed, StateWriteRecovered};
use crate::history::History;

/// The file name in metrics and warnings.
const FILE: &str = "history.json";

/// Whether the history has changes not yet written, and the retry state of failed writes.
#[derive(Debug, Default)]
pub struct Saving {
    pending: bool,
    failures: u32,
    /// Clock milliseconds of the next attempt.
    next_try_ms: Option<i64>,
}

impl Saving {
    /// The history changed: it is written at the next [`Saving::save_if_due`].
    pub fn changed(&mut self) {
        self.pending = true;
    }

    /// Writes the history if it has unwritten changes and no failed write's backoff is running
    /// at `now_ms` (the loop's clock; a backoff further ahead than its longest, after the clock
    /// stepped back, is over).
    pub fn save_if_due(
        &mut self,
        history: &History,
        dir: &Path,
        now_ms: i64,
        health: &Health,
        m: &AgentMetrics,
    ) {
        let longest = crate::sinks::backoff(u32::MAX).as_millis() as i64;
        let waiting = self
            .next_try_ms
            .is_some_and(|t| now_ms < t && t - now_ms <= longest);
        if !self.pending || waiting {
            return;
        }
        match history.save(dir) {
            Ok(()) => {
                if self.failures > 0 {
                    StateWriteRecovered {
                        file: FILE,
                        failures: self.failures,
                    }
                    .emit(m);
                    health.warn(FILE, None);
                }
                *self = Saving::default();
            }
            Err(e) => {
                self.failures += 1;
                let retry_in = crate::sinks::backoff(self.failures);
                self.next_try_ms = Some(now_ms + retry_in.as_millis() as i64);
                StateWriteFailed {
                    file: FILE,
                    error: &e,
                    failures: self.failures,
                    retry_in,
                }
                .emit(m);
                health.warn(
                    FILE,
                    Some(format!(
                        "cannot write {}: {} ({} failures; kept in memory, retrying in {:?})",
                        History::path(dir).display(),
                        crate::error::chain(&e),
                        self.failures,
                        retry_in
                    )),
                );
            }
        }
    }
}
