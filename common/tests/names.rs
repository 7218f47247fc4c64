//! The sidecar's metric names: registration names against the series Prometheus stores,
//! and the component naming convention.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use upsoak_common::names::{producer, wanderer};

use upsoak_common::exposition::{Format, encode};

/// Registers one metric per name, the way the sidecar does, and encodes the registry.
fn exposed(format: Format) -> Result<String, std::fmt::Error> {
    let mut r = Registry::default();
    for name in [wanderer::TRANSITIONS, producer::ALLOCATIONS] {
        let c: Counter = Counter::default();
        c.inc();
        r.register(name, "test", c);
    }
    let g: Gauge = Gauge::default();
    g.set(3);
    r.register(wanderer::GENERATION, "test", g);
    let h = Histogram::new([1.0]);
    h.observe(0.5);
    r.register(wanderer::TRANSITION_DURATION_SECONDS, "test", h);
    encode(&r, format)
}

#[test]
fn counters_are_exposed_under_their_total_series() -> Result<(), std::fmt::Error> {
    for format in [Format::OpenMetrics, Format::PrometheusText] {
        let text = exposed(format)?;
        for series in [wanderer::TRANSITIONS_TOTAL, producer::ALLOCATIONS_TOTAL] {
            assert!(text.contains(&format!("\n{series} 1")), "{series}: {text}");
        }
        assert!(
            text.contains(&format!("\n{} 3", wanderer::GENERATION)),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "\n{}_count 1",
                wanderer::TRANSITION_DURATION_SECONDS
            )),
            "{text}"
        );
    }
    Ok(())
}

#[test]
fn total_series_is_the_registration_name_plus_total() {
    let pairs = [
        (wanderer::TRANSITIONS, wanderer::TRANSITIONS_TOTAL),
        (producer::ALLOCATIONS, producer::ALLOCATIONS_TOTAL),
        (producer::FLEET_SCALE, producer::FLEET_SCALE_TOTAL),
        (producer::SESSION_OPS, producer::SESSION_OPS_TOTAL),
        (producer::DROPPED, producer::DROPPED_TOTAL),
    ];
    for (name, series) in pairs {
        assert_eq!(format!("{name}_total"), series);
    }
}

#[test]
fn names_follow_the_component_convention() {
    let wanderer = [
        wanderer::GENERATION,
        wanderer::CONFIG_INFO,
        wanderer::TRANSITIONS,
        wanderer::TRANSITION_DURATION_SECONDS,
        wanderer::LAST_TRANSITION_TIMESTAMP_SECONDS,
        wanderer::COVERAGE_RATIO,
        wanderer::NEXT_TRANSITION_TIMESTAMP_SECONDS,
        wanderer::RUNNING,
        wanderer::LAST_FAILED_TARGET_INFO,
        wanderer::JOURNAL_LINES_DROPPED,
    ];
    let producer = [
        producer::ALLOCATIONS,
        producer::ALLOCATION_DURATION_SECONDS,
        producer::FLEET_SCALE,
        producer::SESSION_OPS,
        producer::SESSION_OP_DURATION_SECONDS,
        producer::DROPPED,
        producer::IN_FLIGHT,
        producer::SESSIONS_ACTIVE,
        producer::ALLOCATION_WINDOW_LATENCY_SECONDS,
    ];
    let mut seen = std::collections::BTreeSet::new();
    for n in wanderer {
        assert!(n.starts_with("upsoak_wanderer_"), "{n}");
        assert!(seen.insert(n), "{n} twice");
    }
    for n in producer {
        assert!(n.starts_with("upsoak_producer_"), "{n}");
        assert!(seen.insert(n), "{n} twice");
    }
    // Registration names never carry the suffix the encoder adds.
    assert!(seen.iter().all(|n| !n.ends_with("_total")));
}
