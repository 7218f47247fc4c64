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
struct Some59;

impl Facts for Some59 {
    fn gate(&self, name: &str) -> bool {
        name.len().is_multiple_of(2)
    }
    fn version(&self) -> (u32, u32, u32) {
        (1, 59, 0)
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
        let _ = e.eval(&Some59);
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
