//! The agent's memory bounded by design (issue 25, D6): webhook alerts as large as the webhook
//! takes, filling the inbox, posted over HTTP to the agent's real server, judged into 30
//! transitions by the judge's own function; the history file and `GET /report` stay within
//! sizes that do not grow with the alerts' text.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::TempDir;
use upsoak_agent::history::{History, Judged, Transition};
use upsoak_agent::spec::Verdict;
use upsoak_agent::webhook::verdicts::{MAX_ALERT_VERDICTS, MAX_SUMMARY_BYTES, inbox_verdicts};
use upsoak_agent::webhook::{Inbox, MAX_INBOX_BYTES, Webhook};

const TRANSITIONS: usize = 30;
/// What one transition may add to the history at most, with every alert verdict full.
const PER_TRANSITION: usize = (MAX_ALERT_VERDICTS + 1) * (MAX_SUMMARY_BYTES + 1024);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_inbox_of_large_alerts_over_30_transitions_keeps_history_and_report_bounded() {
    let dir = TempDir::new("bounded");
    let inbox = Inbox::open(dir.path(), MAX_INBOX_BYTES).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(upsoak_agent::server::serve(
        listener,
        prometheus_client::registry::Registry::default(),
        Webhook::open(inbox.clone()),
        upsoak_common::ops::Health::new(),
        dir.path().to_owned(),
        upsoak_common::server::Limits::default(),
        stop.clone(),
    ));
    // Ten alerts of 900 KiB, one per post (the webhook takes 1 MiB bodies): the inbox keeps
    // what fits in its 8 MiB.
    let http = reqwest::Client::new();
    let summary = "x".repeat(900 << 10);
    for i in 0..10 {
        let body = serde_json::json!({"version": "4", "status": "firing", "alerts": [{
            "status": "firing", "labels": {"alertname": format!("Big{i:02}"), "severity": "critical"},
            "annotations": {"summary": summary}, "startsAt": "2026-11-25T00:00:00Z",
            "fingerprint": format!("fp{i}")}]});
        let r = http
            .post(format!("{base}{}", upsoak_agent::server::WEBHOOK_PATH))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    let kept = inbox.alerts().len();
    assert!(kept >= 8, "{kept} alerts kept");
    // Thirty transitions, each judged over a window every alert overlaps.
    let t0 = 1_795_564_800;
    let mut h = History::default();
    for g in 1..=TRANSITIONS as u64 {
        let at = t0 + g as i64 * 600;
        let mut t = Transition::new(g, at, BTreeMap::new(), BTreeMap::new());
        let slos = inbox_verdicts(&inbox, at + 120, at + 420);
        assert_eq!(slos.len(), kept);
        t.judged = Some(Judged {
            window_start: at + 120,
            window_end: at + 420,
            judged_at: at + 421,
            verdict: Verdict::Fail,
            slos,
        });
        h.transitions.push(t);
        h.last_generation = Some(g);
    }
    h.save(dir.path()).unwrap();
    let file = std::fs::metadata(History::path(dir.path())).unwrap().len() as usize;
    let bound = TRANSITIONS * PER_TRANSITION;
    assert!(file < bound, "history.json {file} bytes, bound {bound}");
    // Every alert's failure is still in it.
    assert_eq!(History::load(dir.path()).unwrap().overall(), Verdict::Fail);
    let page = http
        .get(format!("{base}/report"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Big0"), "the report names the alerts");
    assert!(
        page.len() < 2 * bound,
        "GET /report {} bytes, bound {}",
        page.len(),
        2 * bound
    );
    stop.cancel();
}
