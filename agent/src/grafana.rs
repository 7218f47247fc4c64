//! Grafana annotations (`POST /api/annotations`, bearer token): a region per transition from
//! its apply's start to the end of its settle period, a region per judged disruption window
//! with its verdict and numbers, and a point per steady SLO verdict that changed, tagged so
//! dashboards can filter them. Requests are bounded by timeouts, and in the agent's loop they
//! are posted by a task beside it ([`Grafana::beside_the_loop`]), so a slow Grafana never
//! delays judging.

use serde_json::json;

use crate::history::{Disruption, Transition};
use crate::spec::Verdict;

/// Where annotations go: Grafana's API, or (without a Grafana) a file recording each request
/// body as one JSON line, exactly as it would have been posted.
#[derive(Clone)]
enum Target {
    Http {
        url: String,
        token: String,
        http: reqwest::Client,
    },
    File(std::path::PathBuf),
    /// Handed to the delivery task (kind, generation, body).
    Queue(tokio::sync::mpsc::Sender<(&'static str, u64, serde_json::Value)>),
}

/// Annotations the loop may hand over before the delivery task takes them; more are refused
/// (the loop counts them as failed annotations).
pub const HANDOVER: usize = 64;

/// The delivery task of [`Grafana::beside_the_loop`].
pub struct Delivery {
    closing: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<upsoak_common::tasks::Ended>,
}

impl Delivery {
    /// Waits (at most `deadline`) for what was handed over to be posted; the loop's `Grafana`
    /// clones must be dropped first, or this waits out the deadline.
    pub async fn close(mut self, deadline: std::time::Duration) {
        self.closing.cancel();
        let _ = tokio::time::timeout(deadline, &mut self.task).await;
    }
}

/// A Grafana annotations client.
#[derive(Clone)]
pub struct Grafana {
    target: Target,
}

impl Grafana {
    /// Grafana at `url` with the default timeouts.
    pub fn new(url: &str, token: &str) -> Grafana {
        Grafana::with_timeouts(url, token, crate::http::Timeouts::SINK)
    }

    /// Grafana at `url`, every request bounded by `timeouts`.
    pub fn with_timeouts(url: &str, token: &str, timeouts: crate::http::Timeouts) -> Grafana {
        Grafana {
            target: Target::Http {
                url: url.trim_end_matches('/').to_owned(),
                token: token.to_owned(),
                http: timeouts.client(),
            },
        }
    }

    /// This Grafana posted by a supervised task beside the loop (a death is logged, counted and
    /// fails `health`): the returned client only hands annotations over, never waiting; a
    /// failed post is reported by the task. A recording file is written in place.
    pub fn beside_the_loop(
        self,
        m: &crate::events::AgentMetrics,
        health: upsoak_common::ops::Health,
    ) -> (Grafana, Option<Delivery>) {
        if let Target::File(_) = self.target {
            return (self, None);
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel(HANDOVER);
        let closing = tokio_util::sync::CancellationToken::new();
        let metrics = m.clone();
        let died = m.clone();
        let direct = self;
        let task = upsoak_common::tasks::supervise(
            "grafana delivery",
            async move {
                while let Some((kind, generation, body)) = rx.recv().await {
                    if let Err(e) = direct.post(kind, generation, body).await {
                        crate::events::AnnotationFailed {
                            kind,
                            generation,
                            error: &e,
                        }
                        .emit(&metrics);
                    }
                }
            },
            health,
            closing.clone(),
            move |task, reason| crate::events::TaskDied { task, reason }.emit(&died),
        );
        (
            Grafana {
                target: Target::Queue(tx),
            },
            Some(Delivery { closing, task }),
        )
    }

    /// Records the annotations that would be posted in `path` (JSON lines).
    pub fn recording(path: &std::path::Path) -> Grafana {
        Grafana {
            target: Target::File(path.to_owned()),
        }
    }

    async fn post(
        &self,
        kind: &'static str,
        generation: u64,
        body: serde_json::Value,
    ) -> Result<(), String> {
        let (url, token, http) = match &self.target {
            Target::Queue(tx) => {
                return tx.try_send((kind, generation, body)).map_err(|e| match e {
                    tokio::sync::mpsc::error::TrySendError::Full(_) => format!(
                        "{HANDOVER} annotations already wait for Grafana: this one is dropped"
                    ),
                    tokio::sync::mpsc::error::TrySendError::Closed(_) => {
                        "the Grafana delivery task is gone".to_owned()
                    }
                });
            }
            Target::File(p) => {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| format!("{}: {e}", p.display()))?;
                return writeln!(f, "{body}").map_err(|e| format!("{}: {e}", p.display()));
            }
            Target::Http { url, token, http } => (url, token, http),
        };
        let r = http
            .post(format!("{url}/api/annotations"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "{}: {}",
                r.status(),
                r.text().await.unwrap_or_default()
            ))
        }
    }

    /// The region of a transition: from `start_s` (its apply's start, else when it went live)
    /// to `end_s`, the end of the settle period.
    pub async fn transition(&self, t: &Transition, start_s: i64, end_s: i64) -> Result<(), String> {
        let v = |c: &std::collections::BTreeMap<String, String>, k: &str| {
            c.get(k).cloned().unwrap_or_default()
        };
        self.post(
            "transition",
            t.generation,
            json!({
                "time": start_s * 1000,
                "timeEnd": end_s.max(start_s) * 1000,
                "tags": ["upsoak", "transition", format!("to:{}", v(&t.to, "version"))],
                "text": format!(
                    "upsoak generation {}: {}<br>apply {}s before live",
                    t.generation,
                    upsoak_common::change::describe(&t.from, &t.to),
                    t.at - start_s
                ),
            }),
        )
        .await
    }

    /// The region of a judged disruption window, with its verdict and each SLO's number.
    pub async fn disruption(&self, t: &Transition, d: &Disruption) -> Result<(), String> {
        let numbers: Vec<String> = d
            .slos
            .values()
            .map(|v| {
                let value = v
                    .evidence
                    .value
                    .map_or("–".to_owned(), |x| format!("{x:.3}"));
                format!("{}: {value} ({})", v.slo, v.evidence.verdict.as_str())
            })
            .collect();
        self.post(
            "disruption",
            t.generation,
            json!({
                "time": d.window_start * 1000,
                "timeEnd": d.window_end.max(d.window_start) * 1000,
                "tags": ["upsoak", "disruption", d.verdict.as_str()],
                "text": format!(
                    "upsoak disruption window of generation {} ({}): {}<br>{}<br>{}",
                    t.generation,
                    upsoak_common::change::describe(&t.from, &t.to),
                    d.verdict.as_str(),
                    numbers.join("<br>"),
                    d.phases
                ),
            }),
        )
        .await
    }

    /// A point for an SLO verdict.
    pub async fn verdict(
        &self,
        t: &Transition,
        at_s: i64,
        slo: &str,
        verdict: Verdict,
        reason: &str,
    ) -> Result<(), String> {
        self.post(
            "verdict",
            t.generation,
            json!({
                "time": at_s * 1000,
                "tags": ["upsoak", "verdict", verdict.as_str(), format!("slo:{slo}")],
                "text": format!(
                    "{slo}: {} after generation {} ({}; {})",
                    verdict.as_str(),
                    t.generation,
                    upsoak_common::change::describe(&t.from, &t.to),
                    reason
                ),
            }),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Grafana itself cannot run here: the recording target writes each body exactly as it
    // would be posted to `/api/annotations`.
    #[tokio::test]
    async fn annotations_read_as_what_the_transition_changed() {
        let dir = std::env::temp_dir().join(format!("upsoak-grafana-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("annotations.jsonl");
        let _ = std::fs::remove_file(&path);
        let g = Grafana::recording(&path);
        let t: Transition = serde_json::from_value(json!({
            "generation": 4, "at": 100,
            "from": {"version": "1.58.0", "feature_gates": "A=true", "tunables": ""},
            "to": {"version": "1.59.0", "feature_gates": "A=false", "tunables": ""},
        }))
        .unwrap();
        g.transition(&t, 90, 160).await.unwrap();
        g.verdict(&t, 200, "s", Verdict::Fail, "why").await.unwrap();
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines[0]["text"],
            "upsoak generation 4: 1.58.0 → 1.59.0  −A<br>apply 10s before live"
        );
        assert_eq!(
            lines[1]["text"],
            "s: fail after generation 4 (1.58.0 → 1.59.0  −A; why)"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
