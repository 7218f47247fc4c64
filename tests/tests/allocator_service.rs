//! The allocator service's mTLS path end to end (issue 23 item 6): the Producer allocates as a
//! matchmaker through the simulator's allocator service, holding the client certificate it
//! read at start. With the chart's defaults each install rotates the certificates, and the
//! allocator-service SLOs fail on the transition (steady success, disruption outage); with
//! fixed certificates the same soak passes them.
//!
//! Both soaks run at once, each about 50 s: the harness's fast lifecycle (0.4 s to Ready), a
//! 1 s upgrade window, a 20 s period, a 10 s settle and an 8 s judged window. Certificates do
//! not care about speed: what is judged is whether the held client certificate still works
//! after the install, which the realistic defaults would show only later, not differently.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::Value;
use upsoak_testkit::{TempDir, eventually, free_port};
use upsoak_tests::{Soak, Stack, disruption_summary, soak, summary};

/// The allocator-service SLOs as `rules/slos.yaml` has them, at the soak's 2 s interval and
/// 1 s scrapes (5 s rate windows instead of 1 m; the outage counted at 1 s resolution).
fn slos() -> String {
    let total = "upsoak_producer_allocator_service_requests_total";
    format!(
        r#"  - name: allocator-service
    interval: 2s
    slos:
      - name: allocator-service-success
        expr: (sum(rate({total}{{result="Allocated"}}[5s])) or sum(rate({total}[5s])) * 0) / sum(rate({total}{{result!~"UnAllocated|dropped"}}[5s]))
        objective: ">= 0.9"
        severity: critical
      - name: allocator-service-outage-seconds
        window: disruption
        expr: sum_over_time(((sum(irate({total}{{result!~"Allocated|UnAllocated|dropped"}}[5s])) or sum(irate({total}[5s])) * 0) > bool 0)[${{window}}:1s])
        objective: "<= 6"
        severity: critical
"#
    )
}

fn config(certs: &TempDir, generate_tls: bool) -> Soak {
    let port = free_port();
    let dir = certs.path().display();
    Soak {
        disruption: true,
        settle_s: 10,
        judge_s: 8,
        sim_extra: format!(
            "allocator_service: {{ listen: \"127.0.0.1:{port}\", client_dir: \"{dir}\", generate_tls: {generate_tls} }}"
        ),
        producer_extra: format!(
            "  allocator_service: {{ endpoint: \"https://localhost:{port}\", ca_file: \"{dir}/tls-ca.crt\", cert_file: \"{dir}/tls.crt\", key_file: \"{dir}/tls.key\", fleet: simple-game-server, rate: 5, timeout: 2s }}\n"
        ),
        slos_extra: slos(),
        ..Soak::default()
    }
}

/// The first transition, once judged in both windows.
async fn first_judged(s: &Stack) -> Value {
    eventually(
        Duration::from_secs(100),
        Duration::from_millis(500),
        || async {
            let j = s.judged();
            j.first().filter(|t| !t["disruption"].is_null()).cloned()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("a transition judged in both windows: {e}\n{}", s.logs()))
}

fn steady(t: &Value, slo: &str) -> String {
    t["judged"]["slos"][format!("allocator-service/{slo}")]["evidence"]["verdict"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

fn disruption(t: &Value, slo: &str) -> String {
    t["disruption"]["slos"][format!("allocator-service/{slo}")]["evidence"]["verdict"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn rotated_certificates_fail_the_allocator_service_slos_and_fixed_ones_pass() {
    let (rotating_certs, fixed_certs) = (TempDir::new("alloc-rot"), TempDir::new("alloc-fix"));
    let (rotating, fixed) = tokio::join!(
        soak("alloc-rotating", config(&rotating_certs, true), None),
        soak("alloc-fixed", config(&fixed_certs, false), None),
    );
    let (r, f) = tokio::join!(first_judged(&rotating), first_judged(&fixed));
    let report = format!(
        "rotating:\n{}\n{}\nfixed:\n{}\n{}",
        summary(&r),
        disruption_summary(&r),
        summary(&f),
        disruption_summary(&f)
    );
    assert_eq!(steady(&r, "allocator-service-success"), "fail", "{report}");
    assert_eq!(
        disruption(&r, "allocator-service-outage-seconds"),
        "fail",
        "{report}"
    );
    assert_eq!(steady(&f, "allocator-service-success"), "pass", "{report}");
    assert_eq!(
        disruption(&f, "allocator-service-outage-seconds"),
        "pass",
        "{report}"
    );
}
