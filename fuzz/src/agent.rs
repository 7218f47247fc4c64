//! Fuzz targets of the agent's parsers: SLO specs, the history and baseline files, the
//! Alertmanager webhook payload and the saved webhook inbox.

use std::path::PathBuf;

use upsoak_agent::baseline::Baseline;
use upsoak_agent::history::History;
use upsoak_agent::spec::Specs;
use upsoak_agent::webhook::{Inbox, MAX_INBOX_BYTES, Payload};

/// A target: its name (the directory of its saved inputs) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target of this module.
pub const TARGETS: &[Target] = &[
    ("slo_spec", slo_spec),
    ("history", history),
    ("baseline", baseline),
    ("webhook", webhook),
    ("inbox", inbox),
];

/// A scratch directory of this process holding `name` with `data` (loaders take paths).
fn scratch(name: &str, data: &[u8]) -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(format!("upsoak-fuzz-agent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    std::fs::write(dir.join(name), data).ok()?;
    Some(dir)
}

/// An SLO spec file, parsed and checked (PromQL included).
pub fn slo_spec(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Specs::parse(text, "fuzz.yaml");
    }
}

/// `history.json`, loaded and summarized as `report` does.
pub fn history(data: &[u8]) {
    if let Some(dir) = scratch("history.json", data)
        && let Ok(h) = History::load(&dir)
    {
        let _ = h.progress();
        let _ = h.overall();
    }
}

/// `baseline.json`, loaded.
pub fn baseline(data: &[u8]) {
    if let Some(dir) = scratch("baseline.json", data) {
        let _ = Baseline::load(&dir.join("baseline.json"));
    }
}

/// An Alertmanager webhook body, decoded, its alerts' times read, and kept in an inbox.
pub fn webhook(data: &[u8]) {
    if let Ok(p) = serde_json::from_slice::<Payload>(data) {
        for a in &p.alerts {
            let _ = a.span();
            let _ = a.overlaps(0, i64::MAX);
        }
        let inbox = Inbox::in_memory(MAX_INBOX_BYTES);
        let _ = inbox.insert(p.alerts);
        let _ = inbox.firing_between(i64::MIN, i64::MAX);
    }
}

/// The inbox the webhook saves in the state dir, reopened after a restart.
pub fn inbox(data: &[u8]) {
    let Some(dir) = scratch("probe", b"") else {
        return;
    };
    let Ok(inbox) = Inbox::open(&dir, MAX_INBOX_BYTES) else {
        return;
    };
    let _ = inbox.alerts();
    if let Some(file) = inbox.file() {
        let file = file.to_owned();
        drop(inbox);
        if std::fs::write(&file, data).is_ok()
            && let Ok(i) = Inbox::open(&dir, MAX_INBOX_BYTES)
        {
            let _ = i.firing_between(i64::MIN, i64::MAX);
        }
    }
}
