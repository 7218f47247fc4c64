//! Everything the agent knows comes from Prometheus through this boundary: range queries of
//! SLO expressions, reduced to one sample per step.

mod answer;

use std::collections::BTreeMap;

use prometheus_http_query::Client;

use crate::http::Timeouts;
use crate::{Error, Result};

pub use answer::{AnswerError, MAX_ANSWER_BYTES};

/// One sample per step: (unix seconds, value).
pub type Series = Vec<(f64, f64)>;

/// Prometheus refuses a range query that would return more than this many points per series
/// (`exceeded maximum resolution of 11,000 points per timeseries`, `api.go` `queryRange`).
pub const MAX_POINTS: i64 = 11_000;

/// The requests (start, end) a range query over [start, end] at `step` is sent as: consecutive
/// pieces of at most [`MAX_POINTS`] points each, every piece starting on the step grid of the
/// first, so together they are the samples one unbounded query would give. Every range request
/// the agent sends is planned here (by [`PromQuerier::range`]).
pub fn range_requests(start: i64, end: i64, step: f64) -> Vec<(i64, i64)> {
    let step = if step.is_finite() && step > 0.0 {
        step
    } else {
        1.0
    };
    // Seconds from one piece's start to the next: MAX_POINTS steps.
    let advance = ((MAX_POINTS as f64 * step).floor() as i64).max(1);
    let mut out = Vec::new();
    let mut from = start;
    loop {
        // The last point of a piece lies strictly before the next piece's start.
        let last = from + advance - 1;
        if last >= end {
            out.push((from, end));
            return out;
        }
        out.push((from, last));
        from += advance;
    }
}

/// The points a range request over [start, end] at `step` asks for.
pub fn points(start: i64, end: i64, step: f64) -> i64 {
    if end < start {
        return 0;
    }
    ((end - start) as f64 / step).floor() as i64 + 1
}

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
    /// Largest answer read ([`MAX_ANSWER_BYTES`]).
    max_answer: usize,
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
        Ok(PromQuerier {
            client,
            max_answer: MAX_ANSWER_BYTES,
        })
    }

    /// The same querier refusing answers larger than `bytes` (tests of the bound).
    pub fn with_max_answer(mut self, bytes: usize) -> PromQuerier {
        self.max_answer = bytes;
        self
    }

    /// The data of a sent query's answer, within the size bound.
    async fn answer(
        &self,
        expr: &str,
        sent: std::result::Result<reqwest::Response, prometheus_http_query::Error>,
    ) -> Result<prometheus_http_query::response::Data> {
        let response = sent.map_err(query_error(expr))?;
        answer::read(response, self.max_answer)
            .await
            .map_err(|e| Error::Query {
                query: expr.to_owned(),
                source: Box::new(e),
            })
    }
}

/// A failed query of `expr`, with the client's error as its cause.
fn query_error(expr: &str) -> impl Fn(prometheus_http_query::Error) -> Error + '_ {
    move |e| Error::Query {
        query: expr.to_owned(),
        source: Box::new(e),
    }
}

/// Adds a response's samples to `by_ts` (millisecond keys): several series, or several
/// pieces of one query, add up per step.
fn add_samples(by_ts: &mut BTreeMap<i64, f64>, data: &prometheus_http_query::response::Data) {
    match data {
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
}

impl Querier for PromQuerier {
    async fn range(&self, expr: &str, start: i64, end: i64, step: f64) -> Result<Series> {
        let mut by_ts: BTreeMap<i64, f64> = BTreeMap::new();
        for (from, to) in range_requests(start, end, step) {
            let sent = self
                .client
                .query_range(expr, from, to, step)
                .get_raw()
                .await;
            add_samples(&mut by_ts, &self.answer(expr, sent).await?);
        }
        Ok(by_ts
            .into_iter()
            .map(|(t, v)| (t as f64 / 1000.0, v))
            .collect())
    }

    async fn instant(&self, expr: &str, time: i64) -> Result<Vec<f64>> {
        let sent = self.client.query(expr).at(time).get_raw().await;
        Ok(match &self.answer(expr, sent).await? {
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
        let sent = self.client.query(expr).at(time).get_raw().await;
        Ok(match &self.answer(expr, sent).await? {
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

    /// A Prometheus range endpoint that records each request's (start, end, step) and answers
    /// one series with a sample at every step of the request, as Prometheus would.
    async fn range_server(seen: Arc<Mutex<Vec<(i64, i64, f64)>>>) -> String {
        let app = axum::Router::new().route(
            "/api/v1/query_range",
            axum::routing::get(
                move |axum::extract::Query(f): axum::extract::Query<BTreeMap<String, String>>| {
                    let seen = seen.clone();
                    async move {
                        let (start, end, step): (i64, i64, f64) = (
                            f["start"].parse().unwrap(),
                            f["end"].parse().unwrap(),
                            f["step"].parse().unwrap(),
                        );
                        seen.lock().unwrap().push((start, end, step));
                        let values: Vec<String> = (0..points(start, end, step))
                            .map(|i| format!("[{},\"1\"]", start as f64 + i as f64 * step))
                            .collect();
                        (
                            [("content-type", "application/json")],
                            format!(
                                r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{}},"values":[{}]}}]}}}}"#,
                                values.join(",")
                            ),
                        )
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    const WEEK: i64 = 7 * 24 * 3600;

    #[test]
    fn a_week_is_split_into_pieces_under_the_point_limit_on_one_grid() {
        let start = 1_800_000_000;
        for step in [1.0, 15.0, 60.0, 1.5] {
            let pieces = range_requests(start, start + WEEK, step);
            assert!(
                pieces
                    .iter()
                    .all(|(a, b)| points(*a, *b, step) <= MAX_POINTS),
                "{step}: {pieces:?}"
            );
            let total: i64 = pieces.iter().map(|(a, b)| points(*a, *b, step)).sum();
            assert_eq!(
                total,
                points(start, start + WEEK, step),
                "{step}: no point lost"
            );
            for w in pieces.windows(2) {
                let gap = (w[1].0 - start) as f64 / step;
                assert!(gap.fract() == 0.0 && w[1].0 == w[0].1 + 1, "{step}: {w:?}");
            }
        }
        assert_eq!(range_requests(10, 20, 15.0), vec![(10, 20)]);
        assert_eq!(range_requests(10, 10, 1.0), vec![(10, 10)]);
    }

    #[tokio::test]
    async fn no_range_request_sent_asks_for_more_than_the_point_limit() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let url = range_server(seen.clone()).await;
        let q = PromQuerier::new(&url, None).unwrap();
        let start = 1_800_000_000;
        let series = q.range("up", start, start + WEEK, 15.0).await.unwrap();
        assert_eq!(series.len() as i64, WEEK / 15 + 1, "every step once");
        assert_eq!(series.first().map(|s| s.0), Some(start as f64));
        assert_eq!(series.last().map(|s| s.0), Some((start + WEEK) as f64));
        let sent = seen.lock().unwrap().clone();
        assert_eq!(sent.len(), 4, "{sent:?}");
        for (a, b, step) in &sent {
            assert!(points(*a, *b, *step) <= MAX_POINTS, "{a}..{b} at {step}");
        }
    }

    /// Every range request goes through [`range_requests`]: the client's `query_range` is called
    /// in one place only, [`PromQuerier::range`].
    #[test]
    fn every_range_request_is_planned_in_one_place() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut calls = Vec::new();
        let mut dirs = vec![src];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let n = std::fs::read_to_string(&p)
                        .unwrap()
                        .matches(concat!(".query", "_range("))
                        .count();
                    calls.extend(std::iter::repeat_n(p.display().to_string(), n));
                }
            }
        }
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert!(calls[0].ends_with("prom.rs"), "{calls:?}");
    }

    #[test]
    fn a_token_that_is_no_header_value_is_refused() {
        assert!(PromQuerier::new("http://127.0.0.1:1", Some("a\nb")).is_err());
    }
}
