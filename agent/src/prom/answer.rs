//! Prometheus' answers read within a size bound: the body is streamed and the read stops as
//! soon as it passes [`MAX_ANSWER_BYTES`], so an SLO expression that returns thousands of
//! series over a large cluster fails as one inconclusive evaluation instead of taking the
//! agent past its memory limit. The envelope is Prometheus' (`{"status": …, "data": …}` or
//! `{"status": "error", "errorType": …, "error": …}`, `web/api/v1/api.go` `respond` and
//! `respondError`).

use prometheus_http_query::response::{Data, PromqlResult};
use serde::Deserialize;

/// Largest answer read (bytes of JSON): about 1.5 million samples, and parsed they take about
/// as much again, well within the deploy's 256 MiB limit.
pub const MAX_ANSWER_BYTES: usize = 32 << 20;

/// Why an answer was not taken.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error(
        "the answer is larger than {limit} bytes (the agent's bound on one answer): aggregate the expression (sum, max) or shorten the window"
    )]
    TooLarge { limit: usize },
    #[error("the answer could not be read")]
    Read(#[source] reqwest::Error),
    #[error("HTTP {status}: the answer is not JSON (content type `{content_type}`)")]
    NotJson {
        status: reqwest::StatusCode,
        content_type: String,
    },
    #[error("the answer is not Prometheus' JSON")]
    Decode(#[source] serde_json::Error),
    #[error("Prometheus answered {error_type}: {error}")]
    Prometheus { error_type: String, error: String },
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<PromqlResult>,
    #[serde(default, rename = "errorType")]
    error_type: String,
    #[serde(default)]
    error: String,
}

/// The data of `response`, read up to `limit` bytes.
pub async fn read(mut response: reqwest::Response, limit: usize) -> Result<Data, AnswerError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(AnswerError::TooLarge { limit });
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if !content_type.starts_with("application/json") {
        return Err(AnswerError::NotJson {
            status: response.status(),
            content_type,
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(AnswerError::Read)? {
        if body.len() + chunk.len() > limit {
            return Err(AnswerError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    let envelope: Envelope = serde_json::from_slice(&body).map_err(AnswerError::Decode)?;
    match (envelope.status.as_str(), envelope.data) {
        ("success", Some(data)) => Ok(data.into_inner().0),
        _ => Err(AnswerError::Prometheus {
            error_type: envelope.error_type,
            error: envelope.error,
        }),
    }
}

#[cfg(test)]
mod tests {
    use crate::prom::{PromQuerier, Querier};

    /// A Prometheus that answers every range query with `series` series of 60 samples, streamed
    /// in pieces without a content length (as a proxy that compresses or chunks sends it).
    async fn streaming_prometheus(series: usize) -> String {
        let app = axum::Router::new().route(
            "/api/v1/query_range",
            axum::routing::get(move || async move {
                let one = |i: usize| {
                    let values: Vec<String> =
                        (0..60).map(|t| format!("[{},\"1\"]", 1000 + t)).collect();
                    format!(
                        r#"{{"metric":{{"pod":"p{i}"}},"values":[{}]}}"#,
                        values.join(",")
                    )
                };
                let mut pieces = vec![
                    r#"{"status":"success","data":{"resultType":"matrix","result":["#.to_owned(),
                ];
                pieces.extend((0..series).map(|i| {
                    if i == 0 {
                        one(i)
                    } else {
                        format!(",{}", one(i))
                    }
                }));
                pieces.push("]}}".to_owned());
                let stream = futures::stream::iter(
                    pieces
                        .into_iter()
                        .map(|p| Ok::<_, std::io::Error>(axum::body::Bytes::from(p))),
                );
                (
                    [("content-type", "application/json")],
                    axum::body::Body::from_stream(stream),
                )
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn an_answer_past_the_bound_is_refused_naming_the_query_and_the_bound() {
        let url = streaming_prometheus(100).await;
        let q = PromQuerier::new(&url, None).unwrap();
        // Within the default bound: summed per step over the hundred series.
        let s = q.range("up", 1000, 1059, 1.0).await.unwrap();
        assert_eq!(s.len(), 60);
        assert_eq!(s[0].1, 100.0);
        // About 80 KB of answer against a 16 KiB bound: refused, not read whole.
        let e = q
            .with_max_answer(16 << 10)
            .range("up", 1000, 1059, 1.0)
            .await
            .unwrap_err();
        let shown = crate::error::chain(&e);
        assert!(
            shown.contains("query `up` failed") && shown.contains("larger than 16384 bytes"),
            "{shown}"
        );
    }
}
