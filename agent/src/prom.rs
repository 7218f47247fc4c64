//! Everything the agent knows comes from Prometheus through this boundary: range queries of
//! SLO expressions, reduced to one sample per step.

use std::collections::BTreeMap;

use prometheus_http_query::Client;

use crate::{Error, Result};

/// One sample per step: (unix seconds, value).
pub type Series = Vec<(f64, f64)>;

/// Reads Prometheus. Tests use a real Prometheus behind [`PromQuerier`]; the trait keeps the
/// evaluator independent of where the data comes from (Thanos, Mimir, VictoriaMetrics alike).
#[allow(async_fn_in_trait)]
pub trait Querier {
    /// Evaluates `expr` at every `step` seconds in [start, end]; several series are summed per
    /// step, so an SLO is one number per step.
    async fn range(&self, expr: &str, start: i64, end: i64, step: f64) -> Result<Series>;
    /// The labels of the series `expr` returns at `time`.
    async fn labels_at(&self, expr: &str, time: i64) -> Result<Vec<BTreeMap<String, String>>>;
}

/// The Prometheus HTTP API.
#[derive(Clone)]
pub struct PromQuerier {
    client: Client,
}

impl PromQuerier {
    pub fn new(url: &str) -> Result<PromQuerier> {
        let client = Client::try_from(url).map_err(|e| Error::Query {
            query: String::new(),
            message: format!("`{url}` is not a Prometheus URL: {e}"),
        })?;
        Ok(PromQuerier { client })
    }
}

impl Querier for PromQuerier {
    async fn range(&self, expr: &str, start: i64, end: i64, step: f64) -> Result<Series> {
        let err = |e: prometheus_http_query::Error| Error::Query {
            query: expr.to_owned(),
            message: e.to_string(),
        };
        let res = self
            .client
            .query_range(expr, start, end, step)
            .get()
            .await
            .map_err(err)?;
        let mut by_ts: BTreeMap<i64, f64> = BTreeMap::new();
        match res.data() {
            prometheus_http_query::response::Data::Matrix(m) => {
                for series in m {
                    for s in series.samples() {
                        // Millisecond keys: the same step from different series adds up.
                        *by_ts
                            .entry((s.timestamp() * 1000.0).round() as i64)
                            .or_default() += s.value();
                    }
                }
            }
            prometheus_http_query::response::Data::Vector(v) => {
                for iv in v {
                    let s = iv.sample();
                    *by_ts
                        .entry((s.timestamp() * 1000.0).round() as i64)
                        .or_default() += s.value();
                }
            }
            prometheus_http_query::response::Data::Scalar(s) => {
                by_ts.insert((s.timestamp() * 1000.0).round() as i64, s.value());
            }
        }
        Ok(by_ts
            .into_iter()
            .map(|(t, v)| (t as f64 / 1000.0, v))
            .collect())
    }

    async fn labels_at(&self, expr: &str, time: i64) -> Result<Vec<BTreeMap<String, String>>> {
        let res = self
            .client
            .query(expr)
            .at(time)
            .get()
            .await
            .map_err(|e| Error::Query {
                query: expr.to_owned(),
                message: e.to_string(),
            })?;
        Ok(match res.data() {
            prometheus_http_query::response::Data::Vector(v) => v
                .iter()
                .map(|iv| {
                    iv.metric()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .collect(),
            _ => Vec::new(),
        })
    }
}
