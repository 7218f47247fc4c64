//! `/metrics` encoding with content negotiation, as Prometheus' own Go client does it.
//!
//! Prometheus asks for OpenMetrics and gets it; a client that does not (curl, `promtool check
//! metrics`, which parses the classic text format) gets text format 0.0.4, where a counter's
//! `TYPE` line names its `_total` series.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::registry::Registry;

/// `Content-Type` of OpenMetrics text 1.0.0.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The two formats `/metrics` can answer in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    PrometheusText,
}

impl Format {
    /// OpenMetrics when the `Accept` header names it, the classic text format otherwise.
    pub fn negotiate(headers: &HeaderMap) -> Format {
        let wants_openmetrics = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("application/openmetrics-text"));
        if wants_openmetrics {
            Format::OpenMetrics
        } else {
            Format::PrometheusText
        }
    }
}

/// Encodes `registry` in `format`; the `Err` is the encoder's, which only fails on a bug.
pub fn encode(registry: &Registry, format: Format) -> Result<String, std::fmt::Error> {
    let mut body = String::with_capacity(16 * 1024);
    match format {
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut body, registry)?,
        Format::PrometheusText => {
            prometheus_client::encoding::prometheus_text::encode(&mut body, registry)?
        }
    }
    Ok(body)
}

/// An axum response for `/metrics`.
pub fn response(registry: &Registry, headers: &HeaderMap) -> Response {
    let format = Format::negotiate(headers);
    match encode(registry, format) {
        Ok(body) => {
            let content_type = match format {
                Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
                Format::PrometheusText => {
                    prometheus_client::encoding::prometheus_text::CONTENT_TYPE
                }
            };
            (
                [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
                body,
            )
                .into_response()
        }
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics encoding failed\n",
        )
            .into_response(),
    }
}
