//! `upsoak-agent run`: on fixed slots, detect transitions, judge the ones whose window has
//! passed, export and alert, and keep the history in the state directory.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::baseline::Baseline;
use crate::eval::{self, History, Windows};
use crate::prom::PromQuerier;
use crate::sinks::{self, AgentMetrics, AlertSender, GroupLabel, JudgedLabel, SloVerdictChanged};
use crate::slots::Slots;
use crate::spec::{Specs, Verdict};

/// Everything `run` needs.
pub struct RunConfig {
    pub prometheus: String,
    pub specs: Specs,
    pub baseline: Option<Baseline>,
    pub state_dir: PathBuf,
    pub alertmanager: Option<String>,
    pub windows: Windows,
    /// Stop after this many transitions have been judged (for demos and tests).
    pub max_judged: Option<usize>,
    pub grafana: Option<crate::grafana::Grafana>,
    /// Alerts posted by Alertmanager's webhook, folded into verdicts.
    pub inbox: crate::webhook::Inbox,
    /// Where the specs came from, and a flag set (by SIGHUP) to reload them.
    pub reload: Option<(PathBuf, Arc<std::sync::atomic::AtomicBool>)>,
}

/// Reloads the specs from `path`: a valid file replaces them, an invalid one keeps the old
/// specs (as Prometheus keeps its old rules) and says why.
pub fn reload_specs(specs: &mut Specs, path: &std::path::Path, m: &AgentMetrics) -> bool {
    match Specs::load(path) {
        Ok(new) => {
            tracing::info!(slos = new.slos.len(), hash = %new.hash, "specs reloaded");
            *specs = new;
            m.reloads
                .get_or_create(&sinks::ResultLabel {
                    result: "success".into(),
                })
                .inc();
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "invalid specs on reload; keeping the previous ones");
            m.reloads
                .get_or_create(&sinks::ResultLabel {
                    result: "failure".into(),
                })
                .inc();
            false
        }
    }
}

/// Why `run` stopped early.
fn rfc3339(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Now, in unix seconds.
pub fn unix_now() -> i64 {
    unix_now_ms().div_euclid(1000)
}

/// Now, in unix milliseconds.
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Serves the agent's `/metrics`, `/healthz`, `/readyz`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: Registry,
    inbox: crate::webhook::Inbox,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let registry = Arc::new(registry);
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(r): State<Arc<Registry>>, h: HeaderMap| async move { metrics(&r, &h) }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(|| async { "ok\n" }))
        .with_state(registry)
        .merge(
            Router::new()
                .route(
                    "/api/v1/alertmanager",
                    axum::routing::post(crate::webhook::receive),
                )
                .with_state(inbox),
        );
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

fn metrics(r: &Registry, h: &HeaderMap) -> Response {
    upsoak_common::exposition::response(r, h)
}

/// The slot of each group in `due`: counts it (and the slots it missed) and exports its SLOs'
/// current values; a failed query is NaN and counted, and never stops the others.
async fn evaluate_live(
    q: &PromQuerier,
    specs: &Specs,
    due: &[crate::slots::Due],
    now: i64,
    metrics: &AgentMetrics,
) {
    for d in due {
        let group = GroupLabel {
            group: d.group.clone(),
        };
        metrics.evaluations.inc();
        if d.missed > 0 {
            tracing::warn!(group = %d.group, missed = d.missed, "evaluation slots missed");
            metrics.missed.get_or_create(&group).inc_by(d.missed);
        }
        for (slo, v) in eval::current(q, specs, &d.group, now).await {
            let value = v.unwrap_or_else(|e| {
                tracing::warn!(group = %d.group, %slo, error = %e, "query failed");
                metrics.failures.get_or_create(&group).inc();
                None
            });
            metrics
                .current
                .get_or_create(&sinks::SloLabels {
                    group: d.group.clone(),
                    slo,
                })
                .set(value.unwrap_or(f64::NAN));
        }
    }
}

/// Runs until `shutdown` or `max_judged`; returns the overall verdict of the history.
pub async fn run(
    mut cfg: RunConfig,
    metrics: AgentMetrics,
    shutdown: CancellationToken,
) -> crate::Result<Verdict> {
    std::fs::create_dir_all(&cfg.state_dir)
        .map_err(|e| crate::Error::Write(cfg.state_dir.display().to_string(), e))?;
    let mut history = History::load(&cfg.state_dir)?;
    // Restarted: re-export what was judged before, so the metrics agree with the history.
    for t in &history.transitions {
        if let Some(j) = &t.judged {
            for v in j.slos.values() {
                SloVerdictChanged {
                    transition: t,
                    verdict: v,
                }
                .emit(&metrics);
            }
        }
    }
    let q = PromQuerier::new(&cfg.prometheus)?;
    let mut alerts = cfg
        .alertmanager
        .as_deref()
        .map(|u| AlertSender::new(u, 1000));
    let mut slots = Slots::new(&cfg.specs, unix_now_ms());
    loop {
        // Sleep until the next group's slot (fixed on the wall clock, as Prometheus' groups).
        let wait = slots
            .next_ms()
            .map(|t| Duration::from_millis((t - unix_now_ms()).max(0) as u64))
            .unwrap_or(Duration::from_secs(1));
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        if let Some((path, flag)) = &cfg.reload
            && flag.swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            let path = path.clone();
            if reload_specs(&mut cfg.specs, &path, &metrics) {
                slots.reconcile(&cfg.specs, unix_now_ms());
            }
        }
        let due = slots.due(unix_now_ms());
        if due.is_empty() {
            continue;
        }
        let now = unix_now();
        let saved = history.progress();
        let groups: Vec<String> = due.iter().map(|d| d.group.clone()).collect();
        evaluate_live(&q, &cfg.specs, &due, now, &metrics).await;
        let before = history.transitions.len();
        if let Err(e) = eval::detect(&q, &mut history, now).await {
            // Prometheus cannot be read: nothing is assumed; pending windows wait.
            tracing::warn!(error = %e, "cannot read the Wanderer's generation");
            metrics
                .failures
                .get_or_create(&GroupLabel {
                    group: "transitions".into(),
                })
                .inc();
        }
        if let Some(g) = &cfg.grafana {
            for t in &history.transitions[before..] {
                if let Err(e) = g.transition(t, cfg.windows.settle.as_secs() as i64).await {
                    tracing::warn!(error = %e, "grafana annotation failed");
                }
            }
        }
        let judged = eval::judge_due(
            &q,
            &cfg.inbox,
            &cfg.specs,
            cfg.baseline.as_ref(),
            &cfg.windows,
            &mut history,
            now,
            &groups,
        )
        .await;
        for i in &judged {
            let t = &history.transitions[*i];
            if let Some(j) = &t.judged {
                metrics
                    .judged
                    .get_or_create(&JudgedLabel {
                        verdict: j.verdict.as_str().to_owned(),
                    })
                    .inc();
                // The previous verdict of each SLO, to annotate only changes.
                let previous: std::collections::BTreeMap<&String, Verdict> = history.transitions
                    [..*i]
                    .iter()
                    .filter_map(|p| p.judged.as_ref())
                    .flat_map(|pj| pj.slos.iter().map(|(k, v)| (k, v.evidence.verdict)))
                    .collect();
                if let Some(g) = &cfg.grafana {
                    for (k, v) in &j.slos {
                        if previous.get(k) != Some(&v.evidence.verdict)
                            && let Err(e) = g
                                .verdict(t, j.window_end, k, v.evidence.verdict, &v.evidence.reason)
                                .await
                        {
                            tracing::warn!(error = %e, "grafana annotation failed");
                        }
                    }
                }
                for v in j.slos.values() {
                    if v.evidence.reason.starts_with("query failed") {
                        metrics
                            .failures
                            .get_or_create(&GroupLabel {
                                group: v.group.clone(),
                            })
                            .inc();
                    }
                    SloVerdictChanged {
                        transition: t,
                        verdict: v,
                    }
                    .emit(&metrics);
                }
                tracing::info!(
                    event = "transition_judged",
                    generation = t.generation,
                    verdict = j.verdict.as_str(),
                    "transition judged"
                );
            }
        }
        if history.progress() != saved {
            history.save(&cfg.state_dir)?;
        }
        if let Some(a) = alerts.as_mut() {
            // Firing alerts are re-sent every tick, as Alertmanager expects; resolved ones carry endsAt.
            a.send(
                sinks::current_alerts(&history.transitions, &rfc3339(now)),
                &metrics,
            )
            .await;
        }
        let done = history
            .transitions
            .iter()
            .filter(|t| t.judged.is_some())
            .count();
        if cfg.max_judged.is_some_and(|m| done >= m) {
            break;
        }
    }
    history.save(&cfg.state_dir)?;
    Ok(history.overall())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_reload_keeps_the_old_specs() {
        let dir = std::env::temp_dir().join(format!("upsoak-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("slos.yaml");
        let good = "groups: [ { name: g, interval: 15s, slos: [ { name: a, expr: up, objective: \">= 1\" } ] } ]";
        std::fs::write(&p, good).unwrap();
        let mut specs = Specs::load(&p).unwrap();
        let m = AgentMetrics::default();
        std::fs::write(&p, "groups: [ { name: g, interval: 15s, slos: [ { name: a, expr: \"up(\", objective: \">= 1\" } ] } ]").unwrap();
        assert!(!reload_specs(&mut specs, &p, &m));
        assert_eq!(specs.slos[0].spec.expr, "up");
        std::fs::write(&p, good.replace("expr: up", "expr: min(up)")).unwrap();
        assert!(reload_specs(&mut specs, &p, &m));
        assert_eq!(specs.slos[0].spec.expr, "min(up)");
        let count = |r: &str| {
            m.reloads
                .get(&sinks::ResultLabel { result: r.into() })
                .map(|c| c.get())
        };
        assert_eq!((count("failure"), count("success")), (Some(1), Some(1)));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
