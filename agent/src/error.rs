//! The crate's one error type, with every cause kept as a `#[source]` so the CLI can print
//! `caused by:` lines. Parsers that report many problems at once keep their own payloads
//! ([`SpecErrors`], [`CriterionError`]) and return them through `Result<T, E>`; both convert
//! into [`Error`] where callers need one type.

use crate::criteria::CriterionError;
use crate::spec::SpecErrors;

/// `Result` with this crate's [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A cause of any type: a query fails with the Prometheus client's error or a test double's,
/// a Kubernetes client with one of several of kube's.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Everything that can go wrong in the agent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An SLO spec file with problems, every one with its path.
    #[error(transparent)]
    Spec(#[from] SpecErrors),
    /// An objective or baseline criterion that does not parse.
    #[error(transparent)]
    Criterion(#[from] CriterionError),
    /// A query Prometheus refused or could not answer.
    #[error("query `{query}` failed")]
    Query {
        query: String,
        #[source]
        source: BoxError,
    },
    /// `--prometheus` is not a URL the client takes.
    #[error("`{url}` is not a Prometheus URL")]
    PrometheusUrl {
        url: String,
        #[source]
        source: prometheus_http_query::Error,
    },
    /// The bearer token cannot be sent in an HTTP header (a newline inside, say).
    #[error("the Prometheus bearer token is not a valid header value")]
    BearerToken(#[source] reqwest::header::InvalidHeaderValue),
    /// The HTTP client of the Prometheus querier could not be built.
    #[error("cannot build the Prometheus client")]
    HttpClient(#[source] reqwest::Error),
    /// The Kubernetes client of the probes could not be made.
    #[error("cannot make a Kubernetes client: {what}")]
    Kube {
        what: String,
        #[source]
        source: BoxError,
    },
    /// A baseline window with a Wanderer transition inside.
    #[error(
        "the window {from}..{to} is not steady: the Wanderer's generation changed inside it ({values:?}); pick a window between transitions"
    )]
    TransitionInWindow {
        from: i64,
        to: i64,
        values: Vec<f64>,
    },
    /// A baseline window in which no SLO has enough samples (each listed with why).
    #[error("no SLO has enough samples in the window {from}..{to} for a baseline: {why}")]
    NothingRecorded { from: i64, to: i64, why: String },
    /// A state directory (`report --state-dir`, `export --state-dir`) that does not exist.
    #[error("the directory `{0}` does not exist (or is not a directory)")]
    NoDirectory(String),
    /// A file (baseline, history) that could not be written.
    #[error("cannot write `{0}`")]
    Write(String, #[source] std::io::Error),
    /// A file (baseline, history) that could not be read.
    #[error("cannot read `{0}`")]
    Read(String, #[source] std::io::Error),
    /// A file (baseline, history) that is not the JSON it should be.
    #[error("`{0}` is not a valid {1} file")]
    Decode(String, &'static str, #[source] serde_json::Error),
    /// A baseline file of another format version.
    #[error("`{path}` has format version {found}, not {want}")]
    FormatVersion { path: String, found: u32, want: u32 },
}

impl Error {
    /// The message without the query text, for evidence that shows the query beside it.
    pub fn message(&self) -> String {
        match self {
            Error::Query { source, .. } => chain(source.as_ref()),
            other => chain(other),
        }
    }
}

/// An error and its causes on one line, `what: why: why`, for logs and evidence, with the
/// credentials of any URL in it hidden ([`upsoak_common::redact::urls`]).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    upsoak_common::redact::urls(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_requests_error_hides_the_credentials_of_its_url() {
        // reqwest's error names the URL it was sent to: 0.13 leaves the user and password out
        // itself, a token in the query it keeps.
        let e = reqwest::Client::new()
            .post("http://am-user:am-s3cret@127.0.0.1:1/api/v2/alerts?token=t0k")
            .send()
            .await
            .unwrap_err();
        assert!(format!("{e:?} {e}").contains("t0k"), "the premise: {e}");
        let shown = chain(&e);
        assert!(
            !shown.contains("am-s3cret") && !shown.contains("am-user") && !shown.contains("t0k"),
            "{shown}"
        );
        assert!(
            shown.contains("http://127.0.0.1:1/api/v2/alerts?token=***"),
            "{shown}"
        );
    }
}
