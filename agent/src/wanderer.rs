//! What the agent reads of the Wanderer (the sidecar) through Prometheus: its generation, whose
//! every change is a transition; the configuration it observed installed; and when its last
//! transition went live. Baselines and transitions read the configuration through the same
//! [`configuration`], so both record the same labels.

use std::collections::BTreeMap;

use upsoak_common::names::wanderer::LAST_TRANSITION_TIMESTAMP_SECONDS;
pub use upsoak_common::names::wanderer::{CONFIG_INFO, GENERATION};

use crate::Result;
use crate::prom::Querier;

/// When the Wanderer's last transition went live (unix seconds): one number even if two
/// sidecars were scraped.
pub fn transition_time_query() -> String {
    format!("max({LAST_TRANSITION_TIMESTAMP_SECONDS})")
}

/// Labels that say where Prometheus scraped a series, not what the Wanderer observed: they
/// change when the sidecar's pod moves, so they are no part of a configuration.
const TARGET_LABELS: [&str; 3] = ["__name__", "instance", "job"];

/// The Wanderer's configuration at `at`: every label of its info metric except the target's
/// (`__name__`, `instance`, `job`); empty when the sidecar exports none.
pub async fn configuration<Q: Querier>(q: &Q, at: i64) -> Result<BTreeMap<String, String>> {
    let mut labels = q
        .labels_at(CONFIG_INFO, at)
        .await?
        .into_iter()
        .next()
        .unwrap_or_default();
    for l in TARGET_LABELS {
        labels.remove(l);
    }
    Ok(labels)
}
