//! The report as people read it: every transition as what it changed, the full configuration
//! a flag or a click away, the HTML page parsed (never looked at) for its timeline and charts,
//! the live page on the agent's HTTP port, and `report --follow` against a growing history.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use roxmltree::{Document, Node};
use serde_json::json;
use upsoak_agent::history::History;
use upsoak_agent::report;
use upsoak_testkit::{Announce, Proc, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_upsoak-agent");
const T0: i64 = 1_764_000_000;
const LATENCY: &str = "histogram_quantile(0.99, sum by (le) (rate(upsoak_producer_allocation_duration_seconds_bucket[1m])))";
const CHANGE: &str =
    "1.58.0 → 1.59.0  +WasmAutoscaler −SidecarContainers  allocationBatchWaitTime 500ms→100ms";

fn config(version: &str, gates: &str, tunables: &str) -> serde_json::Value {
    json!({"version": version, "feature_gates": gates, "tunables": tunables})
}

/// An SLO verdict, built through serde so fields added later with defaults need no change here.
fn slo(
    group: &str,
    name: &str,
    query: &str,
    verdict: &str,
    samples: &[(i64, f64)],
    baseline: Option<f64>,
    threshold: Option<f64>,
) -> serde_json::Value {
    let values: Vec<f64> = samples.iter().map(|s| s.1).collect();
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    json!({
        "group": group, "slo": name, "severity": "warning", "query": query,
        "evidence": {
            "verdict": verdict, "value": mean, "baseline": baseline, "threshold": threshold,
            "p_value": null, "samples": samples.len(), "baseline_samples": 40,
            "reason": format!("{mean:.4} against the baseline")
        },
        "previous": null,
        "samples": samples.iter().map(|(t, v)| json!([*t as f64, v])).collect::<Vec<_>>(),
    })
}

fn latency(start: i64, level: f64) -> Vec<(i64, f64)> {
    (0..21)
        .map(|i| (start + 15 * i, level + 0.002 * ((i % 5) as f64)))
        .collect()
}

/// Three transitions: the first passes both windows, the second fails its steady window, the
/// third is pending.
fn history() -> History {
    let c1 = config(
        "1.58.0",
        "SidecarContainers=true&WasmAutoscaler=false",
        "allocationBatchWaitTime=500ms",
    );
    let c2 = config(
        "1.59.0",
        "SidecarContainers=false&WasmAutoscaler=true",
        "allocationBatchWaitTime=100ms",
    );
    let c3 = config(
        "1.60.0",
        "SidecarContainers=false&WasmAutoscaler=true",
        "allocationBatchWaitTime=100ms",
    );
    let v = json!({
        "last_generation": 3,
        "last_config": c3,
        "transitions": [
            {
                "generation": 1, "at": T0 + 100, "from": c1, "to": c2,
                "disruption": {
                    "apply_started": (T0 + 90) as f64, "apply_finished": (T0 + 98) as f64,
                    "window_start": T0 + 90, "window_end": T0 + 160, "judged_at": T0 + 161,
                    "verdict": "pass", "phases": "apply start from the sidecar",
                    "slos": {"disruption/canaries-lost": slo("disruption", "canaries-lost", "sum(x)", "pass", &[(T0 + 160, 0.0)], None, None)}
                },
                "judged": {
                    "window_start": T0 + 160, "window_end": T0 + 460, "judged_at": T0 + 465, "verdict": "pass",
                    "slos": {"allocation/allocation-latency-p99": slo("allocation", "allocation-latency-p99", LATENCY, "pass", &latency(T0 + 160, 0.020), Some(0.018), Some(0.043))}
                }
            },
            {
                "generation": 2, "at": T0 + 600, "from": c2, "to": c3,
                "judged": {
                    "window_start": T0 + 660, "window_end": T0 + 960, "judged_at": T0 + 962, "verdict": "fail",
                    "slos": {"allocation/allocation-latency-p99": slo("allocation", "allocation-latency-p99", LATENCY, "fail", &latency(T0 + 660, 0.090), Some(0.018), Some(0.043))}
                }
            },
            {"generation": 3, "at": T0 + 1100, "from": c3, "to": c2}
        ]
    });
    serde_json::from_value(v).unwrap()
}

/// The page as XML: it must be well-formed (its `<!DOCTYPE html>` is allowed).
fn parse(page: &str) -> Document<'_> {
    let o = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    Document::parse_with_options(page, o).unwrap_or_else(|e| panic!("not well-formed: {e}\n{page}"))
}

fn class_has(n: &Node<'_, '_>, c: &str) -> bool {
    n.attribute("class")
        .is_some_and(|a| a.split_whitespace().any(|x| x == c))
}

fn find_all<'a, 'i>(root: Node<'a, 'i>, name: &str, class: &str) -> Vec<Node<'a, 'i>> {
    root.descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == name && class_has(n, class))
        .collect()
}

fn text_of(n: Node<'_, '_>) -> String {
    n.descendants()
        .filter(|d| d.is_text())
        .filter_map(|d| d.text())
        .collect()
}

fn num(n: &Node<'_, '_>, attr: &str) -> f64 {
    n.attribute(attr).unwrap().parse().unwrap()
}

#[test]
fn the_page_parses_and_opens_with_the_run_timeline() {
    let page = report::html(&history());
    let doc = parse(&page);
    let body = doc.descendants().find(|n| n.has_tag_name("body")).unwrap();
    let sections: Vec<_> = body
        .children()
        .filter(|n| n.has_tag_name("section"))
        .collect();
    assert_eq!(
        sections[0].attribute("id"),
        Some("timeline"),
        "the timeline comes first"
    );
    assert_eq!(
        sections.len(),
        4,
        "the timeline and a section per transition"
    );
    let tl = sections[0];
    // A band per configuration (the one before the first transition included), a line per transition.
    let bands = find_all(tl, "rect", "config-band");
    assert_eq!(bands.len(), 4);
    let lines = find_all(tl, "line", "transition");
    let gens: Vec<_> = lines
        .iter()
        .map(|l| l.attribute("data-generation").unwrap())
        .collect();
    assert_eq!(gens, ["1", "2", "3"]);
    // Bands meet at the transitions, in time order.
    for (band, line) in bands[1..].iter().zip(&lines) {
        assert!(
            (num(band, "x") - num(line, "x1")).abs() < 0.2,
            "a band starts at its transition"
        );
    }
    // Each judged window in its lane, coloured by its verdict.
    let windows: Vec<(String, String, String)> = find_all(tl, "rect", "window-verdict")
        .iter()
        .map(|r| {
            let v = r
                .attribute("class")
                .unwrap()
                .split_whitespace()
                .find(|c| c.starts_with("v-"))
                .unwrap()
                .to_owned();
            (
                r.attribute("data-generation").unwrap().to_owned(),
                r.attribute("data-kind").unwrap().to_owned(),
                v,
            )
        })
        .collect();
    let want = |g: &str, k: &str, v: &str| (g.to_owned(), k.to_owned(), v.to_owned());
    assert_eq!(
        windows,
        vec![
            want("1", "disruption", "v-pass"),
            want("1", "steady", "v-pass"),
            want("2", "steady", "v-fail")
        ]
    );
    // The time axis has round UTC ticks.
    let ticks = find_all(tl, "text", "tick");
    assert!(ticks.len() >= 3, "{}", ticks.len());
    assert!(ticks.iter().all(|t| text_of(*t).contains(':')));
    // Sections read as what changed, with the full configuration one click away.
    let h2 = text_of(
        sections[1]
            .children()
            .find(|n| n.has_tag_name("h2"))
            .unwrap(),
    );
    assert_eq!(h2, format!("generation 1: {CHANGE}"));
    let details = text_of(find_all(sections[1], "details", "config")[0]);
    assert!(details.contains("1.58.0  gates SidecarContainers=true WasmAutoscaler=false  tunables allocationBatchWaitTime=500ms"), "{details}");
    assert!(text_of(sections[3]).contains("steady window pending"));
}

#[test]
fn each_slo_is_drawn_on_axes_with_its_baseline_band_threshold_and_windows() {
    let page = report::html(&history());
    let doc = parse(&page);
    let figures = find_all(doc.root(), "figure", "slo-chart");
    // The steady SLO of each judged transition; the disruption SLO's one value is no line.
    assert_eq!(figures.len(), 2);
    for f in &figures {
        let svg = f.children().find(|n| n.has_tag_name("svg")).unwrap();
        let y_axis = find_all(svg, "g", "axis")
            .into_iter()
            .find(|g| class_has(g, "y"))
            .unwrap();
        let x_axis = find_all(svg, "g", "axis")
            .into_iter()
            .find(|g| class_has(g, "x"))
            .unwrap();
        assert_eq!(text_of(find_all(y_axis, "text", "unit")[0]), "seconds");
        assert_eq!(text_of(find_all(x_axis, "text", "unit")[0]), "time (UTC)");
        assert!(find_all(x_axis, "text", "tick").len() >= 2);
        // The value ticks define the scale: the threshold and the baseline sit where it puts them.
        let ticks: Vec<(f64, f64)> = find_all(y_axis, "text", "tick")
            .iter()
            .map(|t| (text_of(*t).parse::<f64>().unwrap(), num(t, "y") - 4.0))
            .collect();
        assert!(ticks.len() >= 2, "{ticks:?}");
        let (a, b) = (ticks[0], ticks[ticks.len() - 1]);
        let y_of = |v: f64| a.1 + (v - a.0) / (b.0 - a.0) * (b.1 - a.1);
        let threshold = find_all(svg, "line", "threshold")[0];
        assert!(
            (num(&threshold, "y1") - y_of(0.043)).abs() < 0.6,
            "threshold at {} not {}",
            num(&threshold, "y1"),
            y_of(0.043)
        );
        let band = find_all(svg, "rect", "band")[0];
        assert!(class_has(&band, "baseline"));
        let (top, bottom) = (num(&band, "y"), num(&band, "y") + num(&band, "height"));
        assert!(
            (top - y_of(0.043)).abs() < 0.6 && (bottom - y_of(0.018)).abs() < 0.6,
            "band {top}..{bottom}"
        );
        // Samples drawn inside the plot, and the steady window shaded behind them.
        let points = find_all(svg, "polyline", "series")[0]
            .attribute("points")
            .unwrap();
        assert_eq!(points.split_whitespace().count(), 21);
        assert!(!find_all(svg, "rect", "steady").is_empty());
    }
    // The first transition's chart also shades its disruption window.
    let first = figures
        .iter()
        .find(|f| f.attribute("data-generation") == Some("1"))
        .unwrap();
    assert!(!find_all(*first, "rect", "disruption").is_empty());
}

#[test]
fn the_page_is_one_self_contained_file() {
    let page = report::html(&history());
    let doc = parse(&page);
    for n in doc.descendants().filter(|n| n.is_element()) {
        let tag = n.tag_name().name();
        assert!(
            !["script", "link", "img", "iframe", "object", "embed"].contains(&tag),
            "<{tag}> in the page"
        );
        for a in n.attributes() {
            let v = a.value();
            assert!(a.name() != "src", "src={v} on <{tag}>");
            if a.name() == "href" {
                assert!(v.starts_with('#'), "href={v} leaves the page");
            }
        }
    }
    let style = text_of(doc.descendants().find(|n| n.has_tag_name("style")).unwrap());
    assert!(
        !style.contains("url(") && !style.contains("@import"),
        "{style}"
    );
}

#[test]
fn text_and_json_read_as_what_changed_with_the_full_configuration_kept() {
    let h = history();
    let text = report::text(&h);
    assert!(
        text.contains(&format!("generation 1: {CHANGE}\n")),
        "{text}"
    );
    assert!(text.contains("generation 2: 1.59.0 → 1.60.0\n"), "{text}");
    assert!(
        !text.contains("from: "),
        "the full configuration only when asked"
    );
    let full = report::text_with(&h, report::TextOptions { full_config: true });
    assert!(full.contains("  from: 1.58.0  gates SidecarContainers=true WasmAutoscaler=false  tunables allocationBatchWaitTime=500ms\n"), "{full}");
    let j: serde_json::Value = serde_json::from_str(&report::json(&h)).unwrap();
    assert_eq!(j["transitions"][0]["change"], CHANGE);
    assert_eq!(
        j["transitions"][0]["from"]["feature_gates"],
        "SidecarContainers=true&WasmAutoscaler=false"
    );
    assert_eq!(
        j["transitions"][0]["to"]["tunables"],
        "allocationBatchWaitTime=100ms"
    );
}

#[tokio::test]
async fn the_agent_serves_the_live_report_refreshing_on_its_port() {
    let dir = TempDir::new("live-report");
    let stop = tokio_util::sync::CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}{}",
        listener.local_addr().unwrap(),
        report::live::REPORT_PATH
    );
    tokio::spawn(upsoak_agent::server::serve(
        listener,
        prometheus_client::registry::Registry::default(),
        upsoak_agent::webhook::Webhook {
            inbox: upsoak_agent::webhook::Inbox::default(),
            auth: None,
            metrics: upsoak_agent::events::AgentMetrics::default(),
        },
        upsoak_common::ops::Health::new(),
        dir.path().to_owned(),
        upsoak_common::server::Limits::default(),
        stop.clone(),
    ));
    // Before the first transition: a page that says so.
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(r.text().await.unwrap().contains("No transition seen yet"));
    // The history as the loop writes it: the next request shows it.
    history().save(dir.path()).unwrap();
    let page = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let doc = parse(&page);
    let refresh = doc
        .descendants()
        .find(|n| n.has_tag_name("meta") && n.attribute("http-equiv") == Some("refresh"))
        .unwrap();
    assert_eq!(
        refresh.attribute("content"),
        Some(report::live::REFRESH_S.to_string().as_str())
    );
    assert!(page.contains(&format!("generation 1: {CHANGE}")));
    stop.cancel();
}

#[test]
fn follow_prints_each_new_verdict_and_stops_on_sigterm() {
    let dir = TempDir::new("follow");
    let state = dir.path().join("state");
    let mut h = history();
    let later = h.transitions.split_off(1);
    std::fs::create_dir_all(&state).unwrap();
    h.save(&state).unwrap();
    let mut p = Proc::spawn(
        "follow",
        Command::new(BIN)
            .args(["report", "--follow", "--interval", "50ms", "--state-dir"])
            .arg(&state),
        dir.path(),
        Announce::ListeningOn,
    );
    let wait_for = |p: &Proc, what: &str| {
        upsoak_testkit::eventually_blocking(
            Duration::from_secs(20),
            Duration::from_millis(20),
            || p.stdout().contains(what).then_some(()),
        )
        .unwrap_or_else(|_| panic!("no `{what}` in\n{}", p.logs()));
    };
    wait_for(&p, &format!("generation 1: {CHANGE}  steady PASS"));
    assert!(
        p.stdout()
            .contains(&format!("generation 1: {CHANGE}  disruption PASS"))
    );
    // The agent judges the next transition: only the new lines are printed.
    h.transitions.extend(later);
    h.save(&state).unwrap();
    wait_for(&p, "generation 2: 1.59.0 → 1.60.0  steady FAIL");
    assert!(
        p.stdout()
            .contains("  fail: allocation/allocation-latency-p99"),
        "{}",
        p.stdout()
    );
    wait_for(&p, "generation 3: 1.60.0 → 1.59.0  detected");
    assert_eq!(
        p.stdout().matches("generation 1:").count(),
        3,
        "{}",
        p.stdout()
    );
    let status = p
        .terminate(Duration::from_secs(10))
        .expect("stops on SIGTERM");
    assert_eq!(status.code(), Some(i32::from(upsoak_agent::exit::FAIL)));
    assert!(p.stdout().ends_with("overall: FAIL\n"), "{}", p.stdout());
}
