//! The `/metrics` encoding: format negotiation and the `_total` series names.

use axum::http::{HeaderMap, HeaderValue, header};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use upsoak_common::exposition::{Format, encode};

fn registry() -> Registry {
    let mut r = Registry::default();
    let c: Counter = Counter::default();
    c.inc();
    r.register("upsoak_test_things", "Things seen.", c);
    r
}

#[test]
fn negotiates_openmetrics_only_when_asked() {
    let mut h = HeaderMap::new();
    assert_eq!(Format::negotiate(&h), Format::PrometheusText);
    h.insert(
        header::ACCEPT,
        HeaderValue::from_static(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        ),
    );
    assert_eq!(Format::negotiate(&h), Format::OpenMetrics);
}

#[test]
fn text_format_names_the_total_series_in_type() -> Result<(), std::fmt::Error> {
    let text = encode(&registry(), Format::PrometheusText)?;
    assert!(
        text.contains("# TYPE upsoak_test_things_total counter"),
        "{text}"
    );
    assert!(!text.contains("# EOF"), "{text}");
    let om = encode(&registry(), Format::OpenMetrics)?;
    assert!(om.contains("# TYPE upsoak_test_things counter"), "{om}");
    assert!(om.ends_with("# EOF\n"), "{om}");
    Ok(())
}
