//! Everything the agent knows comes from Prometheus through this boundary: range queries of
//! SLO expressions, reduced to one sample per step.

use std::collections::BTreeMap;

use prometheus_http_query::Client;

use crate::http::Timeouts;
use crate::{Error, Result};

/// One sample per step: (unix seconds, value).
pub type Series = Vec<(f64, f64)>;

/// Reads Prometheus. The integration tests use a real Prometheus behind [`PromQuerier`], the
/// loop's unit tests a fake; the trait also keeps the evaluator independent of where the data
/// comes from (Thanos, Mimir, VictoriaMetrics alike).
#[allow(async_fn_in_trait)]
pub trait Querier {
    /// Evaluates `expr` at every `step` seconds in [start, end]; several series are summed per
    /// step, so an SLO is one number per step.
    async fn range(&self, expr: &str, start: i64, end: i64, step: f64) -> Result<Series>;
    /// The labels of the series `expr` returns at `time`.
    async fn labels_at(&self, expr: &str, time: i64) -> Result<Vec<BTreeMap<String, String>>>;
    /// The value of each series `expr` returns at `time` (a scalar is one), not summed: a
    /// disruption SLO must reduce to exactly one. The default, for queriers that cannot tell
    /// series apart, is the summed value of [`Querier::range`] as one series.
    async fn instant(&self, expr: &str, time: i64) -> Result<Vec<f64>> {
        Ok(self
            .range(expr, time, time, 1.0)
            .await?
            .last()
            .map(|(_, v)| vec![*v])
            .unwrap_or_default())
    }
}

/// The Prometheus HTTP API.
#[derive(Clone)]
pub struct PromQuerier {
    client: Client,
}

impl PromQuerier {
    /// A querier of `url` that sends `token`, if any, as `Authorization: Bearer` (a Prometheus
    /// behind an authenticating proxy, Mimir, a managed service), with the default timeouts.
    pub fn new(url: &str, token: Option<&str>) -> Result<PromQuerier> {
        PromQuerier::with_timeouts(url, token, Timeouts::QUERY)
    }

    /// [`PromQuerier::new`] with `timeouts`: a query that is not answered within them fails
    /// (and is counted as a failed evaluation) instead of holding the loop.
    pub fn with_timeouts(
        url: &str,
        token: Option<&str>,
        timeouts: Timeouts,
    ) -> Result<PromQuerier> {
        let bad_url = |source| Error::PrometheusUrl {
            url: url.to_owned(),
            source,
        };
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token {
            let mut value =
                reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                    .map_err(Error::BearerToken)?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = timeouts
            .builder()
            .default_headers(headers)
            .build()
            .map_err(Error::HttpClient)?;
        let client = Client::from(http, url).map_err(bad_url)?;
        Ok(PromQuerier { client })
    }
}

/// A failed query of `expr`, with the client's error as its cause.
fn query_error(expr: &str) -> impl Fn(prometheus_http_query::Error) -> Error + '_ {
    move |e| Error::Query {
        query: expr.to_owned(),
        source: Box::new(e),
    }
}

impl Querier for PromQuerier {
    async fn range(&self, expr: &str, start: i64, end: i64, step: f64) -> Result<Series> {
        let res = self
            .client
            .query_range(expr, start, end, step)
            .get()
            .await
            .map_err(query_error(expr))?;
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

    async fn instant(&self, expr: &str, time: i64) -> Result<Vec<f64>> {
        let res = self
            .client
            .query(expr)
            .at(time)
            .get()
            .await
            .map_err(query_error(expr))?;
        Ok(match res.data() {
            prometheus_http_query::response::Data::Vector(v) => {
                v.iter().map(|iv| iv.sample().value()).collect()
            }
            prometheus_http_query::response::Data::Scalar(s) => vec![s.value()],
            prometheus_http_query::response::Data::Matrix(m) => m
                .iter()
                .filter_map(|series| series.samples().last().map(|s| s.value()))
                .collect(),
        })
    }

    async fn labels_at(&self, expr: &str, time: i64) -> Result<Vec<BTreeMap<String, String>>> {
        let res = self
            .client
            .query(expr)
            .at(time)
            .get()
            .await
            .map_err(query_error(expr))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A Prometheus query endpoint that records the Authorization header it was sent.
    async fn recording_server(seen: Arc<Mutex<Vec<Option<String>>>>) -> String {
        let app = axum::Router::new().route(
            "/api/v1/query",
            axum::routing::get(move |headers: axum::http::HeaderMap| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(
                        headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned),
                    );
                    (
                        [("content-type", "application/json")],
                        r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn a_bearer_token_is_sent_and_none_without_one() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let url = recording_server(seen.clone()).await;
        PromQuerier::new(&url, Some("s3cret"))
            .unwrap()
            .labels_at("up", 1)
            .await
            .unwrap();
        PromQuerier::new(&url, None)
            .unwrap()
            .labels_at("up", 1)
            .await
            .unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            vec![Some("Bearer s3cret".to_owned()), None]
        );
    }

    #[test]
    fn a_token_that_is_no_header_value_is_refused() {
        assert!(PromQuerier::new("http://127.0.0.1:1", Some("a\nb")).is_err());
    }
}
