//! A soak whose period is several judge windows long is judged for its whole length: after each
//! transition's first steady window, the steady period is judged in consecutive chunks
//! (`--steady-every`) until the next transition's apply, and the report shows a row per chunk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::Value;
use upsoak_testkit::eventually;
use upsoak_tests::{Soak, soak};

/// The worst verdict: fail > warn > inconclusive > pass.
fn rank(v: &str) -> u8 {
    match v {
        "fail" => 3,
        "warn" => 2,
        "inconclusive" => 1,
        _ => 0,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_period_is_judged_in_chunks_until_the_next_transition() {
    // period 50 s = 5 judge windows: first window [settle 6 s, +10 s], then chunks of 10 s until
    // the next apply (three whole ones; a rest shorter than a judge window is left unjudged).
    let cfg = Soak {
        period_s: 50,
        steady_every_s: Some(10),
        ..Soak::default()
    };
    let s = soak("chunks", cfg.clone(), None).await;
    // The first transition's steady period is closed once the second one is seen.
    let closed: Value = eventually(
        Duration::from_secs(4 * cfg.period_s),
        Duration::from_millis(500),
        || async {
            let h = s.history();
            h["transitions"]
                .as_array()
                .and_then(|ts| ts.first())
                .filter(|t| t["steady_closed"] == Value::Bool(true))
                .cloned()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("a closed steady period: {e}\n{}", s.logs()));
    let h = s.history();
    let next_at = h["transitions"][1]["at"].as_i64().unwrap();
    let first = &closed["judged"];
    let chunks = closed["chunks"].as_array().cloned().unwrap_or_default();
    assert!(
        chunks.len() >= 2,
        "several chunks per transition: {closed:#}\n{}",
        s.logs()
    );
    // Consecutive, each at most `steady_every` long, all before the next transition went live.
    let mut end = first["window_end"].as_i64().unwrap();
    for c in &chunks {
        assert_eq!(c["window_start"].as_i64(), Some(end), "{c:#}");
        end = c["window_end"].as_i64().unwrap();
        let len = end - c["window_start"].as_i64().unwrap();
        // A cut last chunk is judged only when at least a judge window (= steady_every) long.
        assert_eq!(len, 10, "{c:#}");
        assert!(
            end <= next_at,
            "{end} after the next transition at {next_at}"
        );
        let slos = c["slos"].as_object().unwrap();
        assert!(
            slos.len() >= 6
                && slos
                    .values()
                    .all(|v| v["evidence"]["samples"].as_u64() > Some(0)),
            "every SLO judged on samples of its chunk: {c:#}"
        );
    }
    // The report has a row per chunk, and the transition's steady verdict is the worst of all.
    let (_, text) = s.report("text");
    let generation = closed["generation"].as_u64().unwrap();
    let section: String = text
        .split("generation ")
        .find(|sec| sec.starts_with(&format!("{generation}:")))
        .unwrap_or_default()
        .to_owned();
    for n in 1..=chunks.len() {
        assert!(
            section.contains(&format!("  chunk {n}: ")),
            "chunk {n} in the report:\n{text}"
        );
    }
    let worst = std::iter::once(first)
        .chain(&chunks)
        .map(|w| w["verdict"].as_str().unwrap())
        .max_by_key(|v| rank(v))
        .unwrap();
    assert!(
        section.contains(&format!("steady verdict: {}", worst.to_uppercase())),
        "{worst} in:\n{section}"
    );
}
