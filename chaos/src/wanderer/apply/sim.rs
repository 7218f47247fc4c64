//! The simulator's applier: `POST /upsoak/v1/install`, `GET /upsoak/v1/installed`.

use std::collections::BTreeMap;
use std::time::Duration;

use upsoak_agones::release::Install;

use super::{Applier, ApplyError, Recovery, decode_tunables, poll_until};

/// The simulator's control endpoint: `POST /upsoak/v1/install`, `GET /upsoak/v1/installed`.
#[derive(Clone, Debug)]
pub struct SimApplier {
    /// The simulator's base URL, without a trailing `/`.
    pub url: String,
    /// The HTTP client, reused across calls.
    pub http: reqwest::Client,
    /// How long to wait for the upgrade window to close.
    pub timeout: Duration,
}

/// Longest one request to the simulator may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl SimApplier {
    pub fn new(url: &str, timeout: Duration) -> SimApplier {
        SimApplier {
            url: url.trim_end_matches('/').to_owned(),
            // Each request is bounded (a hung simulator would otherwise hold the Wanderer past
            // its apply timeout, observing included); waiting for the window is `settle`'s.
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(REQUEST_TIMEOUT)
                .build()
                .unwrap_or_default(),
            timeout,
        }
    }

    async fn installed(&self) -> Result<serde_json::Value, ApplyError> {
        let url = format!("{}/upsoak/v1/installed", self.url);
        let r = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| ApplyError::Unreachable(url.clone(), e))?;
        r.json()
            .await
            .map_err(|e| ApplyError::Unreachable(url.clone(), e))
    }
}

impl Applier for SimApplier {
    async fn apply(&self, target: &Install) -> Result<(), ApplyError> {
        let url = format!("{}/upsoak/v1/install", self.url);
        let r = self
            .http
            .post(&url)
            .json(target)
            .send()
            .await
            .map_err(|e| ApplyError::Unreachable(url.clone(), e))?;
        if !r.status().is_success() {
            let text = r.text().await.unwrap_or_default();
            let status: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let msg = status["message"].as_str().unwrap_or(&text).to_owned();
            return Err(ApplyError::Rejected(msg));
        }
        self.settle().await.map(|_| ())
    }

    async fn settle(&self) -> Result<Option<Recovery>, ApplyError> {
        // The simulator's upgrade window always closes on its own: nothing is ever stuck.
        poll_until(self.timeout, Duration::from_millis(100), || async {
            Ok(self.installed().await?["upgrading"].is_null())
        })
        .await
        .map(|()| None)
    }

    async fn observe_installed(&self) -> Result<Install, ApplyError> {
        let doc = self.installed().await?;
        let unexpected = |detail: &str| ApplyError::Unexpected {
            what: format!("{}/upsoak/v1/installed", self.url),
            detail: detail.to_owned(),
        };
        let version = doc["version"]
            .as_str()
            .ok_or_else(|| unexpected("no `version`"))?
            .to_owned();
        let feature_gates: BTreeMap<String, bool> =
            serde_json::from_value(doc["gates"].clone()).map_err(|e| unexpected(&e.to_string()))?;
        let tunables = decode_tunables(&doc["tunables"]).map_err(|e| unexpected(&e))?;
        Ok(Install {
            version,
            feature_gates,
            tunables,
        })
    }

    fn name(&self) -> &'static str {
        "sim"
    }
}
