//! Reading and serving `/metrics` in tests: scrape a server, pick series out of the text
//! format, lint it with `promtool`, and serve a text the test controls for a real Prometheus
//! to scrape.
// Set-up failures are test failures: this module panics with the reason.
#![allow(clippy::panic, clippy::expect_used)]

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

/// `GET {base_url}/metrics` in the Prometheus text format (no `Accept` header asks for
/// OpenMetrics).
pub async fn scrape(base_url: &str) -> reqwest::Result<String> {
    reqwest::get(format!("{}/metrics", base_url.trim_end_matches('/')))
        .await?
        .error_for_status()?
        .text()
        .await
}

/// The samples of `metric` (exactly that name, any labels) in exposition `text`.
fn samples<'a>(text: &'a str, metric: &'a str) -> impl Iterator<Item = f64> + 'a {
    text.lines()
        .filter(move |l| {
            l.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with([' ', '{']))
        })
        .filter_map(sample_value)
}

/// The value of a sample line: the field after the labels (a timestamp may follow it).
fn sample_value(line: &str) -> Option<f64> {
    let after_labels = match line.rfind('}') {
        Some(i) => &line[i + 1..],
        None => line.split_once(' ')?.1,
    };
    after_labels.split_whitespace().next()?.parse().ok()
}

/// The sum of every series of `metric` in `text`, `None` when it has none.
pub fn sum_series(text: &str, metric: &str) -> Option<f64> {
    let mut it = samples(text, metric).peekable();
    it.peek()?;
    Some(it.sum())
}

/// The value of the first sample line that starts with `prefix` (a name and, to pick one
/// series, the start of its labels: `agones_gameservers_count{type="Ready"`).
pub fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(sample_value)
}

/// Runs `promtool check metrics` on `text`: `Ok` when it finds nothing, its findings (one per
/// line, sorted) otherwise.
///
/// Panics when promtool is not installed (`make test` installs it).
pub fn promtool_check(text: &str) -> Result<(), Vec<String>> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed (make test installs it)");
    // promtool reads all of stdin before it writes, so writing first cannot deadlock.
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(text.as_bytes())
        .expect("promtool reads its stdin");
    let out = child.wait_with_output().expect("promtool runs");
    let mut findings: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
        .map(str::to_owned)
        .filter(|l| !l.trim().is_empty())
        .collect();
    findings.sort();
    if out.status.success() && findings.is_empty() {
        Ok(())
    } else {
        if findings.is_empty() {
            findings.push(format!("promtool exited with {}", out.status));
        }
        Err(findings)
    }
}

/// A `/metrics` server on loopback, stopped when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl MetricsServer {
    /// `127.0.0.1:PORT`, as a Prometheus target.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Serves `GET /metrics` with whatever `render` returns at each scrape, on a port of its own.
/// Needs a Tokio runtime.
pub async fn serve_metrics(render: impl Fn() -> String + Send + Sync + 'static) -> MetricsServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("bound address");
    let render = Arc::new(render);
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let render = render.clone();
            async move { render() }
        }),
    );
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(async move {
        // The test sees a failed scrape; there is nobody else to tell.
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stopped.cancelled().await })
            .await;
    });
    MetricsServer { addr, stop }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    const TEXT: &str = "# TYPE upsoak_x counter\nupsoak_x_total{a=\"1\"} 2\nupsoak_x_total{a=\"2\"} 3.5\nupsoak_x_totals 100\n# TYPE g gauge\ng 7 1700000000000\ng_other{b=\"x y\"} 1\n";

    #[test]
    fn sums_exactly_the_named_series() {
        assert_eq!(sum_series(TEXT, "upsoak_x_total"), Some(5.5));
        assert_eq!(sum_series(TEXT, "g"), Some(7.0));
        assert_eq!(sum_series(TEXT, "upsoak_x"), None);
        assert_eq!(sum_series(TEXT, "missing"), None);
    }

    #[test]
    fn sample_picks_a_series_by_prefix() {
        assert_eq!(sample(TEXT, "upsoak_x_total{a=\"2\""), Some(3.5));
        assert_eq!(sample(TEXT, "g_other{b=\"x y\"}"), Some(1.0));
        assert_eq!(sample(TEXT, "nothing"), None);
    }

    #[test]
    fn promtool_passes_good_text_and_names_findings() {
        assert_eq!(
            promtool_check("# HELP a_total A.\n# TYPE a_total counter\na_total 1\n"),
            Ok(())
        );
        let bad = promtool_check("# HELP a A.\n# TYPE a counter\na 1\n")
            .expect_err("a counter without _total");
        assert!(bad.iter().any(|f| f.contains("_total")), "{bad:?}");
    }

    #[tokio::test]
    async fn serves_what_render_returns_at_each_scrape() {
        let n = Arc::new(AtomicU64::new(0));
        let counter = n.clone();
        let server = serve_metrics(move || {
            format!(
                "upsoak_scrapes {}\n",
                counter.fetch_add(1, Ordering::SeqCst) + 1
            )
        })
        .await;
        let first = scrape(&server.url()).await.expect("scrape");
        let second = scrape(&server.url()).await.expect("scrape");
        assert_eq!(sum_series(&first, "upsoak_scrapes"), Some(1.0));
        assert_eq!(sum_series(&second, "upsoak_scrapes"), Some(2.0));
        let url = server.url();
        drop(server);
        let gone = crate::eventually(std::time::Duration::from_secs(5), crate::POLL, || async {
            scrape(&url).await.is_err().then_some(())
        })
        .await;
        assert!(gone.is_ok(), "still serving after drop");
    }
}
