//! The querier the loop uses: Prometheus through a watchdog. Every answered query beats the
//! loop's [`Heartbeat`]; a failed one leaves its error as the heartbeat's note, so a stalled
//! `/healthz` says what the last query failed with (a timeout, a refusal).

use std::collections::BTreeMap;

use upsoak_common::ops::Heartbeat;

use crate::prom::{Querier, Series};

/// `Q` whose answers beat `beat`.
pub struct Watched<'a, Q> {
    inner: &'a Q,
    beat: Heartbeat,
}

impl<'a, Q: Querier> Watched<'a, Q> {
    pub fn new(inner: &'a Q, beat: Heartbeat) -> Watched<'a, Q> {
        Watched { inner, beat }
    }

    fn seen<T>(&self, r: crate::Result<T>) -> crate::Result<T> {
        match &r {
            Ok(_) => self.beat.beat(),
            Err(e) => self
                .beat
                .note(format!("last query failed: {}", crate::error::chain(e))),
        }
        r
    }
}

impl<Q: Querier> Querier for Watched<'_, Q> {
    async fn range(&self, expr: &str, start: i64, end: i64, step: f64) -> crate::Result<Series> {
        self.seen(self.inner.range(expr, start, end, step).await)
    }

    async fn labels_at(
        &self,
        expr: &str,
        time: i64,
    ) -> crate::Result<Vec<BTreeMap<String, String>>> {
        self.seen(self.inner.labels_at(expr, time).await)
    }

    async fn instant(&self, expr: &str, time: i64) -> crate::Result<Vec<f64>> {
        self.seen(self.inner.instant(expr, time).await)
    }
}
