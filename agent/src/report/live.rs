//! The live report on the agent's HTTP port: `GET /report` is the HTML report of the history
//! as last written, reloaded by the browser every [`REFRESH_S`] seconds, so a week-long run can
//! be followed from a browser. It reads the history file at each request: the loop is never
//! locked for a reader.

use std::path::PathBuf;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::html::{HtmlOptions, html_with};
use crate::history::History;

/// Path of the live report.
pub const REPORT_PATH: &str = "/report";

/// Seconds between the browser's reloads of the live report.
pub const REFRESH_S: u32 = 30;

/// `GET /report`, reading the history in `state_dir`.
pub fn router<S>(state_dir: PathBuf) -> Router<S> {
    Router::new()
        .route(REPORT_PATH, get(report))
        .with_state(state_dir)
}

async fn report(State(dir): State<PathBuf>) -> Response {
    let loaded = tokio::task::spawn_blocking(move || History::load(&dir)).await;
    match loaded {
        Ok(Ok(h)) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html_with(
                &h,
                &HtmlOptions {
                    refresh_s: Some(REFRESH_S),
                    now: Some(crate::time::unix_now()),
                },
            ),
        )
            .into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read the history: {e}\n"),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read the history: {e}\n"),
        )
            .into_response(),
    }
}
