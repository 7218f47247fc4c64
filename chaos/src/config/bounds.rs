//! The bounds of every duration and rate of the sidecar's configuration, so that no value a
//! file can hold reaches arithmetic that panics or a wait that never ends: a schedule period of
//! `18446744073709551615s` used to pass `preflight` and panic `run` in `Duration::mul_f64`
//! (the jittered wait), and an allocation rate of `1e-300` would panic `Duration::from_secs_f64`
//! (the gap between allocations).

use std::time::Duration;

use upsoak_common::problems::Problems;

use super::{ApplierConfig, SidecarConfig};
use crate::producer::ProducerConfig;

/// One second: the shortest timeout (Kubernetes requests, installs, allocations, session
/// commands, a canary's silence).
pub const MIN_TIMEOUT: Duration = Duration::from_secs(1);
/// 100 ms: the shortest schedule period, Producer window and canary heartbeat interval (the
/// end-to-end soaks run at 200 ms periods; `1ns` would spin a loop).
pub const MIN_TICK: Duration = Duration::from_millis(100);
/// One hour: the longest timeout of a single request or call (Kubernetes, an allocation, a
/// session command, a canary heartbeat) and the longest kill grace.
pub const MAX_CALL: Duration = Duration::from_secs(3600);
/// One day: the longest install (`apply_timeout`, helm's `timeout`, `stuck_wait`), session,
/// scale interval and capacity replace time.
pub const MAX_DAY: Duration = Duration::from_secs(24 * 3600);
/// 365 days: the longest schedule period, Producer window and canary age. A period of a
/// year with jitter 1 waits two years, far from `Duration`'s limits.
pub const MAX_YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
/// The lowest allocation rate above 0: one per 1 000 s (0 turns allocations off).
pub const MIN_RATE: f64 = 1e-3;
/// The highest allocation rate: 10 000 per second.
pub const MAX_RATE: f64 = 1e4;
/// The largest capacity headroom factor.
pub const MAX_HEADROOM: f64 = 100.0;

/// Pushes a problem at `path` when `d` is outside `min..=max`.
fn within(p: &mut Problems, path: &str, d: Duration, min: Duration, max: Duration) {
    if d < min || d > max {
        p.push(path, format!("{d:?} is not within {min:?}..={max:?}"));
    }
}

/// Every duration and rate outside its bounds, with its path.
pub fn problems(c: &SidecarConfig) -> Problems {
    let mut p = Problems::new();
    within(
        &mut p,
        "kube_timeout",
        c.kube_timeout,
        MIN_TIMEOUT,
        MAX_CALL,
    );
    let w = &c.wanderer;
    if let Some(period) = w.schedule.period {
        within(
            &mut p,
            "wanderer.schedule.period",
            period,
            MIN_TICK,
            MAX_YEAR,
        );
    }
    within(
        &mut p,
        "wanderer.apply_timeout",
        w.apply_timeout,
        MIN_TIMEOUT,
        MAX_DAY,
    );
    if let ApplierConfig::Helm {
        timeout,
        stuck_wait,
        kill_grace,
        ..
    } = &w.applier
    {
        within(
            &mut p,
            "wanderer.applier.timeout",
            *timeout,
            MIN_TIMEOUT,
            MAX_DAY,
        );
        within(
            &mut p,
            "wanderer.applier.stuck_wait",
            *stuck_wait,
            MIN_TIMEOUT,
            MAX_DAY,
        );
        within(
            &mut p,
            "wanderer.applier.kill_grace",
            *kill_grace,
            Duration::ZERO,
            MAX_CALL,
        );
    }
    let pr = &c.producer;
    let rate = pr.allocation_rate;
    // NaN and the infinities fail both comparisons' ranges; `producer.problems()` names them
    // too, so only finite rates are reported here.
    if rate.is_finite() && rate != 0.0 && !(MIN_RATE..=MAX_RATE).contains(&rate) {
        p.push(
            "producer.allocation_rate",
            format!("{rate:?} is not 0 or within {MIN_RATE}..={MAX_RATE} per second"),
        );
    }
    within(
        &mut p,
        "producer.allocation_timeout",
        pr.allocation_timeout,
        MIN_TIMEOUT,
        MAX_CALL,
    );
    within(&mut p, "producer.window", pr.window, MIN_TICK, MAX_YEAR);
    for (i, f) in pr.fleets.iter().enumerate() {
        let at = format!("producer.fleets[{i}]");
        within(
            &mut p,
            &format!("{at}.scale_every_min"),
            f.scale_every_min,
            Duration::ZERO,
            MAX_DAY,
        );
        within(
            &mut p,
            &format!("{at}.scale_every_max"),
            f.scale_every_max,
            Duration::ZERO,
            MAX_DAY,
        );
    }
    let s = &pr.session;
    within(
        &mut p,
        "producer.session.min_length",
        s.min_length,
        Duration::ZERO,
        MAX_DAY,
    );
    within(
        &mut p,
        "producer.session.max_length",
        s.max_length,
        Duration::ZERO,
        MAX_DAY,
    );
    within(
        &mut p,
        "producer.session.command_timeout",
        s.command_timeout,
        MIN_TIMEOUT,
        MAX_CALL,
    );
    let k = &pr.canaries;
    if k.count > 0 {
        within(
            &mut p,
            "producer.canaries.interval",
            k.interval,
            MIN_TICK,
            MAX_CALL,
        );
        within(
            &mut p,
            "producer.canaries.timeout",
            k.timeout,
            MIN_TIMEOUT,
            MAX_CALL,
        );
        within(
            &mut p,
            "producer.canaries.max_age",
            k.max_age,
            MIN_TIMEOUT,
            MAX_YEAR,
        );
    }
    let cap = &pr.capacity;
    within(
        &mut p,
        "producer.capacity.replace_time",
        cap.replace_time,
        Duration::ZERO,
        MAX_DAY,
    );
    if cap.headroom.is_finite() && cap.headroom > MAX_HEADROOM {
        p.push(
            "producer.capacity.headroom",
            format!("{:?} is above {MAX_HEADROOM}", cap.headroom),
        );
    }
    p
}

/// `producer` with every duration clamped into its bounds, for the checks that compute with
/// them (a `Duration` sum of two out-of-bounds lengths would overflow and panic).
pub fn clamped(producer: &ProducerConfig) -> ProducerConfig {
    let mut c = producer.clone();
    let day = |d: &mut Duration| *d = (*d).min(MAX_DAY);
    let year = |d: &mut Duration| *d = (*d).min(MAX_YEAR);
    day(&mut c.allocation_timeout);
    year(&mut c.window);
    for f in &mut c.fleets {
        day(&mut f.scale_every_min);
        day(&mut f.scale_every_max);
    }
    day(&mut c.session.min_length);
    day(&mut c.session.max_length);
    day(&mut c.session.command_timeout);
    day(&mut c.canaries.interval);
    day(&mut c.canaries.timeout);
    year(&mut c.canaries.max_age);
    day(&mut c.capacity.replace_time);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wanderer::Schedule;

    fn load(name: &str, text: &str) -> Result<SidecarConfig, String> {
        let p =
            std::env::temp_dir().join(format!("upsoak-bounds-{}-{name}.yaml", std::process::id()));
        std::fs::write(&p, text).unwrap();
        let r = SidecarConfig::load(&p).map_err(|e| e.to_string());
        let _ = std::fs::remove_file(p);
        r
    }

    const BASE: &str = "state_dir: /tmp/x\nwanderer:\n  space: s.yaml\n  seed: 4\n  applier: { kind: sim, url: \"http://127.0.0.1:1\" }\n";

    #[test]
    fn the_period_that_panicked_run_is_refused_at_load_with_its_path_and_bound() {
        // `attack-2/cfg/sc_periodhuge.yaml` (D10).
        let text = BASE.replace(
            "  seed: 4\n",
            "  seed: 4\n  schedule: { period: 18446744073709551615s }\n",
        );
        let e = load("periodhuge", &text).unwrap_err();
        assert!(
            e.contains("wanderer.schedule.period: ")
                && e.contains("is not within 100ms..=31536000s"),
            "{e}"
        );
    }

    #[test]
    fn the_longest_period_with_full_jitter_waits_without_panicking() {
        let s = Schedule {
            period: MAX_YEAR,
            jitter: 1.0,
        };
        for step in 0..64 {
            assert!(s.wait(7, step) <= MAX_YEAR * 2);
        }
    }

    #[test]
    fn every_out_of_bounds_duration_and_rate_is_named_with_its_bound() {
        let text = "state_dir: /tmp/x\nkube_timeout: 0s\nwanderer:\n  space: s.yaml\n  seed: 4\n  apply_timeout: 400d\n  applier: { kind: helm, timeout: 500ms, stuck_wait: 2d, kill_grace: 2h, reuse_values: none }\nproducer:\n  allocation_rate: 1e-300\n  allocation_timeout: 2h\n  window: 500y\n  canaries: { interval: 1ns, timeout: 2s, max_age: 10s }\n  capacity: { headroom: 1e300, replace_time: 9d }\n  session: { min_length: 0s, max_length: 3d, command_timeout: 0s }\n";
        let e = load("all", text).unwrap_err();
        for want in [
            "kube_timeout: 0ns is not within 1s..=3600s",
            "wanderer.apply_timeout: ",
            "wanderer.applier.timeout: 500ms is not within 1s..=86400s",
            "wanderer.applier.stuck_wait: ",
            "wanderer.applier.kill_grace: 7200s is not within 0ns..=3600s",
            "producer.allocation_rate: 1e-300 is not 0 or within 0.001..=10000 per second",
            "producer.allocation_timeout: ",
            "producer.window: ",
            "producer.canaries.interval: 1ns is not within 100ms..=3600s",
            "producer.capacity.headroom: ",
            "producer.capacity.replace_time: ",
            "producer.session.max_length: ",
            "producer.session.command_timeout: ",
        ] {
            assert!(e.contains(want), "missing {want:?} in {e}");
        }
    }

    #[test]
    fn the_shipped_and_default_values_are_within_bounds() {
        assert!(load("base", BASE).is_ok());
        let shipped =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/base/sidecar.yaml");
        assert!(problems(&SidecarConfig::load(&shipped).unwrap()).is_empty());
    }
}
