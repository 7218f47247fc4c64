//! Everything the agent knows comes from Prometheus through this boundary: range queries of
//! SLO expressions, reduced to one sample per step.

use std::collections::BTreeMap;
use std::sync::OnceLock;

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

/// The bearer token of `--prometheus-token-file`, for every querier the process makes.
static BEARER_TOKEN: OnceLock<String> = OnceLock::new();

/// Makes every later [`PromQuerier::new`] send `Authorization: Bearer TOKEN` (a Prometheus behind
/// an authenticating proxy, Mimir, a managed service). Set once, at start-up, from
/// `--prometheus-token-file`; a second call is refused.
pub fn set_bearer_token(token: &str) -> Result<()> {
    BEARER_TOKEN
        .set(token.trim().to_owned())
        .map_err(|_| Error::Query {
            query: String::new(),
            message: "the Prometheus bearer token is already set".to_owned(),
        })
}

impl PromQuerier {
    /// A querier of `url`, with the process's bearer token if one is set.
    pub fn new(url: &str) -> Result<PromQuerier> {
        PromQuerier::with_bearer_token(url, BEARER_TOKEN.get().map(String::as_str))
    }

    /// A querier of `url` that sends `token`, if any, as `Authorization: Bearer`.
    pub fn with_bearer_token(url: &str, token: Option<&str>) -> Result<PromQuerier> {
        let bad_url = |e: prometheus_http_query::Error| Error::Query {
            query: String::new(),
            message: format!("`{url}` is not a Prometheus URL: {e}"),
        };
        let client = match token {
            None => Client::try_from(url).map_err(bad_url)?,
            Some(token) => {
                let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| Error::Query {
                        query: String::new(),
                        message: "the Prometheus bearer token is not a valid header value"
                            .to_owned(),
                    })?;
                value.set_sensitive(true);
                let mut headers = reqwest::header::HeaderMap::new();
                headers.insert(reqwest::header::AUTHORIZATION, value);
                let http = reqwest::Client::builder()
                    .default_headers(headers)
                    .build()
                    .map_err(|e| Error::Query {
                        query: String::new(),
                        message: format!("cannot build the Prometheus client: {e}"),
                    })?;
                Client::from(http, url).map_err(bad_url)?
            }
        };
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
        PromQuerier::with_bearer_token(&url, Some("s3cret"))
            .unwrap()
            .labels_at("up", 1)
            .await
            .unwrap();
        PromQuerier::with_bearer_token(&url, None)
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
        assert!(PromQuerier::with_bearer_token("http://127.0.0.1:1", Some("a\nb")).is_err());
    }
}
