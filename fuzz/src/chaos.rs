//! Fuzz targets of the sidecar's parsers: the space file, the constraint language, the
//! sidecar config and the journal.

use std::path::PathBuf;

use upsoak_chaos::config::SidecarConfig;
use upsoak_chaos::wanderer::constraint::{self, Facts};
use upsoak_chaos::wanderer::journal::Journal;
use upsoak_chaos::wanderer::space::Space;

/// A target: its name (the directory of its saved inputs) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target of this module.
pub const TARGETS: &[Target] = &[
    ("space", space),
    ("constraint", constraint),
    ("sidecar_config", sidecar_config),
    ("sidecar_config_values", sidecar_config_values),
    ("journal", journal),
];

/// A scratch file of this process (loaders that take a path read it).
fn scratch(name: &str, data: &[u8]) -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(format!("upsoak-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let p = dir.join(name);
    std::fs::write(&p, data).ok()?;
    Some(p)
}

/// A space file, parsed and validated, and its start state.
pub fn space(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(s) = Space::parse(text, "fuzz.yaml")
    {
        let _ = s.start();
    }
}

/// Facts for evaluating a constraint: gates of even name length on, version 1.59.0, tunables
/// of both kinds.
struct Some59(constraint::SemVer);

impl Facts for Some59 {
    fn gate(&self, name: &str) -> bool {
        name.len().is_multiple_of(2)
    }
    fn version(&self) -> &constraint::SemVer {
        &self.0
    }
    fn tunable_int(&self, name: &str) -> Option<i64> {
        Some(name.len() as i64)
    }
    fn tunable_str(&self, name: &str) -> Option<&str> {
        Some(if name.len().is_multiple_of(2) {
            "a"
        } else {
            "b"
        })
    }
}

/// One constraint, parsed, evaluated and walked as the space does.
pub fn constraint(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(e) = constraint::parse(text)
    {
        let _ = e.eval(&Some59(constraint::SemVer::new(1, 59, 0)));
        let (mut gates, mut tunables, mut ints) = (Vec::new(), Vec::new(), Vec::new());
        e.names(&mut gates, &mut tunables);
        e.int_constants("t", &mut ints);
    }
}

/// The sidecar's YAML config file, loaded and checked.
pub fn sidecar_config(data: &[u8]) {
    if let Some(p) = scratch("sidecar.yaml", data) {
        let _ = SidecarConfig::load(&p);
    }
}

/// Extreme durations, as the config's humantime fields read them.
const DURATIONS: &[&str] = &[
    "0s",
    "1ns",
    "999ms",
    "1s",
    "2s",
    "1h",
    "1d",
    "365d",
    "366d",
    "1y",
    "500y",
    "584942417355y",
    "18446744073709551615s",
    "18446744073709551615ns",
    "9223372036854775807s",
];

/// Extreme numbers, as YAML scalars.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "0.5",
    "0.001",
    "0.0009",
    "10000",
    "10001",
    "1e-300",
    "1e300",
    "1e999",
    ".nan",
    ".inf",
    "-.inf",
    "2147483648",
    "-2147483649",
    "18446744073709551615",
    "-9223372036854775808",
];

/// The fields of a valid-shaped config that hold a duration, and those that hold a number.
const DURATION_FIELDS: &[&str] = &[
    "kube_timeout",
    "wanderer.schedule.period",
    "wanderer.apply_timeout",
    "wanderer.applier.timeout",
    "wanderer.applier.stuck_wait",
    "wanderer.applier.kill_grace",
    "producer.allocation_timeout",
    "producer.window",
    "producer.canaries.interval",
    "producer.canaries.timeout",
    "producer.canaries.max_age",
    "producer.capacity.replace_time",
    "producer.session.min_length",
    "producer.session.max_length",
    "producer.session.command_timeout",
];
const NUMBER_FIELDS: &[&str] = &[
    "wanderer.seed",
    "wanderer.max_steps",
    "wanderer.schedule.jitter",
    "producer.allocation_rate",
    "producer.max_in_flight",
    "producer.canaries.count",
    "producer.capacity.headroom",
    "producer.session.max_players",
    "producer.session.max_sessions",
];

/// A valid-shaped sidecar config whose durations and numbers are drawn, by the bytes of
/// `data`, from [`DURATIONS`] and [`NUMBERS`]; a byte past the table (7 in 8) keeps the
/// default. The text [`sidecar_config_values`] loads.
pub fn values_config(data: &[u8]) -> String {
    let mut set: Vec<(&str, &str)> = Vec::new();
    // The first byte's low bit: the sim applier or helm's (with its three durations).
    let helm = data.first().is_some_and(|b| b % 2 == 1);
    let mut bytes = data.iter().skip(1).copied();
    let mut pick = |table: &[&'static str]| -> Option<&'static str> {
        let b = usize::from(bytes.next()?);
        table.get(b % (table.len() * 8)).copied()
    };
    for f in DURATION_FIELDS {
        if let Some(v) = pick(DURATIONS) {
            set.push((f, v));
        }
    }
    for f in NUMBER_FIELDS {
        if let Some(v) = pick(NUMBERS) {
            set.push((f, v));
        }
    }
    let get = |field: &str| set.iter().find(|(f, _)| *f == field).map(|(_, v)| *v);
    let line = |out: &mut String, indent: &str, key: &str, field: &str| {
        if let Some(v) = get(field) {
            out.push_str(&format!("{indent}{key}: {v}\n"));
        }
    };
    let mut out = String::from("state_dir: /tmp/upsoak-fuzz-state\n");
    line(&mut out, "", "kube_timeout", "kube_timeout");
    out.push_str("wanderer:\n  space: s.yaml\n");
    out.push_str(&format!(
        "  seed: {}\n",
        get("wanderer.seed").unwrap_or("4")
    ));
    line(&mut out, "  ", "max_steps", "wanderer.max_steps");
    line(&mut out, "  ", "apply_timeout", "wanderer.apply_timeout");
    out.push_str("  schedule:\n    preset: fast\n");
    line(&mut out, "    ", "period", "wanderer.schedule.period");
    line(&mut out, "    ", "jitter", "wanderer.schedule.jitter");
    if helm {
        out.push_str("  applier:\n    kind: helm\n    reuse_values: none\n");
        line(&mut out, "    ", "timeout", "wanderer.applier.timeout");
        line(
            &mut out,
            "    ",
            "stuck_wait",
            "wanderer.applier.stuck_wait",
        );
        line(
            &mut out,
            "    ",
            "kill_grace",
            "wanderer.applier.kill_grace",
        );
    } else {
        out.push_str("  applier: { kind: sim, url: \"http://127.0.0.1:1\" }\n");
    }
    out.push_str("producer:\n  fleets: [{ name: f, min_replicas: 2, max_replicas: 10 }]\n");
    line(
        &mut out,
        "  ",
        "allocation_rate",
        "producer.allocation_rate",
    );
    line(
        &mut out,
        "  ",
        "allocation_timeout",
        "producer.allocation_timeout",
    );
    line(&mut out, "  ", "max_in_flight", "producer.max_in_flight");
    line(&mut out, "  ", "window", "producer.window");
    for (section, keys) in [
        ("canaries", &["count", "interval", "timeout", "max_age"][..]),
        ("capacity", &["headroom", "replace_time"][..]),
        (
            "session",
            &[
                "min_length",
                "max_length",
                "command_timeout",
                "max_players",
                "max_sessions",
            ][..],
        ),
    ] {
        out.push_str(&format!("  {section}:\n"));
        if section == "capacity" {
            // Short Fleets warn: the load's own numbers are not what is fuzzed here.
            out.push_str("    on_short: warn\n");
        }
        for k in keys {
            line(&mut out, "    ", k, &format!("producer.{section}.{k}"));
        }
        if out.ends_with(&format!("  {section}:\n")) {
            out.push_str("    {}\n");
        }
    }
    out
}

/// A structured config ([`values_config`]) loaded; when it loads, what `run` computes from
/// its values is computed too (the Wanderer's jittered waits, the Producer's allocation gaps),
/// so a value the checks let through that would panic `run` panics here.
pub fn sidecar_config_values(data: &[u8]) {
    let text = values_config(data);
    if let Some(p) = scratch("sidecar-values.yaml", text.as_bytes())
        && let Ok(c) = SidecarConfig::load(&p)
    {
        let s = upsoak_chaos::wanderer::Schedule {
            period: c.wanderer.schedule.period(),
            jitter: c.wanderer.schedule.jitter,
        };
        for step in 0..4 {
            let _ = s.wait(c.wanderer.seed, step);
        }
        let rate = c.producer.allocation_rate;
        if rate > 0.0 {
            // The longest Poisson gap `gaps` (producer/mod.rs) can draw: -ln(2^-53) = 36.7 means.
            let _ = std::time::Duration::from_secs_f64(37.0 / rate);
        }
    }
}

/// A journal file, opened (a torn tail dropped) and read as a restart does.
pub fn journal(data: &[u8]) {
    if let Some(p) = scratch("journal.jsonl", data)
        && let Ok((_, r)) = Journal::open(&p)
    {
        let _ = r.pending();
        let _ = r.last_phases();
        if let Some(step) = r.last_step() {
            let _ = r.scheduled(step);
        }
    }
}
